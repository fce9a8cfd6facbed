//! Photo-upload memory benchmark: N clients at once upload one 40-megapixel JPEG each (the
//! largest photo the default limits accept) to a real `kiln serve` process, whose resident
//! memory is sampled every 10 ms. The server decodes only as many photos at once as
//! `DECODE_BUDGET` allows at `Limits::decode_bytes` per photo, so the peak should not grow
//! with N beyond the buffered request bodies.
//!
//! Two photos: a plain JPEG (no metadata: the lightest decoding path), and the same pixels
//! as a phone writes a portrait shot, with EXIF orientation 6 (turned on decoding, one more
//! full-size copy) and a Display P3 ICC profile (converted to sRGB).
//!
//! ```sh
//! cargo bench --bench photos
//! ```
//! Options after `--`: `--clients N` (one run per photo with N clients; by default one run
//! each with 1, 2, 4, 6 and 8), `--short` (one run, plain photo, 2 clients, for development),
//! `--kiln PATH` (the `kiln` binary; default: the one cargo built for this bench).
//!
//! Each run starts its own `kiln serve` on a fresh SQLite data directory, so that one run's
//! memory (which the allocator may keep) does not count in the next one's.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use image::codecs::jpeg::JpegEncoder;
use image::{ExtendedColorType, ImageEncoder, Rgb, RgbImage};
use kiln::media::{DECODE_BUDGET, Limits};
use reqwest::multipart::{Form, Part};
use serde_json::json;

#[path = "common.rs"]
mod common;

use common::{Server, api, create_write_token, free_port, kiln_command, proc_status_kib, rss_kib, wait_healthy};

/// The photo: 7744 × 5164 = 39,990,016 pixels, just under the default 40,000,000.
const WIDTH: u32 = 7744;
const HEIGHT: u32 = 5164;
const QUALITY: u8 = 85;
/// Every sample of the server's memory is this far apart.
const SAMPLE_EVERY: Duration = Duration::from_millis(10);

/// How the photo was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Pixels only.
    Plain,
    /// EXIF orientation 6 (rotate 90° clockwise to view) and a Display P3 ICC profile.
    Phone,
}

impl Kind {
    fn label(self) -> &'static str {
        match self {
            Kind::Plain => "plain",
            Kind::Phone => "EXIF-rotated, P3",
        }
    }
}

struct Options {
    kinds: Vec<Kind>,
    clients: Vec<usize>,
    kiln: PathBuf,
}

fn options() -> Options {
    let (kinds, clients) = if common::flag("--short") {
        (vec![Kind::Plain], vec![2])
    } else if let Some(n) = common::arg_value("--clients").and_then(|v| v.parse().ok()) {
        (vec![Kind::Plain, Kind::Phone], vec![n])
    } else {
        (vec![Kind::Plain, Kind::Phone], vec![1, 2, 4, 6, 8])
    };
    Options {
        kinds,
        clients,
        kiln: common::arg_value("--kiln").map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_kiln")), PathBuf::from),
    }
}

/// A tiny xorshift generator for the noise.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// EXIF (a little-endian TIFF structure) with one tag: Orientation = 6.
const EXIF_ROTATE_90: &[u8] = &[
    b'I', b'I', 0x2A, 0x00, 0x08, 0x00, 0x00, 0x00, // header, first IFD at offset 8
    0x01, 0x00, // one entry
    0x12, 0x01, 0x03, 0x00, 0x01, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x00, // Orientation, SHORT, 1, 6
    0x00, 0x00, 0x00, 0x00, // no next IFD
];

/// A `width` × `height` JPEG: colour gradients, a soft wave pattern and per-pixel noise of
/// up to ±`noise` (sensor-like grain, which is what makes photos big).
fn jpeg(width: u32, height: u32, noise: u8, kind: Kind) -> Vec<u8> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let (w, h) = (f64::from(width), f64::from(height));
    let span = u64::from(noise) * 2 + 1;
    let pixels = RgbImage::from_fn(width, height, |x, y| {
        let (fx, fy) = (f64::from(x) / w, f64::from(y) / h);
        let wave = 24.0 * ((fx * 37.0).sin() * (fy * 23.0).cos());
        let base = [40.0 + 160.0 * fx + wave, 60.0 + 140.0 * fy - wave, 200.0 - 120.0 * (fx + fy) / 2.0 + wave / 2.0];
        let grain = (rng.next() % span) as f64 - f64::from(noise);
        Rgb(base.map(|c| {
            let chroma = (rng.next() % 5) as f64 - 2.0;
            (c + grain + chroma).clamp(0.0, 255.0) as u8
        }))
    });
    let mut out = Vec::with_capacity(16 << 20);
    let mut encoder = JpegEncoder::new_with_quality(&mut out, QUALITY);
    if kind == Kind::Phone {
        encoder.set_exif_metadata(EXIF_ROTATE_90.to_vec()).expect("EXIF");
        let p3 = moxcms::ColorProfile::new_display_p3().encode().expect("Display P3 profile");
        encoder.set_icc_profile(p3).expect("ICC profile");
    }
    encoder.encode(pixels.as_raw(), width, height, ExtendedColorType::Rgb8).expect("encode JPEG");
    out
}

