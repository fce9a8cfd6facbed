//! Collecting every invalid field of a request before answering, so callers fix them in one go,
//! and refusing control characters, which no field accepts and PostgreSQL refuses (NUL).

use std::fmt::Write as _;

use serde_json::Value;

use super::error::{ApiError, FieldError};

const CONTROLS: &str = "must not contain control characters";

/// Whether text holds a control character other than the line breaks and tabs of free text.
fn has_stray_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t')
}

/// 422 naming `field` if `value` holds any control character: names, keys and URL parameters
/// have no use for one, not even a newline.
pub fn refuse_controls(field: &str, value: &str) -> Result<(), ApiError> {
    if value.chars().any(char::is_control) { Err(ApiError::invalid(field, CONTROLS)) } else { Ok(()) }
}

/// The path (as in `items[0].description`, `body` for the document itself) of the first
/// string or key in a JSON document that holds a control character other than a newline or
/// tab, or `None`. A key at fault is reported as the object holding it.
pub fn stray_control(value: &Value) -> Option<String> {
    fn walk(value: &Value, path: &mut String) -> bool {
        let len = path.len();
        let found = match value {
            Value::String(s) => return has_stray_control(s),
            Value::Array(items) => items.iter().enumerate().any(|(i, v)| {
                path.truncate(len);
                let _ = write!(path, "[{i}]");
                walk(v, path)
            }),
            Value::Object(map) => map.iter().any(|(k, v)| {
                path.truncate(len);
                if has_stray_control(k) {
                    return true;
                }
                if len > 0 {
                    path.push('.');
                }
                path.push_str(k);
                walk(v, path)
            }),
            _ => false,
        };
        if !found {
            path.truncate(len);
        }
        found
    }
    let mut path = String::new();
    walk(value, &mut path).then(|| if path.is_empty() { "body".to_owned() } else { path })
}

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
        } else if has_stray_control(text) {
            self.fail(field, CONTROLS);
        }
        text.to_owned()
    }

    /// Records a control character (even a newline) in text that names something, such as a
    /// reference or a stage; `false` if there is one.
    pub fn no_controls(&mut self, field: &str, raw: &str) -> bool {
        let clean = !raw.chars().any(char::is_control);
        if !clean {
            self.fail(field, CONTROLS);
        }
        clean
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stray_controls_are_found_by_path_and_free_text_keeps_newlines() {
        assert_eq!(stray_control(&json!({"note": "line\nbreak\ttab", "n": 1})), None);
        assert_eq!(
            stray_control(&json!({"moves": [{"reference": "K"}, {"reference": "K\u{0}X"}]})).as_deref(),
            Some("moves[1].reference")
        );
        assert_eq!(stray_control(&json!({"metadata": {"a": {"b\u{7}": 1}}})).as_deref(), Some("metadata.a"));
        assert_eq!(stray_control(&json!("\u{85}")).as_deref(), Some("body"));
        assert!(refuse_controls("to", "a\nb").is_err());
        assert!(refuse_controls("to", "quality_check").is_ok());
    }
}
