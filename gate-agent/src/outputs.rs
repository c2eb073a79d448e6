//! What a verdict does in the physical world: turnstile relay pulse, green/red
//! LED, buzzer. One trait; GPIO (character device) for the turnstile HAT, an
//! fsynced file log for benches without hardware, and a recorder for tests.
//!
//! Outputs are called only after the scan's journal transaction committed.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::OutputsConfig;
use crate::gate::Verdict;
use crate::profiles::{BoardProfile, LineSpec};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Led {
    Green,
    Red,
}

/// The physical signals for one verdict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actuation {
    pub scan_id: Uuid,
    /// Relay closed for this long (only when the gate opens).
    pub relay_pulse_ms: Option<u64>,
    pub led: Led,
    pub led_ms: u64,
    pub buzzer_ms: u64,
}

impl Actuation {
    pub fn for_verdict(verdict: &Verdict, config: &OutputsConfig) -> Self {
        if verdict.opens {
            Self {
                scan_id: verdict.scan_id,
                relay_pulse_ms: Some(config.relay_pulse_ms),
                led: Led::Green,
                led_ms: config.led_ms,
                buzzer_ms: config.buzzer_admit_ms,
            }
        } else {
            Self {
                scan_id: verdict.scan_id,
                relay_pulse_ms: None,
                led: Led::Red,
                led_ms: config.led_ms,
                buzzer_ms: config.buzzer_reject_ms,
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    #[error("GPIO {chip}: {message}")]
    Gpio { chip: PathBuf, message: String },
    #[error("actuation log {path}: {source}")]
    File {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("board profile: {0}")]
    Profile(#[from] crate::profiles::ProfileError),
}

/// Turnstile, lights and buzzer.
pub trait Outputs: Send {
    /// Fires the signals; must return quickly (pulses end on their own).
    fn actuate(&mut self, actuation: &Actuation) -> Result<(), OutputError>;
}

impl<T: Outputs + ?Sized> Outputs for Box<T> {
    fn actuate(&mut self, actuation: &Actuation) -> Result<(), OutputError> {
        (**self).actuate(actuation)
    }
}

/// Keeps every actuation in memory; clones share the record.
#[derive(Debug, Clone, Default)]
pub struct RecordingOutputs {
    record: Arc<Mutex<Vec<Actuation>>>,
}

impl RecordingOutputs {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn actuations(&self) -> Vec<Actuation> {
        self.record.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl Outputs for RecordingOutputs {
    fn actuate(&mut self, actuation: &Actuation) -> Result<(), OutputError> {
        if let Ok(mut r) = self.record.lock() {
            r.push(actuation.clone());
        }
        Ok(())
    }
}

/// Logs actuations (bench setups with no hardware attached).
#[derive(Debug, Default)]
pub struct LogOutputs;

impl Outputs for LogOutputs {
    fn actuate(&mut self, a: &Actuation) -> Result<(), OutputError> {
        tracing::info!(scan_id = %a.scan_id, relay_ms = ?a.relay_pulse_ms, led = ?a.led, "actuate");
        Ok(())
    }
}

/// Appends each actuation as a JSON line and fsyncs it before returning: the
/// file is a faithful record of what the turnstile was told to do.
#[derive(Debug)]
pub struct FileOutputs {
    path: PathBuf,
    file: File,
}

impl FileOutputs {
    pub fn open(path: &Path) -> Result<Self, OutputError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|source| OutputError::File {
                path: path.to_owned(),
                source,
            })?;
        Ok(Self {
            path: path.to_owned(),
            file,
        })
    }

    /// Reads back a file written by [`FileOutputs`], skipping a torn last line.
    pub fn read(path: &Path) -> std::io::Result<Vec<Actuation>> {
        let text = std::fs::read_to_string(path)?;
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect())
    }
}

impl Outputs for FileOutputs {
    fn actuate(&mut self, a: &Actuation) -> Result<(), OutputError> {
        let err = |source| OutputError::File {
            path: self.path.clone(),
            source,
        };
        let mut line = serde_json::to_string(a).map_err(|e| err(std::io::Error::other(e)))?;
        line.push('\n');
        self.file.write_all(line.as_bytes()).map_err(err)?;
        self.file.sync_data().map_err(err)
    }
}

/// The turnstile HAT through the GPIO character device. Lines are switched on at
/// once and switched off by a timer thread, so `actuate` never sleeps.
pub struct GpioOutputs {
    chip: PathBuf,
    request: Arc<gpiocdev::Request>,
    profile: BoardProfile,
    timers: mpsc::Sender<(Instant, u32)>,
}

impl GpioOutputs {
    pub fn open(profile: BoardProfile) -> Result<Self, OutputError> {
        let gpio_err = |e: gpiocdev::Error| OutputError::Gpio {
            chip: profile.chip.clone(),
            message: e.to_string(),
        };
        let mut builder = gpiocdev::Request::builder();
        builder.on_chip(&profile.chip).with_consumer("gate-agent");
        for (_, spec) in profile.lines() {
            builder
                .with_line(spec.line)
                .as_output(gpiocdev::line::Value::Inactive);
            if spec.active_low {
                builder.as_active_low();
            }
        }
        let request = Arc::new(builder.request().map_err(gpio_err)?);
        let (timers, rx) = mpsc::channel::<(Instant, u32)>();
        let req = Arc::clone(&request);
        std::thread::Builder::new()
            .name("gpio-timers".into())
            .spawn(move || release_lines(&req, &rx))
            .map_err(|e| OutputError::Gpio {
                chip: profile.chip.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            chip: profile.chip.clone(),
            request,
            profile,
            timers,
        })
    }

    fn pulse(&self, spec: &LineSpec, ms: u64) -> Result<(), OutputError> {
        if ms == 0 {
            return Ok(());
        }
        self.request
            .set_value(spec.line, gpiocdev::line::Value::Active)
            .map_err(|e| OutputError::Gpio {
                chip: self.chip.clone(),
                message: e.to_string(),
            })?;
        let _ = self
            .timers
            .send((Instant::now() + Duration::from_millis(ms), spec.line));
        Ok(())
    }
}

fn release_lines(request: &gpiocdev::Request, rx: &mpsc::Receiver<(Instant, u32)>) {
    let mut pending: Vec<(Instant, u32)> = Vec::new();
    loop {
        let now = Instant::now();
        pending.retain(|(at, line)| {
            if *at <= now {
                if let Err(e) = request.set_value(*line, gpiocdev::line::Value::Inactive) {
                    tracing::error!(line, error = %e, "cannot release GPIO line");
                }
                false
            } else {
                true
            }
        });
        let wait = pending
            .iter()
            .map(|(at, _)| at.saturating_duration_since(now))
            .min();
        let next = match wait {
            Some(d) => rx.recv_timeout(d),
            None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
        };
        match next {
            // A newer pulse of the same line replaces the older deadline.
            Ok((at, line)) => {
                pending.retain(|(_, l)| *l != line);
                pending.push((at, line));
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                for (_, line) in pending {
                    let _ = request.set_value(line, gpiocdev::line::Value::Inactive);
                }
                return;
            }
        }
    }
}

impl Outputs for GpioOutputs {
    fn actuate(&mut self, a: &Actuation) -> Result<(), OutputError> {
        // The other LED goes dark at once so staff never see both.
        let (on, off) = match a.led {
            Led::Green => (&self.profile.green_led, &self.profile.red_led),
            Led::Red => (&self.profile.red_led, &self.profile.green_led),
        };
        let _ = self.timers.send((Instant::now(), off.line));
        if let Some(ms) = a.relay_pulse_ms {
            self.pulse(&self.profile.relay, ms)?;
        }
        self.pulse(on, a.led_ms)?;
        self.pulse(&self.profile.buzzer, a.buzzer_ms)
    }
}

/// Builds the outputs the configuration asks for.
pub fn from_config(config: &OutputsConfig) -> Result<Box<dyn Outputs>, OutputError> {
    use crate::config::OutputKind;
    Ok(match config.kind {
        OutputKind::Log => Box::new(LogOutputs),
        OutputKind::File => {
            let path = config
                .file
                .clone()
                .unwrap_or_else(|| PathBuf::from("actuations.jsonl"));
            Box::new(FileOutputs::open(&path)?)
        }
        OutputKind::Gpio => {
            let path = config.board_profile.clone().unwrap_or_default();
            Box::new(GpioOutputs::open(BoardProfile::load(&path)?)?)
        }
    })
}
