//! Bench photos for the demo, drawn at start-up so that nothing is downloaded: a marble slab,
//! a ring on velvet, milled parts, a print run. Deterministic for a given seed.

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};

const WIDTH: u32 = 800;
const HEIGHT: u32 = 600;

/// A JPEG picture for an order of `workflow`, varied by `seed`.
pub fn picture(workflow: &str, seed: u32) -> anyhow::Result<Vec<u8>> {
    let image = match workflow {
        "stone" => marble(seed),
        "jewelry" => ring(seed),
        "jobshop" => parts(seed),
        _ => print_run(seed),
    };
    let mut out = Vec::new();
    JpegEncoder::new_with_quality(&mut out, 85).write_image(image.as_raw(), WIDTH, HEIGHT, ExtendedColorType::Rgb8)?;
    Ok(out)
}

/// A channel value; clamped first, so the cast only drops the fraction.
fn clamp(v: f32) -> u8 {
    v.clamp(0.0, 255.0) as u8
}

/// Cheap value noise: smooth enough for veins and grain.
fn noise(x: f32, y: f32, seed: u32) -> f32 {
    let s = seed as f32 * 0.37;
    ((x * 0.013 + s).sin() * (y * 0.021 - s).cos() + (x * 0.031 + y * 0.017 + s * 2.0).sin() * 0.5) / 1.5
}

fn marble(seed: u32) -> RgbImage {
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let vein = ((fx * 0.02 + fy * 0.035 + noise(fx, fy, seed) * 4.0).sin()).abs().powf(0.25);
        let base = 232.0 - (1.0 - vein) * 120.0 + noise(fy, fx, seed + 7) * 6.0;
        Rgb([clamp(base), clamp(base - 3.0), clamp(base - 8.0)])
    })
}

fn ring(seed: u32) -> RgbImage {
    let (cx, cy) = (WIDTH as f32 / 2.0, HEIGHT as f32 / 2.0 + (seed % 5) as f32 * 4.0);
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (dx, dy) = (x as f32 - cx, (y as f32 - cy) * 1.6);
        let r = (dx * dx + dy * dy).sqrt();
        let band = (r - 170.0).abs();
        if band < 26.0 {
            let shine = 1.0 - band / 26.0;
            let glint = ((dx.atan2(dy) * 3.0 + seed as f32).sin() * 0.5 + 0.5) * 60.0;
            Rgb([
                clamp(170.0 + shine * 70.0 + glint),
                clamp(120.0 + shine * 70.0 + glint * 0.8),
                clamp(30.0 + shine * 40.0),
            ])
        } else {
            let velvet = 40.0 + noise(x as f32 * 3.0, y as f32 * 3.0, seed) * 8.0 - r * 0.03;
            Rgb([clamp(velvet + 25.0), clamp(velvet * 0.3), clamp(velvet * 0.5)])
        }
    })
}

fn parts(seed: u32) -> RgbImage {
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let (fx, fy) = (x as f32, y as f32);
        let brushed = 150.0 + (fx * 0.9 + (fy * 0.05).sin() * 3.0).sin() * 10.0 + noise(fx * 4.0, fy, seed) * 6.0;
        let (gx, gy) = ((x % 200) as f32 - 100.0, (y % 200) as f32 - 100.0);
        let hole = (gx * gx + gy * gy).sqrt();
        let v = if hole < 28.0 {
            35.0
        } else if hole < 34.0 {
            brushed + 50.0
        } else {
            brushed
        };
        Rgb([clamp(v), clamp(v + 4.0), clamp(v + 10.0)])
    })
}

fn print_run(seed: u32) -> RgbImage {
    let palette = [[232, 72, 85], [46, 134, 171], [241, 196, 15], [39, 174, 96], [142, 68, 173]];
    RgbImage::from_fn(WIDTH, HEIGHT, |x, y| {
        let sheet = ((x + y / 3 + seed * 37) / 90) as usize % palette.len();
        let [r, g, b] = palette[sheet];
        let edge = if (x + y / 3 + seed * 37) % 90 < 4 { 0.6 } else { 1.0 };
        let paper = noise(x as f32 * 5.0, y as f32 * 5.0, seed) * 5.0;
        Rgb([clamp(r as f32 * edge + paper), clamp(g as f32 * edge + paper), clamp(b as f32 * edge + paper)])
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_workshop_gets_a_real_jpeg() {
        for wf in ["stone", "jewelry", "jobshop", "print"] {
            let bytes = picture(wf, 3).expect("encodes");
            let decoded = image::load_from_memory(&bytes).expect("decodes");
            assert_eq!((decoded.width(), decoded.height()), (WIDTH, HEIGHT));
        }
    }
}
