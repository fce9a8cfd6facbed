//! The tracking page's forms: approving a proof or asking for changes
//! (`POST /t/{token}/answer`) and asking the shop a question (`POST /t/{token}/ask`).
//!
//! Both work without JavaScript and are protected against cross-site forgery by a token bound
//! to the tracking token (and, for answers, to the proof round shown). A successful answer
//! redirects back to the page (303), which then shows what happened; anything refused gets
//! a page in the customer's language saying why, with a way back.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use governor::{DefaultKeyedRateLimiter, Quota};

use super::render::{ASK_CONTEXT, MAX_QUESTION, Message};
use super::{Peer, lookup};
use crate::domain::approval::{plain_text, round_context};
use crate::i18n::Bundle;
use crate::service::{Answered, ProofAnswer, TrackSnapshot};
use crate::web::AppState;

/// Questions one page may send per hour, and one address (several orders) may.
const QUESTIONS_PER_TOKEN_HOUR: u32 = 3;
const QUESTIONS_PER_ADDRESS_HOUR: u32 = 10;

/// Rate limits of the question form, per tracking token and per client address.
pub struct AskLimits {
    per_token: DefaultKeyedRateLimiter<String>,
    per_address: DefaultKeyedRateLimiter<IpAddr>,
}

impl std::fmt::Debug for AskLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AskLimits(..)")
    }
}

impl Default for AskLimits {
    fn default() -> Self {
        let quota = |n: u32| {
            let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
            Quota::per_hour(n).allow_burst(n)
        };
        Self {
            per_token: DefaultKeyedRateLimiter::keyed(quota(QUESTIONS_PER_TOKEN_HOUR)),
            per_address: DefaultKeyedRateLimiter::keyed(quota(QUESTIONS_PER_ADDRESS_HOUR)),
        }
    }
}

impl AskLimits {
    /// Whether one more question from this page and address may be sent now.
    fn allow(&self, token_hash: &str, client: IpAddr) -> bool {
        if self.per_token.len() > 50_000 {
            self.per_token.retain_recent();
            self.per_address.retain_recent();
        }
        // Both budgets are spent only when both allow it.
        self.per_address.check_key(&client).is_ok() && self.per_token.check_key(&token_hash.to_owned()).is_ok()
    }
}

