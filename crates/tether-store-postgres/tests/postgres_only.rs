//! What only a shared database needs: several store instances (standing for several nodes)
//! on one schema at once — concurrent migrations, `LISTEN/NOTIFY` across instances (and after
//! the listening connection is killed), dense journals, one winner per token, key or lease,
//! no lost shared-state increment and no missed signal under concurrent writers — plus
//! opening errors. Ignored without `TETHER_TEST_POSTGRES`, run (and failing) under CI (the rule:
//! `tether-test-env`).

mod common;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::*;
use futures::StreamExt;
use serde_json::json;
use tether_core::event::EventBody;
use tether_store::{OpOutcome, OpRejected, RunChanged, Store, StoreError, WriteOp};
use tether_store_postgres::{PostgresOptions, PostgresStore};

/// Four processes starting at once on a fresh schema: the advisory lock makes them take turns,
/// the migration is applied exactly once and every store works.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn concurrent_migrations_apply_once() {
    let url = test_url();
    let guard = Arc::new(SchemaGuard::new(&url));
    let opens: Vec<_> = (0..4)
        .map(|_| {
            let guard = Arc::clone(&guard);
            tokio::spawn(async move { guard.open_with_pool(2).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.expect("open task"));
    }
    for (i, store) in stores.iter().enumerate() {
        let id = format!("r{i}");
        appended_seqs(&commit_one(store, create(&id)).await);
    }
    for store in &stores {
        for i in 0..4 {
            let run = store.get_run(&format!("r{i}")).await.expect("get_run");
            assert!(run.is_some(), "every store sees every run");
        }
    }
    let versions = query_i64(
        &url,
        &format!("SELECT COUNT(*) FROM {}.schema_migrations", guard.schema),
    )
    .await;
    assert_eq!(
        versions,
        PostgresStore::schema_version(),
        "each migration recorded exactly once"
    );
    drop(stores);
}

/// A store subscribed to run changes hears the commits another store instance makes on the
/// same schema, also after its listening connection was killed (it reconnects).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn listen_notify_reaches_other_instances_and_survives_reconnects() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let listener = guard.open().await;
    let writer = guard.open().await;
    let mut changes = listener
        .subscribe()
        .expect("PostgreSQL stores can be subscribed to");
    appended_seqs(&commit_one(&writer, create("r")).await);

    // The first commits may come before LISTEN is in place: keep committing until one is heard.
    let heard = hear_a_commit(&writer, &mut changes, "r").await;
    assert_eq!(heard.run_id, "r");

    // Kill the listening connection; the store reconnects and hears later commits again.
    let killed = query_i64(
        &url,
        &format!(
            "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity
             WHERE application_name = 'tether-listen' AND query = 'LISTEN {}'",
            listener.channel()
        ),
    )
    .await;
    assert_eq!(killed, 1, "exactly one listening connection for this store");
    let heard = hear_a_commit(&writer, &mut changes, "r").await;
    assert_eq!(heard.run_id, "r");

    // A store in another schema is not told about this one's runs.
    let other_guard = SchemaGuard::new(&url);
    let other = other_guard.open().await;
    assert_ne!(other.channel(), listener.channel());
}

/// Append to `run_id` through `writer` until `changes` reports one of those commits (with the
/// `last_seq` it wrote); panics after [`PATIENCE`].
async fn hear_a_commit(
    writer: &PostgresStore,
    changes: &mut futures::stream::BoxStream<'static, RunChanged>,
    run_id: &str,
) -> RunChanged {
    let deadline = Instant::now() + PATIENCE;
    let mut written = HashSet::new();
    while Instant::now() < deadline {
        let result = commit_one(
            writer,
            append(run_id, vec![EventBody::TimerFired { cmd: 1 }]),
        )
        .await;
        written.extend(appended_seqs(&result));
        let wait = tokio::time::timeout(Duration::from_millis(300), async {
            while let Some(change) = changes.next().await {
                if change.run_id == run_id && written.contains(&change.last_seq) {
                    return Some(change);
                }
            }
            None
        })
        .await;
        match wait {
            Ok(Some(change)) => return change,
            Ok(None) => panic!("the run-change stream ended"),
            Err(_) => continue,
        }
    }
    panic!("no notification for {run_id} within {PATIENCE:?}");
}

