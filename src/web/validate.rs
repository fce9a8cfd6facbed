//! Collecting every invalid field of a request before answering, so callers fix them in one go.

use super::error::{ApiError, FieldError};

/// Accumulates field errors while request data is parsed into domain types.
#[derive(Debug, Default)]
pub struct Check {
    errors: Vec<FieldError>,
}

impl Check {
    /// Records a problem with `field`.
    pub fn fail(&mut self, field: impl Into<String>, detail: impl Into<String>) {
        self.errors.push(FieldError { field: field.into(), detail: detail.into() });
    }

    /// Keeps a parsed value, or records why it did not parse.
    pub fn parse<T>(&mut self, field: impl Into<String>, parsed: Result<T, String>) -> Option<T> {
        parsed.map_err(|detail| self.fail(field, detail)).ok()
    }

    /// Trims text and checks its length (in characters); empty text is refused when `required`.
    pub fn text(&mut self, field: &str, raw: &str, max: usize, required: bool) -> String {
        let text = raw.trim();
        if required && text.is_empty() {
            self.fail(field, "must not be empty");
        } else if text.chars().count() > max {
            self.fail(field, format!("must be at most {max} characters"));
        } else if text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') {
            self.fail(field, "must not contain control characters");
        }
        text.to_owned()
    }

    /// Like [`Check::text`] for optional text; blank becomes `None`.
    pub fn optional_text(&mut self, field: &str, raw: Option<&str>, max: usize) -> Option<String> {
        raw.map(|r| self.text(field, r, max, false)).filter(|t| !t.is_empty())
    }

    /// Checks that a JSON value is an object and not too large.
    pub fn json_object(
        &mut self,
        field: &str,
        value: Option<serde_json::Value>,
        max_bytes: usize,
    ) -> serde_json::Value {
        match value {
            None => serde_json::Value::Object(serde_json::Map::new()),
            Some(v @ serde_json::Value::Object(_)) => {
                if v.to_string().len() > max_bytes {
                    self.fail(field, format!("must be at most {max_bytes} bytes of JSON"));
                }
                v
            }
            Some(_) => {
                self.fail(field, "must be a JSON object");
                serde_json::Value::Null
            }
        }
    }

    /// Whether nothing failed so far.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// `Ok` if every field was valid, else a 422 listing them all.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() { Ok(()) } else { Err(ApiError::invalid_fields(self.errors)) }
    }
}

/// Deserializes a field that may be absent (`None`), `null` (`Some(None)`) or set.
pub fn double_option<'de, D, T>(de: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    serde::Deserialize::deserialize(de).map(Some)
}