fn field(body: &[u8], name: &str) -> Option<String> {
    url::form_urlencoded::parse(body).find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A message page in the customer's language with a link back to their page.
fn message(
    state: &AppState,
    t: &Bundle,
    status: StatusCode,
    token: &str,
    text: String,
    quote: Option<String>,
) -> Response {
    let title = match status {
        StatusCode::OK => t.t("track.ask_sent_title").to_owned(),
        StatusCode::TOO_MANY_REQUESTS => t.t("track.too_many_title").to_owned(),
        _ => t.t("track.approval").to_owned(),
    };
    let msg =
        Message { title, text, quote, extra: None, back: Some((format!("/t/{token}"), t.t("track.back").to_owned())) };
    match state.portal.renderer.message_page(t, &msg) {
        Ok(html) => state.portal.html(status, html),
        Err(e) => {
            tracing::error!(error = %e, "cannot render a message page");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Back to the page, at the part that changed: `303 See Other`, so a reload does not resubmit.
fn see_page(token: &str, anchor: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(location) = HeaderValue::from_str(&format!("/t/{token}#{anchor}")) {
        res.headers_mut().insert(header::LOCATION, location);
    }
    super::guard::private_headers(res.headers_mut(), super::PRIVATE);
    res
}

fn strings(state: &AppState, snapshot: &TrackSnapshot) -> Arc<Bundle> {
    state.portal.renderer.strings(snapshot.order.customer.language.as_str())
}

/// `POST /t/{token}/answer`: `answer` is `approve` or `changes` (with a `comment`), for the
/// proof `round` of approval `stage`, carrying the page's `form` token.
pub async fn answer(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let snapshot = match lookup(&state, peer, &headers, &token).await {
        Ok(s) => s,
        Err(refused) => return state.portal.refused(refused),
    };
    let t = strings(&state, &snapshot);
    let refuse = |status, key: &str| message(&state, &t, status, &token, t.t(key).to_owned(), None);
    let stage = field(&body, "stage").unwrap_or_default();
    let round = field(&body, "round").and_then(|r| r.parse::<u32>().ok());
    let form = field(&body, "form").unwrap_or_default();
    let signed =
        |round: &u32| state.service.form_token_is_valid(&snapshot.token_hash, &round_context(&stage, *round), &form);
    let Some(round) = round.filter(signed) else {
        return refuse(StatusCode::FORBIDDEN, "track.answer_bad_form");
    };
    let answer = match field(&body, "answer").as_deref() {
        Some("approve") => ProofAnswer::Approve,
        Some("changes") => match field(&body, "comment").as_deref().and_then(plain_text) {
            Some(comment) if comment.chars().count() <= MAX_QUESTION => ProofAnswer::Changes(comment),
            Some(_) => {
                let text = t.fill("track.ask_too_long", &[("max", &MAX_QUESTION.to_string())]);
                return message(&state, &t, StatusCode::UNPROCESSABLE_ENTITY, &token, text, None);
            }
            None => return refuse(StatusCode::UNPROCESSABLE_ENTITY, "track.answer_comment"),
        },
        _ => return refuse(StatusCode::UNPROCESSABLE_ENTITY, "track.answer_bad_form"),
    };
    match state.service.answer_proof(&snapshot, &stage, round, &answer).await {
        Ok(Answered::Moved | Answered::Already(_)) => {
            tracing::info!(order = %snapshot.order.reference, round, approved = answer == ProofAnswer::Approve, "customer answered a proof");
            see_page(&token, "now")
        }
        Ok(Answered::Stale) => refuse(StatusCode::CONFLICT, "track.answer_stale"),
        Ok(Answered::NotAwaiting) => refuse(StatusCode::CONFLICT, "track.answer_not_awaiting"),
        Err(e) => {
            tracing::error!(error = %e.chain(), "cannot record a proof answer");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// `POST /t/{token}/ask`: a `question` for the shop, with the page's `form` token; `website`
/// is a field people never see, so a value there marks a bot.
pub async fn ask(
    State(state): State<AppState>,
    peer: Peer,
    headers: HeaderMap,
    Path(token): Path<String>,
    body: Bytes,
) -> Response {
    let snapshot = match lookup(&state, peer, &headers, &token).await {
        Ok(s) => s,
        Err(refused) => return state.portal.refused(refused),
    };
    let t = strings(&state, &snapshot);
    let shop = state.service.config().shop.name.clone();
    let form = field(&body, "form").unwrap_or_default();
    if !state.service.form_token_is_valid(&snapshot.token_hash, ASK_CONTEXT, &form) {
        return message(&state, &t, StatusCode::FORBIDDEN, &token, t.t("track.answer_bad_form").to_owned(), None);
    }
    let question = field(&body, "question").as_deref().and_then(plain_text);
    // A filled honeypot gets the same confirmation as a person, and nothing is recorded.
    if field(&body, "website").is_some_and(|v| !v.trim().is_empty()) {
        tracing::info!(order = %snapshot.order.reference, "question form honeypot filled; dropped");
        return message(
            &state,
            &t,
            StatusCode::OK,
            &token,
            t.fill("track.ask_sent_text", &[("shop", &shop)]),
            question,
        );
    }
    let Some(question) = question else {
        return message(&state, &t, StatusCode::UNPROCESSABLE_ENTITY, &token, t.t("track.ask_empty").to_owned(), None);
    };
    if question.chars().count() > MAX_QUESTION {
        let text = t.fill("track.ask_too_long", &[("max", &MAX_QUESTION.to_string())]);
        return message(&state, &t, StatusCode::UNPROCESSABLE_ENTITY, &token, text, None);
    }
    let client = state.portal.limiter.client(peer, &headers);
    if !state.portal.ask_limits.allow(&snapshot.token_hash, client) {
        return message(&state, &t, StatusCode::TOO_MANY_REQUESTS, &token, t.t("track.ask_too_many").to_owned(), None);
    }
    match state.service.ask(&snapshot, question.clone()).await {
        Ok(()) => message(
            &state,
            &t,
            StatusCode::OK,
            &token,
            t.fill("track.ask_sent_text", &[("shop", &shop)]),
            Some(question),
        ),
        Err(e) => {
            tracing::error!(error = %e.chain(), "cannot record a question");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}
