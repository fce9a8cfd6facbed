//! One order for the shop: everything about it, and the forms that change it.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use chrono::Utc;
use minijinja::{Value, context};
use serde::Serialize;

use super::orders::{action_value, lateness, parse_action};
use super::{FormFields, Operator, Reader, Session, back_to};
use crate::domain::change::{Change, Edits};
use crate::domain::model::Order;
use crate::domain::order::{CustomerNeed, Priority, Visibility};
use crate::domain::transition::{Action, Refusal, allowed_actions};
use crate::i18n::Bundle;
use crate::service::{PhotoSize, ServiceError};
use crate::store::orders::LateCutoffs;
use crate::store::{events, orders, photos};
use crate::view::thumb_srcset;
use crate::web::AppState;
use crate::web::error::ApiError;
use crate::web::multipart;

const MAX_NOTE: usize = 10_000;

#[derive(Debug, Serialize)]
struct Stop {
    label: String,
    state: &'static str,
    expected: Option<String>,
}

#[derive(Debug, Serialize)]
struct Entry {
    kind: &'static str,
    when: String,
    actor: String,
    source: &'static str,
    from: Option<String>,
    to: Option<String>,
    note: Option<String>,
    internal_note: Option<String>,
    internal: bool,
    /// What a hold waits for from the customer.
    needs: Option<String>,
    photos: Vec<Thumb>,
}

/// A thumbnail on the timeline, with its smaller rendition for sharp small slots.
#[derive(Debug, Serialize)]
struct Thumb {
    id: i64,
    srcset: String,
}

#[derive(Debug, Serialize)]
struct PhotoLine {
    id: i64,
    srcset: String,
    caption: String,
    internal: bool,
    width: u32,
    height: u32,
}

#[derive(Debug, Serialize)]
struct MessageLine {
    id: i64,
    channel: String,
    recipient: String,
    status: String,
    attempts: i64,
    when: String,
    error: Option<String>,
    dead: bool,
}

fn stage_label(state: &AppState, order: &Order, key: &str) -> String {
    state
        .service
        .workflows()
        .get(&order.workflow)
        .and_then(|w| w.stage(key))
        .map_or_else(|| key.to_owned(), |s| s.wording.label.clone())
}

async fn load(state: &AppState, reference: &str) -> Result<Option<Order>, sqlx::Error> {
    if reference.len() > 64 || reference.chars().any(char::is_control) {
        return Ok(None);
    }
    orders::by_reference(state.service.db(), reference).await
}

/// `GET /orders/{reference}`.
pub async fn show(
    State(state): State<AppState>,
    Reader(session): Reader,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    Path(reference): Path<String>,
) -> Response {
    let ops = &state.ops;
    let bundle = ops.renderer.bundle(&headers, query.as_deref());
    let order = match load(&state, &reference).await {
        Ok(Some(order)) => order,
        Ok(None) => return ops.renderer.error_with(&bundle, Some(&session), StatusCode::NOT_FOUND, "no_order"),
        Err(e) => return failed(&state, &bundle, &session, &e),
    };
    match render(&state, &bundle, &session, &order, query.as_deref()).await {
        Ok(res) => res,
        Err(e) => failed(&state, &bundle, &session, &e),
    }
}

fn failed(state: &AppState, bundle: &Bundle, session: &Session, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "order page failed");
    state.ops.renderer.error_with(bundle, Some(session), StatusCode::SERVICE_UNAVAILABLE, "unavailable")
}

