//! The seed's `defineHook().resume(token, payload)`: a definition resumes with its own payload
//! type, through an engine in this process or through the HTTP client, and checks the payload
//! before anything is sent.

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tether::prelude::*;
use tether::server::ServerOptions;
use tether::testing::TestEnv;
use tether::{Client, EventBody, TypedResumeError};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Decision {
    approved: bool,
    comment: String,
}

fn decision_hook() -> HookDef<Decision> {
    define_hook::<Decision>("typed.decision").validate(|d| {
        if d.comment.is_empty() {
            Err("a comment is required".into())
        } else {
            Ok(())
        }
    })
}

async fn approval(ctx: Ctx, order: String) -> Result<Decision, WorkflowError> {
    let hook = decision_hook()
        .create(&ctx, HookOptions::new().token(format!("typed:{order}")))
        .await?;
    hook.await
}

fn app() -> App {
    App::new()
        .workflow("approval", approval)
        .hook(&decision_hook())
}

#[tokio::test]
async fn a_definition_resumes_through_the_engine() {
    let env = TestEnv::new(app().registry().clone()).await.expect("env");
    let run = env.start("approval", "o-1").await.expect("start");

    let refused = decision_hook()
        .resume(
            env.engine(),
            "typed:o-1",
            &Decision {
                approved: true,
                comment: String::new(),
            },
        )
        .await
        .expect_err("checked before sending");
    assert!(matches!(refused, TypedResumeError::Invalid(_)), "{refused}");
    env.settle().await.expect("settle");
    assert!(
        !env.journal(&run)
            .await
            .expect("journal")
            .iter()
            .any(|e| matches!(e.body, EventBody::HookReceived { .. })),
        "nothing was sent"
    );

    let decision = Decision {
        approved: true,
        comment: "ok".into(),
    };
    decision_hook()
        .resume(env.engine(), "typed:o-1", &decision)
        .await
        .expect("resume");
    env.settle().await.expect("settle");
    assert_eq!(
        env.output::<Decision>(&run).await.expect("output"),
        decision
    );
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_definition_resumes_through_the_client() {
    let dir = tempfile::tempdir().expect("dir");
    let store = tether::sqlite::SqliteStore::open(&dir.path().join("t.db").display().to_string())
        .await
        .expect("store");
    let engine = app()
        .engine(Arc::new(store), EngineConfig::default())
        .expect("engine");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let router = App::router(&engine, ServerOptions::default());
    let server = tokio::spawn(tether::server::serve(
        listener,
        router,
        std::future::pending(),
    ));
    let client = Client::new(base);

    let run = client
        .start_run("approval", &json!("o-2"))
        .await
        .expect("start");
    let unknown = decision_hook()
        .resume(
            &client,
            "typed:nobody",
            &Decision {
                approved: false,
                comment: "no".into(),
            },
        )
        .await
        .expect_err("unknown token");
    assert!(matches!(unknown, TypedResumeError::Refused(_)), "{unknown}");

    let decision = Decision {
        approved: false,
        comment: "too expensive".into(),
    };
    let resumed = decision_hook()
        .resume(&client, "typed:o-2", &decision)
        .await
        .expect("resume");
    assert_eq!(resumed, run);
    let done = engine
        .wait_for_run(&run, std::time::Duration::from_secs(10))
        .await
        .expect("run");
    assert_eq!(
        done.output,
        Some(serde_json::to_value(&decision).expect("json"))
    );
    engine.shutdown().await;
    server.abort();
}
