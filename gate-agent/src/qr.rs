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
use rxing::multi::MultipleBarcodeReader;
use rxing::{
    BarcodeFormat, BinaryBitmap, DecodeHints, Luma8LuminanceSource, common::HybridBinarizer,
};

use crate::agent::{Input, InputContext};
use crate::gate::Scan;

/// Every QR payload rxing finds in a grayscale frame. `try_harder` adds the
/// slower passes (rotations, inverted codes).
pub fn decode_frame(frame: &GrayImage, try_harder: bool) -> Vec<String> {
    let (w, h) = frame.dimensions();
    if w == 0 || h == 0 {
        return Vec::new();
    }
    let mut hints = DecodeHints {
        PossibleFormats: Some(std::collections::HashSet::from([BarcodeFormat::QR_CODE])),
        TryHarder: Some(try_harder),
        AlsoInverted: Some(try_harder),
        ..DecodeHints::default()
    };
    let Ok(source) = Luma8LuminanceSource::new(frame.as_raw().clone(), w, h) else {
        return Vec::new();
    };
    let mut bitmap = BinaryBitmap::new(HybridBinarizer::new(source));
    let mut reader = rxing::multi::qrcode::QRCodeMultiReader::new();
    let mut found: Vec<String> = reader
        .decode_multiple_with_hints(&mut bitmap, &hints)
        .map(|results| results.iter().map(|r| r.getText().to_owned()).collect())
        .unwrap_or_default();
    if found.is_empty() && try_harder {
        // The multi reader misses some single, damaged codes that the plain reader gets.
        hints.PureBarcode = Some(false);
        if let Ok(r) = rxing::helpers::detect_in_luma_with_hints(
            frame.as_raw().clone(),
            w,
            h,
            Some(BarcodeFormat::QR_CODE),
            &mut hints,
        ) {
            found.push(r.getText().to_owned());
        }
    }
    found.dedup();
    found
}

/// Decodes one frame: a fast pass, then the slow passes only if the budget allows.
pub fn decode_within_budget(decoder: &Decoder, frame: &GrayImage, budget: Duration) -> Vec<String> {
    let started = Instant::now();
    let fast = decoder(frame, false);
    if !fast.is_empty() || started.elapsed() * 2 >= budget {
        return fast;
    }
    decoder(frame, true)
}

/// A QR decoder; swappable so tests can inject one that panics.
pub type Decoder = Arc<dyn Fn(&GrayImage, bool) -> Vec<String> + Send + Sync>;

