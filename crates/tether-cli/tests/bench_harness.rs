//! `tether bench` runs every workload once at a tiny size and prints one JSON line with the
//! fields BENCHMARKS.md relies on. This proves the harness works; it never checks a timing
//! (figures come from release builds, see BENCHMARKS.md).

mod common;

use std::process::Output;

use common::*;
use serde_json::Value;

/// Run `tether bench ARGS` and parse its one line of stdout.
fn bench(args: &[&str]) -> Value {
    let Output {
        status,
        stdout,
        stderr,
    } = tether()
        .arg("bench")
        .args(args)
        .output()
        .expect("run tether bench");
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(
        status.success(),
        "tether bench {args:?} failed: {status}\nstdout: {stdout}\nstderr: {}",
        String::from_utf8_lossy(&stderr)
    );
    let lines: Vec<&str> = stdout.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one JSON line expected: {stdout}");
    serde_json::from_str(lines[0]).unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}"))
}

/// A figure that must be present and a finite number, and positive.
fn positive(line: &Value, field: &str) -> f64 {
    let v = line[field]
        .as_f64()
        .unwrap_or_else(|| panic!("{field} missing or not a number in {line}"));
    assert!(v.is_finite() && v > 0.0, "{field} = {v} in {line}");
    v
}

fn common_fields(line: &Value, workload: &str, db: &str, mode: &str, n: u64) {
    assert_eq!(line["workload"], workload, "{line}");
    assert_eq!(line["db"], db, "{line}");
    assert_eq!(line["mode"], mode, "{line}");
    assert_eq!(line["n"], n, "{line}");
}

#[test]
fn resume_latency_reports_percentiles() {
    let line = bench(&["resume-latency", "--n", "5"]);
    common_fields(&line, "resume-latency", "sqlite", "inproc", 5);
    let p50 = positive(&line, "p50_ms");
    let p90 = positive(&line, "p90_ms");
    let p99 = positive(&line, "p99_ms");
    assert!(p50 <= p90 && p90 <= p99, "percentiles out of order: {line}");
}

#[test]
fn resume_throughput_over_http() {
    let line = bench(&[
        "resume-throughput",
        "--n",
        "40",
        "--concurrency",
        "4",
        "--mode",
        "http",
    ]);
    common_fields(&line, "resume-throughput", "sqlite", "http", 40);
    positive(&line, "per_s");
    positive(&line, "rss_mb");
}

#[test]
fn stream_reports_first_last_and_restart() {
    let line = bench(&["stream", "--n", "40"]);
    common_fields(&line, "stream", "sqlite", "inproc", 40);
    positive(&line, "first_ms");
    positive(&line, "last_ms");
    positive(&line, "restart_replay_ms");
}

#[test]
fn steps_reports_steps_per_second() {
    let line = bench(&["steps", "--n", "6", "--concurrency", "3"]);
    common_fields(&line, "steps", "sqlite", "inproc", 6);
    assert_eq!(line["steps"], 60, "{line}");
    positive(&line, "per_s");
}

#[test]
fn suspended_reports_memory_and_resume_latency() {
    let line = bench(&["suspended", "--n", "30"]);
    common_fields(&line, "suspended", "sqlite", "inproc", 30);
    positive(&line, "rss_mb");
    positive(&line, "p50_ms");
}

#[test]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
fn resume_throughput_on_postgres() {
    let url = postgres_url();
    let line = bench(&["resume-throughput", "--n", "20", "--db", &url]);
    common_fields(&line, "resume-throughput", "postgres", "inproc", 20);
    positive(&line, "per_s");
}
