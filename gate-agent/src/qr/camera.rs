//! V4L2 camera, read through the kernel's video API (the `v4l` crate).
//!
//! The camera is asked for the configured size in the first pixel format it
//! offers of `PixelFormat::PREFERRED`, and the driver's answer is taken as
//! it comes: a driver may settle on another size, and one whose frame rate
//! follows its signal (an HDMI capture card, NTSC's 30000/1001) keeps its
//! own rate. Nothing is refused for a frame interval or a size list the
//! driver does not enumerate: a camera that can deliver frames is read.
//!
//! A dedicated thread owns the device and its buffers and hands frames over
//! a one-slot channel; when the camera fails (unplugged) the thread ends and
//! the next call opens it again.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::time::{Duration, Instant};

use image::GrayImage;
use v4l::buffer::Type;
use v4l::io::mmap::Stream;
use v4l::io::traits::CaptureStream;
use v4l::video::Capture;
use v4l::video::capture::Parameters;
use v4l::{Device, Format, FourCC};

use super::pixels::{FrameLayout, PixelFormat, luma};
use super::{FrameError, FrameSource};

/// What the device thread hands over.
enum Delivery {
    Frame(GrayImage),
    /// One frame that could not be read (a corrupt JPEG); the next may be fine.
    Bad(FrameError),
    /// The stream failed (unplugged): the thread has ended.
    Ended(FrameError),
}

pub struct V4l2Camera {
    index: u32,
    width: u32,
    height: u32,
    fps: u32,
    frames: Option<Receiver<Delivery>>,
    /// What the driver settled on when the camera was last opened.
    layout: Option<FrameLayout>,
    /// After a failed open, the next attempt waits until then.
    retry_at: Option<Instant>,
}

/// Pause between attempts to open a camera that is not there (yet).
const REOPEN: Duration = Duration::from_secs(1);
/// A camera silent for this long is reported (and waited for again).
const SILENCE: Duration = Duration::from_secs(5);
/// Buffers the driver fills while a frame is being handed over.
const BUFFERS: u32 = 4;

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
            layout: None,
            retry_at: None,
        }
    }

    /// Opens the camera now, to report a missing device at start-up.
    pub fn open(index: u32, width: u32, height: u32, fps: u32) -> Result<Self, FrameError> {
        let mut camera = Self::new(index, width, height, fps);
        camera.start()?;
        Ok(camera)
    }

    /// The format the driver settled on, once the camera has been opened.
    pub fn layout(&self) -> Option<FrameLayout> {
        self.layout
    }

    fn start(&mut self) -> Result<(), FrameError> {
        let (tx, rx) = sync_channel::<Delivery>(1);
        let (ready_tx, ready_rx) = sync_channel::<Result<FrameLayout, FrameError>>(1);
        let (index, width, height, fps) = (self.index, self.width, self.height, self.fps);
        std::thread::Builder::new()
            .name(format!("v4l2 camera {index}"))
            .spawn(move || capture(index, width, height, fps, &tx, &ready_tx))
            .map_err(|e| FrameError::Camera(e.to_string()))?;
        let layout = ready_rx
            .recv()
            .map_err(|_| FrameError::Camera("camera thread ended".into()))??;
        tracing::info!(
            camera = index,
            format = %layout,
            asked = %format!("{width}x{height} @ {fps} fps"),
            "camera opened"
        );
        self.layout = Some(layout);
        self.frames = Some(rx);
        Ok(())
    }
}

fn camera_error(index: u32, what: &str, e: impl std::fmt::Display) -> FrameError {
    FrameError::Camera(format!("/dev/video{index}: {what}: {e}"))
}

