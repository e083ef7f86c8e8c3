//! Helpers of the fault tests (crash points, kill storms, PostgreSQL faults): senders that
//! retry a payload with its `Idempotency-Key` until it is answered (through one node or
//! several), fixed ports so that a restarted server is found at the same address, and the
//! checks of the promises (every accepted payload delivered once, in order).
#![allow(dead_code)]

use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tether_client::{Client, ClientError};

use crate::common::{finished, of_type, Server, PATIENCE};

/// A port free on 127.0.0.1 now (the OS picks it; it is released at once for the server).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// `--addr 127.0.0.1:PORT`.
pub fn addr(port: u16) -> String {
    format!("127.0.0.1:{port}")
}

/// Payload `k` of a stream of `last` (the last one says `done`, which ends `collect`).
pub fn payload(k: u64, last: u64) -> Value {
    if k == last {
        json!({"i": k, "done": true})
    } else {
        json!({"i": k})
    }
}

/// Whether a failed request may be sent again: no answer at all (the server is down or was
/// killed mid-request), or a server-side error (storage briefly unavailable).
pub fn retryable(e: &ClientError) -> bool {
    match e {
        ClientError::Transport(_) => true,
        ClientError::Api { status, .. } => *status >= 500,
        _ => false,
    }
}

/// Send payload `k` of `last` to `token` with key `p-{k}` until one node answers it: first
/// through `clients[first % n]`, then, after each failure that may be retried, through the
/// next node. Panics on any other error or after [`PATIENCE`]. Failed attempts and the error
/// answers are counted on `tally`.
pub async fn deliver(
    clients: &[Client],
    first: usize,
    token: &str,
    run_id: &str,
    (k, last): (u64, u64),
    tally: &Tally,
) {
    let deadline = Instant::now() + PATIENCE;
    let key = format!("p-{k}");
    let body = payload(k, last);
    let mut failed = 0usize;
    loop {
        let client = &clients[(first + failed) % clients.len()];
        match client.resume_hook(token, &body, Some(&key)).await {
            Ok(id) => {
                assert_eq!(id, run_id, "payload {k} answered for another run");
                return;
            }
            Err(e) if retryable(&e) => {
                if let ClientError::Api {
                    status,
                    code,
                    message,
                } = &e
                {
                    let seen = (*status, code.clone(), message.clone());
                    tally.api_errors.lock().expect("tally lock").push(seen);
                }
                failed += 1;
                tally.retries.fetch_add(1, Ordering::SeqCst);
                assert!(
                    Instant::now() < deadline,
                    "payload {k} of run {run_id} never answered: {e:?}"
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("payload {k} of run {run_id}: {e:?}"),
        }
    }
}

/// One `collect` run and its hook's token.
#[derive(Clone, Debug)]
pub struct Stream {
    /// The run.
    pub run_id: String,
    /// Its hook's token.
    pub token: String,
}

/// What the senders saw: payloads answered, failed attempts, and the error answers (status,
/// code, message) servers gave to attempts that were then retried.
#[derive(Debug, Default)]
pub struct Tally {
    /// Payloads answered.
    pub answered: AtomicU64,
    /// Attempts that failed and were retried.
    pub retries: AtomicU64,
    /// Error answers from a server (not transport failures).
    pub api_errors: std::sync::Mutex<Vec<(u16, String, String)>>,
}

impl Tally {
    /// Payloads answered so far.
    pub fn answered(&self) -> u64 {
        self.answered.load(Ordering::SeqCst)
    }

    /// Wait until at least `n` payloads were answered (at most [`PATIENCE`]).
    pub async fn wait_answered(&self, n: u64) {
        let deadline = Instant::now() + PATIENCE;
        while self.answered() < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} payloads answered"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }

    /// The error answers seen so far.
    pub fn api_errors(&self) -> Vec<(u16, String, String)> {
        self.api_errors.lock().expect("tally lock").clone()
    }

    /// Every error answer seen was `status` `code` with a message; how many there were.
    pub fn assert_only_errors(&self, status: u16, code: &str) -> usize {
        let errors = self.api_errors();
        for (s, c, message) in &errors {
            assert_eq!((*s, c.as_str()), (status, code), "{message}");
            assert!(!message.trim().is_empty(), "an error without a message");
        }
        errors.len()
    }
}

/// Wait (at most twice [`PATIENCE`]) for `senders` to finish, then check that every stream
/// holds exactly its `last` payloads, in order, each once.
pub async fn finish_streams(
    senders: tokio::task::JoinHandle<()>,
    client: &Client,
    streams: &[Stream],
    last: u64,
) {
    tokio::time::timeout(PATIENCE * 2, senders)
        .await
        .expect("the senders finish once the fault is over")
        .expect("a sender panicked");
    for s in streams {
        assert_stream(client, &s.run_id, last).await;
    }
}

/// Send payloads `1..=last` of each stream from `tasks` concurrent senders; sender `t` owns
/// the streams `i` with `i % tasks == t` and interleaves them (one payload of each in turn),
/// each payload answered before the next of the same stream. Payload `k` of stream `i` goes
/// first through node `i + k`. Counts on `tally`.
pub async fn send_streams(
    clients: Vec<Client>,
    streams: Vec<Stream>,
    (last, tasks): (u64, usize),
    tally: Arc<Tally>,
) {
    let mut senders = tokio::task::JoinSet::new();
    for t in 0..tasks {
        let mine: Vec<(usize, Stream)> = streams
            .iter()
            .cloned()
            .enumerate()
            .filter(|(i, _)| i % tasks == t)
            .collect();
        let clients = clients.clone();
        let tally = tally.clone();
        senders.spawn(async move {
            for k in 1..=last {
                for (i, s) in &mine {
                    let first = i + k as usize;
                    deliver(&clients, first, &s.token, &s.run_id, (k, last), &tally).await;
                    tally.answered.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
    }
    while let Some(r) = senders.join_next().await {
        r.expect("a sender panicked");
    }
}

/// Wait for the server to end by itself with SIGABRT (a crash point was reached).
pub fn assert_aborted(server: &mut Server, point: &str) {
    let status = server.wait_exit();
    assert_eq!(
        status.signal(),
        Some(6),
        "tether should have aborted at crash point {point}; it ended with {status:?}"
    );
}

/// The run ended `completed` with exactly payloads `1..=last`, in order, each journaled once.
pub async fn assert_stream(client: &Client, run_id: &str, last: u64) {
    let run = finished(client, run_id).await;
    assert_eq!(run.status, "completed", "{run:?}");
    let expected: Vec<Value> = (1..=last).map(|k| payload(k, last)).collect();
    assert_eq!(
        run.output,
        Some(json!({ "payloads": expected })),
        "run {run_id}: not exactly its payloads, in order"
    );
    let events = client.events(run_id).await.expect("events");
    assert_eq!(
        of_type(&events, "hook_received").len() as u64,
        last,
        "run {run_id}: each payload journaled once"
    );
}

/// Start `n` `collect` runs through `client` and read their tokens.
pub async fn start_streams(client: &Client, n: usize) -> Vec<Stream> {
    let mut streams = Vec::with_capacity(n);
    for _ in 0..n {
        let run_id = client
            .start_run("collect", &json!({}))
            .await
            .expect("start collect");
        let token = crate::common::hooks_of(client, &run_id).await[0]
            .token
            .clone();
        streams.push(Stream { run_id, token });
    }
    streams
}