async fn render(
    state: &AppState,
    bundle: &Bundle,
    session: &Session,
    order: &Order,
    query: Option<&str>,
) -> Result<Response, ServiceError> {
    let service = &state.service;
    let renderer = &state.ops.renderer;
    let db = service.db();
    let items = orders::items(db, order.id).await?;
    let all_events = events::for_order(db, order.id, false).await?;
    let order_photos = photos::for_order(db, order.id).await?;
    let (messages, _attempts) = service.messages(order.reference.as_str()).await?;
    let tracking_url = service.tracking_url(order.id).await?;
    let wf = service.workflows().get(&order.workflow);
    let position = wf.and_then(|w| w.position(&order.state.stage)).unwrap_or(0);
    let stops: Vec<Stop> = wf
        .map(|w| {
            w.stages
                .iter()
                .enumerate()
                .map(|(i, s)| Stop {
                    label: s.wording.label.clone(),
                    state: match i.cmp(&position) {
                        std::cmp::Ordering::Less => "done",
                        std::cmp::Ordering::Equal => "current",
                        std::cmp::Ordering::Greater => "ahead",
                    },
                    expected: s.expected.map(|d| bundle.duration(d)),
                })
                .collect()
        })
        .unwrap_or_default();
    let actions: Vec<(String, String, &'static str)> = wf
        .map(|w| {
            allowed_actions(w, &order.state)
                .into_iter()
                .map(|a| (action_value(a.action.as_str(), a.to.as_deref()), a.label, a.action.as_str()))
                .collect()
        })
        .unwrap_or_default();
    let photo_base = format!("/orders/{}/photos/", encode(order.reference.as_str()));
    let timeline: Vec<Entry> = all_events
        .iter()
        .rev()
        .map(|e| Entry {
            kind: e.kind.as_str(),
            when: renderer.when(bundle, e.created_at),
            actor: e.actor.clone(),
            source: e.source.as_str(),
            from: e.from_stage.as_deref().map(|k| stage_label(state, order, k)),
            to: e.to_stage.as_deref().map(|k| stage_label(state, order, k)),
            note: e.note.clone(),
            internal_note: e.internal_note.clone(),
            internal: e.visibility == Visibility::Internal,
            needs: e.customer_need().map(str::to_owned),
            photos: e
                .photo_ids
                .iter()
                .map(|id| Thumb {
                    id: *id,
                    srcset: order_photos
                        .iter()
                        .find(|p| p.id == *id)
                        .map(|p| thumb_srcset(&photo_base, p))
                        .unwrap_or_default(),
                })
                .collect(),
        })
        .collect();
    let photo_lines: Vec<PhotoLine> = order_photos
        .iter()
        .map(|p| PhotoLine {
            id: p.id,
            srcset: thumb_srcset(&photo_base, p),
            caption: p.caption.clone().unwrap_or_default(),
            internal: p.visibility == Visibility::Internal,
            width: p.thumb_size.0,
            height: p.thumb_size.1,
        })
        .collect();
    let message_lines: Vec<MessageLine> = messages
        .iter()
        .map(|m| MessageLine {
            id: m.id,
            channel: m.channel.clone().unwrap_or_else(|| "webhook".to_owned()),
            recipient: m.recipient.clone().unwrap_or_default(),
            status: m.status.clone(),
            attempts: m.attempts,
            when: renderer.when(bundle, crate::store::from_ms(m.sent_at.unwrap_or(m.created_at))),
            error: m.last_error.clone(),
            dead: m.status == "dead",
        })
        .collect();
    let now = Utc::now();
    let (late, due_past) = lateness(&LateCutoffs::at(service.workflows(), now), order);
    let notice = url::form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, v)| bundle.t(&format!("ops.done_{v}")).to_owned())
        .filter(|t| !t.starts_with("ops."));
    let customer = &order.customer;
    Ok(renderer.page(
        "detail.html",
        bundle,
        Some(session),
        StatusCode::OK,
        context! {
            nav => "orders",
            order => context! {
                reference => order.reference.as_str(),
                workflow => order.workflow.clone(),
                workflow_name => wf.map_or_else(|| order.workflow.clone(), |w| w.name.clone()),
                stage => order.state.stage.clone(),
                stage_label => stage_label(state, order, &order.state.stage),
                status => order.state.status.as_str(),
                priority => order.state.priority.as_str(),
                in_stage => super::render::span(bundle, now - order.stage_entered_at),
                late,
                due_past,
                due => order.due_date.map(|d| d.format("%Y-%m-%d").to_string()),
                created => renderer.when(bundle, order.created_at),
                notes => order.notes.clone(),
                customer_note => order.customer_note.clone(),
                version => order.version,
            },
            customer => context! {
                name => customer.name.clone(),
                email => customer.email.as_ref().map(|e| e.as_str().to_owned()),
                phone => customer.phone.as_ref().map(|p| p.as_str().to_owned()),
                telegram => customer.telegram_chat_id.clone(),
                channels => customer.channels.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
                language => customer.language.as_str(),
            },
            items => items.iter().map(|i| context! {
                description => i.description.clone(), variant => i.variant.clone(), quantity => i.quantity, material => i.material.clone(),
            }).collect::<Vec<_>>(),
            stops => Value::from(minijinja::value::Serde(&stops)),
            can_hold => actions.iter().any(|a| a.2 == "hold"),
            max_needs => CustomerNeed::MAX_CHARS,
            actions,
            timeline => Value::from(minijinja::value::Serde(&timeline)),
            photos => Value::from(minijinja::value::Serde(&photo_lines)),
            messages => Value::from(minijinja::value::Serde(&message_lines)),
            tracking_url,
            notice,
            priorities => Priority::ALL.iter().map(|p| p.as_str()).collect::<Vec<_>>(),
        },
    ))
}

