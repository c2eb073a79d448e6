//! HTML of the console's pages: one layout, escaped text, and the live
//! page's sections (rendered here for the first paint and again for every
//! update the live stream sends, so both always look the same).

use std::fmt::Write as _;

use crate::services::live::LiveView;
use crate::store::MinuteCount;

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A whole page: `title`, who is signed in (if anyone), and `body`.
pub fn page(title: &str, signed_in: Option<&str>, body: &str) -> String {
    let account = match signed_in {
        Some(who) => format!(
            r#"<span class="who">{}</span>
<form method="post" action="/console/sign-out"><button type="submit">Sign out</button></form>"#,
            escape(who)
        ),
        None => String::new(),
    };
    format!(
        r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · Gate console</title>
<link rel="stylesheet" href="/console/assets/console.css">
<script src="/console/assets/console.js" defer></script>
</head>
<body>
<header><a class="brand" href="/console">Gate console</a><nav>{account}</nav></header>
<main>
{body}
</main>
</body>
</html>
"#,
        title = escape(title)
    )
}

/// A time as UTC text (`2026-12-05 18:30 UTC`).
pub fn when(unix: i64) -> String {
    let t =
        std::time::UNIX_EPOCH + std::time::Duration::from_secs(u64::try_from(unix).unwrap_or(0));
    let text = humantime::format_rfc3339_seconds(t).to_string();
    format!("{} {} UTC", &text[..10], &text[11..16])
}

/// The live page's sections by element id, in the order they appear.
pub fn live_sections(view: &LiveView) -> Vec<(&'static str, String)> {
    vec![
        ("totals", totals(view)),
        ("gates", gates(view)),
        ("chart", chart(&view.per_minute, view.at)),
        ("refusals", refusals(view)),
        ("replay", replay(view)),
        ("review", review(view)),
    ]
}

fn totals(view: &LiveView) -> String {
    format!(
        r#"<dl class="totals">
<div><dt>Inside now</dt><dd data-figure="inside">{}</dd></div>
<div><dt>Admitted</dt><dd data-figure="admitted">{}</dd></div>
<div><dt>Refused</dt><dd data-figure="refused">{}</dd></div>
<div><dt>To review</dt><dd data-figure="review">{}</dd></div>
</dl>"#,
        view.inside,
        view.admitted,
        view.refused,
        view.incidents.conflicts.len() + view.incidents.incidents.len()
    )
}

fn gates(view: &LiveView) -> String {
    if view.gates.is_empty() {
        return r#"<p class="empty">No gates yet: add one on the <a href="gates">Gates page</a>.</p>"#
            .to_owned();
    }
    let mut rows = String::new();
    for g in &view.gates {
        let c = &g.counts;
        let skew = match c.clock_skew_secs {
            Some(s) if s.abs() >= 2 => format!(
                r#"<span class="warn">{} s {}</span>"#,
                s.abs(),
                if s > 0 { "ahead" } else { "behind" }
            ),
            Some(_) => "ok".to_owned(),
            None => "–".to_owned(),
        };
        let _ = write!(
            rows,
            r#"<tr data-gate="{number}"><th scope="row">{number} · {name}</th><td>{state}</td><td data-figure="admitted">{admitted}</td><td data-figure="refused">{rejected}</td><td>{exits}</td><td data-figure="inside">{inside}</td><td>{backlog}</td><td>{skew}</td></tr>"#,
            number = c.gate,
            name = escape(&c.name),
            state = if g.online {
                r#"<span class="ok">online</span>"#
            } else {
                r#"<span class="warn">offline</span>"#
            },
            admitted = c.admitted,
            rejected = c.rejected,
            exits = c.exits,
            inside = c.inside,
            backlog = c.backlog,
        );
    }
    format!(
        r#"<div class="scroll"><table>
<caption>Gates</caption>
<thead><tr><th scope="col">Gate</th><th scope="col">Link</th><th scope="col">Admitted</th><th scope="col">Refused</th><th scope="col">Exits</th><th scope="col">Inside</th><th scope="col">Not yet sent</th><th scope="col">Clock</th></tr></thead>
<tbody>{rows}</tbody>
</table></div>"#
    )
}

/// Admissions per minute over the last hour, as an SVG bar chart.
fn chart(minutes: &[MinuteCount], now: i64) -> String {
    let width = 600;
    let height = 120;
    let span = crate::services::live::CHART_MINUTES;
    let start = (now / 60 - span + 1) * 60;
    let peak = minutes.iter().map(|m| m.entries).max().unwrap_or(0).max(1);
    let bar = f64::from(width) / span as f64;
    let mut bars = String::new();
    for m in minutes.iter().filter(|m| m.minute >= start) {
        let slot = ((m.minute - start) / 60) as f64;
        let h = (m.entries as f64 / peak as f64) * f64::from(height - 14);
        let _ = write!(
            bars,
            r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}"><title>{}: {} admitted</title></rect>"#,
            slot * bar + 1.0,
            f64::from(height) - h,
            (bar - 2.0).max(1.0),
            h,
            when(m.minute),
            m.entries
        );
    }
    let total: u64 = minutes.iter().map(|m| m.entries).sum();
    format!(
        r#"<figure><svg viewBox="0 0 {width} {height}" role="img" aria-label="Admissions per minute over the last hour: {total} in all, at most {peak} in one minute" preserveAspectRatio="none">{bars}</svg>
<figcaption>Admissions per minute, last hour ({total} in all; peak {peak}/min)</figcaption></figure>"#,
        peak = if minutes.is_empty() { 0 } else { peak }
    )
}

