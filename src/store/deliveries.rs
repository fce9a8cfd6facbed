//! The outbox as the worker sees it: claiming due jobs, expanding an event into one delivery
//! per message, recording every attempt, and the per-order delivery log. Every statement is
//! short; no transaction is ever held open across a send.

use sqlx::FromRow;

use super::{Backend, Db, Tx, on_read, on_tx};

/// A claimed job.
#[derive(Debug, Clone, FromRow)]
pub struct Job {
    /// Id; also the stable identity of the message it sends.
    pub id: i64,
    /// `notify_customer`, `publish_event`, `notify_staff` or `deliver`.
    pub kind: String,
    /// The order.
    pub order_id: Option<i64>,
    /// The event.
    pub event_id: Option<i64>,
    /// JSON: the rendered message for deliveries.
    pub payload: String,
    /// Channel of a delivery.
    pub channel: Option<String>,
    /// Recipient of a delivery (address, number, chat id or endpoint name).
    pub recipient: Option<String>,
    /// Attempts so far, this one included.
    pub attempts: i64,
    /// When the job was created (ms).
    pub created_at: i64,
}

/// A delivery to enqueue when expanding an event.
#[derive(Debug, Clone)]
pub struct NewDelivery {
    /// Channel.
    pub channel: String,
    /// Recipient.
    pub recipient: String,
    /// JSON message.
    pub payload: String,
    /// `None` to send; `Some(reason)` to record it as skipped (opted out, no channel).
    pub skipped: Option<String>,
}

/// Claims up to `limit` due jobs (and jobs whose worker's lease ran out) for `lease_ms`.
///
/// A delivery is only claimed at the head of its line: while an earlier message of the same
/// order to the same channel and recipient is pending, retrying or being sent — or an earlier
/// event of the order is still to be expanded into its messages — it waits, so a customer
/// receives an order's messages in the order its events happened. Dead and sent ones no
/// longer block; other orders keep flowing.
pub async fn claim(db: &Db, now_ms: i64, lease_ms: i64, limit: i64) -> Result<Vec<Job>, sqlx::Error> {
    let lock = if db.backend() == Backend::Postgres { " FOR UPDATE OF o SKIP LOCKED" } else { "" };
    // Two statements rather than one OR, so that each reads its partial index in order and
    // stops at the limit (an OR became a bitmap scan over every entry, dead ones included).
    let pick = [
        // Lapsed leases first: normally none, and a backlog must not starve a crashed job.
        ("o.status = 'running' AND o.locked_until <= $1", "o.locked_until, o.id"),
        ("o.status IN ('pending', 'retrying') AND o.run_at <= $1", "o.run_at, o.id"),
    ];
    let mut tx = db.begin().await?;
    let mut jobs: Vec<Job> = Vec::new();
    for (filter, order) in pick {
        let left = limit - i64::try_from(jobs.len()).unwrap_or(i64::MAX);
        if left <= 0 {
            break;
        }
        let sql = format!(
            "UPDATE outbox SET status = 'running', attempts = attempts + 1, locked_until = $2, updated_at = $1 \
             WHERE id IN (SELECT o.id FROM outbox o WHERE {filter} AND {HEAD_OF_LINE} ORDER BY {order} LIMIT $3{lock}) \
             RETURNING id, kind, order_id, event_id, payload, channel, recipient, attempts, created_at"
        );
        let found: Vec<Job> = on_tx!(&mut tx, |conn| {
            sqlx::query_as(sqlx::AssertSqlSafe(sql))
                .bind(now_ms)
                .bind(now_ms + lease_ms)
                .bind(left)
                .fetch_all(conn)
                .await
        })?;
        jobs.extend(found);
    }
    tx.commit().await?;
    jobs.sort_by_key(|j| j.id);
    Ok(jobs)
}

/// No earlier open job stands before delivery `o` in its line (see [`claim`]).
const HEAD_OF_LINE: &str = "(o.kind <> 'deliver' OR NOT EXISTS (SELECT 1 FROM outbox e \
    WHERE e.order_id = o.order_id AND e.status IN ('pending', 'retrying', 'running') AND e.id <> o.id \
    AND ((e.kind <> 'deliver' AND e.event_id < o.event_id) \
      OR (e.kind = 'deliver' AND e.channel = o.channel AND e.recipient = o.recipient \
          AND (e.event_id < o.event_id OR (e.event_id = o.event_id AND e.id < o.id))))))";

