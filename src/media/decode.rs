//! Decoding within limits: the header is read and checked before any pixel buffer exists.

use std::io::Cursor;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, ImageError, ImageFormat, ImageReader, RgbImage, RgbaImage};

use super::error::PhotoError;
use super::process::Limits;
use super::sniff::SourceFormat;

/// The most bytes one pixel takes in any raster the supported decoders produce (RGBA with 16
/// bits a sample, from PNG).
const MAX_BYTES_PER_PIXEL: u64 = 8;

/// Room for decoders' working buffers (rows, compressed chunks) beyond the output raster.
const DECODER_SLACK_BYTES: u64 = 64 * 1024 * 1024;

/// An upright photo, alpha flattened onto white, in the colour space of `icc` (or sRGB).
pub(super) struct Decoded {
    /// 8-bit RGB pixels, already turned by the EXIF orientation.
    pub pixels: RgbImage,
    /// The embedded ICC profile the pixels are in, if any and not yet applied.
    pub icc: Option<Vec<u8>>,
}

pub(super) fn decode(bytes: &[u8], format: SourceFormat, limits: &Limits) -> Result<Decoded, PhotoError> {
    match format {
        SourceFormat::Jpeg => decode_with_image(bytes, format, ImageFormat::Jpeg, limits),
        SourceFormat::Png => decode_with_image(bytes, format, ImageFormat::Png, limits),
        SourceFormat::WebP => decode_with_image(bytes, format, ImageFormat::WebP, limits),
        SourceFormat::Heic => decode_heic(bytes, limits),
    }
}

/// The `image` crate's limits matching ours: a second line of defence should a decoder
/// allocate more than the header suggested.
pub(super) fn decoder_limits(limits: &Limits) -> image::Limits {
    let side = u32::try_from(limits.max_pixels).unwrap_or(u32::MAX);
    let mut out = image::Limits::default();
    out.max_image_width = Some(side);
    out.max_image_height = Some(side);
    out.max_alloc = Some(limits.max_pixels.saturating_mul(MAX_BYTES_PER_PIXEL).saturating_add(DECODER_SLACK_BYTES));
    out
}

fn decode_with_image(
    bytes: &[u8],
    format: SourceFormat,
    image_format: ImageFormat,
    limits: &Limits,
) -> Result<Decoded, PhotoError> {
    let failed = |err: ImageError| match err {
        ImageError::Limits(_) => PhotoError::DecoderLimit { format },
        other => PhotoError::Undecodable { format, reason: other.to_string() },
    };
    let mut budget = decoder_limits(limits);
    let mut reader = ImageReader::with_format(Cursor::new(bytes), image_format);
    reader.limits(budget.clone());
    // Reads the header only: no pixel buffer exists yet.
    let mut decoder = reader.into_decoder().map_err(failed)?;
    let (width, height) = decoder.dimensions();
    check_pixels(width, height, limits)?;
    budget.reserve(decoder.total_bytes()).map_err(failed)?;
    // A damaged EXIF block should not cost the photo: it is read only for the orientation.
    let orientation = decoder.orientation().unwrap_or(Orientation::NoTransforms);
    let icc = decoder.icc_profile().ok().flatten();
    let mut image = DynamicImage::from_decoder(decoder).map_err(failed)?;
    image.apply_orientation(orientation);
    Ok(Decoded { pixels: flatten(image), icc })
}

fn decode_heic(bytes: &[u8], limits: &Limits) -> Result<Decoded, PhotoError> {
    let format = SourceFormat::Heic;
    let failed = |err: heifer::Error| PhotoError::Undecodable { format, reason: err.to_string() };
    let file = heifer::heifer_isobmff::HeifFile::parse(bytes).map_err(|e| failed(e.into()))?;
    let size = file.image_size(file.primary_id).map_err(|e| failed(e.into()))?;
    let Some((width, height)) = size else {
        return Err(PhotoError::Undecodable { format, reason: "the primary image has no size".to_owned() });
    };
    check_pixels(width, height, limits)?;
    // One thread: the caller already runs this on a blocking thread, and other requests
    // deserve the remaining cores.
    let options = heifer::Options { max_threads: 1, max_pixels: limits.max_pixels };
    // HEIF applies its own rotation and mirror (`irot`/`imir`) here; its EXIF orientation is
    // informative only and must not be applied again. Colours arrive in sRGB.
    let image = heifer::decode_srgb_rgba8(bytes, &options).map_err(failed)?;
    let (width, height) = (image.width, image.height);
    let rgba = RgbaImage::from_raw(width, height, image.data).ok_or_else(|| PhotoError::Undecodable {
        format,
        reason: "the decoded image does not match its size".to_owned(),
    })?;
    Ok(Decoded { pixels: flatten(DynamicImage::ImageRgba8(rgba)), icc: None })
}

fn check_pixels(width: u32, height: u32, limits: &Limits) -> Result<(), PhotoError> {
    if u64::from(width) * u64::from(height) > limits.max_pixels {
        return Err(PhotoError::TooManyPixels { width, height, max_pixels: limits.max_pixels });
    }
    Ok(())
}

/// 8-bit RGB with any transparency composited onto white: JPEG has no alpha, and dropping it
/// would show whatever colour transparent pixels happen to hold (often black).
fn flatten(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    let mut rgb = RgbImage::new(rgba.width(), rgba.height());
    for (out, px) in rgb.pixels_mut().zip(rgba.pixels()) {
        let alpha = u32::from(px[3]);
        for c in 0..3 {
            let blended = (u32::from(px[c]) * alpha + 255 * (255 - alpha) + 127) / 255;
            out[c] = u8::try_from(blended).unwrap_or(u8::MAX);
        }
    }
    rgb
}
