//! USB HID keyboard-wedge scanners read from evdev with an exclusive grab, so
//! codes never reach a console or a focused window. The key-event-to-text
//! parser is pure (US layout, shift, caps lock, Enter terminates); the thread
//! around it only moves events.

use std::path::PathBuf;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::agent::{Input, InputContext};
use crate::gate::Scan;
use crate::serial::sleep_unless_stopped;

/// Longest line a wedge scanner may type before it is treated as garbage.
pub const MAX_TYPED_LINE: usize = 1024;

/// Linux input key codes the parser knows (from `linux/input-event-codes.h`).
pub mod keys {
    pub const ESC: u16 = 1;
    pub const MINUS: u16 = 12;
    pub const EQUAL: u16 = 13;
    pub const BACKSPACE: u16 = 14;
    pub const TAB: u16 = 15;
    pub const LEFTBRACE: u16 = 26;
    pub const RIGHTBRACE: u16 = 27;
    pub const ENTER: u16 = 28;
    pub const SEMICOLON: u16 = 39;
    pub const APOSTROPHE: u16 = 40;
    pub const GRAVE: u16 = 41;
    pub const LEFTSHIFT: u16 = 42;
    pub const BACKSLASH: u16 = 43;
    pub const COMMA: u16 = 51;
    pub const DOT: u16 = 52;
    pub const SLASH: u16 = 53;
    pub const RIGHTSHIFT: u16 = 54;
    pub const KPASTERISK: u16 = 55;
    pub const SPACE: u16 = 57;
    pub const CAPSLOCK: u16 = 58;
    pub const KPMINUS: u16 = 74;
    pub const KPPLUS: u16 = 78;
    pub const KPDOT: u16 = 83;
    pub const KPENTER: u16 = 96;
    pub const KPSLASH: u16 = 98;
    /// `1`..`9`, `0` are 2..=11.
    pub const DIGIT_ROW: [u16; 10] = [11, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    /// Keypad `0`..`9`.
    pub const KEYPAD: [u16; 10] = [82, 79, 80, 81, 75, 76, 77, 71, 72, 73];

    /// Key code of a lowercase ASCII letter.
    pub fn letter(c: char) -> Option<u16> {
        const ROWS: [(&str, u16); 3] = [("qwertyuiop", 16), ("asdfghjkl", 30), ("zxcvbnm", 44)];
        ROWS.iter()
            .find_map(|(row, first)| row.find(c).map(|i| first + i as u16))
    }
}

/// One key event as evdev reports it: `value` 1 = press, 0 = release, 2 = autorepeat.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyEvent {
    pub code: u16,
    pub value: i32,
}

impl KeyEvent {
    pub fn press(code: u16) -> Self {
        Self { code, value: 1 }
    }
    pub fn release(code: u16) -> Self {
        Self { code, value: 0 }
    }
}

/// Turns key events into lines of text.
#[derive(Debug, Clone, Default)]
pub struct WedgeParser {
    left_shift: bool,
    right_shift: bool,
    caps_lock: bool,
    line: String,
    max_line: usize,
    overlong: bool,
}

impl WedgeParser {
    pub fn new(max_line: usize) -> Self {
        Self {
            max_line,
            ..Self::default()
        }
    }

    /// Feeds one event; returns a line when Enter completes one.
    pub fn feed(&mut self, event: KeyEvent) -> Option<String> {
        use keys::*;
        let pressed = event.value == 1 || event.value == 2;
        match event.code {
            LEFTSHIFT => self.left_shift = pressed,
            RIGHTSHIFT => self.right_shift = pressed,
            CAPSLOCK if event.value == 1 => self.caps_lock = !self.caps_lock,
            ENTER | KPENTER if event.value == 1 => {
                let line = std::mem::take(&mut self.line);
                let overlong = std::mem::take(&mut self.overlong);
                if overlong {
                    return Some(format!("<overlong typed line: {line}>"));
                }
                return (!line.is_empty()).then_some(line);
            }
            BACKSPACE if event.value != 0 => {
                self.line.pop();
            }
            ESC if event.value == 1 => self.line.clear(),
            code if pressed => {
                if let Some(c) = self.char_for(code) {
                    if self.line.len() >= self.max_line {
                        self.overlong = true;
                    } else {
                        self.line.push(c);
                    }
                }
            }
            _ => {}
        }
        None
    }

