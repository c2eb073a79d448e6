//! The camera path with real QR images: credentials are rendered, degraded
//! (scale, blur, rotation, noise, low contrast, inversion) and played through
//! the frame source and decode worker. Also: the worker survives a panicking
//! decoder and always takes the newest frame.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gate_agent::agent::{Input, InputContext, Stop};
use gate_agent::qr::{CameraInput, Decoder, FrameError, FrameSource, ImageFiles};
use gate_agent::status::{StatusBoard, StatusView};
use gate_agent::{Scan, SystemClock};
use image::{GrayImage, Luma, imageops};
use imageproc::geometric_transformations::{Interpolation, rotate_about_center};

fn render(code: &str, module_px: u32) -> GrayImage {
    let qr =
        qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M).unwrap();
    qr.render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(module_px, module_px)
        .build()
}

/// Puts the code on a 640x480 grey "camera frame".
fn on_frame(code: &GrayImage, background: u8) -> GrayImage {
    let mut frame = GrayImage::from_pixel(640, 480, Luma([background]));
    let x = (640 - code.width().min(640)) / 2;
    let y = (480 - code.height().min(480)) / 2;
    imageops::overlay(&mut frame, code, i64::from(x), i64::from(y));
    frame
}

fn degradations(code: &str) -> Vec<(&'static str, GrayImage)> {
    let base = render(code, 3);
    let mut out = Vec::new();
    out.push(("clean", on_frame(&base, 200)));
    let small = imageops::resize(
        &render(code, 4),
        base.width() * 2 / 3,
        base.height() * 2 / 3,
        imageops::FilterType::Triangle,
    );
    out.push(("scaled down", on_frame(&small, 200)));
    let big = imageops::resize(
        &base,
        base.width() * 3 / 2,
        base.height() * 3 / 2,
        imageops::FilterType::Triangle,
    );
    out.push(("scaled up", on_frame(&big, 200)));
    out.push((
        "blurred",
        imageproc::filter::gaussian_blur_f32(&on_frame(&base, 200), 1.0),
    ));
    out.push((
        "rotated 12 degrees",
        rotate_about_center(
            &on_frame(&base, 255),
            0.21,
            Interpolation::Bilinear,
            Luma([255]),
        ),
    ));
    out.push((
        "rotated 90 degrees",
        imageops::rotate90(&on_frame(&base, 200)),
    ));
    out.push((
        "noisy",
        imageproc::noise::gaussian_noise(&on_frame(&base, 200), 0.0, 25.0, 7),
    ));
    let mut low = on_frame(&base, 255);
    for p in low.pixels_mut() {
        p.0[0] = 110 + (u16::from(p.0[0]) * 50 / 255) as u8;
    }
    out.push(("low contrast", low));
    let mut inverted = on_frame(&base, 255);
    imageops::invert(&mut inverted);
    out.push(("inverted (dark-mode screen)", inverted));
    out
}

fn context() -> (InputContext, mpsc::Receiver<Scan>, Stop) {
    let (tx, rx) = mpsc::sync_channel(64);
    let stop = Stop::new();
    let board = StatusBoard::new(StatusView::default(), Arc::new(SystemClock));
    (
        InputContext {
            scans: tx,
            stop: stop.clone(),
            board,
        },
        rx,
        stop,
    )
}

fn write_frames(dir: &Path, frames: &[(&str, GrayImage)]) -> Vec<PathBuf> {
    frames
        .iter()
        .enumerate()
        .map(|(i, (_, img))| {
            let p = dir.join(format!("frame-{i:02}.png"));
            img.save(&p).unwrap();
            p
        })
        .collect()
}

