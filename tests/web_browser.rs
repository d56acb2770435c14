//! The web page in a real browser: headless Chromium driven over WebDriver
//! (chromedriver), against the real server on port 0 with the simulated
//! telephone network, restaurants and model.
//!
//! Needs Debian's `chromium` and `chromium-driver` (`.ci/run` installs them).
//! Without them a plain `cargo test` skips these tests with a note; under
//! `CI=true` a missing browser is a failure.
//!
//! Screenshots of the call page (375 px and 1280 px wide) are written to
//! `target/screenshots/`; with `RESERVOICE_UPDATE_SCREENSHOTS=1` they also
//! replace the ones in `docs/screenshots/`.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use base64::Engine;
use fantoccini::wd::WebDriverCompatibleCommand;
use fantoccini::{Client, ClientBuilder, Locator};
use reservoice::cli::client::ApiClient;
use reservoice::domain::ReservationRequest;
use reservoice::sim::rig::{Rig, RigOptions, RESTAURANT_NUMBER};
use serde_json::{json, Value};

/// One Chromium at a time: the machine has two cores, and each test also
/// runs a whole simulated world.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The flags the brief of these tests asks for: headless, and quiet on the
/// network (without the background-networking flags Chromium keeps trying
/// to reach Google, which this machine cannot).
const CHROMIUM_FLAGS: [&str; 9] = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
];

fn on_path(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    names.iter().find_map(|name| {
        std::env::split_paths(&path)
            .map(|dir| dir.join(name))
            .find(|p| p.is_file())
    })
}

