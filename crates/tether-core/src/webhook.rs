//! Webhooks: hooks whose token is also a URL, `{public_url}/.well-known/workflow/v1/webhook/{token}`,
//! accepting any HTTP method. The workflow receives each request (method, path, query, headers,
//! body); the caller gets a fixed response chosen at creation (default `202 Accepted`), or, in
//! manual mode, the response the workflow sends from a step with
//! [`WebhookRequest::respond_with`].
//!
//! Manual responses travel through a process-wide [`ResponseHub`]: the HTTP handler parks a
//! waiter under the request's id, the workflow's `respond_with` step hands the response to it.
//! So the response reaches the caller when the run executes in the process that took the
//! request (always, on one node; in a cluster, when that node holds the run).

use std::collections::{BTreeMap, HashMap};
use std::future::Future;
use std::sync::{Mutex, OnceLock};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::error::WorkflowError;
use crate::hook::{CreateHook, Hook, HookOptions};
use crate::step::RetryPolicy;

/// The `kind` of webhook hooks.
pub const HOOK_KIND_WEBHOOK: &str = "webhook";

/// The path prefix of webhook URLs.
pub const WEBHOOK_PATH: &str = "/.well-known/workflow/v1/webhook/";

/// An HTTP response a webhook gives its caller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookResponse {
    /// Status code.
    pub status: u16,
    /// Headers.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Body: JSON (sent as `application/json`) or text.
    #[serde(default)]
    pub body: Option<WebhookBody>,
}

impl WebhookResponse {
    /// `202 Accepted` with no body (the default answer).
    pub fn accepted() -> Self {
        WebhookResponse {
            status: 202,
            headers: BTreeMap::new(),
            body: None,
        }
    }

    /// A status with a JSON body.
    pub fn json(status: u16, body: Value) -> Self {
        WebhookResponse {
            status,
            headers: BTreeMap::new(),
            body: Some(WebhookBody::Json(body)),
        }
    }

    /// A status with a text body.
    pub fn text(status: u16, body: impl Into<String>) -> Self {
        WebhookResponse {
            status,
            headers: BTreeMap::new(),
            body: Some(WebhookBody::Text(body.into())),
        }
    }
}

/// A request or response body, as stated in its type: JSON when it parsed as JSON, else UTF-8
/// text, else bytes (base64).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum WebhookBody {
    /// A JSON body.
    Json(Value),
    /// A text body.
    Text(String),
    /// Other bytes, base64-encoded (standard alphabet, padded).
    Base64(String),
}

impl WebhookBody {
    /// The body as JSON: itself when JSON, a string for text or base64.
    pub fn to_json(&self) -> Value {
        match self {
            WebhookBody::Json(v) => v.clone(),
            WebhookBody::Text(s) | WebhookBody::Base64(s) => Value::String(s.clone()),
        }
    }
}

/// How a webhook answers its callers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum RespondWith {
    /// The same response to every request (default `202 Accepted`).
    Static {
        /// The response.
        response: WebhookResponse,
    },
    /// The workflow answers each request from a step ([`WebhookRequest::respond_with`]); the
    /// caller waits up to `timeout_ms` (default 30 s), then gets `504`.
    Manual {
        /// How long the caller waits.
        timeout_ms: u64,
    },
}

impl Default for RespondWith {
    fn default() -> Self {
        RespondWith::Static {
            response: WebhookResponse::accepted(),
        }
    }
}

/// Options of [`Ctx::create_webhook`].
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WebhookOptions {
    /// How callers are answered.
    pub respond_with: RespondWith,
    /// Metadata shown where hooks are listed.
    pub metadata: Option<Value>,
}

impl WebhookOptions {
    /// Answer every caller with `response`.
    pub fn static_response(response: WebhookResponse) -> Self {
        WebhookOptions {
            respond_with: RespondWith::Static { response },
            metadata: None,
        }
    }

    /// Answer each caller from the workflow, within 30 s.
    pub fn manual() -> Self {
        WebhookOptions {
            respond_with: RespondWith::Manual { timeout_ms: 30_000 },
            metadata: None,
        }
    }
}

/// The metadata stored with a webhook hook: the user's metadata and the response mode.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookMeta {
    /// The user's metadata.
    pub metadata: Value,
    /// How callers are answered.
    pub respond_with: RespondWith,
}

/// One HTTP request received by a webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookRequest {
    /// Id of this request (for a manual response).
    pub request_id: String,
    /// `GET`, `POST`, ...
    pub method: String,
    /// The path called.
    pub path: String,
    /// The query string, decoded into pairs (a repeated name keeps its last value).
    pub query: BTreeMap<String, String>,
    /// Headers (lower-case names; repeated ones joined with `, `).
    pub headers: BTreeMap<String, String>,
    /// The body, if any.
    pub body: Option<WebhookBody>,
}

