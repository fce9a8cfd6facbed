//! What is PostgreSQL's own: the pool, this node's name on change notifications, listening
//! to them, and group commit of concurrent changes ([`batch`]).

pub(super) mod batch;

use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgListener, PgPoolOptions};

use crate::config::redact_url;

static MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// An open PostgreSQL database.
#[derive(Debug, Clone)]
pub(super) struct Postgres {
    /// The pool.
    pub(super) pool: PgPool,
    /// Connections for lists of orders, which plan each query for its values (see
    /// `store::orders::list`), opened as they are needed.
    pub(super) lists: PgPool,
    /// Group-commit writers for order changes.
    pub(super) batcher: batch::Batcher,
    /// This node's name, set as every connection's `application_name` (and so named by
    /// the change-notification triggers).
    pub(super) node: String,
}

impl Postgres {
    pub(super) async fn connect(url: &str, max_connections: u32) -> anyhow::Result<Self> {
        let shown = redact_url(url);
        let node = format!("kiln-{}", crate::crypto::random_token(6));
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("invalid PostgreSQL URL {shown}"))?
            .application_name(&node);
        let pool_options =
            || PgPoolOptions::new().max_connections(max_connections).acquire_timeout(Duration::from_secs(30));
        // kiln's statements are point lookups and small writes whose best plan does not
        // depend on the values; re-planning the change statement per execution (the default
        // for its first runs and with array parameters) costs more than running it.
        let pool = pool_options()
            .connect_with(options.clone().options([("plan_cache_mode", "force_generic_plan")]))
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {shown}"))?;
        // Whether a search fragment or a date range matches ten orders or a million decides
        // between reading an index and walking one in order, and only the values tell. On
        // connections of their own, lists need no transaction to say so per query.
        let lists = pool_options().connect_lazy_with(options.options([("plan_cache_mode", "force_custom_plan")]));
        let batcher = batch::Batcher::start(pool.clone());
        Ok(Self { pool, lists, batcher, node })
    }

    pub(super) async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        MIGRATIONS.run(&self.pool).await
    }

    /// A listener on `channel`, which reports a lost connection (the caller must then
    /// assume it missed notifications).
    pub(super) async fn listen(&self, channel: &str) -> Result<PgListener, sqlx::Error> {
        let mut listener = PgListener::connect_with(&self.pool).await?;
        listener.ignore_pool_close_event(false);
        listener.listen(channel).await?;
        Ok(listener)
    }
}
