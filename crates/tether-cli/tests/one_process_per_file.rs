//! One process per SQLite file, with the real binary: a second `tether dev` on a file a live
//! server holds exits at once, naming the file and the rule; `kill -9` of the holder leaves no
//! stale lock; `tether replay` reads the file while the server runs.

mod common;

use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use common::{temp_db, tether, Server, PATIENCE};
use serde_json::json;

/// Run `cmd` to its end (killed after [`PATIENCE`]: a second server that was not refused
/// would otherwise run forever); returns its status, stdout and stderr.
fn run(mut cmd: Command, dir: &Path, name: &str) -> (ExitStatus, String, String) {
    let out_path = dir.join(format!("{name}.stdout"));
    let err_path = dir.join(format!("{name}.stderr"));
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn tether");
    let deadline = Instant::now() + PATIENCE;
    let status = loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "`tether {name}` still running after {PATIENCE:?}; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        std::fs::read_to_string(&out_path).unwrap_or_default(),
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

fn second_dev(db: &Path) -> Command {
    let mut cmd = tether();
    cmd.args(["dev", "--addr", "127.0.0.1:0", "--db"])
        .arg(format!("sqlite://{}", db.display()));
    cmd
}

#[tokio::test]
async fn a_second_server_on_the_same_file_is_refused_and_kill_9_leaves_no_stale_lock() {
    let (dir, db) = temp_db();
    let url = format!("sqlite://{}", db.display());
    let mut first = Server::start_with(&url, &[]);
    let run_id = first
        .client
        .start_run("approval", &json!({"order_id": "o-1"}))
        .await
        .expect("start a run");
    common::hooks_of(&first.client, &run_id).await;

    // A second server on the same file, on another port: refused at once.
    let started = Instant::now();
    let (status, stdout, stderr) = run(second_dev(&db), dir.path(), "second");
    assert!(
        !status.success(),
        "the second server must fail: {status:?}\n{stderr}"
    );
    assert_eq!(status.code(), Some(1), "{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "refused at once, not after a wait: {:?}",
        started.elapsed()
    );
    assert!(
        stderr.contains(&db.display().to_string()),
        "names the file: {stderr}"
    );
    assert!(
        stderr.contains(&format!("pid {}", first.pid())),
        "names the holder: {stderr}"
    );
    assert!(stderr.contains("one process per SQLite file"), "{stderr}");
    assert!(!stdout.contains("listening"), "{stdout}");
    // The first one is unharmed.
    assert_eq!(
        first.client.get_run(&run_id).await.expect("get run").run_id,
        run_id
    );

    // `tether replay` opens the file read-only, without the lock, while the server runs.
    let mut replay = tether();
    replay.args(["replay", "--all", "--db", &url]);
    let (status, stdout, stderr) = run(replay, dir.path(), "replay");
    assert!(
        status.success(),
        "replay while serving: {status:?}\n{stdout}{stderr}"
    );
    assert!(stdout.contains(&run_id), "{stdout}");

    // kill -9: the OS drops the lock with the process; a new server starts on the file.
    first.kill();
    let second = Server::start_with(&url, &[]);
    assert_eq!(
        second
            .client
            .get_run(&run_id)
            .await
            .expect("get run")
            .run_id,
        run_id,
        "the new server serves the killed one's file"
    );
    drop(second);
}
