//! Serial scanners (USB CDC-ACM and RS-232): a pure line framer and the thin
//! thread that feeds it from the port, reopening the port when the scanner is
//! unplugged and comes back.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::agent::{Input, InputContext};
use crate::config::ScannerConfig;
use crate::gate::Scan;
use crate::profiles::{Parity, ScannerProfile};

/// What the framer makes of the byte stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// A complete line of printable text, terminator and edge whitespace removed.
    Line(String),
    /// Bytes that cannot be a code; still reported so the journal shows the scan.
    Garbage {
        reason: GarbageReason,
        excerpt: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GarbageReason {
    /// No terminator within `max_line` bytes; everything up to the next terminator is dropped.
    Overlong { len: usize },
    /// Control characters or invalid UTF-8 (line noise, wrong baud rate).
    NotText,
    /// A partial line that was never finished (scanner reset mid-code).
    Timeout,
}

/// Splits a byte stream into lines. Pure: time is passed in.
#[derive(Debug, Clone)]
pub struct LineFramer {
    terminator: Vec<u8>,
    max_line: usize,
    line_timeout_ms: u64,
    buf: Vec<u8>,
    /// Bytes dropped since an overlong line began, if one did.
    overlong: Option<usize>,
    started_ms: Option<u64>,
}

const EXCERPT: usize = 64;

impl LineFramer {
    pub fn new(terminator: &[u8], max_line: usize, line_timeout_ms: u64) -> Self {
        Self {
            terminator: terminator.to_vec(),
            max_line,
            line_timeout_ms,
            buf: Vec::new(),
            overlong: None,
            started_ms: None,
        }
    }

    /// Feeds bytes read at `now_ms`; returns every frame they complete.
    pub fn push(&mut self, bytes: &[u8], now_ms: u64) -> Vec<Frame> {
        let mut out = Vec::new();
        if let Some(f) = self.expire(now_ms) {
            out.push(f);
        }
        for &b in bytes {
            if self.buf.is_empty() && self.overlong.is_none() {
                self.started_ms = Some(now_ms);
            }
            self.buf.push(b);
            if self.buf.ends_with(&self.terminator) {
                let len = self.buf.len() - self.terminator.len();
                self.buf.truncate(len);
                if let Some(frame) = self.finish() {
                    out.push(frame);
                }
                continue;
            }
            // The buffer holds the line and at most the start of a
            // terminator (one byte short of it, else it would have ended the
            // line above); once it reaches `max_line` plus the terminator's
            // length the line is overlong. Keep enough to recognise a
            // terminator split across the limit.
            if self.buf.len() >= self.max_line + self.terminator.len() {
                let keep = self.terminator.len().saturating_sub(1);
                let drop = self.buf.len() - keep;
                *self.overlong.get_or_insert(0) += drop;
                self.buf.drain(..drop);
            }
        }
        out
    }

    /// Reports and drops a partial line older than the line timeout.
    pub fn expire(&mut self, now_ms: u64) -> Option<Frame> {
        let started = self.started_ms?;
        if self.buf.is_empty() && self.overlong.is_none() {
            return None;
        }
        if now_ms.saturating_sub(started) < self.line_timeout_ms {
            return None;
        }
        let excerpt = excerpt(&self.buf);
        self.buf.clear();
        self.overlong = None;
        self.started_ms = None;
        if excerpt.trim().is_empty() {
            return None;
        }
        Some(Frame::Garbage {
            reason: GarbageReason::Timeout,
            excerpt,
        })
    }

    fn finish(&mut self) -> Option<Frame> {
        self.started_ms = None;
        let line = std::mem::take(&mut self.buf);
        if let Some(dropped) = self.overlong.take() {
            return Some(Frame::Garbage {
                reason: GarbageReason::Overlong {
                    len: dropped + line.len(),
                },
                excerpt: excerpt(&line),
            });
        }
        match std::str::from_utf8(&line) {
            Ok(text) => {
                let text = text.trim_matches(|c: char| c.is_ascii_whitespace());
                if text.is_empty() {
                    // Bare terminators (e.g. CR LF when configured for CR) are not scans.
                    None
                } else if text.chars().any(char::is_control) {
                    Some(Frame::Garbage {
                        reason: GarbageReason::NotText,
                        excerpt: excerpt(&line),
                    })
                } else {
                    Some(Frame::Line(text.to_owned()))
                }
            }
            Err(_) => Some(Frame::Garbage {
                reason: GarbageReason::NotText,
                excerpt: excerpt(&line),
            }),
        }
    }
}

fn excerpt(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(EXCERPT)]);
    text.chars()
        .map(|c| if c.is_control() { '\u{FFFD}' } else { c })
        .collect()
}

