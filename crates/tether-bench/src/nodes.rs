//! `--nodes N`: the workload runs against N child `tether serve` processes sharing the bench's
//! fresh PostgreSQL schema, each with its own node id (`bench-0`, `bench-1`, ...), as a
//! deployment scaled out over one database would. Requests are spread over the nodes by
//! [`route`]: a run is started on one node, resumed through a node chosen independently of it
//! and awaited (held long-poll) on a third choice, so with N nodes a share (N-1)/N of resumes
//! reaches a node that does not hold the run (the contended case: the payload is committed
//! there and the owner hears of it through `LISTEN/NOTIFY`).
//!
//! The cost of a timed phase is measured from outside: CPU time of each child, of this process
//! and of every `postgres` process on the host (`/proc`, see [`crate::host`]), the nodes'
//! counters from their `/metrics`, and, with `--count-notifies`, the notifications sent on the
//! schema's channel (heard by a `LISTEN` connection of the bench's own).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Map, Value};
use tether::Client;
use tokio::task::JoinSet;

use crate::child::{metric_value, ChildServer, ServeCommand};
use crate::host::{self, ProcCpu};
use crate::store::FreshStore;

/// Most nodes `--nodes` takes (each keeps a pool of connections to the database).
pub(crate) const MAX_NODES: usize = 64;

/// Most idle connections the bench keeps to each node (above the held waits plus senders).
const IDLE_CONNECTIONS: usize = 2048;

/// How long the notification count waits for the phase's last notifications to arrive.
const NOTIFY_SETTLE: Duration = Duration::from_millis(200);

/// What a request does, for [`route`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// Start run number `slot`.
    Start,
    /// Resume run number `slot`.
    Resume,
    /// Wait for run number `slot` to end.
    Wait,
}

/// The node (0..`nodes`) that request `role` for run number `slot` goes to: starts round-robin
/// (`slot mod N`); a resume shifted from its start by the second base-N digit of `slot`, a wait
/// by the third. Over every N³ consecutive slots each (start, resume, wait) triple of nodes
/// occurs once: every node takes the same share of each role, and a resume (or a wait) lands
/// on the node that started its run for exactly 1 slot in N, as with a load balancer that
/// knows nothing of runs.
pub(crate) fn route(nodes: usize, slot: usize, role: Role) -> usize {
    let n = nodes.max(1);
    let digit = |k: u32| (slot / n.pow(k)) % n;
    match role {
        Role::Start => slot % n,
        Role::Resume => (slot + digit(1)) % n,
        Role::Wait => (slot + digit(2)) % n,
    }
}

/// How to run the nodes: `--nodes`, `--max-live-runs`, `--count-notifies`, `--affinity`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct NodeOptions {
    /// How many nodes.
    pub count: usize,
    /// Each node's `--max-live-runs`, when given.
    pub max_live_runs: Option<usize>,
    /// Listen on the schema's channel and count the notifications.
    pub count_notifies: bool,
    /// Send every resume and wait to the node that started the run (as a router that knows
    /// which node holds each run would), instead of spreading them with [`route`].
    pub affinity: bool,
}

/// N running child servers on one PostgreSQL schema.
pub(crate) struct Nodes {
    servers: Vec<ChildServer>,
    /// One client per node, with a pool deep enough for the held waits.
    clients: Vec<Client>,
    /// Resumes sent to a node other than the one that started the run.
    cross_resumes: AtomicUsize,
    /// Waits opened on a node other than the one that started the run.
    cross_waits: AtomicUsize,
    notifies: Option<NotifyCounter>,
    /// Resumes and waits go to the node that started the run.
    affinity: bool,
    /// The children's logs (removed with it).
    _logs: tempfile::TempDir,
}

