//! Photos built in the tests: encoded with the `image` crate, then given the metadata a phone
//! would add, or a header that lies.

use std::io::Cursor;

use exif::experimental::Writer;
use exif::{Field, In, Rational, Tag, Value};
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::PngEncoder;
use image::codecs::webp::WebPEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage, RgbaImage};

pub const RED: Rgb<u8> = Rgb([220, 20, 20]);
pub const BLUE: Rgb<u8> = Rgb([20, 20, 220]);

/// Text that must not survive processing, placed in the XMP packet and the JPEG comment.
pub const SECRET_NOTE: &str = "Taken at 12 Quarry Lane by Jane";

/// Left half red, right half blue: shows which way an image was turned.
pub fn two_tone(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, _| if x < width / 2 { RED } else { BLUE })
}

/// Smooth gradients with some texture, roughly as costly to code as a photo.
pub fn photo_like(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let texture = (x.wrapping_mul(7919) ^ y.wrapping_mul(104_729)) % 23;
        let channel = |v: u32| u8::try_from(v % 256).unwrap_or(0);
        Rgb([channel(x * 255 / width + texture), channel(y * 255 / height + texture), channel((x + y) / 16 + texture)])
    })
}

pub fn jpeg(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 90)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .expect("encode JPEG");
    out
}

/// `image` as a JPEG tagged with the Display P3 colour profile, as phones write them.
pub fn jpeg_display_p3(image: &RgbImage) -> Vec<u8> {
    let profile = moxcms::ColorProfile::new_display_p3().encode().expect("encode ICC profile");
    let mut out = Vec::new();
    let mut encoder = JpegEncoder::new_with_quality(&mut out, 90);
    encoder.set_icc_profile(profile).expect("JPEG takes ICC profiles");
    encoder.write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8).expect("encode JPEG");
    out
}

pub fn png_rgba(image: &RgbaImage) -> Vec<u8> {
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgba8)
        .expect("encode PNG");
    out
}

pub fn webp(image: &RgbImage) -> Vec<u8> {
    let mut out = Vec::new();
    WebPEncoder::new_lossless(&mut out)
        .write_image(image.as_raw(), image.width(), image.height(), ExtendedColorType::Rgb8)
        .expect("encode WebP");
    out
}

/// An EXIF block (TIFF structure) as a phone writes it: camera, orientation and a GPS
/// position.
pub fn exif_with_gps(orientation: u16) -> Vec<u8> {
    let degrees = |d, m, s100| Value::Rational(vec![r(d, 1), r(m, 1), r(s100, 100)]);
    let fields = [
        Field { tag: Tag::Make, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"KilnTestPhone".to_vec()]) },
        Field { tag: Tag::Orientation, ifd_num: In::PRIMARY, value: Value::Short(vec![orientation]) },
        Field { tag: Tag::GPSVersionID, ifd_num: In::PRIMARY, value: Value::Byte(vec![2, 3, 0, 0]) },
        Field { tag: Tag::GPSLatitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"N".to_vec()]) },
        Field { tag: Tag::GPSLatitude, ifd_num: In::PRIMARY, value: degrees(48, 51, 2496) },
        Field { tag: Tag::GPSLongitudeRef, ifd_num: In::PRIMARY, value: Value::Ascii(vec![b"E".to_vec()]) },
        Field { tag: Tag::GPSLongitude, ifd_num: In::PRIMARY, value: degrees(2, 17, 4012) },
    ];
    let mut writer = Writer::new();
    for field in &fields {
        writer.push_field(field);
    }
    let mut out = Cursor::new(Vec::new());
    writer.write(&mut out, false).expect("write EXIF");
    out.into_inner()
}

fn r(num: u32, denom: u32) -> Rational {
    Rational { num, denom }
}

/// `jpeg` with an EXIF segment, an XMP packet and a comment inserted after the start marker,
/// where cameras put them.
pub fn with_metadata(jpeg: &[u8], exif: &[u8]) -> Vec<u8> {
    let xmp = format!(
        "http://ns.adobe.com/xap/1.0/\0<x:xmpmeta xmlns:x=\"adobe:ns:meta/\"><dc:description>{SECRET_NOTE}\
         </dc:description></x:xmpmeta>"
    );
    let mut out = jpeg[..2].to_vec();
    segment(&mut out, 0xE1, &[b"Exif\0\0".as_slice(), exif].concat());
    segment(&mut out, 0xE1, xmp.as_bytes());
    segment(&mut out, 0xFE, SECRET_NOTE.as_bytes());
    out.extend_from_slice(&jpeg[2..]);
    out
}

fn segment(out: &mut Vec<u8>, marker: u8, payload: &[u8]) {
    let len = u16::try_from(payload.len() + 2).expect("segment fits");
    out.extend_from_slice(&[0xFF, marker]);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
}

/// A real 1×1 PNG whose header then claims `width`×`height`, with the header's CRC fixed so
/// decoders trust it: a few dozen bytes that would decode to gigabytes.
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = Vec::new();
    PngEncoder::new(&mut png).write_image(&[0, 0, 0], 1, 1, ExtendedColorType::Rgb8).expect("encode PNG");
    // Signature (8), IHDR length (4), "IHDR" (4), width, height, five more fields, CRC.
    assert_eq!(&png[12..16], b"IHDR");
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&png[12..29]);
    png[29..33].copy_from_slice(&crc.to_be_bytes());
    png
}

/// CRC-32 as PNG chunks use it (ISO 3309), bit by bit: slow, and enough for one chunk.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn the_crc_matches_the_png_specification() {
    assert_eq!(crc32(b"IEND"), 0xAE42_6082);
}
