//! Kill -9 storms: many `collect` runs receive many payloads from concurrent senders that
//! retry with their `Idempotency-Key` until answered, while the server is SIGKILLed and
//! restarted several times at random moments. Every run must end with exactly its payloads,
//! in order, each journaled once. On SQLite (one process restarted on the same file) and on
//! a 2-node PostgreSQL cluster (either node killed, the senders spreading over both).
//!
//! The PostgreSQL storm needs `TETHER_TEST_POSTGRES`; without it it is ignored, except under
//! CI where it fails (the rule: `tether-test-env`).

mod common;
mod faults_support;

use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use common::*;
use faults_support::*;
use tether_store::Store;
use tether_store_sqlite::SqliteStore;

/// Runs in a storm.
const RUNS: usize = 20;
/// Payloads per run.
const PAYLOADS: u64 = 25;
/// Concurrent senders.
const SENDERS: usize = 8;
/// SIGKILLs per storm.
const KILLS: usize = 5;

/// A random number below `n`.
fn random_below(n: u64) -> u64 {
    let mut b = [0u8; 8];
    getrandom::fill(&mut b).expect("random bytes");
    u64::from_le_bytes(b) % n.max(1)
}

/// `KILLS` kill moments: distinct counts of answered payloads, spread over the storm (each in
/// its own slice of the total, at a random place in it), ascending.
fn kill_moments() -> Vec<u64> {
    let total = RUNS as u64 * PAYLOADS;
    let slice = total / (KILLS as u64 + 1);
    (0..KILLS as u64)
        .map(|i| slice * i + 10 + random_below(slice - 10))
        .collect()
}

/// Payloads journaled over all streams in the SQLite file.
async fn kept(db: &Path, streams: &[Stream]) -> u64 {
    let store = SqliteStore::open(db.to_str().expect("utf-8 path"))
        .await
        .expect("open the killed server's database");
    let mut n = 0;
    for s in streams {
        let journal = store.load_journal(&s.run_id, 0).await.expect("journal");
        n += journal
            .iter()
            .filter(|e| e.body.kind() == "hook_received")
            .count() as u64;
    }
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_storm() {
    let (_dir, db) = temp_db();
    let addr = addr(free_port());
    let args = ["--addr", addr.as_str()];
    let mut server = Server::start_with(&db, &args);
    let streams = start_streams(&server.client, RUNS).await;
    let tally = Arc::new(Tally::default());
    let senders = tokio::spawn(send_streams(
        vec![server.client.clone()],
        streams.clone(),
        (PAYLOADS, SENDERS),
        tally.clone(),
    ));
    let moments = kill_moments();
    for &at in &moments {
        tally.wait_answered(at).await;
        tokio::time::sleep(Duration::from_millis(random_below(20))).await;
        server.kill();
        let answered_now = tally.answered();
        let kept_now = kept(&db, &streams).await;
        assert!(
            kept_now >= answered_now,
            "{answered_now} payloads answered before the kill, {kept_now} kept"
        );
        eprintln!("killed at {answered_now} answered ({kept_now} kept)");
        server = Server::start_with(&db, &args);
    }
    senders.await.expect("senders");
    let retries = tally.retries.load(Ordering::SeqCst);
    for s in &streams {
        assert_stream(&server.client, &s.run_id, PAYLOADS).await;
    }
    eprintln!(
        "SQLite storm: {RUNS} runs x {PAYLOADS} payloads, {SENDERS} senders, kills at \
         {moments:?} answered; {retries} failed attempts retried"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn postgres_two_node_storm() {
    let url = postgres_url();
    let schema = PgSchema::new(&url);
    let addrs = [addr(free_port()), addr(free_port())];
    let args = |i: usize| -> Vec<String> {
        [
            "--addr",
            addrs[i].as_str(),
            "--node-id",
            ["storm-1", "storm-2"][i],
            "--lease-ms",
            "2000",
            "--poll-interval-ms",
            "100",
        ]
        .map(String::from)
        .to_vec()
    };
    let node = |i: usize| {
        let a = args(i);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        schema.node(&a)
    };
    let mut nodes = [node(0), node(1)];
    let clients = vec![nodes[0].client.clone(), nodes[1].client.clone()];
    // Half of the runs start on each node.
    let mut streams = start_streams(&clients[0], RUNS / 2).await;
    streams.extend(start_streams(&clients[1], RUNS - RUNS / 2).await);
    let tally = Arc::new(Tally::default());
    let senders = tokio::spawn(send_streams(
        clients.clone(),
        streams.clone(),
        (PAYLOADS, SENDERS),
        tally.clone(),
    ));
    let moments = kill_moments();
    let mut victims = Vec::new();
    for &at in &moments {
        tally.wait_answered(at).await;
        tokio::time::sleep(Duration::from_millis(random_below(20))).await;
        let victim = random_below(2) as usize;
        nodes[victim].kill();
        victims.push(victim + 1);
        eprintln!(
            "killed node {} at {} answered",
            victim + 1,
            tally.answered()
        );
        nodes[victim] = node(victim);
    }
    senders.await.expect("senders");
    let retries = tally.retries.load(Ordering::SeqCst);
    for (i, s) in streams.iter().enumerate() {
        assert_stream(&clients[i % 2], &s.run_id, PAYLOADS).await;
    }
    eprintln!(
        "PostgreSQL storm: {RUNS} runs x {PAYLOADS} payloads over 2 nodes, {SENDERS} senders, \
         kills of nodes {victims:?} at {moments:?} answered; {retries} failed attempts retried"
    );
    drop(nodes);
}
