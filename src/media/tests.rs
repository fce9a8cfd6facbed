//! Intake tests on photos built here: real encoders and decoders, no mocks.

mod fixtures;
mod peak_alloc;

use std::io::Cursor;
use std::time::Instant;

use image::{ImageError, ImageFormat, ImageReader, Rgb, RgbImage, Rgba, RgbaImage};

use super::decode::decoder_limits;
use super::*;
use fixtures::*;

fn decode_rendition(rendition: &Rendition) -> RgbImage {
    assert_eq!(rendition.content_type, "image/jpeg");
    let image = image::load_from_memory_with_format(&rendition.bytes, ImageFormat::Jpeg).expect("rendition decodes");
    assert_eq!((image.width(), image.height()), (rendition.width, rendition.height));
    image.into_rgb8()
}

fn close_to(pixel: Rgb<u8>, expected: Rgb<u8>) -> bool {
    pixel.0.iter().zip(expected.0).all(|(a, b)| a.abs_diff(b) < 40)
}

fn assert_no_metadata(rendition: &Rendition) {
    let bytes = &rendition.bytes;
    assert!(!bytes.windows(6).any(|w| w == b"Exif\0\0"), "an EXIF segment survived");
    assert!(!bytes.windows(8).any(|w| w == b"xmpmeta:" || w == b"x:xmpmet"), "an XMP packet survived");
    assert!(!bytes.windows(SECRET_NOTE.len()).any(|w| w == SECRET_NOTE.as_bytes()), "a comment survived");
    assert!(!bytes.windows(11).any(|w| w == b"ICC_PROFILE"), "an ICC profile survived");
    match exif::Reader::new().read_from_container(&mut Cursor::new(bytes)) {
        Err(exif::Error::NotFound(_)) => {}
        Ok(found) => {
            let gps: Vec<_> = found.fields().filter(|f| format!("{}", f.tag).starts_with("GPS")).collect();
            panic!("EXIF survived, GPS fields: {gps:?}");
        }
        Err(other) => panic!("unexpected EXIF reader error: {other}"),
    }
}

#[test]
fn a_text_file_named_jpg_is_refused_as_unsupported() {
    let err = process(b"IMG_0042.jpg\nnot a photo at all\n", &Limits::default()).expect_err("refused");
    assert!(matches!(err, PhotoError::UnsupportedType { found: Some("text") }), "{err:?}");
    assert_eq!(err.to_string(), "unsupported file type (text); send a JPEG, PNG, WebP or HEIC photo");

    let err = process(b"GIF89a\x01\0\x01\0\0\0\0;", &Limits::default()).expect_err("refused");
    assert!(matches!(err, PhotoError::UnsupportedType { found: Some("GIF") }), "{err:?}");
}

#[test]
fn an_oversized_file_is_refused_before_it_is_decoded() {
    let limits = Limits { max_bytes: 1024, ..Limits::default() };
    // A JPEG start followed by garbage: decoding would fail differently.
    let mut bytes = vec![0xFF, 0xD8, 0xFF, 0xE0];
    bytes.resize(1025, 0xAB);
    let err = process(&bytes, &limits).expect_err("refused");
    assert!(matches!(err, PhotoError::TooLarge { size: 1025, max: 1024 }), "{err:?}");

    let err = process(&vec![0; 20 * 1024 * 1024], &Limits::default()).expect_err("refused");
    assert_eq!(err.to_string(), "the photo is 20 MB; the most accepted is 15 MB");
}

#[test]
fn a_pixel_bomb_is_refused_from_its_header_without_allocating_its_pixels() {
    let bomb = png_bomb(50_000, 50_000);
    assert!(bomb.len() < 100, "the bomb is {} bytes", bomb.len());

    let started = Instant::now();
    let (result, largest) = peak_alloc::largest_allocation(|| process(&bomb, &Limits::default()));
    let elapsed = started.elapsed();

    let err = result.expect_err("refused");
    assert!(matches!(err, PhotoError::TooManyPixels { width: 50_000, height: 50_000, .. }), "{err:?}");
    assert_eq!(err.to_string(), "the photo is 50000×50000 pixels; the most accepted is 40 megapixels");
    // Decoding would need 7.5 GB for the pixels alone.
    assert!(largest < 1024 * 1024, "largest allocation while refusing: {largest} bytes");
    println!("pixel bomb refused in {elapsed:?}, largest allocation {largest} bytes");
}

