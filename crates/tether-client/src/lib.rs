//! Typed Rust client for Tether's HTTP API (the server of `tether dev`).
//!
//! [`Client`] wraps one base URL; each method is one request (except [`Client::wait_for_run`],
//! which long-polls as long as it is told to). Errors are [`ClientError`]: the server's own
//! `{"error": {"code", "message"}}` answers come back as [`ClientError::Api`], whose `Display`
//! is the server's message.
//!
//! ```no_run
//! # async fn demo() -> Result<(), tether_client::ClientError> {
//! use std::time::Duration;
//! use serde_json::json;
//! use tether_client::Client;
//!
//! let client = Client::new("http://127.0.0.1:8080");
//! let run_id = client.start_run("approval", &json!({"order_id": "o-1"})).await?;
//! // The approval workflow publishes a generated token on its hook; find it and resume it.
//! let hooks = client.hooks(&run_id).await?;
//! if let Some(hook) = hooks.first() {
//!     client
//!         .resume_hook(&hook.token, &json!({"approved": true, "comment": "ok"}), Some("once"))
//!         .await?;
//! }
//! let run = client.wait_for_run(&run_id, Duration::from_secs(10)).await?;
//! println!("{}: {:?}", run.status, run.output);
//! # Ok(()) }
//! ```

mod encode;
mod schedules;
mod types;

use std::time::{Duration, Instant};

use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

pub use encode::encode_path_segment;
pub use types::{
    ErrorBody, HookInfo, LinkOptions, NewSchedule, ResumeLink, RunInfo, ScheduleInfo, StartOptions,
};

use types::{ChildrenList, ErrorEnvelope, HooksList, RunId, RunsList, WorkflowsList};

/// The longest single long-poll the server accepts (`wait_ms` is capped there).
const MAX_WAIT_PER_REQUEST: Duration = Duration::from_secs(60);

/// What went wrong with a request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error.
    #[error("{message}")]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable error code (`hook_not_found`, `invalid_payload`, ...).
        code: String,
        /// The server's explanation.
        message: String,
    },
    /// The request got no answer: connection refused or reset, timeout, ...
    /// The server may or may not have acted on it.
    #[error("request failed: {0}")]
    Transport(String),
    /// The server's answer could not be read as the expected JSON.
    #[error("unexpected answer from the server: {0}")]
    Decode(String),
}

impl ClientError {
    /// The API error code, when the server answered with an error.
    pub fn code(&self) -> Option<&str> {
        match self {
            ClientError::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// The HTTP status, when the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A client of one Tether server. Cheap to clone (clones share the connection pool).
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    api_token: Option<String>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the API token.
        f.debug_struct("Client")
            .field("base", &self.base)
            .field("api_token", &self.api_token.as_ref().map(|_| "<redacted>"))
            .finish_non_exhaustive()
    }
}

impl Client {
    /// A client of the server at `base_url`, e.g. `http://127.0.0.1:8080` (a trailing `/` is
    /// ignored). Nothing is sent until the first request.
    pub fn new(base_url: impl Into<String>) -> Client {
        Client::with_http_client(base_url, reqwest::Client::new())
    }

    /// A client using a preconfigured `reqwest::Client` (timeouts, proxies, ...).
    pub fn with_http_client(base_url: impl Into<String>, http: reqwest::Client) -> Client {
        let mut base = base_url.into();
        while base.ends_with('/') {
            base.pop();
        }
        Client {
            base,
            http,
            api_token: None,
        }
    }

    /// This client, sending `Authorization: Bearer <token>` with every request (for a server
    /// started with an API token). Webhook URLs never need it.
    pub fn with_api_token(mut self, token: impl Into<String>) -> Client {
        self.api_token = Some(token.into());
        self
    }

    /// The base URL requests go to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let req = self.http.request(method, format!("{}{path}", self.base));
        match &self.api_token {
            Some(token) => req.bearer_auth(token),
            None => req,
        }
    }

    /// Start a run of `workflow` with `input`; returns its id once it is durably recorded.
    pub async fn start_run<I: Serialize + ?Sized>(
        &self,
        workflow: &str,
        input: &I,
    ) -> Result<String, ClientError> {
        let body = json!({ "workflow": workflow, "input": to_value(input)? });
        let answer: RunId = send(self.request(Method::POST, "/v1/runs").json(&body)).await?;
        Ok(answer.run_id)
    }

