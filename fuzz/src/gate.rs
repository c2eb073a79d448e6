//! Harnesses of the gate agent's input parsers: serial line framing, the
//! keyboard-wedge key-event parser, the configuration loader and QR decoding
//! of camera frames. Each takes arbitrary bytes, must not panic, and asserts
//! what must hold of its output.
//!
//! The fuzz targets call these functions, and so does `gate-agent`'s corpus
//! regression test on stable (it includes this file).

use gate_agent::config::Config;
use gate_agent::qr::{Effort, decode_with_effort, three_quarters};
use gate_agent::serial::{Frame, LineFramer, terminator_bytes};
use gate_agent::wedge::{KeyEvent, WedgeParser, events_for_text};
use image::GrayImage;
use shared::Credential;

/// Terminators scanner profiles use, picked by the input's first byte.
const TERMINATORS: [&[u8]; 4] = [b"\r\n", b"\r", b"\n", b"\x03"];

/// Bytes from a serial port, in chunks read at advancing times.
///
/// Input: a settings byte (terminator, and whether the rest of the first
/// chunk is an escaped terminator as a profile writes it), the longest line
/// (1 to 256 bytes), the line timeout (in tens of ms), then chunks of
/// `[length, milliseconds since the last chunk, bytes...]`. Every complete
/// line is at most the longest line long and free of control characters;
/// every frame becomes a scan text the credential decoder reads or refuses.
pub fn serial_framing(data: &[u8]) {
    let [settings, max_line, timeout, rest @ ..] = data else {
        return;
    };
    let mut rest = rest;
    let terminator = if settings & 0x80 != 0 {
        // The terminator as a profile writes it (`\r\n`, `\x03`), up to 8 bytes.
        let (text, tail) = rest.split_at(rest.len().min(8));
        rest = tail;
        let bytes = terminator_bytes(&String::from_utf8_lossy(text));
        if bytes.is_empty() {
            return;
        }
        bytes
    } else {
        TERMINATORS[usize::from(settings & 3)].to_vec()
    };
    let max_line = usize::from(*max_line) + 1;
    let mut framer = LineFramer::new(&terminator, max_line, u64::from(*timeout) * 10);
    let mut now_ms = 0u64;
    let mut frames = Vec::new();
    while let [len, dt, tail @ ..] = rest {
        let (chunk, tail) = tail.split_at(tail.len().min(usize::from(*len)));
        now_ms += u64::from(*dt);
        frames.extend(framer.push(chunk, now_ms));
        rest = tail;
    }
    frames.extend(framer.expire(now_ms + 1_000_000));
    for frame in frames {
        if let Frame::Line(line) = &frame {
            assert!(
                !line.is_empty() && line.len() <= max_line,
                "a line of {} bytes passed a {max_line}-byte limit",
                line.len()
            );
            assert!(!line.chars().any(char::is_control));
        }
        let _ = Credential::decode(&frame.into_scan_text());
    }
}

/// Key events from a keyboard-wedge scanner.
///
/// Input: a settings byte, then three bytes per event (key code, low byte
/// first, and the value as a signed byte: 1 press, 0 release, 2 repeat).
/// With bit 7 of the settings byte, the rest is text instead: typed the way
/// a US-layout scanner types it, it must come back as the same line.
/// Otherwise the longest line is the settings byte (at least 1), and every
/// line that comes out is at most that long or flagged as overlong.
pub fn wedge_keys(data: &[u8]) {
    let Some((&settings, rest)) = data.split_first() else {
        return;
    };
    if settings & 0x80 != 0 {
        let text: String = String::from_utf8_lossy(rest)
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || "-_./: ".contains(*c))
            .collect();
        let mut parser = WedgeParser::new(gate_agent::wedge::MAX_TYPED_LINE);
        let lines: Vec<String> = events_for_text(&text)
            .into_iter()
            .filter_map(|event| parser.feed(event))
            .collect();
        let expected: Vec<String> = if text.is_empty() {
            Vec::new()
        } else if text.len() > gate_agent::wedge::MAX_TYPED_LINE {
            vec![format!(
                "<overlong typed line: {}>",
                &text[..gate_agent::wedge::MAX_TYPED_LINE]
            )]
        } else {
            vec![text]
        };
        assert_eq!(lines, expected);
        return;
    }
    let max_line = usize::from(settings).max(1);
    let mut parser = WedgeParser::new(max_line);
    for event in rest.chunks_exact(3) {
        let event = KeyEvent {
            code: u16::from_le_bytes([event[0], event[1]]),
            value: i32::from(event[2] as i8),
        };
        if let Some(line) = parser.feed(event) {
            assert!(!line.is_empty());
            if !line.starts_with("<overlong typed line: ") {
                assert!(line.chars().count() <= max_line, "{line:?} over {max_line}");
            }
            let _ = Credential::decode(&line);
        }
    }
}

/// The agent's configuration file as text. What loads, prints (as
/// `config check --print` does) and loads back the same.
pub fn gate_config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(config) = Config::from_toml_str(text) else {
        return;
    };
    let _ = config.warnings();
    let printed = config.to_toml();
    match Config::from_toml_str(&printed) {
        Ok(again) => assert_eq!(again, config, "printed as:\n{printed}"),
        Err(error) => panic!("the printed config does not load: {error}\n{printed}"),
    }
}

/// Largest frame side the QR harness builds, so one input stays fast.
pub const MAX_FRAME_SIDE: u32 = 256;

/// A camera frame: a settings byte (bit 0: the slower passes too), the
/// width (low byte first, 1 to [`MAX_FRAME_SIDE`]), then 8-bit gray pixels
/// row by row (rows past [`MAX_FRAME_SIDE`] and a last partial row are left
/// out). Every payload found goes to the credential decoder, as the camera
/// input sends it.
pub fn qr_image(data: &[u8]) {
    let [settings, w0, w1, pixels @ ..] = data else {
        return;
    };
    let width = u32::from(u16::from_le_bytes([*w0, *w1])).clamp(1, MAX_FRAME_SIDE);
    let rows = (pixels.len() / width as usize).min(MAX_FRAME_SIDE as usize);
    let Some(frame) =
        GrayImage::from_raw(width, rows as u32, pixels[..rows * width as usize].to_vec())
    else {
        return;
    };
    let smaller = three_quarters(&frame);
    assert_eq!(
        smaller.dimensions(),
        if frame.width() < 4 || frame.height() < 4 {
            (0, 0)
        } else {
            (frame.width() / 4 * 3, frame.height() / 4 * 3)
        }
    );
    let effort = if settings & 1 == 1 {
        Effort::Harder { until: None }
    } else {
        Effort::Fast
    };
    for code in decode_with_effort(&frame, effort) {
        let _ = Credential::decode(&code);
    }
}