fn refusals(view: &LiveView) -> String {
    if view.refusals.is_empty() {
        return r#"<p class="empty">No refusals.</p>"#.to_owned();
    }
    let mut rows = String::new();
    for r in &view.refusals {
        let _ = write!(
            rows,
            r#"<tr><th scope="row">{}</th><td>{}</td></tr>"#,
            escape(&reason_text(&r.reason)),
            r.count
        );
    }
    format!(
        r#"<table><caption>Refusals by reason</caption><thead><tr><th scope="col">Reason</th><th scope="col">Scans</th></tr></thead><tbody>{rows}</tbody></table>"#
    )
}

/// Outcome codes in words staff and organizers use.
pub fn reason_text(code: &str) -> String {
    match code {
        "already_inside" => "Already inside".to_owned(),
        "revoked" => "Ticket revoked".to_owned(),
        "frozen" => "Ticket frozen".to_owned(),
        "refunded" => "Ticket refunded".to_owned(),
        "forged" => "Forged code".to_owned(),
        "unreadable" => "Unreadable code".to_owned(),
        "wrong_event" => "Ticket for another event".to_owned(),
        "stale_generation" | "owner_mismatch" => "Code of a previous holder".to_owned(),
        "holder_proof_missing" => "No live code (a static code or a screenshot)".to_owned(),
        "holder_proof_stale" => "Live code too old (a screenshot) or phone clock wrong".to_owned(),
        "holder_key_expired" => "Phone's approval by the wallet ran out".to_owned(),
        "holder_key_not_yet_valid" => "Phone's approval not valid yet (phone clock?)".to_owned(),
        "unknown_ticket" => "Unknown ticket".to_owned(),
        "doors_not_open" => "Doors not open yet".to_owned(),
        "doors_closed" => "Doors closed".to_owned(),
        "event_ended" => "Event over".to_owned(),
        "event_cancelled" => "Event cancelled".to_owned(),
        "tier_not_allowed" => "Tier not admitted at this gate".to_owned(),
        "exit_required" => "Must exit before entering again".to_owned(),
        "exit_without_entry" => "Exit without an entry".to_owned(),
        "undone_after_chain" => "Undone at the gate after it was recorded on chain".to_owned(),
        "admission_undone" => "Admission undone at the turnstile".to_owned(),
        other => other.replace('_', " "),
    }
}

fn replay(view: &LiveView) -> String {
    let r = &view.replay;
    format!(
        r#"<dl class="totals small">
<div><dt>Waiting</dt><dd data-figure="replay-waiting">{}</dd></div>
<div><dt>Submitted</dt><dd data-figure="replay-submitted">{}</dd></div>
<div><dt>Confirmed on chain</dt><dd data-figure="replay-confirmed">{}</dd></div>
<div><dt>Failed</dt><dd data-figure="replay-failed">{}</dd></div>
<div><dt>Transactions</dt><dd>{}</dd></div>
<div><dt>Fees</dt><dd>{} lamports</dd></div>
</dl>"#,
        r.waiting, r.submitted, r.confirmed, r.failed, r.transactions, r.fees_lamports
    )
}

fn review(view: &LiveView) -> String {
    let report = &view.incidents;
    if report.conflicts.is_empty() && report.incidents.is_empty() {
        return r#"<p class="empty">Nothing to review.</p>"#.to_owned();
    }
    let mut rows = String::new();
    for c in &report.conflicts {
        let _ = write!(
            rows,
            r#"<tr class="conflict"><th scope="row">Admitted twice</th><td>ticket {}</td><td>gate {} at {}</td><td>gate {} at {}</td></tr>"#,
            c.ticket_id,
            c.earlier_gate,
            when(c.earlier_scanned_at_ms.div_euclid(1000)),
            c.gate,
            when(c.scanned_at_ms.div_euclid(1000)),
        );
    }
    for i in &report.incidents {
        let _ = write!(
            rows,
            r#"<tr class="incident"><th scope="row">{}</th><td>{}</td><td>gate {} at {}</td><td></td></tr>"#,
            escape(&reason_text(&i.reason)),
            i.ticket_id
                .map_or("unknown ticket".to_owned(), |t| format!("ticket {t}")),
            i.gate,
            when(i.scanned_at_ms.div_euclid(1000)),
        );
    }
    format!(
        r#"<div class="scroll"><table><caption>To review</caption><thead><tr><th scope="col">What</th><th scope="col">Ticket</th><th scope="col">First scan</th><th scope="col">Second scan</th></tr></thead><tbody>{rows}</tbody></table></div>"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cannot_open_tags_or_leave_attributes() {
        assert_eq!(
            escape(r#"<script>"x" & 'y'</script>"#),
            "&lt;script&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }

    #[test]
    fn every_holder_proof_refusal_has_words() {
        for code in [
            "holder_proof_missing",
            "holder_proof_stale",
            "holder_key_expired",
            "holder_key_not_yet_valid",
        ] {
            assert_ne!(reason_text(code), code.replace('_', " "), "{code}");
        }
    }

    #[test]
    fn times_read_as_utc_minutes() {
        assert_eq!(when(1_764_075_600), "2025-11-25 13:00 UTC");
    }
}