#[test]
fn degraded_credential_images_decode_through_the_camera_path() {
    let venue = Venue::new();
    let dir = tempfile::tempdir().unwrap();
    let codes: Vec<String> = (1..=9).map(|t| venue.code(t)).collect();
    // Each degradation carries a different ticket, so every frame is a new code.
    let frames: Vec<(&str, GrayImage)> = codes
        .iter()
        .enumerate()
        .map(|(i, code)| degradations(code).swap_remove(i))
        .collect();
    let names: Vec<&str> = frames.iter().map(|(n, _)| *n).collect();
    write_frames(dir.path(), &frames);

    let source = ImageFiles::new(&[dir.path().to_path_buf()]).unwrap();
    assert_eq!(source.files().len(), frames.len());
    let (ctx, rx, stop) = context();
    let input = CameraInput::new(
        "camera-test".into(),
        Box::new(source),
        Duration::from_secs(30),
        3000,
    );
    let stats = Arc::clone(&input.stats);
    // One frame at a time so none is dropped as stale: this test is about decoding.
    let input = Box::new(Paced { inner: input });
    let handle = input.start(ctx).unwrap();
    let mut got = Vec::new();
    while got.len() < frames.len() {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(scan) => got.push(scan.text),
            Err(_) => break,
        }
    }
    stop.trigger();
    handle.join().unwrap();
    let missing: Vec<&str> = names
        .iter()
        .zip(&codes)
        .filter(|(_, c)| !got.contains(c))
        .map(|(n, _)| *n)
        .collect();
    assert!(
        missing.is_empty(),
        "not decoded: {missing:?} (stats {:?})",
        stats.lock().unwrap()
    );
    assert!(got.iter().all(|g| codes.contains(g)));
}

/// Feeds the camera path one frame at a time, waiting until each is decoded.
struct Paced {
    inner: CameraInput,
}

impl Input for Paced {
    fn name(&self) -> String {
        self.inner.name.clone()
    }
    fn start(self: Box<Self>, ctx: InputContext) -> std::io::Result<std::thread::JoinHandle<()>> {
        let Paced { mut inner } = *self;
        let stats = Arc::clone(&inner.stats);
        let source = std::mem::replace(&mut inner.source, Box::new(Frames::new(vec![])));
        inner.source = Box::new(WaitForWorker {
            inner: source,
            stats,
            handed: 0,
        });
        Box::new(inner).start(ctx)
    }
}

struct WaitForWorker {
    inner: Box<dyn FrameSource>,
    stats: Arc<Mutex<gate_agent::qr::CameraStats>>,
    handed: u64,
}

impl FrameSource for WaitForWorker {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, FrameError> {
        // The previous frame has left the slot once the worker counted it.
        wait_for(
            || self.stats.lock().unwrap().processed == self.handed,
            "the worker to finish the previous frame",
        );
        self.handed += 1;
        self.inner.next_frame()
    }
    fn describe(&self) -> String {
        self.inner.describe()
    }
}

/// Synthetic frames whose first pixel says which frame they are.
struct Frames {
    ids: Vec<u8>,
    next: usize,
}

impl Frames {
    fn new(ids: Vec<u8>) -> Self {
        Self { ids, next: 0 }
    }
}

impl FrameSource for Frames {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, FrameError> {
        let Some(id) = self.ids.get(self.next) else {
            return Ok(None);
        };
        self.next += 1;
        Ok(Some(GrayImage::from_pixel(8, 8, Luma([*id]))))
    }
    fn describe(&self) -> String {
        "synthetic".into()
    }
}

#[test]
fn decoder_panic_skips_one_frame_and_the_worker_keeps_going() {
    let (ctx, rx, stop) = context();
    let decoder: Decoder = Arc::new(|frame: &GrayImage, _| {
        let id = frame.get_pixel(0, 0).0[0];
        assert_ne!(id, 2, "decoder bug on frame 2");
        vec![format!("code-{id}")]
    });
    let mut input = CameraInput::new(
        "cam".into(),
        Box::new(Frames::new(vec![1, 2, 3])),
        Duration::from_secs(1),
        0,
    );
    input.decoder = decoder;
    let stats = Arc::clone(&input.stats);
    let input = Box::new(Paced { inner: input });
    let handle = input.start(ctx).unwrap();
    let got: Vec<String> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(60)).unwrap().text)
        .collect();
    stop.trigger();
    handle.join().unwrap();
    assert_eq!(got, ["code-1", "code-3"]);
    assert_eq!(stats.lock().unwrap().panics, 1);
}

