//! `Engine::resume_or_start` under races, on both backends: 32 callers send payloads for the
//! token of a run that does not exist yet (`slack_bot`'s `slack_messages:{channel}`); one run
//! is started and receives every payload once, each caller's in the order it sent them.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use serde_json::{json, Value};
use tether_engine::{Engine, EngineError};
use tether_store_postgres::PostgresStore;

const CALLERS: usize = 32;
const TOKEN: &str = "slack_messages:general";

/// 32 callers, each sending two payloads one after the other (the second with a retry of
/// the first's key in between), then `/stop`: one run, 64 messages once each, each caller's
/// first before its second.
async fn racing_callers_make_one_run_and_deliver_every_payload_once(engine: Engine) {
    let input = json!({"channel": "general"});
    let mut tasks = Vec::new();
    for i in 0..CALLERS {
        let engine = engine.clone();
        let input = input.clone();
        tasks.push(tokio::spawn(async move {
            let mut answers = Vec::new();
            for (n, part) in ["a", "b", "a"].into_iter().enumerate() {
                // The third call retries the first (same key, same payload).
                let key = format!("{i}-{}", if n == 2 { 0 } else { n });
                let answer = engine
                    .resume_or_start(
                        TOKEN,
                        json!({"text": format!("{i}{part}")}),
                        "slack_bot",
                        input.clone(),
                        None,
                        Some(key),
                    )
                    .await
                    .unwrap_or_else(|e| panic!("caller {i}: {e}"));
                answers.push(answer);
            }
            answers
        }));
    }
    let mut runs = HashSet::new();
    let mut started = 0;
    for task in tasks {
        for answer in task.await.expect("caller task") {
            runs.insert(answer.run_id);
            started += usize::from(answer.started);
        }
    }
    assert_eq!(runs.len(), 1, "one run for every caller: {runs:?}");
    assert_eq!(started, 1, "exactly one call started the run");
    let run = runs.into_iter().next().unwrap_or_default();
    let stop = engine
        .resume_or_start(
            TOKEN,
            json!({"text": "/stop"}),
            "slack_bot",
            input.clone(),
            None,
            None,
        )
        .await
        .expect("stop");
    assert_eq!(stop.run_id, run);

    let out = output(&engine, &run).await;
    let messages: Vec<String> = out["messages"]
        .as_array()
        .map(|m| {
            m.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        messages.len(),
        2 * CALLERS,
        "every payload once: {messages:?}"
    );
    for i in 0..CALLERS {
        let at = |part: &str| messages.iter().position(|m| *m == format!("{i}{part}"));
        let (a, b) = (at("a"), at("b"));
        assert!(
            a.is_some() && b.is_some() && a < b,
            "caller {i}'s payloads in the order it sent them: {messages:?}"
        );
    }

    // The same run id with another input is refused.
    let other = engine
        .resume_or_start(
            "slack_messages:general",
            json!({"text": "late"}),
            "slack_bot",
            json!({"channel": "random"}),
            Some(run.clone()),
            None,
        )
        .await;
    assert!(
        matches!(other, Err(EngineError::RunExists { .. })),
        "{other:?}"
    );
    engine.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_racing_callers_make_one_run() {
    let db = TestDb::new();
    let engine = db.engine(examples(), fast_config()).await;
    racing_callers_make_one_run_and_deliver_every_payload_once(engine).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn postgres_racing_callers_make_one_run() {
    let url = tether_test_env::postgres_url();
    let schema = format!("t_{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let store = PostgresStore::open_in_schema(&url, &schema)
        .await
        .unwrap_or_else(|e| panic!("open a store in schema {schema}: {e}"));
    let engine = Engine::start(Arc::new(store), examples(), fast_config());
    racing_callers_make_one_run_and_deliver_every_payload_once(engine).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    if let Err(e) = PostgresStore::drop_schema(&url, &schema).await {
        eprintln!("schema {schema} left behind: {e}");
    }
}
