//! Engines sharing one store, as the nodes of a PostgreSQL cluster do: one SQLite store in
//! this process, wrapped so that every commit's journal growth is announced to all engines
//! (what `LISTEN/NOTIFY` does between PostgreSQL nodes).

mod common;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use common::*;
use futures::stream::{BoxStream, StreamExt};
use serde_json::{json, Map, Value};
use tether_core::event::Event;
use tether_core::{RunStatus, WebhookBody, WebhookRequest, WebhookResponse, WEBHOOK_PATH};
use tether_engine::{Engine, EngineConfig};
use tether_store::{
    HookRecord, OpOutcome, OpResult, RunChanged, RunFilter, RunRecord, Store, StoreError, WriteOp,
};
use tokio::sync::broadcast;

/// A store shared by engines of this process that announces each commit to all of them.
struct Announcing {
    inner: Arc<dyn Store>,
    bus: broadcast::Sender<RunChanged>,
}

#[async_trait]
impl Store for Announcing {
    async fn commit(&self, ops: Vec<WriteOp>) -> Result<Vec<OpResult>, StoreError> {
        let results = self.inner.commit(ops).await?;
        for outcome in results.iter().flatten() {
            let grown = match outcome {
                OpOutcome::Appended { run_id, events } => events.last().map(|e| (run_id, e.seq)),
                OpOutcome::Resumed {
                    run_id,
                    event: Some(e),
                    ..
                } => Some((run_id, e.seq)),
                _ => None,
            };
            if let Some((run_id, last_seq)) = grown {
                let _ = self.bus.send(RunChanged {
                    local: false,
                    run_id: run_id.clone(),
                    last_seq,
                });
            }
        }
        Ok(results)
    }

    async fn get_run(&self, run_id: &str) -> Result<Option<RunRecord>, StoreError> {
        self.inner.get_run(run_id).await
    }

    async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.list_runs(filter).await
    }

    async fn load_journal(&self, run_id: &str, after_seq: u64) -> Result<Vec<Event>, StoreError> {
        self.inner.load_journal(run_id, after_seq).await
    }

    async fn get_hook(&self, token: &str) -> Result<Option<HookRecord>, StoreError> {
        self.inner.get_hook(token).await
    }

    async fn list_hooks(&self, run_id: &str) -> Result<Vec<HookRecord>, StoreError> {
        self.inner.list_hooks(run_id).await
    }

    async fn runs_needing_work(
        &self,
        now_ms: u64,
        node: &str,
        queues: Option<&[String]>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        self.inner
            .runs_needing_work(now_ms, node, queues, limit)
            .await
    }

    async fn queue_depths(&self) -> Result<Vec<tether_store::QueueDepth>, StoreError> {
        self.inner.queue_depths().await
    }

    fn subscribe(&self) -> Option<BoxStream<'static, RunChanged>> {
        let rx = self.bus.subscribe();
        let changes = futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(change) => return Some((change, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        });
        Some(changes.boxed())
    }

    async fn get_state(&self, run_id: &str) -> Result<Option<Map<String, Value>>, StoreError> {
        self.inner.get_state(run_id).await
    }

    async fn list_threads(&self, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.list_threads(run_id).await
    }

    async fn list_children(&self, run_id: &str) -> Result<Vec<RunRecord>, StoreError> {
        self.inner.list_children(run_id).await
    }

    async fn count_runs(&self) -> Result<Vec<tether_store::RunCount>, StoreError> {
        self.inner.count_runs().await
    }

    async fn get_schedule(
        &self,
        id: &str,
    ) -> Result<Option<tether_store::ScheduleRecord>, StoreError> {
        self.inner.get_schedule(id).await
    }

    async fn list_schedules(&self) -> Result<Vec<tether_store::ScheduleRecord>, StoreError> {
        self.inner.list_schedules().await
    }

    fn backend_name(&self) -> &'static str {
        "shared"
    }
}

/// Two engines ("a" and "b") on one announcing store.
async fn two_nodes(db: &TestDb) -> (Engine, Engine) {
    two_nodes_with(db, fast_config()).await
}

/// Two engines ("a" with `a_config`, "b") on one announcing store.
async fn two_nodes_with(db: &TestDb, a_config: EngineConfig) -> (Engine, Engine) {
    let (bus, _) = broadcast::channel(1024);
    let inner = db.store().await;
    let node = |id: &str, config: EngineConfig| {
        let store = Arc::new(Announcing {
            inner: inner.clone(),
            bus: bus.clone(),
        });
        let config = EngineConfig {
            node_id: Some(id.into()),
            ..config
        };
        Engine::start(store, examples(), config)
    };
    (node("a", a_config), node("b", fast_config()))
}

