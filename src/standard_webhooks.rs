//! Standard Webhooks signatures (<https://www.standardwebhooks.com/>): `webhook-signature`
//! is `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`, one per secret. kiln signs
//! the webhooks it sends this way, and verifies the workshop system's webhooks the same way.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// A signing secret, `whsec_` followed by base64 of the key bytes.
#[derive(Clone)]
pub struct Secret(Vec<u8>);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// Parses `whsec_<base64>`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let b64 = text.strip_prefix("whsec_").ok_or("a secret must start with `whsec_`")?;
        let key = STANDARD.decode(b64).map_err(|e| format!("the part after `whsec_` is not base64: {e}"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(format!("the key is {} bytes; use 24 to 64", key.len()));
        }
        Ok(Self(key))
    }

    /// The `v1,<signature>` of one message.
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).unwrap_or_else(|_| unreachable!());
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

/// How far `webhook-timestamp` may be from now, either way (the specification's default).
pub const TOLERANCE_SECS: i64 = 300;

/// Why a delivery's signature is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// A `webhook-*` header is missing.
    #[error("the {0} header is missing")]
    Missing(&'static str),
    /// `webhook-timestamp` is not a number of seconds.
    #[error("webhook-timestamp is not a Unix time in seconds")]
    BadTimestamp,
    /// The timestamp is too old or too far ahead.
    #[error("webhook-timestamp is more than {TOLERANCE_SECS} s from now")]
    Stale,
    /// No `v1` signature matches any secret.
    #[error("no signature matches")]
    Mismatch,
}

/// Verifies a delivery as the specification says a receiver must: some `v1,` signature in
/// `signature` (space-separated) matches one of `secrets` over `"{id}.{timestamp}.{body}"`,
/// compared in constant time, and the timestamp is within [`TOLERANCE_SECS`] of `now`.
pub fn verify(
    secrets: &[Secret],
    id: Option<&str>,
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now: i64,
) -> Result<(), VerifyError> {
    let id = id.ok_or(VerifyError::Missing("webhook-id"))?;
    let timestamp = timestamp.ok_or(VerifyError::Missing("webhook-timestamp"))?;
    let signature = signature.ok_or(VerifyError::Missing("webhook-signature"))?;
    let t: i64 = timestamp.trim().parse().map_err(|_| VerifyError::BadTimestamp)?;
    let mut matched = false;
    for secret in secrets {
        let expected = secret.sign(id, t, body);
        for candidate in signature.split(' ').filter(|s| s.starts_with("v1,")) {
            matched |= crate::crypto::constant_time_eq(expected.as_bytes(), candidate.as_bytes());
        }
    }
    if !matched {
        return Err(VerifyError::Mismatch);
    }
    if (now - t).abs() > TOLERANCE_SECS {
        return Err(VerifyError::Stale);
    }
    Ok(())
}

/// The `webhook-signature` header value: one signature per secret, space-separated.
pub fn signature_header(secrets: &[Secret], id: &str, timestamp: i64, body: &[u8]) -> String {
    secrets.iter().map(|s| s.sign(id, timestamp, body)).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The test vector published with the Standard Webhooks reference libraries.
    #[test]
    fn the_published_test_vector_signs_as_expected() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid secret");
        let signature = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, br#"{"test": 2432232314}"#);
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_receiver_verifies_the_published_vector_and_refuses_the_rest() {
        let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid secret");
        let (id, t, body) = ("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", br#"{"test": 2432232314}"#);
        let sig = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let ok = |sig: &str, body: &[u8], now: i64| {
            verify(std::slice::from_ref(&secret), Some(id), Some(t), Some(sig), body, now)
        };
        assert_eq!(ok(sig, body, 1_614_265_330), Ok(()));
        assert_eq!(ok(&format!("v1,bogus {sig}"), body, 1_614_265_330), Ok(()), "any v1 may match");
        assert_eq!(ok(sig, br#"{"test": 1}"#, 1_614_265_330), Err(VerifyError::Mismatch));
        assert_eq!(ok(sig, body, 1_614_265_330 + 301), Err(VerifyError::Stale));
        assert_eq!(ok(sig, body, 1_614_265_330 - 301), Err(VerifyError::Stale));
        let missing = verify(&[secret], None, Some(t), Some(sig), body, 0);
        assert_eq!(missing, Err(VerifyError::Missing("webhook-id")));
    }

    #[test]
    fn rotation_signs_with_every_secret_and_bad_secrets_are_named() {
        let a = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("valid");
        let b = Secret::parse(&format!("whsec_{}", STANDARD.encode([7u8; 32]))).expect("valid");
        let header = signature_header(&[a.clone(), b.clone()], "msg_1", 10, b"{}");
        assert_eq!(header, format!("{} {}", a.sign("msg_1", 10, b"{}"), b.sign("msg_1", 10, b"{}")));
        assert!(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect_err("no prefix").contains("whsec_"));
        assert!(Secret::parse("whsec_***").expect_err("not base64").contains("base64"));
        assert!(Secret::parse("whsec_AAAA").expect_err("short").contains("bytes"));
    }
}
