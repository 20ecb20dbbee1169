//! A small W3C WebDriver client for the browser tests (`ui`): it starts Debian's chromedriver on
//! a free loopback port, opens a headless Chromium session with a fresh profile, and drives it
//! over HTTP (reqwest). Every error carries the WebDriver error and message. Dropping the
//! `Driver` ends the session (Chromium quits) and kills chromedriver.

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// The key W3C WebDriver names a web element by, in JSON.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// An element reference (the WebDriver element id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Element(pub String);

impl Element {
    /// The element as a script argument (`arguments[i]` is the DOM element).
    pub fn arg(&self) -> Value {
        json!({ ELEMENT_KEY: self.0 })
    }
}

pub struct Driver {
    child: Child,
    port: u16,
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    base: String,
    session: Option<String>,
    /// Chromium's browser process, ended on drop should chromedriver have left it running.
    browser_pid: Option<i32>,
    profile: tempfile::TempDir,
}

impl Driver {
    /// Starts chromedriver and a headless Chromium at 1440x900 with a fresh profile.
    pub async fn start() -> Result<Driver> {
        Self::start_sized(1440, 900).await
    }

    pub async fn start_sized(width: u32, height: u32) -> Result<Driver> {
        for (bin, pkg) in [(CHROMEDRIVER, "chromium-driver"), (CHROMIUM, "chromium")] {
            if !Path::new(bin).exists() {
                panic!(
                    "{bin} is missing: the browser tests (ui::) need Debian's {pkg}; \
                     run scripts/deps.sh"
                );
            }
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0")?;
            l.local_addr()?.port()
        };
        let log = std::env::var_os("ARGUS_UI_DRIVER_LOG");
        let mut cmd = Command::new(CHROMEDRIVER);
        cmd.arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        if let Some(l) = &log {
            cmd.arg(format!("--log-path={}", l.to_string_lossy()))
                .arg("--verbose");
        }
        let profile = tempfile::Builder::new().prefix("argus-ui-").tempdir()?;
        // reqwest is built without a default TLS crypto provider (see `support::TestApp`).
        let _ = tokio_rustls::rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()?;
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {CHROMEDRIVER}"))?;
        let mut d = Driver {
            child,
            port,
            http,
            base: String::new(),
            session: None,
            browser_pid: None,
            profile,
        };
        d.wait_ready().await?;
        let caps = json!({
            "capabilities": {"alwaysMatch": {
                "browserName": "chrome",
                "pageLoadStrategy": "normal",
                "goog:loggingPrefs": {"browser": "ALL"},
                "goog:chromeOptions": {
                    "binary": CHROMIUM,
                    "args": [
                        "--headless=new", "--no-sandbox", "--disable-gpu",
                        "--disable-dev-shm-usage", "--disable-background-networking",
                        "--disable-component-update", "--disable-sync", "--no-first-run",
                        format!("--user-data-dir={}", d.profile.path().display()),
                        format!("--window-size={width},{height}"),
                    ],
                },
            }}
        });
        let v = d
            .raw(
                "POST",
                &format!("http://127.0.0.1:{port}/session"),
                Some(caps),
            )
            .await
            .context("creating the Chromium session")?;
        d.browser_pid = v["value"]["capabilities"]["goog:processID"]
            .as_i64()
            .map(|p| p as i32);
        let id = v["value"]["sessionId"]
            .as_str()
            .ok_or_else(|| anyhow!("no sessionId in {v}"))?
            .to_string();
        d.base = format!("http://127.0.0.1:{port}/session/{id}");
        d.session = Some(id);
        d.cmd(
            "POST",
            "/timeouts",
            Some(json!({"script": 90_000, "pageLoad": 60_000, "implicit": 0})),
        )
        .await?;
        Ok(d)
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let url = format!("http://127.0.0.1:{}/status", self.port);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(st) = self.child.try_wait()? {
                bail!("{CHROMEDRIVER} exited at start-up: {st}");
            }
            if let Ok(r) = self.http.get(&url).send().await {
                if let Ok(v) = r.json::<Value>().await {
                    if v["value"]["ready"] == json!(true) {
                        return Ok(());
                    }
                }
            }
            if tokio::time::Instant::now() > deadline {
                bail!("{CHROMEDRIVER} was not ready within 20 s at {url}");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn raw(&self, method: &str, url: &str, body: Option<Value>) -> Result<Value> {
        let m = reqwest::Method::from_bytes(method.as_bytes())?;
        let mut rb = self.http.request(m, url);
        if let Some(b) = body {
            rb = rb.json(&b);
        } else if method == "POST" {
            rb = rb.json(&json!({}));
        }
        let r = rb
            .send()
            .await
            .with_context(|| format!("WebDriver {method} {url}: no answer"))?;
        let status = r.status();
        let text = r.text().await?;
        let v: Value = serde_json::from_str(&text)
            .with_context(|| format!("WebDriver {method} {url}: not JSON: {text}"))?;
        if !status.is_success() || v["value"]["error"].is_string() {
            let e = &v["value"];
            bail!(
                "WebDriver {method} {}: {} ({status}): {}",
                url.strip_prefix(&self.base).unwrap_or(url),
                e["error"].as_str().unwrap_or("?"),
                e["message"]
                    .as_str()
                    .unwrap_or(&text)
                    .lines()
                    .next()
                    .unwrap_or("")
            );
        }
        Ok(v)
    }

    /// A session command (`path` below `/session/<id>`); answers its `value`.
    pub async fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Result<Value> {
        let v = self
            .raw(method, &format!("{}{path}", self.base), body)
            .await?;
        Ok(v["value"].clone())
    }

    pub async fn goto(&self, url: &str) -> Result<()> {
        self.cmd("POST", "/url", Some(json!({ "url": url })))
            .await
            .with_context(|| format!("going to {url}"))?;
        Ok(())
    }

    pub async fn refresh(&self) -> Result<()> {
        self.cmd("POST", "/refresh", None).await?;
        Ok(())
    }

    pub async fn current_url(&self) -> Result<String> {
        Ok(self
            .cmd("GET", "/url", None)
            .await?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    fn element_of(v: &Value) -> Result<Element> {
        v[ELEMENT_KEY]
            .as_str()
            .map(|s| Element(s.to_string()))
            .ok_or_else(|| anyhow!("not an element: {v}"))
    }

    /// The first element matching `css`, now (an error when there is none).
    pub async fn find(&self, css: &str) -> Result<Element> {
        let v = self
            .cmd(
                "POST",
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Self::element_of(&v)
    }

    /// Every element matching `css`, now.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let v = self
            .cmd(
                "POST",
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        v.as_array()
            .ok_or_else(|| anyhow!("not a list: {v}"))?
            .iter()
            .map(Self::element_of)
            .collect()
    }

    /// True when an element matches `css` now.
    pub async fn exists(&self, css: &str) -> Result<bool> {
        Ok(!self.find_all(css).await?.is_empty())
    }

    /// Polls for an element matching `css`; the error names the page and what it shows.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(e) = self.find_all(css).await?.into_iter().next() {
                return Ok(e);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "no element matches `{css}` within {:?}; {}",
                    timeout,
                    self.describe_page().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Polls a script (a function body, `return ...`) until it answers something truthy (not
    /// null, false, 0 or ""); answers that value.
    pub async fn wait_until(
        &self,
        what: &str,
        script: &str,
        args: Vec<Value>,
        timeout: Duration,
    ) -> Result<Value> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let v = self.execute(script, args.clone()).await?;
            let truthy = match &v {
                Value::Null => false,
                Value::Bool(b) => *b,
                Value::Number(n) => n.as_f64() != Some(0.0),
                Value::String(s) => !s.is_empty(),
                _ => true,
            };
            if truthy {
                return Ok(v);
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "{what}: not within {:?} (last {v}); {}",
                    timeout,
                    self.describe_page().await
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Where the browser is and what the page says, for error messages.
    pub async fn describe_page(&self) -> String {
        match self
            .execute(
                "return location.href + ' shows: ' + \
                 (document.body ? document.body.innerText : '').replace(/\\s+/g, ' ').slice(0, 600)",
                vec![],
            )
            .await
        {
            Ok(Value::String(s)) => s,
            Ok(v) => v.to_string(),
            Err(e) => format!("(page not readable: {e})"),
        }
    }

    /// Clicks the element's centre, scrolled to the middle of the viewport first (as a person
    /// would, so that a sticky bar at an edge does not cover it).
    pub async fn click(&self, e: &Element) -> Result<()> {
        self.execute(
            "arguments[0].scrollIntoView({block: 'center', inline: 'nearest'})",
            vec![e.arg()],
        )
        .await?;
        self.cmd("POST", &format!("/element/{}/click", e.0), None)
            .await?;
        Ok(())
    }

    /// Clears the field, then types `text` into it.
    pub async fn send_keys(&self, e: &Element, text: &str) -> Result<()> {
        self.cmd("POST", &format!("/element/{}/clear", e.0), None)
            .await?;
        self.cmd(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        )
        .await?;
        Ok(())
    }

    /// `wait_for(css)` (10 s), then `send_keys`.
    pub async fn fill(&self, css: &str, text: &str) -> Result<()> {
        let e = self.wait_for(css, Duration::from_secs(10)).await?;
        self.send_keys(&e, text)
            .await
            .with_context(|| format!("typing into `{css}`"))
    }

    /// `wait_for(css)` (10 s), then `click`.
    pub async fn click_css(&self, css: &str) -> Result<()> {
        let e = self.wait_for(css, Duration::from_secs(10)).await?;
        self.click(&e)
            .await
            .with_context(|| format!("clicking `{css}`"))
    }

    /// Picks the option of `value` in the `<select>` matching `css` (as a user would: the
    /// browser sends input and change events).
    pub async fn select(&self, css: &str, value: &str) -> Result<()> {
        self.wait_for(css, Duration::from_secs(10)).await?;
        let opt = format!("{css} option[value=\"{value}\"]");
        self.click_css(&opt).await
    }

    pub async fn text(&self, e: &Element) -> Result<String> {
        Ok(self
            .cmd("GET", &format!("/element/{}/text", e.0), None)
            .await?
            .as_str()
            .unwrap_or("")
            .to_string())
    }

    /// An attribute (null when absent).
    pub async fn attribute(&self, e: &Element, name: &str) -> Result<Value> {
        self.cmd("GET", &format!("/element/{}/attribute/{name}", e.0), None)
            .await
    }

    /// A DOM property (`value`, `checked`, `naturalWidth`...).
    pub async fn property(&self, e: &Element, name: &str) -> Result<Value> {
        self.cmd("GET", &format!("/element/{}/property/{name}", e.0), None)
            .await
    }

    /// `{x, y, width, height}` of the element, in CSS pixels of the page.
    pub async fn rect(&self, e: &Element) -> Result<(f64, f64, f64, f64)> {
        let v = self
            .cmd("GET", &format!("/element/{}/rect", e.0), None)
            .await?;
        let f = |k: &str| v[k].as_f64().unwrap_or(0.0);
        Ok((f("x"), f("y"), f("width"), f("height")))
    }

    /// Runs `script` (a function body; `arguments` are `args`) and answers what it returns.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
        .await
        .with_context(|| format!("script `{}`", short(script)))
    }

    /// Runs `script` with a callback as its last argument; answers what it is called with.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.cmd(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
        .await
        .with_context(|| format!("async script `{}`", short(script)))
    }

    /// Sets the window's outer size; in headless Chromium that is the viewport.
    pub async fn set_window_rect(&self, width: u32, height: u32) -> Result<()> {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        )
        .await?;
        Ok(())
    }

    /// Sizes the window so that the page's viewport (`innerWidth` x `innerHeight`) is
    /// `width` x `height` (headless Chromium's window is taller than its viewport).
    pub async fn set_viewport(&self, width: u32, height: u32) -> Result<()> {
        let (mut w, mut h) = (width as i64, height as i64);
        let mut seen = Vec::new();
        for _ in 0..5 {
            self.set_window_rect(w as u32, h as u32).await?;
            // The page sees a resize a frame or two later.
            let v = self
                .execute_async(
                    "const done = arguments[0];
                     requestAnimationFrame(() => requestAnimationFrame(() =>
                       done([window.innerWidth, window.innerHeight])));",
                    vec![],
                )
                .await?;
            let (iw, ih) = (v[0].as_i64().unwrap_or(0), v[1].as_i64().unwrap_or(0));
            seen.push(format!("window {w}x{h} -> viewport {iw}x{ih}"));
            if (iw, ih) == (width as i64, height as i64) {
                return Ok(());
            }
            w += width as i64 - iw;
            h += height as i64 - ih;
        }
        bail!(
            "could not make the viewport {width}x{height}: {}",
            seen.join(", ")
        )
    }

    /// A PNG of the viewport, written to `path` (its directory is created).
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let v = self.cmd("GET", "/screenshot", None).await?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().ok_or_else(|| anyhow!("no screenshot data"))?)?;
        if let Some(d) = path.parent() {
            std::fs::create_dir_all(d)?;
        }
        std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))?;
        Ok(())
    }

