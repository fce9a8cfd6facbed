//! Live updates. [`Hub`] wakes the watchers of an order (tracking pages over SSE) when it
//! changes; changes made by other kiln nodes arrive through PostgreSQL triggers
//! (`NOTIFY kiln_changes`), which every node listens to.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;

use sqlx::postgres::PgListener;
use tokio_util::sync::CancellationToken;

use crate::service::{Service, Signal};
use crate::store::Db;

/// The channel the triggers notify on.
pub const CHANNEL: &str = "kiln_changes";

/// How often a SQLite node looks for tokens revoked by another process (`kiln token revoke`).
pub const SQLITE_TOKEN_POLL: Duration = Duration::from_secs(1);

/// Listens until `shutdown`. On SQLite, orders only change in this process, but the CLI may
/// revoke a token from another one: poll for that instead.
pub async fn listen_for_changes(service: Service, shutdown: CancellationToken) {
    let Db::Postgres { pool, node, .. } = service.db().clone() else {
        return watch_revocations(service, shutdown).await;
    };
    loop {
        let mut listener = match connect(&pool).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for changes; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        // Anything may have changed while we were not listening.
        service.on_signal(Signal::Resync);
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                r = listener.try_recv() => r,
            };
            match received {
                Ok(Some(n)) => match Signal::parse(n.payload()) {
                    // Our own changes updated our caches when they committed.
                    Some((_, from)) if from == node => {}
                    Some((signal, _)) => service.on_signal(signal),
                    None => tracing::warn!(payload = n.payload(), "unknown change notification"),
                },
                Ok(None) => {
                    tracing::warn!("change listener reconnected; caches cleared");
                    service.on_signal(Signal::Resync);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn watch_revocations(service: Service, shutdown: CancellationToken) {
    let mut seen = None;
    loop {
        match crate::store::tokens::revocation_mark(service.db()).await {
            Ok(mark) => {
                if seen.is_some_and(|s| s != mark) {
                    service.on_signal(Signal::Tokens);
                }
                seen = Some(mark);
            }
            Err(e) => tracing::warn!(error = %e, "cannot check for revoked tokens"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(SQLITE_TOKEN_POLL) => {}
        }
    }
}

async fn connect(pool: &sqlx::PgPool) -> Result<PgListener, sqlx::Error> {
    let mut listener = PgListener::connect_with(pool).await?;
    listener.ignore_pool_close_event(false);
    listener.listen(CHANNEL).await?;
    Ok(listener)
}

/// Per-order change counters that live watchers wait on. A watcher only learns *that* its
/// order changed and then reads the shared, cached rendering, so one change costs one render
/// per language however many watchers there are.
#[derive(Debug, Default)]
pub struct Hub {
    orders: Mutex<HashMap<i64, watch::Sender<u64>>>,
}

/// Sweep orders nobody watches any more once the map grows past this.
const SWEEP_AT: usize = 1024;

impl Hub {
    fn orders(&self) -> std::sync::MutexGuard<'_, HashMap<i64, watch::Sender<u64>>> {
        self.orders.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Starts watching an order.
    pub fn subscribe(&self, order_id: i64) -> watch::Receiver<u64> {
        let mut orders = self.orders();
        if orders.len() >= SWEEP_AT {
            orders.retain(|_, tx| tx.receiver_count() > 0);
        }
        orders.entry(order_id).or_insert_with(|| watch::channel(0).0).subscribe()
    }

    /// Wakes the watchers of an order.
    pub fn notify(&self, order_id: i64) {
        let mut orders = self.orders();
        if let Some(tx) = orders.get(&order_id) {
            if tx.receiver_count() == 0 {
                orders.remove(&order_id);
            } else {
                tx.send_modify(|n| *n += 1);
            }
        }
    }

    /// Wakes every watcher (after change notifications may have been missed).
    pub fn notify_all(&self) {
        for tx in self.orders().values() {
            tx.send_modify(|n| *n += 1);
        }
    }

    /// How many watchers are connected.
    pub fn watchers(&self) -> usize {
        self.orders().values().map(watch::Sender::receiver_count).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn watchers_of_an_order_wake_on_its_changes_only() {
        let hub = Hub::default();
        let mut a = hub.subscribe(1);
        let mut b = hub.subscribe(1);
        let mut other = hub.subscribe(2);
        hub.notify(1);
        assert!(a.changed().await.is_ok());
        assert!(b.changed().await.is_ok());
        assert!(!other.has_changed().unwrap_or(true));
        assert_eq!(hub.watchers(), 3);
        drop((a, b));
        hub.notify(1);
        assert_eq!(hub.watchers(), 1, "an order nobody watches is forgotten");
        hub.notify_all();
        assert!(other.changed().await.is_ok());
    }
}
