//! Live updates. [`Hub`] wakes the watchers of an order (tracking pages over SSE) when it
//! changes; changes made by other kiln nodes arrive through PostgreSQL triggers
//! (`NOTIFY kiln_changes`), which every node listens to.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::store::Db;

/// The channel the triggers notify on.
pub const CHANNEL: &str = "kiln_changes";

/// How often a SQLite node looks for tokens revoked by another process (`kiln token revoke`).
pub const SQLITE_TOKEN_POLL: Duration = Duration::from_secs(1);

/// A change made elsewhere (another node, or a trigger) that caches must hear about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// An order, or its tracking link, changed.
    Order(i64),
    /// API tokens changed.
    Tokens,
    /// Notifications may have been missed: forget everything.
    Resync,
}

impl Signal {
    /// Parses a `kiln_changes` notification payload (`order:<id>:<node>` or
    /// `tokens:<node>`) into the signal and the name of the node that caused it.
    pub fn parse(payload: &str) -> Option<(Self, &str)> {
        let (kind, rest) = payload.split_once(':')?;
        match kind {
            "order" => {
                let (id, node) = rest.split_once(':')?;
                Some((Signal::Order(id.parse().ok()?), node))
            }
            "tokens" => Some((Signal::Tokens, rest)),
            _ => None,
        }
    }
}

/// Passes the changes other processes make to `apply` until `shutdown`. On PostgreSQL they
/// arrive as notifications from the triggers; on SQLite, orders only change in this
/// process, but the CLI may revoke a token from another one, so that is polled for.
pub async fn listen_for_changes(db: Db, apply: impl Fn(Signal) + Send + Sync, shutdown: CancellationToken) {
    let Some(node) = db.node().map(str::to_owned) else {
        return watch_revocations(&db, &apply, shutdown).await;
    };
    loop {
        let mut listener = match db.listen(CHANNEL).await {
            Some(Ok(listener)) => listener,
            None => return,
            Some(Err(e)) => {
                tracing::warn!(error = %e, "cannot listen for changes; retrying");
                tokio::select! {
                    () = shutdown.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        // Anything may have changed while we were not listening.
        apply(Signal::Resync);
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => return,
                r = listener.try_recv() => r,
            };
            match received {
                Ok(Some(n)) => match Signal::parse(n.payload()) {
                    // Our own changes updated our caches when they committed.
                    Some((_, from)) if from == node => {}
                    Some((signal, _)) => apply(signal),
                    None => tracing::warn!(payload = n.payload(), "unknown change notification"),
                },
                Ok(None) => {
                    tracing::warn!("change listener reconnected; caches cleared");
                    apply(Signal::Resync);
                }
                Err(e) => {
                    tracing::warn!(error = %e, "change listener failed; reconnecting");
                    break;
                }
            }
        }
    }
}

async fn watch_revocations(db: &Db, apply: &(impl Fn(Signal) + Send + Sync), shutdown: CancellationToken) {
    let mut seen = None;
    loop {
        match crate::store::tokens::revocation_mark(db).await {
            Ok(mark) => {
                if seen.is_some_and(|s| s != mark) {
                    apply(Signal::Tokens);
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

/// Per-order change counters that live watchers wait on. A watcher only learns *that* its
/// order changed and then reads the shared, cached rendering, so one change costs one render
/// per language however many watchers there are.
#[derive(Debug)]
pub struct Hub {
    orders: Mutex<HashMap<i64, watch::Sender<u64>>>,
    /// Counts every change to any order, for the shop's own live views (list, board, floor).
    any: watch::Sender<u64>,
}

impl Default for Hub {
    fn default() -> Self {
        Self { orders: Mutex::default(), any: watch::channel(0).0 }
    }
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

    /// How many order changes this node has heard of: equal counts mean nothing changed.
    pub fn changes(&self) -> u64 {
        *self.any.borrow()
    }

    /// Starts watching every order.
    pub fn subscribe_any(&self) -> watch::Receiver<u64> {
        self.any.subscribe()
    }

    /// Wakes the watchers of an order.
    pub fn notify(&self, order_id: i64) {
        self.any.send_modify(|n| *n += 1);
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
        self.any.send_modify(|n| *n += 1);
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