impl WebhookRequest {
    /// Answer this request (manual mode) from a step: journaled, so a replay does not send it
    /// again. If the caller has gone (timed out, or the request came to another process), the
    /// response is dropped.
    pub async fn respond_with(
        &self,
        ctx: &Ctx,
        response: WebhookResponse,
    ) -> Result<(), WorkflowError> {
        let input = (self.request_id.clone(), response);
        ctx.step_with(
            "webhook.respond_with",
            RetryPolicy::none(),
            input,
            |(id, response)| async move { Ok(ResponseHub::global().respond(&id, response)) },
        )
        .await
        .map(|_delivered: bool| ())
    }
}

/// A webhook: a hook receiving [`WebhookRequest`]s, with its URL.
#[derive(Debug)]
pub struct Webhook {
    hook: Hook<WebhookRequest>,
    url: String,
}

impl Webhook {
    /// The webhook's token.
    pub fn token(&self) -> &str {
        self.hook.token()
    }

    /// The URL callers use (from the server's public URL).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The next request, in acceptance order, or the error: `webhook.recv().await?`.
    pub fn recv(&mut self) -> crate::hook::Recv<'_, WebhookRequest> {
        self.hook.recv()
    }

    /// The next request as a stream item (`while let Some(request) = webhook.next().await`),
    /// like [`Hook::next`].
    #[allow(clippy::should_implement_trait)] // a Future, not an Iterator
    pub fn next(&mut self) -> crate::hook::Next<'_, WebhookRequest> {
        self.hook.next()
    }

    /// The underlying hook (a `Stream` of requests).
    pub fn hook_mut(&mut self) -> &mut Hook<WebhookRequest> {
        &mut self.hook
    }

    /// Release the token and the URL.
    pub fn dispose(self) {
        self.hook.dispose()
    }
}

impl Ctx {
    /// Create a webhook: a hook with a generated token that is also a URL. See the module docs.
    /// Issued when called (like every `ctx` method).
    pub fn create_webhook(
        &self,
        options: WebhookOptions,
    ) -> impl Future<Output = Result<Webhook, WorkflowError>> + Send {
        let meta = WebhookMeta {
            metadata: options.metadata.unwrap_or(Value::Null),
            respond_with: options.respond_with,
        };
        let metadata = serde_json::to_value(&meta).unwrap_or(Value::Null);
        let create: CreateHook<WebhookRequest> = self.create_hook_inner(
            HookOptions::new().metadata(metadata),
            HOOK_KIND_WEBHOOK,
            None,
        );
        let base = self.public_base_url();
        async move {
            let hook = create.await?;
            let url = format!(
                "{}{WEBHOOK_PATH}{}",
                base.trim_end_matches('/'),
                hook.token()
            );
            Ok(Webhook { hook, url })
        }
    }
}

/// Where manual webhook responses meet the HTTP requests waiting for them (process-wide).
#[derive(Debug, Default)]
pub struct ResponseHub {
    waiting: Mutex<HashMap<String, futures::channel::oneshot::Sender<WebhookResponse>>>,
}

impl ResponseHub {
    /// The process's hub.
    pub fn global() -> &'static ResponseHub {
        static HUB: OnceLock<ResponseHub> = OnceLock::new();
        HUB.get_or_init(ResponseHub::default)
    }

    /// Park a waiter for the response to `request_id`.
    pub fn wait(&self, request_id: &str) -> futures::channel::oneshot::Receiver<WebhookResponse> {
        let (tx, rx) = futures::channel::oneshot::channel();
        if let Ok(mut w) = self.waiting.lock() {
            w.insert(request_id.to_string(), tx);
        }
        rx
    }

    /// Stop waiting for `request_id` (the caller timed out or left).
    pub fn forget(&self, request_id: &str) {
        if let Ok(mut w) = self.waiting.lock() {
            w.remove(request_id);
        }
    }

    /// Hand `response` to the waiter of `request_id`; whether one was waiting.
    pub fn respond(&self, request_id: &str, response: WebhookResponse) -> bool {
        let tx = self
            .waiting
            .lock()
            .ok()
            .and_then(|mut w| w.remove(request_id));
        match tx {
            Some(tx) => tx.send(response).is_ok(),
            None => false,
        }
    }
}

/// The JSON a webhook hook is listed with: its user metadata and mode, plus its URL.
pub fn listing_metadata(stored: &Value) -> (Value, Option<Value>) {
    match serde_json::from_value::<WebhookMeta>(stored.clone()) {
        Ok(meta) => (meta.metadata, Some(json!(meta.respond_with))),
        Err(_) => (stored.clone(), None),
    }
}