#[test]
fn the_decoder_limits_alone_also_refuse_a_pixel_bomb() {
    // The second line of defence, should a header check ever be bypassed.
    let mut reader = ImageReader::with_format(Cursor::new(png_bomb(50_000, 50_000)), ImageFormat::Png);
    reader.limits(decoder_limits(&Limits::default()));
    let (result, largest) = peak_alloc::largest_allocation(|| reader.decode());
    assert!(matches!(result, Err(ImageError::Limits(_))), "{result:?}");
    assert!(largest < 1024 * 1024, "largest allocation: {largest} bytes");
}

#[test]
fn every_format_is_held_to_the_pixel_limit() {
    let limits = Limits { max_pixels: 5_000, ..Limits::default() };
    let err = process(&jpeg(&two_tone(100, 100)), &limits).expect_err("refused");
    assert!(matches!(err, PhotoError::TooManyPixels { width: 100, height: 100, max_pixels: 5_000 }), "{err:?}");
    let err = process(&webp(&two_tone(100, 100)), &limits).expect_err("refused");
    assert!(matches!(err, PhotoError::TooManyPixels { .. }), "{err:?}");
    let err = process(&heic(100, 100, None), &limits).expect_err("refused");
    assert!(matches!(err, PhotoError::TooManyPixels { .. }), "{err:?}");
}

#[test]
fn a_phone_jpeg_loses_its_gps_position_xmp_and_comment() {
    let upload = with_metadata(&jpeg(&two_tone(64, 48)), &exif_with_gps(1));
    let parsed = exif::Reader::new().read_from_container(&mut Cursor::new(&upload)).expect("the fixture has EXIF");
    assert!(parsed.get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY).is_some(), "the fixture has GPS");

    let processed = process(&upload, &Limits::default()).expect("processed");

    assert_eq!(processed.format, SourceFormat::Jpeg);
    assert_no_metadata(&processed.web);
    assert_no_metadata(&processed.thumb);
    assert_no_metadata(&processed.small);
}

#[test]
fn exif_orientation_6_turns_a_landscape_upload_into_an_upright_portrait() {
    let upload = with_metadata(&jpeg(&two_tone(64, 32)), &exif_with_gps(6));

    let processed = process(&upload, &Limits::default()).expect("processed");

    assert_eq!((processed.width, processed.height), (32, 64));
    let web = decode_rendition(&processed.web);
    assert_eq!(web.dimensions(), (32, 64));
    // Rotating 90° clockwise puts the left (red) half on top.
    assert!(close_to(*web.get_pixel(16, 8), RED), "top is {:?}", web.get_pixel(16, 8));
    assert!(close_to(*web.get_pixel(16, 56), BLUE), "bottom is {:?}", web.get_pixel(16, 56));
    assert_no_metadata(&processed.web);
}

#[test]
fn colours_of_a_display_p3_photo_are_converted_to_srgb() {
    // The same numbers mean a more saturated orange in Display P3 than in sRGB.
    let orange = RgbImage::from_pixel(64, 64, Rgb([200, 100, 50]));

    let tagged = process(&jpeg_display_p3(&orange), &Limits::default()).expect("processed");
    let untagged = process(&jpeg(&orange), &Limits::default()).expect("processed");

    let tagged = *decode_rendition(&tagged.web).get_pixel(32, 32);
    let untagged = *decode_rendition(&untagged.web).get_pixel(32, 32);
    assert!(tagged[0] > untagged[0] + 5 && tagged[2] + 5 < untagged[2], "P3 {tagged:?} vs untagged {untagged:?}");
}

#[test]
fn a_large_jpeg_is_shrunk_to_1600_400_and_224_pixels() {
    let processed = process(&jpeg(&two_tone(2400, 1200)), &Limits::default()).expect("processed");
    assert_eq!((processed.width, processed.height), (2400, 1200));
    assert_eq!((processed.web.width, processed.web.height), (1600, 800));
    assert_eq!((processed.thumb.width, processed.thumb.height), (400, 200));
    assert_eq!((processed.small.width, processed.small.height), (SMALL_MAX_SIDE, 112));
    let thumb = decode_rendition(&processed.thumb);
    assert!(close_to(*thumb.get_pixel(50, 100), RED) && close_to(*thumb.get_pixel(350, 100), BLUE));
    let small = decode_rendition(&processed.small);
    assert!(close_to(*small.get_pixel(28, 56), RED) && close_to(*small.get_pixel(196, 56), BLUE));
    assert!(processed.small.bytes.len() < processed.thumb.bytes.len(), "the small file is the lighter one");
}

