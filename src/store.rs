//! The only module that speaks SQL. SQLite (one writer connection, a pool of readers) or
//! PostgreSQL, chosen by URL; the same SQL text runs on both through each native driver.

pub mod accounts;
pub mod changes;
pub mod columns;
pub mod deliveries;
pub mod events;
pub mod idempotency;
pub mod inbox;
pub mod orders;
pub mod outbox;
pub mod photos;
mod postgres;
pub mod redaction;
mod sqlite;
pub mod tokens;
pub mod tracking;
pub mod tracking_stats;

use anyhow::Context;
use sqlx::postgres::PgListener;
use sqlx::{Postgres, Sqlite, Transaction};

/// Runs `$body` with `$conn` bound to a reading executor of whichever engine `$db` is.
macro_rules! on_read {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db.engine() {
            $crate::store::Engine::Sqlite(sqlite) => {
                let $conn = &sqlite.reader;
                $body
            }
            $crate::store::Engine::Postgres(pg) => {
                let $conn = &pg.pool;
                $body
            }
        }
    };
}

/// Runs `$body` with `$conn` bound to the writing executor of whichever engine `$db` is, for
/// one statement that commits on its own (SQLite's single writer, or the PostgreSQL pool).
macro_rules! on_writer {
    ($db:expr, |$conn:ident| $body:expr) => {
        match $db.engine() {
            $crate::store::Engine::Sqlite(sqlite) => {
                let $conn = &sqlite.writer;
                $body
            }
            $crate::store::Engine::Postgres(pg) => {
                let $conn = &pg.pool;
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

pub(crate) use {on_read, on_tx, on_writer};

/// Which database engine is in use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// Embedded SQLite file.
    Sqlite,
    /// PostgreSQL server.
    Postgres,
}

/// A handle to the database; cheap to clone. What differs per engine lives in
/// [`sqlite`] and [`postgres`]; the rest of kiln only calls the functions of `store`.
#[derive(Debug, Clone)]
pub struct Db {
    engine: Engine,
}

/// The engine behind a [`Db`]; only `store` looks inside.
#[derive(Debug, Clone)]
enum Engine {
    Sqlite(sqlite::Sqlite),
    Postgres(postgres::Postgres),
}

/// An open write transaction.
pub enum Tx {
    /// On the SQLite writer.
    Sqlite(Transaction<'static, Sqlite>),
    /// On a PostgreSQL connection.
    Postgres(Transaction<'static, Postgres>),
}

impl Tx {
    /// The placeholders of a multi-row `VALUES`: `rows` rows of `width` parameters each,
    /// bound row after row, in the form this engine reads fastest.
    pub(crate) fn values(&self, rows: usize, width: usize) -> String {
        match self {
            Tx::Sqlite(_) => sqlite::values(rows, width),
            Tx::Postgres(_) => columns::rows(rows, width),
        }
    }

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

impl Db {
    /// Connects to the database the URL names (`sqlite:` or `postgres:`); `max_connections`
    /// bounds the pool.
    pub async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let engine = if url.starts_with("sqlite:") {
            Engine::Sqlite(sqlite::Sqlite::connect(url, max_connections).await?)
        } else {
            Engine::Postgres(postgres::Postgres::connect(url, max_connections).await?)
        };
        Ok(Self { engine })
    }

    fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Applies the embedded migrations that have not run yet.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.engine {
            Engine::Sqlite(db) => db.migrate().await,
            Engine::Postgres(db) => db.migrate().await,
        }
        .context("database migration failed")
    }

    /// Refreshes the query planner's statistics where the engine leaves that to us. SQLite
    /// without statistics takes any equality for a selective one (it read a workflow's
    /// 5,000 open orders through the workflow index and sorted them — 18-39 ms — instead of
    /// walking the open orders by creation and stopping at a page — 0.2 ms); its own
    /// `PRAGMA optimize` analyses only the tables that need it, with a bounded sample.
    /// PostgreSQL's autovacuum does this by itself.
    pub async fn optimize(&self) -> Result<(), sqlx::Error> {
        match &self.engine {
            Engine::Sqlite(db) => db.optimize().await,
            Engine::Postgres(_) => Ok(()),
        }
    }

    /// Which engine this is.
    pub fn backend(&self) -> Backend {
        match &self.engine {
            Engine::Sqlite(_) => Backend::Sqlite,
            Engine::Postgres(_) => Backend::Postgres,
        }
    }

    /// Begins a write transaction (`BEGIN IMMEDIATE` on SQLite, so that another process
    /// writing the same file makes us wait rather than fail half-way).
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match &self.engine {
            Engine::Sqlite(db) => db.writer.begin_with("BEGIN IMMEDIATE").await.map(Tx::Sqlite),
            Engine::Postgres(db) => db.pool.begin().await.map(Tx::Postgres),
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_read!(self, |conn| sqlx::query("SELECT 1").execute(conn).await.map(|_| ()))
    }

    /// Closes every connection.
    pub async fn close(&self) {
        match &self.engine {
            Engine::Sqlite(db) => db.close().await,
            Engine::Postgres(db) => {
                db.lists.close().await;
                db.pool.close().await;
            }
        }
    }

    /// The name other nodes see on this node's change notifications; `None` on SQLite,
    /// where one process owns the database.
    pub fn node(&self) -> Option<&str> {
        match &self.engine {
            Engine::Sqlite(_) => None,
            Engine::Postgres(db) => Some(&db.node),
        }
    }

    /// Starts listening to change notifications on `channel`; `None` on SQLite, which has
    /// no notifications.
    pub async fn listen(&self, channel: &str) -> Option<Result<PgListener, sqlx::Error>> {
        match &self.engine {
            Engine::Sqlite(_) => None,
            Engine::Postgres(db) => Some(db.listen(channel).await),
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
