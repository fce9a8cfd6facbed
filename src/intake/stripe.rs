//! Stripe's side of intake, with no I/O: verifying `Stripe-Signature` exactly as Stripe
//! documents it, and reading what an event asks kiln to do.

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::crypto::constant_time_eq;

/// How far a signature's timestamp may be from now, either way (Stripe's default tolerance).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a delivery's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No `Stripe-Signature` header.
    #[error("the Stripe-Signature header is missing")]
    Missing,
    /// The header has no `t=` or no `v1=`.
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    /// The timestamp is too old or too far ahead.
    #[error("the signature's timestamp is more than {TOLERANCE_SECS} s from now")]
    Stale,
    /// No `v1` signature matches any secret.
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` (`t=…,v1=…[,v1=…][,v0=…]`) against the raw `body`: some `v1` must be the hex
/// HMAC-SHA256 of `"{t}.{body}"` keyed with one of `secrets` (the whole `whsec_…` string), and
/// `t` within [`TOLERANCE_SECS`] of `now` (Unix seconds) in either direction.
pub fn verify(header: Option<&str>, body: &[u8], secrets: &[&str], now: i64) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", sig)) => signatures.push(sig),
            _ => {}
        }
    }
    let (Some(t), false) = (timestamp, signatures.is_empty()) else {
        return Err(SignatureError::Malformed);
    };
    let mut matched = false;
    for secret in secrets {
        let expected = hex(&sign(secret, t, body));
        // Every candidate is compared in full so that timing says nothing about which matched.
        for sig in &signatures {
            matched |= constant_time_eq(expected.as_bytes(), sig.as_bytes());
        }
    }
    if !matched {
        return Err(SignatureError::Mismatch);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(SignatureError::Stale);
    }
    Ok(())
}

fn sign(secret: &str, t: i64, body: &[u8]) -> [u8; 32] {
    // HMAC accepts keys of any length, so this cannot fail.
    let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) else {
        return [0; 32];
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().into()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A `Stripe-Signature` header for `body` at time `t`, as Stripe sends it (for tests and
/// tools that replay events).
pub fn signature_header(secret: &str, t: i64, body: &[u8]) -> String {
    format!("t={t},v1={}", hex(&sign(secret, t, body)))
}

/// The fields of an event kiln records before acting on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// `evt_…`, unique per event (redeliveries keep it).
    pub id: String,
    /// e.g. `checkout.session.completed`.
    pub topic: String,
    /// What the event is about (the Checkout Session id), to keep one session's events in order.
    pub subject: Option<String>,
}

/// Reads the envelope of a verified event body.
pub fn envelope(body: &[u8]) -> Result<Envelope, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    let id = v["id"].as_str().filter(|s| !s.is_empty()).ok_or("the event has no `id`")?;
    let topic = v["type"].as_str().filter(|s| !s.is_empty()).ok_or("the event has no `type`")?;
    let subject = v.pointer("/data/object/id").and_then(Value::as_str).map(str::to_owned);
    Ok(Envelope { id: id.to_owned(), topic: topic.to_owned(), subject })
}

/// What a Checkout Session event asks kiln to do.
#[derive(Debug, Clone, PartialEq)]
pub enum Intent {
    /// The session is paid: its order must exist and be in production.
    Paid(Session),
    /// The session completed but its payment is still pending (bank debits, vouchers).
    AwaitingPayment(Session),
    /// The asynchronous payment failed.
    PaymentFailed(Session),
    /// The session expired unpaid.
    Expired(Session),
    /// Nothing for kiln to do, and why.
    Ignore(String),
}

/// The Checkout Session fields kiln uses.
#[derive(Debug, Clone, PartialEq)]
pub struct Session {
    /// `cs_…`.
    pub id: String,
    /// The order kiln made for this session, if it did (`client_reference_id`).
    pub client_reference_id: Option<String>,
    /// The customer's name, if Stripe collected one.
    pub name: Option<String>,
    /// The customer's email.
    pub email: Option<String>,
    /// The customer's phone.
    pub phone: Option<String>,
    /// Amount in the currency's smallest unit.
    pub amount_total: Option<i64>,
    /// Three-letter currency code.
    pub currency: Option<String>,
    /// The session's metadata (`kiln_workflow` picks the workflow).
    pub metadata: serde_json::Map<String, Value>,
    /// The customer's locale, if the session had one.
    pub locale: Option<String>,
}

/// Reads a Checkout Session object (from an event, or from Stripe's API).
pub fn session(object: &Value) -> Result<Session, String> {
    if object["object"].as_str() != Some("checkout.session") {
        return Err("the event is not about a Checkout Session".to_owned());
    }
    // The id goes into an API URL: only Stripe's own id characters are accepted.
    let well_formed = |id: &&str| !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let Some(id) = object["id"].as_str().filter(well_formed).map(str::to_owned) else {
        return Err("the session has no well-formed id".to_owned());
    };
    let text = |p: &str| object.pointer(p).and_then(Value::as_str).filter(|s| !s.is_empty()).map(str::to_owned);
    Ok(Session {
        id,
        client_reference_id: text("/client_reference_id"),
        name: text("/customer_details/name"),
        email: text("/customer_details/email").or_else(|| text("/customer_email")),
        phone: text("/customer_details/phone"),
        amount_total: object["amount_total"].as_i64(),
        currency: text("/currency"),
        metadata: object["metadata"].as_object().cloned().unwrap_or_default(),
        locale: text("/locale"),
    })
}

/// Whether a Checkout Session object is paid (or needed no payment).
pub fn is_paid(object: &Value) -> bool {
    matches!(object["payment_status"].as_str(), Some("paid" | "no_payment_required"))
}

/// Reads what `topic` with event body `body` asks for.
pub fn intent(topic: &str, body: &[u8]) -> Intent {
    let handled = [
        "checkout.session.completed",
        "checkout.session.async_payment_succeeded",
        "checkout.session.async_payment_failed",
        "checkout.session.expired",
    ];
    if !handled.contains(&topic) {
        return Intent::Ignore(format!("kiln does not act on `{topic}` events"));
    }
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Intent::Ignore("the body is not JSON".to_owned());
    };
    let object = &v["data"]["object"];
    let session = match session(object) {
        Ok(session) => session,
        Err(why) => return Intent::Ignore(why),
    };
    let paid = is_paid(object);
    match topic {
        "checkout.session.completed" if paid => Intent::Paid(session),
        "checkout.session.completed" => Intent::AwaitingPayment(session),
        "checkout.session.async_payment_succeeded" => Intent::Paid(session),
        "checkout.session.async_payment_failed" => Intent::PaymentFailed(session),
        _ => Intent::Expired(session),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";

    #[test]
    fn a_signature_made_as_stripe_documents_it_verifies() {
        let body = br#"{"id":"evt_1","type":"checkout.session.completed"}"#;
        let header = signature_header(SECRET, 1_700_000_000, body);
        assert_eq!(verify(Some(&header), body, &[SECRET], 1_700_000_000), Ok(()));
        // Stripe's own example shape: several v1 (one per secret) and a v0 to ignore.
        let two = format!("{header},v1=00ff,v0=abcdef");
        assert_eq!(verify(Some(&two), body, &["whsec_other", SECRET], 1_700_000_100), Ok(()));
    }

    #[test]
    fn tampering_a_wrong_secret_or_a_stale_time_is_refused() {
        let body = br#"{"id":"evt_1"}"#;
        let header = signature_header(SECRET, 1_700_000_000, body);
        let now = 1_700_000_000;
        assert_eq!(verify(Some(&header), br#"{"id":"evt_2"}"#, &[SECRET], now), Err(SignatureError::Mismatch));
        assert_eq!(verify(Some(&header), body, &["whsec_wrong"], now), Err(SignatureError::Mismatch));
        assert_eq!(verify(None, body, &[SECRET], now), Err(SignatureError::Missing));
        assert_eq!(verify(Some("v1=abc"), body, &[SECRET], now), Err(SignatureError::Malformed));
        assert_eq!(verify(Some(&header), body, &[SECRET], now + 300), Ok(()));
        assert_eq!(verify(Some(&header), body, &[SECRET], now + 301), Err(SignatureError::Stale));
        assert_eq!(verify(Some(&header), body, &[SECRET], now - 301), Err(SignatureError::Stale));
    }

    #[test]
    fn events_map_to_what_they_ask_for() {
        let event = |topic: &str, status: &str| {
            format!(
                r#"{{"id":"evt_1","type":"{topic}","data":{{"object":{{"object":"checkout.session","id":"cs_1","payment_status":"{status}","customer_details":{{"name":"Ana","email":"ana@example.com"}},"amount_total":12000,"currency":"eur","metadata":{{"kiln_workflow":"print"}}}}}}}}"#
            )
        };
        let paid = event("checkout.session.completed", "paid");
        let Intent::Paid(s) = intent("checkout.session.completed", paid.as_bytes()) else { panic!("paid") };
        assert_eq!((s.id.as_str(), s.email.as_deref(), s.amount_total), ("cs_1", Some("ana@example.com"), Some(12000)));
        assert_eq!(s.metadata["kiln_workflow"], "print");
        let unpaid = event("checkout.session.completed", "unpaid");
        assert!(matches!(intent("checkout.session.completed", unpaid.as_bytes()), Intent::AwaitingPayment(_)));
        let later = event("checkout.session.async_payment_succeeded", "paid");
        assert!(matches!(intent("checkout.session.async_payment_succeeded", later.as_bytes()), Intent::Paid(_)));
        assert!(matches!(intent("charge.refunded", b"{}"), Intent::Ignore(_)));
        assert_eq!(envelope(paid.as_bytes()).map(|e| e.subject), Ok(Some("cs_1".to_owned())));
    }
}