/// Frame 1, then (once the worker is busy with it) frames 2, 3 and 4 at once.
struct AfterFirstIsBusy {
    frames: Frames,
    busy: mpsc::Receiver<()>,
}

impl FrameSource for AfterFirstIsBusy {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, FrameError> {
        if self.frames.next == 1 {
            self.busy.recv().unwrap();
        }
        self.frames.next_frame()
    }
    fn describe(&self) -> String {
        "gated".into()
    }
}

#[test]
fn worker_takes_the_newest_frame_and_drops_stale_ones() {
    let (ctx, rx, stop) = context();
    let (go_tx, go_rx) = mpsc::channel::<()>();
    let (busy_tx, busy_rx) = mpsc::channel::<()>();
    let go_rx = Mutex::new(go_rx);
    let busy_tx = Mutex::new(busy_tx);
    let decoder: Decoder = Arc::new(move |frame: &GrayImage, _| {
        let id = frame.get_pixel(0, 0).0[0];
        if id == 1 {
            // Hold the first frame until the camera has produced all the others.
            busy_tx.lock().unwrap().send(()).unwrap();
            let _ = go_rx.lock().unwrap().recv();
        }
        vec![format!("code-{id}")]
    });
    let source = AfterFirstIsBusy {
        frames: Frames::new(vec![1, 2, 3, 4]),
        busy: busy_rx,
    };
    let mut input = CameraInput::new("cam".into(), Box::new(source), Duration::from_secs(1), 0);
    input.decoder = decoder;
    let stats = Arc::clone(&input.stats);
    let handle = Box::new(input).start(ctx).unwrap();
    wait_for(|| stats.lock().unwrap().frames == 4, "all frames captured");
    go_tx.send(()).unwrap();
    let got: Vec<String> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(60)).unwrap().text)
        .collect();
    stop.trigger();
    handle.join().unwrap();
    assert_eq!(got, ["code-1", "code-4"]);
    assert_eq!(stats.lock().unwrap().dropped, 2);
}

#[test]
fn same_code_held_in_view_is_scanned_once() {
    let (ctx, rx, stop) = context();
    let decoder: Decoder = Arc::new(|_: &GrayImage, _| vec!["SAME".to_owned()]);
    let mut input = CameraInput::new(
        "cam".into(),
        Box::new(Frames::new(vec![1, 2, 3, 4, 5])),
        Duration::from_secs(1),
        60_000,
    );
    input.decoder = decoder;
    let stats = Arc::clone(&input.stats);
    let input = Box::new(Paced { inner: input });
    let handle = input.start(ctx).unwrap();
    wait_for(|| stats.lock().unwrap().decoded == 5, "all frames decoded");
    stop.trigger();
    handle.join().unwrap();
    let got: Vec<String> = rx.try_iter().map(|s| s.text).collect();
    assert_eq!(got, ["SAME"]);
    assert_eq!(stats.lock().unwrap().suppressed, 4);
}

#[test]
fn decode_command_prints_every_payload_one_per_line() {
    let venue = Venue::new();
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.png");
    let b = dir.path().join("b.png");
    on_frame(&render(&venue.code(1), 3), 255).save(&a).unwrap();
    on_frame(&render(&venue.code(2), 3), 255).save(&b).unwrap();
    let out = std::process::Command::new(agent_bin())
        .arg("decode")
        .arg(&a)
        .arg(&b)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(
        text.lines().collect::<Vec<_>>(),
        [venue.code(1), venue.code(2)]
    );

    let missing = std::process::Command::new(agent_bin())
        .arg("decode")
        .arg(dir.path().join("nope.png"))
        .output()
        .unwrap();
    assert!(!missing.status.success());
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope.png"));
}

