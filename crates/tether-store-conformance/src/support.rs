//! Helpers shared by the conformance cases: building ops, and unwrapping results with clear
//! panic messages.

use serde_json::{json, Value};
use tether_core::event::{CommandIndex, Event, EventBody, RunStatus, HOOK_KIND_TOKEN};

use tether_store::{
    HookRecord, OpOutcome, OpRejected, OpResult, RunRecord, Store, WakeAt, WriteOp,
};

/// A fixed base time (ms since the Unix epoch); cases stamp their ops relative to it.
pub(crate) const T0: u64 = 1_700_000_000_000;

/// Commit `ops`, panicking on a backend error or a result count that does not match.
pub(crate) async fn commit(store: &dyn Store, ops: Vec<WriteOp>) -> Vec<OpResult> {
    let n = ops.len();
    let results = match store.commit(ops).await {
        Ok(results) => results,
        Err(e) => panic!("commit of {n} op(s) failed with a backend error: {e}"),
    };
    assert_eq!(
        results.len(),
        n,
        "commit must return exactly one result per op, in order"
    );
    results
}

/// Commit a fixed number of ops and return their results as an array.
pub(crate) async fn commit_all<const N: usize>(
    store: &dyn Store,
    ops: [WriteOp; N],
) -> [OpResult; N] {
    match <[OpResult; N]>::try_from(commit(store, Vec::from(ops)).await) {
        Ok(results) => results,
        Err(results) => panic!("expected {N} results, got {}", results.len()),
    }
}

/// Commit a single op and return its result.
pub(crate) async fn commit_one(store: &dyn Store, op: WriteOp) -> OpResult {
    match commit(store, vec![op]).await.into_iter().next() {
        Some(result) => result,
        None => panic!("commit of one op returned no result"),
    }
}

/// `CreateRun` op.
pub(crate) fn create_op(run_id: &str, workflow: &str, input: Value, at_ms: u64) -> WriteOp {
    WriteOp::CreateRun {
        queue: tether_store::DEFAULT_QUEUE.into(),
        run_id: run_id.to_owned(),
        workflow: workflow.to_owned(),
        input,
        at_ms,
        claim: None,
    }
}

/// `Append` op that leaves status and wake-up time alone.
pub(crate) fn append_op(run_id: &str, events: Vec<EventBody>, at_ms: u64) -> WriteOp {
    WriteOp::Append {
        run_id: run_id.to_owned(),
        events,
        status: None,
        wake_at: WakeAt::Keep,
        fence: None,
        at_ms,
    }
}

/// `Append` op without entries that only changes status and / or wake-up time.
pub(crate) fn status_op(
    run_id: &str,
    status: Option<RunStatus>,
    wake_at: WakeAt,
    at_ms: u64,
) -> WriteOp {
    WriteOp::Append {
        run_id: run_id.to_owned(),
        events: Vec::new(),
        status,
        wake_at,
        fence: None,
        at_ms,
    }
}

/// `Resume` op without `expect`.
pub(crate) fn resume_op(token: &str, payload: Value, key: Option<&str>, at_ms: u64) -> WriteOp {
    WriteOp::Resume {
        token: token.to_owned(),
        payload,
        idempotency_key: key.map(str::to_owned),
        expect: None,
        claim: None,
        at_ms,
    }
}

/// A plain `HookCreated` entry for `token` at command `cmd`.
pub(crate) fn hook_created(cmd: CommandIndex, token: &str) -> EventBody {
    EventBody::HookCreated {
        cmd,
        token: token.to_owned(),
        kind: HOOK_KIND_TOKEN.to_owned(),
        metadata: json!({ "cmd": cmd }),
        definition: None,
        generated: false,
        expires_at_ms: None,
        reserve_ms: None,
    }
}

/// A `HookCreated` entry for `token` at command `cmd` that expires at `expires_at_ms` and
/// reserves its token for `reserve_ms` once it lets it go.
pub(crate) fn hook_created_with(
    cmd: CommandIndex,
    token: &str,
    expires_at_ms: Option<u64>,
    reserve_ms: Option<u64>,
) -> EventBody {
    EventBody::HookCreated {
        cmd,
        token: token.to_owned(),
        kind: HOOK_KIND_TOKEN.to_owned(),
        metadata: json!({ "cmd": cmd }),
        definition: None,
        generated: false,
        expires_at_ms,
        reserve_ms,
    }
}

/// A `HookDisposed` entry.
pub(crate) fn hook_disposed(cmd: CommandIndex, hook_cmd: CommandIndex, token: &str) -> EventBody {
    EventBody::HookDisposed {
        cmd,
        hook_cmd,
        token: token.to_owned(),
    }
}

/// Create a run (input `{"run": run_id}`), asserting it was accepted.
pub(crate) async fn create_run(store: &dyn Store, run_id: &str, workflow: &str, at_ms: u64) {
    let result = commit_one(
        store,
        create_op(run_id, workflow, json!({ "run": run_id }), at_ms),
    )
    .await;
    let (id, events) = appended(result, &format!("CreateRun {run_id}"));
    assert_eq!(
        id, run_id,
        "CreateRun must answer with the run id it created"
    );
    assert_eq!(events.len(), 1, "CreateRun must write exactly one entry");
}