    /// [`Client::start_run`] made idempotent: with `run_id`, the run gets that id; with only
    /// `idempotency_key`, the server derives the id from the key. Retrying with the same
    /// workflow and input returns the run the first call made (never a second run); another
    /// workflow or input is an [`ClientError::Api`] error with code `run_exists` (for a
    /// `run_id`) or `idempotency_key_reused` (for a key), and nothing is stored.
    pub async fn start_run_idempotent<I: Serialize + ?Sized>(
        &self,
        workflow: &str,
        input: &I,
        run_id: Option<&str>,
        idempotency_key: Option<&str>,
    ) -> Result<String, ClientError> {
        let options = StartOptions {
            run_id: run_id.map(str::to_owned),
            idempotency_key: idempotency_key.map(str::to_owned),
            queue: None,
        };
        self.start_run_with(workflow, input, &options).await
    }

    /// Start a run as `options` say: its id or idempotency key (see
    /// [`Client::start_run_idempotent`]) and its task queue (a run on a queue no node serves
    /// waits, `pending`, until one does).
    pub async fn start_run_with<I: Serialize + ?Sized>(
        &self,
        workflow: &str,
        input: &I,
        options: &StartOptions,
    ) -> Result<String, ClientError> {
        let mut body = json!({ "workflow": workflow, "input": to_value(input)? });
        if let Some(id) = &options.run_id {
            body["run_id"] = json!(id);
        }
        if let Some(queue) = &options.queue {
            body["queue"] = json!(queue);
        }
        let mut req = self.request(Method::POST, "/v1/runs").json(&body);
        if let Some(key) = &options.idempotency_key {
            req = req.header("Idempotency-Key", key.as_str());
        }
        let answer: RunId = send(req).await?;
        Ok(answer.run_id)
    }

    /// One run as it is now.
    pub async fn get_run(&self, run_id: &str) -> Result<RunInfo, ClientError> {
        let path = format!("/v1/runs/{}", encode_path_segment(run_id));
        send(self.request(Method::GET, &path)).await
    }

