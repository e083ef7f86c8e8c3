//! The server's own accept loop: what `axum::serve` does, plus the limits a slow or hostile
//! client must not get around (issue #17): unfinished request headers are cut after
//! [`ServeLimits::header_timeout`], connections with no request in flight are closed after
//! [`ServeLimits::idle_timeout`], and past [`ServeLimits::max_connections`] open connections a
//! new one is accepted and closed at once, so it never holds a file descriptor. Unfinished
//! bodies are cut by the router itself ([`crate::ServerOptions::body_timeout`], see
//! [`body_timeout`]). The answers hyper writes itself to requests it cannot parse get JSON
//! bodies ([`crate::protocol_errors`]).

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::Router;
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::{Instant, Sleep};

use crate::protocol_errors::JsonErrors;

/// Limits on the connections [`crate::serve_with`] accepts.
#[derive(Clone, Debug)]
pub struct ServeLimits {
    /// How long a client may take to send a request's line and headers (counted from the
    /// connection's start, or from the end of the previous answer on a kept-alive one); past
    /// it the connection is closed. Default 10 s.
    pub header_timeout: Duration,
    /// How long a connection with no request in flight is kept open. Default 60 s. (A
    /// connection waiting for its next request is also bound by `header_timeout`.)
    pub idle_timeout: Duration,
    /// Most connections open at once; a connection past it is accepted and closed at once.
    /// Default 10,000.
    pub max_connections: usize,
}

impl Default for ServeLimits {
    fn default() -> Self {
        ServeLimits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            max_connections: 10_000,
        }
    }
}

/// How long to wait before accepting again after `accept` failed (out of file descriptors,
/// most likely): a busy loop would not free any.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// How long a connection asked to close may still take to finish writing before it is
/// dropped, once no request is in flight on it.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

/// Serve `router` on `listener` with `limits` until `shutdown` completes, then let the
/// requests in flight finish (idle connections close at once).
pub(crate) async fn run(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    limits: ServeLimits,
) -> std::io::Result<()> {
    let open = Arc::new(AtomicUsize::new(0));
    // Every connection task holds a receiver: `closing_tx.send(true)` asks them to stop,
    // `closing_tx.closed()` completes when the last one has.
    let (closing_tx, closing_rx) = watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused_logged = false;
    loop {
        let (stream, _peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a connection; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        if open.load(Ordering::Acquire) >= limits.max_connections {
            // Accepted and closed at once: never queued, never holding a descriptor.
            if !refused_logged {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    "too many open connections; closing new ones until some end"
                );
                refused_logged = true;
            }
            drop(stream);
            continue;
        }
        refused_logged = false;
        let _ = stream.set_nodelay(true);
        open.fetch_add(1, Ordering::AcqRel);
        let slot = OpenSlot(open.clone());
        tokio::spawn(serve_connection(
            stream,
            router.clone(),
            limits.clone(),
            closing_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = closing_tx.send(true);
    drop(closing_rx);
    closing_tx.closed().await;
    Ok(())
}

/// One open connection in the count; released when dropped.
struct OpenSlot(Arc<AtomicUsize>);

impl Drop for OpenSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What a connection is doing: requests in flight (until their answer's body is done or
/// dropped, so a stream in progress counts), and when the last one ended.
struct Activity {
    in_flight: Arc<AtomicUsize>,
    last_done: Mutex<Instant>,
}

impl Activity {
    /// When the connection becomes idle-expired, if no request is in flight now.
    fn idle_deadline(&self, idle: Duration) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return None;
        }
        let last = *self.last_done.lock().unwrap_or_else(|e| e.into_inner());
        Some(last + idle)
    }
}

/// Marks one request in flight on a connection; dropped with the answer's body.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn start(activity: &Arc<Activity>) -> Self {
        activity.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight(activity.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        *self.0.last_done.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// An answer's body that keeps its request counted in flight until it is done.
struct TrackedBody {
    inner: Body,
    guard: Option<InFlight>,
}

impl http_body::Body for TrackedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        if matches!(polled, Poll::Ready(None) | Poll::Ready(Some(Err(_)))) {
            self.guard = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Serve one connection until it ends, is idle too long, or the server stops.
async fn serve_connection(
    stream: tokio::net::TcpStream,
    router: Router,
    limits: ServeLimits,
    mut closing: watch::Receiver<bool>,
    _slot: OpenSlot,
) {
    let activity = Arc::new(Activity {
        in_flight: Arc::new(AtomicUsize::new(0)),
        last_done: Mutex::new(Instant::now()),
    });
    let service = {
        let activity = activity.clone();
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let guard = InFlight::start(&activity);
            let mut router = router.clone();
            async move {
                let response = tower::Service::call(&mut router, req.map(Body::new)).await?;
                Ok::<_, Infallible>(response.map(|inner| {
                    Body::new(TrackedBody {
                        inner,
                        guard: Some(guard),
                    })
                }))
            }
        })
    };
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        // A client that shuts its sending side after a complete request still gets its answer.
        .half_close(true)
        .keep_alive(true);
    let io = JsonErrors::new(stream, activity.in_flight.clone());
    let conn = builder.serve_connection(TokioIo::new(io), service);
    let mut conn = std::pin::pin!(conn);
    // When the connection was asked to close (server stopping, or idle too long).
    let mut closing_since: Option<Instant> = None;
    loop {
        let wake = match closing_since {
            None => activity
                .idle_deadline(limits.idle_timeout)
                // A request is in flight: look again later.
                .unwrap_or_else(|| Instant::now() + limits.idle_timeout),
            // Past the grace with a request still in flight: look again after another one.
            Some(since) => (since + CLOSE_GRACE).max(Instant::now() + CLOSE_GRACE / 2),
        };
        tokio::select! {
            res = conn.as_mut() => {
                if let Err(e) = res {
                    tracing::debug!(error = %e, "connection ended with an error");
                }
                return;
            }
            _ = closing.changed(), if closing_since.is_none() => {
                closing_since = Some(Instant::now());
                conn.as_mut().graceful_shutdown();
            }
            () = tokio::time::sleep_until(wake) => match closing_since {
                None => {
                    let expired = activity
                        .idle_deadline(limits.idle_timeout)
                        .is_some_and(|at| at <= Instant::now());
                    if expired {
                        closing_since = Some(Instant::now());
                        conn.as_mut().graceful_shutdown();
                    }
                }
                // hyper closes an idle connection at once, but waits on one with a request
                // head half-received: with no request in flight, drop it (closing the socket).
                Some(_) if activity.in_flight.load(Ordering::Acquire) == 0 => return,
                Some(_) => {}
            },
        }
    }
}

/// The error a request body's read fails with once [`crate::ServerOptions::body_timeout`]
/// has passed; `json::body_bytes` answers it `408 request_timeout`.
#[derive(Debug)]
pub(crate) struct BodyTimedOut;

impl std::fmt::Display for BodyTimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("the request body did not arrive in time")
    }
}

