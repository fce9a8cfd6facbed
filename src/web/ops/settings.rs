//! Settings, for owners: workflows and templates as loaded, users, API tokens, display
//! links, channels with their delivery health, dead messages and the staff audit log.

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use minijinja::{Value, context};
use serde::Serialize;

use super::{FormFields, Owner, Session};
use crate::crypto::random_token;
use crate::domain::access::Role;
use crate::i18n::Bundle;
use crate::service::{NewUser, Scope, ServiceError};
use crate::store::deliveries;
use crate::web::AppState;
use crate::web::error::ApiError;

#[derive(Debug, Serialize)]
struct Channel {
    name: String,
    detail: String,
    counts: Vec<(String, i64)>,
}

/// `GET /settings`.
pub async fn show(
    State(state): State<AppState>,
    Owner(session): Owner,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, query.as_deref());
    match render(&state, &bundle, &session, None, StatusCode::OK).await {
        Ok(res) => res,
        Err(e) => {
            tracing::error!(error = %e.chain(), "settings page failed");
            state.ops.renderer.error_with(&bundle, Some(&session), StatusCode::SERVICE_UNAVAILABLE, "unavailable")
        }
    }
}

/// What a settings action wants shown once at the top of the page (a new password, a new
/// token: never stored in the clear, so this is the only time they can be shown).
#[derive(Debug, Serialize)]
struct Reveal {
    label: String,
    value: String,
}

async fn render(
    state: &AppState,
    bundle: &Bundle,
    session: &Session,
    reveal: Option<Reveal>,
    status: StatusCode,
) -> Result<Response, ServiceError> {
    let service = &state.service;
    let renderer = &state.ops.renderer;
    let config = service.config();
    let users: Vec<_> = service
        .users()
        .await?
        .into_iter()
        .map(|u| {
            context! {
                id => u.id, email => u.email, name => u.name, role => u.role,
                disabled => u.disabled_at.is_some(),
                created => renderer.when(bundle, crate::store::from_ms(u.created_at)),
                me => u.id == session.staff.user_id,
            }
        })
        .collect();
    let tokens: Vec<_> = service
        .list_tokens()
        .await?
        .into_iter()
        .map(|t| {
            context! {
                created => renderer.when(bundle, t.created()),
                id => t.id, name => t.name, scope => t.scope, prefix => t.prefix,
                revoked => t.revoked_at.is_some(),
            }
        })
        .collect();
    let displays: Vec<_> = service
        .displays()
        .await?
        .into_iter()
        .map(|(d, url)| {
            context! {
                id => d.id, name => d.name, workflow => d.workflow, url,
                created => renderer.when(bundle, crate::store::from_ms(d.created_at)),
                revoked => d.revoked_at.is_some(),
            }
        })
        .collect();
    let since = crate::store::now_ms() - 7 * 86_400_000;
    let health = deliveries::health(service.db(), since).await?;
    let counts = |name: &str| -> Vec<(String, i64)> {
        health.iter().filter(|(c, _, _)| c == name).map(|(_, s, n)| (s.clone(), *n)).collect()
    };
    let notify = &config.notify;
    let mut channels = Vec::new();
    if let Some(email) = &notify.email {
        channels.push(Channel {
            name: "email".into(),
            detail: email.port.map_or_else(|| email.host.clone(), |p| format!("{}:{p}", email.host)),
            counts: counts("email"),
        });
    }
    if notify.twilio.is_some() {
        channels.push(Channel { name: "sms".into(), detail: "Twilio".into(), counts: counts("sms") });
        channels.push(Channel { name: "whatsapp".into(), detail: "Twilio".into(), counts: counts("whatsapp") });
    }
    if notify.telegram.is_some() {
        channels.push(Channel { name: "telegram".into(), detail: "Bot API".into(), counts: counts("telegram") });
    }
    for hook in &notify.webhooks {
        channels.push(Channel {
            name: format!("webhook {}", hook.name),
            detail: hook.url.clone(),
            counts: counts(&format!("webhook:{}", hook.name)),
        });
    }
    let dead: Vec<_> = deliveries::dead(service.db(), 50)
        .await?
        .into_iter()
        .map(|m| {
            context! {
                id => m.id, reference => m.reference, channel => m.channel, recipient => m.recipient,
                error => m.last_error, when => renderer.when(bundle, crate::store::from_ms(m.updated_at)),
            }
        })
        .collect();
    let workflows: Vec<_> = service
        .workflows()
        .iter()
        .map(|wf| {
            context! {
                key => wf.key.as_str(), name => wf.name.clone(),
                stages => wf.stages.iter().map(|s| s.wording.label.clone()).collect::<Vec<_>>(),
            }
        })
        .collect();
    let audit: Vec<_> = service
        .staff_audit(30)
        .await?
        .into_iter()
        .map(|a| {
            context! {
                actor => a.actor, action => a.action, subject => a.subject, detail => a.detail,
                when => renderer.when(bundle, crate::store::from_ms(a.created_at)),
            }
        })
        .collect();
    Ok(renderer.page(
        "settings.html",
        bundle,
        Some(session),
        status,
        context! {
            nav => "settings",
            reveal => Value::from(minijinja::value::Serde(&reveal)),
            users,
            tokens,
            displays,
            channels => Value::from(minijinja::value::Serde(&channels)),
            dead,
            workflows,
            workflows_source => config.workflows_dir.as_ref().map(|p| p.display().to_string()),
            templates_source => notify.templates_dir.as_ref().map(|p| p.display().to_string()),
            audit,
            roles => Role::ALL.iter().map(|r| r.as_str()).collect::<Vec<_>>(),
        },
    ))
}