    /// Wait until the run has ended or `timeout` passes, and return it as it is then (check
    /// [`RunInfo::is_terminal`]). Long-polls the server (`wait_ms`), so it answers as soon as
    /// the run ends.
    pub async fn wait_for_run(
        &self,
        run_id: &str,
        timeout: Duration,
    ) -> Result<RunInfo, ClientError> {
        let deadline = Instant::now() + timeout;
        let path = format!("/v1/runs/{}", encode_path_segment(run_id));
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let wait = left.min(MAX_WAIT_PER_REQUEST);
            let wait_ms = wait.as_millis().to_string();
            let run: RunInfo = send(
                self.request(Method::GET, &path)
                    .query(&[("wait_ms", wait_ms.as_str())]),
            )
            .await?;
            if run.is_terminal() || Instant::now() >= deadline {
                return Ok(run);
            }
        }
    }

    /// Runs, newest first, optionally only those with `status` (`suspended`, `completed`, ...)
    /// or of `workflow`; at most `limit` (the server's default is 100, its cap 1,000).
    pub async fn list_runs(
        &self,
        status: Option<&str>,
        workflow: Option<&str>,
        limit: Option<usize>,
    ) -> Result<Vec<RunInfo>, ClientError> {
        let mut query: Vec<(&str, String)> = Vec::new();
        if let Some(s) = status {
            query.push(("status", s.to_string()));
        }
        if let Some(w) = workflow {
            query.push(("workflow", w.to_string()));
        }
        if let Some(l) = limit {
            query.push(("limit", l.to_string()));
        }
        let list: RunsList = send(self.request(Method::GET, "/v1/runs").query(&query)).await?;
        Ok(list.runs)
    }

    /// The run's journal, each entry as the server shows it (`seq`, `type`, `at_ms`, `at`, and
    /// the entry's fields).
    pub async fn events(&self, run_id: &str) -> Result<Vec<Value>, ClientError> {
        let path = format!("/v1/runs/{}/events", encode_path_segment(run_id));
        send(self.request(Method::GET, &path)).await
    }

    /// The run's active hooks, in creation order.
    pub async fn hooks(&self, run_id: &str) -> Result<Vec<HookInfo>, ClientError> {
        let path = format!("/v1/runs/{}/hooks", encode_path_segment(run_id));
        let list: HooksList = send(self.request(Method::GET, &path)).await?;
        Ok(list.0)
    }

    /// The child runs the run started (`ctx.start_child`), oldest first.
    pub async fn children(&self, run_id: &str) -> Result<Vec<RunInfo>, ClientError> {
        let path = format!("/v1/runs/{}/children", encode_path_segment(run_id));
        let list: ChildrenList = send(self.request(Method::GET, &path)).await?;
        Ok(list.children)
    }

    /// The active hook holding `token` (with its [`HookInfo::run_id`]).
    pub async fn get_hook(&self, token: &str) -> Result<HookInfo, ClientError> {
        let path = format!("/v1/hooks/{}", encode_path_segment(token));
        send(self.request(Method::GET, &path)).await
    }

    /// Deliver `payload` to the hook holding `token`; returns the run id once the payload is
    /// durably appended to that run's journal. With an `idempotency_key` used before for this
    /// token and the same payload, the server stores nothing new and gives the first answer:
    /// use one when retrying after a [`ClientError::Transport`] error. The same key with
    /// another payload is refused ([`ClientError::Api`] with code `idempotency_key_reused`).
    pub async fn resume_hook<P: Serialize + ?Sized>(
        &self,
        token: &str,
        payload: &P,
        idempotency_key: Option<&str>,
    ) -> Result<String, ClientError> {
        let path = format!("/v1/hooks/{}", encode_path_segment(token));
        let mut req = self.request(Method::POST, &path).json(&to_value(payload)?);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let answer: RunId = send(req).await?;
        Ok(answer.run_id)
    }

    /// Make a resume link for the hook holding `token`: a signed URL that resumes it with
    /// `payload` once, for anyone holding it, without the API token (`GET` shows a
    /// confirmation page, `POST` resumes). [`LinkOptions`]: the expiry (a day by default, at
    /// most the server's idempotency window: longer is `invalid_link`), the label shown on
    /// the page, the set of links answering one question (the first used wins).
    /// The payload is checked against the hook's definition now (`invalid_payload`).
    pub async fn create_resume_link<P: Serialize + ?Sized>(
        &self,
        token: &str,
        payload: &P,
        options: LinkOptions,
    ) -> Result<ResumeLink, ClientError> {
        let path = format!("/v1/hooks/{}/links", encode_path_segment(token));
        let mut body = json!({ "payload": to_value(payload)? });
        if let Some(d) = options.expires_in {
            body["expires_in_ms"] = json!(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        }
        if let Some(label) = options.label {
            body["label"] = json!(label);
        }
        if let Some(set) = options.set {
            body["set"] = json!(set);
        }
        send(self.request(Method::POST, &path).json(&body)).await
    }

    /// Ask a run to cancel (it ends as `cancelled` at its next await). A finished run is an
    /// [`ClientError::Api`] error with code `run_finished`.
    pub async fn cancel_run(&self, run_id: &str, reason: Option<&str>) -> Result<(), ClientError> {
        let path = format!("/v1/runs/{}/cancel", encode_path_segment(run_id));
        let body = match reason {
            Some(r) => json!({ "reason": r }),
            None => json!({}),
        };
        let _: RunId = send(self.request(Method::POST, &path).json(&body)).await?;
        Ok(())
    }

    /// Start a hook thread running `workflow_name` (with `args`) inside the running job
    /// `run_id`; returns its hook id. Unknown run: code `run_not_found`; finished run:
    /// `run_finished`; a target on the run's own workflow: `invalid_input`.
    pub async fn spawn_hook(
        &self,
        run_id: &str,
        workflow_name: &str,
        task_queue: Option<&str>,
        args: Value,
    ) -> Result<String, ClientError> {
        let path = format!("/v1/runs/{}/hooks", encode_path_segment(run_id));
        let mut body = json!({ "workflow_name": workflow_name, "args": args });
        if let Some(q) = task_queue {
            body["task_queue"] = json!(q);
        }
        let answer: Value = send(self.request(Method::POST, &path).json(&body)).await?;
        answer
            .get("hook_id")
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| ClientError::Decode(format!("no hook_id in {answer}")))
    }

    /// Send a signal: a run waiting on `signal_id` gets it now, or it is kept until one waits.
    /// Returns the run it was delivered to, if any.
    pub async fn signal<P: Serialize + ?Sized>(
        &self,
        signal_id: &str,
        payload: &P,
    ) -> Result<Option<String>, ClientError> {
        self.signal_idempotent(signal_id, payload, None).await
    }

    /// [`Client::signal`] with an `idempotency_key` (scoped to `signal_id`): retrying with the
    /// same key and payload delivers nothing new and returns the first answer (the run it was
    /// delivered to, or `None` if it was kept): use one when retrying after a
    /// [`ClientError::Transport`] error. The same key with another payload is refused
    /// ([`ClientError::Api`] with code `idempotency_key_reused`) and nothing is stored.
    pub async fn signal_idempotent<P: Serialize + ?Sized>(
        &self,
        signal_id: &str,
        payload: &P,
        idempotency_key: Option<&str>,
    ) -> Result<Option<String>, ClientError> {
        let path = format!("/v1/signals/{}", encode_path_segment(signal_id));
        let mut req = self.request(Method::POST, &path).json(&to_value(payload)?);
        if let Some(key) = idempotency_key {
            req = req.header("Idempotency-Key", key);
        }
        let answer: Value = send(req).await?;
        Ok(answer
            .get("delivered_to")
            .and_then(Value::as_str)
            .map(str::to_string))
    }

    /// The shared state of the run's namespace.
    pub async fn state(&self, run_id: &str) -> Result<Value, ClientError> {
        let path = format!("/v1/runs/{}/state", encode_path_segment(run_id));
        send(self.request(Method::GET, &path)).await
    }

    /// The names of the workflows the server runs.
    pub async fn workflows(&self) -> Result<Vec<String>, ClientError> {
        let list: WorkflowsList = send(self.request(Method::GET, "/v1/workflows")).await?;
        Ok(list.workflows)
    }

    /// `GET /healthz`: `{"ok": true, "backend": ...}`.
    pub async fn health(&self) -> Result<Value, ClientError> {
        send(self.request(Method::GET, "/healthz")).await
    }
}

