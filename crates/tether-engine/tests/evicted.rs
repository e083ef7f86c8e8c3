//! A run evicted from memory and then resumed: the resume's own commit claims it for this
//! node (`tether_store::ClaimIfFree`), so rebuilding it writes no claim first, and it ends as
//! if it had never left memory.
#![allow(missing_docs, missing_debug_implementations)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;
use tether_engine::EngineConfig;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_claims_an_evicted_run_in_its_own_commit() {
    let db = TestDb::new();
    let config = EngineConfig {
        max_live_runs: 1,
        // Lease renewals (every third of the lease) would be counted as ops: none in the test.
        lease: Duration::from_secs(3600),
        ..fast_config()
    };
    let engine = db.engine(examples(), config).await;
    let evicted = engine.start_run("collect", json!({})).await.unwrap();
    let token = hook_token(&engine, &evicted).await;
    // A second run takes the only place in memory: the first is evicted and gives its lease up.
    let other = engine.start_run("collect", json!({})).await.unwrap();
    hook_token(&engine, &other).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while engine.get_run(&evicted).await.unwrap().owner.is_some() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the evicted run kept its lease"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    engine.settle().await;
    let ops_before = engine.metrics().snapshot().committed_ops;

    engine
        .resume_hook(&token, json!({"n": 1, "done": true}), None)
        .await
        .unwrap();
    assert_eq!(
        output(&engine, &evicted).await,
        json!({"payloads": [{"n": 1, "done": true}]})
    );
    engine.settle().await;
    let ops = engine.metrics().snapshot().committed_ops - ops_before;
    // The resume (claiming the run), the run's ending, and the release of the run it evicted
    // in turn: no claim of its own.
    assert_eq!(ops, 3, "ops committed for the evicted run's resume");
    let ended = engine.get_run(&evicted).await.unwrap();
    assert_eq!(ended.owner, None, "an ended run has no owner");
    engine.shutdown().await;
}