impl Frame {
    /// The text handed to the decision loop: garbage becomes a text that the
    /// credential decoder refuses, so the journal records it as unreadable.
    pub fn into_scan_text(self) -> String {
        match self {
            Frame::Line(text) => text,
            Frame::Garbage { reason, excerpt } => match reason {
                GarbageReason::Overlong { len } => {
                    format!("<overlong line, {len} bytes: {excerpt}>")
                }
                GarbageReason::NotText => format!("<not text: {excerpt}>"),
                GarbageReason::Timeout => format!("<unfinished line: {excerpt}>"),
            },
        }
    }
}

/// Turns `\r`, `\n`, `\t`, `\\` and `\xNN` escapes (as written in configs and
/// profiles read as raw strings) into bytes; TOML basic strings arrive unescaped already.
pub fn terminator_bytes(s: &str) -> Vec<u8> {
    let mut out = Vec::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '\\' {
            let mut b = [0; 4];
            out.extend_from_slice(c.encode_utf8(&mut b).as_bytes());
            continue;
        }
        match chars.next() {
            Some('r') => out.push(b'\r'),
            Some('n') => out.push(b'\n'),
            Some('t') => out.push(b'\t'),
            Some('x') => {
                let hex: String = chars.by_ref().take(2).collect();
                out.push(u8::from_str_radix(&hex, 16).unwrap_or(b'?'));
            }
            Some(other) => {
                let mut b = [0; 4];
                out.extend_from_slice(other.encode_utf8(&mut b).as_bytes());
            }
            None => out.push(b'\\'),
        }
    }
    out
}

/// Settings for one serial scanner: profile values with config overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialSettings {
    pub name: String,
    pub device: PathBuf,
    pub baud: u32,
    pub data_bits: u8,
    pub parity: Parity,
    pub stop_bits: u8,
    pub terminator: Vec<u8>,
    pub max_line: usize,
    pub line_timeout_ms: u64,
    pub reopen_ms: u64,
}

impl SerialSettings {
    pub fn from_config(config: &ScannerConfig) -> Result<Self, crate::profiles::ProfileError> {
        let ScannerConfig::Serial {
            device,
            profile,
            baud,
            terminator,
            max_line,
            line_timeout_ms,
            reopen_ms,
            ..
        } = config
        else {
            return Err(crate::profiles::ProfileError::Invalid {
                path: PathBuf::new(),
                message: "not a serial scanner".into(),
            });
        };
        let p = profile.as_deref().map(ScannerProfile::load).transpose()?;
        Ok(Self {
            name: config.name(),
            device: device.clone(),
            baud: baud.or(p.as_ref().map(|p| p.baud)).unwrap_or(9600),
            data_bits: p.as_ref().map_or(8, |p| p.data_bits),
            parity: p.as_ref().map_or(Parity::None, |p| p.parity),
            stop_bits: p.as_ref().map_or(1, |p| p.stop_bits),
            terminator: terminator_bytes(
                terminator
                    .as_deref()
                    .or(p.as_ref().map(|p| p.terminator.as_str()))
                    .unwrap_or("\r\n"),
            ),
            max_line: max_line.or(p.as_ref().map(|p| p.max_line)).unwrap_or(512),
            line_timeout_ms: line_timeout_ms
                .or(p.as_ref().map(|p| p.line_timeout_ms))
                .unwrap_or(500),
            reopen_ms: reopen_ms.unwrap_or(1000),
        })
    }
}

/// Reads one serial scanner; reopens the port after errors (unplugging).
pub struct SerialInput {
    pub settings: SerialSettings,
}

impl Input for SerialInput {
    fn name(&self) -> String {
        self.settings.name.clone()
    }

    fn start(self: Box<Self>, ctx: InputContext) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("serial {}", self.settings.device.display()))
            .spawn(move || serial_loop(&self.settings, &ctx))
    }
}

