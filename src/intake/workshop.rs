//! The workshop system's webhook (seed 1's shop floor software), with no I/O: its documented
//! JSON body, signed with Standard Webhooks, says an order reached a stage.
//!
//! ```json
//! {"type": "order.stage_changed", "occurred_at": "2026-12-03T10:15:00Z",
//!  "order": {"reference": "K-000123"}, "stage": "fabrication",
//!  "note": "Slab cut, edges next", "internal_note": "saw 2", "photo_urls": ["https://…/1.jpg"]}
//! ```

use chrono::DateTime;
use serde::Deserialize;
use url::Url;

/// The only event type the workshop system sends.
pub const STAGE_CHANGED: &str = "order.stage_changed";
/// Most photos one event may carry.
pub const MAX_PHOTO_URLS: usize = 10;

/// Which order an event is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderKey {
    /// kiln's reference, e.g. `K-000123`.
    Reference(String),
    /// The id another system gave it (a Stripe Checkout Session, a Shopify order).
    External(String),
}

impl OrderKey {
    /// The inbox subject of events about this order: one order's events apply in order.
    pub fn subject(&self) -> String {
        match self {
            OrderKey::Reference(r) => format!("ref:{r}"),
            OrderKey::External(e) => format!("ext:{e}"),
        }
    }
}

/// A stage change reported by the workshop system.
#[derive(Debug, Clone, PartialEq)]
pub struct StageChanged {
    /// When it happened in the workshop (ms).
    pub occurred_at: i64,
    /// The order.
    pub order: OrderKey,
    /// The stage it reached.
    pub stage: String,
    /// A note for the customer.
    pub note: Option<String>,
    /// A note only the shop sees.
    pub internal_note: Option<String>,
    /// Photos from the bench, fetched by kiln.
    pub photo_urls: Vec<Url>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Body {
    #[serde(rename = "type")]
    kind: String,
    occurred_at: String,
    order: OrderIn,
    stage: String,
    note: Option<String>,
    internal_note: Option<String>,
    #[serde(default)]
    photo_urls: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct OrderIn {
    reference: Option<String>,
    external_id: Option<String>,
}

/// Reads a body; the error says what is wrong, naming the field.
pub fn parse(body: &[u8]) -> Result<StageChanged, String> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    let b: Body = serde_path_to_error::deserialize(de).map_err(|e| format!("{}: {}", e.path(), e.inner()))?;
    if b.kind != STAGE_CHANGED {
        return Err(format!("type: `{}` is not `{STAGE_CHANGED}`", b.kind));
    }
    let occurred_at = DateTime::parse_from_rfc3339(&b.occurred_at)
        .map_err(|_| format!("occurred_at: `{}` is not an RFC 3339 time", b.occurred_at))?
        .timestamp_millis();
    let order = match (b.order.reference, b.order.external_id) {
        (Some(r), None) if !r.trim().is_empty() => OrderKey::Reference(r.trim().to_owned()),
        (None, Some(e)) if !e.trim().is_empty() => OrderKey::External(e.trim().to_owned()),
        _ => return Err("order: give exactly one of `reference` and `external_id`".to_owned()),
    };
    if b.photo_urls.len() > MAX_PHOTO_URLS {
        return Err(format!("photo_urls: at most {MAX_PHOTO_URLS}"));
    }
    let photo_urls = b
        .photo_urls
        .iter()
        .enumerate()
        .map(|(i, u)| {
            Url::parse(u)
                .ok()
                .filter(|u| matches!(u.scheme(), "http" | "https"))
                .ok_or_else(|| format!("photo_urls[{i}]: `{u}` is not an http(s) URL"))
        })
        .collect::<Result<_, _>>()?;
    let text = |t: Option<String>| t.map(|t| t.trim().to_owned()).filter(|t| !t.is_empty());
    Ok(StageChanged {
        occurred_at,
        order,
        stage: b.stage.trim().to_owned(),
        note: text(b.note),
        internal_note: text(b.internal_note),
        photo_urls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_documented_body_parses_and_mistakes_are_named() {
        let ok = br#"{"type":"order.stage_changed","occurred_at":"2026-12-03T10:15:00Z","order":{"reference":"K-000123"},"stage":"fabrication","note":"Slab cut","photo_urls":["https://ws.example/1.jpg"]}"#;
        let e = parse(ok).expect("valid");
        assert_eq!(e.order, OrderKey::Reference("K-000123".to_owned()));
        assert_eq!((e.stage.as_str(), e.note.as_deref(), e.photo_urls.len()), ("fabrication", Some("Slab cut"), 1));
        assert_eq!(e.order.subject(), "ref:K-000123");
        let both = br#"{"type":"order.stage_changed","occurred_at":"2026-12-03T10:15:00Z","order":{"reference":"K-1","external_id":"x"},"stage":"a"}"#;
        assert!(parse(both).expect_err("both keys").starts_with("order:"));
        let late =
            br#"{"type":"order.stage_changed","occurred_at":"yesterday","order":{"reference":"K-1"},"stage":"a"}"#;
        assert!(parse(late).expect_err("bad time").starts_with("occurred_at:"));
        let file = br#"{"type":"order.stage_changed","occurred_at":"2026-12-03T10:15:00Z","order":{"reference":"K-1"},"stage":"a","photo_urls":["file:///etc/passwd"]}"#;
        assert!(parse(file).expect_err("file URL").starts_with("photo_urls[0]"));
        assert!(parse(br#"{"type":"order.stage_changed","extra":1}"#).is_err());
    }
}
