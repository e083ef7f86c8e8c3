//! PostgreSQL really restarted under load (issue #17 point 7), against the real `tether`
//! binary: `pg_ctlcluster … restart`, then the server stopped for 5 s (every connection
//! refused) and started again. Callers see `503 storage_unavailable` meanwhile, the node
//! reconnects by itself, and nothing accepted is lost or doubled: senders retrying with their
//! `Idempotency-Key`s end with every stream holding exactly its payloads, in order.
//!
//! Needs `TETHER_TEST_POSTGRES` naming a local cluster this process may restart (root, with
//! `pg_ctlcluster`, as in CI). This test is alone in its binary: nothing else runs while the
//! database is down. Without those it is ignored, saying so (the rule: `tether-test-env`).

mod common;
mod faults_support;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use faults_support::*;

/// Runs fed.
const RUNS: usize = 6;
/// Payloads per run.
const PAYLOADS: u64 = 60;
/// Concurrent senders.
const SENDERS: usize = 3;
/// How long the database stays down in the second fault.
const DOWN: Duration = Duration::from_secs(5);

/// The local cluster (`VERSION NAME`) listening on `port`, from `pg_lsclusters`.
fn cluster_on(port: u16) -> Result<(String, String), String> {
    let out = Command::new("pg_lsclusters")
        .arg("-h")
        .output()
        .map_err(|e| format!("pg_lsclusters: {e}"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cols| cols.len() >= 3 && cols[2] == port.to_string())
        .map(|cols| (cols[0].to_string(), cols[1].to_string()))
        .ok_or_else(|| format!("no local cluster on port {port} in: {text}"))
}

/// `pg_ctlcluster VERSION NAME action -m fast`, which must succeed.
fn pg_ctl(cluster: &(String, String), action: &str) {
    let status = Command::new("pg_ctlcluster")
        .args([cluster.0.as_str(), cluster.1.as_str(), action, "-m", "fast"])
        .status()
        .expect("run pg_ctlcluster");
    assert!(status.success(), "pg_ctlcluster {action}: {status}");
}

/// The port of a `postgres://` URL (5432 when it names none).
fn port_of(url: &str) -> u16 {
    let host = url
        .split('@')
        .next_back()
        .unwrap_or(url)
        .split(['/', '?'])
        .next()
        .unwrap_or("");
    host.rsplit_once(':')
        .and_then(|(_, p)| p.parse().ok())
        .unwrap_or(5432)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[cfg_attr(
    not(all(tether_postgres, tether_root)),
    ignore = "needs PostgreSQL (TETHER_TEST_POSTGRES) on a local cluster and root to restart it"
)]
async fn postgres_restarted_and_down_for_a_while_under_load() {
    let url = postgres_url();
    tether_test_env::require_root("to restart the PostgreSQL cluster with pg_ctlcluster");
    let cluster = cluster_on(port_of(&url)).unwrap_or_else(|why| panic!("{why}"));
    let schema = PgSchema::new(&url);
    let server = schema.node(&["--poll-interval-ms", "100"]);
    let c = server.client.clone();
    let streams = start_streams(&c, RUNS).await;

    let tally = Arc::new(Tally::default());
    let senders = tokio::spawn(send_streams(
        vec![c.clone()],
        streams.clone(),
        (PAYLOADS, SENDERS),
        tally.clone(),
    ));
    let total = RUNS as u64 * PAYLOADS;

    // 1. A restart.
    tally.wait_answered(total / 3).await;
    pg_ctl(&cluster, "restart");
    // 2. Down for a while: every connection refused.
    tally.wait_answered(total / 2).await;
    pg_ctl(&cluster, "stop");
    let refused = poll("a clear answer while the database is down", || async {
        match c.get_run(&streams[0].run_id).await {
            Err(tether_client::ClientError::Api {
                status,
                code,
                message,
            }) => Some((status, code, message)),
            _ => None,
        }
    })
    .await;
    assert_eq!(
        (refused.0, refused.1.as_str()),
        (503, "storage_unavailable"),
        "{}",
        refused.2
    );
    assert!(!refused.2.trim().is_empty(), "the 503 says what happened");
    tokio::time::sleep(DOWN).await;
    pg_ctl(&cluster, "start");

    // The node reconnects by itself; the senders finish; nothing lost or doubled.
    finish_streams(senders, &c, &streams, PAYLOADS).await;
    let refused = tally.assert_only_errors(503, "storage_unavailable");
    eprintln!(
        "restart and {DOWN:?} down: {refused} refused attempts (503), all {total} payloads \
         delivered once"
    );
    drop(server);
    drop(schema);
}