/// Extends the lease of jobs this worker still holds (claimed as `(id, attempts)`) to
/// `until_ms`; returns the ids it still holds. A job missing from the answer was taken over.
pub async fn renew(db: &Db, held: &[(i64, i64)], now_ms: i64, until_ms: i64) -> Result<Vec<i64>, sqlx::Error> {
    const SQL: &str = "UPDATE outbox SET locked_until = $1, updated_at = $2 \
        WHERE id = $3 AND attempts = $4 AND status = 'running' RETURNING id";
    let mut tx = db.begin().await?;
    let mut kept = Vec::with_capacity(held.len());
    for &(id, attempts) in held {
        let found: Option<i64> = on_tx!(&mut tx, |conn| {
            sqlx::query_scalar(SQL).bind(until_ms).bind(now_ms).bind(id).bind(attempts).fetch_optional(conn).await
        })?;
        kept.extend(found);
    }
    tx.commit().await?;
    Ok(kept)
}

/// How an attempt ended, as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Delivered (or expanded).
    Sent,
    /// Will be tried again at `run_at`.
    Retrying,
    /// Given up.
    Dead,
    /// Not sent on purpose (the customer opted out after it was queued).
    Skipped,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Sent => "sent",
            Status::Retrying => "retrying",
            Status::Dead => "dead",
            Status::Skipped => "skipped",
        }
    }
}

/// What handling a claimed job came to, written together with the rest of its batch.
#[derive(Debug, Clone)]
pub enum Settle {
    /// One attempt of a job and the job's new state.
    Attempt {
        /// The job as claimed.
        job: Job,
        /// Its new state.
        status: Status,
        /// Next attempt (ms), for a retry.
        run_at_ms: i64,
        /// Provider response, error or reason.
        detail: String,
    },
    /// An event job replaced by its deliveries: the deliveries are inserted and the event job
    /// marked done together, so a crash expands it again or not at all.
    Expand {
        /// The event job as claimed.
        job: Job,
        /// One per message.
        deliveries: Vec<NewDelivery>,
    },
}

impl Settle {
    /// The job this is the result of.
    pub fn job(&self) -> &Job {
        match self {
            Settle::Attempt { job, .. } | Settle::Expand { job, .. } => job,
        }
    }
}

/// Writes a batch of results in one transaction (one commit for the batch instead of one per
/// message); if that fails, each is written alone so that one bad result cannot hold back the
/// rest. Results whose job's lease was lost (another worker took it over) write nothing.
/// Returns how many were written.
pub async fn settle(db: &Db, batch: &[Settle], now_ms: i64) -> Result<usize, sqlx::Error> {
    match settle_in_one(db, batch, now_ms).await {
        Ok(n) => Ok(n),
        Err(e) if batch.len() > 1 => {
            tracing::warn!(error = %e, "cannot record a batch of outbox results; recording them one by one");
            let mut written = 0;
            let mut failed = None;
            for one in batch {
                match settle_in_one(db, std::slice::from_ref(one), now_ms).await {
                    Ok(n) => written += n,
                    Err(e) => failed = Some(e),
                }
            }
            failed.map_or(Ok(written), Err)
        }
        Err(e) => Err(e),
    }
}

async fn settle_in_one(db: &Db, batch: &[Settle], now_ms: i64) -> Result<usize, sqlx::Error> {
    let mut tx = db.begin().await?;
    let mut written = 0;
    for one in batch {
        let done = match one {
            Settle::Attempt { job, status, run_at_ms, detail } => {
                record_in(&mut tx, job, *status, *run_at_ms, detail, now_ms).await?
            }
            Settle::Expand { job, deliveries } => expand_in(&mut tx, job, deliveries, now_ms).await?,
        };
        written += usize::from(done);
    }
    tx.commit().await?;
    Ok(written)
}