pub fn rxing_decoder() -> Decoder {
    Arc::new(decode_frame)
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
                while !ctx.stop.is_triggered() {
                    match source.next_frame() {
                        Ok(Some(frame)) => {
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
                            tracing::warn!(input = %name, error = %e, "frame lost");
                            ctx.board.set_input(&name, format!("frame error: {e}"));
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

/// V4L2 camera through nokhwa. nokhwa's camera handle cannot move between
/// threads, so a dedicated thread owns it and hands frames over a one-slot
/// channel; when the camera fails (unplugged) the thread ends and the next
/// call reopens it.
#[cfg(feature = "camera")]
pub mod camera {
    use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
    use std::time::{Duration, Instant};

    use super::{FrameError, FrameSource};
    use image::GrayImage;
    use nokhwa::pixel_format::LumaFormat;
    use nokhwa::utils::{
        CameraFormat, CameraIndex, FrameFormat, RequestedFormat, RequestedFormatType, Resolution,
    };

    type FrameResult = Result<GrayImage, FrameError>;

    pub struct V4l2Camera {
        index: u32,
        width: u32,
        height: u32,
        fps: u32,
        frames: Option<Receiver<FrameResult>>,
        /// After a failed open, the next attempt waits until then.
        retry_at: Option<Instant>,
    }

    /// Pause between attempts to open a camera that is not there (yet).
    const REOPEN: Duration = Duration::from_secs(1);

    impl V4l2Camera {
        /// A camera opened on first use, and again whenever it failed: one
        /// missing at boot or unplugged later is picked up when it appears.
        pub fn new(index: u32, width: u32, height: u32, fps: u32) -> Self {
            Self {
                index,
                width,
                height,
                fps,
                frames: None,
                retry_at: None,
            }
        }

        /// Opens the camera now, to report a missing device at start-up.
        pub fn open(index: u32, width: u32, height: u32, fps: u32) -> Result<Self, FrameError> {
            let mut camera = Self::new(index, width, height, fps);
            camera.start()?;
            Ok(camera)
        }

        fn start(&mut self) -> Result<(), FrameError> {
            let (tx, rx) = sync_channel::<FrameResult>(1);
            let (ready_tx, ready_rx) = sync_channel::<Result<(), FrameError>>(1);
            let (index, width, height, fps) = (self.index, self.width, self.height, self.fps);
            std::thread::Builder::new()
                .name(format!("v4l2 camera {index}"))
                .spawn(move || capture(index, width, height, fps, &tx, &ready_tx))
                .map_err(|e| FrameError::Camera(e.to_string()))?;
            ready_rx
                .recv()
                .map_err(|_| FrameError::Camera("camera thread ended".into()))??;
            self.frames = Some(rx);
            Ok(())
        }
    }

    fn capture(
        index: u32,
        width: u32,
        height: u32,
        fps: u32,
        frames: &SyncSender<FrameResult>,
        ready: &SyncSender<Result<(), FrameError>>,
    ) {
        let format = RequestedFormat::new::<LumaFormat>(RequestedFormatType::Closest(
            CameraFormat::new(Resolution::new(width, height), FrameFormat::MJPEG, fps),
        ));
        let opened = nokhwa::Camera::new(CameraIndex::Index(index), format).and_then(|mut c| {
            c.open_stream()?;
            Ok(c)
        });
        let mut camera = match opened {
            Ok(c) => {
                let _ = ready.send(Ok(()));
                c
            }
            Err(e) => {
                let _ = ready.send(Err(FrameError::Camera(e.to_string())));
                return;
            }
        };
        loop {
            let frame = camera
                .frame()
                .and_then(|buffer| buffer.decode_image::<LumaFormat>())
                .map_err(|e| FrameError::Camera(e.to_string()))
                .and_then(|img| {
                    let (w, h) = (img.width(), img.height());
                    GrayImage::from_raw(w, h, img.into_raw())
                        .ok_or_else(|| FrameError::Camera("frame size mismatch".into()))
                });
            let failed = frame.is_err();
            // The receiver is gone when the agent stops.
            if frames.send(frame).is_err() || failed {
                return;
            }
        }
    }

    impl FrameSource for V4l2Camera {
        fn next_frame(&mut self) -> Result<Option<GrayImage>, FrameError> {
            if self.frames.is_none() {
                if let Some(at) = self.retry_at.take() {
                    std::thread::sleep(at.saturating_duration_since(Instant::now()));
                }
                if let Err(e) = self.start() {
                    self.retry_at = Some(Instant::now() + REOPEN);
                    return Err(e);
                }
            }
            let Some(frames) = &self.frames else {
                return Ok(None);
            };
            match frames.recv_timeout(Duration::from_secs(5)) {
                Ok(Ok(frame)) => Ok(Some(frame)),
                Ok(Err(e)) => {
                    self.frames = None;
                    Err(e)
                }
                Err(RecvTimeoutError::Timeout) => {
                    Err(FrameError::Camera("no frame for 5 s".into()))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.frames = None;
                    Err(FrameError::Camera("camera stopped; reopening".into()))
                }
            }
        }

        fn describe(&self) -> String {
            format!(
                "camera {} ({}x{} @ {} fps)",
                self.index, self.width, self.height, self.fps
            )
        }
    }
}

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
        let slow: Decoder = Arc::new(move |_, harder| {
            c.lock().unwrap().push(harder);
            Vec::new()
        });
        let frame = GrayImage::new(4, 4);
        decode_within_budget(&slow, &frame, Duration::ZERO);
        assert_eq!(*calls.lock().unwrap(), [false]);
        decode_within_budget(&slow, &frame, Duration::from_secs(3600));
        assert_eq!(*calls.lock().unwrap(), [false, false, true]);
    }
}