impl Nodes {
    /// Start `options.count` `tether_bin serve` processes on `fresh` (PostgreSQL), one after
    /// the other (the first creates the schema).
    pub(crate) async fn start(
        fresh: &FreshStore,
        tether_bin: &Path,
        options: &NodeOptions,
    ) -> Result<Nodes, String> {
        let NodeOptions {
            count,
            max_live_runs,
            count_notifies,
            affinity,
        } = *options;
        let Some((url, schema)) = fresh.postgres() else {
            return Err("--nodes needs a PostgreSQL database (--db postgres://...)".into());
        };
        // Every held wait is a socket here; the children raise their own limit.
        if let Err(e) = tether_server::raise_fd_limit() {
            tracing::warn!(error = %e, "cannot raise the open-file limit");
        }
        let logs = tempfile::Builder::new()
            .prefix("tether-bench-log-")
            .tempdir()
            .map_err(|e| format!("cannot make a temp dir for the servers' logs: {e}"))?;
        let mut servers = Vec::with_capacity(count);
        let mut clients = Vec::with_capacity(count);
        for k in 0..count {
            let mut store_args = fresh.serve_args_as(&format!("bench-{k}"));
            if let Some(m) = max_live_runs {
                store_args.push("--max-live-runs".into());
                store_args.push(m.max(1).to_string().into());
            }
            let cmd = ServeCommand {
                program: tether_bin.to_path_buf(),
                store_args,
                log: logs.path().join(format!("serve-{k}.log")),
            };
            let server = ChildServer::start(&cmd)
                .await
                .map_err(|e| format!("node {k}: {e}"))?;
            let http = reqwest::Client::builder()
                .pool_max_idle_per_host(IDLE_CONNECTIONS)
                .build()
                .map_err(|e| format!("http client: {e}"))?;
            clients.push(Client::with_http_client(server.client().base_url(), http));
            servers.push(server);
        }
        let notifies = if count_notifies {
            Some(NotifyCounter::start(url, schema).await?)
        } else {
            None
        };
        Ok(Nodes {
            servers,
            clients,
            cross_resumes: AtomicUsize::new(0),
            cross_waits: AtomicUsize::new(0),
            notifies,
            affinity,
            _logs: logs,
        })
    }

    /// How many nodes run.
    pub(crate) fn len(&self) -> usize {
        self.servers.len()
    }

    /// The client of the node request `role` for run `slot` goes to (see [`route`]); counts
    /// the requests that miss the run's starting node.
    pub(crate) fn client(&self, slot: usize, role: Role) -> &Client {
        let n = self.len();
        let role = if self.affinity { Role::Start } else { role };
        let k = route(n, slot, role);
        if k != route(n, slot, Role::Start) {
            match role {
                Role::Resume => self.cross_resumes.fetch_add(1, Ordering::Relaxed),
                Role::Wait => self.cross_waits.fetch_add(1, Ordering::Relaxed),
                Role::Start => 0,
            };
        }
        &self.clients[k]
    }

    /// Open `k` connections to every node at once and leave them idle in the pools.
    pub(crate) async fn warm(&self, k: usize) -> Result<(), String> {
        let mut calls = JoinSet::new();
        for client in &self.clients {
            for _ in 0..k.min(IDLE_CONNECTIONS) {
                let client = client.clone();
                calls.spawn(async move { client.health().await.map(|_| ()) });
            }
        }
        while let Some(done) = calls.join_next().await {
            done.map_err(|e| format!("a warm-up request failed: {e}"))?
                .map_err(|e| format!("warm-up GET /healthz: {e}"))?;
        }
        Ok(())
    }

    /// Start run `slot` of the bundled `collect` workflow (a `tether serve` child serves the
    /// bundled examples, not the bench's `bench_wait`): it waits on one hook with a generated
    /// token and ends with the first payload holding `"done": true`. Its id and that token
    /// (read back from the node: one more request, before anything is timed).
    pub(crate) async fn start_waiting(&self, slot: usize) -> Result<(String, String), String> {
        let client = self.client(slot, Role::Start);
        let run = client
            .start_run("collect", &json!({}))
            .await
            .map_err(|e| format!("start collect: {e}"))?;
        let hooks = client
            .hooks(&run)
            .await
            .map_err(|e| format!("hooks of run {run}: {e}"))?;
        let token = hooks
            .into_iter()
            .next()
            .map(|h| h.token)
            .ok_or_else(|| format!("the collect run {run} has no hook yet"))?;
        Ok((run, token))
    }

