//! Why a photo was refused.

use super::sniff::SourceFormat;

/// Why [`process`](super::process) refused a photo. Every message can be shown to the person
/// who uploaded it.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The file has no bytes at all.
    #[error("the file is empty")]
    Empty,
    /// The file is bigger than [`Limits::max_bytes`](super::Limits::max_bytes); nothing was
    /// decoded.
    #[error("the photo is {} MB; the most accepted is {} MB", megabytes(*.size as u64), megabytes(*.max as u64))]
    TooLarge {
        /// Size of the file in bytes.
        size: usize,
        /// The limit in bytes.
        max: usize,
    },
    /// The bytes are not a JPEG, PNG, WebP or HEIC image. `found` names what they look like,
    /// when that is known (e.g. `GIF`, `PDF`, `text`).
    #[error("unsupported file type ({}); send a JPEG, PNG, WebP or HEIC photo", .found.unwrap_or("not a known image format"))]
    UnsupportedType {
        /// What the file looks like, if recognised.
        found: Option<&'static str>,
    },
    /// The header declares more pixels than [`Limits::max_pixels`](super::Limits::max_pixels)
    /// (or than a decoder's own memory limit allows); nothing was decoded.
    #[error("the photo is {width}×{height} pixels; the most accepted is {} megapixels", megapixels(*.max_pixels))]
    TooManyPixels {
        /// Width declared by the file.
        width: u32,
        /// Height declared by the file.
        height: u32,
        /// The limit in pixels.
        max_pixels: u64,
    },
    /// Decoding would need more memory than allowed, although the declared size is within
    /// limits (a file crafted to exhaust memory, or a format feature that needs large buffers).
    #[error("the {format} photo needs too much memory to decode")]
    DecoderLimit {
        /// The format detected.
        format: SourceFormat,
    },
    /// The file starts like an image of a supported type but cannot be decoded.
    #[error("the {format} photo cannot be read: {reason}")]
    Undecodable {
        /// The format detected.
        format: SourceFormat,
        /// What the decoder reported.
        reason: String,
    },
    /// Writing the renditions failed; a bug rather than a problem with the photo.
    #[error("cannot encode the {rendition} rendition: {reason}")]
    Encode {
        /// `web`, `thumb` or `small`.
        rendition: &'static str,
        /// What the encoder reported.
        reason: String,
    },
}

fn megabytes(bytes: u64) -> String {
    format_one_decimal(bytes, 1024 * 1024)
}

fn megapixels(pixels: u64) -> String {
    format_one_decimal(pixels, 1_000_000)
}

/// `value / unit` with at most one decimal, without going through floats.
fn format_one_decimal(value: u64, unit: u64) -> String {
    let tenths = (u128::from(value) * 10 + u128::from(unit) / 2) / u128::from(unit);
    if tenths % 10 == 0 { format!("{}", tenths / 10) } else { format!("{}.{}", tenths / 10, tenths % 10) }
}