async fn record_in(
    tx: &mut Tx,
    job: &Job,
    status: Status,
    run_at_ms: i64,
    detail: &str,
    now_ms: i64,
) -> Result<bool, sqlx::Error> {
    const UPDATE: &str = "UPDATE outbox SET status = $1, run_at = $2, last_error = $3, sent_at = $4, \
        locked_until = NULL, updated_at = $5 WHERE id = $6 AND status = 'running' AND attempts = $7";
    const ATTEMPT: &str =
        "INSERT INTO outbox_attempts (job_id, attempt, at, outcome, detail) VALUES ($1, $2, $3, $4, $5)";
    let error = (status != Status::Sent).then_some(detail);
    let sent_at = (status == Status::Sent).then_some(now_ms);
    let detail: String = detail.chars().take(2000).collect();
    let done = on_tx!(tx, |conn| {
        sqlx::query(UPDATE)
            .bind(status.as_str())
            .bind(run_at_ms)
            .bind(error)
            .bind(sent_at)
            .bind(now_ms)
            .bind(job.id)
            .bind(job.attempts)
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    if done == 0 {
        return Ok(false);
    }
    on_tx!(tx, |conn| {
        sqlx::query(ATTEMPT)
            .bind(job.id)
            .bind(job.attempts)
            .bind(now_ms)
            .bind(status.as_str())
            .bind(detail.as_str())
            .execute(&mut *conn)
            .await
            .map(|r| r.rows_affected())
    })?;
    Ok(true)
}

async fn expand_in(tx: &mut Tx, parent: &Job, deliveries: &[NewDelivery], now_ms: i64) -> Result<bool, sqlx::Error> {
    const INSERT: &str = "INSERT INTO outbox (kind, order_id, event_id, payload, status, attempts, run_at, \
        last_error, created_at, updated_at, channel, recipient, parent_id) \
        VALUES ('deliver', $1, $2, $3, $4, 0, $5, $6, $5, $5, $7, $8, $9)";
    let summary = format!("{} message(s)", deliveries.len());
    if !record_in(tx, parent, Status::Sent, now_ms, &summary, now_ms).await? {
        return Ok(false);
    }
    for d in deliveries {
        let status = if d.skipped.is_some() { "skipped" } else { "pending" };
        on_tx!(&mut *tx, |conn| {
            sqlx::query(INSERT)
                .bind(parent.order_id)
                .bind(parent.event_id)
                .bind(d.payload.as_str())
                .bind(status)
                .bind(now_ms)
                .bind(d.skipped.as_deref())
                .bind(d.channel.as_str())
                .bind(d.recipient.as_str())
                .bind(parent.id)
                .execute(&mut *conn)
                .await
                .map(|r| r.rows_affected())
        })?;
    }
    Ok(true)
}

/// One message in the delivery log.
#[derive(Debug, Clone, FromRow)]
pub struct Message {
    /// Id.
    pub id: i64,
    /// The event it is about.
    pub event_id: Option<i64>,
    /// Channel.
    pub channel: Option<String>,
    /// Recipient.
    pub recipient: Option<String>,
    /// pending (queued), running, sent, retrying, dead or skipped.
    pub status: String,
    /// Attempts in the current cycle.
    pub attempts: i64,
    /// Next attempt (ms), for queued and retrying messages.
    pub run_at: i64,
    /// Last error or skip reason.
    pub last_error: Option<String>,
    /// When it was accepted (ms).
    pub sent_at: Option<i64>,
    /// When it was queued (ms).
    pub created_at: i64,
}

/// One attempt in the delivery log.
#[derive(Debug, Clone, FromRow)]
pub struct Attempt {
    /// The message.
    pub job_id: i64,
    /// Attempt number.
    pub attempt: i64,
    /// When (ms).
    pub at: i64,
    /// sent, retrying or dead.
    pub outcome: String,
    /// Provider response or error.
    pub detail: String,
}

/// An order's messages, oldest first, with their attempts.
pub async fn for_order(db: &Db, order_id: i64) -> Result<(Vec<Message>, Vec<Attempt>), sqlx::Error> {
    const MESSAGES: &str = "SELECT id, event_id, channel, recipient, status, attempts, run_at, last_error, sent_at, \
        created_at FROM outbox WHERE order_id = $1 AND kind = 'deliver' ORDER BY id";
    const ATTEMPTS: &str = "SELECT a.job_id, a.attempt, a.at, a.outcome, a.detail FROM outbox_attempts a \
        JOIN outbox o ON o.id = a.job_id WHERE o.order_id = $1 AND o.kind = 'deliver' ORDER BY a.id";
    let messages = on_read!(db, |conn| sqlx::query_as(MESSAGES).bind(order_id).fetch_all(conn).await)?;
    let attempts = on_read!(db, |conn| sqlx::query_as(ATTEMPTS).bind(order_id).fetch_all(conn).await)?;
    Ok((messages, attempts))
}

/// Puts a dead message back in the queue for a fresh round of attempts; returns its order id,
/// or `None` if there is no dead message with this id.
pub async fn retry(db: &Db, id: i64, now_ms: i64) -> Result<Option<i64>, sqlx::Error> {
    const SQL: &str = "UPDATE outbox SET status = 'pending', attempts = 0, run_at = $1, updated_at = $1 \
        WHERE id = $2 AND kind = 'deliver' AND status = 'dead' RETURNING order_id";
    let mut tx = db.begin().await?;
    let order: Option<Option<i64>> =
        on_tx!(&mut tx, |conn| sqlx::query_scalar(SQL).bind(now_ms).bind(id).fetch_optional(conn).await)?;
    tx.commit().await?;
    Ok(order.flatten())
}

/// Records an opt-out (`order:<id>` or `address:<email or phone>`); repeating it is harmless.
pub async fn opt_out(db: &Db, scope: &str, now_ms: i64) -> Result<(), sqlx::Error> {
    const SQL: &str = "INSERT INTO opt_outs (scope, created_at) VALUES ($1, $2) ON CONFLICT (scope) DO NOTHING";
    let mut tx = db.begin().await?;
    on_tx!(&mut tx, |conn| sqlx::query(SQL).bind(scope).bind(now_ms).execute(conn).await.map(|r| r.rows_affected()))?;
    tx.commit().await
}

/// Which of `scopes` have opted out (one query).
pub async fn opted_out(db: &Db, scopes: &[String]) -> Result<Vec<String>, sqlx::Error> {
    if scopes.is_empty() {
        return Ok(Vec::new());
    }
    let marks: Vec<String> = (1..=scopes.len()).map(|i| format!("${i}")).collect();
    let sql = format!("SELECT scope FROM opt_outs WHERE scope IN ({})", marks.join(", "));
    on_read!(db, |conn| {
        let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql));
        for scope in scopes {
            query = query.bind(scope.as_str());
        }
        query.fetch_all(conn).await
    })
}