/// The largest photo the default limits accept: as noisy as fits in `max_bytes`.
fn maximal_photo(kind: Kind) -> Vec<u8> {
    let limits = Limits::default();
    assert!(u64::from(WIDTH) * u64::from(HEIGHT) <= limits.max_pixels);
    let mut noise = 12;
    loop {
        let started = Instant::now();
        let photo = jpeg(WIDTH, HEIGHT, noise, kind);
        println!(
            "  generated a {} {WIDTH}×{HEIGHT} JPEG, quality {QUALITY}, noise ±{noise}: {:.1} MiB in {:.1} s",
            kind.label(),
            photo.len() as f64 / 1048576.0,
            started.elapsed().as_secs_f64()
        );
        if photo.len() <= limits.max_bytes {
            return photo;
        }
        assert!(noise > 1, "even a smooth {WIDTH}×{HEIGHT} JPEG is over {} bytes", limits.max_bytes);
        noise = noise * 2 / 3;
    }
}

/// Samples a process's VmRSS until stopped; the highest value seen, in KiB, and the number of
/// samples.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<(u64, usize)>,
}

impl Sampler {
    fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let (mut peak, mut samples) = (0, 0);
            while !flag.load(Ordering::Relaxed) {
                peak = peak.max(rss_kib(pid));
                samples += 1;
                std::thread::sleep(SAMPLE_EVERY);
            }
            (peak.max(rss_kib(pid)), samples + 1)
        });
        Self { stop, thread }
    }

    fn finish(self) -> (u64, usize) {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("sampler")
    }
}

/// One run's figures (memory in KiB).
struct Run {
    kind: Kind,
    clients: usize,
    statuses: BTreeMap<u16, usize>,
    wall: Duration,
    fastest: Duration,
    slowest: Duration,
    before: u64,
    peak: u64,
    after: u64,
    hwm: u64,
    samples: usize,
}

impl Run {
    fn ok(&self) -> bool {
        self.statuses.keys().all(|s| *s == 201) && self.statuses.values().sum::<usize>() == self.clients
    }
}

/// The multipart form with one photo in field `photo`.
fn form(photo: Vec<u8>, name: &str) -> Form {
    Form::new().part("photo", Part::bytes(photo).file_name(name.to_owned()).mime_str("image/jpeg").expect("mime"))
}