/// The form fields of a move, read from a multipart or urlencoded body.
#[derive(Debug, Default)]
struct ActForm {
    op: Option<String>,
    expected_stage: Option<String>,
    note: Option<String>,
    internal_note: Option<String>,
    /// What a hold waits for from the customer.
    needs: Option<String>,
    back: Option<String>,
}

/// `POST /orders/{reference}/act`: a move, hold, resume or cancel, with an optional note for
/// the customer, an internal note and photos from the bench.
pub async fn act(
    State(state): State<AppState>,
    Operator(session): Operator,
    Path(reference): Path<String>,
    RawQuery(query): RawQuery,
    req: Request,
) -> Response {
    let ops = &state.ops;
    let bundle = ops.renderer.bundle(req.headers(), None);
    let page = format!("/orders/{}", encode(&reference));
    let (mut form, files) = match read_act(&state, req).await {
        Ok(read) => read,
        Err(e) => return problem_page(&state, &bundle, &session, &e, &page),
    };
    // Buttons on the board carry the stage their card showed in the query, as a form on a
    // card cannot have fields of its own inside the board's bulk form.
    if form.expected_stage.is_none() {
        form.expected_stage = url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
            .find(|(k, _)| k == "expected_stage")
            .map(|(_, v)| v.into_owned());
    }
    let back = form.back.clone();
    let Some(mut action) = form.op.as_deref().and_then(parse_action) else {
        let e = ApiError::invalid("op", bundle.t("ops.bulk_no_action"));
        return problem_page(&state, &bundle, &session, &e, &page);
    };
    // The one form offers every step; what it needs from the customer only makes sense on a hold.
    if let Some(raw) = form.needs.as_deref().filter(|n| !n.trim().is_empty()) {
        let Action::Hold { needs } = &mut action else {
            let e = ApiError::invalid("needs", bundle.t("ops.needs_only_hold"));
            return problem_page(&state, &bundle, &session, &e, &page);
        };
        match CustomerNeed::parse(raw) {
            Ok(parsed) => *needs = Some(parsed),
            Err(e) => return problem_page(&state, &bundle, &session, &ApiError::invalid("needs", e), &page),
        }
    }
    for (field, text) in [("note", &form.note), ("internal_note", &form.internal_note)] {
        if text.as_ref().is_some_and(|t| t.chars().count() > MAX_NOTE) {
            let e = ApiError::invalid(field, bundle.t("ops.note_too_long"));
            return problem_page(&state, &bundle, &session, &e, &page);
        }
    }
    let actor = session.actor();
    let mut photo_ids = Vec::new();
    if !files.is_empty() {
        let order_id = match state.service.order_id(&reference).await {
            Ok(Some(id)) => id,
            Ok(None) => return ops.renderer.error_with(&bundle, Some(&session), StatusCode::NOT_FOUND, "no_order"),
            Err(e) => return problem_page(&state, &bundle, &session, &ApiError::from(e), &page),
        };
        match state.service.store_photos(order_id, files, Visibility::Customer, None, &actor).await {
            Ok(ids) => photo_ids = ids,
            Err(e) => return problem_page(&state, &bundle, &session, &ApiError::from(e), &page),
        }
    }
    let change = Change::Act {
        action,
        expected_stage: form.expected_stage.filter(|s| !s.is_empty()),
        note: form.note.filter(|n| !n.trim().is_empty()),
        internal_note: form.internal_note.filter(|n| !n.trim().is_empty()),
        photo_ids,
    };
    match state.service.change(&reference, &change, &actor).await {
        Ok(_) => back_to(back.as_deref(), &format!("{page}?done=moved")),
        Err(ServiceError::Refused(Refusal::StaleStage { current, expected })) => {
            stale(&state, &bundle, &session, &reference, &expected, &current, &page).await
        }
        Err(e) => problem_page(&state, &bundle, &session, &ApiError::from(e), &page),
    }
}

