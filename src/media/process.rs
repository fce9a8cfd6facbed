//! The intake pipeline: size check, type check, decode within limits, renditions.

use super::error::PhotoError;
use super::sniff::{SourceFormat, sniff};
use super::{decode, render};

/// Longest side of the `web` rendition, in pixels.
pub const WEB_MAX_SIDE: u32 = 1600;
/// Longest side of the `thumb` rendition, in pixels.
pub const THUMB_MAX_SIDE: u32 = 400;
/// Longest side of the `small` rendition, in pixels: a 112 px thumbnail slot on a 2x screen.
pub const SMALL_MAX_SIDE: u32 = 224;

/// How big a photo [`process`] accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file, in bytes; checked before anything is decoded.
    pub max_bytes: usize,
    /// Most pixels (width × height) the file may declare; checked from the header, before the
    /// pixels are decoded, and also bounds the decoders' allocations.
    pub max_pixels: u64,
}

impl Limits {
    /// Default for [`Limits::max_bytes`]: 15 MiB, above what phones write for one photo.
    pub const DEFAULT_MAX_BYTES: usize = 15 * 1024 * 1024;
    /// Default for [`Limits::max_pixels`]: 40 megapixels, above common phone cameras' default
    /// output (12–24 MP) and within reach of 48 MP sensors' binned shots.
    pub const DEFAULT_MAX_PIXELS: u64 = 40_000_000;
}

impl Limits {
    /// Memory the decoding of one photo at the pixel limit may take: the decoded pixels and
    /// the rotated and converted copies the pipeline makes of them. Measured 3.5–8.2 bytes a
    /// pixel for 40 MP JPEGs (`cargo bench --bench photos`, docs/benchmarks.md); 16 leaves
    /// room for 16-bit PNGs with transparency, which were not measured.
    pub fn decode_bytes(&self) -> u64 {
        self.max_pixels.saturating_mul(16)
    }

    /// How many photos may be decoded at once so that decoding stays within `budget` bytes and
    /// never uses more threads than `cores`; at least one.
    pub fn concurrent_decodes(&self, budget: u64, cores: usize) -> usize {
        let by_memory = usize::try_from(budget / self.decode_bytes().max(1)).unwrap_or(usize::MAX);
        by_memory.min(cores).max(1)
    }
}

/// Memory all concurrent photo decodes together may take: 768 MiB.
pub const DECODE_BUDGET: u64 = 768 * 1024 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Self { max_bytes: Self::DEFAULT_MAX_BYTES, max_pixels: Self::DEFAULT_MAX_PIXELS }
    }
}

/// A photo that passed intake: what it was, and its clean renditions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Processed {
    /// The format of the uploaded file.
    pub format: SourceFormat,
    /// Width of the upright original, in pixels.
    pub width: u32,
    /// Height of the upright original, in pixels.
    pub height: u32,
    /// For pages: longest side at most [`WEB_MAX_SIDE`], never upscaled.
    pub web: Rendition,
    /// For lists and messages: longest side at most [`THUMB_MAX_SIDE`], never upscaled.
    pub thumb: Rendition,
    /// For small thumbnail slots: longest side at most [`SMALL_MAX_SIDE`], never upscaled.
    pub small: Rendition,
}

/// One re-encoded image, free of metadata.
#[derive(Clone, PartialEq, Eq)]
pub struct Rendition {
    /// The encoded image.
    pub bytes: Vec<u8>,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// MIME type of `bytes` (`image/jpeg`).
    pub content_type: &'static str,
}

impl std::fmt::Debug for Rendition {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rendition")
            .field("bytes", &format_args!("[{} bytes]", self.bytes.len()))
            .field("width", &self.width)
            .field("height", &self.height)
            .field("content_type", &self.content_type)
            .finish()
    }
}

/// Checks, decodes and re-encodes an uploaded photo.
///
/// The type comes from the bytes alone. Files over `limits.max_bytes` are refused before
/// anything else, and files declaring over `limits.max_pixels` before their pixels are
/// decoded. The EXIF orientation is applied, colours are converted to sRGB when the file
/// carries an ICC profile, and the renditions are encoded from pixels only: no metadata of the
/// original reaches them.
///
/// CPU-bound (up to seconds for a large photo): run it in `tokio::task::spawn_blocking`.
pub fn process(bytes: &[u8], limits: &Limits) -> Result<Processed, PhotoError> {
    if bytes.len() > limits.max_bytes {
        return Err(PhotoError::TooLarge { size: bytes.len(), max: limits.max_bytes });
    }
    let format = sniff(bytes)?;
    let decoded = decode::decode(bytes, format, limits)?;
    let (width, height) = (decoded.pixels.width(), decoded.pixels.height());
    let render::Renditions { web, thumb, small } = render::renditions(decoded)?;
    Ok(Processed { format, width, height, web, thumb, small })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_decodes_fit_the_memory_budget_and_the_cores() {
        let at = |max_pixels| Limits { max_pixels, ..Limits::default() };
        // 40 MP takes 640 MB: one at a time in 768 MiB, whatever the cores.
        assert_eq!(at(40_000_000).concurrent_decodes(DECODE_BUDGET, 8), 1);
        // 12 MP photos: four fit, but never more than the cores.
        assert_eq!(at(12_000_000).concurrent_decodes(DECODE_BUDGET, 8), 4);
        assert_eq!(at(12_000_000).concurrent_decodes(DECODE_BUDGET, 2), 2);
        // A limit beyond the budget still decodes, one at a time.
        assert_eq!(at(1_000_000_000).concurrent_decodes(DECODE_BUDGET, 2), 1);
    }
}
