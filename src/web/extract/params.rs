//! Path and query parameters: read like axum's `Path` and `Query`, but every refusal is a
//! problem naming the parameter, and control characters are refused before a handler (and so
//! the database: PostgreSQL rejects NUL in text) ever sees them.

use axum::extract::{FromRequestParts, Path, RawPathParams};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::web::error::ApiError;
use crate::web::validate::refuse_controls;

/// Path parameters: 400 when the path cannot be decoded, 422 naming the parameter when it
/// holds a control character.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let raw = RawPathParams::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("could not read the path: {}", e.body_text())))?;
        for (name, value) in &raw {
            refuse_controls(name, value)?;
        }
        let Path(value) = Path::<T>::from_request_parts(parts, state)
            .await
            .map_err(|e| ApiError::bad_request(format!("could not read the path: {}", e.body_text())))?;
        Ok(ApiPath(value))
    }
}

/// Query parameters, all read as text (parse numbers and dates in the handler, with
/// [`crate::web::validate::Check`], so every bad value is named): 400 naming an unknown or
/// repeated parameter, 422 naming one that holds a control character.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parse_query(parts.uri.query().unwrap_or_default()).map(ApiQuery)
    }
}

/// Reads a query string into `T`, naming the parameter at fault.
pub fn parse_query<T: DeserializeOwned>(query: &str) -> Result<T, ApiError> {
    let mut params = Map::new();
    for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
        refuse_controls(&name, &value)?;
        if params.contains_key(name.as_ref()) {
            return Err(ApiError::bad_request(format!("the query parameter `{name}` is given more than once"))
                .field(name.into_owned()));
        }
        params.insert(name.into_owned(), Value::String(value.into_owned()));
    }
    serde_path_to_error::deserialize(Value::Object(params)).map_err(|err| {
        let name = err.path().to_string();
        let message = err.into_inner().to_string();
        // serde's own wording for a key the struct does not have.
        if message.starts_with("unknown field") {
            ApiError::bad_request(format!("unknown query parameter: {message}")).field(name)
        } else {
            ApiError::invalid(name, message)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::StatusCode;

    #[derive(serde::Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist to be deserialized")]
    struct Filters {
        q: Option<String>,
        stage: Option<String>,
    }

    #[test]
    fn unknown_repeated_and_control_parameters_are_named() {
        let ok: Filters = parse_query("q=a+b&stage=").expect("valid");
        assert_eq!(ok.q.as_deref(), Some("a b"));

        let err = parse_query::<Filters>("stge=x").expect_err("unknown");
        assert_eq!((err.status(), err.problem().field.as_deref()), (StatusCode::BAD_REQUEST, Some("stge")));
        let err = parse_query::<Filters>("q=a&q=b").expect_err("repeated");
        assert_eq!((err.status(), err.problem().field.as_deref()), (StatusCode::BAD_REQUEST, Some("q")));
        let err = parse_query::<Filters>("stage=a%00b").expect_err("NUL");
        assert_eq!((err.status(), err.problem().field.as_deref()), (StatusCode::UNPROCESSABLE_ENTITY, Some("stage")));
        let err = parse_query::<Filters>("q=%C2%85").expect_err("C1 control");
        assert_eq!(err.problem().field.as_deref(), Some("q"));
    }
}
