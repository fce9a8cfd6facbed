//! Extractors that turn malformed input into our problem details, and bearer-token auth.

mod params;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use serde::de::DeserializeOwned;

use super::error::ApiError;
use super::validate::stray_control;
use crate::domain::model::Actor;
use crate::domain::order::Source;
use crate::service::{Scope, Service, TokenInfo};
pub use params::{ApiPath, ApiQuery, parse_query};

/// A JSON body: 415 without a JSON content type, 413 when too large, 400 when not JSON,
/// 422 naming the field when JSON of the wrong shape.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

/// The raw bytes of a JSON body, checked like [`ApiJson`], with the parsed value.
#[derive(Debug)]
pub struct JsonWithBytes<T> {
    /// Parsed body.
    pub value: T,
    /// The body as received.
    pub bytes: Bytes,
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        JsonWithBytes::from_request(req, state).await.map(|j| ApiJson(j.value))
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonWithBytes<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let is_json = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(';').next())
            .is_some_and(|mime| {
                let mime = mime.trim().to_ascii_lowercase();
                mime == "application/json" || (mime.starts_with("application/") && mime.ends_with("+json"))
            });
        if !is_json {
            return Err(ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported-media-type",
                "Unsupported media type",
                "send the body as JSON with `Content-Type: application/json`",
            ));
        }
        let bytes = Bytes::from_request(req, state).await.map_err(|rejection| {
            if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "body-too-large",
                    "Body too large",
                    "the request body is larger than this server accepts",
                )
            } else {
                ApiError::bad_request(format!("could not read the request body: {rejection}"))
            }
        })?;
        let value = parse_json(&bytes)?;
        Ok(JsonWithBytes { value, bytes })
    }
}

/// Parses JSON, naming the path of the first field that does not fit, or of the first string
/// with a control character no field accepts (a `\u0000` would otherwise reach PostgreSQL,
/// which refuses it, as a 500).
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                ApiError::invalid(field, strip_position(&inner.to_string()))
            }
            _ => ApiError::bad_request(format!("the body is not valid JSON: {inner}")),
        }
    })?;
    de.end().map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
    if may_hold_controls(bytes) {
        let doc: serde_json::Value = serde_json::from_slice(bytes)
            .map_err(|e| ApiError::bad_request(format!("the body is not valid JSON: {e}")))?;
        if let Some(field) = stray_control(&doc) {
            return Err(ApiError::invalid(field, "must not contain control characters"));
        }
    }
    Ok(value)
}

/// Control characters reach a JSON text only escaped (`\u0000`, `\b`, `\f`) or as raw DEL and
/// C1 characters, so most bodies need no second look.
fn may_hold_controls(bytes: &[u8]) -> bool {
    bytes.windows(2).any(|w| matches!(w, [b'\\', b'u' | b'b' | b'f'] | [0xC2, 0x80..=0x9F])) || bytes.contains(&0x7F)
}

/// serde_json appends " at line 1 column 42" to data errors; the field path says more.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// A caller authenticated with a bearer API token of any scope.
#[derive(Debug, Clone)]
pub struct Reader(pub TokenInfo);

/// A caller authenticated with a bearer API token of `write` scope.
#[derive(Debug, Clone)]
pub struct Writer(pub TokenInfo);

impl Writer {
    /// The actor recorded for changes this caller makes.
    pub fn actor(&self) -> Actor {
        Actor { name: self.0.name.clone(), source: Source::Api }
    }
}

async fn authenticate(parts: &Parts, service: &Service, needed: Scope) -> Result<TokenInfo, ApiError> {
    let unauthorized = |detail: &str| ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "Unauthorized", detail);
    let header = parts
        .headers
        .get(header::AUTHORIZATION)
        .ok_or_else(|| unauthorized("send an API token as `Authorization: Bearer kiln_…`"))?;
    let token = header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer ")))
        .map(str::trim)
        .ok_or_else(|| unauthorized("the Authorization header must be `Bearer <token>`"))?;
    let info = service.authenticate(token).await?.ok_or_else(|| unauthorized("the API token is unknown or revoked"))?;
    if !info.allows(needed) {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "insufficient-scope",
            "Insufficient scope",
            format!("the token `{}` has `{}` scope; this needs `{needed}`", info.name, info.scope),
        ));
    }
    Ok(info)
}

impl<S: Send + Sync> FromRequestParts<S> for Reader
where
    Service: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        authenticate(parts, &Service::from_ref(state), Scope::Read).await.map(Reader)
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Writer
where
    Service: FromRef<S>,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        authenticate(parts, &Service::from_ref(state), Scope::Write).await.map(Writer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[expect(dead_code, reason = "fields exist to be deserialized")]
    struct Shape {
        items: Vec<Item>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[expect(dead_code, reason = "fields exist to be deserialized")]
    struct Item {
        quantity: u32,
    }

    #[test]
    fn wrong_shapes_name_the_field_and_broken_json_is_a_400() {
        let err = parse_json::<Shape>(br#"{"items": [{"quantity": 1}, {"quantity": "two"}]}"#).expect_err("wrong type");
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.problem().field.as_deref(), Some("items[1].quantity"));
        assert!(err.problem().detail.contains("invalid type: string \"two\""), "{}", err.problem().detail);

        let err = parse_json::<Shape>(b"{\"items\": [").expect_err("truncated");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let err = parse_json::<Shape>(b"{\"items\": []} trailing").expect_err("trailing");
        assert_eq!(err.status(), StatusCode::BAD_REQUEST);
        let err = parse_json::<Shape>(b"[]").expect_err("not an object");
        assert_eq!(err.problem().field.as_deref(), Some("body"));
    }

    #[test]
    fn control_characters_in_strings_are_named() {
        let err = parse_json::<serde_json::Value>(br#"{"items": [{"d": "a\u0000b"}]}"#).expect_err("NUL");
        assert_eq!(err.status(), StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(err.problem().field.as_deref(), Some("items[0].d"));
        let err = parse_json::<serde_json::Value>("{\"n\": \"\u{85}\"}".as_bytes()).expect_err("raw C1");
        assert_eq!(err.problem().field.as_deref(), Some("n"));
        parse_json::<serde_json::Value>(br#"{"note": "two\nlines\u00e9\\b"}"#).expect("newlines are text");
    }
}
