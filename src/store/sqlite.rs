//! What is SQLite's own: one writer connection and a pool of readers over a WAL file, and
//! the change write sent as one multi-statement call (every call is a hop to SQLite's worker
//! thread, and the single writer is the bottleneck).

use std::str::FromStr;
use std::sync::LazyLock;
use std::time::Duration;

use anyhow::Context;
use sqlx::SqlitePool;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};

use super::changes::{PlannedWrite, WriteResult, job_rows};
use super::columns::{self, EVENT, OUTBOX_INSERT};
use super::orders::{GUARD_ID, GUARDED_UPDATE, MutableColumns, bind_mutable};
use super::{events, outbox};
use crate::config::redact_url;
use crate::domain::model::NewEvent;

/// How much of the database file each reader maps into memory.
const READER_MMAP_BYTES: u64 = 1 << 30;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// An open SQLite database.
#[derive(Debug, Clone)]
pub(super) struct Sqlite {
    /// One connection, used for every write, so writers never stall each other on SQLite's
    /// file lock.
    pub(super) writer: SqlitePool,
    /// Read-only connections, in parallel.
    pub(super) reader: SqlitePool,
}

impl Sqlite {
    pub(super) async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        let options = SqliteConnectOptions::from_str(url)
            .with_context(|| format!("invalid SQLite URL {shown}"))?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(10));
        if let Some(parent) = options.get_filename().parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("cannot create the database folder {}", parent.display()))?;
        }
        // A local file connection cannot go stale, so skip the ping sqlx sends on every
        // acquire (a hop to SQLite's worker thread each time). SQLite's default page cache
        // is 2 MB; the writer touches several indexes per change, so give it room.
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .test_before_acquire(false)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.clone().pragma("cache_size", "-65536"))
            .await
            .with_context(|| format!("cannot open the SQLite database {shown}"))?;
        // Readers map the file instead of copying each page into a cache of their own: at 16
        // concurrent searches (list bench) that is 1.5x the throughput, and all readers share
        // the OS's one copy of a page. Up to 1 GiB mapped (~1,000,000 orders); pages beyond
        // that, and pages still in the WAL, are read as before.
        let reader = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .test_before_acquire(false)
            .connect_lazy_with(options.read_only(true).pragma("mmap_size", READER_MMAP_BYTES.to_string()));
        Ok(Self { writer, reader })
    }

    pub(super) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATIONS.run(&self.writer).await
    }

    pub(super) async fn optimize(&self) -> Result<(), sqlx::Error> {
        // 0x10002: look at every table, not only those this connection has used (SQLite's
        // advice for a long-lived connection). Since 3.46 optimize bounds its own sample.
        sqlx::raw_sql("PRAGMA optimize = 0x10002").execute(&self.writer).await?;
        Ok(())
    }

    pub(super) async fn close(&self) {
        self.reader.close().await;
        self.writer.close().await;
    }

    /// Writes a change outside any open transaction, in one call.
    pub(super) async fn write(&self, write: &PlannedWrite) -> WriteResult {
        let mut conn = self.writer.acquire().await?;
        let written = write_now(&mut conn, write).await;
        if written.is_err() {
            // Leave the writer connection as we found it: outside any transaction.
            let _ = sqlx::query("ROLLBACK").execute(&mut *conn).await;
        }
        written
    }
}

/// The fast path; the caller rolls back if this fails part-way.
async fn write_now(conn: &mut sqlx::SqliteConnection, write: &PlannedWrite) -> WriteResult {
    if let [event] = write.events.as_slice() {
        return write_one(conn, write, event).await;
    }
    let order = &write.order;
    let cols = MutableColumns::of(order);
    let updated: Vec<i64> = bind_mutable!(sqlx::query_scalar(sqlx::AssertSqlSafe(BEGIN_AND_UPDATE.as_str())), cols)
        .bind(order.id)
        .bind(order.version)
        .fetch_all(&mut *conn)
        .await?;
    if updated.is_empty() {
        sqlx::query("ROLLBACK").execute(&mut *conn).await?;
        return Ok(None);
    }
    let mut ids = Vec::with_capacity(write.events.len());
    for event in &write.events {
        ids.push(
            events::bind_insert(sqlx::query_scalar(events::INSERT.as_str()), order.id, event, write.at_ms)
                .fetch_one(&mut *conn)
                .await?,
        );
    }
    let rows: Vec<_> = job_rows(write, &ids).into_iter().map(|r| (r, write.at_ms)).collect();
    if rows.is_empty() {
        sqlx::query("COMMIT").execute(&mut *conn).await?;
    } else {
        let sql = format!("{}; COMMIT", outbox::insert_sql(rows.len()));
        outbox::bind_insert(sqlx::query(sqlx::AssertSqlSafe(sql)), &rows).execute(&mut *conn).await?;
    }
    Ok(Some(ids))
}