impl std::error::Error for BodyTimedOut {}

/// A request body whose reading fails with [`BodyTimedOut`] once its deadline has passed. The
/// timer is only set when a read has to wait: a body that is already in (most are, being small)
/// costs none.
struct TimedBody {
    inner: Body,
    deadline: Instant,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl http_body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::BoxError>>> {
        match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let deadline = self.deadline;
                let sleep = self
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(BodyTimedOut)))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// `req` with a body that must arrive whole within `timeout` from now, the arrival of the
/// request's head (a handler reading it after that gets [`BodyTimedOut`]). Answers and their
/// bodies (server streams included) are not limited.
pub(crate) fn timed_body(req: Request, timeout: Duration) -> Request {
    let (parts, body) = req.into_parts();
    let body = if http_body::Body::is_end_stream(&body) {
        body
    } else {
        Body::new(TimedBody {
            inner: body,
            deadline: Instant::now() + timeout,
            sleep: None,
        })
    };
    Request::from_parts(parts, body)
}

/// Whether `error` (a body rejection) comes from [`BodyTimedOut`], anywhere in its sources.
pub(crate) fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current = Some(error);
    while let Some(e) = current {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Raise this process's soft limit on open files to its hard limit, so the connection cap
/// rather than the descriptor limit decides how many clients are served. Returns the soft
/// limit now in force (`None`: unlimited or unknown).
pub fn raise_fd_limit() -> std::io::Result<Option<u64>> {
    #[cfg(unix)]
    {
        use rustix::process::{getrlimit, setrlimit, Resource};
        let limit = getrlimit(Resource::Nofile);
        if limit.current != limit.maximum {
            setrlimit(
                Resource::Nofile,
                rustix::process::Rlimit {
                    current: limit.maximum,
                    maximum: limit.maximum,
                },
            )?;
        }
        Ok(getrlimit(Resource::Nofile).current)
    }
    #[cfg(not(unix))]
    {
        Ok(None)
    }
}