fn open_port(s: &SerialSettings) -> serialport::Result<serialport::TTYPort> {
    let device = s.device.to_string_lossy().into_owned();
    serialport::new(device, s.baud)
        .data_bits(match s.data_bits {
            5 => serialport::DataBits::Five,
            6 => serialport::DataBits::Six,
            7 => serialport::DataBits::Seven,
            _ => serialport::DataBits::Eight,
        })
        .parity(match s.parity {
            Parity::None => serialport::Parity::None,
            Parity::Even => serialport::Parity::Even,
            Parity::Odd => serialport::Parity::Odd,
        })
        .stop_bits(if s.stop_bits == 2 {
            serialport::StopBits::Two
        } else {
            serialport::StopBits::One
        })
        .flow_control(serialport::FlowControl::None)
        .timeout(Duration::from_millis(100))
        .open_native()
}

fn serial_loop(s: &SerialSettings, ctx: &InputContext) {
    let source: Arc<str> = Arc::from(s.name.as_str());
    let epoch = Instant::now();
    let now_ms = || epoch.elapsed().as_millis() as u64;
    let mut announced_wait = false;
    while !ctx.stop.is_triggered() {
        let mut port = match open_port(s) {
            Ok(p) => p,
            Err(e) => {
                if !announced_wait {
                    tracing::warn!(device = %s.device.display(), error = %e, "scanner not available; will retry");
                    announced_wait = true;
                }
                ctx.board
                    .set_input(&s.name, format!("waiting for {}: {e}", s.device.display()));
                sleep_unless_stopped(ctx, Duration::from_millis(s.reopen_ms));
                continue;
            }
        };
        announced_wait = false;
        tracing::info!(device = %s.device.display(), baud = s.baud, "serial scanner open");
        ctx.board.set_input(&s.name, "reading");
        ctx.board.count("gate_input_opens_total", 1);
        let mut framer = LineFramer::new(&s.terminator, s.max_line, s.line_timeout_ms);
        let mut buf = [0u8; 512];
        while !ctx.stop.is_triggered() {
            let frames = match port.read(&mut buf) {
                Ok(0) => {
                    // Hang-up on a pty or a CDC-ACM device going away.
                    tracing::warn!(device = %s.device.display(), "scanner hung up");
                    break;
                }
                Ok(n) => framer.push(&buf[..n], now_ms()),
                Err(e) if e.kind() == std::io::ErrorKind::TimedOut => {
                    framer.expire(now_ms()).into_iter().collect()
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    tracing::warn!(device = %s.device.display(), error = %e, "scanner read failed; reopening");
                    break;
                }
            };
            for frame in frames {
                if matches!(frame, Frame::Garbage { .. }) {
                    ctx.board.count("gate_input_garbage_total", 1);
                }
                let scan = Scan {
                    source: Arc::clone(&source),
                    text: frame.into_scan_text(),
                };
                if ctx.scans.send(scan).is_err() {
                    return;
                }
            }
        }
        ctx.board.set_input(
            &s.name,
            format!("disconnected; waiting for {}", s.device.display()),
        );
        sleep_unless_stopped(ctx, Duration::from_millis(s.reopen_ms));
    }
}

pub(crate) fn sleep_unless_stopped(ctx: &InputContext, total: Duration) {
    let deadline = Instant::now() + total;
    while !ctx.stop.is_triggered() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50).min(total));
    }
}

/// One code per line on standard input (bench setups and the crash test).
pub struct StdinInput;

impl Input for StdinInput {
    fn name(&self) -> String {
        "stdin".to_owned()
    }