    fn char_for(&self, code: u16) -> Option<char> {
        use keys::*;
        let shift = self.left_shift || self.right_shift;
        if let Some(i) = DIGIT_ROW.iter().position(|&k| k == code) {
            return Some(if shift {
                b")!@#$%^&*("[i] as char
            } else {
                (b'0' + i as u8) as char
            });
        }
        if let Some(i) = KEYPAD.iter().position(|&k| k == code) {
            return Some((b'0' + i as u8) as char);
        }
        for c in 'a'..='z' {
            if letter(c) == Some(code) {
                let upper = shift != self.caps_lock;
                return Some(if upper { c.to_ascii_uppercase() } else { c });
            }
        }
        let (plain, shifted) = match code {
            MINUS => ('-', '_'),
            EQUAL => ('=', '+'),
            LEFTBRACE => ('[', '{'),
            RIGHTBRACE => (']', '}'),
            SEMICOLON => (';', ':'),
            APOSTROPHE => ('\'', '"'),
            GRAVE => ('`', '~'),
            BACKSLASH => ('\\', '|'),
            COMMA => (',', '<'),
            DOT => ('.', '>'),
            SLASH => ('/', '?'),
            SPACE => (' ', ' '),
            TAB => ('\t', '\t'),
            KPASTERISK => ('*', '*'),
            KPMINUS => ('-', '-'),
            KPPLUS => ('+', '+'),
            KPDOT => ('.', '.'),
            KPSLASH => ('/', '/'),
            _ => return None,
        };
        Some(if shift { shifted } else { plain })
    }
}

/// The key events a US-layout wedge scanner sends for `text` followed by Enter
/// (used by tests and the virtual-keyboard check).
pub fn events_for_text(text: &str) -> Vec<KeyEvent> {
    let mut out = Vec::new();
    for c in text.chars() {
        let (code, shift) = match c {
            'a'..='z' => (keys::letter(c), false),
            'A'..='Z' => (keys::letter(c.to_ascii_lowercase()), true),
            '0'..='9' => (Some(keys::DIGIT_ROW[(c as u8 - b'0') as usize]), false),
            '-' => (Some(keys::MINUS), false),
            '_' => (Some(keys::MINUS), true),
            '.' => (Some(keys::DOT), false),
            '/' => (Some(keys::SLASH), false),
            ':' => (Some(keys::SEMICOLON), true),
            ' ' => (Some(keys::SPACE), false),
            _ => (None, false),
        };
        let Some(code) = code else { continue };
        if shift {
            out.push(KeyEvent::press(keys::LEFTSHIFT));
        }
        out.push(KeyEvent::press(code));
        out.push(KeyEvent::release(code));
        if shift {
            out.push(KeyEvent::release(keys::LEFTSHIFT));
        }
    }
    out.push(KeyEvent::press(keys::ENTER));
    out.push(KeyEvent::release(keys::ENTER));
    out
}

/// Reads a keyboard-wedge scanner with an exclusive grab; reopens it when it
/// is unplugged and comes back.
pub struct WedgeInput {
    pub name: String,
    pub device: PathBuf,
    pub reopen_ms: u64,
}

impl Input for WedgeInput {
    fn name(&self) -> String {
        self.name.clone()
    }

    fn start(self: Box<Self>, ctx: InputContext) -> std::io::Result<JoinHandle<()>> {
        std::thread::Builder::new()
            .name(format!("wedge {}", self.device.display()))
            .spawn(move || wedge_loop(&self, &ctx))
    }
}

