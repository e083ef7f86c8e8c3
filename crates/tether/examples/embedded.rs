//! Embed Tether in your own program: a workflow with a step, a hook stream and a timer, on an
//! embedded SQLite file, resumed in-process.
//!
//! Run it with `cargo run -p tether --example embedded`.

use std::sync::Arc;
use std::time::Duration;

use tether::prelude::*;

/// Greets everyone who writes to `greeter:{room}` until someone says "bye".
async fn greeter(ctx: Ctx, room: String) -> Result<Value, WorkflowError> {
    let mut hook = ctx
        .create_hook::<String>(HookOptions::new().token(format!("greeter:{room}")))
        .await?;
    let mut greeted = Vec::new();
    loop {
        let name = hook.recv().await?;
        if name == "bye" {
            break;
        }
        // A step: a side effect, journaled, retried on failure.
        let line: String = ctx
            .step("greet", name.clone(), move |name| async move {
                Ok(format!("hello, {name}"))
            })
            .await?;
        println!("{line}");
        greeted.push(line);
    }
    ctx.sleep(Duration::from_millis(10)).await?;
    Ok(json!({ "greeted": greeted }))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::temp_dir().join(format!("tether-embedded-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let store =
        tether::sqlite::SqliteStore::open(&dir.join("tether.db").display().to_string()).await?;

    let app = App::new().workflow("greeter", greeter);
    let engine = app.engine(Arc::new(store), EngineConfig::default())?;

    let run_id = engine.start_run("greeter", json!("lobby")).await?;
    engine
        .wait_for_hook("greeter:lobby", Duration::from_secs(5))
        .await?;
    for name in ["ada", "grace", "bye"] {
        engine
            .resume_hook("greeter:lobby", json!(name), None)
            .await?;
    }
    let run = engine.wait_for_run(&run_id, Duration::from_secs(5)).await?;
    println!(
        "run {run_id} is {}: {}",
        run.status,
        run.output.unwrap_or_default()
    );
    engine.shutdown().await;
    std::fs::remove_dir_all(&dir)?;
    Ok(())
}
