//! Request bodies in, JSON shapes out: body parsing with our error format and size limit,
//! RFC 3339 timestamps, and the JSON of runs, hooks and journal events.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use tether_core::time_fmt::rfc3339_ms;
use tether_core::{Event, Registry};
use tether_store::{HookRecord, RunRecord};

use crate::error::ApiError;

/// The body of a request, or our error for a body that could not be read: `413
/// payload_too_large` over `limit`, `408 request_timeout` when the body did not arrive within
/// [`crate::ServerOptions::body_timeout`], `400 invalid_json` for any other read failure.
pub(crate) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit)
        } else if crate::serve::is_body_timeout(&rejection) {
            ApiError::request_timeout()
        } else {
            ApiError::invalid_json(format!(
                "could not read the request body: {}",
                rejection.body_text()
            ))
        }
    })
}

/// Parse a JSON body into `T`; a syntax error or a wrong shape is `400 invalid_json` with
/// serde's message (which says where: line and column).
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|e| {
        let what = if e.is_data() {
            "the request body does not have the expected shape"
        } else {
            "the request body is not valid JSON"
        };
        ApiError::invalid_json(format!("{what}: {e}"))
    })
}

/// A run as the API shows it.
pub(crate) fn run_json(run: &RunRecord) -> Value {
    json!({
        "run_id": run.run_id,
        "workflow": run.workflow,
        "status": run.status.as_str(),
        "input": run.input,
        "output": run.output,
        "error": run.error,
        "created_at": rfc3339_ms(run.created_at_ms),
        "updated_at": rfc3339_ms(run.updated_at_ms),
        "parent_run_id": run.parent_run_id,
        "schedule_id": tether_store::schedule_of(&run.run_id).map(|(id, _)| id),
        "queue": run.queue,
    })
}

/// A hook as listed under its run: `{"token", "kind", "metadata", "created_at"}`, plus `"url"`
/// and `"respond_with"` for a webhook (`public_url` is the server's base URL).
pub(crate) fn hook_json(hook: &HookRecord, public_url: &str, registry: &Registry) -> Value {
    // The payload's JSON Schema, when its definition publishes one (`HookDef::with_schema`).
    let schema = hook
        .definition
        .as_deref()
        .and_then(|name| registry.hook_schema(name))
        .map_or(Value::Null, |s| (*s).clone());
    if hook.kind == tether_core::HOOK_KIND_WEBHOOK {
        let (metadata, respond_with) = tether_core::webhook::listing_metadata(&hook.metadata);
        return json!({
            "token": hook.token,
            "kind": hook.kind,
            "metadata": metadata,
            "respond_with": respond_with,
            "url": format!(
                "{}{}{}",
                public_url.trim_end_matches('/'),
                tether_core::WEBHOOK_PATH,
                hook.token
            ),
            "schema": schema,
            "created_at": rfc3339_ms(hook.created_at_ms),
        });
    }
    let mut v = json!({
        "token": hook.token,
        "kind": hook.kind,
        "metadata": hook.metadata,
        "schema": schema,
        "created_at": rfc3339_ms(hook.created_at_ms),
    });
    if let (Some(at), Value::Object(m)) = (hook.expires_at_ms, &mut v) {
        m.insert("expires_at".into(), Value::String(rfc3339_ms(at)));
    }
    v
}

/// A hook looked up by token: the listing shape plus its `run_id` and `definition`.
pub(crate) fn hook_with_run_json(
    hook: &HookRecord,
    public_url: &str,
    registry: &Registry,
) -> Value {
    let mut v = hook_json(hook, public_url, registry);
    if let Value::Object(m) = &mut v {
        m.insert("run_id".into(), Value::String(hook.run_id.clone()));
        m.insert(
            "definition".into(),
            hook.definition.clone().map_or(Value::Null, Value::String),
        );
    }
    v
}

/// A journal entry: its serde form plus `at`, the commit time as RFC 3339.
pub(crate) fn event_json(event: &Event) -> Value {
    let mut v = serde_json::to_value(event).unwrap_or_else(|e| {
        // Cannot happen for these plain data types; say so rather than panic.
        json!({ "seq": event.seq, "type": event.body.kind(), "serialization_error": e.to_string() })
    });
    if let Value::Object(m) = &mut v {
        m.insert("at".into(), Value::String(rfc3339_ms(event.at_ms)));
    }
    v
}

/// `{"run_id": id}`.
pub(crate) fn run_id_json(run_id: String) -> Value {
    let mut m = Map::new();
    m.insert("run_id".into(), Value::String(run_id));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_errors_name_the_position() {
        let e = parse_json::<Value>(b"{\"a\": }").unwrap_err();
        assert_eq!(e.code, "invalid_json");
        assert!(e.message.contains("line 1 column"), "{}", e.message);
    }
}
