//! The kiosk page as a person sees it: headless Chromium renders the page of
//! a running agent after an admission and after a refusal; the screenshot's
//! verdict area must be green, then red.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;

use common::*;
use gate_agent::config::Config;
use gate_agent::{ManualClock, RecordingOutputs};

fn chromium() -> String {
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        if Command::new(name)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            return name.to_owned();
        }
    }
    panic!("this test needs a headless Chromium (Debian/Ubuntu: apt-get install -y chromium)");
}

fn screenshot(browser: &str, url: &str, out: &Path, profile: &Path) {
    let status = Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            "--timeout=3000",
            "--window-size=800,480",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", out.display()))
        .arg(url)
        .output()
        .unwrap();
    assert!(
        out.exists(),
        "no screenshot: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}

/// Mean colour of the verdict area (top third of the screen).
fn verdict_colour(png: &Path) -> [u32; 3] {
    let img = image::open(png).unwrap().to_rgb8();
    let (w, h) = img.dimensions();
    let mut sum = [0u64; 3];
    let mut n = 0u64;
    for y in (h / 20..h / 3).step_by(4) {
        for x in (0..w).step_by(4) {
            let p = img.get_pixel(x, y).0;
            for c in 0..3 {
                sum[c] += u64::from(p[c]);
            }
            n += 1;
        }
    }
    [
        (sum[0] / n) as u32,
        (sum[1] / n) as u32,
        (sum[2] / n) as u32,
    ]
}

#[test]
fn kiosk_page_shows_green_then_red_in_headless_chromium() {
    let browser = chromium();
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("gate.db");
    let venue = Venue::new();
    import(&db, &venue, &venue.snapshot(10));
    let mut config = Config::default();
    config.store.path = db;
    config.gate.name = "North entrance, lane 3".into();
    let outputs = RecordingOutputs::new();
    let (scans, input) = channel_input("lane");
    let agent = Running::start(
        config,
        vec![input],
        outputs.clone(),
        Arc::new(ManualClock::new(DURING_DOORS_MS)),
    );
    let url = format!("http://{}/", agent.status_addr.unwrap());

    scans.send(venue.code(1)).unwrap();
    wait_for(|| outputs.actuations().len() == 1, "admission");
    let green = dir.path().join("admitted.png");
    screenshot(&browser, &url, &green, &dir.path().join("profile-1"));

    scans.send(venue.code(1)).unwrap();
    wait_for(|| outputs.actuations().len() == 2, "refusal");
    let red = dir.path().join("refused.png");
    screenshot(&browser, &url, &red, &dir.path().join("profile-2"));
    agent.stop();

    if let Some(keep) = std::env::var_os("KIOSK_SCREENSHOT_DIR") {
        let _ = std::fs::copy(&green, Path::new(&keep).join("kiosk-admitted.png"));
        let _ = std::fs::copy(&red, Path::new(&keep).join("kiosk-refused.png"));
    }
    let [r, g, b] = verdict_colour(&green);
    assert!(
        g > 100 && g > r * 2 && g > b * 2,
        "admission screen is green, got rgb({r},{g},{b})"
    );
    let [r, g, b] = verdict_colour(&red);
    assert!(
        r > 150 && r > g * 3 && r > b * 3,
        "refusal screen is red, got rgb({r},{g},{b})"
    );
}
