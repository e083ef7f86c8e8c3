//! `enrich` and `enrich_hook`: a hook thread working inside a run's namespace (the HotMesh
//! `workflow.hook` model). The run sets `name` in its shared state and `exec_hook`s
//! `enrich_hook`, which reads `name`, writes `greeting`, counts itself in `hook_runs` and
//! signals the greeting back. With `"wait": true` the run then also waits for one payload on a
//! token hook, so an outside client can spawn more `enrich_hook` threads into it meanwhile
//! (`POST /v1/runs/{id}/hooks`).
//!
//! `enrich` input `{"name": string, "wait": bool?}`; output
//! `{"signal": payload signalled back, "state": the whole shared state at the end}`.
//! `enrich_hook` input: args, optionally with `signal_id`.

use serde::Deserialize;
use serde_json::{json, Map, Value};
use tether::{Ctx, HookOptions, SpawnOptions, WorkflowError};

/// Input of `enrich`.
#[derive(Debug, Deserialize)]
pub struct EnrichInput {
    /// The name to greet.
    pub name: String,
    /// Wait for one payload on a token hook before finishing.
    #[serde(default)]
    pub wait: bool,
}

/// The keys `enrich` and `enrich_hook` share.
const KEYS: [&str; 3] = ["name", "greeting", "hook_runs"];

/// The main workflow.
pub async fn enrich(ctx: Ctx, input: EnrichInput) -> Result<Value, WorkflowError> {
    ctx.set("name", &input.name).await?;
    let signal: Value = ctx
        .exec_hook(SpawnOptions::new("enrich_hook").args(json!({})))
        .await?;
    if input.wait {
        ctx.create_hook::<Value>(HookOptions::new()).await?.await?;
    }
    let mut state = Map::new();
    for key in KEYS {
        if let Some(v) = ctx.get::<Value>(key).await? {
            state.insert(key.to_string(), v);
        }
    }
    Ok(json!({ "signal": signal, "state": state }))
}

/// Arguments of `enrich_hook`.
#[derive(Debug, Default, Deserialize)]
pub struct EnrichHookArgs {
    /// Where to signal the greeting, if anywhere.
    #[serde(default)]
    pub signal_id: Option<String>,
}

/// The hook function.
pub async fn enrich_hook(ctx: Ctx, args: EnrichHookArgs) -> Result<Value, WorkflowError> {
    let name: String = ctx.get("name").await?.unwrap_or_default();
    let greeting = format!("hello {name}");
    ctx.set("greeting", &greeting).await?;
    let runs = ctx.incr("hook_runs", 1).await?;
    if let Some(signal_id) = args.signal_id.or_else(|| ctx.exec_signal_id()) {
        ctx.signal(&signal_id, &json!({ "greeting": greeting }))
            .await?;
    }
    Ok(json!({ "greeting": greeting, "hook_runs": runs }))
}
