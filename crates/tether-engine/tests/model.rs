//! A property test of the engine against a simple model: random sequences of operations —
//! start a run, resume its hook (plain payloads, and payloads that make the run sleep on a
//! timer, run a step, spawn a hook thread, dispose its hook and open a new one), retry a
//! payload with its idempotency key, cancel, let time pass, crash (halt, as abrupt as the
//! process can be from inside; or shut down) and reopen on the same SQLite file — applied to a
//! real [`Engine`] and to the model. After each sequence every run is stopped, and the journal
//! and outputs are checked against the model: each accepted payload delivered exactly once, in
//! order; a refused one (ended run, disposed token) never; each step's result journaled once;
//! each timer fired once; each spawn ran its hook thread once.
//!
//! Bounded: 32 cases of 1 to 4 starts then up to 39 random operations.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{fast_config, TestDb};
use proptest::prelude::*;
use serde::Deserialize;
use serde_json::{json, Value};
use tether_core::{Ctx, EventBody, HookOptions, Registry, RunStatus, SpawnOptions, WorkflowError};
use tether_engine::{Engine, EngineError};

/// Most runs in one sequence.
const MAX_RUNS: usize = 4;

/// Input of the model workflow.
#[derive(Debug, Deserialize)]
struct ModelInput {
    id: usize,
}

fn token(id: usize, generation: u32) -> String {
    format!("model:{id}:{generation}")
}

/// The workflow under test: one hook read as a stream; each payload is recorded, and its `op`
/// makes the run sleep, run a step, spawn a hook thread, swap its hook for a new one, or stop.
async fn model_run(ctx: Ctx, input: ModelInput) -> Result<Value, WorkflowError> {
    let mut generation = 0;
    let options = |g| HookOptions::new().token(token(input.id, g));
    let mut hook = ctx.create_hook::<Value>(options(generation)).await?;
    let mut got = Vec::new();
    let mut steps = 0u32;
    loop {
        let p = hook.recv().await?;
        got.push(p.clone());
        match p["op"].as_str().unwrap_or_default() {
            "sleep" => {
                let ms = p["ms"].as_u64().unwrap_or_default();
                ctx.sleep(Duration::from_millis(ms)).await?;
            }
            "step" => {
                let k = steps;
                steps += 1;
                let _: u32 = ctx
                    .step(&format!("step-{k}"), (), move |()| async move { Ok(k) })
                    .await?;
            }
            "spawn" => {
                ctx.spawn_hook(SpawnOptions::new("model_thread")).await?;
            }
            "dispose" => {
                hook.dispose();
                generation += 1;
                hook = ctx.create_hook::<Value>(options(generation)).await?;
            }
            "stop" => break,
            _ => {}
        }
    }
    Ok(json!({ "got": got }))
}

/// The hook thread: counts its runs in the shared state.
async fn model_thread(ctx: Ctx, _args: Value) -> Result<Value, WorkflowError> {
    Ok(json!(ctx.incr("thread_runs", 1).await?))
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.workflow("model_run", model_run)
        .workflow("model_thread", model_thread);
    r
}

/// One operation of a sequence. Run indexes are taken modulo the runs started so far.
#[derive(Clone, Debug)]
enum Op {
    Start,
    Push(usize),
    Sleep(usize, u64),
    Step(usize),
    Spawn(usize),
    Dispose(usize),
    Retry(usize),
    Cancel(usize),
    Advance(u64),
    Crash { hard: bool },
}

fn op() -> impl Strategy<Value = Op> {
    let run = 0..MAX_RUNS;
    prop_oneof![
        2 => Just(Op::Start),
        6 => run.clone().prop_map(Op::Push),
        2 => (run.clone(), 0..40u64).prop_map(|(r, ms)| Op::Sleep(r, ms)),
        2 => run.clone().prop_map(Op::Step),
        1 => run.clone().prop_map(Op::Spawn),
        1 => run.clone().prop_map(Op::Dispose),
        2 => run.clone().prop_map(Op::Retry),
        1 => run.prop_map(Op::Cancel),
        1 => (0..50u64).prop_map(Op::Advance),
        2 => any::<bool>().prop_map(|hard| Op::Crash { hard }),
    ]
}

/// What the model knows of one run.
#[derive(Debug, Default)]
struct ModelRun {
    run_id: String,
    generation: u32,
    ended: bool,
    /// Payloads accepted, in order, with their idempotency keys.
    accepted: Vec<(String, Value)>,
    sleeps: usize,
    steps: usize,
    spawns: usize,
}

struct World {
    db: TestDb,
    engine: Engine,
    runs: Vec<ModelRun>,
    sent: u64,
    crashes: usize,
}

