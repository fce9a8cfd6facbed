//! The application's use cases. Every change to an order goes through [`Service::change`]
//! (or [`Service::create_order`] for new ones): one transaction that writes the order, its
//! audit events and the outbox jobs they cause.

mod accounts;
mod approval;
mod change;
mod create;
mod create_batch;
mod error;
mod intake;
mod messages;
mod photos;
mod tokens;
mod track;
mod tracking;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

pub use accounts::{LoginFailure, NewUser, Staff, hash_password};
pub use approval::{Answered, ProofAnswer, REMINDER_ACTOR, customer};
pub use change::Applied;
pub use create::{Created, Idempotency, Linked, NewOrder, Rendered};
pub use error::{BoxError, ServiceError};
pub use photos::{MAX_PHOTOS, PhotoSize, Upload};
pub use tokens::{Scope, TOKEN_PREFIX, TokenInfo};
pub use track::TrackSnapshot;

pub use crate::live::Signal;

use crate::cache::{TtlCache, ViewCache};
use crate::config::Config;
use crate::crypto::Sealer;
use crate::domain::workflow::Workflows;
use crate::store::Db;

/// Shared handle to the database, workflows and configuration; cheap to clone.
#[derive(Clone, Debug)]
pub struct Service {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    db: Db,
    workflows: Workflows,
    config: Config,
    sealer: Sealer,
    caches: Caches,
    hub: crate::live::Hub,
    media: crate::media::Store,
    outbox: tokio::sync::Notify,
    /// Wakes the inbox applier when a delivery is recorded.
    inbox: tokio::sync::Notify,
    /// Bounds the bytes of uploads buffered at once, in KiB (see `web::multipart`).
    uploads: Arc<tokio::sync::Semaphore>,
    /// Bounds the photos decoded at once, so memory has a ceiling whatever clients send.
    decodes: tokio::sync::Semaphore,
}

/// What reads keep in memory. Every write through the service invalidates what it changed
/// right after commit; other nodes learn of changes through [`Signal`]s.
#[derive(Debug)]
struct Caches {
    /// Reference to order id (references never change).
    ids: ViewCache<String, i64>,
    /// Orders as last written or read, for the optimistic first attempt of a change (a stale
    /// entry only fails the version guard and falls back to a locked read).
    states: ViewCache<i64, Arc<crate::domain::model::Order>>,
    /// The API's JSON view of an order, by order id.
    order_json: ViewCache<i64, Bytes>,
    /// Authenticated tokens by hash.
    tokens: TtlCache<String, TokenInfo>,
    /// Tracking token hash to order id (checked against the snapshot's active hash).
    track_ids: ViewCache<String, i64>,
    /// What tracking pages show, by order id.
    tracks: ViewCache<i64, Arc<TrackSnapshot>>,
    /// Snapshot loads in progress, so that concurrent misses share one.
    loading: std::sync::Mutex<std::collections::HashMap<i64, Arc<SnapshotLoad>>>,
}

/// One load of an order's tracking snapshot, shared by everyone who asked while it ran.
type SnapshotLoad = tokio::sync::OnceCell<Option<Arc<TrackSnapshot>>>;

impl Caches {
    fn loads(&self) -> std::sync::MutexGuard<'_, std::collections::HashMap<i64, Arc<SnapshotLoad>>> {
        self.loading.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// The upload bytes all requests together may hold in memory while they are read and
/// processed: 256 MiB, in KiB (about seventeen maximal photos).
pub const UPLOAD_BUDGET_KIB: usize = 256 * 1024;

/// How many photos this machine decodes at once under the configured pixel limit.
fn decode_slots(config: &Config) -> usize {
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    config.media.limits().concurrent_decodes(crate::media::DECODE_BUDGET, cores)
}

impl Service {
    /// Builds the service over an open (and migrated) database.
    pub fn new(db: Db, workflows: Workflows, config: Config, sealer: Sealer, media: crate::media::Store) -> Self {
        let slots = decode_slots(&config);
        let caches = Caches {
            ids: ViewCache::new(100_000),
            states: ViewCache::new(100_000),
            order_json: ViewCache::new(20_000),
            tokens: TtlCache::new(Duration::from_secs(30), 10_000),
            track_ids: ViewCache::new(100_000),
            tracks: ViewCache::new(20_000),
            loading: std::sync::Mutex::default(),
        };
        Self {
            inner: Arc::new(Inner {
                db,
                workflows,
                config,
                sealer,
                caches,
                hub: crate::live::Hub::default(),
                media,
                outbox: tokio::sync::Notify::new(),
                inbox: tokio::sync::Notify::new(),
                decodes: tokio::sync::Semaphore::new(slots),
                uploads: Arc::new(tokio::sync::Semaphore::new(UPLOAD_BUDGET_KIB)),
            }),
        }
    }

