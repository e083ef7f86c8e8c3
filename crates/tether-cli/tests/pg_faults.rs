//! PostgreSQL faults under load, against the real `tether` binary: Tether's connections
//! killed over and over (`pg_terminate_backend`), and the database unreachable for a while (a
//! TCP proxy in the test, between Tether and PostgreSQL, cut and restored). Tether answers
//! `503 storage_unavailable` with a message meanwhile (never a panic or a 500), reconnects by
//! itself, and loses nothing: every stream ends with exactly its payloads, in order.
//!
//! Needs `TETHER_TEST_POSTGRES`; without it the tests are ignored, except under CI where they
//! fail (the rule: `tether-test-env`).

mod common;
mod faults_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use faults_support::*;
use serde_json::json;
use tokio::net::{TcpListener, TcpStream};

/// Runs fed in each test.
const RUNS: usize = 8;
/// Payloads per run.
const PAYLOADS: u64 = 20;
/// Concurrent senders.
const SENDERS: usize = 4;

/// `url` with `application_name=name` added to its query.
fn with_app_name(url: &str, name: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}application_name={name}")
}

/// Every error answer the senders saw must be a clear `503 storage_unavailable` with a
/// message; returns how many there were.
fn assert_clear_errors(tally: &Tally) -> usize {
    tally.assert_only_errors(503, "storage_unavailable")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn connections_killed_under_load() {
    let url = postgres_url();
    let mut schema = PgSchema::new(&url);
    // Tether's connections (pool and LISTEN) carry an application_name of this test's own.
    let app = format!("tether_{}", schema.name);
    schema.url = with_app_name(&url, &app);
    let server = schema.node(&[]);
    let streams = start_streams(&server.client, RUNS).await;

    let (admin, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .expect("connect as admin");
    tokio::spawn(connection);
    let tally = Arc::new(Tally::default());
    let senders = tokio::spawn(send_streams(
        vec![server.client.clone()],
        streams.clone(),
        (PAYLOADS, SENDERS),
        tally.clone(),
    ));
    // Every tenth of the load: terminate every connection Tether holds.
    let total = RUNS as u64 * PAYLOADS;
    let mut terminated = 0i64;
    for round in 1..10u64 {
        tally.wait_answered(total * round / 10).await;
        let row = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&app],
            )
            .await
            .expect("terminate Tether's connections");
        terminated += row.get::<_, i64>(0);
    }
    senders.await.expect("senders");
    assert!(
        terminated > 0,
        "no connection of Tether's was found to kill"
    );
    for s in &streams {
        assert_stream(&server.client, &s.run_id, PAYLOADS).await;
    }
    let errors = assert_clear_errors(&tally);
    // Still serving: a new run goes all the way.
    let run_id = server
        .client
        .start_run("approval", &json!({"order_id": "after"}))
        .await
        .expect("start after the faults");
    let token = hooks_of(&server.client, &run_id).await[0].token.clone();
    let decision = json!({"approved": true, "comment": "ok"});
    server
        .client
        .resume_hook(&token, &decision, None)
        .await
        .expect("resume after the faults");
    assert_eq!(
        finished(&server.client, &run_id).await.output,
        Some(decision)
    );
    eprintln!(
        "{terminated} connections terminated over 9 rounds; {} retries, {errors} error answers \
         (all 503 storage_unavailable)",
        tally.retries.load(Ordering::SeqCst)
    );
}

/// A TCP proxy from a local port to PostgreSQL that can be cut (every connection dropped, new
/// ones closed at once) and restored.
struct Proxy {
    port: u16,
    cut: Arc<AtomicBool>,
    /// Bumped on each cut: connections of an older generation end.
    generation: tokio::sync::watch::Sender<u64>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let cut = Arc::new(AtomicBool::new(false));
        let (generation, _) = tokio::sync::watch::channel(0u64);
        let flag = cut.clone();
        let gen_rx = generation.subscribe();
        tokio::spawn(async move {
            while let Ok((inbound, _)) = listener.accept().await {
                if flag.load(Ordering::SeqCst) {
                    drop(inbound); // unreachable: closed at once
                    continue;
                }
                let upstream = upstream.clone();
                let mut gen_rx = gen_rx.clone();
                let born = *gen_rx.borrow_and_update();
                tokio::spawn(async move {
                    let Ok(outbound) = TcpStream::connect(&upstream).await else {
                        return;
                    };
                    let (mut a, mut b) = (inbound, outbound);
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut a, &mut b) => {}
                        _ = gen_rx.wait_for(|g| *g != born) => {}
                    }
                });
            }
        });
        Proxy {
            port,
            cut,
            generation,
        }
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

/// `postgres://user@HOST:PORT/db?..` → (`HOST:PORT`, the URL with `127.0.0.1:port` instead).
fn through(url: &str, port: u16) -> (String, String) {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    let host_start = url[after_scheme..]
        .find('@')
        .map_or(after_scheme, |i| after_scheme + i + 1);
    let host_end = url[host_start..]
        .find(['/', '?'])
        .map_or(url.len(), |i| host_start + i);
    let mut upstream = url[host_start..host_end].to_string();
    if !upstream.contains(':') {
        upstream.push_str(":5432");
    }
    let proxied = format!("{}127.0.0.1:{port}{}", &url[..host_start], &url[host_end..]);
    (upstream, proxied)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
async fn database_briefly_unreachable() {
    let url = postgres_url();
    let mut schema = PgSchema::new(&url);
    let (upstream, _) = through(&url, 0);
    let proxy = Proxy::start(upstream).await;
    let (_, proxied) = through(&url, proxy.port);
    schema.url = proxied;
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
    for round in 1..=2u64 {
        tally.wait_answered(total * round / 3).await;
        proxy.cut();
        // While it is cut, a request that needs the database gets a clear 503 (a resume of
        // a payload already accepted stores nothing new, but needs the database too). A
        // pooled connection may serve a request or two before its end is noticed.
        let s = &streams[0];
        let refused = poll("a resume refused while cut", || async {
            c.resume_hook(&s.token, &payload(1, PAYLOADS), Some("p-1"))
                .await
                .err()
        })
        .await;
        match refused {
            tether_client::ClientError::Api {
                status,
                code,
                message,
            } => {
                assert_eq!(status, 503, "{code}: {message}");
                assert_eq!(code, "storage_unavailable", "{message}");
                assert!(!message.trim().is_empty());
                eprintln!("while cut: {status} {code}: {message}");
            }
            other => panic!("expected a 503 while the database is unreachable: {other:?}"),
        }
        let read = poll("a read refused while cut", || async {
            c.get_run(&s.run_id).await.err()
        })
        .await;
        assert_eq!(
            read.status(),
            Some(503),
            "reading a run while cut: {read:?}"
        );
        assert_eq!(read.code(), Some("storage_unavailable"), "{read:?}");
        // Unreachable for a moment, under load (the senders keep retrying).
        tokio::time::sleep(Duration::from_millis(700)).await;
        proxy.restore();
    }
    senders.await.expect("senders");
    for s in &streams {
        assert_stream(&c, &s.run_id, PAYLOADS).await;
    }
    let errors = assert_clear_errors(&tally);
    let run_id = c.start_run("steps", &json!({"n": 3})).await.expect("start");
    assert_eq!(
        finished(&c, &run_id).await.output,
        Some(json!({"steps": 3}))
    );
    eprintln!(
        "cut twice under load; {} retries, {errors} error answers (all 503 storage_unavailable)",
        tally.retries.load(Ordering::SeqCst)
    );
    drop(server);
    // Drop the schema over a direct connection, not through the proxy.
    schema.url = url;
}