/// `(?, …), (?, …), …`: the placeholders of a multi-row `VALUES`, anonymous. sqlx finds
/// the argument of a named placeholder (`$7`) by asking SQLite its name, and SQLite looks
/// names up in a list, so a statement of n named placeholders costs n² steps to bind: with a
/// hundred new orders (2,300 parameters) that took more time than the inserts themselves.
pub(super) fn values(rows: usize, width: usize) -> String {
    let row = format!("({})", vec!["?"; width].join(", "));
    vec![row; rows].join(", ")
}

static BEGIN_AND_UPDATE: LazyLock<String> =
    LazyLock::new(|| format!("BEGIN IMMEDIATE; {} RETURNING id", *GUARDED_UPDATE));

/// One change with one event in a single call: `BEGIN`, the guarded update, the event
/// (inserted only if the update changed a row: `changes()` still reports the update), its
/// jobs (pointing at the order's newest event, which is ours: we hold SQLite's only write
/// lock) and `COMMIT`. Returns the event id, or nothing if the version moved on.
async fn write_one(conn: &mut sqlx::SqliteConnection, write: &PlannedWrite, event: &NewEvent) -> WriteResult {
    let order = &write.order;
    let cols = MutableColumns::of(order);
    let kinds: Vec<&str> = write.jobs.iter().map(|j| j.kind).collect();
    let query = bind_mutable!(sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(ONE_EVENT.as_str())), cols)
        .bind(order.id)
        .bind(order.version);
    let ids = events::bind_more(query, event, write.at_ms)
        .bind(serde_json::Value::from(kinds).to_string())
        .fetch_all(&mut *conn)
        .await?;
    match ids.as_slice() {
        [_order, event_id] => Ok(Some(vec![*event_id])),
        [] => Ok(None),
        _ => Err(sqlx::Error::Protocol(format!("unexpected result of a change: {ids:?}"))),
    }
}

/// Parameters: the mutable columns, the order's id and version ([`GUARDED_UPDATE`]), the
/// event's columns, then the job kinds as a JSON array.
static ONE_EVENT: LazyLock<String> = LazyLock::new(|| {
    let id = format!("${GUARD_ID}");
    let first_event = GUARD_ID + 2;
    let at = format!("${}", first_event + EVENT.len() - 1);
    let kinds = first_event + EVENT.len();
    format!(
        "BEGIN IMMEDIATE; \
         {update} RETURNING id; \
         INSERT INTO order_events (order_id, {event_columns}) \
         SELECT {id}, {event_values} WHERE changes() = 1 RETURNING id; \
         INSERT INTO outbox ({OUTBOX_INSERT}) \
         SELECT {job} FROM json_each(${kinds}) AS j WHERE changes() = 1; \
         COMMIT",
        update = *GUARDED_UPDATE,
        event_columns = columns::event_names(),
        event_values = columns::placeholders(first_event, EVENT.len()),
        job = columns::outbox_values(
            "j.value",
            &id,
            &format!("(SELECT max(id) FROM order_events WHERE order_id = {id})"),
            &at
        ),
    )
});

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn readers_map_the_file_and_sqlite_is_built_without_its_global_mutexes() {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("kiln.db").display());
        let db = Sqlite::connect(&url, 2).await.expect("open");
        db.migrate().await.expect("migrate");
        let mapped: i64 = sqlx::query_scalar("PRAGMA mmap_size").fetch_one(&db.reader).await.expect("mmap_size");
        assert_eq!(mapped, READER_MMAP_BYTES as i64);
        let writer_mapped: i64 = sqlx::query_scalar("PRAGMA mmap_size").fetch_one(&db.writer).await.expect("mmap_size");
        assert_eq!(writer_mapped, 0, "the writer reads as before");
        let options: Vec<String> =
            sqlx::query_scalar("PRAGMA compile_options").fetch_all(&db.reader).await.expect("compile options");
        assert!(options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"), "{options:?}");
        assert!(!options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"), "{options:?}");
        db.close().await;
    }
}