/// The V4L2 camera, as the packaged (`camera`) build runs it:
/// a camera that is not there (unplugged, or not yet probed at boot) is
/// reported on the status page and opened again until it appears; it never
/// ends the input or the agent.
#[cfg(feature = "camera")]
#[test]
fn a_missing_v4l2_camera_is_reported_and_tried_again() {
    use gate_agent::qr::camera::V4l2Camera;

    // No such device node on this machine.
    let index = (40..64)
        .find(|i| !Path::new(&format!("/dev/video{i}")).exists())
        .unwrap();
    let error = V4l2Camera::open(index, 640, 480, 15)
        .err()
        .expect("the camera is not there");
    assert!(!error.to_string().is_empty());

    let (ctx, _rx, stop) = context();
    let board = Arc::clone(&ctx.board);
    let input = Box::new(CameraInput::new(
        "gate camera".into(),
        Box::new(V4l2Camera::new(index, 640, 480, 15)),
        Duration::from_millis(120),
        3000,
    ));
    let handle = input.start(ctx).unwrap();
    let state = |board: &StatusBoard| board.view().inputs.get("gate camera").cloned();
    let mut seen = Vec::new();
    for _ in 0..300 {
        if let Some(s) = state(&board)
            && !seen.contains(&s)
        {
            seen.push(s);
        }
        if seen.iter().any(|s| s.starts_with("frame error")) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        seen.iter().any(|s| s.starts_with("frame error")),
        "the page says why the camera does not read: {seen:?}"
    );
    // Still trying: the capture thread has not ended.
    assert!(!handle.is_finished());
    stop.trigger();
    handle.join().unwrap();
}

/// A camera that fails (unplugged, or not probed yet) and then delivers.
struct Replugged {
    plugged: Arc<std::sync::atomic::AtomicBool>,
}

impl FrameSource for Replugged {
    fn next_frame(&mut self) -> Result<Option<GrayImage>, FrameError> {
        std::thread::sleep(Duration::from_millis(20));
        if self.plugged.load(std::sync::atomic::Ordering::SeqCst) {
            Ok(Some(GrayImage::from_pixel(8, 8, Luma([7]))))
        } else {
            Err(FrameError::Camera(
                "/dev/video0: open: no such device".into(),
            ))
        }
    }
    fn describe(&self) -> String {
        "camera 0 (8x8 GREY)".into()
    }
}

#[test]
fn the_status_page_shows_a_camera_reading_again_once_frames_come_back() {
    let (ctx, rx, stop) = context();
    let board = Arc::clone(&ctx.board);
    let plugged = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut input = CameraInput::new(
        "gate camera".into(),
        Box::new(Replugged {
            plugged: Arc::clone(&plugged),
        }),
        Duration::from_secs(1),
        3000,
    );
    input.decoder = Arc::new(|_: &GrayImage, _| vec!["code-7".to_owned()]);
    let handle = Box::new(input).start(ctx).unwrap();
    let state = || board.view().inputs.get("gate camera").cloned();
    wait_for(
        || state().is_some_and(|s| s.starts_with("frame error")),
        "the page to say the camera fails",
    );
    assert_eq!(
        state().unwrap(),
        "frame error: camera: /dev/video0: open: no such device"
    );
    plugged.store(true, std::sync::atomic::Ordering::SeqCst);
    assert_eq!(
        rx.recv_timeout(Duration::from_secs(60)).unwrap().text,
        "code-7"
    );
    wait_for(
        || state().as_deref() == Some("reading camera 0 (8x8 GREY)"),
        "the page to say the camera reads again",
    );
    stop.trigger();
    handle.join().unwrap();
}