async fn after(
    state: &AppState,
    bundle: &Bundle,
    session: &Session,
    result: Result<Option<Reveal>, ServiceError>,
) -> Response {
    match result {
        Ok(None) => Redirect::to("/settings").into_response(),
        Ok(Some(reveal)) => match render(state, bundle, session, Some(reveal), StatusCode::OK).await {
            Ok(res) => res,
            Err(e) => {
                tracing::error!(error = %e.chain(), "settings page failed");
                state.ops.renderer.error_with(bundle, Some(session), StatusCode::SERVICE_UNAVAILABLE, "unavailable")
            }
        },
        Err(e) => {
            let problem = ApiError::from(e);
            if problem.status().is_server_error() {
                tracing::error!(detail = %problem.problem().detail, "settings action failed");
            }
            let p = problem.problem();
            let text = match &p.field {
                Some(f) => format!("{f}: {}", p.detail),
                None => p.detail.clone(),
            };
            state.ops.renderer.message(bundle, Some(session), problem.status(), &p.title, &text, Some("/settings"))
        }
    }
}

/// `POST /settings/users`: adds a user; without a password, one is generated and shown once.
pub async fn add_user(
    State(state): State<AppState>,
    Owner(session): Owner,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let f = FormFields::parse(&body);
    let result = async {
        let role = Role::parse(f.text("role").unwrap_or("")).map_err(|m| ServiceError::invalid("role", m))?;
        let (password, generated) = match f.text("password") {
            Some(p) => (p.to_owned(), false),
            None => (random_token(15), true),
        };
        let email = f.text("email").unwrap_or("");
        let new = NewUser { email, name: f.text("name"), role, password: &password };
        let user = state.service.add_user(new, &session.staff.email).await?;
        Ok(generated
            .then(|| Reveal { label: bundle.fill("ops.reveal_password", &[("email", &user.email)]), value: password }))
    }
    .await;
    after(&state, &bundle, &session, result).await
}

/// `POST /settings/users/{id}`: `op` is `role`, `disable`, `enable` or `reset`.
pub async fn edit_user(
    State(state): State<AppState>,
    Owner(session): Owner,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let f = FormFields::parse(&body);
    let actor = session.staff.email.clone();
    let result = async {
        let id = id.parse::<i64>().map_err(|_| ServiceError::invalid("user", "no such user"))?;
        match f.text("op") {
            Some("role") => {
                let role = Role::parse(f.text("role").unwrap_or("")).map_err(|m| ServiceError::invalid("role", m))?;
                state.service.set_user_role(id, role, &actor).await?;
                Ok(None)
            }
            Some("disable") => state.service.set_user_disabled(id, true, &actor).await.map(|()| None),
            Some("enable") => state.service.set_user_disabled(id, false, &actor).await.map(|()| None),
            Some("reset") => {
                let password = random_token(15);
                let email = state.service.reset_password(id, &password, &actor).await?;
                Ok(Some(Reveal { label: bundle.fill("ops.reveal_password", &[("email", &email)]), value: password }))
            }
            _ => Err(ServiceError::invalid("op", "use role, disable, enable or reset")),
        }
    }
    .await;
    after(&state, &bundle, &session, result).await
}

/// `POST /settings/tokens`: a new API token, shown once.
pub async fn create_token(
    State(state): State<AppState>,
    Owner(session): Owner,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let f = FormFields::parse(&body);
    let result = async {
        let scope = Scope::parse(f.text("scope").unwrap_or("")).map_err(|m| ServiceError::invalid("scope", m))?;
        let (token, info) = state.service.create_token(f.text("name").unwrap_or(""), scope).await?;
        state.service.audit_staff(&session.staff.email, "token.created", &info.name, scope.as_str()).await?;
        Ok(Some(Reveal { label: bundle.fill("ops.reveal_token", &[("name", &info.name)]), value: token }))
    }
    .await;
    after(&state, &bundle, &session, result).await
}

/// `POST /settings/tokens/{id}/revoke`.
pub async fn revoke_token(
    State(state): State<AppState>,
    Owner(session): Owner,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let result = async {
        let id = id.parse::<i64>().map_err(|_| ServiceError::invalid("token", "no such token"))?;
        if !state.service.revoke_token(id).await? {
            return Err(ServiceError::invalid("token", "no such active token"));
        }
        state.service.audit_staff(&session.staff.email, "token.revoked", &id.to_string(), "").await?;
        Ok(None)
    }
    .await;
    after(&state, &bundle, &session, result).await
}

/// `POST /settings/displays`: a new shop-floor display link.
pub async fn create_display(
    State(state): State<AppState>,
    Owner(session): Owner,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let f = FormFields::parse(&body);
    let result = state
        .service
        .create_display(f.text("name").unwrap_or(""), f.text("workflow"), &session.staff.email)
        .await
        .map(|url| Some(Reveal { label: bundle.t("ops.reveal_display").to_owned(), value: url }));
    after(&state, &bundle, &session, result).await
}

/// `POST /settings/displays/{id}/revoke`: the screen goes blank at its next update.
pub async fn revoke_display(
    State(state): State<AppState>,
    Owner(session): Owner,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let bundle = state.ops.renderer.bundle(&headers, None);
    let result = async {
        let id = id.parse::<i64>().map_err(|_| ServiceError::invalid("display", "no such display"))?;
        if !state.service.revoke_display(id, &session.staff.email).await? {
            return Err(ServiceError::invalid("display", "no such active display link"));
        }
        Ok(None)
    }
    .await;
    after(&state, &bundle, &session, result).await
}