fn wedge_loop(input: &WedgeInput, ctx: &InputContext) {
    let source: Arc<str> = Arc::from(input.name.as_str());
    while !ctx.stop.is_triggered() {
        let opened = evdev::Device::open(&input.device).and_then(|mut d| {
            d.grab()?;
            d.set_nonblocking(true)?;
            Ok(d)
        });
        let mut device = match opened {
            Ok(d) => d,
            Err(e) => {
                ctx.board.set_input(
                    &input.name,
                    format!("waiting for {}: {e}", input.device.display()),
                );
                sleep_unless_stopped(ctx, Duration::from_millis(input.reopen_ms));
                continue;
            }
        };
        tracing::info!(device = %input.device.display(), "keyboard-wedge scanner grabbed");
        ctx.board.set_input(&input.name, "reading (grabbed)");
        let mut parser = WedgeParser::new(MAX_TYPED_LINE);
        'read: while !ctx.stop.is_triggered() {
            match device.fetch_events() {
                Ok(events) => {
                    for ev in events {
                        if ev.event_type() != evdev::EventType::KEY {
                            continue;
                        }
                        if let Some(line) = parser.feed(KeyEvent {
                            code: ev.code(),
                            value: ev.value(),
                        }) {
                            let scan = Scan {
                                source: Arc::clone(&source),
                                text: line,
                            };
                            if ctx.scans.send(scan).is_err() {
                                return;
                            }
                        }
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => {
                    tracing::warn!(device = %input.device.display(), error = %e, "wedge scanner lost; reopening");
                    break 'read;
                }
            }
        }
        ctx.board.set_input(
            &input.name,
            format!("disconnected; waiting for {}", input.device.display()),
        );
        sleep_unless_stopped(ctx, Duration::from_millis(input.reopen_ms));
    }
}

#[cfg(test)]
mod tests {
    use super::keys::*;
    use super::*;

    fn feed_all(p: &mut WedgeParser, events: &[KeyEvent]) -> Vec<String> {
        events.iter().filter_map(|e| p.feed(*e)).collect()
    }

    #[test]
    fn recorded_scan_with_shift_gives_mixed_case_text() {
        // As recorded from a wedge scanner typing "Ab3_" and Enter.
        let events = [
            KeyEvent::press(LEFTSHIFT),
            KeyEvent::press(30),
            KeyEvent::release(30),
            KeyEvent::release(LEFTSHIFT),
            KeyEvent::press(48),
            KeyEvent::release(48),
            KeyEvent::press(4),
            KeyEvent::release(4),
            KeyEvent::press(RIGHTSHIFT),
            KeyEvent::press(MINUS),
            KeyEvent::release(MINUS),
            KeyEvent::release(RIGHTSHIFT),
            KeyEvent::press(ENTER),
            KeyEvent::release(ENTER),
        ];
        assert_eq!(feed_all(&mut WedgeParser::new(512), &events), ["Ab3_"]);
    }

    #[test]
    fn caps_lock_inverts_letters_but_not_digits() {
        let mut p = WedgeParser::new(512);
        let mut events = vec![KeyEvent::press(CAPSLOCK), KeyEvent::release(CAPSLOCK)];
        events.extend(events_for_text("ab12Cd"));
        assert_eq!(feed_all(&mut p, &events), ["AB12cD"]);
    }

    #[test]
    fn keypad_enter_terminates_and_autorepeat_types() {
        let mut p = WedgeParser::new(512);
        let events = [
            KeyEvent::press(KEYPAD[7]),
            KeyEvent {
                code: KEYPAD[7],
                value: 2,
            },
            KeyEvent::release(KEYPAD[7]),
            KeyEvent::press(KPENTER),
        ];
        assert_eq!(feed_all(&mut p, &events), ["77"]);
    }

    #[test]
    fn base32_credential_text_roundtrips_through_key_events() {
        let text = "AEAAAAAAAAAAAHMAAAABE2MZXOTDEJ2RBFZ4Q7";
        assert_eq!(
            feed_all(&mut WedgeParser::new(512), &events_for_text(text)),
            [text]
        );
    }

    #[test]
    fn empty_enter_is_not_a_scan_and_overlong_is_marked() {
        let mut p = WedgeParser::new(4);
        assert_eq!(p.feed(KeyEvent::press(ENTER)), None);
        let out = feed_all(&mut p, &events_for_text("abcdefg"));
        assert_eq!(out, ["<overlong typed line: abcd>"]);
    }
}