/// The page for a move made from a stale page: what happened meanwhile, and nothing changed.
async fn stale(
    state: &AppState,
    bundle: &Bundle,
    session: &Session,
    reference: &str,
    expected: &str,
    current: &str,
    page: &str,
) -> Response {
    let order = load(state, reference).await.ok().flatten();
    let (from, to) = match &order {
        Some(o) => (stage_label(state, o, expected), stage_label(state, o, current)),
        None => (expected.to_owned(), current.to_owned()),
    };
    let last = match &order {
        Some(o) => events::for_order(state.service.db(), o.id, false).await.ok().and_then(|mut e| e.pop()),
        None => None,
    };
    let (who, when) =
        last.map_or((String::new(), String::new()), |e| (e.actor, state.ops.renderer.when(bundle, e.created_at)));
    let title = bundle.t("ops.stale_title").to_owned();
    let text = bundle.fill(
        "ops.stale_text",
        &[("reference", reference), ("from", &from), ("to", &to), ("who", &who), ("when", &when)],
    );
    state.ops.renderer.message(bundle, Some(session), StatusCode::CONFLICT, &title, &text, Some(page))
}

async fn read_act(state: &AppState, req: Request) -> Result<(ActForm, Vec<crate::service::Upload>), ApiError> {
    let mut out = ActForm::default();
    if multipart::is_multipart(&req) {
        let service = &state.service;
        let mut form = multipart::read(req, service.config().media.max_bytes, service.upload_budget()).await?;
        out.op = form.take("op")?;
        out.expected_stage = form.take("expected_stage")?;
        out.note = form.take("note")?;
        out.internal_note = form.take("internal_note")?;
        out.needs = form.take("needs")?;
        out.back = form.take("back")?;
        // A file input nobody used still sends an empty part.
        let files: Vec<_> = std::mem::take(&mut form.files).into_iter().filter(|f| !f.bytes.is_empty()).collect();
        return Ok((out, files));
    }
    let body = axum::body::to_bytes(req.into_body(), super::MAX_FORM)
        .await
        .map_err(|_| ApiError::bad_request("the form is too large"))?;
    for (k, v) in url::form_urlencoded::parse(&body) {
        let v = Some(v.into_owned());
        match k.as_ref() {
            "op" => out.op = v,
            "expected_stage" => out.expected_stage = v,
            "note" => out.note = v,
            "internal_note" => out.internal_note = v,
            "needs" => out.needs = v,
            "back" => out.back = v,
            _ => {}
        }
    }
    Ok((out, Vec::new()))
}

/// After an order form: back to the order with a notice, or the problem's page.
fn done(
    state: &AppState,
    bundle: &Bundle,
    session: &Session,
    result: Result<(), ServiceError>,
    page: &str,
    notice: &str,
) -> Response {
    match result {
        Ok(()) => Redirect::to(&format!("{page}?done={notice}")).into_response(),
        Err(e) => problem_page(state, bundle, session, &ApiError::from(e), page),
    }
}

fn problem_page(state: &AppState, bundle: &Bundle, session: &Session, e: &ApiError, back: &str) -> Response {
    if e.status().is_server_error() {
        tracing::error!(detail = %e.problem().detail, "dashboard action failed");
    }
    let problem = e.problem();
    let text = match &problem.field {
        Some(field) => format!("{field}: {}", problem.detail),
        None => problem.detail.clone(),
    };
    state.ops.renderer.message(bundle, Some(session), e.status(), &problem.title, &text, Some(back))
}

fn encode(reference: &str) -> String {
    url::form_urlencoded::byte_serialize(reference.as_bytes()).collect()
}

/// `POST /orders/{reference}/note`: a note on the timeline, internal or for the customer.
pub async fn note(
    State(state): State<AppState>,
    Operator(session): Operator,
    headers: HeaderMap,
    Path(reference): Path<String>,
    body: Bytes,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let page = format!("/orders/{}", encode(&reference));
    let f = FormFields::parse(&body);
    let text = f.text("body").unwrap_or("");
    if text.is_empty() || text.chars().count() > MAX_NOTE {
        let e = ApiError::invalid("body", bundle.t("ops.note_empty"));
        return problem_page(&state, &bundle, &session, &e, &page);
    }
    let visibility = match f.get("visibility") {
        Some("customer") => Visibility::Customer,
        _ => Visibility::Internal,
    };
    let notify = visibility == Visibility::Customer && f.get("notify").is_some();
    let change = Change::Note { body: text.to_owned(), visibility, notify };
    let result = state.service.change(&reference, &change, &session.actor()).await;
    done(&state, &bundle, &session, result.map(drop), &page, "noted")
}

