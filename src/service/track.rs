//! What a customer's tracking page shows, loaded once per change of the order and shared by
//! every request and live watcher until the next change.

use std::sync::Arc;

use super::{Service, ServiceError};
use crate::cache::Lookup;
use crate::crypto::token_hash;
use crate::domain::eta::Hold;
use crate::domain::model::{Event, LineItem, Order};
use crate::domain::order::Visibility;
use crate::domain::transition::EventKind;
use crate::store::photos::Photo;
use crate::store::{events, orders, photos, tracking};

/// An order as its customer sees it.
#[derive(Debug)]
pub struct TrackSnapshot {
    /// The order.
    pub order: Order,
    /// Its line items.
    pub items: Vec<LineItem>,
    /// Customer-visible events, oldest first.
    pub events: Vec<Event>,
    /// Holds since the order entered its current stage, and earlier ones that waited on the
    /// customer, for the ETA.
    pub holds: Vec<Hold>,
    /// Hash of the active tracking token.
    pub token_hash: String,
    /// Id of the newest customer-visible event (the live stream's position).
    pub last_event_id: i64,
    /// Customer-visible photos of customer-visible events: the only ones its URLs serve.
    pub photos: Vec<Photo>,
}

impl TrackSnapshot {
    /// A photo the customer may see, by id.
    pub fn photo(&self, id: i64) -> Option<&Photo> {
        self.photos.iter().find(|p| p.id == id)
    }
}