/// A node remembers the hooks its own commits created, to skip a store read per payload. A
/// token that moved to another run through another node's commits must still reach its new
/// holder through this node.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_that_moved_on_another_node_reaches_its_new_holder() {
    let db = TestDb::new();
    let one_live = EngineConfig {
        max_live_runs: 1,
        ..fast_config()
    };
    let (a, b) = two_nodes_with(&db, one_live).await;
    let token = "slack_messages:W";
    let first = a
        .start_run("slack_bot", json!({"channel": "W"}))
        .await
        .unwrap();
    a.wait_for_hook(token, Duration::from_secs(20))
        .await
        .unwrap();
    // A second run on a pushes the first out of a's memory (and gives its lease up).
    a.start_run("slack_bot", json!({"channel": "X"}))
        .await
        .unwrap();
    // b ends the first run (b takes it over to apply the payload); a never sees that end.
    b.resume_hook(token, json!({"text": "/stop"}), None)
        .await
        .unwrap();
    let ended = b
        .wait_for_run(&first, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ended.status, RunStatus::Completed, "{ended:?}");
    let second = b
        .start_run("slack_bot", json!({"channel": "W"}))
        .await
        .unwrap();
    b.wait_for_hook(token, Duration::from_secs(20))
        .await
        .unwrap();

    let took = a
        .resume_hook(token, json!({"text": "hi"}), None)
        .await
        .unwrap();
    assert_eq!(
        took, second,
        "the payload went to the token's current holder"
    );
    b.resume_hook(token, json!({"text": "/stop"}), None)
        .await
        .unwrap();
    let ended = b
        .wait_for_run(&second, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(ended.output, Some(json!({"messages": ["hi"]})), "{ended:?}");
    a.shutdown().await;
    b.shutdown().await;
}

/// Regression: a wait on one node for a run that ends on another used to last its whole
/// timeout (only the node committing the end released its waiters), so
/// `GET /v1/runs/{id}?wait_ms=N` through another node answered after N ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_on_one_node_ends_when_the_run_ends_on_another() {
    let db = TestDb::new();
    let (a, b) = two_nodes(&db).await;
    let token = "slack_messages:W";
    let run = a
        .start_run("slack_bot", json!({"channel": "W"}))
        .await
        .unwrap();
    a.wait_for_hook(token, Duration::from_secs(20))
        .await
        .unwrap();

    let waiting = tokio::spawn({
        let (b, run) = (b.clone(), run.clone());
        async move { b.wait_for_run(&run, Duration::from_secs(3600)).await }
    });
    // Nothing observable says b's wait has begun; give it a moment, so that the run ends
    // while b waits (the case that was broken), not before.
    tokio::time::sleep(Duration::from_millis(200)).await;
    // A payload that does not end the run: b's wait goes on.
    a.resume_hook(token, json!({"text": "hi"}), None)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!waiting.is_finished(), "b's wait ended before the run did");
    a.resume_hook(token, json!({"text": "/stop"}), None)
        .await
        .unwrap();

    let ended = tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("b's wait did not end when a ended the run")
        .unwrap()
        .unwrap();
    assert_eq!(ended.status, RunStatus::Completed, "{ended:?}");
    assert_eq!(ended.output, Some(json!({"messages": ["hi"]})));
    a.shutdown().await;
    b.shutdown().await;
}

/// A manual webhook's request taken by one node is answered with the response the run sends
/// on another: the node holding the request finds the reply in the run's journal (woken by
/// the other node's commit), not in its own commits.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manual_webhook_response_reaches_a_request_taken_by_another_node() {
    let db = TestDb::new();
    let (a, b) = two_nodes(&db).await;
    let run = b
        .start_run("webhook_echo", json!({"mode": "manual"}))
        .await
        .unwrap();
    let token = hook_token(&b, &run).await;
    let owner = b.get_run(&run).await.unwrap().owner;
    assert_eq!(owner.as_deref(), Some("b"), "the run is live on b");
    let request = WebhookRequest {
        request_id: "req-1".into(),
        method: "POST".into(),
        path: format!("{WEBHOOK_PATH}{token}"),
        query: Default::default(),
        headers: Default::default(),
        body: Some(WebhookBody::Json(json!({"n": 1}))),
    };
    let response = a
        .resume_webhook(&token, &request, Duration::from_secs(20), None)
        .await
        .unwrap();
    assert_eq!(
        response,
        Some(WebhookResponse::json(200, json!({"echo": {"n": 1}})))
    );
    assert_eq!(
        output(&b, &run).await,
        json!({"method": "POST", "body": {"n": 1}})
    );
    a.shutdown().await;
    b.shutdown().await;
}

/// A payload sent through a node that does not hold the run is left to the node that does
/// (it hears of it from the store): the receiving node does not load the run, which would
/// only have its claim refused by the holder's live lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resume_through_another_node_is_left_to_the_holder() {
    let db = TestDb::new();
    let (a, b) = two_nodes(&db).await;
    let token = "slack_messages:H";
    let run = a
        .start_run("slack_bot", json!({"channel": "H"}))
        .await
        .unwrap();
    a.wait_for_hook(token, Duration::from_secs(20))
        .await
        .unwrap();
    assert_eq!(b.live_runs(), 0, "b has nothing live yet");
    b.resume_hook(token, json!({"text": "hi"}), None)
        .await
        .unwrap();
    b.resume_hook(token, json!({"text": "/stop"}), None)
        .await
        .unwrap();
    let ended = b.wait_for_run(&run, Duration::from_secs(30)).await.unwrap();
    assert_eq!(ended.output, Some(json!({"messages": ["hi"]})), "{ended:?}");
    assert_eq!(b.live_runs(), 0, "b has not loaded the run a holds");
    assert_eq!(
        b.metrics().snapshot().live_run_cache_misses,
        0,
        "b never went to load the run a holds"
    );
    a.shutdown().await;
    b.shutdown().await;
}
