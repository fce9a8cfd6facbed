//! Live updates over Server-Sent Events at `/t/{token}/events`.
//!
//! Each watcher waits on its order's change counter in the [`Hub`](crate::live::Hub), then
//! sends the order's pre-encoded event (shared bytes, rendered once per language), so 10,000
//! watchers of one order cost one rendering per change. A reconnecting browser sends
//! `Last-Event-ID`; if it missed events it gets the current state at once.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::watch;

use super::guard::private_headers;
use super::{Peer, lookup, rendered, wanted_language};
use crate::crypto::constant_time_eq;
use crate::service::TrackSnapshot;
use crate::web::AppState;

/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(20);
/// Sent first: how long browsers wait before reconnecting.
const RETRY: &[u8] = b"retry: 3000\n\n";
/// Sent when the link is revoked; the page script then stops listening.
const GONE: &[u8] = b"event: gone\ndata: \n\n";
const PING: &[u8] = b": keep-alive\n\n";

struct Watch {
    state: AppState,
    token: String,
    /// The order and the hash of the token it was opened with, resolved once: a change wakes
    /// every watcher at once, and each should cost a cache lookup, not a token lookup.
    order_id: i64,
    token_hash: String,
    /// The snapshot behind `last_sent`.
    shown: Arc<TrackSnapshot>,
    wanted: Option<String>,
    changes: watch::Receiver<u64>,
    last_sent: Option<Bytes>,
    pending: Vec<Bytes>,
    keep_alive: tokio::time::Interval,
    done: bool,
}

impl Watch {
    /// The next chunk of the stream, or `None` when it ends.
    async fn next(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.pending.pop() {
            return Some(chunk);
        }
        if self.done {
            return None;
        }
        loop {
            tokio::select! {
                changed = self.changes.changed() => {
                    changed.ok()?;
                    if let Some(frame) = self.current_frame().await {
                        return Some(frame);
                    }
                }
                _ = self.keep_alive.tick() => return Some(Bytes::from_static(PING)),
            }
        }
    }

    /// The order's event now, unless it is what this watcher last got.
    async fn current_frame(&mut self) -> Option<Bytes> {
        let snapshot = match self.state.service.track_snapshot(self.order_id).await {
            // A revoked or re-issued link no longer matches the order's active hash.
            Ok(Some(s)) if constant_time_eq(s.token_hash.as_bytes(), self.token_hash.as_bytes()) => s,
            Ok(_) => {
                self.done = true;
                return Some(Bytes::from_static(GONE));
            }
            Err(e) => {
                tracing::warn!(error = %e, "live update lookup failed");
                return None;
            }
        };
        if Arc::ptr_eq(&snapshot, &self.shown) {
            return None;
        }
        let frame = match rendered(&self.state, &snapshot, &self.token, self.wanted.as_deref()) {
            Ok(r) => r.frame.clone(),
            Err(e) => {
                tracing::error!(error = %e, "live update failed to render");
                return None;
            }
        };
        self.shown = snapshot;
        if self.last_sent.as_ref() == Some(&frame) {
            return None;
        }
        self.last_sent = Some(frame.clone());
        Some(frame)
    }
}

fn last_seen(headers: &HeaderMap, query: Option<&str>) -> Option<i64> {
    let header = headers.get("last-event-id").and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    header.or_else(|| {
        url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
            .find(|(k, _)| k == "since")
            .and_then(|(_, v)| v.parse().ok())
    })
}

/// `GET /t/{token}/events`: the order's live stream.
pub async fn events(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let snapshot = match lookup(&state, peer, &headers, &token).await {
        Ok(snapshot) => snapshot,
        Err(refused) => return state.portal.refused(refused),
    };
    let wanted = wanted_language(query.as_deref());
    // Subscribe before reading the current state, so no change can slip in between.
    let changes = state.service.hub().subscribe(snapshot.order.id);
    let current = match rendered(&state, &snapshot, &token, wanted.as_deref()) {
        Ok(r) => r.frame.clone(),
        Err(e) => {
            tracing::error!(error = %e, "live stream failed to render");
            return StatusCode::INTERNAL_SERVER_ERROR.into_response();
        }
    };
    // Chunks are popped from the end: the retry hint goes out first.
    let mut pending = Vec::with_capacity(2);
    let missed = last_seen(&headers, query.as_deref()).is_none_or(|seen| seen < snapshot.last_event_id);
    if missed {
        pending.push(current.clone());
    }
    pending.push(Bytes::from_static(RETRY));
    let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
    keep_alive.reset();
    let watch = Watch {
        state,
        order_id: snapshot.order.id,
        token_hash: snapshot.token_hash.clone(),
        shown: snapshot,
        token,
        wanted,
        changes,
        last_sent: Some(current),
        pending,
        keep_alive,
        done: false,
    };
    let stream = futures::stream::unfold(watch, |mut w| async move {
        w.next().await.map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), w))
    });
    let mut res = Body::from_stream(stream).into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    private_headers(h, "no-cache, no-store");
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_seen_event_comes_from_the_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(last_seen(&headers, Some("since=7")), Some(7));
        headers.insert("last-event-id", HeaderValue::from_static("12"));
        assert_eq!(last_seen(&headers, Some("since=7")), Some(12), "the browser's reconnect header wins");
        assert_eq!(last_seen(&HeaderMap::new(), Some("lang=it")), None);
    }
}
