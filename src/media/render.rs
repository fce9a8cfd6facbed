//! The renditions: resized from the decoded pixels and encoded afresh, so nothing but pixels
//! carries over from the upload.

use image::codecs::jpeg::JpegEncoder;
use image::imageops::{self, FilterType};
use image::{ExtendedColorType, ImageEncoder, RgbImage};
use moxcms::{ColorProfile, Layout, TransformOptions};

use super::decode::Decoded;
use super::error::PhotoError;
use super::process::{Rendition, SMALL_MAX_SIDE, THUMB_MAX_SIDE, WEB_MAX_SIDE};

/// JPEG quality of every rendition: photos of work pieces stay crisp at about a tenth of the
/// size of quality 95.
const JPEG_QUALITY: u8 = 82;

/// The three renditions of one photo, largest first.
pub(super) struct Renditions {
    pub web: Rendition,
    pub thumb: Rendition,
    pub small: Rendition,
}

pub(super) fn renditions(decoded: Decoded) -> Result<Renditions, PhotoError> {
    let Decoded { pixels, icc } = decoded;
    let mut web = shrink_to_fit(&pixels, WEB_MAX_SIDE).unwrap_or(pixels);
    if let Some(icc) = icc {
        // Converting after the resize touches a fraction of the pixels; the others follow.
        to_srgb(&mut web, &icc);
    }
    let thumb = shrink_to_fit(&web, THUMB_MAX_SIDE);
    let thumb = thumb.as_ref().unwrap_or(&web);
    // From the thumb, not the web copy: a small step keeps the Lanczos filter cheap and sharp.
    let small = shrink_to_fit(thumb, SMALL_MAX_SIDE);
    let small = encode(small.as_ref().unwrap_or(thumb), "small")?;
    Ok(Renditions { thumb: encode(thumb, "thumb")?, web: encode(&web, "web")?, small })
}

/// A copy whose longest side is `max_side`, or `None` if the image already fits: photos are
/// never upscaled.
fn shrink_to_fit(image: &RgbImage, max_side: u32) -> Option<RgbImage> {
    let (width, height) = fit(image.width(), image.height(), max_side)?;
    if image.width().max(image.height()) >= 2 * max_side {
        // Averaging the source pixels each output pixel covers is all the filtering a large
        // reduction needs, and several times faster than Lanczos on a 12 MP photo.
        Some(imageops::thumbnail(image, width, height))
    } else {
        // A small reduction needs a real filter to stay sharp without aliasing.
        Some(imageops::resize(image, width, height, FilterType::Lanczos3))
    }
}

/// The size with the longest side `max_side` and the same aspect ratio, if smaller.
fn fit(width: u32, height: u32, max_side: u32) -> Option<(u32, u32)> {
    let longest = width.max(height);
    if longest <= max_side {
        return None;
    }
    let scale = |side: u32| {
        let scaled = (u64::from(side) * u64::from(max_side) + u64::from(longest) / 2) / u64::from(longest);
        u32::try_from(scaled).unwrap_or(max_side).max(1)
    };
    Some((scale(width), scale(height)))
}

/// Converts pixels from an embedded ICC profile (e.g. Display P3 on phones) to sRGB, which
/// is what browsers assume for an untagged JPEG. A profile that cannot be read is ignored: the
/// colours are then slightly off, which is better than refusing the photo.
fn to_srgb(image: &mut RgbImage, icc: &[u8]) {
    let Ok(profile) = ColorProfile::new_from_slice(icc) else { return };
    let srgb = ColorProfile::new_srgb();
    let Ok(transform) = profile.create_transform_8bit(Layout::Rgb, &srgb, Layout::Rgb, TransformOptions::default())
    else {
        return;
    };
    let mut converted = vec![0; image.as_raw().len()];
    if transform.transform(image.as_raw(), &mut converted).is_ok()
        && let Some(converted) = RgbImage::from_raw(image.width(), image.height(), converted)
    {
        *image = converted;
    }
}

fn encode(image: &RgbImage, rendition: &'static str) -> Result<Rendition, PhotoError> {
    let mut bytes = Vec::new();
    JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .map_err(|err| PhotoError::Encode { rendition, reason: err.to_string() })?;
    Ok(Rendition { bytes, width: image.width(), height: image.height(), content_type: "image/jpeg" })
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn sizes_keep_the_aspect_ratio_and_never_grow() {
        assert_eq!(fit(4000, 3000, 1600), Some((1600, 1200)));
        assert_eq!(fit(3000, 4000, 400), Some((300, 400)));
        assert_eq!(fit(1600, 900, 1600), None);
        assert_eq!(fit(20, 10, 400), None);
        assert_eq!(fit(10_000, 3, 400), Some((400, 1)));
    }
}