/// Counts outbox rows by status, e.g. for tests and benchmarks.
pub async fn count_status(db: &Db, kind: &str, status: &str) -> Result<i64, sqlx::Error> {
    const SQL: &str = "SELECT COUNT(*) FROM outbox WHERE kind = $1 AND status = $2";
    on_read!(db, |conn| sqlx::query_scalar(SQL).bind(kind).bind(status).fetch_one(conn).await)
}

/// Messages per channel and outcome, updated since a time: the settings page's delivery
/// health. Webhooks are counted per endpoint, as `webhook:NAME`.
pub async fn health(db: &Db, since_ms: i64) -> Result<Vec<(String, String, i64)>, sqlx::Error> {
    const SQL: &str = "SELECT CASE WHEN channel = 'webhook' THEN 'webhook:' || COALESCE(recipient, '') \
        ELSE COALESCE(channel, kind) END AS target, status, COUNT(*) FROM outbox \
        WHERE kind = 'deliver' AND updated_at >= $1 GROUP BY target, status ORDER BY 1, 2";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(since_ms).fetch_all(conn).await)
}

/// A message that will not be sent again unless someone retries it.
#[derive(Debug, Clone, FromRow)]
pub struct DeadMessage {
    /// Job id (what retry takes).
    pub id: i64,
    /// The order's reference, if about one.
    pub reference: Option<String>,
    /// Channel.
    pub channel: Option<String>,
    /// Recipient.
    pub recipient: Option<String>,
    /// Why it died.
    pub last_error: Option<String>,
    /// When it died (ms).
    pub updated_at: i64,
}

/// The newest dead messages.
pub async fn dead(db: &Db, limit: i64) -> Result<Vec<DeadMessage>, sqlx::Error> {
    const SQL: &str = "SELECT j.id, o.reference, j.channel, j.recipient, j.last_error, j.updated_at \
        FROM outbox j LEFT JOIN orders o ON o.id = j.order_id \
        WHERE j.kind = 'deliver' AND j.status = 'dead' ORDER BY j.id DESC LIMIT $1";
    on_read!(db, |conn| sqlx::query_as(SQL).bind(limit).fetch_all(conn).await)
}