fn to_value<T: Serialize + ?Sized>(v: &T) -> Result<Value, ClientError> {
    serde_json::to_value(v).map_err(|e| ClientError::Decode(format!("cannot encode as JSON: {e}")))
}

/// Send `req` and read a success answer as `T`, or an error answer as [`ClientError::Api`].
async fn send<T: DeserializeOwned>(req: RequestBuilder) -> Result<T, ClientError> {
    let resp = req
        .send()
        .await
        .map_err(|e| ClientError::Transport(error_chain(&e)))?;
    let status = resp.status();
    let bytes = resp
        .bytes()
        .await
        .map_err(|e| ClientError::Transport(error_chain(&e)))?;
    if status.is_success() {
        return serde_json::from_slice(&bytes)
            .map_err(|e| ClientError::Decode(format!("HTTP {}: {e}", status.as_u16())));
    }
    Err(api_error(status, &bytes))
}

fn api_error(status: StatusCode, bytes: &[u8]) -> ClientError {
    match serde_json::from_slice::<ErrorEnvelope>(bytes) {
        Ok(env) => ClientError::Api {
            status: status.as_u16(),
            code: env.error.code,
            message: env.error.message,
        },
        Err(_) => {
            let text = String::from_utf8_lossy(bytes);
            let text = text.trim();
            ClientError::Api {
                status: status.as_u16(),
                code: format!("http_{}", status.as_u16()),
                message: if text.is_empty() {
                    format!("HTTP {status}")
                } else {
                    format!("HTTP {status}: {text}")
                },
            }
        }
    }
}

/// An error and its sources, `: `-separated (reqwest's own message alone is often vague).
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let msg = s.to_string();
        if !out.contains(&msg) {
            out.push_str(": ");
            out.push_str(&msg);
        }
        source = s.source();
    }
    out
}

/// A client resumes hooks for typed definitions: `def.resume(&client, token, &payload)`
/// checks the payload against the definition, then sends it (see
/// [`tether_core::HookDef::resume`]).
impl tether_core::ResumeHook for Client {
    type Error = ClientError;

    async fn resume_hook_value(
        &self,
        token: &str,
        payload: serde_json::Value,
    ) -> Result<String, ClientError> {
        self.resume_hook(token, &payload, None).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_errors_keep_code_and_message() {
        let e = api_error(
            StatusCode::NOT_FOUND,
            br#"{"error":{"code":"hook_not_found","message":"hook not found"}}"#,
        );
        assert_eq!(e.code(), Some("hook_not_found"));
        assert_eq!(e.status(), Some(404));
        assert_eq!(e.to_string(), "hook not found");

        let e = api_error(StatusCode::BAD_GATEWAY, b"upstream down");
        assert_eq!(e.code(), Some("http_502"));
        assert!(e.to_string().contains("upstream down"));
    }

    #[test]
    fn debug_hides_the_api_token() {
        let c = Client::new("http://h:1").with_api_token("s3cret");
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn base_url_trailing_slashes_are_dropped() {
        assert_eq!(Client::new("http://h:1//").base_url(), "http://h:1");
    }
}
