//! Wake a live run, end to end in-process: `resume_hook` (validation, group commit with its
//! fsync, hand-over to the live run) until the run has applied the payload. No replay happens:
//! the run stays in the live cache throughout.
//!
//! `cargo bench -p tether-engine --bench wake`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::json;
use tether_engine::{Engine, EngineConfig};
use tether_store_sqlite::SqliteStore;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let (engine, run, token) = rt.block_on(async {
        let store = SqliteStore::open(path.to_str().expect("utf-8 path"))
            .await
            .expect("open");
        let mut registry = tether_core::Registry::new();
        tether_examples::register(&mut registry);
        let engine = Engine::start(Arc::new(store), registry, EngineConfig::default());
        let run = engine.start_run("collect", json!({})).await.expect("start");
        let token = loop {
            let hooks = engine.hooks(&run).await.expect("hooks");
            if let Some(h) = hooks.first() {
                break h.token.clone();
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        };
        (engine, run, token)
    });
    // RunStarted is entry 1 and HookCreated entry 2; each payload adds one entry.
    let mut seq = 2u64;
    c.bench_function("wake_live_run_sqlite", |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let t0 = Instant::now();
                for _ in 0..iters {
                    seq += 1;
                    engine
                        .resume_hook(&token, json!({ "n": seq }), None)
                        .await
                        .expect("resume");
                    let applied = engine
                        .wait_applied(&run, seq, Duration::from_secs(10))
                        .await;
                    assert!(applied, "the run did not apply entry {seq}");
                }
                t0.elapsed()
            })
        })
    });
    rt.block_on(engine.shutdown());
}

criterion_group!(engine, benches);
criterion_main!(engine);
