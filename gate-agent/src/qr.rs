//! Camera path: frame sources, QR decoding with rxing, and the decode worker.
//!
//! The worker always decodes the newest frame (older ones waiting are dropped),
//! spends extra effort on a frame only within its time budget, survives a
//! panicking decoder, and ignores a code that is still in view after its
//! verdict, so one ticket held up to the camera is scanned once.

use std::collections::HashMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use image::GrayImage;
use rxing::common::{GlobalHistogramBinarizer, HybridBinarizer};
use rxing::multi::MultipleBarcodeReader;
use rxing::{
    BarcodeFormat, BinaryBitmap, DecodeHints, Luma8LuminanceSource, MultiFormatReader, Reader,
};

use crate::agent::{Input, InputContext};
use crate::gate::Scan;

/// How hard to look at a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effort {
    /// One pass of the multi-code reader: what every frame gets first.
    Fast,
    /// The slower passes, cheapest first, stopping at the first that finds a
    /// code; each is started only before `until` (`None`: all of them).
    Harder { until: Option<Instant> },
}

/// Every QR payload rxing finds in a grayscale frame. `try_harder` adds the
/// slower passes (rotations, inverted codes, another binarizer, a smaller
/// copy of the frame), all of them.
pub fn decode_frame(frame: &GrayImage, try_harder: bool) -> Vec<String> {
    let effort = if try_harder {
        Effort::Harder { until: None }
    } else {
        Effort::Fast
    };
    decode_with_effort(frame, effort)
}

/// Every QR payload rxing finds in a grayscale frame with the given effort.
///
/// The passes after the first, measured on ZXing's blackbox QR photos (see
/// "Camera decoding on real photos" in docs/benchmarks.md):
/// 1. the multi-code reader again, trying harder and inverted codes;
/// 2. the single-code readers (rxing's port of zxing-cpp's, then ZXing's),
///    which get some single damaged codes the multi reader misses;
/// 3. the same with the global histogram binarizer instead of the hybrid one
///    (it reads photos there that the hybrid binarizer's local thresholds
///    do not);
/// 4. the same on the frame scaled to three quarters (it reads photos there
///    that the full-size frame does not).
pub fn decode_with_effort(frame: &GrayImage, effort: Effort) -> Vec<String> {
    let (w, h) = frame.dimensions();
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let try_harder = effort != Effort::Fast;
    let hints = DecodeHints {
        PossibleFormats: Some(std::collections::HashSet::from([BarcodeFormat::QR_CODE])),
        TryHarder: Some(try_harder),
        AlsoInverted: Some(try_harder),
        ..DecodeHints::default()
    };
    let mut found = multi_pass(frame, &hints);
    let Effort::Harder { until } = effort else {
        return found;
    };
    let in_time = || until.is_none_or(|t| Instant::now() < t);
    if found.is_empty() && in_time() {
        found.extend(single_pass(frame, &hints, Binarization::Hybrid));
    }
    if found.is_empty() && in_time() {
        found.extend(single_pass(frame, &hints, Binarization::Global));
    }
    if found.is_empty() && in_time() {
        found.extend(single_pass(
            &three_quarters(frame),
            &hints,
            Binarization::Hybrid,
        ));
    }
    found.dedup();
    found
}

fn luma_source(frame: &GrayImage) -> Option<Luma8LuminanceSource> {
    let (w, h) = frame.dimensions();
    Luma8LuminanceSource::new(frame.as_raw().clone(), w, h).ok()
}

/// Every code the multi-code reader finds.
fn multi_pass(frame: &GrayImage, hints: &DecodeHints) -> Vec<String> {
    let Some(source) = luma_source(frame) else {
        return Vec::new();
    };
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    rxing::multi::qrcode::QRCodeMultiReader::new()
        .decode_multiple_with_hints(&mut bitmap, hints)
        .map(|results| results.iter().map(|r| r.getText().to_owned()).collect())
        .unwrap_or_default()
}

#[derive(Debug, Clone, Copy)]
enum Binarization {
    Hybrid,
    Global,
}

/// The one code the single-code readers find, if any.
fn single_pass(
    frame: &GrayImage,
    hints: &DecodeHints,
    binarization: Binarization,
) -> Option<String> {
    let source = luma_source(frame)?;
    let mut reader = MultiFormatReader::default();
    let result = match binarization {
        Binarization::Hybrid => {
            reader.decode_with_hints(&mut BinaryBitmap::new(HybridBinarizer::new(source)), hints)
        }
        Binarization::Global => reader.decode_with_hints(
            &mut BinaryBitmap::new(GlobalHistogramBinarizer::new(source)),
            hints,
        ),
    };
    result.ok().map(|r| r.getText().to_owned())
}