    /// Clicks with the mouse at `(fx, fy)`, fractions of the element's width and height from
    /// its top-left corner (W3C Actions: a pointer move relative to the element, down, up).
    pub async fn click_at(&self, e: &Element, fx: f64, fy: f64) -> Result<()> {
        self.execute(
            "arguments[0].scrollIntoView({block: 'center', inline: 'center'})",
            vec![e.arg()],
        )
        .await?;
        let (_, _, w, h) = self.rect(e).await?;
        // A pointer move's offset is from the centre of the element's in-view box.
        let x = (fx * w - w / 2.0).round() as i64;
        let y = (fy * h - h / 2.0).round() as i64;
        let actions = json!({"actions": [{
            "type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"},
            "actions": [
                {"type": "pointerMove", "duration": 0, "origin": e.arg(), "x": x, "y": y},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerUp", "button": 0},
            ],
        }]});
        self.cmd("POST", "/actions", Some(actions))
            .await
            .with_context(|| format!("clicking at ({fx}, {fy}) of the element"))?;
        self.cmd("DELETE", "/actions", None).await?;
        Ok(())
    }

    /// The browser's console log since the last call (`[{level, message, timestamp}]`).
    pub async fn browser_log(&self) -> Result<Vec<Value>> {
        let v = self
            .cmd("POST", "/se/log", Some(json!({"type": "browser"})))
            .await?;
        Ok(v.as_array().cloned().unwrap_or_default())
    }

    /// Sets a cookie for the current page's host (`httpOnly`, path `/`).
    pub async fn add_cookie(&self, name: &str, value: &str) -> Result<()> {
        self.cmd(
            "POST",
            "/cookie",
            Some(json!({"cookie": {"name": name, "value": value, "path": "/", "httpOnly": true}})),
        )
        .await?;
        Ok(())
    }

    /// Ends the session (Chromium quits); chromedriver is killed on drop.
    pub async fn quit(mut self) -> Result<()> {
        if let Some(id) = self.session.take() {
            self.raw(
                "DELETE",
                &format!("http://127.0.0.1:{}/session/{id}", self.port),
                None,
            )
            .await?;
        }
        Ok(())
    }
}

fn short(s: &str) -> String {
    let s = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if s.chars().count() > 80 {
        format!("{}...", s.chars().take(80).collect::<String>())
    } else {
        s
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Drop may run on a runtime thread (or while a test unwinds): a plain blocking request
        // ends the session so that chromedriver quits its Chromium.
        if let Some(id) = self.session.take() {
            use std::io::{Read, Write};
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], self.port));
            if let Ok(mut s) = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
                let _ = s.set_read_timeout(Some(Duration::from_secs(10)));
                let _ = write!(
                    s,
                    "DELETE /session/{id} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\
                     Connection: close\r\nContent-Length: 0\r\n\r\n",
                    self.port
                );
                let mut buf = Vec::new();
                let _ = s.read_to_end(&mut buf);
            }
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(pid) = self.browser_pid {
            // Only when it is still our Chromium (its command line names our profile).
            let ours = std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                String::from_utf8_lossy(&c).contains(&*self.profile.path().to_string_lossy())
            });
            if ours {
                let _ = Command::new("kill")
                    .arg(pid.to_string())
                    .stderr(Stdio::null())
                    .status();
            }
        }
    }
}
