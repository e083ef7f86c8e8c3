//! A run's journal as a readable timeline: one line per entry with its seq, time, thread
//! (`main` or the hook thread's id), type and a short summary.

use serde_json::Value;

use super::output::{table, truncate};

/// The longest summary shown.
const SUMMARY_MAX: usize = 80;

/// The journal entries `events` (as `GET /v1/runs/{id}/events` gives them) as a table.
pub(super) fn render(events: &[Value]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e["seq"].as_u64().map(|s| s.to_string()).unwrap_or_default(),
                text(&e["at"]),
                thread(e),
                text(&e["type"]),
                truncate(&summary(e), SUMMARY_MAX),
            ]
        })
        .collect();
    table(&["SEQ", "TIME", "THREAD", "TYPE", "SUMMARY"], &rows)
}

/// `main`, or the hook thread's id (with its workflow when known).
fn thread(e: &Value) -> String {
    match (e["thread"].as_str(), e["thread_workflow"].as_str()) {
        (Some(id), Some(w)) => format!("{id} ({w})"),
        (Some(id), None) => id.to_string(),
        (None, _) => "main".to_string(),
    }
}

/// A string as itself, anything else as compact JSON, `null`/missing as nothing.
fn text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The entry's gist, by type.
fn summary(e: &Value) -> String {
    let f = |k: &str| text(&e[k]);
    let error = |e: &Value| {
        format!(
            "{}: {}",
            text(&e["error"]["code"]),
            text(&e["error"]["message"])
        )
    };
    match e["type"].as_str().unwrap_or_default() {
        "run_started" => format!("{} input={}", f("workflow"), f("input")),
        "step_completed" => format!(
            "{} -> {} ({} attempts)",
            f("name"),
            f("output"),
            f("attempts")
        ),
        "step_failed" => format!("{} failed: {}", f("name"), error(e)),
        "timer_started" => format!("fires at {} ms", f("fire_at_ms")),
        "hook_created" => format!("{} token={}", f("kind"), f("token")),
        "hook_conflict" => format!("token {} held by {}", f("token"), f("holder_run")),
        "hook_received" => format!("payload={}", f("payload")),
        "hook_disposed" => format!("token={}", f("token")),
        "now" => format!("{} ms", f("ms")),
        "random" | "uuid" => f("value"),
        "state_get" => format!("{} = {}", f("key"), f("value")),
        "state_set" => format!("{} := {}", f("key"), f("value")),
        "state_incr" => format!("{} += {} -> {}", f("key"), f("by"), f("value")),
        "state_delete" => f("key"),
        "hook_spawned" => format!("{} {} args={}", f("hook_id"), f("workflow"), f("args")),
        "signal_sent" => format!("{} payload={}", f("signal_id"), f("payload")),
        "signal_waited" => f("signal_id"),
        "signal_received" => format!("payload={}", f("payload")),
        "patched" => format!("change {} (new branch from here)", f("change_id")),
        "child_started" => format!(
            "{} {} input={}",
            f("child_run_id"),
            f("workflow"),
            f("input")
        ),
        "child_ended" => match e["status"].as_str() {
            Some("completed") => format!("#{} completed output={}", f("child_cmd"), f("output")),
            _ => format!("#{} {}: {}", f("child_cmd"), f("status"), error(e)),
        },
        "attempt_failed" => format!("attempt {}: {}", f("attempt"), error(e)),
        "cancel_requested" | "run_cancelled" => f("reason"),
        "run_completed" => format!("output={}", f("output")),
        "run_failed" => error(e),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn one_line_per_entry_with_its_thread() {
        let events = vec![
            json!({"seq": 1, "at": "t1", "type": "run_started", "workflow": "enrich",
                   "input": {"name": "x"}, "thread": "main"}),
            json!({"seq": 1, "at": "t2", "type": "state_set", "key": "greeting",
                   "value": "hi", "thread": "h-1", "thread_workflow": "enrich_hook"}),
        ];
        let out = render(&events);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 3, "{out}");
        assert!(
            lines[1].contains("main") && lines[1].contains("enrich input="),
            "{out}"
        );
        assert!(lines[2].contains("h-1 (enrich_hook)"), "{out}");
        assert!(lines[2].contains("greeting := hi"), "{out}");
    }

    #[test]
    fn child_entries_name_the_child_and_its_end() {
        let e = json!({"seq": 2, "type": "child_started", "cmd": 1, "child_run_id": "r.c1",
                       "workflow": "steps", "input": {"n": 3}, "detached": false});
        assert_eq!(summary(&e), r#"r.c1 steps input={"n":3}"#);
        let e = json!({"seq": 3, "type": "child_ended", "child_cmd": 1, "status": "failed",
                       "error": {"code": "boom", "message": "no"}});
        assert_eq!(summary(&e), "#1 failed: boom: no");
    }

    #[test]
    fn a_patch_marker_names_its_change() {
        let e = json!({"seq": 2, "type": "patched", "change_id": "quote-v2", "at_cmd": 1});
        assert_eq!(summary(&e), "change quote-v2 (new branch from here)");
    }
}