/// The frame at three quarters of its size (columns and rows past the last
/// whole block of four dropped), each new pixel the exact area average
/// of the pixels it covers: along each axis four pixels a, b, c, d become
/// (3a + b) / 4, (b + c) / 2 and (c + 3d) / 4.
pub fn three_quarters(frame: &GrayImage) -> GrayImage {
    const WEIGHTS: [[u16; 2]; 3] = [[3, 1], [2, 2], [1, 3]];
    let (w, h) = (frame.width() as usize, frame.height() as usize);
    let (w2, h2) = (w / 4 * 3, h / 4 * 3);
    if w2 == 0 || h2 == 0 {
        return GrayImage::new(0, 0);
    }
    // Along the rows first; values stay multiplied by 4.
    let mut rows = vec![0u16; w2 * h];
    for (line, out) in frame
        .as_raw()
        .chunks_exact(w)
        .zip(rows.chunks_exact_mut(w2))
    {
        for (p, o) in line.chunks_exact(4).zip(out.chunks_exact_mut(3)) {
            for (k, [a, b]) in WEIGHTS.iter().enumerate() {
                o[k] = u16::from(p[k]) * a + u16::from(p[k + 1]) * b;
            }
        }
    }
    // Then down the columns: values times 16, rounded.
    let mut pixels = vec![0u8; w2 * h2];
    for (block, out) in rows
        .chunks_exact(4 * w2)
        .zip(pixels.chunks_exact_mut(3 * w2))
    {
        let row = |i: usize| &block[i * w2..(i + 1) * w2];
        for (k, [a, b]) in WEIGHTS.iter().enumerate() {
            let (upper, lower) = (row(k), row(k + 1));
            for (x, o) in out[k * w2..(k + 1) * w2].iter_mut().enumerate() {
                *o = ((upper[x] * a + lower[x] * b + 8) / 16) as u8;
            }
        }
    }
    GrayImage::from_raw(w2 as u32, h2 as u32, pixels).unwrap_or_default()
}

/// Decodes one frame: a fast pass, then the slow passes only while the budget
/// lasts (the first of them only if the fast pass used less than half of it).
pub fn decode_within_budget(decoder: &Decoder, frame: &GrayImage, budget: Duration) -> Vec<String> {
    let started = Instant::now();
    let fast = decoder(frame, Effort::Fast);
    if !fast.is_empty() || started.elapsed() * 2 >= budget {
        return fast;
    }
    decoder(
        frame,
        Effort::Harder {
            until: Some(started + budget),
        },
    )
}

/// A QR decoder; swappable so tests can inject one that panics.
pub type Decoder = Arc<dyn Fn(&GrayImage, Effort) -> Vec<String> + Send + Sync>;

pub fn rxing_decoder() -> Decoder {
    Arc::new(decode_with_effort)
}

/// Remembers codes recently decided so the same code held in view is passed on
/// once. A code stays suppressed while it keeps being seen, and for `window_ms`
/// after it was last seen. Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct RepeatFilter {
    window_ms: u64,
    last_seen: HashMap<String, u64>,
}

impl RepeatFilter {
    pub fn new(window_ms: u64) -> Self {
        Self {
            window_ms,
            last_seen: HashMap::new(),
        }
    }

    /// Whether `code` seen at `now_ms` should go to the decision loop.
    pub fn pass(&mut self, code: &str, now_ms: u64) -> bool {
        let window = self.window_ms;
        self.last_seen
            .retain(|_, seen| now_ms.saturating_sub(*seen) < window);
        let fresh = !self.last_seen.contains_key(code);
        self.last_seen.insert(code.to_owned(), now_ms);
        fresh
    }
}

/// Where camera frames come from.
pub trait FrameSource: Send {
    /// The next frame, or `None` when the source has ended (a folder played out).
    fn next_frame(&mut self) -> Result<Option<GrayImage>, FrameError>;
    fn describe(&self) -> String;
}

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("image {path}: {message}")]
    Image { path: PathBuf, message: String },
    #[error("camera: {0}")]
    Camera(String),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

const IMAGE_EXTENSIONS: [&str; 4] = ["png", "jpg", "jpeg", "pgm"];

/// Plays image files and folders (sorted by name) as camera frames.
#[derive(Debug, Clone)]
pub struct ImageFiles {
    files: Vec<PathBuf>,
    next: usize,
    /// Delay before each frame after the first, as a camera would have.
    pub interval: Duration,
}