/// `clients` concurrent uploads of `photo` to a fresh `kiln serve`.
fn run(kiln: &Path, kind: Kind, photo: &Arc<Vec<u8>>, clients: usize, runtime: &tokio::runtime::Runtime) -> Run {
    let data_dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let base = format!("http://127.0.0.1:{port}");
    let token = create_write_token(kiln, data_dir.path(), port);
    let child = kiln_command(kiln, data_dir.path(), port)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn `kiln serve`");
    let server = Server { child };
    let pid = server.child.id();

    let run = runtime.block_on(async {
        let client = reqwest::Client::new();
        wait_healthy(&client, &base).await;
        let order = json!({
            "workflow": "stone",
            "stage": "fabrication",
            "customer": { "name": "Ana Ribeiro", "email": "ana@example.com", "language": "en" },
            "items": [{ "description": "Kitchen countertop", "variant": "320 x 65 cm", "quantity": 1, "material": "Calacatta" }],
        });
        let (status, created) = api(&client, &base, &token, "/orders", &order).await;
        assert_eq!(status, 201, "create order: {created}");
        let reference = created["reference"].as_str().expect("reference").to_owned();
        let url = format!("{base}/api/v1/orders/{reference}/photos");

        // Warm up the upload path (multipart, decoding, renditions, storage) with a small photo.
        let small = jpeg(640, 480, 8, kind);
        let res = client.post(&url).bearer_auth(&token).multipart(form(small, "small.jpg")).send().await;
        let res = res.expect("warm-up upload");
        let status = res.status().as_u16();
        assert_eq!(status, 201, "warm-up upload: {}", res.text().await.unwrap_or_default());
        tokio::time::sleep(Duration::from_secs(1)).await;
        let before = rss_kib(pid);

        // Forms are built before the clock starts: each client sends its own copy.
        let forms: Vec<Form> = (0..clients).map(|c| form(photo.to_vec(), &format!("bench-{c}.jpg"))).collect();
        let sampler = Sampler::start(pid);
        let started = Instant::now();
        let mut tasks = Vec::with_capacity(clients);
        for form in forms {
            let (client, url, token) = (client.clone(), url.clone(), token.clone());
            tasks.push(tokio::spawn(async move {
                let sent = Instant::now();
                let res = client.post(&url).bearer_auth(&token).multipart(form).send().await.expect("upload");
                let status = res.status().as_u16();
                let body = res.text().await.unwrap_or_default();
                (status, body, sent.elapsed())
            }));
        }
        let (mut statuses, mut latencies) = (BTreeMap::new(), Vec::with_capacity(clients));
        for t in tasks {
            let (status, body, took) = t.await.expect("client");
            if status != 201 {
                eprintln!("  upload answered {status}: {}", body.chars().take(300).collect::<String>());
            }
            *statuses.entry(status).or_default() += 1;
            latencies.push(took);
        }
        let wall = started.elapsed();
        let (peak, samples) = sampler.finish();
        tokio::time::sleep(Duration::from_secs(1)).await;
        latencies.sort_unstable();
        Run {
            kind,
            clients,
            statuses,
            wall,
            fastest: latencies.first().copied().unwrap_or_default(),
            slowest: latencies.last().copied().unwrap_or_default(),
            before,
            peak,
            after: rss_kib(pid),
            hwm: proc_status_kib(pid, "VmHWM"),
            samples,
        }
    });
    drop(server);
    run
}

fn mib(kib: u64) -> String {
    format!("{:.0}", kib as f64 / 1024.0)
}

fn main() {
    if common::listing() {
        return;
    }
    let o = options();
    let limits = Limits::default();
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let pixels = u64::from(WIDTH) * u64::from(HEIGHT);
    println!(
        "photo uploads to `kiln serve` ({}), SQLite, {cores} cores: the server decodes at most {} photo(s) at once \
         ({} MiB budget, {} MiB estimated per {:.0}-MP photo)",
        o.kiln.display(),
        limits.concurrent_decodes(DECODE_BUDGET, cores),
        DECODE_BUDGET >> 20,
        limits.decode_bytes() >> 20,
        limits.max_pixels as f64 / 1e6,
    );
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("runtime");

    let mut runs = Vec::new();
    let mut sizes = Vec::new();
    for &kind in &o.kinds {
        let photo = Arc::new(maximal_photo(kind));
        sizes.push(format!("{} {:.1} MiB", kind.label(), photo.len() as f64 / 1048576.0));
        for &clients in &o.clients {
            let r = run(&o.kiln, kind, &photo, clients, &runtime);
            println!(
                "  {clients} client(s): {:?} in {:.1} s; RSS {} → peak {} → {} MiB after (VmHWM {} MiB, {} samples)",
                r.statuses,
                r.wall.as_secs_f64(),
                mib(r.before),
                mib(r.peak),
                mib(r.after),
                mib(r.hwm),
                r.samples,
            );
            runs.push(r);
        }
    }

    println!();
    println!(
        "{WIDTH}×{HEIGHT} JPEGs ({:.1} MP; {}), quality {QUALITY}; RSS in MiB, sampled every {} ms",
        pixels as f64 / 1e6,
        sizes.join(", "),
        SAMPLE_EVERY.as_millis()
    );
    println!();
    println!(
        "| photo | clients | statuses | wall | fastest / slowest upload | RSS before | peak RSS | RSS after | VmHWM | peak − before | (peak − before) / pixels |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for r in &runs {
        let statuses: Vec<String> = r.statuses.iter().map(|(s, n)| format!("{n}× {s}")).collect();
        let grown = r.peak.saturating_sub(r.before);
        println!(
            "| {} | {} | {} | {:.1} s | {:.1} / {:.1} s | {} | {} | {} | {} | {} | {:.1} B |",
            r.kind.label(),
            r.clients,
            statuses.join(", "),
            r.wall.as_secs_f64(),
            r.fastest.as_secs_f64(),
            r.slowest.as_secs_f64(),
            mib(r.before),
            mib(r.peak),
            mib(r.after),
            mib(r.hwm),
            mib(grown),
            (grown * 1024) as f64 / pixels as f64,
        );
    }
    assert!(runs.iter().all(Run::ok), "every upload must be answered 201 Created");
}