    fn start(self: Box<Self>, ctx: InputContext) -> std::io::Result<JoinHandle<()>> {
        let source: Arc<str> = Arc::from("stdin");
        let scans = ctx.scans.clone();
        let board = Arc::clone(&ctx.board);
        // Reading stdin cannot be interrupted, so the reader is detached and the
        // returned thread only waits for the stop signal.
        std::thread::Builder::new()
            .name("stdin".into())
            .spawn(move || {
                board.set_input("stdin", "reading");
                let stdin = std::io::stdin();
                let mut line = String::new();
                loop {
                    line.clear();
                    match stdin.read_line(&mut line) {
                        Ok(0) | Err(_) => break,
                        Ok(_) => {
                            let text = line.trim();
                            if text.is_empty() {
                                continue;
                            }
                            let scan = Scan {
                                source: Arc::clone(&source),
                                text: text.to_owned(),
                            };
                            if scans.send(scan).is_err() {
                                break;
                            }
                        }
                    }
                }
                board.set_input("stdin", "closed");
            })?;
        std::thread::Builder::new()
            .name("stdin-stop".into())
            .spawn(move || {
                while !ctx.stop.is_triggered() {
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framer() -> LineFramer {
        LineFramer::new(b"\r\n", 32, 500)
    }

    #[test]
    fn lines_split_across_reads_are_joined() {
        let mut f = framer();
        assert_eq!(f.push(b"ABC", 0), vec![]);
        assert_eq!(f.push(b"DEF\r", 10), vec![]);
        assert_eq!(
            f.push(b"\nGHI\r\n", 20),
            vec![Frame::Line("ABCDEF".into()), Frame::Line("GHI".into())]
        );
    }

    #[test]
    fn bare_terminators_are_not_scans() {
        let mut f = framer();
        assert_eq!(f.push(b"\r\n\r\n  \r\n", 0), vec![]);
    }

    #[test]
    fn overlong_line_is_one_garbage_frame_and_the_next_line_is_fine() {
        let mut f = framer();
        let mut input = vec![b'A'; 100];
        input.extend_from_slice(b"\r\nOK\r\n");
        let frames = f.push(&input, 0);
        assert_eq!(frames.len(), 2, "{frames:?}");
        assert!(matches!(
            frames[0],
            Frame::Garbage {
                reason: GarbageReason::Overlong { len: 100 },
                ..
            }
        ));
        assert_eq!(frames[1], Frame::Line("OK".into()));
    }

    #[test]
    fn a_line_of_max_line_bytes_passes_and_one_byte_more_is_overlong() {
        for terminator in [&b"\r\n"[..], b"\r", b"QQQQQQQQ"] {
            let mut f = LineFramer::new(terminator, 4, 500);
            let mut input = b"ABCD".to_vec();
            input.extend_from_slice(terminator);
            input.extend_from_slice(b"ABCDE");
            input.extend_from_slice(terminator);
            let frames = f.push(&input, 0);
            assert_eq!(frames.len(), 2, "{frames:?}");
            assert_eq!(frames[0], Frame::Line("ABCD".into()));
            assert!(
                matches!(
                    frames[1],
                    Frame::Garbage {
                        reason: GarbageReason::Overlong { len: 5 },
                        ..
                    }
                ),
                "{:?} with terminator {terminator:?}",
                frames[1]
            );
        }
    }

    #[test]
    fn control_bytes_and_invalid_utf8_are_garbage() {
        let mut f = framer();
        let frames = f.push(b"AB\x01C\r\n\xff\xfe\r\n", 0);
        assert!(frames.iter().all(|f| matches!(
            f,
            Frame::Garbage {
                reason: GarbageReason::NotText,
                ..
            }
        )));
        assert_eq!(frames.len(), 2);
    }

    #[test]
    fn unfinished_line_expires_after_the_timeout() {
        let mut f = framer();
        assert_eq!(f.push(b"HALF", 1000), vec![]);
        assert_eq!(f.expire(1499), None);
        assert!(matches!(
            f.expire(1500),
            Some(Frame::Garbage {
                reason: GarbageReason::Timeout,
                ..
            })
        ));
        assert_eq!(f.push(b"NEW\r\n", 1600), vec![Frame::Line("NEW".into())]);
    }

    #[test]
    fn single_byte_terminator_works() {
        let mut f = LineFramer::new(b"\r", 32, 500);
        assert_eq!(
            f.push(b"A\rB\r\n", 0),
            vec![Frame::Line("A".into()), Frame::Line("B".into())]
        );
    }

    #[test]
    fn escaped_terminators_are_understood() {
        assert_eq!(terminator_bytes("\\r\\n"), b"\r\n");
        assert_eq!(terminator_bytes("\r"), b"\r");
        assert_eq!(terminator_bytes("\\x03"), b"\x03");
    }

    proptest::proptest! {
        #[test]
        fn framer_never_panics_and_lines_are_bounded(chunks in proptest::collection::vec(proptest::collection::vec(proptest::num::u8::ANY, 0..80), 0..20)) {
            let mut f = framer();
            for (i, c) in chunks.iter().enumerate() {
                for frame in f.push(c, i as u64 * 100) {
                    if let Frame::Line(l) = frame {
                        proptest::prop_assert!(l.len() <= 32);
                    }
                }
            }
        }
    }
}
