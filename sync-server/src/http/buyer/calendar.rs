//! Calendar files (RFC 5545): one event, for "Add to calendar".

/// What goes in the calendar entry.
pub struct CalendarEntry<'a> {
    /// Unique and stable for this entry (re-importing updates it).
    pub uid: String,
    pub title: &'a str,
    pub location: &'a str,
    pub description: String,
    pub starts_at: i64,
    pub ends_at: i64,
    pub url: String,
    /// When the file was made.
    pub stamp: i64,
}

/// Text as a calendar value: backslash, comma, semicolon and line breaks
/// escaped, control characters dropped.
fn text(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ',' => out.push_str("\\,"),
            ';' => out.push_str("\\;"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Unix seconds as a UTC date-time (`20261205T183000Z`).
fn stamp(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    let iso = humantime::format_rfc3339_seconds(t).to_string();
    // 2026-12-05T18:30:00Z
    iso.chars().filter(|c| *c != '-' && *c != ':').collect()
}

/// A content line folded at 75 octets, as the format requires, ending in
/// CRLF.
fn fold(line: &str, out: &mut String) {
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
}

/// The whole `.ics` file of `entry`.
pub fn ics(entry: &CalendarEntry<'_>) -> String {
    let mut out = String::new();
    for line in [
        "BEGIN:VCALENDAR".to_owned(),
        "VERSION:2.0".to_owned(),
        "PRODID:-//nft-gate//buyer pages//EN".to_owned(),
        "CALSCALE:GREGORIAN".to_owned(),
        "METHOD:PUBLISH".to_owned(),
        "BEGIN:VEVENT".to_owned(),
        format!("UID:{}", text(&entry.uid)),
        format!("DTSTAMP:{}", stamp(entry.stamp)),
        format!("DTSTART:{}", stamp(entry.starts_at)),
        format!("DTEND:{}", stamp(entry.ends_at.max(entry.starts_at))),
        format!("SUMMARY:{}", text(entry.title)),
        format!("LOCATION:{}", text(entry.location)),
        format!("DESCRIPTION:{}", text(&entry.description)),
        format!("URL:{}", text(&entry.url)),
        "END:VEVENT".to_owned(),
        "END:VCALENDAR".to_owned(),
    ] {
        fold(&line, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_calendar_file_escapes_text_and_folds_long_lines() {
        let file = ics(&CalendarEntry {
            uid: "event-7@tickets".into(),
            title: "Jazz, blues; and more",
            location: "Pier 4\nHarbour",
            description: "x".repeat(100),
            starts_at: 1_764_075_600,
            ends_at: 1_764_082_800,
            url: "https://t.example/events/7".into(),
            stamp: 1_764_000_000,
        });
        assert!(file.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(file.contains("DTSTART:20251125T130000Z\r\n"));
        assert!(file.contains("DTEND:20251125T150000Z\r\n"));
        assert!(file.contains("SUMMARY:Jazz\\, blues\\; and more\r\n"));
        assert!(file.contains("LOCATION:Pier 4\\nHarbour\r\n"));
        assert!(file.lines().all(|l| l.len() <= 75), "{file}");
        assert!(
            file.contains("\r\n x"),
            "a folded line goes on after a space"
        );
        assert!(file.ends_with("END:VCALENDAR\r\n"));
    }
}