    /// The nodes' counters, summed over their `/metrics`: group commits, the write ops they
    /// held, live-run cache misses (on a node that does not hold the run, every resume is
    /// one), and runs claimed from another node's lease.
    pub(crate) async fn counters(&self) -> Result<NodeCounters, String> {
        let mut sum = NodeCounters::default();
        for server in &self.servers {
            let text = server.metrics_text().await?;
            let read = |name: &str| metric_value(&text, name).unwrap_or(0.0) as u64;
            sum.commits += read("tether_journal_commit_seconds_count");
            sum.commit_s += metric_value(&text, "tether_journal_commit_seconds_sum").unwrap_or(0.0);
            sum.committed_ops += read("tether_journal_commit_ops_sum");
            sum.cache_misses += read("tether_live_run_cache_misses_total");
            sum.lease_takeovers += read("tether_lease_takeovers_total");
        }
        Ok(sum)
    }

    /// CPU times and counts as they are now, to measure a phase with [`Mark::figures`].
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            nodes: self
                .servers
                .iter()
                .map(|s| host::proc_cpu(Some(s.pid())))
                .collect(),
            db: host::cpu_of_processes_named("postgres"),
            bench: host::proc_cpu(None),
            notifies: self.notifies.as_ref().map(NotifyCounter::count),
        }
    }

    /// [`Nodes::mark`] at the end of a phase. With `--count-notifies` the count is read
    /// again [`NOTIFY_SETTLE`] later: the last commits' notifications may reach the bench's
    /// listener after the runs' ends reached their waits.
    pub(crate) async fn end_mark(&self) -> Mark {
        let mut mark = self.mark();
        if let Some(counter) = &self.notifies {
            tokio::time::sleep(NOTIFY_SETTLE).await;
            mark.notifies = Some(counter.count());
        }
        mark
    }

    /// Resumes and waits sent so far to a node other than the one that started their run
    /// (the waits of `resume-throughput` are opened before its timed phase).
    pub(crate) fn cross_node(&self) -> (usize, usize) {
        (
            self.cross_resumes.load(Ordering::Relaxed),
            self.cross_waits.load(Ordering::Relaxed),
        )
    }

    /// Resident memory of each node now, MB.
    pub(crate) fn rss_mb(&self) -> Vec<Option<f64>> {
        self.servers.iter().map(|s| s.rss_mb().0).collect()
    }

    /// Stop every node (SIGKILL: the data is thrown away with the schema).
    pub(crate) async fn shutdown(self) {
        for server in self.servers {
            let _ = server.kill9().await;
        }
    }
}

/// Counters summed over the nodes' `/metrics`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NodeCounters {
    /// Group commits.
    pub commits: u64,
    /// Seconds those commits took, summed.
    pub commit_s: f64,
    /// Write ops those commits held.
    pub committed_ops: u64,
    /// Deliveries to a run not live on the node that committed them.
    pub cache_misses: u64,
    /// Runs a node claimed from another node's lease.
    pub lease_takeovers: u64,
}

/// CPU times and counts at one moment of a run against nodes.
#[derive(Debug)]
pub(crate) struct Mark {
    nodes: Vec<Option<ProcCpu>>,
    db: HashMap<(u32, u64), ProcCpu>,
    bench: Option<ProcCpu>,
    notifies: Option<u64>,
}

