//! Request bodies in, JSON shapes out: body parsing with our error format and size limit,
//! RFC 3339 timestamps, and the JSON of runs, hooks and journal events.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use serde_json::{json, Map, Value};
use tether_core::Event;
use tether_store::{HookRecord, RunRecord};

use crate::error::ApiError;

/// The body of a request, or our error for a body that could not be read: `413
/// payload_too_large` over `limit`, `400 invalid_json` for any other read failure.
pub(crate) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, ApiError> {
    body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::payload_too_large(limit)
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

/// Milliseconds since the Unix epoch as RFC 3339 in UTC with milliseconds,
/// e.g. `2024-05-01T12:30:00.250Z`.
pub(crate) fn rfc3339_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let millis = ms % 1000;
    let days = secs / 86_400;
    let sod = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{millis:03}Z",
        sod / 3600,
        sod % 3600 / 60,
        sod % 60
    )
}

/// (year, month, day) of the day `days` after 1970-01-01 (H. Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
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
    })
}

/// A hook as listed under its run: `{"token", "kind", "metadata", "created_at"}`, plus `"url"`
/// and `"respond_with"` for a webhook (`public_url` is the server's base URL).
pub(crate) fn hook_json(hook: &HookRecord, public_url: &str) -> Value {
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
            "created_at": rfc3339_ms(hook.created_at_ms),
        });
    }
    json!({
        "token": hook.token,
        "kind": hook.kind,
        "metadata": hook.metadata,
        "created_at": rfc3339_ms(hook.created_at_ms),
    })
}

/// A hook looked up by token: the listing shape plus its `run_id` and `definition`.
pub(crate) fn hook_with_run_json(hook: &HookRecord, public_url: &str) -> Value {
    let mut v = hook_json(hook, public_url);
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
    fn formats_rfc3339_with_millis() {
        assert_eq!(rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339_ms(951_782_400_001), "2000-02-29T00:00:00.001Z");
        assert_eq!(rfc3339_ms(1_700_000_000_123), "2023-11-14T22:13:20.123Z");
        assert_eq!(rfc3339_ms(1_735_689_599_999), "2024-12-31T23:59:59.999Z");
        // Absurd values still format without panicking.
        assert!(!rfc3339_ms(u64::MAX).is_empty());
    }

    #[test]
    fn json_errors_name_the_position() {
        let e = parse_json::<Value>(b"{\"a\": }").unwrap_err();
        assert_eq!(e.code, "invalid_json");
        assert!(e.message.contains("line 1 column"), "{}", e.message);
    }
}