/// Opens `/dev/video{index}` and settles its format.
fn open_device(
    index: u32,
    width: u32,
    height: u32,
    fps: u32,
) -> Result<(Device, FrameLayout), FrameError> {
    let device = Device::new(index as usize).map_err(|e| camera_error(index, "open", e))?;
    let offered = device
        .enum_formats()
        .map_err(|e| camera_error(index, "no video capture formats", e))?;
    let offered: Vec<[u8; 4]> = offered.iter().map(|d| d.fourcc.repr).collect();
    let Some(format) = PixelFormat::PREFERRED
        .into_iter()
        .find(|f| offered.contains(&f.fourcc()))
    else {
        let names: Vec<String> = offered
            .iter()
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect();
        let readable: Vec<String> = PixelFormat::PREFERRED
            .iter()
            .map(ToString::to_string)
            .collect();
        return Err(FrameError::Camera(format!(
            "/dev/video{index} offers {}; the gate reads {}",
            names.join(", "),
            readable.join(", ")
        )));
    };
    let set = device
        .set_format(&Format::new(width, height, FourCC::new(&format.fourcc())))
        .map_err(|e| camera_error(index, &format!("set format {width}x{height} {format}"), e))?;
    let format = PixelFormat::from_fourcc(set.fourcc.repr).ok_or_else(|| {
        FrameError::Camera(format!(
            "/dev/video{index}: asked for {format}, the driver answered {}",
            set.fourcc
        ))
    })?;
    // Drivers whose rate follows their input refuse or ignore this.
    if let Err(e) = device.set_params(&Parameters::with_fps(fps)) {
        tracing::debug!(camera = index, error = %e, "frame rate not set; the driver's own is kept");
    }
    let layout = FrameLayout {
        format,
        width: set.width,
        height: set.height,
        stride: set.stride,
    };
    Ok((device, layout))
}

fn capture(
    index: u32,
    width: u32,
    height: u32,
    fps: u32,
    frames: &SyncSender<Delivery>,
    ready: &SyncSender<Result<FrameLayout, FrameError>>,
) {
    let opened = open_device(index, width, height, fps).and_then(|(device, layout)| {
        Stream::with_buffers(&device, Type::VideoCapture, BUFFERS)
            .map(|stream| (device, layout, stream))
            .map_err(|e| camera_error(index, "buffers", e))
    });
    // The device stays open as long as its stream.
    let (_device, layout, mut stream) = match opened {
        Ok(opened) => opened,
        Err(e) => {
            let _ = ready.send(Err(e));
            return;
        }
    };
    stream.set_timeout(SILENCE);
    let _ = ready.send(Ok(layout));
    loop {
        let delivery = match stream.next() {
            Ok((data, meta)) => {
                // A compressed frame fills only part of its buffer.
                let used = match meta.bytesused as usize {
                    0 => data.len(),
                    n => n.min(data.len()),
                };
                match luma(&layout, &data[..used]) {
                    Ok(frame) => Delivery::Frame(frame),
                    Err(e) => Delivery::Bad(FrameError::Camera(e.to_string())),
                }
            }
            Err(e) => Delivery::Ended(camera_error(index, "frame", e)),
        };
        let ended = matches!(delivery, Delivery::Ended(_));
        // The receiver is gone when the agent stops.
        if frames.send(delivery).is_err() || ended {
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
        match frames.recv_timeout(SILENCE + Duration::from_secs(1)) {
            Ok(Delivery::Frame(frame)) => Ok(Some(frame)),
            Ok(Delivery::Bad(e)) => Err(e),
            Ok(Delivery::Ended(e)) => {
                self.frames = None;
                Err(e)
            }
            Err(RecvTimeoutError::Timeout) => Err(FrameError::Camera(format!(
                "no frame for {} s",
                SILENCE.as_secs() + 1
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                self.frames = None;
                Err(FrameError::Camera("camera stopped; reopening".into()))
            }
        }
    }

    fn describe(&self) -> String {
        match self.layout {
            Some(layout) => format!("camera {} ({layout})", self.index),
            None => format!(
                "camera {} ({}x{} @ {} fps asked)",
                self.index, self.width, self.height, self.fps
            ),
        }
    }
}
