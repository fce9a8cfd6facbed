//! The shop-floor display: a read-only, full-screen board for a TV, opened by its own
//! revocable link (no sign-in on the TV), live, rush orders first, late ones marked.

use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use minijinja::context;

use super::orders::columns;
use crate::web::AppState;

async fn display(state: &AppState, token: &str) -> Option<crate::store::accounts::DisplayRow> {
    if token.len() > 64 || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        return None;
    }
    match state.service.display_by_token(token).await {
        Ok(found) => found,
        Err(e) => {
            tracing::error!(error = %e.chain(), "display lookup failed");
            None
        }
    }
}

/// `GET /floor/{token}`.
pub async fn show(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(token): Path<String>,
) -> Response {
    let renderer = &state.ops.renderer;
    let bundle = renderer.bundle(&headers, query.as_deref());
    let Some(display) = display(&state, &token).await else {
        return renderer.error_with(&bundle, None, StatusCode::NOT_FOUND, "no_display");
    };
    let keys: Vec<String> = match &display.workflow {
        Some(wf) => vec![wf.clone()],
        None => state.service.workflows().keys().into_iter().map(str::to_owned).collect(),
    };
    let mut boards = Vec::new();
    for key in keys {
        match columns(&state.service, &state.ops.boards, &bundle, &key, false).await {
            Ok(Some(columns)) => {
                let name = state.service.workflows().get(&key).map(|w| w.name.clone()).unwrap_or_default();
                boards
                    .push(context! { key, name, columns => minijinja::Value::from(minijinja::value::Serde(&columns)) });
            }
            Ok(None) => {}
            Err(e) => {
                tracing::error!(error = %e, "display read failed");
                return renderer.error_with(&bundle, None, StatusCode::SERVICE_UNAVAILABLE, "unavailable");
            }
        }
    }
    let now = chrono::Utc::now().with_timezone(&renderer.tz);
    let mut res = renderer.page(
        "floor.html",
        &bundle,
        None,
        StatusCode::OK,
        context! {
            display => display.name,
            boards,
            events_url => format!("/floor/{token}/events"),
            updated => bundle.time(now),
        },
    );
    // The link is the key: keep it out of other sites' logs.
    res.headers_mut().insert(axum::http::header::REFERRER_POLICY, axum::http::HeaderValue::from_static("no-referrer"));
    res
}

/// `GET /floor/{token}/events`: changes, until the link is revoked.
pub async fn events(State(state): State<AppState>, Path(token): Path<String>) -> Response {
    if display(&state, &token).await.is_none() {
        return StatusCode::NOT_FOUND.into_response();
    }
    let changes = state.service.hub().subscribe_any();
    let state2 = state.clone();
    super::live::stream(changes, move || {
        let (state, token) = (state2.clone(), token.clone());
        async move { display(&state, &token).await.is_some() }
    })
}
