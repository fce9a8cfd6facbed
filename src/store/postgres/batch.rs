//! Group commit for PostgreSQL: changes planned concurrently are written by a few batch
//! writers, each batch as ONE statement and one commit. Every change in a batch keeps its own
//! version guard and commits atomically with its events and outbox jobs; a change whose order
//! moved meanwhile is reported back as a conflict, as it would be on its own.
//!
//! Sharing a statement and a commit amortises PostgreSQL's per-statement and per-commit work,
//! which dominates on small machines (measurements in docs/benchmarks.md).

use std::sync::{Arc, LazyLock};

use tokio::sync::{Mutex, mpsc, oneshot};

use crate::domain::model::NewEvent;
use crate::store::changes::{PlannedWrite, WriteResult};
use crate::store::columns::{self, EVENT, ORDER_MUTABLE, ORDER_MUTABLE_TEXT, OUTBOX_INSERT};
use crate::store::orders::MutableColumns;

/// Most changes written in one statement.
const MAX_BATCH: usize = 64;
/// Batch writers. One: while a batch runs the next one gathers, and batches never wait on
/// each other's row locks (several writers measured no faster and can deadlock).
const WRITERS: usize = 1;

struct Pending {
    write: Arc<PlannedWrite>,
    reply: oneshot::Sender<WriteResult>,
}

/// Handle to the batch writers of one pool; cheap to clone.
#[derive(Debug, Clone)]
pub struct Batcher {
    queue: mpsc::Sender<Pending>,
}

impl Batcher {
    /// Starts the batch writers; they stop when every handle is dropped.
    pub fn start(pool: sqlx::PgPool) -> Self {
        let (queue, receiver) = mpsc::channel::<Pending>(MAX_BATCH * 16);
        let receiver = Arc::new(Mutex::new(receiver));
        for _ in 0..WRITERS {
            tokio::spawn(run_writer(pool.clone(), receiver.clone()));
        }
        Self { queue }
    }

    /// Writes a change as part of the next batch.
    pub async fn write(&self, write: Arc<PlannedWrite>) -> WriteResult {
        let (reply, answer) = oneshot::channel();
        self.queue.send(Pending { write, reply }).await.map_err(|_| sqlx::Error::PoolClosed)?;
        answer.await.map_err(|_| sqlx::Error::PoolClosed)?
    }
}

async fn run_writer(pool: sqlx::PgPool, receiver: Arc<Mutex<mpsc::Receiver<Pending>>>) {
    loop {
        let mut batch = Vec::with_capacity(MAX_BATCH);
        {
            let mut rx = receiver.lock().await;
            if rx.recv_many(&mut batch, MAX_BATCH).await == 0 {
                return;
            }
        }
        let writes: Vec<Arc<PlannedWrite>> = batch.iter().map(|p| p.write.clone()).collect();
        match write_batch(&pool, &writes).await {
            Ok(results) => {
                for (pending, result) in batch.into_iter().zip(results) {
                    let _ = pending.reply.send(Ok(result));
                }
            }
            // One bad change must not fail the others: write each on its own.
            Err(_) if batch.len() > 1 => {
                for pending in batch {
                    let result = write_batch(&pool, std::slice::from_ref(&pending.write)).await;
                    let _ = pending.reply.send(result.map(|mut r| r.pop().flatten()));
                }
            }
            Err(e) => {
                if let Some(pending) = batch.pop() {
                    let _ = pending.reply.send(Err(e));
                }
            }
        }
    }
}

async fn write_batch(pool: &sqlx::PgPool, writes: &[Arc<PlannedWrite>]) -> Result<Vec<Option<Vec<i64>>>, sqlx::Error> {
    let mut conn = pool.acquire().await?;
    write_all(&mut conn, writes).await
}

/// Parameters: `$1..$3` each change's position, order id and expected version; then one array
/// per mutable column; then one array per event column, led by the position of the event's
/// change and the event's own position; then the jobs' event positions and kinds.
static STATEMENT: LazyLock<String> = LazyLock::new(|| {
    let n = ORDER_MUTABLE.len();
    let input_types: Vec<String> = ORDER_MUTABLE
        .iter()
        .enumerate()
        .map(|(i, _)| format!("${}::{}[]", i + 4, if i >= ORDER_MUTABLE_TEXT { "bigint" } else { "text" }))
        .collect();
    let set: Vec<String> = ORDER_MUTABLE.iter().map(|c| format!("{c} = i.{c}")).collect();
    let e = n + 4; // first event parameter: the change's position, then the event's
    let event_inputs: Vec<String> = ["bigint", "bigint"]
        .into_iter()
        .chain(EVENT.iter().map(|(_, ty)| *ty))
        .enumerate()
        .map(|(i, ty)| format!("${}::{ty}[]", e + i))
        .collect();
    let j = e + 2 + EVENT.len(); // first job parameter
    let event_columns = columns::event_names();
    format!(
        "WITH input AS ( \
            SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], {inputs}) \
            AS i(ord, id, version, {columns}) \
        ), upd AS ( \
            UPDATE orders o SET {set}, version = o.version + 1 \
            FROM input i WHERE o.id = i.id AND o.version = i.version \
            RETURNING i.ord, o.id \
        ), ev_in AS ( \
            SELECT nextval(pg_get_serial_sequence('order_events', 'id')) AS id, upd.id AS order_id, e.* \
            FROM unnest({event_inputs}) AS e(move_ord, ev_ord, {event_columns}) \
            JOIN upd ON upd.ord = e.move_ord \
        ), ev AS ( \
            INSERT INTO order_events (id, order_id, {event_columns}) \
            SELECT id, order_id, {event_columns} FROM ev_in \
        ), jobs AS ( \
            INSERT INTO outbox ({OUTBOX_INSERT}) \
            SELECT {job} \
            FROM unnest(${j}::bigint[], ${j1}::text[]) AS j(ev_ord, kind) JOIN ev_in ON ev_in.ev_ord = j.ev_ord \
        ) \
        SELECT upd.ord, COALESCE((SELECT array_agg(ev_in.id ORDER BY ev_in.ev_ord) FROM ev_in \
                                  WHERE ev_in.move_ord = upd.ord), '{{}}') AS ids \
        FROM upd",
        inputs = input_types.join(", "),
        columns = ORDER_MUTABLE.join(", "),
        set = set.join(", "),
        event_inputs = event_inputs.join(", "),
        job = columns::outbox_values("j.kind", "ev_in.order_id", "ev_in.id", "ev_in.created_at"),
        j1 = j + 1,
    )
});