impl World {
    fn pick(&self, i: usize) -> Option<usize> {
        (!self.runs.is_empty()).then(|| i % self.runs.len())
    }

    /// Send `body` (made unique) to run `i`'s current token; the model says whether it is
    /// accepted.
    async fn send(&mut self, i: usize, mut body: Value) -> bool {
        self.sent += 1;
        body["n"] = json!(self.sent);
        let key = format!("k-{}", self.sent);
        let run = &self.runs[i];
        let answer = self
            .engine
            .resume_hook(&token(i, run.generation), body.clone(), Some(key.clone()))
            .await;
        if run.ended {
            assert_eq!(answer, Err(EngineError::HookNotFound), "run {i} has ended");
            return false;
        }
        assert_eq!(
            answer.as_deref(),
            Ok(run.run_id.as_str()),
            "run {i}: {body}"
        );
        self.runs[i].accepted.push((key, body));
        true
    }

    async fn apply(&mut self, op: &Op) {
        match *op {
            Op::Start => {
                if self.runs.len() == MAX_RUNS {
                    return;
                }
                let id = self.runs.len();
                let run_id = self
                    .engine
                    .start_run("model_run", json!({ "id": id }))
                    .await
                    .expect("start");
                self.engine
                    .wait_for_hook(&token(id, 0), Duration::from_secs(20))
                    .await
                    .expect("the run's first hook");
                self.runs.push(ModelRun {
                    run_id,
                    ..ModelRun::default()
                });
            }
            Op::Push(i) => {
                if let Some(i) = self.pick(i) {
                    self.send(i, json!({ "op": "push" })).await;
                }
            }
            Op::Sleep(i, ms) => {
                if let Some(i) = self.pick(i) {
                    if self.send(i, json!({ "op": "sleep", "ms": ms })).await {
                        self.runs[i].sleeps += 1;
                    }
                }
            }
            Op::Step(i) => {
                if let Some(i) = self.pick(i) {
                    if self.send(i, json!({ "op": "step" })).await {
                        self.runs[i].steps += 1;
                    }
                }
            }
            Op::Spawn(i) => {
                if let Some(i) = self.pick(i) {
                    if self.send(i, json!({ "op": "spawn" })).await {
                        self.runs[i].spawns += 1;
                    }
                }
            }
            Op::Dispose(i) => {
                let Some(i) = self.pick(i) else { return };
                if !self.send(i, json!({ "op": "dispose" })).await {
                    return;
                }
                let old = token(i, self.runs[i].generation);
                self.runs[i].generation += 1;
                let new = token(i, self.runs[i].generation);
                let hook = self
                    .engine
                    .wait_for_hook(&new, Duration::from_secs(20))
                    .await
                    .expect("the new hook");
                assert_eq!(hook.run_id, self.runs[i].run_id);
                // The disposed token is refused from now on.
                let refused = self.engine.resume_hook(&old, json!({}), None).await;
                assert_eq!(refused, Err(EngineError::HookNotFound), "disposed {old}");
            }
            Op::Retry(i) => {
                let Some(i) = self.pick(i) else { return };
                let run = &self.runs[i];
                let Some((key, body)) = run.accepted.last().cloned() else {
                    return;
                };
                if run.ended {
                    return;
                }
                // The token may have changed since (dispose): a retry goes where the first
                // attempt went, so only retry when it has not.
                if body["op"] == "dispose" {
                    return;
                }
                let answer = self
                    .engine
                    .resume_hook(&token(i, run.generation), body, Some(key))
                    .await;
                assert_eq!(answer.as_deref(), Ok(run.run_id.as_str()), "retry");
            }
            Op::Cancel(i) => {
                let Some(i) = self.pick(i) else { return };
                let run_id = self.runs[i].run_id.clone();
                let answer = self.engine.cancel_run(&run_id, Some("model".into())).await;
                if self.runs[i].ended {
                    assert!(
                        matches!(answer, Err(EngineError::RunFinished { .. })),
                        "{answer:?}"
                    );
                    return;
                }
                answer.expect("cancel");
                let run = self
                    .engine
                    .wait_for_run(&run_id, Duration::from_secs(20))
                    .await
                    .expect("wait");
                assert_eq!(run.status, RunStatus::Cancelled, "{run:?}");
                self.runs[i].ended = true;
            }
            Op::Advance(ms) => tokio::time::sleep(Duration::from_millis(ms)).await,
            Op::Crash { hard } => {
                if hard {
                    self.engine.halt().await;
                } else {
                    self.engine.shutdown().await;
                }
                self.crashes += 1;
                self.engine = Engine::start(self.db.store().await, registry(), fast_config());
            }
        }
    }