/// Append entries to a run, asserting the op was accepted; returns the entries as written.
pub(crate) async fn append(
    store: &dyn Store,
    run_id: &str,
    events: Vec<EventBody>,
    at_ms: u64,
) -> Vec<Event> {
    let n = events.len();
    let result = commit_one(store, append_op(run_id, events, at_ms)).await;
    let (id, written) = appended(result, &format!("Append to {run_id}"));
    assert_eq!(
        id, run_id,
        "Append must answer with the run id it appended to"
    );
    assert_eq!(
        written.len(),
        n,
        "Append must write exactly one entry per given entry"
    );
    written
}

/// Change a run's status and / or wake-up time, asserting the op was accepted.
pub(crate) async fn set_status(
    store: &dyn Store,
    run_id: &str,
    status: Option<RunStatus>,
    wake_at: WakeAt,
    at_ms: u64,
) {
    let result = commit_one(store, status_op(run_id, status, wake_at, at_ms)).await;
    let (_, written) = appended(result, &format!("status-only Append to {run_id}"));
    assert!(
        written.is_empty(),
        "an Append without entries must write no entry, wrote {written:?}"
    );
}

/// The run, which must exist.
pub(crate) async fn get_run(store: &dyn Store, run_id: &str) -> RunRecord {
    match store.get_run(run_id).await {
        Ok(Some(run)) => run,
        Ok(None) => panic!("get_run({run_id:?}) found nothing, expected the run"),
        Err(e) => panic!("get_run({run_id:?}) failed: {e}"),
    }
}

/// Whether a run exists.
pub(crate) async fn run_exists(store: &dyn Store, run_id: &str) -> bool {
    match store.get_run(run_id).await {
        Ok(found) => found.is_some(),
        Err(e) => panic!("get_run({run_id:?}) failed: {e}"),
    }
}

/// The whole journal of a run.
pub(crate) async fn journal(store: &dyn Store, run_id: &str) -> Vec<Event> {
    journal_after(store, run_id, 0).await
}

/// The journal of a run after `after_seq`.
pub(crate) async fn journal_after(store: &dyn Store, run_id: &str, after_seq: u64) -> Vec<Event> {
    match store.load_journal(run_id, after_seq).await {
        Ok(events) => events,
        Err(e) => panic!("load_journal({run_id:?}, {after_seq}) failed: {e}"),
    }
}

/// The active hook holding `token`, if any.
pub(crate) async fn hook(store: &dyn Store, token: &str) -> Option<HookRecord> {
    match store.get_hook(token).await {
        Ok(found) => found,
        Err(e) => panic!("get_hook({token:?}) failed: {e}"),
    }
}

/// The active hooks of a run.
pub(crate) async fn hooks_of(store: &dyn Store, run_id: &str) -> Vec<HookRecord> {
    match store.list_hooks(run_id).await {
        Ok(hooks) => hooks,
        Err(e) => panic!("list_hooks({run_id:?}) failed: {e}"),
    }
}

/// The tokens of a run's active hooks, in the order `list_hooks` gives them.
pub(crate) async fn tokens_of(store: &dyn Store, run_id: &str) -> Vec<String> {
    hooks_of(store, run_id)
        .await
        .into_iter()
        .map(|h| h.token)
        .collect()
}

/// The node id the conformance cases act as.
pub(crate) const NODE: &str = "node-a";

/// Ids of the runs needing work that [`NODE`] may take.
pub(crate) async fn needing_work(store: &dyn Store, now_ms: u64, limit: usize) -> Vec<String> {
    match store.runs_needing_work(now_ms, NODE, None, limit).await {
        Ok(ids) => ids,
        Err(e) => panic!("runs_needing_work({now_ms}, {limit}) failed: {e}"),
    }
}

/// The `Appended` outcome of an accepted op.
#[track_caller]
pub(crate) fn appended(result: OpResult, what: &str) -> (String, Vec<Event>) {
    match result {
        Ok(OpOutcome::Appended { run_id, events }) => (run_id, events),
        other => panic!("{what}: expected Ok(Appended), got {other:?}"),
    }
}

/// The `Resumed` outcome of an accepted `Resume`.
#[track_caller]
pub(crate) fn resumed(result: OpResult, what: &str) -> (String, Option<Event>) {
    match result {
        Ok(OpOutcome::Resumed { run_id, event, .. }) => (run_id, event),
        other => panic!("{what}: expected Ok(Resumed), got {other:?}"),
    }
}

/// The refusal of a refused op.
#[track_caller]
pub(crate) fn rejected(result: OpResult, what: &str) -> OpRejected {
    match result {
        Err(rejection) => rejection,
        Ok(outcome) => {
            panic!("{what}: expected the op to be refused, it was accepted: {outcome:?}")
        }
    }
}

/// The bodies of entries.
pub(crate) fn bodies(events: &[Event]) -> Vec<EventBody> {
    events.iter().map(|e| e.body.clone()).collect()
}

/// The sequence numbers of entries.
pub(crate) fn seqs(events: &[Event]) -> Vec<u64> {
    events.iter().map(|e| e.seq).collect()
}

/// Owned strings from string slices.
pub(crate) fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| (*s).to_owned()).collect()
}