#[test]
fn a_transparent_png_is_flattened_onto_white() {
    let upload =
        RgbaImage::from_fn(2000, 1000, |x, _| if x < 1000 { Rgba([0, 0, 0, 0]) } else { Rgba([0, 160, 0, 255]) });

    let processed = process(&png_rgba(&upload), &Limits::default()).expect("processed");

    assert_eq!(processed.format, SourceFormat::Png);
    assert_eq!((processed.web.width, processed.web.height), (1600, 800));
    assert_eq!((processed.thumb.width, processed.thumb.height), (400, 200));
    let web = decode_rendition(&processed.web);
    assert!(close_to(*web.get_pixel(200, 400), Rgb([255, 255, 255])), "{:?}", web.get_pixel(200, 400));
    assert!(close_to(*web.get_pixel(1400, 400), Rgb([0, 160, 0])), "{:?}", web.get_pixel(1400, 400));
}

#[test]
fn a_small_webp_is_accepted_and_never_upscaled() {
    let processed = process(&webp(&two_tone(300, 200)), &Limits::default()).expect("processed");

    assert_eq!(processed.format, SourceFormat::WebP);
    assert_eq!((processed.width, processed.height), (300, 200));
    assert_eq!((processed.web.width, processed.web.height), (300, 200));
    assert_eq!((processed.thumb.width, processed.thumb.height), (300, 200));
    assert_eq!((processed.small.width, processed.small.height), (224, 149));
    let web = decode_rendition(&processed.web);
    assert!(close_to(*web.get_pixel(50, 100), RED) && close_to(*web.get_pixel(250, 100), BLUE));
}

/// A HEIC photo encoded here by heifer, optionally carrying `exif`.
fn heic(width: u32, height: u32, exif: Option<Vec<u8>>) -> Vec<u8> {
    let pixels = two_tone(width, height);
    let data = pixels.pixels().flat_map(|p| [p[0], p[1], p[2], 255]).map(u16::from).collect();
    let image = heifer::Image { width, height, bit_depth: 8, has_alpha: false, data };
    let metadata = heifer::Metadata { exif, ..heifer::Metadata::default() };
    let options = heifer::EncodeOptions { quality: 90, max_threads: 1 };
    heifer::encode_with_metadata(&image, &metadata, &options).expect("encode HEIC")
}

#[test]
fn a_heic_photo_is_decoded_and_loses_its_gps_position() {
    let upload = heic(96, 64, Some(exif_with_gps(1)));
    let metadata = heifer::read_metadata(&upload).expect("the fixture has metadata");
    assert!(metadata.exif_fields().is_some_and(|exif| exif.has_gps()), "the fixture has GPS");

    let processed = process(&upload, &Limits::default()).expect("processed");

    assert_eq!(processed.format, SourceFormat::Heic);
    assert_eq!((processed.width, processed.height), (96, 64));
    let web = decode_rendition(&processed.web);
    assert!(close_to(*web.get_pixel(20, 32), RED) && close_to(*web.get_pixel(76, 32), BLUE));
    assert_no_metadata(&processed.web);
    assert_no_metadata(&processed.thumb);
}

#[test]
#[ignore = "a timing printout, not a check: cargo test --lib media::tests::timing -- --ignored --nocapture"]
fn timing_of_a_12_megapixel_jpeg() {
    let upload = with_metadata(&jpeg(&photo_like(4000, 3000)), &exif_with_gps(6));
    let started = Instant::now();
    let processed = process(&upload, &Limits::default()).expect("processed");
    println!(
        "12 MP JPEG ({} KiB) processed in {:?}: web {}×{} ({} KiB), thumb {}×{} ({} KiB)",
        upload.len() / 1024,
        started.elapsed(),
        processed.web.width,
        processed.web.height,
        processed.web.bytes.len() / 1024,
        processed.thumb.width,
        processed.thumb.height,
        processed.thumb.bytes.len() / 1024,
    );
}
