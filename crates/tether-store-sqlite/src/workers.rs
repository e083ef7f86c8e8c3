//! The store's own threads: one writer thread owning the writer connection, and up to
//! [`MAX_READERS`] reader threads, each owning one `query_only` connection (opened at its
//! first read). Every SQLite call runs on one of them.
//!
//! Why not Tokio's blocking pool (`spawn_blocking`), which this store used before: every call
//! there goes through the pool's one mutex and condition variable, shared by all its idle
//! threads. With 100,000 runs waiting and resumed, a read per evicted run and a commit every
//! millisecond or so, `perf` put about 38% of the process's CPU in `futex` calls on that
//! mutex and condvar (BENCHMARKS.md). A thread of its own per connection is woken by its own
//! channel: one wake-up per call, no lock shared with anyone else.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle, ThreadId};

use rusqlite::Connection;
use tether_store::StoreError;

use crate::conn::{open_reader, MAX_READERS};

/// What a thread runs: a call on its connection (opened first if it is not yet).
type Job = Box<dyn FnOnce(Result<&mut Connection, StoreError>) + Send>;

/// One thread and its connection, running the calls sent to it in order.
struct Worker {
    /// `None` once the worker is being dropped (closing the channel ends the thread).
    tx: Option<mpsc::Sender<Job>>,
    /// Calls sent and not yet finished (to pick the least busy reader).
    in_flight: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
    thread_id: ThreadId,
}

impl Worker {
    /// Start a thread named `name` for the connection `conn`, or for one opened by `open` on
    /// `path` at the first call.
    fn start(
        name: String,
        conn: Option<Connection>,
        path: PathBuf,
        open: fn(&Path) -> Result<Connection, StoreError>,
    ) -> Result<Worker, StoreError> {
        let (tx, rx) = mpsc::channel::<Job>();
        let in_flight = Arc::new(AtomicUsize::new(0));
        let busy = Arc::clone(&in_flight);
        let thread = thread::Builder::new()
            .name(name.clone())
            .spawn(move || run(rx, conn, &path, open, &busy))
            .map_err(|e| StoreError::unavailable(format!("start thread {name}: {e}")))?;
        Ok(Worker {
            tx: Some(tx),
            in_flight,
            thread_id: thread.thread().id(),
            thread: Some(thread),
        })
    }

    /// Run `f` on this worker's connection and wait for its answer.
    async fn call<T, F>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |conn| {
            let _ = reply.send(conn.and_then(f));
        });
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        let sent = self.tx.as_ref().is_some_and(|tx| tx.send(job).is_ok());
        if !sent {
            self.in_flight.fetch_sub(1, Ordering::Relaxed);
            return Err(StoreError::unavailable(format!(
                "{what}: the store is closed"
            )));
        }
        // The reply is dropped unsent only when the call panicked (the thread goes on).
        answer.await.map_err(|_| {
            StoreError::unavailable(format!(
                "{what}: the SQLite call panicked (a bug in tether-store-sqlite); the \
                 transaction it was in was rolled back"
            ))
        })?
    }
}