impl ImageFiles {
    pub fn new(paths: &[PathBuf]) -> Result<Self, FrameError> {
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                let mut in_dir: Vec<PathBuf> = std::fs::read_dir(path)
                    .map_err(|source| FrameError::Io {
                        path: path.clone(),
                        source,
                    })?
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| is_image(p))
                    .collect();
                in_dir.sort();
                files.extend(in_dir);
            } else {
                files.push(path.clone());
            }
        }
        Ok(Self {
            files,
            next: 0,
            interval: Duration::ZERO,
        })
    }

    pub fn files(&self) -> &[PathBuf] {
        &self.files
    }
}

fn is_image(p: &Path) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| IMAGE_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// Loads one image file as a grayscale frame.
pub fn load_frame(path: &Path) -> Result<GrayImage, FrameError> {
    image::open(path)
        .map(|i| i.to_luma8())
        .map_err(|e| FrameError::Image {
            path: path.to_owned(),
            message: e.to_string(),
        })
}

impl FrameSource for ImageFiles {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, FrameError> {
        let Some(path) = self.files.get(self.next).cloned() else {
            return Ok(None);
        };
        if self.next > 0 && !self.interval.is_zero() {
            std::thread::sleep(self.interval);
        }
        self.next += 1;
        load_frame(&path).map(Some)
    }

    fn describe(&self) -> String {
        format!("{} image file(s)", self.files.len())
    }
}

/// Holds at most one frame: a new frame replaces one not yet decoded.
#[derive(Default)]
struct NewestFrame {
    slot: Mutex<(Option<GrayImage>, bool)>,
    ready: Condvar,
}

/// Counters the camera path keeps for metrics and tests.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CameraStats {
    pub frames: u64,
    /// Frames the worker has finished with (decoded or not).
    pub processed: u64,
    pub dropped: u64,
    pub decoded: u64,
    pub panics: u64,
    pub suppressed: u64,
}

/// The camera path as an input: a capture thread and a decode worker.
pub struct CameraInput {
    pub name: String,
    pub source: Box<dyn FrameSource>,
    pub decoder: Decoder,
    pub budget: Duration,
    pub repeat_window_ms: u64,
    pub stats: Arc<Mutex<CameraStats>>,
}

impl CameraInput {
    pub fn new(
        name: String,
        source: Box<dyn FrameSource>,
        budget: Duration,
        repeat_window_ms: u64,
    ) -> Self {
        Self {
            name,
            source,
            decoder: rxing_decoder(),
            budget,
            repeat_window_ms,
            stats: Arc::default(),
        }
    }
}

fn bump(stats: &Mutex<CameraStats>, f: impl FnOnce(&mut CameraStats)) {
    if let Ok(mut s) = stats.lock() {
        f(&mut s);
    }
}

impl Input for CameraInput {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn start(self: Box<Self>, ctx: InputContext) -> std::io::Result<JoinHandle<()>> {
        let CameraInput {
            name,
            mut source,
            decoder,
            budget,
            repeat_window_ms,
            stats,
        } = *self;
        let newest = Arc::new(NewestFrame::default());
        let worker = {
            let newest = Arc::clone(&newest);
            let ctx = ctx.clone();
            let stats = Arc::clone(&stats);
            let source_name: Arc<str> = Arc::from(name.as_str());
            std::thread::Builder::new()
                .name(format!("qr {name}"))
                .spawn(move || {
                    decode_worker(
                        &newest,
                        &decoder,
                        budget,
                        repeat_window_ms,
                        &stats,
                        &ctx,
                        &source_name,
                    );
                })?
        };
        std::thread::Builder::new()
            .name(format!("capture {name}"))
            .spawn(move || {
                ctx.board
                    .set_input(&name, format!("reading {}", source.describe()));
                // The page shows an error until frames come again; a
                // camera missing for hours is logged once, not every retry.
                let mut last_error: Option<String> = None;
                while !ctx.stop.is_triggered() {
                    match source.next_frame() {
                        Ok(Some(frame)) => {
                            if last_error.take().is_some() {
                                tracing::info!(input = %name, "frames again");
                                ctx.board
                                    .set_input(&name, format!("reading {}", source.describe()));
                            }
                            bump(&stats, |s| s.frames += 1);
                            let mut slot = newest
                                .slot
                                .lock()
                                .unwrap_or_else(std::sync::PoisonError::into_inner);
                            if slot.0.replace(frame).is_some() {
                                bump(&stats, |s| s.dropped += 1);
                                ctx.board.count("gate_camera_frames_dropped_total", 1);
                            }
                            newest.ready.notify_one();
                        }
                        Ok(None) => {
                            ctx.board.set_input(&name, "source ended");
                            break;
                        }
                        Err(e) => {
                            let text = e.to_string();
                            if last_error.as_ref() != Some(&text) {
                                tracing::warn!(input = %name, error = %text, "frame lost");
                                ctx.board.set_input(&name, format!("frame error: {text}"));
                            }
                            last_error = Some(text);
                            std::thread::sleep(Duration::from_millis(200));
                        }
                    }
                }
                // Let the worker finish the last frame, then stop it.
                {
                    let mut slot = newest
                        .slot
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    slot.1 = true;
                    newest.ready.notify_one();
                }
                let _ = worker.join();
            })
    }
}