/// Two instances appending to the same runs at once, in batches naming the runs in opposite
/// orders: every append gets its own seq, the journals stay dense, nothing fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn concurrent_appends_from_two_instances_keep_journals_dense() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let a = Arc::new(guard.open().await);
    let b = Arc::new(guard.open().await);
    let results = commit(a.as_ref(), vec![create("x"), create("y")]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    const WRITERS: usize = 4;
    const BATCHES: usize = 25;
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let store = if w % 2 == 0 {
            Arc::clone(&a)
        } else {
            Arc::clone(&b)
        };
        let (first, second) = if w % 2 == 0 { ("x", "y") } else { ("y", "x") };
        tasks.push(tokio::spawn(async move {
            let mut seqs = (Vec::new(), Vec::new());
            for i in 0..BATCHES {
                let ops = vec![
                    append(first, vec![EventBody::TimerFired { cmd: i as u32 }]),
                    append(
                        second,
                        vec![
                            EventBody::TimerFired { cmd: i as u32 },
                            EventBody::TimerFired { cmd: i as u32 + 1 },
                        ],
                    ),
                ];
                let results = commit(store.as_ref(), ops).await;
                let (s1, s2) = (appended_seqs(&results[0]), appended_seqs(&results[1]));
                assert_eq!(s1.len(), 1);
                assert_eq!(s2.len(), 2);
                assert_eq!(s2[1], s2[0] + 1, "one op's entries are consecutive");
                if first == "x" {
                    seqs.0.extend(s1);
                    seqs.1.extend(s2);
                } else {
                    seqs.1.extend(s1);
                    seqs.0.extend(s2);
                }
            }
            seqs
        }));
    }
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for task in tasks {
        let (x, y) = task.await.expect("writer task");
        xs.extend(x);
        ys.extend(y);
    }
    // Half the writers put 1 entry per batch on x, the other half 2.
    let per_run = WRITERS / 2 * BATCHES * 3;
    for (run_id, mut seqs) in [("x", xs), ("y", ys)] {
        seqs.sort_unstable();
        let expected: Vec<u64> = (2..=per_run as u64 + 1).collect();
        assert_eq!(
            seqs, expected,
            "every seq of {run_id} handed out exactly once"
        );
        assert_eq!(
            journal_seqs(a.as_ref(), run_id).await,
            (1..=per_run as u64 + 1).collect::<Vec<_>>(),
            "the journal of {run_id} is dense"
        );
        let run = b
            .get_run(run_id)
            .await
            .expect("get_run")
            .expect("run exists");
        assert_eq!(run.last_seq, per_run as u64 + 1);
    }
}

/// Two instances creating hooks on the same tokens at the same moment: for each token exactly
/// one `HookCreated` wins and the other run journals `HookConflict` naming the winner.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn one_active_hook_per_token_across_instances() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let a = Arc::new(guard.open().await);
    let b = Arc::new(guard.open().await);
    let results = commit(a.as_ref(), vec![create("ra"), create("rb")]).await;
    assert!(results.iter().all(Result::is_ok), "{results:?}");

    const TOKENS: u32 = 20;
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let racer = |store: Arc<PostgresStore>, run_id: &'static str| {
        let barrier = Arc::clone(&barrier);
        tokio::spawn(async move {
            let mut bodies = Vec::new();
            for t in 0..TOKENS {
                barrier.wait().await;
                let result = commit_one(
                    store.as_ref(),
                    append(run_id, vec![hook_created(t, &format!("tok-{t}"))]),
                )
                .await;
                match result {
                    Ok(OpOutcome::Appended { mut events, .. }) => {
                        bodies.push(events.remove(0).body)
                    }
                    other => panic!("expected Appended, got {other:?}"),
                }
            }
            bodies
        })
    };
    let ta = racer(Arc::clone(&a), "ra");
    let tb = racer(Arc::clone(&b), "rb");
    let (bodies_a, bodies_b) = (ta.await.expect("racer a"), tb.await.expect("racer b"));
    for t in 0..TOKENS {
        let token = format!("tok-{t}");
        let holder = match a.get_hook(&token).await.expect("get_hook") {
            Some(hook) => hook.run_id,
            None => panic!("{token} must be held"),
        };
        let (mine, theirs) = match holder.as_str() {
            "ra" => (&bodies_a[t as usize], &bodies_b[t as usize]),
            "rb" => (&bodies_b[t as usize], &bodies_a[t as usize]),
            other => panic!("unexpected holder {other}"),
        };
        assert!(
            matches!(mine, EventBody::HookCreated { token: tk, .. } if *tk == token),
            "the holder journaled HookCreated: {mine:?}"
        );
        assert_eq!(
            theirs,
            &EventBody::HookConflict {
                cmd: t,
                token: token.clone(),
                holder_run: holder.clone()
            },
            "the loser journaled HookConflict naming the holder"
        );
    }
}