    /// Stop every open run, wait for all to end, and check each against the model.
    async fn check(&mut self) {
        for i in 0..self.runs.len() {
            if !self.runs[i].ended {
                self.send(i, json!({ "op": "stop" })).await;
            }
        }
        for run in &self.runs {
            check_run(&self.engine, run).await;
        }
    }
}

async fn check_run(engine: &Engine, m: &ModelRun) {
    let id = &m.run_id;
    let record = engine
        .wait_for_run(id, Duration::from_secs(20))
        .await
        .expect("wait");
    assert!(record.status.is_terminal(), "{record:?}");
    let journal = engine.events(id).await.expect("journal");
    let expected: Vec<&Value> = m.accepted.iter().map(|(_, b)| b).collect();
    let received: Vec<&Value> = journal
        .iter()
        .filter_map(|e| match &e.body {
            EventBody::HookReceived { payload, .. } => Some(payload),
            _ => None,
        })
        .collect();
    assert_eq!(
        received, expected,
        "run {id}: accepted payloads, once each, in order"
    );

    let mut fired: HashMap<u32, usize> = HashMap::new();
    let (mut started, mut steps, mut spawns) = (0, Vec::new(), 0);
    for e in &journal {
        match &e.body {
            EventBody::TimerStarted { .. } => started += 1,
            EventBody::TimerFired { cmd } => *fired.entry(*cmd).or_default() += 1,
            EventBody::StepCompleted { name, .. } => steps.push(name.clone()),
            EventBody::HookSpawned { .. } => spawns += 1,
            _ => {}
        }
    }
    assert!(
        fired.values().all(|n| *n == 1),
        "run {id}: a timer fired twice"
    );
    let mut unique = steps.clone();
    unique.dedup();
    assert_eq!(unique, steps, "run {id}: a step's result journaled twice");
    if record.status != RunStatus::Completed {
        assert_eq!(record.status, RunStatus::Cancelled, "{record:?}");
        return;
    }
    let got: Vec<Value> = expected.iter().map(|v| (*v).clone()).collect();
    assert_eq!(
        record.output,
        Some(json!({ "got": got })),
        "run {id}: output"
    );
    assert_eq!(started, m.sleeps, "run {id}: timers started");
    assert_eq!(fired.len(), m.sleeps, "run {id}: timers fired");
    let want: Vec<String> = (0..m.steps).map(|k| format!("step-{k}")).collect();
    assert_eq!(steps, want, "run {id}: steps");
    assert_eq!(spawns, m.spawns, "run {id}: spawns");
    check_threads(engine, id, m.spawns).await;
}

/// Every spawned thread ran once: as many threads as spawns, each ended once, and the count
/// they keep in the shared state equals the spawns.
async fn check_threads(engine: &Engine, run_id: &str, spawns: usize) {
    let store = engine.store().clone();
    let threads = store.list_threads(run_id).await.expect("threads");
    assert_eq!(threads.len(), spawns, "run {run_id}: one thread per spawn");
    for t in &threads {
        let record = engine
            .wait_for_run(&t.run_id, Duration::from_secs(20))
            .await
            .expect("wait thread");
        assert_eq!(record.status, RunStatus::Completed, "{record:?}");
        let journal = store.load_journal(&t.run_id, 0).await.expect("journal");
        let incrs = journal
            .iter()
            .filter(|e| matches!(e.body, EventBody::StateIncr { .. }))
            .count();
        assert_eq!(incrs, 1, "thread {}: {journal:?}", t.run_id);
    }
    let state = store
        .get_state(run_id)
        .await
        .expect("state")
        .unwrap_or_default();
    let runs = state
        .get("thread_runs")
        .and_then(Value::as_u64)
        .unwrap_or(0);
    assert_eq!(runs as usize, spawns, "run {run_id}: thread runs");
}

async fn run_case(ops: Vec<Op>) -> (usize, u64, usize) {
    let db = TestDb::new();
    let engine = Engine::start(db.store().await, registry(), fast_config());
    let mut world = World {
        db,
        engine,
        runs: Vec::new(),
        sent: 0,
        crashes: 0,
    };
    for op in &ops {
        world.apply(op).await;
    }
    world.check().await;
    world.engine.shutdown().await;
    (world.runs.len(), world.sent, world.crashes)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 32,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn engine_keeps_its_promises_under_random_interleavings(
        starts in 1..=MAX_RUNS,
        rest in prop::collection::vec(op(), 1..40)
    ) {
        let ops: Vec<Op> = std::iter::repeat_n(Op::Start, starts).chain(rest).collect();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let n = ops.len();
        let (runs, sent, crashes) = rt.block_on(run_case(ops));
        prop_assert!(runs >= starts && runs <= MAX_RUNS);
        eprintln!("case: {n} ops, {runs} runs, {sent} payloads sent, {crashes} crashes");
    }
}