/// Writes several changes in one statement on `conn` (which may be inside a transaction).
pub async fn write_all(
    conn: &mut sqlx::PgConnection,
    writes: &[Arc<PlannedWrite>],
) -> Result<Vec<Option<Vec<i64>>>, sqlx::Error> {
    let n = writes.len();
    let mut ord: Vec<i64> = Vec::with_capacity(n);
    let mut ids: Vec<i64> = Vec::with_capacity(n);
    let mut versions: Vec<i64> = Vec::with_capacity(n);
    let mut text_cols: Vec<Vec<Option<String>>> = (0..ORDER_MUTABLE_TEXT).map(|_| Vec::with_capacity(n)).collect();
    let mut entered: Vec<i64> = Vec::with_capacity(n);
    let mut updated: Vec<i64> = Vec::with_capacity(n);
    let mut ev = EventColumns::default();
    let (mut job_ev, mut job_kind): (Vec<i64>, Vec<String>) = (Vec::new(), Vec::new());
    for (w, write) in (0_i64..).zip(writes) {
        let cols = MutableColumns::of(&write.order);
        ord.push(w);
        ids.push(write.order.id);
        versions.push(write.order.version);
        for (col, value) in text_cols.iter_mut().zip(cols.values()) {
            col.push(value.clone());
        }
        entered.push(cols.stage_entered_at());
        updated.push(cols.updated_at());
        let first_event = ev.len();
        for event in &write.events {
            ev.push(w, event, write.at_ms);
        }
        for job in &write.jobs {
            job_ev.push(i64::try_from(first_event + job.event).unwrap_or(i64::MAX));
            job_kind.push(job.kind.to_owned());
        }
    }
    let mut query = sqlx::query_as::<_, (i64, Vec<i64>)>(sqlx::AssertSqlSafe(STATEMENT.as_str()))
        .bind(ord)
        .bind(ids)
        .bind(versions);
    for col in text_cols {
        query = query.bind(col);
    }
    let rows = query
        .bind(entered)
        .bind(updated)
        .bind(ev.move_ord)
        .bind(ev.ev_ord)
        .bind(ev.kind)
        .bind(ev.from_stage)
        .bind(ev.to_stage)
        .bind(ev.actor)
        .bind(ev.source)
        .bind(ev.note)
        .bind(ev.internal_note)
        .bind(ev.visibility)
        .bind(ev.photo_ids)
        .bind(ev.data)
        .bind(ev.created_at)
        .bind(job_ev)
        .bind(job_kind)
        .fetch_all(&mut *conn)
        .await?;
    let mut results = vec![None; n];
    for (w, event_ids) in rows {
        if let Some(slot) = usize::try_from(w).ok().and_then(|w| results.get_mut(w)) {
            *slot = Some(event_ids);
        }
    }
    Ok(results)
}

#[derive(Default)]
struct EventColumns {
    move_ord: Vec<i64>,
    ev_ord: Vec<i64>,
    kind: Vec<String>,
    from_stage: Vec<Option<String>>,
    to_stage: Vec<Option<String>>,
    actor: Vec<String>,
    source: Vec<String>,
    note: Vec<Option<String>>,
    internal_note: Vec<Option<String>>,
    visibility: Vec<String>,
    photo_ids: Vec<String>,
    data: Vec<String>,
    created_at: Vec<i64>,
}

impl EventColumns {
    fn len(&self) -> usize {
        self.ev_ord.len()
    }

    fn push(&mut self, move_ord: i64, e: &NewEvent, at_ms: i64) {
        self.move_ord.push(move_ord);
        self.ev_ord.push(i64::try_from(self.len()).unwrap_or(i64::MAX));
        self.kind.push(e.kind.as_str().to_owned());
        self.from_stage.push(e.from_stage.clone());
        self.to_stage.push(e.to_stage.clone());
        self.actor.push(e.actor.clone());
        self.source.push(e.source.as_str().to_owned());
        self.note.push(e.note.clone());
        self.internal_note.push(e.internal_note.clone());
        self.visibility.push(e.visibility.as_str().to_owned());
        self.photo_ids.push(serde_json::Value::from(e.photo_ids.clone()).to_string());
        self.data.push(e.data.to_string());
        self.created_at.push(at_ms);
    }
}
