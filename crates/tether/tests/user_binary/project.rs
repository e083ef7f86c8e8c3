//! The user's crate: written into a temporary folder outside the workspace, built with the
//! workspace's `Cargo.lock` (same dependency versions, no network) and target directory (the
//! dependencies are already built there).

use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace root (`crates/tether/../..`).
fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("workspace root")
}

/// What a user writes: three workflows and the documented one-line `main`.
const MAIN_RS: &str = r#"use serde::Deserialize;
use tether::prelude::*;

#[derive(Deserialize)]
struct Order {
    order_id: String,
}

async fn greet(ctx: Ctx, name: String) -> Result<Value, WorkflowError> {
    let greeting: String = ctx
        .step("greet", name, |name| async move { Ok(format!("hello {name}")) })
        .await?;
    Ok(json!({ "greeting": greeting }))
}

async fn approve(ctx: Ctx, order: Order) -> Result<Value, WorkflowError> {
    // CHANGE HERE
    let hook = ctx
        .create_hook::<Value>(HookOptions::new().token(format!("approve:{}", order.order_id)))
        .await?;
    let decision = hook.await?;
    Ok(json!({ "order_id": order.order_id, "decision": decision }))
}

async fn inbox(ctx: Ctx, _: Value) -> Result<Value, WorkflowError> {
    let mut webhook = ctx.create_webhook(WebhookOptions::default()).await?;
    let request = webhook.recv().await?;
    let body = request.body.as_ref().map_or(Value::Null, |b| b.to_json());
    Ok(json!({ "method": request.method, "body": body }))
}

fn main() -> std::process::ExitCode {
    tether::App::new()
        .workflow("greet", greet)
        .workflow("approve", approve)
        .workflow("inbox", inbox)
        .run()
}
"#;

/// The change that moves a waiting `approve` run's commands: a step before its hook.
const CHANGE: &str = r#"let _audit: u32 = ctx.step("audit", (), |()| async { Ok(1) }).await?;"#;

/// A user's crate in a temporary folder.
pub struct Project {
    dir: tempfile::TempDir,
    target: PathBuf,
    name: String,
}

impl Project {
    /// Write `Cargo.toml`, `Cargo.lock` and `src/main.rs` of a crate (and binary) named
    /// `name`: tests running at once use different names, so that neither overwrites the
    /// other's binary in the shared target directory.
    pub fn create(name: &str) -> Project {
        let dir = tempfile::Builder::new()
            .prefix("tether-user-")
            .tempdir()
            .expect("temp dir");
        let root = workspace();
        let manifest = format!(
            "[package]\nname = {name:?}\nversion = \"0.1.0\"\nedition = \"2021\"\n\n\
             [dependencies]\ntether = {{ path = {:?} }}\n\
             serde = {{ version = \"1\", features = [\"derive\"] }}\n\n[workspace]\n",
            root.join("crates/tether").display().to_string()
        );
        std::fs::write(dir.path().join("Cargo.toml"), manifest).expect("Cargo.toml");
        std::fs::copy(root.join("Cargo.lock"), dir.path().join("Cargo.lock")).expect("Cargo.lock");
        std::fs::create_dir_all(dir.path().join("src")).expect("src");
        let project = Project {
            dir,
            target: std::env::var_os("CARGO_TARGET_DIR")
                .map(PathBuf::from)
                .unwrap_or_else(|| root.join("target")),
            name: name.to_owned(),
        };
        project.write_main(MAIN_RS);
        project
    }

    fn write_main(&self, text: &str) {
        std::fs::write(self.dir.path().join("src/main.rs"), text).expect("main.rs");
    }

    /// Add a step before `approve`'s hook.
    pub fn change_approve(&self) {
        self.write_main(&MAIN_RS.replace("// CHANGE HERE", CHANGE));
    }

    /// Back to the first version.
    pub fn restore_approve(&self) {
        self.write_main(MAIN_RS);
    }

    /// `cargo build` the crate (offline: every dependency is in the workspace's lock file).
    pub fn build(&self) {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let out = Command::new(cargo)
            .args(["build", "--offline", "--quiet"])
            .current_dir(self.dir.path())
            .env("CARGO_TARGET_DIR", &self.target)
            .env_remove("RUSTFLAGS")
            .output()
            .expect("run cargo build");
        assert!(
            out.status.success(),
            "the user's crate does not build:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The built binary.
    pub fn binary(&self) -> PathBuf {
        self.target.join("debug").join(&self.name)
    }

    /// Run the binary to its end: exit code, stdout, stderr.
    pub fn run(&self, args: &[&str]) -> (i32, String, String) {
        let out = super::server::command(&self.binary())
            .args(args)
            .output()
            .expect("run the user's binary");
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}
