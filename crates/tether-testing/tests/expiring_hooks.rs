//! Expiring hooks on the test kit's virtual clock: a hook expires at its journaled time, also
//! when its run was evicted from memory meanwhile (the store's `wake_at` brings it back), and
//! a payload after the expiry is refused as expired.

use std::time::Duration;

use serde_json::{json, Value};
use tether_core::{Ctx, EventBody, HookEvent, HookOptions, Registry, WorkflowError};
use tether_engine::{EngineConfig, EngineError};
use tether_testing::{TestEnv, TestError, START_MS};

const HOUR: Duration = Duration::from_secs(3600);
const HOUR_MS: u64 = 3_600_000;

/// Wait `hours` for a payload on a hook that expires then.
async fn expiring(ctx: Ctx, hours: u64) -> Result<Value, WorkflowError> {
    let options = HookOptions::new().expires_in(HOUR * u32::try_from(hours).unwrap_or(1));
    let mut hook = ctx.create_hook::<Value>(options).await?;
    Ok(match hook.recv_or_expired().await? {
        HookEvent::Payload(p) => p,
        HookEvent::Expired => json!({ "expired": true }),
    })
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.workflow("expiring", expiring);
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hooks_of_evicted_runs_expire_on_time_and_refuse_later_payloads() {
    // One live run at most: starting the next evicts the previous.
    let config = EngineConfig {
        max_live_runs: 1,
        ..EngineConfig::default()
    };
    let env = TestEnv::with_config(registry(), config).await.unwrap();
    let runs = [
        env.start("expiring", 1).await.unwrap(),
        env.start("expiring", 2).await.unwrap(),
        env.start("expiring", 3).await.unwrap(),
    ];
    let token = env.hook_token(&runs[0]).await.unwrap();
    env.advance(4 * HOUR).await.unwrap();
    for (run, hours) in runs.iter().zip([1u64, 2, 3]) {
        assert_eq!(
            env.output::<Value>(run).await.unwrap(),
            json!({ "expired": true })
        );
        let journal = env.journal(run).await.unwrap();
        let expired = journal
            .iter()
            .find(|e| matches!(e.body, EventBody::HookExpired { .. }))
            .expect("hook_expired");
        assert_eq!(
            expired.at_ms,
            START_MS + hours * HOUR_MS,
            "run of {hours} h"
        );
        env.replay(run).await.unwrap();
    }
    match env.resume(&token, json!("late")).await {
        Err(TestError::Engine(EngineError::HookExpired)) => {}
        other => panic!("expected hook_expired, got {other:?}"),
    }
    env.shutdown().await;
}
