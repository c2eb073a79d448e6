//! The gate agent: the daemon and CLI on a turnstile box.
//!
//! It owns everything between a scanner and the turnstile: scanner inputs
//! (serial, keyboard-wedge, camera + QR), the verdict (verify and
//! `shared::decide` against the local SQLite cache), the durable journal, the
//! outputs (relay, LEDs, buzzer), the kiosk status page and metrics.
//!
//! Rules it keeps:
//! - a verdict never waits on the network; it uses the local cache only;
//! - the ticket-state change and the journal row of a scan are ONE SQLite
//!   transaction, committed before the relay fires;
//! - if the journal cannot be written the gate fails closed (unless configured
//!   otherwise), says why, and keeps running;
//! - admission rules live in `shared`, never here;
//! - the network is optional: the sync task ([`sync`]) runs on its own thread
//!   with its own store connection, and an offline gate keeps deciding.
//!
//! Start it as a library with [`run`], so tests drive it with real inputs and a
//! recording output.

pub mod agent;
pub mod cache_file;
pub mod config;
pub mod enrol_file;
pub mod enrolment;
pub mod gate;
pub mod online;
pub mod outputs;
pub mod passage;
pub mod profiles;
pub mod qr;
pub mod serial;
pub mod status;
pub mod stop;
pub mod store;
pub mod sync;
pub mod undo;
pub mod wedge;

pub use agent::{Input, InputContext, RunOptions, run, run_with};
pub use config::Config;
pub use gate::{Clock, Gate, ManualClock, Scan, SystemClock, Verdict};
pub use outputs::{Actuation, Outputs, RecordingOutputs};
pub use stop::Stop;

use std::time::Duration;

use config::ScannerConfig;

/// Builds the inputs the configuration lists. An input that cannot be built
/// (bad profile, no camera support) is reported and left out; the rest run.
pub fn inputs_from_config(config: &Config) -> (Vec<Box<dyn Input>>, Vec<String>) {
    let mut inputs: Vec<Box<dyn Input>> = Vec::new();
    let mut problems = Vec::new();
    for scanner in &config.scanners {
        let name = scanner.name();
        match scanner {
            ScannerConfig::Serial { .. } => match serial::SerialSettings::from_config(scanner) {
                Ok(settings) => inputs.push(Box::new(serial::SerialInput { settings })),
                Err(e) => problems.push(format!("{name}: {e}")),
            },
            ScannerConfig::Wedge {
                device, reopen_ms, ..
            } => inputs.push(Box::new(wedge::WedgeInput {
                name,
                device: device.clone(),
                reopen_ms: reopen_ms.unwrap_or(1000),
            })),
            ScannerConfig::Images {
                paths, interval_ms, ..
            } => match qr::ImageFiles::new(paths) {
                Ok(mut files) => {
                    files.interval = Duration::from_millis(interval_ms.unwrap_or(0));
                    inputs.push(Box::new(qr::CameraInput::new(
                        name,
                        Box::new(files),
                        Duration::from_millis(config.qr.frame_budget_ms),
                        config.qr.repeat_suppress_ms,
                    )));
                }
                Err(e) => problems.push(format!("{name}: {e}")),
            },
            ScannerConfig::Camera {
                index,
                width,
                height,
                fps,
                ..
            } => {
                camera_input(
                    config,
                    name,
                    *index,
                    *width,
                    *height,
                    *fps,
                    &mut inputs,
                    &mut problems,
                );
            }
            ScannerConfig::Stdin { .. } => inputs.push(Box::new(serial::StdinInput)),
        }
    }
    (inputs, problems)
}

#[cfg(feature = "camera")]
#[allow(clippy::too_many_arguments)]
fn camera_input(
    config: &Config,
    name: String,
    index: u32,
    width: u32,
    height: u32,
    fps: u32,
    inputs: &mut Vec<Box<dyn Input>>,
    _problems: &mut Vec<String>,
) {
    // A camera missing at start-up is no reason to leave it out: it is
    // opened again every second until it appears (the status page says why
    // it does not read meanwhile).
    let camera = match qr::camera::V4l2Camera::open(index, width, height, fps) {
        Ok(camera) => camera,
        Err(e) => {
            tracing::warn!(input = %name, error = %e, "camera not available yet; retrying every second");
            qr::camera::V4l2Camera::new(index, width, height, fps)
        }
    };
    inputs.push(Box::new(qr::CameraInput::new(
        name,
        Box::new(camera),
        Duration::from_millis(config.qr.frame_budget_ms),
        config.qr.repeat_suppress_ms,
    )));
}

#[cfg(not(feature = "camera"))]
#[allow(clippy::too_many_arguments)]
fn camera_input(
    _config: &Config,
    name: String,
    _index: u32,
    _width: u32,
    _height: u32,
    _fps: u32,
    _inputs: &mut Vec<Box<dyn Input>>,
    problems: &mut Vec<String>,
) {
    problems.push(format!(
        "{name}: this build has no camera support (feature `camera`)"
    ));
}
