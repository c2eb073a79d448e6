//! Headless Chromium driven over WebDriver (chromedriver), for the tests of
//! the pages the server serves: navigate, find, click, type, run a script,
//! screenshot, and Chromium's DevTools commands (a script every new page
//! runs first, the network switched off). A small client of the W3C
//! protocol over the HTTP client the tests already use.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// The key of an element reference in W3C WebDriver answers.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A running chromedriver with one headless Chromium session.
pub struct Browser {
    rt: tokio::runtime::Runtime,
    http: reqwest::Client,
    base: String,
    driver: Child,
    _profile: tempfile::TempDir,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

impl Browser {
    /// Starts chromedriver and a headless Chromium `width` x `height`.
    pub fn start(width: u32, height: u32) -> anyhow::Result<Self> {
        let port = free_port()?;
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context(
                "this test needs chromedriver (Debian/Ubuntu: apt-get install chromium-driver; \
                 scripts/test.sh installs it)",
            )?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let profile = tempfile::tempdir()?;
        let mut browser = Self {
            rt,
            http: reqwest::Client::new(),
            base: format!("http://127.0.0.1:{port}"),
            driver,
            _profile: profile,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while browser.call("GET", "/status", None).is_err() {
            if Instant::now() > deadline {
                bail!("chromedriver did not start");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let binary = [
            "/usr/bin/chromium",
            "/usr/bin/chromium-browser",
            "/usr/bin/google-chrome",
        ]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .context("no Chromium binary found")?;
        let created = browser.call(
            "POST",
            "/session",
            Some(json!({"capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "goog:chromeOptions": {
                    "binary": binary,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--no-first-run", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync",
                        format!("--user-data-dir={}", browser._profile.path().display()),
                        format!("--window-size={width},{height}"),
                    ]
                }
            }}})),
        )?;
        let session = created["sessionId"]
            .as_str()
            .context("no session id")?
            .to_owned();
        browser.base = format!("{}/session/{session}", browser.base);
        Ok(browser)
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.base);
        self.rt.block_on(async {
            let request = match method {
                "GET" => self.http.get(&url),
                "DELETE" => self.http.delete(&url),
                _ => self
                    .http
                    .post(&url)
                    .json(&body.unwrap_or_else(|| json!({}))),
            };
            let response = request.timeout(Duration::from_secs(120)).send().await?;
            let status = response.status();
            let answer: Value = response.json().await?;
            if !status.is_success() {
                bail!("WebDriver {method} {path}: {status} {}", answer["value"]);
            }
            Ok(answer["value"].clone())
        })
    }

    /// Opens `url` and waits for it to load.
    pub fn open(&self, url: &str) -> anyhow::Result<()> {
        self.call("POST", "/url", Some(json!({ "url": url })))?;
        Ok(())
    }

    /// The page's address now.
    pub fn url(&self) -> anyhow::Result<String> {
        Ok(self
            .call("GET", "/url", None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Resizes the window (phone and laptop widths).
    pub fn resize(&self, width: u32, height: u32) -> anyhow::Result<()> {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({ "width": width, "height": height })),
        )?;
        Ok(())
    }

    /// The first element matching `css`.
    pub fn find(&self, css: &str) -> anyhow::Result<String> {
        let found = self
            .call(
                "POST",
                "/element",
                Some(json!({ "using": "css selector", "value": css })),
            )
            .with_context(|| format!("no element {css}"))?;
        found[ELEMENT]
            .as_str()
            .map(str::to_owned)
            .with_context(|| format!("no element id for {css}: {found}"))
    }

    pub fn click(&self, css: &str) -> anyhow::Result<()> {
        let element = self.find(css)?;
        self.call("POST", &format!("/element/{element}/click"), None)?;
        Ok(())
    }

    pub fn type_into(&self, css: &str, text: &str) -> anyhow::Result<()> {
        let element = self.find(css)?;
        self.call(
            "POST",
            &format!("/element/{element}/value"),
            Some(json!({ "text": text })),
        )?;
        Ok(())
    }

    /// The visible text of the first element matching `css`.
    pub fn text(&self, css: &str) -> anyhow::Result<String> {
        let element = self.find(css)?;
        Ok(self
            .call("GET", &format!("/element/{element}/text"), None)?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    /// Runs `script` (a function body; `arguments` holds `args`) and
    /// answers what it returns.
    pub fn script(&self, script: &str, args: Value) -> anyhow::Result<Value> {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({ "script": script, "args": args })),
        )
    }

    /// Waits until `script` returns something truthy; answers it.
    pub fn wait_for(&self, what: &str, within: Duration, script: &str) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let value = self.script(script, json!([]))?;
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64().is_some_and(|n| n != 0.0),
                _ => true,
            };
            if truthy {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!("{what}: not within {within:?}");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A Chromium DevTools command (`Page.addScriptToEvaluateOnNewDocument`,
    /// `Network.emulateNetworkConditions`, ...).
    pub fn devtools(&self, command: &str, params: Value) -> anyhow::Result<Value> {
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({ "cmd": command, "params": params })),
        )
    }

    /// Switches the browser's network off (or back on) through
    /// chromedriver's network emulation: requests fail as with no network
    /// and `navigator.onLine` turns false.
    pub fn set_offline(&self, offline: bool) -> anyhow::Result<()> {
        if offline {
            self.call(
                "POST",
                "/chromium/network_conditions",
                Some(json!({ "network_conditions": {
                    "offline": true, "latency": 0,
                    "download_throughput": 1_000_000, "upload_throughput": 1_000_000
                }})),
            )?;
        } else {
            self.call("DELETE", "/chromium/network_conditions", None)?;
        }
        Ok(())
    }

    /// Saves a PNG of the window to `path`.
    pub fn screenshot(&self, path: &Path) -> anyhow::Result<()> {
        let data = self.call("GET", "/screenshot", None)?;
        let png = base64::Engine::decode(
            &base64::engine::general_purpose::STANDARD,
            data.as_str().unwrap_or_default(),
        )?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.call("DELETE", "", None);
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// A wallet provider like the ones wallets inject (`window.solana`), for
/// `key`; it signs in the page with WebCrypto, so the key never leaves it.
pub fn injected_wallet(key: &ed25519_dalek::SigningKey) -> String {
    use base64::Engine as _;
    let url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let address = bs58::encode(key.verifying_key().to_bytes()).into_string();
    format!(
        r#"(() => {{
  const jwk = {{ kty: "OKP", crv: "Ed25519", d: "{d}", x: "{x}" }};
  const key = crypto.subtle.importKey("jwk", jwk, {{ name: "Ed25519" }}, false, ["sign"]);
  const publicKey = {{ toBase58: () => "{address}", toString: () => "{address}" }};
  window.solana = {{
    publicKey,
    connect: async () => ({{ publicKey }}),
    signMessage: async (message) => ({{
      signature: new Uint8Array(await crypto.subtle.sign({{ name: "Ed25519" }}, await key, message)),
      publicKey,
    }}),
  }};
}})();"#,
        d = url.encode(key.to_bytes()),
        x = url.encode(key.verifying_key().to_bytes()),
    )
}

/// Where the tests keep their screenshots: beside the build output, so a CI
/// run's artifacts survive the run.
pub fn artifacts_dir(name: &str) -> std::path::PathBuf {
    let base = std::env::var_os("CARGO_TARGET_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"));
    base.join("test-artifacts").join(name)
}