/// `POST /orders/{reference}/edit`: priority and promised date.
pub async fn edit(
    State(state): State<AppState>,
    Operator(session): Operator,
    headers: HeaderMap,
    Path(reference): Path<String>,
    body: Bytes,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let page = format!("/orders/{}", encode(&reference));
    let f = FormFields::parse(&body);
    let mut edits = Edits::default();
    if let Some(p) = f.text("priority") {
        match Priority::parse(p) {
            Ok(p) => edits.priority = Some(p),
            Err(e) => return problem_page(&state, &bundle, &session, &ApiError::invalid("priority", e), &page),
        }
    }
    if let Some(due) = f.get("due_date") {
        let due = due.trim();
        edits.due_date = Some(if due.is_empty() {
            None
        } else {
            match crate::domain::order::parse_date(due) {
                Ok(d) => Some(d),
                Err(e) => return problem_page(&state, &bundle, &session, &ApiError::invalid("due_date", e), &page),
            }
        });
    }
    let result = state.service.change(&reference, &Change::Edit(edits), &session.actor()).await;
    done(&state, &bundle, &session, result.map(drop), &page, "edited")
}

/// `POST /orders/{reference}/link/revoke`.
pub async fn revoke_link(
    State(state): State<AppState>,
    Operator(session): Operator,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let page = format!("/orders/{}", encode(&reference));
    let result = state.service.revoke_tracking_link(&reference, &session.actor()).await;
    done(&state, &bundle, &session, result.map(drop), &page, "revoked")
}

/// `POST /orders/{reference}/link/reissue`: a new link; the old one stops working.
pub async fn reissue_link(
    State(state): State<AppState>,
    Operator(session): Operator,
    headers: HeaderMap,
    Path(reference): Path<String>,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let page = format!("/orders/{}", encode(&reference));
    let result = state.service.reissue_tracking_link(&reference, &session.actor()).await;
    done(&state, &bundle, &session, result.map(drop), &page, "reissued")
}

/// `POST /messages/{id}/retry`: sends a dead message again.
pub async fn retry_message(
    State(state): State<AppState>,
    Operator(session): Operator,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let f = FormFields::parse(&body);
    let back = f.get("back").filter(|b| super::is_local_path(b)).map(str::to_owned);
    let Ok(id) = id.parse::<i64>() else {
        return state.ops.renderer.error_with(&bundle, Some(&session), StatusCode::NOT_FOUND, "no_message");
    };
    match state.service.retry_message(id).await {
        Ok(true) => {
            if let Err(e) =
                state.service.audit_staff(&session.staff.email, "message.retried", &id.to_string(), "").await
            {
                tracing::warn!(error = %e.chain(), "cannot audit a retry");
            }
            back_to(back.as_deref(), "/settings")
        }
        Ok(false) => {
            let title = bundle.t("ops.retry_title").to_owned();
            let text = bundle.t("ops.retry_not_dead").to_owned();
            state.ops.renderer.message(&bundle, Some(&session), StatusCode::CONFLICT, &title, &text, back.as_deref())
        }
        Err(e) => problem_page(&state, &bundle, &session, &ApiError::from(e), back.as_deref().unwrap_or("/")),
    }
}

/// `GET /orders/{reference}/photos/{id}/{size}`: any photo of the order, internal ones too.
pub async fn photo(
    State(state): State<AppState>,
    Reader(_): Reader,
    Path((reference, id, size)): Path<(String, String, String)>,
) -> Response {
    let (Ok(id), Some(size)) = (id.parse::<i64>(), PhotoSize::parse(&size)) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let order_id = match state.service.order_id(&reference).await {
        Ok(Some(order_id)) => order_id,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    let photo = match state.service.photo(id).await {
        Ok(Some(p)) if p.order_id == order_id => p,
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    match state.service.photo_bytes(&photo, size).await {
        Ok(Some(bytes)) => {
            let mut res = bytes.into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("private, max-age=86400"));
            h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
            res
        }
        Ok(None) => StatusCode::NOT_FOUND.into_response(),
        Err(e) => {
            tracing::error!(error = %e.chain(), "cannot read a photo");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
    }
}