/// Two nodes claiming the same free run at once: one gets it, the other is told who has it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn one_claim_wins_across_instances() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let a = Arc::new(guard.open().await);
    let b = Arc::new(guard.open().await);
    const RUNS: usize = 10;
    let ops = (0..RUNS).map(|i| create(&format!("c{i}"))).collect();
    assert!(commit(a.as_ref(), ops).await.iter().all(Result::is_ok));
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let racer = |store: Arc<PostgresStore>, node: &'static str| {
        let barrier = Arc::clone(&barrier);
        tokio::spawn(async move {
            let mut results = Vec::new();
            for i in 0..RUNS {
                barrier.wait().await;
                let op = WriteOp::Claim {
                    queues: Default::default(),
                    run_id: format!("c{i}"),
                    node: node.into(),
                    lease_until_ms: 10_000,
                    now_ms: 5,
                };
                results.push(commit_one(store.as_ref(), op).await);
            }
            results
        })
    };
    let (ta, tb) = (racer(Arc::clone(&a), "na"), racer(Arc::clone(&b), "nb"));
    let (ra, rb) = (ta.await.expect("racer a"), tb.await.expect("racer b"));
    for i in 0..RUNS {
        let run_id = format!("c{i}");
        let owner = a
            .get_run(&run_id)
            .await
            .expect("get_run")
            .and_then(|r| r.owner)
            .expect("the run has an owner");
        let (won, lost) = if owner == "na" {
            (&ra[i], &rb[i])
        } else {
            (&rb[i], &ra[i])
        };
        assert_eq!(won, &Ok(OpOutcome::Claimed { epoch: 1 }));
        assert_eq!(
            lost,
            &Err(OpRejected::Owned {
                run_id: run_id.clone(),
                owner: owner.clone()
            })
        );
    }
}

/// Two instances incrementing the same shared-state counter of one namespace at once (from
/// the root run and from one of its threads): no increment is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn shared_state_increments_are_not_lost_across_instances() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let a = Arc::new(guard.open().await);
    let b = Arc::new(guard.open().await);
    assert!(commit(a.as_ref(), vec![create("root")]).await[0].is_ok());
    let spawn = EventBody::HookSpawned {
        cmd: 1,
        hook_id: "root.t".into(),
        workflow: "w".into(),
        task_queue: "default".into(),
        args: json!({}),
        retry: Default::default(),
        fail_signal: None,
    };
    appended_seqs(&commit_one(a.as_ref(), append("root", vec![spawn])).await);

    const ROUNDS: u32 = 25;
    let incr = |cmd: u32| EventBody::StateIncr {
        cmd,
        key: "n".into(),
        by: 1,
        value: None,
    };
    let racer = |store: Arc<PostgresStore>, run_id: &'static str| {
        tokio::spawn(async move {
            for i in 0..ROUNDS {
                let result = commit_one(store.as_ref(), append(run_id, vec![incr(i + 2)])).await;
                appended_seqs(&result);
            }
        })
    };
    let (ta, tb) = (
        racer(Arc::clone(&a), "root"),
        racer(Arc::clone(&b), "root.t"),
    );
    ta.await.expect("racer a");
    tb.await.expect("racer b");
    let state = a
        .get_state("root.t")
        .await
        .expect("get_state")
        .expect("run exists");
    assert_eq!(state.get("n"), Some(&json!(2 * ROUNDS)), "{state:?}");
}