/// Headless Chromium behind its own chromedriver, with a fresh profile.
struct Browser {
    client: Client,
    _driver: tokio::process::Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None` (after saying why) when Chromium is not installed and CI is not set.
    async fn start() -> Option<Browser> {
        let chromium = std::env::var_os("CHROME_BIN")
            .map(PathBuf::from)
            .or_else(|| on_path(&["chromium", "chromium-browser", "google-chrome"]));
        let driver = std::env::var_os("CHROMEDRIVER")
            .map(PathBuf::from)
            .or_else(|| on_path(&["chromedriver"]));
        let (Some(chromium), Some(driver)) = (chromium, driver) else {
            let why = "they need Chromium and chromedriver (Debian: apt-get install chromium chromium-driver; .ci/run installs them)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("CI=true, but the browser tests cannot run: {why}");
            }
            // Straight to stderr: libtest would hide `eprintln!` of a passing test.
            static NOTE: std::sync::Once = std::sync::Once::new();
            NOTE.call_once(|| {
                use std::io::Write;
                let _ = writeln!(std::io::stderr(), "note: skipping the browser tests: {why}");
            });
            return None;
        };
        let port = {
            let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
            probe.local_addr().expect("its address").port()
        };
        let log = std::env::temp_dir().join(format!("reservoice-chromedriver-{port}.log"));
        let driver = tokio::process::Command::new(driver)
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("chromedriver starts");
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = http
                .get(format!("{url}/status"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            if ready {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().expect("a profile directory");
        let mut args: Vec<String> = CHROMIUM_FLAGS.iter().map(|f| f.to_string()).collect();
        args.push(format!("--user-data-dir={}", profile.path().display()));
        args.push("--window-size=1280,900".into());
        args.push("--lang=en-US".into());
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium, "args": args}),
        );
        reservoice::crypto::install_tls_provider();
        let client = ClientBuilder::rustls()
            .expect("TLS roots")
            .capabilities(caps)
            .connect(&url)
            .await
            .expect("a WebDriver session");
        Some(Browser {
            client,
            _driver: driver,
            _profile: profile,
        })
    }

    async fn close(self) {
        let _ = self.client.close().await;
    }
}

/// Run a script in the page and return its value.
async fn js(c: &Client, script: &str) -> Value {
    c.execute(script, vec![]).await.expect("script runs")
}

/// Wait (up to `secs`) until `script` returns true.
async fn until(c: &Client, secs: u64, what: &str, script: &str) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if js(c, script).await == Value::Bool(true) {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            let url = c
                .current_url()
                .await
                .map(|u| u.to_string())
                .unwrap_or_default();
            let body = js(c, "return document.body ? document.body.innerText : ''").await;
            panic!("timed out waiting for {what} on {url}:\n{body}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `fetch(path, init)` from the page; returns the HTTP status.
async fn fetch_status(c: &Client, path: &str, init: Value) -> u64 {
    let out = c
        .execute_async(
            "const [path, init, done] = arguments; fetch(path, init).then(r => done(r.status), e => done(String(e)));",
            vec![json!(path), init],
        )
        .await
        .expect("fetch runs");
    out.as_u64()
        .unwrap_or_else(|| panic!("fetch failed: {out}"))
}

/// A Chrome DevTools command through chromedriver (`goog/cdp/execute`).
#[derive(Debug)]
struct Cdp(&'static str, Value);

impl WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!(
            "session/{}/goog/cdp/execute",
            session.unwrap_or("")
        ))
    }
    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        (
            axum::http::Method::POST,
            Some(json!({"cmd": self.0, "params": self.1}).to_string()),
        )
    }
}

/// Where a screenshot goes besides `target/screenshots/`.
#[derive(PartialEq)]
enum Shot {
    /// Only the CI artefacts.
    Artefact,
    /// Also `docs/screenshots/` (the README shows it), when
    /// `RESERVOICE_UPDATE_SCREENSHOTS` is set.
    Docs,
}

/// The whole page at `width` CSS pixels (a phone at 375: 2x pixels, touch
/// metrics), saved under `target/screenshots/`. Returns the PNG's path.
async fn screenshot(c: &Client, width: u32, name: &str, shot_for: Shot) -> PathBuf {
    let phone = width < 600;
    let scale = if phone { 2 } else { 1 };
    let metrics = |height: u64| json!({"width": width, "height": height, "deviceScaleFactor": scale, "mobile": phone});
    c.issue_cmd(Cdp("Emulation.setDeviceMetricsOverride", metrics(900)))
        .await
        .expect("viewport set");
    // Let the layout settle at the new width, then measure the whole page.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let height = js(c, "return Math.ceil(document.documentElement.scrollHeight)")
        .await
        .as_u64()
        .unwrap_or(900);
    c.issue_cmd(Cdp("Emulation.setDeviceMetricsOverride", metrics(height)))
        .await
        .expect("viewport set");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let shot = c
        .issue_cmd(Cdp(
            "Page.captureScreenshot",
            json!({"format": "png", "captureBeyondViewport": true}),
        ))
        .await
        .expect("screenshot");
    c.issue_cmd(Cdp("Emulation.clearDeviceMetricsOverride", json!({})))
        .await
        .expect("viewport restored");
    let png = base64::engine::general_purpose::STANDARD
        .decode(shot["data"].as_str().expect("image data"))
        .expect("PNG bytes");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, &png).expect("screenshot written");
    if shot_for == Shot::Docs && std::env::var_os("RESERVOICE_UPDATE_SCREENSHOTS").is_some() {
        let docs = root.join("docs/screenshots");
        std::fs::create_dir_all(&docs).expect("docs/screenshots");
        std::fs::write(docs.join(format!("{name}.png")), &png).expect("docs screenshot written");
    }
    path
}

/// A browser and a simulated world for one test, one test at a time.
struct Stage {
    browser: Browser,
    rig: Rig,
    _one: tokio::sync::MutexGuard<'static, ()>,
}

impl Stage {
    /// `None` when the browser is missing and CI is not set (after a note).
    async fn open(options: RigOptions) -> Option<Stage> {
        let one = ONE_BROWSER.lock().await;
        let browser = Browser::start().await?;
        let rig = Rig::start(options)
            .await
            .expect("the simulated world starts");
        Some(Stage {
            browser,
            rig,
            _one: one,
        })
    }

    async fn close(self) {
        self.browser.close().await;
        self.rig.shutdown().await;
    }
}

/// Click the element `css` selects.
async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css}: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking {css}: {e}"));
}

/// WebDriver's Tab and Enter keys.
const TAB: &str = "\u{E004}";
const ENTER: &str = "\u{E007}";

/// Fill a text field (clearing what is there).
async fn type_into(c: &Client, id: &str, text: &str) {
    let field = c.find(Locator::Id(id)).await.expect(id);
    field.clear().await.expect("cleared");
    field.send_keys(text).await.expect("typed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_placed_from_the_form_is_followed_live_to_its_outcome_and_recording() {
    let Some(stage) = Stage::open(RigOptions {
        restaurants: true,
        record: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (c, rig) = (&stage.browser.client, &stage.rig);
    c.goto(&format!("{}/calls/new", rig.server_url))
        .await
        .expect("form");
    // The demo's scenario is a field of the form: the restaurant with a phone menu.
    let menu = js(c, "return [...document.querySelectorAll('#f-to option')].find(o => o.textContent.includes('phone menu')).value").await;
    let menu = menu.as_str().expect("a phone-menu restaurant").to_string();
    c.find(Locator::Id("f-to"))
        .await
        .expect("restaurant select")
        .select_by_value(&menu)
        .await
        .expect("selected");
    type_into(c, "f-name", "Sam Lee").await;
    click(c, "form[data-place-call] button[type=submit]").await;
    until(
        c,
        20,
        "the new call's page",
        "return location.pathname.startsWith('/calls/CA')",
    )
    .await;
    // Mark this document: a reload would lose the mark.
    js(c, "window.sameDocument = true; return true").await;

    // Watch the page while the call runs: transcript lines must appear
    // while it still says the call is live.
    let mut lines_while_live = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let seen = js(c, "const s = document.getElementById('call-state'); return [document.querySelectorAll('#transcript-lines li').length, s ? s.dataset.finished : 'missing']").await;
        let (lines, finished) = (
            seen[0].as_u64().unwrap_or(0),
            seen[1].as_str() == Some("true"),
        );
        if finished {
            break;
        }
        lines_while_live = lines_while_live.max(lines);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call did not finish"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        lines_while_live >= 2,
        "transcript lines appeared while the call ran (saw {lines_while_live})"
    );
    assert_eq!(
        js(c, "return window.sameDocument === true").await,
        Value::Bool(true),
        "followed live, not reloaded"
    );

    // The transcript as in the terminal: speaker, time, key presses.
    let transcript = js(c, "return [...document.querySelectorAll('#transcript-lines li')].map(li => li.querySelector('.at').textContent + ' ' + li.querySelector('.who').textContent + ' ' + li.querySelector('.text').textContent)").await;
    let transcript: Vec<String> = serde_json::from_value(transcript).expect("lines");
    assert!(
        transcript.iter().any(|l| l.contains("Agent (pressed 2)")),
        "{transcript:?}"
    );
    assert!(
        transcript
            .iter()
            .any(|l| l.contains("Agent") && l.contains("on behalf of Sam Lee")),
        "the agent speaks for the person in the form: {transcript:?}"
    );
    assert!(
        transcript
            .iter()
            .all(|l| l.len() > 6 && l.as_bytes()[2] == b':'),
        "every line has its time: {transcript:?}"
    );
    let record = rig.store().list(1).await.expect("store")[0].clone();
    let full = rig
        .store()
        .get(&record.id)
        .await
        .expect("store")
        .expect("the call");
    assert_eq!(transcript.len(), full.transcript.len(), "every line, once");

    // The outcome card.
    let outcome = js(
        c,
        "return document.querySelector('#outcome .summary').textContent",
    )
    .await;
    let outcome = outcome.as_str().unwrap_or("");
    assert!(
        outcome.contains("Booked") && outcome.contains("under Sam Lee") && outcome.contains("4217"),
        "{outcome}"
    );
    let timeline = js(c, "return document.getElementById('timeline').innerText").await;
    let timeline = timeline.as_str().unwrap_or("");
    assert!(
        timeline.contains("A person answered") && timeline.contains("Call ended"),
        "{timeline}"
    );

    // The recording plays: its metadata loads and it lasts.
    until(
        c,
        20,
        "the recording's duration",
        "const a = document.querySelector('#recording audio'); return !!a && a.duration > 0 && isFinite(a.duration)",
    )
    .await;

    for width in [375, 1280] {
        screenshot(c, width, &format!("call-{width}"), Shot::Docs).await;
    }
    stage.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_field_shows_the_apis_own_message_beside_it_and_places_no_call() {
    let Some(stage) = Stage::open(RigOptions::default()).await else {
        return;
    };
    let (c, rig) = (&stage.browser.client, &stage.rig);
    c.goto(&format!("{}/calls/new", rig.server_url))
        .await
        .expect("form");
    // From the keyboard: the first Tab reaches the skip link, with a visible ring.
    c.find(Locator::Css("body"))
        .await
        .expect("body")
        .send_keys(TAB)
        .await
        .expect("tab");
    assert_eq!(
        js(c, "const a = document.activeElement; return [a.className, getComputedStyle(a).outlineStyle, getComputedStyle(a).outlineWidth]").await,
        json!(["skip", "solid", "3px"])
    );
    type_into(c, "f-to", RESTAURANT_NUMBER).await;
    type_into(c, "f-restaurant", "Chez Demo").await;
    type_into(c, "f-party_size", "4").await;
    type_into(c, "f-date", "the day after never").await;
    type_into(c, "f-time", "7pm").await;
    type_into(c, "f-name", "Alex Doe").await;
    type_into(c, "f-language", "klingon").await;
    // Enter in a field sends the form, as a keyboard user would.
    c.find(Locator::Id("f-name"))
        .await
        .expect("name")
        .send_keys(ENTER)
        .await
        .expect("enter");
    until(
        c,
        15,
        "the date's message",
        "const e = document.getElementById('err-date'); return !!e && !e.hidden && e.textContent.length > 0",
    )
    .await;

    // The words are the API's own (what `reservoice call` prints for exit code 2).
    let api = ApiClient::new(&rig.server_url, None).expect("client");
    let refused = api
        .create_call(&ReservationRequest {
            to: RESTAURANT_NUMBER.into(),
            restaurant: "Chez Demo".into(),
            party_size: 4,
            date: "the day after never".into(),
            time: "7pm".into(),
            name: "Alex Doe".into(),
            ..Default::default()
        })
        .await
        .expect_err("refused");
    let api_message = match refused {
        reservoice::cli::client::ClientError::Invalid(errors) => {
            errors
                .into_iter()
                .find(|e| e.field == "date")
                .expect("a date error")
                .message
        }
        other => panic!("expected 422, got {other}"),
    };
    let shown = js(c, "return document.getElementById('err-date').textContent").await;
    assert_eq!(shown.as_str(), Some(api_message.as_str()));
    // The language's message beside the language field, listing what is supported.
    let language_message = reservoice::domain::Language::parse("klingon")
        .expect_err("unsupported")
        .to_string();
    assert_eq!(
        js(
            c,
            "return document.getElementById('err-language').textContent"
        )
        .await,
        json!(language_message)
    );
    assert_eq!(
        js(
            c,
            "return document.getElementById('f-date').getAttribute('aria-invalid')"
        )
        .await,
        json!("true")
    );
    assert_eq!(
        js(c, "return document.getElementById('err-time').hidden").await,
        Value::Bool(true),
        "only the bad field has a message"
    );
    assert_eq!(
        js(c, "return location.pathname").await,
        json!("/calls/new"),
        "stays on the form"
    );
    // Keyboard users land on the field to fix.
    assert_eq!(
        js(c, "return document.activeElement.id").await,
        json!("f-date")
    );
    screenshot(c, 375, "form-error-375", Shot::Artefact).await;
    assert!(
        rig.store().list(10).await.expect("store").is_empty(),
        "no call recorded"
    );
    assert!(rig.phone.calls().is_empty(), "no call placed");
    stage.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_token_the_page_and_the_api_need_signing_in() {
    let token = "page-test-token-5b1e0c";
    let Some(stage) = Stage::open(RigOptions {
        api_token: Some(token.into()),
        restaurants: true,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (c, rig) = (&stage.browser.client, &stage.rig);
    let base = &rig.server_url;

    // Without the cookie: the list sends the browser to sign in; the API refuses.
    c.goto(&format!("{base}/")).await.expect("list");
    until(
        c,
        10,
        "the sign-in form",
        "return location.pathname === '/sign-in' && !!document.getElementById('f-token')",
    )
    .await;
    assert_eq!(fetch_status(c, "/api/calls", json!({})).await, 401);
    c.goto(&format!("{base}/api/calls")).await.expect("api");
    let body = js(c, "return document.body.innerText").await;
    assert!(
        body.as_str()
            .unwrap_or("")
            .contains("missing or wrong API token"),
        "{body}"
    );

    // A wrong token is refused, the right one signs in.
    c.goto(&format!("{base}/calls/new")).await.expect("form");
    type_into(c, "f-token", "not-the-token").await;
    click(c, "form.sign-in button").await;
    until(
        c,
        10,
        "the refusal",
        "const e = document.getElementById('err-token'); return !!e && !e.hidden",
    )
    .await;
    type_into(c, "f-token", token).await;
    click(c, "form.sign-in button").await;
    until(c, 10, "the form after signing in", "return location.pathname === '/calls/new' && !!document.querySelector('form[data-place-call]')").await;
    let url = c.current_url().await.expect("url").to_string();
    assert!(
        !url.contains(token),
        "the token never appears in a URL: {url}"
    );
    assert_eq!(fetch_status(c, "/api/calls", json!({})).await, 200);

    // The cookie: not readable by scripts, never sent by other sites' pages.
    assert_eq!(
        js(c, "return document.cookie.includes('reservoice_session')").await,
        Value::Bool(false)
    );
    let cookie = c
        .get_named_cookie("reservoice_session")
        .await
        .expect("the session cookie");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.same_site(), Some(cookie::SameSite::Strict));
    assert!(
        !cookie.value().contains(token),
        "the cookie does not hold the token"
    );

    // A change without the page's CSRF token is refused, even with the cookie.
    let request = json!({"to": RESTAURANT_NUMBER, "restaurant": "Chez Demo", "party_size": 2, "date": "tomorrow", "time": "7pm", "name": "Alex Doe"});
    let forged = json!({"method": "POST", "headers": {"Content-Type": "application/json"}, "body": request.to_string()});
    assert_eq!(fetch_status(c, "/api/calls", forged).await, 403);
    assert!(rig.phone.calls().is_empty(), "no call placed");

    // The form sends it: the call is placed and followed (SSE with the cookie).
    click(c, "form[data-place-call] button[type=submit]").await;
    until(c, 20, "a transcript line of the new call", "return location.pathname.startsWith('/calls/CA') && document.querySelectorAll('#transcript-lines li').length > 0").await;
    assert_eq!(rig.phone.calls().len(), 1);

    // Signing out ends it.
    click(c, "form.sign-out button").await;
    until(
        c,
        10,
        "the sign-in form",
        "return location.pathname === '/sign-in'",
    )
    .await;
    assert_eq!(fetch_status(c, "/api/calls", json!({})).await, 401);
    stage.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_list_shows_a_new_call_ringing_then_booked_without_a_reload() {
    let Some(stage) = Stage::open(RigOptions {
        restaurants: true,
        ring_ms: 2500,
        ..Default::default()
    })
    .await
    else {
        return;
    };
    let (c, rig) = (&stage.browser.client, &stage.rig);
    c.goto(&format!("{}/", rig.server_url)).await.expect("list");
    until(
        c,
        10,
        "the empty list",
        "return document.body.innerText.includes('No calls yet')",
    )
    .await;
    js(c, "window.sameDocument = true; return true").await;

    // Placed elsewhere (the CLI's client): the open page picks it up.
    let api = ApiClient::new(&rig.server_url, None).expect("client");
    let placed = api.create_call(&rig.request()).await.expect("placed");
    let row = format!("row-{}", placed.id);
    let mut statuses: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let seen = js(c, &format!("const r = document.getElementById('{row}'); return r ? [...r.querySelectorAll('.badge')].map(b => b.innerText.replace(/^\\W+/, '').trim()) : []")).await;
        let badges: Vec<String> = serde_json::from_value(seen).unwrap_or_default();
        if let Some(status) = badges.first() {
            if statuses.last() != Some(status) {
                statuses.push(status.clone());
            }
            if badges.get(1).map(String::as_str) == Some("Booked") {
                break;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the row never said Booked: {statuses:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        statuses
            .iter()
            .any(|s| s == "Ringing" || s == "Dialling" || s == "Placing"),
        "the row showed the call before it was answered: {statuses:?}"
    );
    assert!(
        statuses.iter().any(|s| s == "In call" || s == "Ended"),
        "{statuses:?}"
    );
    assert_eq!(
        js(c, "return window.sameDocument === true").await,
        Value::Bool(true),
        "no reload"
    );
    for width in [375, 1280] {
        screenshot(c, width, &format!("calls-{width}"), Shot::Artefact).await;
    }
    stage.close().await;
}
