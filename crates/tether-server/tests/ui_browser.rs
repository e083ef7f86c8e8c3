//! The web UI in a real headless Chromium, driven through chromedriver (WebDriver): the runs
//! list updates live, a run page resumes a hook through its form (invalid JSON and invalid
//! payloads are refused inline), the page turns `completed` without reloading, a payload sent
//! from outside shows up live, hook threads get lanes, hostile data stays text, cancel works;
//! a resume link's page resumes its run once.
//! Screenshots of each stage go to `target/ui-screenshots/`.
//!
//! Needs `chromium` and `chromedriver` (Debian: `chromium`, `chromium-driver`; `.ci/run`
//! installs them). Without them the test is ignored (cargo says why), except under CI, where
//! it fails (the rule: `tether-test-env`). `TETHER_CHROMIUM` / `TETHER_CHROMEDRIVER` name
//! other binaries.

mod ui_support;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};
use ui_support::{Server, PATIENCE};

/// chromedriver, ended when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn start_driver(chromedriver: &Path) -> Driver {
    let port = TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let child = Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", chromedriver.display()));
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
    };
    let http = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let ready = match http.get(format!("{}/status", driver.url)).send().await {
            Ok(resp) => resp
                .json::<Value>()
                .await
                .is_ok_and(|v| v["value"]["ready"] == true),
            Err(_) => false,
        };
        if ready {
            return driver;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "chromedriver did not get ready"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn open_browser(driver: &Driver, chromium: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": chromium,
            "args": [
                "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--window-size=1280,1400", "--no-first-run", "--disable-extensions",
            ],
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a Chromium session")
}

/// The test's browser, its server and where screenshots go.
struct Ui {
    browser: Client,
    server: Server,
    shots: PathBuf,
}

impl Ui {
    async fn go(&self, path: &str) {
        self.browser
            .goto(&self.server.url(path))
            .await
            .expect("navigate");
    }

    async fn js(&self, script: &str, args: Vec<Value>) -> Value {
        self.browser
            .execute(script, args)
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    async fn shot(&self, name: &str) {
        let png = self.browser.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).expect("save screenshot");
    }

    /// Wait until `predicate` (a script body returning a boolean) holds; on failure save a
    /// screenshot and say what the page shows.
    async fn wait_until(&self, what: &str, predicate: &str) {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            if self.js(predicate, vec![]).await == Value::Bool(true) {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                self.shot(&format!("failed-{}", what.replace(' ', "-")))
                    .await;
                let body = self.js("return document.body.innerText", vec![]).await;
                let errors = self.js("return window.__tetherErrors || []", vec![]).await;
                panic!(
                    "timed out waiting for: {what}\nscript errors: {errors}\npage text:\n{body}"
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Mark the page; [`Ui::still_same_page`] tells whether it was reloaded since.
    async fn mark(&self) {
        self.js("window.__tetherMark = 'same page'; return true", vec![])
            .await;
    }

    async fn still_same_page(&self) -> bool {
        self.js("return window.__tetherMark === 'same page'", vec![])
            .await
            == Value::Bool(true)
    }

    async fn fill(&self, css: &str, text: &str) {
        let field = self
            .browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"));
        field.clear().await.expect("clear");
        field.send_keys(text).await.expect("type");
    }

    async fn click(&self, css: &str) {
        self.browser
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
    }

    /// Nothing injected from data ran or was parsed as markup.
    async fn assert_not_injected(&self) {
        let v = self
            .js(
                "return window.__pwned === undefined && document.querySelector('img') === null",
                vec![],
            )
            .await;
        assert_eq!(v, Value::Bool(true), "hostile data was rendered as HTML");
    }
}

/// JS: whether the element's text (trimmed) equals / contains a string.
fn text_is(css: &str, text: &str) -> String {
    format!(
        "const e = document.querySelector({}); return !!e && e.textContent.trim() === {};",
        json!(css),
        json!(text)
    )
}

fn shown_and_contains(css: &str, text: &str) -> String {
    format!(
        "const e = document.querySelector({}); return !!e && !e.hidden && e.textContent.includes({});",
        json!(css),
        json!(text)
    )
}

fn screenshot_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target"));
    let dir = target.join("ui-screenshots");
    std::fs::create_dir_all(&dir).expect("create the screenshot folder");
    dir
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_browser),
    ignore = "needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)"
)]
async fn the_ui_in_chromium() {
    let tether_test_env::Browser {
        chromium,
        chromedriver,
    } = tether_test_env::browser();
    let driver = start_driver(&chromedriver).await;
    let browser = open_browser(&driver, &chromium).await;
    let ui = Ui {
        browser,
        server: Server::start(None).await,
        shots: screenshot_dir(),
    };
    scenario(&ui).await;
    resume_link(&ui).await;
    schedules(&ui).await;
    with_a_token(&ui).await;
    let Ui {
        browser, server, ..
    } = ui;
    let _ = browser.close().await;
    server.stop().await;
    drop(driver);
}

/// The list page shows the schedules, with their state and next tick.
async fn schedules(ui: &Ui) {
    let (status, v) = ui
        .server
        .post(
            "/v1/schedules",
            r#"{"id": "new-year", "workflow": "collect", "cron": "0 0 1 1 *", "timezone": "Europe/Paris"}"#,
        )
        .await;
    assert_eq!(status, 201, "{v}");
    ui.go("/").await;
    ui.wait_until(
        "the schedule listed with its next tick",
        "const rows = [...document.querySelectorAll('#schedules-body tr')];\
         return rows.length === 1 && rows[0].textContent.includes('new-year')\
           && rows[0].textContent.includes('0 0 1 1 * (Europe/Paris)')\
           && rows[0].textContent.includes('active')\
           && rows[0].cells[4].textContent.trim() !== '–';",
    )
    .await;
    ui.shot("schedules-list").await;
}

async fn scenario(ui: &Ui) {
    let s = &ui.server;
    // Hostile data: the order id is markup and a script. It must show as text.
    let hostile = r#"<img src=x onerror="window.__pwned=1">"#;
    let approval = s
        .start_run("approval", json!({ "order_id": hostile }))
        .await;

    // 1. The list shows the run, and goes live.
    ui.go("/").await;
    let link_of = |id: &str| {
        format!(
            "return [...document.querySelectorAll('a.run-link')].some(a => a.textContent === {});",
            json!(id)
        )
    };
    ui.wait_until("the run in the list", &link_of(&approval))
        .await;
    ui.wait_until("the list is live", &text_is("#live", "live"))
        .await;
    ui.shot("01-runs-list").await;

    // 2. A run started elsewhere appears without a reload.
    ui.mark().await;
    let collect = s.start_run("collect", json!({})).await;
    ui.wait_until("the new run in the list", &link_of(&collect))
        .await;
    assert!(ui.still_same_page().await, "the list was reloaded");
    ui.shot("02-runs-list-live").await;

    // 3. Filters: only `collect` runs.
    ui.browser
        .find(Locator::Css("#filter-workflow"))
        .await
        .expect("workflow filter")
        .select_by_value("collect")
        .await
        .expect("select collect");
    ui.wait_until(
        "only collect runs listed",
        &format!(
            "const rows = [...document.querySelectorAll('#runs-body tr')];\
             return rows.length === 1 && rows[0].textContent.includes({});",
            json!(collect)
        ),
    )
    .await;
    ui.shot("03-runs-filtered").await;
    ui.go("/").await;

    // 4. Open the approval run from the list.
    ui.wait_until("the run in the list", &link_of(&approval))
        .await;
    ui.js(
        "[...document.querySelectorAll('a.run-link')].find(a => a.textContent === arguments[0]).click(); return true",
        vec![json!(approval)],
    )
    .await;
    ui.wait_until("the run page", &text_is("#run-id", &approval))
        .await;
    ui.wait_until("status suspended", &text_is("#run-status", "suspended"))
        .await;
    ui.wait_until(
        "a hook listed",
        "return document.querySelectorAll('#hooks-body tr').length === 1",
    )
    .await;
    ui.wait_until("the run page is live", &text_is("#live", "live"))
        .await;
    ui.wait_until(
        "the hostile order id shown as text",
        &format!(
            "return document.getElementById('run-input').textContent.includes({});",
            json!("<img src=x onerror=")
        ),
    )
    .await;
    ui.assert_not_injected().await;
    ui.shot("04-run-suspended").await;

    // 5. Invalid JSON: the server's error, inline.
    ui.mark().await;
    ui.fill("#resume-payload", r#"{"approved": tru"#).await;
    ui.click("#resume-submit").await;
    ui.wait_until(
        "the invalid JSON error",
        &shown_and_contains("#resume-error", "invalid_json"),
    )
    .await;
    ui.shot("05-resume-invalid-json").await;

    // 6. A payload the hook's schema refuses: checked in the browser, shown inline, nothing
    // sent, the run untouched.
    ui.fill("#resume-payload", r#"{"approved": "yes"}"#).await;
    ui.click("#resume-submit").await;
    ui.wait_until(
        "the invalid payload error",
        &shown_and_contains("#resume-error", "invalid_payload"),
    )
    .await;
    assert_eq!(
        s.get_json(&format!("/v1/runs/{approval}")).await["status"],
        "suspended"
    );
    ui.shot("06-resume-invalid-payload").await;

    // 7. The form built from the hook's payload schema: a checkbox for `approved`, a text
    // field for `comment`; the form checks them before sending.
    ui.wait_until(
        "the schema's fields",
        "return !document.getElementById('resume-fields').hidden \
         && document.getElementById('field-approved').type === 'checkbox' \
         && document.getElementById('field-comment').type === 'text'",
    )
    .await;
    ui.fill("#resume-payload", "{}").await;
    ui.click("#resume-submit").await;
    ui.wait_until(
        "the required field, checked in the browser",
        &shown_and_contains("#resume-error", "field `approved` is required"),
    )
    .await;
    ui.click("#field-approved").await;
    ui.fill("#field-comment", "ship it").await;
    ui.wait_until(
        "the fields fill the payload",
        "return JSON.parse(document.getElementById('resume-payload').value).comment === 'ship it'",
    )
    .await;
    ui.shot("07-resume-form-from-schema").await;

    // 8. A valid payload from the fields: the page turns completed, without a reload.
    ui.click("#resume-submit").await;
    ui.wait_until("status completed", &text_is("#run-status", "completed"))
        .await;
    ui.wait_until("the output", &shown_and_contains("#run-output", "ship it"))
        .await;
    ui.wait_until(
        "the hook released",
        "return document.querySelectorAll('#hooks-body tr').length === 0",
    )
    .await;
    ui.wait_until(
        "the error cleared",
        "return document.getElementById('resume-error').hidden",
    )
    .await;
    assert!(ui.still_same_page().await, "the run page was reloaded");
    ui.assert_not_injected().await;
    ui.shot("08-run-completed").await;

    // 9. Payloads sent from outside show up live (server-sent events only: no form involved).
    ui.go(&format!("/runs/{collect}")).await;
    ui.wait_until("collect suspended", &text_is("#run-status", "suspended"))
        .await;
    ui.wait_until("the run page is live", &text_is("#live", "live"))
        .await;
    ui.mark().await;
    let token = s.first_token(&collect).await;
    let (st, v) = s.post(&format!("/v1/hooks/{token}"), r#"{"n": 1}"#).await;
    assert_eq!(st, 202, "{v}");
    ui.wait_until(
        "the payload in the journal",
        "return [...document.querySelectorAll('.entry-type')].some(e => e.textContent === 'hook_received')",
    )
    .await;
    ui.shot("09-collect-payload-live").await;
    let (st, v) = s
        .post(&format!("/v1/hooks/{token}"), r#"{"done": true}"#)
        .await;
    assert_eq!(st, 202, "{v}");
    ui.wait_until("collect completed", &text_is("#run-status", "completed"))
        .await;
    assert!(ui.still_same_page().await, "the run page was reloaded");
    ui.shot("09-collect-completed-live").await;

    // 10. Hook threads get lanes; the shared state is shown.
    let enrich = s
        .start_run("enrich", json!({ "name": "ada", "wait": true }))
        .await;
    ui.go(&format!("/runs/{enrich}")).await;
    ui.wait_until(
        "a lane per thread",
        "return document.querySelectorAll('.lane-head').length >= 2",
    )
    .await;
    ui.wait_until(
        "the shared state",
        &shown_and_contains("#state-body", "hello ada"),
    )
    .await;
    ui.shot("10-enrich-lanes").await;

    // 11. Cancel from the page.
    let doomed = s
        .start_run("approval", json!({ "order_id": "o-cancel" }))
        .await;
    ui.go(&format!("/runs/{doomed}")).await;
    ui.wait_until("suspended", &text_is("#run-status", "suspended"))
        .await;
    ui.fill("#cancel-reason", "not needed").await;
    ui.click("#cancel-submit").await;
    ui.wait_until("cancelled", &text_is("#run-status", "cancelled"))
        .await;
    ui.wait_until(
        "the error shown",
        &shown_and_contains("#run-error", "cancel"),
    )
    .await;
    ui.shot("11-run-cancelled").await;
}

/// With an API token, the page asks for it, keeps it, and then shows the data live.
/// A resume link's page (docs/hooks/resume-links.md): the label and payload shown as text
/// (a hostile label stays inert under the page's CSP), the button resumes the run, a second
/// press says the link was used.
async fn resume_link(ui: &Ui) {
    let s = &ui.server;
    let run = s
        .start_run("approval", json!({ "order_id": "o-link" }))
        .await;
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while s.get_json(&format!("/v1/runs/{run}/hooks")).await[0]["token"].is_null() {
        assert!(tokio::time::Instant::now() < deadline, "no hook");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let token = s.first_token(&run).await;
    let hostile = r#"<img src=x onerror="window.__pwned=1">"#;
    let body = json!({"payload": {"approved": true, "comment": "by link"}, "label": hostile});
    let (status, made) = s
        .post(&format!("/v1/hooks/{token}/links"), &body.to_string())
        .await;
    assert_eq!(status, 201, "{made}");
    let url = made["url"].as_str().expect("a url").to_string();

    ui.browser.goto(&url).await.expect("open the link");
    ui.wait_until("the link's label", &text_is("#label", hostile))
        .await;
    ui.wait_until(
        "the link's payload",
        &shown_and_contains("#payload", "\"approved\": true"),
    )
    .await;
    ui.assert_not_injected().await;
    ui.shot("13-resume-link").await;
    assert_ne!(
        s.get_json(&format!("/v1/runs/{run}")).await["status"],
        "completed"
    );

    ui.click("#confirm").await;
    ui.wait_until("the link used", &text_is("#done", "Done"))
        .await;
    ui.shot("14-resume-link-done").await;
    let done = s
        .engine
        .wait_for_run(&run, PATIENCE)
        .await
        .expect("the run");
    assert_eq!(
        done.output.as_ref().map(|o| &o["approved"]),
        Some(&json!(true))
    );

    // Back to the page, pressed again: used.
    ui.browser.goto(&url).await.expect("open the link again");
    ui.click("#confirm").await;
    ui.wait_until(
        "the link refused",
        &shown_and_contains("#refused", "already used"),
    )
    .await;
    ui.shot("15-resume-link-used").await;
}

async fn with_a_token(ui: &Ui) {
    let s = Server::start(Some("s3cret")).await;
    let resp = s
        .http
        .post(s.url("/v1/runs"))
        .bearer_auth("s3cret")
        .json(&json!({ "workflow": "approval", "input": { "order_id": "o-token" } }))
        .send()
        .await
        .expect("start a run");
    assert_eq!(resp.status().as_u16(), 201);
    let run_id = resp.json::<Value>().await.expect("JSON")["run_id"]
        .as_str()
        .expect("run_id")
        .to_string();

    ui.browser.goto(&s.url("/")).await.expect("navigate");
    ui.wait_until(
        "the token banner",
        &shown_and_contains("#auth-banner", "API token"),
    )
    .await;
    ui.shot("12-token-needed").await;
    ui.fill("#api-token", "s3cret").await;
    ui.click("#token-form button").await;
    ui.wait_until(
        "the run listed with the token",
        &format!(
            "return [...document.querySelectorAll('a.run-link')].some(a => a.textContent === {});",
            json!(run_id)
        ),
    )
    .await;
    ui.wait_until("the list is live", &text_is("#live", "live"))
        .await;
    ui.wait_until(
        "the banner gone",
        "return document.getElementById('auth-banner').hidden",
    )
    .await;
    ui.wait_until(
        "the workflows offered once the token is given",
        "return [...document.querySelectorAll('#start-workflow option')].some(o => o.value === 'approval')",
    )
    .await;
    ui.shot("13-token-given").await;
    s.stop().await;
}
