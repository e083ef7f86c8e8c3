//! The workflow API's second edition: one moment for issuing commands (when the `ctx` method
//! is called), hook definitions found by a stable name (and Tether 0.1's type-name key),
//! `next`/`recv` on hooks, steps that take their input, errors that are `std::error::Error`.
//! Each primitive fresh, replayed to completion and replayed to its suspension (the trio).

mod harness;

use std::error::Error as _;

use harness::{assert_trio, workflow};
use serde_json::{json, Value};
use tether_core::{
    define_hook, join, Ctx, EventBody, HookOptions, Registry, RegistryError, StepError,
    StepResultExt, WorkflowError, WorkflowResultExt,
};

/// The kinds of the journal's command records, in order.
fn kinds(journal: &[tether_core::Event]) -> Vec<&'static str> {
    journal.iter().map(|e| e.body.kind()).collect()
}

#[test]
fn state_commands_are_issued_when_called_not_when_polled() {
    // `join` polls the step first's future last: the journal must still put `set` first.
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let set = ctx.set("k", &1);
        let step = ctx.step("after", (), |()| async { Ok(2u32) });
        let (stepped, set) = join(step, set).await;
        set?;
        let n = stepped?;
        let (got, incr) = join(ctx.get::<u32>("k"), ctx.incr("n", 5)).await;
        let deleted = ctx.delete("k").await?;
        Ok(json!({ "n": n, "got": got?, "incr": incr?, "deleted": deleted }))
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    let order: Vec<_> = kinds(sim.journal())
        .into_iter()
        .filter(|k| *k != "run_started" && *k != "run_completed")
        .collect();
    assert_eq!(
        order,
        [
            "state_set",
            "step_completed",
            "state_get",
            "state_incr",
            "state_delete"
        ]
    );
}

#[test]
fn a_webhook_is_created_when_called() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let webhook = ctx.create_webhook(tether_core::WebhookOptions::default());
        let step = ctx.step("after", (), |()| async { Ok(1u32) });
        let (n, webhook) = join(step, webhook).await;
        webhook?.dispose();
        n
    });
    let sim = assert_trio(&wf, Value::Null, |_| {});
    let created = sim
        .journal()
        .iter()
        .position(|e| matches!(e.body, EventBody::HookCreated { .. }));
    let stepped = sim
        .journal()
        .iter()
        .position(|e| matches!(e.body, EventBody::StepCompleted { .. }));
    assert!(created < stepped, "{:?}", kinds(sim.journal()));
}

#[test]
fn a_hook_reads_like_the_seed_next_for_await_and_recv_once() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let mut hook = ctx
            .create_hook::<Value>(HookOptions::new().token("chat"))
            .await?;
        let first = hook.recv().await?;
        let mut rest = Vec::new();
        while let Some(p) = hook.next().await {
            let p = p?;
            if p == json!("stop") {
                break;
            }
            rest.push(p);
        }
        Ok(json!({ "first": first, "rest": rest }))
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        for p in [json!(1), json!(2), json!(3), json!("stop")] {
            sim.resume_token("chat", p).expect("resume");
            sim.settle();
        }
    });
    assert_eq!(
        Some(sim.output()),
        Some(json!({ "first": 1, "rest": [2, 3] }))
    );
}

#[test]
fn a_step_gets_its_input_for_each_attempt() {
    let wf = workflow(|ctx: Ctx, name: String| async move {
        let greeting: String = ctx
            .step(
                "greet",
                name,
                |name| async move { Ok(format!("hello {name}")) },
            )
            .await?;
        Ok(greeting)
    });
    let sim = assert_trio(&wf, json!("ada"), |_| {});
    assert_eq!(Some(sim.output()), Some(json!("hello ada")));
}

#[derive(Debug, serde::Deserialize)]
#[allow(dead_code)]
struct Order {
    sku: String,
}

#[test]
fn a_definition_is_found_by_its_name_its_aliases_and_its_type_name() {
    let def = define_hook::<Order>("orders.new").alias("orders.v0");
    let mut registry = Registry::new();
    registry.hook(&def);
    registry.check().expect("no duplicates");
    for key in ["orders.new", "orders.v0", std::any::type_name::<Order>()] {
        let check = registry
            .hook_validator(key)
            .unwrap_or_else(|| panic!("no definition under {key}"));
        assert!(check(&json!({ "sku": "x" })).is_ok(), "{key}");
        assert!(check(&json!({ "nope": 1 })).is_err(), "{key}");
    }
    assert_eq!(registry.hook_names(), ["orders.new"]);

    // Two definitions of one payload type share its type-name alias: not a duplicate.
    registry.hook(&define_hook::<Order>("orders.other"));
    registry.check().expect("an alias is never a duplicate");
    // A name registered twice is.
    registry.hook(&define_hook::<Order>("orders.new"));
    assert_eq!(
        registry.check(),
        Err(RegistryError::DuplicateHook("orders.new".into()))
    );
}

#[test]
fn errors_are_std_errors_with_their_source() {
    let parse: Result<u32, _> = "x".parse::<u32>();
    let e: WorkflowError = parse.clone().or_fail_with("bad_number").unwrap_err();
    assert_eq!(e.code(), "bad_number");
    assert!(e.source().is_some(), "the parse error is kept");
    let boxed: Box<dyn std::error::Error> = Box::new(e);
    assert!(boxed.to_string().contains("invalid digit"));

    let s: StepError = parse.clone().retryable().unwrap_err();
    assert!(!s.is_fatal());
    assert!(s.source().is_some());
    let s: StepError = parse.fatal().unwrap_err();
    assert!(s.is_fatal());

    // `?` still works for the errors a workflow or a step meets itself.
    fn decode() -> Result<Value, WorkflowError> {
        Ok(serde_json::from_str("{")?)
    }
    assert_eq!(decode().unwrap_err().code(), "decode_error");
    fn io() -> Result<(), StepError> {
        Err(std::io::Error::other("disk"))?
    }
    assert!(io().unwrap_err().source().is_some());
}

#[test]
fn nothing_issued_after_a_cancel_request_is_written() {
    let wf = workflow(|ctx: Ctx, _: Value| async move {
        let first = ctx.sleep(std::time::Duration::from_secs(60)).await;
        // Everything below comes after the cancel request: refused, and never journaled.
        let nap = ctx.sleep(std::time::Duration::from_secs(1)).await;
        let hook = ctx
            .create_hook::<Value>(HookOptions::new().token("late"))
            .await;
        let set = ctx.set("late", &true).await;
        let all_cancelled = [first.err(), nap.err(), hook.err(), set.err()]
            .iter()
            .all(|e| e.as_ref().is_some_and(|e| e.is_cancelled()));
        Ok(all_cancelled)
    });
    let sim = assert_trio(&wf, Value::Null, |sim| {
        sim.settle();
        sim.cancel(Some("stop"));
    });
    assert_eq!(sim.output(), json!(true));
    let after: Vec<_> = kinds(sim.journal())
        .into_iter()
        .skip_while(|k| *k != "cancel_requested")
        .collect();
    assert_eq!(
        after,
        ["cancel_requested", "run_completed"],
        "{:?}",
        kinds(sim.journal())
    );
}
