//! Photo keys: relative paths that cannot climb out of the store's root.

use std::fmt;

/// Longest key accepted, in bytes.
const MAX_KEY_LEN: usize = 200;

/// The key of a stored photo, such as `3f/a9/3fa9…c2.jpg`: `/`-separated segments of ASCII
/// letters, digits, `-`, `_` and `.`, none empty, none starting with a dot (so no `..`, and no
/// clash with the disk store's temporary files), and no leading `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PhotoKey(String);

impl PhotoKey {
    /// A fresh key with 128 random bits, fanned out over two folder levels so that no folder
    /// holds more than a few thousand files; the extension follows `content_type`.
    pub fn random(content_type: &str) -> Self {
        let mut bits = [0u8; 16];
        rand::fill(&mut bits[..]);
        let hex: String = bits.iter().map(|b| format!("{b:02x}")).collect();
        Self(format!("{}/{}/{hex}.{}", &hex[..2], &hex[2..4], extension(content_type)))
    }

    /// Accepts a key read back from the database or a request, refusing anything that could
    /// name a file outside the store.
    pub fn parse(key: &str) -> Result<Self, InvalidPhotoKey> {
        let refuse = |reason| Err(InvalidPhotoKey { key: key.chars().take(MAX_KEY_LEN).collect(), reason });
        if key.is_empty() {
            return refuse("it is empty");
        }
        if key.len() > MAX_KEY_LEN {
            return refuse("it is too long");
        }
        if key.starts_with('/') {
            return refuse("it is an absolute path");
        }
        for segment in key.split('/') {
            if segment.is_empty() {
                return refuse("it has an empty path segment");
            }
            if segment.starts_with('.') {
                return refuse("a path segment starts with a dot");
            }
            if !segment.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
                return refuse("use only letters, digits, '-', '_', '.' and '/'");
            }
        }
        Ok(Self(key.to_owned()))
    }

    /// The key as stored.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Why a string is not a [`PhotoKey`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid photo key `{key}`: {reason}")]
pub struct InvalidPhotoKey {
    /// The key as given (cut short if very long).
    pub key: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

impl fmt::Display for PhotoKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for PhotoKey {
    type Err = InvalidPhotoKey;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

fn extension(content_type: &str) -> &'static str {
    match content_type {
        "image/jpeg" => "jpg",
        "image/webp" => "webp",
        "image/png" => "png",
        _ => "bin",
    }
}
