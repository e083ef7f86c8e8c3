//! The engine's metrics: each engine counts its own resumes (no global registry), refusals are
//! counted by reason, and a run claimed from another node's lease counts as a takeover.

mod common;

use std::time::Duration;

use common::{examples, fast_config, hook_token, output, TestDb};
use serde_json::json;
use tether_engine::{Engine, EngineConfig, EngineError};

fn refused(engine: &Engine, reason: &str) -> u64 {
    engine
        .metrics()
        .snapshot()
        .resumes_refused
        .iter()
        .find(|(r, _)| r == reason)
        .map_or(0, |(_, n)| *n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_engine_counts_its_own_resumes_by_outcome() {
    let (db1, db2) = (TestDb::new(), TestDb::new());
    let config = EngineConfig {
        max_payload_bytes: 256,
        ..fast_config()
    };
    let one = db1.engine(examples(), config.clone()).await;
    let other = db2.engine(examples(), config).await;

    let collect = one.start_run("collect", json!({})).await.unwrap();
    let approval = one
        .start_run("approval", json!({"order_id": "o-1"}))
        .await
        .unwrap();
    let collect_token = hook_token(&one, &collect).await;
    let approval_token = hook_token(&one, &approval).await;

    one.resume_hook(&collect_token, json!({"n": 1}), None)
        .await
        .unwrap();
    let e = one
        .resume_hook("no-such-token", json!({}), None)
        .await
        .unwrap_err();
    assert_eq!(e, EngineError::HookNotFound);
    let e = one
        .resume_hook(&collect_token, json!({"pad": "x".repeat(300)}), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "payload_too_large");
    let e = one
        .resume_hook(&approval_token, json!({"approved": "yes"}), None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), "invalid_payload");
    one.resume_hook(&collect_token, json!({"done": true}), None)
        .await
        .unwrap();
    assert_eq!(
        output(&one, &collect).await,
        json!({"payloads": [{"n": 1}, {"done": true}]})
    );

    let snap = one.metrics().snapshot();
    assert_eq!(snap.resumes_accepted, 2);
    assert_eq!(refused(&one, "hook_not_found"), 1);
    assert_eq!(refused(&one, "payload_too_large"), 1);
    assert_eq!(refused(&one, "invalid_payload"), 1);
    assert_eq!(snap.resume_wake.count, 2, "{snap:?}");
    assert_eq!(snap.live_run_cache_hits, 2, "{snap:?}");
    assert_eq!(snap.live_run_cache_misses, 0, "{snap:?}");
    assert!(snap.commits.count >= 4, "{snap:?}");
    assert!(snap.committed_ops >= snap.commits.count, "{snap:?}");
    assert_eq!(snap.lease_takeovers, 0);

    // The other engine saw none of it.
    let untouched = other.metrics().snapshot();
    assert_eq!(untouched.resumes_accepted, 0);
    assert!(untouched.resumes_refused.is_empty(), "{untouched:?}");
    assert_eq!(untouched.resume_wake.count, 0);
    one.shutdown().await;
    other.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_claimed_from_a_dead_node_counts_one_takeover() {
    let db = TestDb::new();
    let store = db.store().await;
    let lease = Duration::from_millis(300);
    let node = |id: &str| EngineConfig {
        node_id: Some(id.into()),
        lease,
        ..fast_config()
    };
    let a = Engine::start(store.clone(), examples(), node("a"));
    let run = a.start_run("collect", json!({})).await.unwrap();
    let token = hook_token(&a, &run).await;
    // Node a dies holding the run's lease.
    a.halt().await;

    let b = Engine::start(store, examples(), node("b"));
    // Let a's lease run out, so that b may claim the run when the payloads arrive (or its
    // poller finds the run first: either way b claims it once, from a).
    tokio::time::sleep(lease * 3).await;
    b.resume_hook(&token, json!({"n": 1}), None).await.unwrap();
    // Let b rebuild the run (replaying the first payload) before the last one arrives: a run
    // that ends during its replay never sees its inbox, so its resumes are not observed.
    let seq = b.events(&run).await.unwrap().last().map_or(0, |e| e.seq);
    assert!(b.wait_applied(&run, seq, Duration::from_secs(30)).await);
    b.resume_hook(&token, json!({"done": true}), None)
        .await
        .unwrap();
    assert_eq!(
        output(&b, &run).await,
        json!({"payloads": [{"n": 1}, {"done": true}]})
    );

    let snap = b.metrics().snapshot();
    assert_eq!(snap.lease_takeovers, 1, "{snap:?}");
    assert_eq!(snap.resumes_accepted, 2);
    assert_eq!(snap.resume_wake.count, 2, "{snap:?}");
    assert_eq!(
        snap.live_run_cache_hits + snap.live_run_cache_misses,
        2,
        "{snap:?}"
    );
    assert_eq!(a.metrics().snapshot().lease_takeovers, 0);
    b.shutdown().await;
}
