//! Random tokens, hashing for storage, and sealing secrets that must be shown again later.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A URL-safe token carrying `bytes` random bytes from the thread CSPRNG (ChaCha, OS-seeded).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::fill(&mut buf[..]);
    URL_SAFE_NO_PAD.encode(buf)
}

/// Hex SHA-256 of a high-entropy token: what the database stores instead of the token.
///
/// Plain SHA-256 suffices because tokens carry ≥128 random bits; a slow password hash
/// would only slow every request down.
pub fn token_hash(token: &str) -> String {
    sha256_hex(token.as_bytes())
}

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of some bytes.
pub fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 0xf)]));
    }
    out
}

/// Compares two secrets without leaking where they differ through timing.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// A 256-bit key that seals values (AES-256-GCM) so they can be shown to operators later.
#[derive(Clone)]
pub struct Sealer {
    cipher: Aes256Gcm,
    /// Key of the form tokens: derived from the sealing key, so one secret serves both.
    mac_key: [u8; 32],
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealer(..)")
    }
}

/// Why a sealed value could not be opened (or, for absurdly large input, sealed).
#[derive(Debug, thiserror::Error)]
#[error("sealed value is corrupt or was sealed with another key")]
pub struct UnsealError;

/// Why a value could not be sealed (only inputs beyond AES-GCM's 64 GiB limit).
#[derive(Debug, thiserror::Error)]
#[error("value too large to seal")]
pub struct SealError;

const NONCE_LEN: usize = 12;

impl Sealer {
    /// Builds a sealer from a base64url-encoded 32-byte key.
    pub fn from_base64(key: &str) -> Result<Self, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(key.trim().trim_end_matches('='))
            .map_err(|_| "the secret key is not base64url".to_owned())?;
        Self::from_bytes(&bytes)
    }

    /// Builds a sealer from 32 raw bytes.
    pub fn from_bytes(key: &[u8]) -> Result<Self, String> {
        let mac_key: [u8; 32] = Sha256::new().chain_update(b"kiln form tokens\0").chain_update(key).finalize().into();
        Aes256Gcm::new_from_slice(key)
            .map(|cipher| Self { cipher, mac_key })
            .map_err(|_| format!("the secret key must be 32 bytes, not {}", key.len()))
    }

    /// A fresh random key, base64url-encoded.
    pub fn generate_key() -> String {
        random_token(32)
    }

    /// Encrypts `plain`, bound to `context` (e.g. the table it is stored in).
    pub fn seal(&self, context: &str, plain: &str) -> Result<String, SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::fill(&mut nonce[..]);
        let payload = Payload { msg: plain.as_bytes(), aad: context.as_bytes() };
        let sealed = self.cipher.encrypt(&Nonce::from(nonce), payload).map_err(|_| SealError)?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    /// A token binding `message` to `context` (HMAC-SHA256, base64url), for forms that must
    /// prove they were rendered by this server for this page; check with [`Sealer::verify`].
    pub fn sign(&self, context: &str, message: &str) -> String {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = <Hmac<Sha256> as hmac::KeyInit>::new_from_slice(&self.mac_key) else {
            unreachable!("HMAC accepts keys of any length")
        };
        mac.update(context.as_bytes());
        mac.update(b"\0");
        mac.update(message.as_bytes());
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    }

    /// Whether `token` is what [`Sealer::sign`] gives for `context` and `message`, compared in
    /// constant time.
    pub fn verify(&self, context: &str, message: &str, token: &str) -> bool {
        constant_time_eq(self.sign(context, message).as_bytes(), token.as_bytes())
    }

    /// Decrypts a value sealed with the same key and context.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String, UnsealError> {
        let raw = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| UnsealError)?;
        if raw.len() < NONCE_LEN {
            return Err(UnsealError);
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| UnsealError)?;
        let payload = Payload { msg: body, aad: context.as_bytes() };
        let plain = self.cipher.decrypt(&Nonce::from(nonce), payload).map_err(|_| UnsealError)?;
        String::from_utf8(plain).map_err(|_| UnsealError)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_url_safe_and_carry_the_requested_entropy() {
        let t = random_token(16);
        assert_eq!(t.len(), 22, "16 bytes is 22 base64url characters");
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert_ne!(random_token(16), random_token(16));
    }

    #[test]
    fn hashes_are_stable_hex() {
        assert_eq!(token_hash("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn sealed_values_open_only_with_the_same_key_and_context() {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).expect("key");
        let sealed = sealer.seal("tracking", "secret-token").expect("seals");
        assert_eq!(sealer.open("tracking", &sealed).expect("opens"), "secret-token");
        assert!(sealer.open("other", &sealed).is_err());
        let other = Sealer::from_base64(&Sealer::generate_key()).expect("key");
        assert!(other.open("tracking", &sealed).is_err());
        assert!(sealer.open("tracking", "garbage").is_err());
        assert!(Sealer::from_base64("c2hvcnQ").is_err());
    }

    #[test]
    fn form_tokens_bind_the_message_the_context_and_the_key() {
        let sealer = Sealer::from_base64(&Sealer::generate_key()).expect("key");
        let token = sealer.sign("proof:stage:1", "hash-a");
        assert!(sealer.verify("proof:stage:1", "hash-a", &token));
        assert!(!sealer.verify("proof:stage:2", "hash-a", &token), "another round");
        assert!(!sealer.verify("proof:stage:1", "hash-b", &token), "another page");
        let other = Sealer::from_base64(&Sealer::generate_key()).expect("key");
        assert!(!other.verify("proof:stage:1", "hash-a", &token), "another server's key");
        assert!(!sealer.verify("proof:stage:1", "hash-a", ""));
    }

    #[test]
    fn constant_time_comparison_is_equality() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
