//! Webhooks: hooks whose token is also a URL, `{public_url}/.well-known/workflow/v1/webhook/{token}`,
//! accepting any HTTP method. The workflow receives each request (method, path, query, headers,
//! body); the caller gets a fixed response chosen at creation (default `202 Accepted`), or, in
//! manual mode, the response the workflow sends from a step with
//! [`WebhookRequest::respond_with`].
//!
//! A manual response is journaled, nothing more: `respond_with` is a step whose output is a
//! [`WebhookReply`] (the request's id and the response), and this crate performs no I/O. The
//! engine hands a committed reply to the HTTP request waiting for it: at once when the request
//! came to the node whose commit wrote the reply, else through the run's journal, which the
//! node holding the request watches (see `tether-engine`'s `responses.rs`). So the caller is
//! answered whichever node of a cluster runs the workflow.

use std::collections::BTreeMap;
use std::future::Future;

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::ctx::Ctx;
use crate::error::WorkflowError;
use crate::event::EventBody;
use crate::hook::{CreateHook, Hook, HookOptions};
use crate::step::RetryPolicy;
use crate::webhook_verify::WebhookVerifier;

/// The `kind` of webhook hooks.
pub const HOOK_KIND_WEBHOOK: &str = "webhook";

/// The path prefix of webhook URLs.
pub const WEBHOOK_PATH: &str = "/.well-known/workflow/v1/webhook/";

/// The name of the step [`WebhookRequest::respond_with`] journals.
pub const RESPOND_WITH_STEP: &str = "webhook.respond_with";

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

    /// `200 {"duplicate": true}`: what a manual-mode webhook answers a verified delivery it
    /// had already accepted (nothing is stored again, and the workflow is not waited for).
    pub fn duplicate() -> Self {
        WebhookResponse::json(200, json!({ "duplicate": true }))
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
    /// How requests are verified (`None`: any request is accepted); see
    /// [`crate::webhook_verify`].
    pub verify: Option<WebhookVerifier>,
}

impl WebhookOptions {
    /// Answer every caller with `response`.
    pub fn static_response(response: WebhookResponse) -> Self {
        WebhookOptions {
            respond_with: RespondWith::Static { response },
            metadata: None,
            verify: None,
        }
    }

    /// Answer each caller from the workflow, within 30 s.
    pub fn manual() -> Self {
        WebhookOptions {
            respond_with: RespondWith::Manual { timeout_ms: 30_000 },
            metadata: None,
            verify: None,
        }
    }

    /// Verify every request with `verifier` before it reaches the workflow (a request that
    /// fails is answered `401` and not stored), and store a retried delivery once.
    pub fn verified(mut self, verifier: WebhookVerifier) -> Self {
        self.verify = Some(verifier);
        self
    }
}

/// The metadata stored with a webhook hook: the user's metadata, the response mode and the
/// verifier (which names its secret, never holds it).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookMeta {
    /// The user's metadata.
    pub metadata: Value,
    /// How callers are answered.
    pub respond_with: RespondWith,
    /// How requests are verified; absent in hooks stored before verification existed, and
    /// left out when `None` (so an unverified webhook journals what it always did).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<WebhookVerifier>,
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
    /// again. The engine hands the response to the caller waiting on whichever node took the
    /// request; if the caller has gone (timed out), the response is dropped.
    pub async fn respond_with(
        &self,
        ctx: &Ctx,
        response: WebhookResponse,
    ) -> Result<(), WorkflowError> {
        let reply = WebhookReply {
            request_id: self.request_id.clone(),
            response,
        };
        ctx.step_with(
            RESPOND_WITH_STEP,
            RetryPolicy::none(),
            reply,
            |reply| async move { Ok(Responded::Reply(reply)) },
        )
        .await
        .map(|_: Responded| ())
    }
}

/// What a `respond_with` step journals: the response and the request it answers. The engine
/// reads it from the committed `StepCompleted` entry to answer the waiting caller.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WebhookReply {
    /// The id of the request answered ([`WebhookRequest::request_id`]).
    pub request_id: String,
    /// The response.
    pub response: WebhookResponse,
}

impl WebhookReply {
    /// The reply a journal entry carries: a completed `respond_with` step of this release.
    /// `None` for any other entry, and for the `true`/`false` output Tether 0.1 journaled
    /// (whether a caller was waiting in that process).
    pub fn from_entry(body: &EventBody) -> Option<WebhookReply> {
        match body {
            EventBody::StepCompleted { name, output, .. } if name == RESPOND_WITH_STEP => {
                WebhookReply::from_output(output)
            }
            _ => None,
        }
    }

    /// The reply in a `respond_with` step's output, if it holds one (see [`Self::from_entry`]).
    pub fn from_output(output: &Value) -> Option<WebhookReply> {
        if !output.is_object() {
            return None;
        }
        WebhookReply::deserialize(output).ok()
    }
}

/// The output of a `respond_with` step as replay reads it back: this release's reply, or the
/// delivery flag Tether 0.1 journaled (its journals must replay unchanged).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(untagged)]
enum Responded {
    Reply(WebhookReply),
    Delivered(bool),
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
            verify: options.verify,
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

/// The JSON a webhook hook is listed with: its user metadata and mode, plus its URL.
pub fn listing_metadata(stored: &Value) -> (Value, Option<Value>) {
    match serde_json::from_value::<WebhookMeta>(stored.clone()) {
        Ok(meta) => (meta.metadata, Some(json!(meta.respond_with))),
        Err(_) => (stored.clone(), None),
    }
}