/// A signal sent through one instance while the run waiting for it registers its wait through
/// another: whichever comes first, the run receives every signal exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn signals_and_waits_racing_across_instances_always_meet() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    let a = Arc::new(guard.open().await);
    let b = Arc::new(guard.open().await);
    assert!(commit(b.as_ref(), vec![create("waiter")]).await[0].is_ok());

    const SIGNALS: u32 = 20;
    let barrier = Arc::new(tokio::sync::Barrier::new(2));
    let sender = {
        let (a, barrier) = (Arc::clone(&a), Arc::clone(&barrier));
        tokio::spawn(async move {
            for i in 0..SIGNALS {
                barrier.wait().await;
                let op = WriteOp::Signal {
                    signal_id: format!("s{i}"),
                    payload: json!(i),
                    idempotency_key: None,
                    at_ms: 3,
                };
                let result = commit_one(a.as_ref(), op).await;
                assert!(result.is_ok(), "{result:?}");
            }
        })
    };
    let waiter = {
        let (b, barrier) = (Arc::clone(&b), Arc::clone(&barrier));
        tokio::spawn(async move {
            for i in 0..SIGNALS {
                barrier.wait().await;
                let wait = EventBody::SignalWaited {
                    cmd: i,
                    signal_id: format!("s{i}"),
                };
                appended_seqs(&commit_one(b.as_ref(), append("waiter", vec![wait])).await);
            }
        })
    };
    sender.await.expect("sender");
    waiter.await.expect("waiter");

    let journal = a.load_journal("waiter", 0).await.expect("journal");
    for i in 0..SIGNALS {
        let received: Vec<_> = journal
            .iter()
            .filter(|e| {
                matches!(&e.body, EventBody::SignalReceived { wait_cmd, payload }
                    if *wait_cmd == i && *payload == json!(i))
            })
            .collect();
        assert_eq!(
            received.len(),
            1,
            "signal s{i} received exactly once: {journal:?}"
        );
    }
    assert_eq!(
        journal.iter().map(|e| e.seq).collect::<Vec<_>>(),
        (1..=journal.len() as u64).collect::<Vec<_>>(),
        "the journal stays dense"
    );
    let left = query_i64(
        &url,
        &format!(
            "SELECT (SELECT COUNT(*) FROM {0}.signals) + (SELECT COUNT(*) FROM {0}.signal_waits)",
            guard.schema
        ),
    )
    .await;
    assert_eq!(left, 0, "no signal kept and no wait left behind");
}

/// A database whose schema is newer than this code is refused with a `Config` error; URLs
/// that are not PostgreSQL URLs too; an unreachable server is `Unavailable`.
#[tokio::test]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn opening_errors() {
    let url = test_url();
    let guard = SchemaGuard::new(&url);
    drop(guard.open().await);
    let newer = PostgresStore::schema_version() + 1;
    query_i64(
        &url,
        &format!(
            "WITH i AS (INSERT INTO {}.schema_migrations (version, applied_at) VALUES ({newer}, 0)
                        RETURNING version)
             SELECT COUNT(*) FROM i",
            guard.schema
        ),
    )
    .await;
    match PostgresStore::open_in_schema(&url, &guard.schema).await {
        Err(StoreError::Config(msg)) => assert!(msg.contains("newer"), "{msg}"),
        other => panic!("expected a Config error, got {other:?}"),
    }

    for bad in [
        "mysql://h/db",
        "postgres://h:notaport/db",
        "postgres://h/db?bogus=1",
    ] {
        match PostgresStore::open(bad).await {
            Err(StoreError::Config(_)) => {}
            other => panic!("{bad}: expected a Config error, got {other:?}"),
        }
    }
    match PostgresStore::open_in_schema(&url, "Not-Valid").await {
        Err(StoreError::Config(_)) => {}
        other => panic!("expected a Config error, got {other:?}"),
    }
    let options = PostgresOptions {
        pool_size: 1,
        schema: None,
    };
    match PostgresStore::open_with("postgres://u:secret@127.0.0.1:1/db", options).await {
        Err(StoreError::Unavailable(msg)) => {
            assert!(!msg.contains("secret"), "{msg}");
            assert!(!msg.contains('\n'), "{msg}");
        }
        other => panic!("expected an Unavailable error, got {other:?}"),
    }
}
