//! `tether bench` (the `tether-bench` crate behind the real binary) runs every workload once
//! at a tiny size and prints one JSON line with the fields BENCHMARKS.md relies on. This proves
//! the harness works; it never checks a timing (figures come from release builds, see
//! BENCHMARKS.md). Counts it observes (payloads, journal entries) are checked.

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

/// The fields every line has: what ran, where, at which commit, memory, and both rates.
fn common_fields(line: &Value, workload: &str, db: &str, mode: &str, n: u64) {
    assert_eq!(line["workload"], workload, "{line}");
    assert_eq!(line["db"], db, "{line}");
    assert_eq!(line["mode"], mode, "{line}");
    assert_eq!(line["n"], n, "{line}");
    let commit = line["commit"].as_str().unwrap_or_default();
    assert!(!commit.is_empty(), "commit missing: {line}");
    assert!(line.get("fs").is_some(), "fs missing: {line}");
    if db == "sqlite" && cfg!(target_os = "linux") {
        assert!(
            line["fs"].is_string(),
            "fs not read from /proc/mounts: {line}"
        );
    }
    positive(line, "rss_mb");
    positive(line, "peak_rss_mb");
    positive(line, "accepted_per_s");
    positive(line, "completed_per_s");
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
    positive(&line, "complete_per_s");
    assert_eq!(line["held_waits"], 40, "{line}");
}

#[test]
fn stream_kills_a_child_server_and_reports_what_it_found() {
    let line = bench(&["stream", "--n", "40"]);
    common_fields(&line, "stream", "sqlite", "http", 40);
    positive(&line, "first_ms");
    positive(&line, "last_ms");
    positive(&line, "kill_to_listening_ms");
    positive(&line, "kill_to_accepted_ms");
    positive(&line, "server_rss_mb");
    positive(&line, "server_peak_rss_mb");
    // Observed, not computed: the 20 payloads acknowledged before the kill, plus the run's
    // start and its hook, were in the journal the new process read; the run got all 40.
    assert_eq!(line["acknowledged_before_kill"], 20, "{line}");
    assert_eq!(line["replayed_events"], 22, "{line}");
    assert_eq!(line["received"], 40, "{line}");
    assert!(line["cache_misses_after_restart"].is_number(), "{line}");
}

#[test]
fn stream_refuses_inproc_with_a_reason() {
    let out = tether()
        .args(["bench", "stream", "--n", "4", "--mode", "inproc"])
        .output()
        .expect("run tether bench");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("drop --mode inproc"), "{stderr}");
}

#[test]
fn dir_puts_the_database_where_asked_and_cleans_up() {
    let parent = tempfile::tempdir().expect("tempdir");
    let dir = parent.path().to_str().expect("utf-8 temp path");
    let line = bench(&["steps", "--n", "2", "--dir", dir]);
    let used = line["dir"].as_str().unwrap_or_default();
    assert!(
        used.starts_with(dir),
        "dir {used:?} is not under {dir:?}: {line}"
    );
    let left: Vec<_> = std::fs::read_dir(parent.path())
        .expect("read --dir")
        .collect();
    assert!(left.is_empty(), "the bench left files in --dir: {left:?}");
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

#[test]
#[cfg_attr(
    not(tether_postgres),
    ignore = "needs PostgreSQL: set TETHER_TEST_POSTGRES=postgres://..."
)]
fn resume_throughput_across_two_nodes_reports_their_cpu() {
    let url = postgres_url();
    let line = bench(&[
        "resume-throughput",
        "--db",
        &url,
        "--mode",
        "http",
        "--nodes",
        "2",
        "--n",
        "20",
        "--count-notifies",
    ]);
    common_fields(&line, "resume-throughput", "postgres", "http", 20);
    assert_eq!(line["nodes"], 2, "{line}");
    let node_cpu = line["node_cpu_ms"].as_array().expect("node_cpu_ms list");
    assert_eq!(node_cpu.len(), 2, "{line}");
    assert!(node_cpu.iter().all(Value::is_u64), "{line}");
    for field in ["db_cpu_ms", "bench_cpu_ms"] {
        assert!(line[field].is_u64(), "{field} in {line}");
    }
    for field in ["db_cpu_us_per_run", "node_cpu_us_per_run"] {
        assert!(line[field].is_number(), "{field} in {line}");
    }
    // Every run completed (`completed_per_s` counts all 20, checked positive above), and
    // the fixed spread sent some of them through a node that did not start the run: 10 of
    // 20 resumes (slots 2, 3, 6, 7, 10, 11, 14, 15, 18, 19) and 8 of 20 waits (4-7, 12-15).
    assert_eq!(line["cross_node_resumes"], 10, "{line}");
    assert_eq!(line["cross_node_waits"], 8, "{line}");
    assert_eq!(
        line["node_rss_mb"].as_array().map(Vec::len),
        Some(2),
        "{line}"
    );
    // Each run's journal grew in two commits (the payload, the end): one notification each.
    assert_eq!(line["notifies"], 40, "{line}");
}

#[test]
fn nodes_refuse_sqlite_with_a_reason() {
    let out = tether()
        .args([
            "bench",
            "resume-throughput",
            "--mode",
            "http",
            "--nodes",
            "2",
        ])
        .output()
        .expect("run tether bench");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--db postgres://"), "{stderr}");
}
