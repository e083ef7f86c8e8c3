//! The durable write on the hot path: one group commit of a batch of journal appends (one
//! transaction, one fsync), on a real SQLite file with `synchronous=FULL`.
//!
//! `cargo bench -p tether-store-sqlite --bench append`

// criterion's macros generate undocumented items.
#![allow(missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde_json::json;
use tether_core::EventBody;
use tether_store::{Store, WakeAt, WriteOp};
use tether_store_sqlite::SqliteStore;

fn benches(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bench.db");
    let store = rt
        .block_on(SqliteStore::open(path.to_str().expect("utf-8 path")))
        .expect("open");
    let runs: Vec<String> = (0..64).map(|i| format!("run-{i}")).collect();
    let create = runs
        .iter()
        .map(|id| WriteOp::CreateRun {
            queue: tether_store::DEFAULT_QUEUE.into(),
            run_id: id.clone(),
            workflow: "bench".into(),
            input: json!({}),
            at_ms: 1,
            claim: None,
        })
        .collect();
    rt.block_on(store.commit(create)).expect("create runs");

    let mut group = c.benchmark_group("sqlite_append_batch");
    for size in [1usize, 8, 32, 64] {
        group.throughput(Throughput::Elements(size as u64));
        group.bench_with_input(BenchmarkId::from_parameter(size), &size, |b, &size| {
            let mut cmd = 0u32;
            b.iter(|| {
                cmd += 1;
                let ops = runs[..size]
                    .iter()
                    .map(|id| WriteOp::Append {
                        run_id: id.clone(),
                        events: vec![EventBody::StepCompleted {
                            cmd,
                            name: "noop".into(),
                            output: json!({ "ok": true }),
                            attempts: 1,
                        }],
                        status: None,
                        wake_at: WakeAt::Keep,
                        fence: None,
                        at_ms: 2,
                    })
                    .collect();
                rt.block_on(store.commit(ops)).expect("commit")
            })
        });
    }
    group.finish();
}

criterion_group!(store, benches);
criterion_main!(store);
