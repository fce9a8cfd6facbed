//! What a file is, from its first bytes: the name and the declared Content-Type are whatever
//! the client says, so they are never consulted.

use std::fmt;

use super::error::PhotoError;

/// The formats [`process`](super::process) accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SourceFormat {
    /// JPEG (JFIF or EXIF).
    Jpeg,
    /// PNG.
    Png,
    /// WebP, lossy or lossless.
    WebP,
    /// HEIC: HEVC-coded HEIF, the default of iPhones and many Android phones.
    Heic,
}

impl SourceFormat {
    /// A stable lowercase name, for storing: `jpeg`, `png`, `webp` or `heic`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Jpeg => "jpeg",
            Self::Png => "png",
            Self::WebP => "webp",
            Self::Heic => "heic",
        }
    }
}

impl fmt::Display for SourceFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Jpeg => "JPEG",
            Self::Png => "PNG",
            Self::WebP => "WebP",
            Self::Heic => "HEIC",
        })
    }
}

/// Detects the format from magic bytes; anything else is refused, named when recognised.
pub(super) fn sniff(bytes: &[u8]) -> Result<SourceFormat, PhotoError> {
    if bytes.is_empty() {
        return Err(PhotoError::Empty);
    }
    if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Ok(SourceFormat::Jpeg);
    }
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Ok(SourceFormat::Png);
    }
    if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        return Ok(SourceFormat::WebP);
    }
    if let Some(brands) = ftyp_brands(bytes) {
        return iso_media(&brands);
    }
    Err(PhotoError::UnsupportedType { found: other_kind(bytes) })
}

/// The major and compatible brands of an ISO base media file (HEIF, AVIF, MP4, MOV).
fn ftyp_brands(bytes: &[u8]) -> Option<Vec<&[u8]>> {
    if bytes.len() < 12 || &bytes[4..8] != b"ftyp" {
        return None;
    }
    let size = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    let end = usize::try_from(size).unwrap_or(usize::MAX).clamp(12, bytes.len());
    // Major brand at 8, minor version at 12, then the compatible brands.
    let mut brands = vec![&bytes[8..12]];
    brands.extend(bytes.get(16..end).unwrap_or_default().chunks_exact(4));
    Some(brands)
}

fn iso_media(brands: &[&[u8]]) -> Result<SourceFormat, PhotoError> {
    const HEIC: [&[u8]; 4] = [b"heic", b"heix", b"heim", b"heis"];
    let has = |set: &[&[u8]]| brands.iter().any(|b| set.contains(b));
    if has(&HEIC) {
        return Ok(SourceFormat::Heic);
    }
    let found = if has(&[b"avif", b"avis"]) {
        "AVIF"
    } else if has(&[b"hevc", b"hevx", b"msf1"]) {
        "HEIF image sequence"
    } else if has(&[b"mif1", b"mif2"]) {
        "HEIF without HEVC"
    } else if has(&[b"crx "]) {
        "Canon raw"
    } else {
        "video"
    };
    Err(PhotoError::UnsupportedType { found: Some(found) })
}

/// A name for a file that is not a supported image, if it is something common.
fn other_kind(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: &[(&[u8], &str)] = &[
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"%PDF-", "PDF"),
        (b"II*\0", "TIFF or camera raw"),
        (b"MM\0*", "TIFF or camera raw"),
        (b"BM", "BMP"),
        (b"\xFF\x0A", "JPEG XL"),
        (b"\0\0\0\x0CJXL \r\n\x87\n", "JPEG XL"),
        (b"\0\0\0\x0CjP  \r\n\x87\n", "JPEG 2000"),
        (b"8BPS", "Photoshop"),
        (b"PK\x03\x04", "ZIP archive or office document"),
        (b"\x1f\x8b", "gzip archive"),
        (b"\x7fELF", "executable"),
        (b"MZ", "executable"),
    ];
    if let Some((_, name)) = SIGNATURES.iter().find(|(magic, _)| bytes.starts_with(magic)) {
        return Some(name);
    }
    let head = &bytes[..bytes.len().min(512)];
    let text = match std::str::from_utf8(head) {
        Ok(text) => text,
        // A multi-byte character cut off at the end of the sample is still text.
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&head[..e.valid_up_to()]).unwrap_or_default(),
        Err(_) => return None,
    };
    if text.is_empty() || text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r' | '\x0C')) {
        return None;
    }
    let start = text.trim_start_matches('\u{feff}').trim_start().to_ascii_lowercase();
    Some(if start.starts_with("<svg") || start.starts_with("<?xml") {
        "SVG or XML"
    } else if start.starts_with("<!doctype html") || start.starts_with("<html") {
        "HTML"
    } else {
        "text"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(bytes: &[u8]) -> Option<&'static str> {
        match sniff(bytes) {
            Err(PhotoError::UnsupportedType { found }) => found,
            other => panic!("expected an unsupported type, got {other:?}"),
        }
    }

    #[test]
    fn supported_formats_are_recognised_by_their_magic_bytes() {
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF").ok(), Some(SourceFormat::Jpeg));
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR").ok(), Some(SourceFormat::Png));
        assert_eq!(sniff(b"RIFF\x24\0\0\0WEBPVP8 ").ok(), Some(SourceFormat::WebP));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic\0\0\0\0mif1heic").ok(), Some(SourceFormat::Heic));
        assert_eq!(sniff(b"\0\0\0\x18ftypmif1\0\0\0\0mif1heic").ok(), Some(SourceFormat::Heic));
    }

    #[test]
    fn other_files_are_refused_and_named_when_recognised() {
        assert_eq!(found(b"GIF89a\x01\0\x01\0"), Some("GIF"));
        assert_eq!(found(b"%PDF-1.7\n"), Some("PDF"));
        assert_eq!(found(b"\0\0\0\x1cftypavif\0\0\0\0avifmif1miaf"), Some("AVIF"));
        assert_eq!(found(b"\0\0\0\x14ftypqt  \0\0\0\0qt  "), Some("video"));
        assert_eq!(found(b"<?xml version=\"1.0\"?><svg/>"), Some("SVG or XML"));
        assert_eq!(found("holiday photo, caf\u{e9}".as_bytes()), Some("text"));
        assert_eq!(found(&[0, 1, 2, 3, 0xFE, 0xFF, 0x80]), None);
        assert!(matches!(sniff(b""), Err(PhotoError::Empty)));
    }
}