/// The thread's loop: run each call, catching a panic so that one bad call does not take the
/// connection's thread (and every later call) with it. A panic inside a write transaction
/// leaves it open; the next commit rolls it back first (`write::commit`).
fn run(
    rx: mpsc::Receiver<Job>,
    mut conn: Option<Connection>,
    path: &Path,
    open: fn(&Path) -> Result<Connection, StoreError>,
    in_flight: &AtomicUsize,
) {
    while let Ok(job) = rx.recv() {
        if conn.is_none() {
            match open(path) {
                Ok(opened) => conn = Some(opened),
                Err(e) => {
                    job(Err(e));
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    continue;
                }
            }
        }
        if let Some(c) = conn.as_mut() {
            if catch_unwind(AssertUnwindSafe(|| job(Ok(c)))).is_err() {
                tracing::error!(
                    thread = thread::current().name().unwrap_or("sqlite"),
                    "a SQLite call panicked; its caller gets an error and the thread goes on"
                );
            }
        }
        in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for Worker {
    /// Close the channel and wait for the thread to finish its calls and close its
    /// connection, so that the connection is closed when the store's last clone is dropped
    /// (before the file's lock is let go). Not from the worker's own thread (a call that
    /// dropped the last clone of the store): that thread ends by itself.
    fn drop(&mut self) {
        drop(self.tx.take());
        if let Some(thread) = self.thread.take() {
            if thread::current().id() != self.thread_id {
                let _ = thread.join();
            }
        }
    }
}

/// The store's threads: the writer and the readers.
pub(crate) struct Workers {
    writer: Worker,
    readers: Vec<Worker>,
    /// Where the search for an idle reader starts (turns, so idle readers share the work).
    next: AtomicUsize,
}

impl Workers {
    /// Start the writer thread on `writer` and [`MAX_READERS`] reader threads for the database
    /// at `path`, which open their connection at their first read.
    pub(crate) fn start(writer: Connection, path: &Path) -> Result<Workers, StoreError> {
        let writer = Worker::start(
            "tether-sqlite-writer".to_owned(),
            Some(writer),
            path.to_owned(),
            open_reader,
        )?;
        let readers = (0..MAX_READERS)
            .map(|i| {
                Worker::start(
                    format!("tether-sqlite-reader-{i}"),
                    None,
                    path.to_owned(),
                    open_reader,
                )
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Workers {
            writer,
            readers,
            next: AtomicUsize::new(0),
        })
    }

    /// Run `f` on the writer connection (calls run one at a time, in the order sent).
    pub(crate) async fn write<T, F>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.writer.call(what, f).await
    }

    /// Run `f` on a reader connection: an idle reader's if there is one, else the one with
    /// the fewest calls waiting.
    pub(crate) async fn read<T, F>(&self, what: &'static str, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let n = self.readers.len();
        let mut best = &self.readers[start % n];
        for i in 0..n {
            let reader = &self.readers[(start + i) % n];
            let busy = reader.in_flight.load(Ordering::Relaxed);
            if busy == 0 {
                best = reader;
                break;
            }
            if busy < best.in_flight.load(Ordering::Relaxed) {
                best = reader;
            }
        }
        best.call(what, move |conn| f(conn)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Condvar, Mutex};
    use std::time::Duration;

    use super::*;

    fn workers(dir: &tempfile::TempDir) -> Workers {
        let path = dir.path().join("t.db");
        let writer = crate::conn::open_writer(&path).expect("the writer opens");
        Workers::start(writer, &path).expect("the threads start")
    }

    #[tokio::test]
    async fn a_call_that_panics_is_an_error_and_the_thread_goes_on() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let w = workers(&dir);
        let panicked = w
            .write("boom", |_conn| -> Result<(), StoreError> {
                panic!("a bug in a call");
            })
            .await
            .expect_err("a panicking call answers with an error");
        assert!(panicked.to_string().contains("boom"), "{panicked}");
        let one = w
            .write("after", |conn| one_number(conn, "SELECT 1"))
            .await
            .expect("the writer's thread still answers");
        assert_eq!(one, 1);
    }

    /// The number the one row of `sql` holds.
    fn one_number(conn: &rusqlite::Connection, sql: &str) -> Result<i64, StoreError> {
        conn.query_row(sql, [], |r| r.get(0))
            .map_err(|e| crate::error::db_err(sql, e))
    }

    /// As many reads as there are readers run at the same time: each waits inside its call
    /// until all of them are in theirs (which would never happen if two shared a thread).
    #[tokio::test]
    async fn as_many_reads_as_readers_run_at_once() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let w = workers(&dir);
        let inside = Arc::new((Mutex::new(0usize), Condvar::new()));
        let reads = (0..MAX_READERS).map(|_| {
            let inside = Arc::clone(&inside);
            w.read("meet", move |_conn| {
                let (count, all_in) = &*inside;
                let mut n = count.lock().unwrap_or_else(|p| p.into_inner());
                *n += 1;
                all_in.notify_all();
                let (n, timeout) = all_in
                    .wait_timeout_while(n, Duration::from_secs(30), |n| *n < MAX_READERS)
                    .unwrap_or_else(|p| p.into_inner());
                Ok(!timeout.timed_out() && *n == MAX_READERS)
            })
        });
        for met in futures::future::join_all(reads).await {
            assert!(met.expect("the read answers"), "a read waited alone");
        }
    }

    /// Dropping the workers waits for their threads to close the connections: the last one
    /// closed checkpoints the WAL and deletes it, so it is gone once `drop` returns.
    #[tokio::test]
    async fn dropping_the_workers_closes_their_connections() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let w = workers(&dir);
        w.write("create", |conn| {
            conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")
                .map_err(|e| crate::error::db_err("create", e))
        })
        .await
        .expect("the write commits");
        let read = w
            .read("read", |conn| one_number(conn, "SELECT x FROM t"))
            .await
            .expect("a reader sees it");
        assert_eq!(read, 1);
        let wal = dir.path().join("t.db-wal");
        assert!(wal.exists(), "the write went through the WAL");
        drop(w);
        assert!(!wal.exists(), "a connection was still open after the drop");
    }
}
