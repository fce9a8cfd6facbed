//! Live updates for the dashboard: a Server-Sent Events stream that says "something changed"
//! whenever any order changes (on this node, or on another through the database's change
//! notifications). Pages then fetch their own URL again and swap the changed part in place,
//! so selections, scroll position and half-typed notes survive.

use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use tokio::sync::watch;

use super::Reader;
use crate::web::AppState;

/// Changes closer together than this are sent as one.
const COALESCE: Duration = Duration::from_millis(250);
/// How often an idle stream sends a comment, so proxies keep it open.
const KEEP_ALIVE: Duration = Duration::from_secs(20);

/// A stream of `changed` events from a change counter; `still_valid` is asked before each
/// one, and the stream ends with a `gone` event when it says no.
pub fn stream<F, Fut>(mut changes: watch::Receiver<u64>, still_valid: F) -> Response
where
    F: Fn() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = bool> + Send,
{
    changes.mark_unchanged();
    let body = async_stream(move |tx| async move {
        if tx.send(Bytes::from_static(b"retry: 3000\n\n")).await.is_err() {
            return;
        }
        let mut keep_alive = tokio::time::interval(KEEP_ALIVE);
        keep_alive.tick().await;
        loop {
            let chunk = tokio::select! {
                changed = changes.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    tokio::time::sleep(COALESCE).await;
                    changes.mark_unchanged();
                    if !still_valid().await {
                        let _ = tx.send(Bytes::from_static(b"event: gone\ndata: \n\n")).await;
                        return;
                    }
                    Bytes::from(format!("event: changed\ndata: {}\n\n", *changes.borrow()))
                }
                _ = keep_alive.tick() => {
                    // A revoked link or ended session also ends a stream that sees no changes.
                    if !still_valid().await {
                        let _ = tx.send(Bytes::from_static(b"event: gone\ndata: \n\n")).await;
                        return;
                    }
                    Bytes::from_static(b": keep-alive\n\n")
                }
            };
            if tx.send(chunk).await.is_err() {
                return;
            }
        }
    });
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert("x-accel-buffering", HeaderValue::from_static("no"));
    res
}

/// A body fed by a task through a small channel; the task stops when the client goes away.
fn async_stream<F, Fut>(f: F) -> Body
where
    F: FnOnce(tokio::sync::mpsc::Sender<Bytes>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(f(tx));
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, std::convert::Infallible>(chunk), rx))
    });
    Body::from_stream(stream)
}

/// `GET /ops/events`: changes for the signed-in dashboard; ends when the session does.
pub async fn events(axum::extract::State(state): axum::extract::State<AppState>, Reader(session): Reader) -> Response {
    let changes = state.service.hub().subscribe_any();
    let service = state.service.clone();
    let user = session.staff.user_id;
    stream(changes, move || {
        let service = service.clone();
        async move {
            // A disabled member's open dashboards stop updating at the next change.
            service.user_by_id(user).await.is_ok_and(|u| u.is_some_and(|u| u.disabled_at.is_none()))
        }
    })
}