fn decode_worker(
    newest: &NewestFrame,
    decoder: &Decoder,
    budget: Duration,
    repeat_window_ms: u64,
    stats: &Mutex<CameraStats>,
    ctx: &InputContext,
    source: &Arc<str>,
) {
    let epoch = Instant::now();
    let mut filter = RepeatFilter::new(repeat_window_ms);
    loop {
        let frame = {
            let mut slot = newest
                .slot
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            loop {
                if let Some(f) = slot.0.take() {
                    break f;
                }
                if slot.1 || ctx.stop.is_triggered() {
                    return;
                }
                slot = newest
                    .ready
                    .wait_timeout(slot, Duration::from_millis(100))
                    .map(|(g, _)| g)
                    .unwrap_or_else(|e| e.into_inner().0);
            }
        };
        ctx.board.count("gate_camera_frames_total", 1);
        let started = Instant::now();
        let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
            decode_within_budget(decoder, &frame, budget)
        }));
        let codes = match result {
            Ok(codes) => codes,
            Err(_) => {
                tracing::error!(input = %source, "QR decoder panicked on a frame; frame skipped");
                bump(stats, |s| {
                    s.panics += 1;
                    s.processed += 1;
                });
                ctx.board.count("gate_qr_decoder_panics_total", 1);
                continue;
            }
        };
        if started.elapsed() > budget {
            ctx.board.count("gate_qr_over_budget_total", 1);
        }
        let now = epoch.elapsed().as_millis() as u64;
        for code in codes {
            bump(stats, |s| s.decoded += 1);
            if !filter.pass(&code, now) {
                bump(stats, |s| s.suppressed += 1);
                continue;
            }
            if ctx
                .scans
                .send(Scan {
                    source: Arc::clone(source),
                    text: code,
                })
                .is_err()
            {
                return;
            }
        }
        bump(stats, |s| s.processed += 1);
    }
}

#[cfg(feature = "camera")]
pub mod camera;
pub mod pixels;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_code_is_passed_once_while_in_view() {
        let mut f = RepeatFilter::new(3000);
        assert!(f.pass("A", 0));
        assert!(!f.pass("A", 1000));
        assert!(!f.pass("A", 3900), "still in view: suppression extends");
        assert!(f.pass("B", 4000), "another code is not suppressed");
        assert!(
            f.pass("A", 7000),
            "out of view for the window: scanned again"
        );
    }

    #[test]
    fn slow_passes_are_skipped_when_the_fast_pass_used_the_budget() {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let c = Arc::clone(&calls);
        let slow: Decoder = Arc::new(move |_, effort| {
            c.lock().unwrap().push(effort != Effort::Fast);
            Vec::new()
        });
        let frame = GrayImage::new(4, 4);
        decode_within_budget(&slow, &frame, Duration::ZERO);
        assert_eq!(*calls.lock().unwrap(), [false]);
        decode_within_budget(&slow, &frame, Duration::from_secs(3600));
        assert_eq!(*calls.lock().unwrap(), [false, false, true]);
    }

    #[test]
    fn three_quarters_averages_the_area_each_pixel_covers() {
        // Columns 0, 4, 8, 12 and rows 0, 40, 80, 120: one block of four each way.
        let frame = GrayImage::from_fn(4, 4, |x, y| image::Luma([(x * 4 + y * 40) as u8]));
        let small = three_quarters(&frame);
        assert_eq!(small.dimensions(), (3, 3));
        // Along an axis a, b, c, d -> (3a + b) / 4, (b + c) / 2, (c + 3d) / 4.
        let cols = [1.0, 6.0, 11.0];
        let rows = [10.0, 60.0, 110.0];
        for (y, row) in rows.iter().enumerate() {
            for (x, col) in cols.iter().enumerate() {
                let want = (row + col) as u8;
                assert_eq!(small.get_pixel(x as u32, y as u32).0[0], want, "({x}, {y})");
            }
        }
    }

    #[test]
    fn three_quarters_drops_incomplete_blocks_and_tiny_frames() {
        let frame = GrayImage::from_pixel(9, 6, image::Luma([200]));
        let small = three_quarters(&frame);
        assert_eq!(small.dimensions(), (6, 3));
        assert!(small.pixels().all(|p| p.0[0] == 200));
        assert_eq!(three_quarters(&GrayImage::new(3, 40)).dimensions(), (0, 0));
        assert!(decode_frame(&GrayImage::new(3, 3), true).is_empty());
    }
}