impl Mark {
    /// What the phase from `self` to `end` cost, as JSON fields, for `runs` runs completed
    /// in it: `node_cpu_ms` (each node), `db_cpu_ms` (every `postgres` process on the host;
    /// see [`host::cpu_ticks_since`]), `bench_cpu_ms`, their shares per run in µs,
    /// `db_processes` at the end, and with `--count-notifies` the notifications sent.
    pub(crate) fn figures(&self, end: &Mark, runs: usize) -> Map<String, Value> {
        let node_ms: Vec<Option<u64>> = self
            .nodes
            .iter()
            .zip(&end.nodes)
            .map(|(a, b)| {
                Some(host::ticks_ms(
                    b.as_ref()?.own().saturating_sub(a.as_ref()?.own()),
                ))
            })
            .collect();
        let db_ms = host::ticks_ms(host::cpu_ticks_since(&self.db, &end.db));
        let bench_ms = match (&self.bench, &end.bench) {
            (Some(a), Some(b)) => Some(host::ticks_ms(b.own().saturating_sub(a.own()))),
            _ => None,
        };
        let per_run = |ms: u64| (ms as f64 * 1000.0 / runs.max(1) as f64).round();
        let nodes_ms: u64 = node_ms.iter().flatten().sum();
        let mut f = Map::new();
        f.insert("node_cpu_ms".into(), json!(node_ms));
        f.insert("db_cpu_ms".into(), json!(db_ms));
        f.insert("bench_cpu_ms".into(), json!(bench_ms));
        f.insert("node_cpu_us_per_run".into(), json!(per_run(nodes_ms)));
        f.insert("db_cpu_us_per_run".into(), json!(per_run(db_ms)));
        f.insert("db_processes".into(), json!(end.db.len()));
        if let (Some(a), Some(b)) = (self.notifies, end.notifies) {
            let sent = b.saturating_sub(a);
            f.insert("notifies".into(), json!(sent));
            f.insert(
                "notifies_per_run".into(),
                json!((sent as f64 / runs.max(1) as f64 * 100.0).round() / 100.0),
            );
        }
        f
    }
}

/// A `LISTEN` connection of the bench's own on the schema's notification channel, counting
/// what it hears: every notification the nodes' commits send (it is one more listener, so the
/// database delivers each notification once more while it runs).
struct NotifyCounter {
    heard: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
    _client: tokio_postgres::Client,
}

impl NotifyCounter {
    /// Connect to `url` and listen on the channel of `schema`.
    async fn start(url: &str, schema: &str) -> Result<NotifyCounter, String> {
        let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
            .await
            .map_err(|e| format!("--count-notifies: cannot connect: {e}"))?;
        let heard = Arc::new(AtomicU64::new(0));
        let counter = heard.clone();
        let task = tokio::spawn(async move {
            use tokio_postgres::AsyncMessage;
            // Polling the connection also carries the client's own requests (the LISTEN).
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => {
                        counter.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(error = %e, "the bench's LISTEN connection failed");
                        return;
                    }
                }
            }
        });
        // The channel `tether-store-postgres` announces a schema's commits on
        // (`tether_runs_<schema>`; the schema name needs no quoting).
        client
            .batch_execute(&format!("LISTEN tether_runs_{schema}"))
            .await
            .map_err(|e| format!("--count-notifies: LISTEN failed: {e}"))?;
        Ok(NotifyCounter {
            heard,
            task,
            _client: client,
        })
    }

    /// Notifications heard so far.
    fn count(&self) -> u64 {
        self.heard.load(Ordering::Relaxed)
    }
}

impl Drop for NotifyCounter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_spread_every_role_evenly_and_miss_the_start_node_n_minus_1_times_in_n() {
        for n in [1usize, 2, 3, 4, 8] {
            let cycle = n.pow(3);
            let mut per_node = vec![[0usize; 3]; n];
            let mut triples = std::collections::HashSet::new();
            let (mut cross_resume, mut cross_wait) = (0, 0);
            for slot in 0..cycle {
                let s = route(n, slot, Role::Start);
                let r = route(n, slot, Role::Resume);
                let w = route(n, slot, Role::Wait);
                per_node[s][0] += 1;
                per_node[r][1] += 1;
                per_node[w][2] += 1;
                triples.insert((s, r, w));
                cross_resume += usize::from(r != s);
                cross_wait += usize::from(w != s);
            }
            assert_eq!(triples.len(), cycle, "n = {n}: every triple once");
            assert!(per_node.iter().all(|c| *c == [n * n; 3]), "n = {n}");
            assert_eq!(cross_resume, cycle - n * n, "n = {n}");
            assert_eq!(cross_wait, cycle - n * n, "n = {n}");
        }
        assert_eq!(route(0, 5, Role::Resume), 0);
    }
}
