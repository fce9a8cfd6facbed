//! Leases on claimed outbox jobs. While this worker holds a job — sending it, or waiting to
//! record the result — a keeper renews its lease every third of the lease, so no other worker
//! can claim it; if renewal fails (the database is unreachable), work on the job stops before
//! the lease it still has runs out, and the job is abandoned rather than sent twice at once.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::store::deliveries::{self, Job};
use crate::store::{Db, now_ms};

/// The leases of one claimed batch.
#[derive(Debug)]
pub struct Leases {
    db: Db,
    lease: Duration,
    /// Work stops this long before the lease ends: room for clocks and the last write.
    margin_ms: i64,
    /// When the batch's lease ends (ms), as of the last renewal this worker saw succeed.
    until_ms: AtomicI64,
    /// Jobs still held, as claimed: id → attempts.
    held: Mutex<HashMap<i64, i64>>,
}

impl Leases {
    /// The leases of `jobs`, claimed at `claimed_at_ms` for `lease`.
    pub fn new(db: Db, lease: Duration, claimed_at_ms: i64, jobs: &[Job]) -> Self {
        let lease_ms = millis(lease);
        Self {
            db,
            lease,
            margin_ms: (lease_ms / 5).min(5_000),
            until_ms: AtomicI64::new(claimed_at_ms.saturating_add(lease_ms)),
            held: Mutex::new(jobs.iter().map(|j| (j.id, j.attempts)).collect()),
        }
    }

    /// When work on job `id` must have stopped (ms), or `None` if another worker took it over.
    pub fn deadline(&self, id: i64) -> Option<i64> {
        let held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        held.contains_key(&id).then(|| self.until_ms.load(Ordering::Acquire) - self.margin_ms)
    }

    /// Stops renewing jobs whose results are recorded.
    pub fn release(&self, ids: impl IntoIterator<Item = i64>) {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for id in ids {
            held.remove(&id);
        }
    }

    /// Renews the held jobs' lease every third of it until `stop` is cancelled.
    pub async fn keep(&self, stop: CancellationToken) {
        let period = self.lease / 3;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(period) => {}
            }
            let held: Vec<(i64, i64)> = {
                let held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                held.iter().map(|(id, attempts)| (*id, *attempts)).collect()
            };
            if held.is_empty() {
                continue;
            }
            let now = now_ms();
            let until = now.saturating_add(millis(self.lease));
            // A renewal that cannot finish within a third of the lease is as good as failed.
            match tokio::time::timeout(period, deliveries::renew(&self.db, &held, now, until)).await {
                Ok(Ok(kept)) => {
                    let mut map = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                    let lost: Vec<i64> = held.iter().map(|(id, _)| *id).filter(|id| !kept.contains(id)).collect();
                    for id in &lost {
                        map.remove(id);
                    }
                    if !lost.is_empty() {
                        tracing::warn!(?lost, "outbox jobs were taken over by another worker");
                    }
                    self.until_ms.fetch_max(until, Ordering::AcqRel);
                }
                Ok(Err(e)) => tracing::warn!(error = %e, jobs = held.len(), "cannot renew outbox leases"),
                Err(_) => tracing::warn!(jobs = held.len(), "renewing outbox leases timed out"),
            }
        }
    }
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX / 4)
}