/// Tracking tokens kiln issues are base64url; anything else cannot be one, so it is
/// answered without touching the database.
fn plausible_token(token: &str) -> bool {
    (20..=64).contains(&token.len()) && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Hold periods since `since`, from the audit log (held/resumed events), and every earlier
/// one that waited on the customer: those move the promised date on.
pub fn holds_since(all_events: &[Event], since: chrono::DateTime<chrono::Utc>) -> Vec<Hold> {
    let mut holds: Vec<Hold> = Vec::new();
    for e in all_events {
        match e.kind {
            EventKind::Held => {
                holds.push(Hold { from: e.created_at, until: None, on_customer: e.customer_need().is_some() });
            }
            EventKind::Resumed => {
                if let Some(open) = holds.last_mut().filter(|h| h.until.is_none()) {
                    open.until = Some(e.created_at);
                }
            }
            _ => {}
        }
    }
    holds.retain(|h| h.on_customer || h.until.is_none_or(|u| u > since));
    holds
}

impl Service {
    /// The snapshot a tracking token opens, or `None` for an unknown or revoked token.
    pub async fn track_by_token(&self, token: &str) -> Result<Option<Arc<TrackSnapshot>>, ServiceError> {
        if !plausible_token(token) {
            return Ok(None);
        }
        let hash = token_hash(token);
        let caches = &self.inner.caches;
        let order_id = match caches.track_ids.get(&hash) {
            Lookup::Hit(id) => id,
            Lookup::Miss(ticket) => {
                let Some(id) = tracking::order_for_hash(self.db(), &hash).await? else {
                    return Ok(None);
                };
                caches.track_ids.fill(&hash, ticket, id);
                id
            }
        };
        // The id cache is never invalidated: the snapshot carries the active hash, so a
        // revoked or re-issued token stops matching as soon as the snapshot is reloaded.
        let snapshot = self.track_snapshot(order_id).await?;
        Ok(snapshot.filter(|s| crate::crypto::constant_time_eq(s.token_hash.as_bytes(), hash.as_bytes())))
    }

    /// The tracking snapshot of an order (cached until the order changes).
    pub async fn track_snapshot(&self, order_id: i64) -> Result<Option<Arc<TrackSnapshot>>, ServiceError> {
        let tracks = &self.inner.caches.tracks;
        if let Lookup::Hit(snapshot) = tracks.get(&order_id) {
            return Ok(Some(snapshot));
        }
        // One load per order at a time: after a move, thousands of live watchers wake at once,
        // and without this each would run its own queries and render its own copy. Everyone
        // who asks while a load runs gets its result, all woken together when it lands; an
        // invalidation forgets the load (`Service::on_signal`), so whoever asks after a change
        // never joins a load that began before it.
        let cell = { self.inner.caches.loads().entry(order_id).or_default().clone() };
        let loaded = cell.get_or_try_init(|| self.load_snapshot(order_id)).await.cloned();
        let mut loading = self.inner.caches.loads();
        if loading.get(&order_id).is_some_and(|c| Arc::ptr_eq(c, &cell)) {
            loading.remove(&order_id);
        }
        loaded
    }

    async fn load_snapshot(&self, order_id: i64) -> Result<Option<Arc<TrackSnapshot>>, ServiceError> {
        let tracks = &self.inner.caches.tracks;
        let ticket = match tracks.get(&order_id) {
            Lookup::Hit(snapshot) => return Ok(Some(snapshot)),
            Lookup::Miss(ticket) => ticket,
        };
        let Some(order) = orders::by_id(self.db(), order_id).await? else {
            return Ok(None);
        };
        let Some(token_hash) = tracking::active_hash(self.db(), order_id).await? else {
            return Ok(None);
        };
        let items = orders::items(self.db(), order_id).await?;
        let all = events::for_order(self.db(), order_id, false).await?;
        let holds = holds_since(&all, order.stage_entered_at);
        let events: Vec<Event> = all.into_iter().filter(|e| e.visibility == Visibility::Customer).collect();
        let last_event_id = events.last().map_or(0, |e| e.id);
        let shown: std::collections::HashSet<i64> = events.iter().flat_map(|e| e.photo_ids.iter().copied()).collect();
        let photos = if shown.is_empty() {
            Vec::new()
        } else {
            let all = photos::for_order(self.db(), order_id).await?;
            all.into_iter().filter(|p| p.visibility == Visibility::Customer && shown.contains(&p.id)).collect()
        };
        let snapshot = Arc::new(TrackSnapshot { order, items, events, holds, token_hash, last_event_id, photos });
        tracks.fill(&order_id, ticket, snapshot.clone());
        Ok(Some(snapshot))
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use serde_json::json;

    use super::*;
    use crate::domain::order::{Source, Visibility};

    fn event(kind: EventKind, hour: u32) -> Event {
        Event {
            id: i64::from(hour),
            order_id: 1,
            kind,
            from_stage: None,
            to_stage: None,
            actor: "a".to_owned(),
            source: Source::Ops,
            note: None,
            internal_note: None,
            visibility: Visibility::Customer,
            photo_ids: vec![],
            data: json!({}),
            created_at: Utc.with_ymd_and_hms(2026, 3, 1, hour, 0, 0).single().expect("time"),
        }
    }

    #[test]
    fn holds_are_paired_from_the_audit_log_and_old_ones_dropped() {
        let at = |h| Utc.with_ymd_and_hms(2026, 3, 1, h, 0, 0).single().expect("time");
        let on_customer = |mut e: Event| {
            e.data = json!({ "priority": "hold", "waits_on": "customer", "needs": "your logo" });
            e
        };
        let log = [
            event(EventKind::Held, 1),
            event(EventKind::Resumed, 2),
            on_customer(event(EventKind::Held, 2)),
            event(EventKind::Resumed, 3),
            event(EventKind::Moved, 3),
            event(EventKind::Held, 4),
            event(EventKind::Resumed, 5),
            event(EventKind::Held, 7),
        ];
        let holds = holds_since(&log, at(3));
        let hold = |from, until: Option<u32>, on_customer| Hold { from: at(from), until: until.map(at), on_customer };
        assert_eq!(
            holds,
            [hold(2, Some(3), true), hold(4, Some(5), false), hold(7, None, false)],
            "the customer's old hold stays: it moves the promised date"
        );
    }

    #[test]
    fn implausible_tokens_are_refused_without_a_lookup() {
        assert!(plausible_token("abcdefghijklmnopqrstuvwxyz_-0123"));
        assert!(!plausible_token("short"));
        assert!(!plausible_token("has spaces in it and is long enough"));
        assert!(!plausible_token(&"a".repeat(65)));
    }
}
