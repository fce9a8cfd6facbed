//! The only module that speaks SQL. SQLite (one writer connection, a pool of readers) or
//! PostgreSQL, chosen by URL; the same SQL text runs on both through each native driver.

pub mod changes;
pub mod deliveries;
pub mod events;
pub mod idempotency;
pub mod orders;
pub mod outbox;
pub mod pg_batch;
pub mod photos;
pub mod tokens;
pub mod tracking;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, Postgres, Sqlite, SqlitePool, Transaction};

use crate::config::redact_url;

/// Runs `$body` with `$conn` bound to a reading executor of whichever backend `$db` is.
macro_rules! on_read {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { reader, .. } => {
                let $conn = reader;
                $body
            }
            $crate::store::Db::Postgres { pool, .. } => {
                let $conn = pool;
                $body
            }
        }
    };
}

/// Runs `$body` with `$conn` bound to the connection of an open transaction.
macro_rules! on_tx {
    ($tx:expr, |$conn:ident| $body:expr) => {
        match $tx {
            $crate::store::Tx::Sqlite(tx) => {
                let $conn = &mut **tx;
                $body
            }
            $crate::store::Tx::Postgres(tx) => {
                let $conn = &mut **tx;
                $body
            }
        }
    };
}

pub(crate) use {on_read, on_tx};

/// Which database engine is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A handle to the database; cheap to clone.
#[derive(Debug, Clone)]
pub enum Db {
    /// SQLite: every write goes through the single writer connection, so writers never
    /// stall each other on SQLite's file lock; reads run in parallel on the readers.
    Sqlite {
        /// One connection, used for every write.
        writer: SqlitePool,
        /// Read-only connections.
        reader: SqlitePool,
    },
    /// PostgreSQL, with the batch writers that let concurrent changes share commits.
    Postgres {
        /// The pool.
        pool: PgPool,
        /// Group-commit writers for order changes.
        batcher: pg_batch::Batcher,
        /// This node's name, set as every connection's `application_name`.
        node: String,
    },
}

/// An open write transaction.
pub enum Tx {
    /// On the SQLite writer.
    Sqlite(Transaction<'static, Sqlite>),
    /// On a PostgreSQL connection.
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.commit().await,
            Tx::Postgres(tx) => tx.commit().await,
        }
    }

    /// Rolls the transaction back.
    pub async fn rollback(self) -> Result<(), sqlx::Error> {
        match self {
            Tx::Sqlite(tx) => tx.rollback().await,
            Tx::Postgres(tx) => tx.rollback().await,
        }
    }
}

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

impl Db {
    /// Connects to the database the URL names; `max_connections` bounds the pool.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        if url.starts_with("sqlite:") {
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
            let reader = SqlitePoolOptions::new()
                .max_connections(max_connections)
                .test_before_acquire(false)
                .connect_lazy_with(options.read_only(true));
            Ok(Db::Sqlite { writer, reader })
        } else {
            let node = format!("kiln-{}", crate::crypto::random_token(6));
            let options = PgConnectOptions::from_str(url)
                .with_context(|| format!("invalid PostgreSQL URL {shown}"))?
                .application_name(&node)
                // kiln's statements are point lookups and small writes whose best plan does
                // not depend on the values; re-planning the change statement per execution
                // (the default for its first runs and with array parameters) costs more than
                // running it.
                .options([("plan_cache_mode", "force_generic_plan")]);
            let pool = PgPoolOptions::new()
                .max_connections(max_connections)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(options)
                .await
                .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
            let batcher = pg_batch::Batcher::start(pool.clone());
            Ok(Db::Postgres { pool, batcher, node })
        }
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite { writer, .. } => SQLITE_MIGRATIONS.run(writer).await,
            Db::Postgres { pool, .. } => POSTGRES_MIGRATIONS.run(pool).await,
        }
        .context("database migration failed")
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match self {
            Db::Sqlite { .. } => Backend::Sqlite,
            Db::Postgres { .. } => Backend::Postgres,
        }
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, so that another process
    /// writing the same file makes us wait rather than fail half-way).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self {
            Db::Sqlite { writer, .. } => writer.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite),
            Db::Postgres { pool, .. } => pool.begin().await.map(Tx::Postgres),
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_read!(self, |conn| sqlx::query("SELECT 1").execute(conn).await.map(|_| ()))
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match self {
            Db::Sqlite { writer, reader } => {
                reader.close().await;
                writer.close().await;
            }
            Db::Postgres { pool, .. } => pool.close().await,
        }
    }
}

/// Whether the error is a unique-constraint violation on a constraint or column whose
/// name contains `name` (SQLite reports columns, PostgreSQL constraint names).
pub fn is_unique_violation(err: &sqlx::Error, name: &str) -> bool {
    match err {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            db.constraint().is_some_and(|c| c.contains(name)) || db.message().contains(name)
        }
        _ => false,
    }
}

/// Milliseconds since the Unix epoch, the unit of every stored time.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// A stored time as a UTC date-time.
pub fn from_ms(ms: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// A decoding error for a stored value that does not parse (the database was edited by hand).
pub fn corrupt(column: &str, problem: impl std::fmt::Display) -> sqlx::Error {
    sqlx::Error::Decode(format!("stored {column} is invalid: {problem}").into())
}