    /// The database.
    pub fn db(&self) -> &Db {
        &self.inner.db
    }

    /// The workflows.
    pub fn workflows(&self) -> &Workflows {
        &self.inner.workflows
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Live watchers of orders.
    pub fn hub(&self) -> &crate::live::Hub {
        &self.inner.hub
    }

    /// Wakes the outbox worker of this node when a change enqueued jobs.
    pub fn outbox_signal(&self) -> &tokio::sync::Notify {
        &self.inner.outbox
    }

    /// The server-wide budget of buffered upload bytes (one permit per KiB).
    pub fn upload_budget(&self) -> &Arc<tokio::sync::Semaphore> {
        &self.inner.uploads
    }

    /// Notified when a webhook delivery is recorded, so the applier acts on it at once.
    pub fn inbox_signal(&self) -> &tokio::sync::Notify {
        &self.inner.inbox
    }

    /// The cached API view of orders, by id.
    pub fn order_json_cache(&self) -> &ViewCache<i64, Bytes> {
        &self.inner.caches.order_json
    }

    /// The id of the order with this reference, if any (cached: references never change).
    pub async fn order_id(&self, reference: &str) -> Result<Option<i64>, ServiceError> {
        let key = reference.to_owned();
        let ticket = match self.inner.caches.ids.get(&key) {
            crate::cache::Lookup::Hit(id) => return Ok(Some(id)),
            crate::cache::Lookup::Miss(ticket) => ticket,
        };
        let id = crate::store::orders::id_for_reference(self.db(), reference).await?;
        if let Some(id) = id {
            self.inner.caches.ids.fill(&key, ticket, id);
        }
        Ok(id)
    }

    /// The order as last committed through this node or read, for planning a change
    /// optimistically; the version guard of the write catches a stale one.
    async fn latest_order(&self, reference: &str) -> Result<Option<Arc<crate::domain::model::Order>>, ServiceError> {
        let Some(id) = self.order_id(reference).await? else {
            return Ok(None);
        };
        let states = &self.inner.caches.states;
        let ticket = match states.get(&id) {
            crate::cache::Lookup::Hit(order) => return Ok(Some(order)),
            crate::cache::Lookup::Miss(ticket) => ticket,
        };
        let order = crate::store::orders::by_id(self.db(), id).await?.map(Arc::new);
        if let Some(order) = &order {
            states.fill(&id, ticket, order.clone());
        }
        Ok(order)
    }

    /// Updates this node's caches after committing a change to `order`.
    fn committed(&self, order: &crate::domain::model::Order) {
        self.on_signal(Signal::Order(order.id));
        self.inner.outbox.notify_one();
        let version = order.version;
        self.inner.caches.states.put(&order.id, Arc::new(order.clone()), |cached| cached.version < version);
    }

    /// Applies a change signal to the caches.
    pub fn on_signal(&self, signal: Signal) {
        let caches = &self.inner.caches;
        match signal {
            Signal::Order(id) => {
                caches.states.invalidate(&id);
                caches.order_json.invalidate(&id);
                caches.tracks.invalidate(&id);
                caches.loads().remove(&id);
                self.inner.hub.notify(id);
            }
            Signal::Tokens => caches.tokens.clear(),
            Signal::Resync => {
                caches.states.clear();
                caches.order_json.clear();
                caches.tracks.clear();
                caches.loads().clear();
                self.inner.hub.notify_all();
                caches.tokens.clear();
            }
        }
    }
}
