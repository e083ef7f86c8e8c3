//! `LISTEN/NOTIFY`: commits announce `run_id:last_seq` on the store's channel; a dedicated
//! connection, driven by a background task that reconnects with back-off, hears them and fans
//! them out to every [`tether_store::Store::subscribe`] stream. A notification is only a
//! wake-up hint: one missed while the connection was down loses nothing, the engine polls.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use futures::stream::{BoxStream, StreamExt};
use tether_store::RunChanged;
use tokio::sync::broadcast;
use tokio::task::AbortHandle;
use tokio_postgres::{AsyncMessage, NoTls};

/// First wait before reconnecting a dropped `LISTEN` connection; doubled up to
/// [`MAX_BACKOFF`] while connecting keeps failing.
const MIN_BACKOFF: Duration = Duration::from_millis(100);
/// Longest wait between two connection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);
/// A connection that lived this long resets the back-off.
const STABLE_AFTER: Duration = Duration::from_secs(30);
/// Notifications buffered per subscriber; a subscriber further behind skips the oldest.
const BUFFER: usize = 1_024;

/// The listening side of a store: started by the first subscriber, stopped when the store is
/// dropped.
#[derive(Debug)]
pub(crate) struct Listener {
    config: tokio_postgres::Config,
    channel: String,
    /// This store instance's id in notification payloads (its own commits come back `local`).
    instance: String,
    runtime: Option<tokio::runtime::Handle>,
    sender: broadcast::Sender<RunChanged>,
    task: TaskSlot,
}

impl Listener {
    /// A listener for `channel` that will connect with `config` (plus keepalives and its own
    /// `application_name`) and spawn its task on `runtime`.
    pub(crate) fn new(
        mut config: tokio_postgres::Config,
        channel: String,
        instance: String,
        runtime: Option<tokio::runtime::Handle>,
    ) -> Listener {
        let name = format!(
            "{}-listen",
            config.get_application_name().unwrap_or("tether")
        );
        config
            .application_name(name)
            // Notice a silently dead connection in about a minute rather than hours.
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        let (sender, _) = broadcast::channel(BUFFER);
        Listener {
            config,
            channel,
            instance,
            runtime,
            sender,
            task: TaskSlot::default(),
        }
    }

    /// A new stream of notifications; starts the listening task the first time. `None` when
    /// the store was opened outside a Tokio runtime (nothing to run the task on).
    pub(crate) fn subscribe(&self) -> Option<BoxStream<'static, RunChanged>> {
        let runtime = self.runtime.as_ref()?;
        let receiver = self.sender.subscribe();
        self.task.start_once(|| {
            runtime
                .spawn(listen_loop(
                    self.config.clone(),
                    self.channel.clone(),
                    self.instance.clone(),
                    self.sender.clone(),
                ))
                .abort_handle()
        });
        Some(receiver_stream(receiver).boxed())
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The abort handle of the listening task, once started (a `std` mutex: never held across an
/// await).
#[derive(Debug, Default)]
struct TaskSlot(Mutex<Option<AbortHandle>>);

impl TaskSlot {
    /// Run `start` unless a task was started before.
    fn start_once(&self, start: impl FnOnce() -> AbortHandle) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            *slot = Some(start());
        }
    }

    /// Stop the task, if one was started.
    fn abort(&self) {
        let slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(handle) = slot.as_ref() {
            handle.abort();
        }
    }
}

/// The notifications a broadcast receiver gets, as a stream; lagging skips ahead, the end of
/// the store ends the stream.
fn receiver_stream(
    receiver: broadcast::Receiver<RunChanged>,
) -> impl futures::Stream<Item = RunChanged> {
    futures::stream::unfold(receiver, |mut receiver| async move {
        loop {
            match receiver.recv().await {
                Ok(change) => return Some((change, receiver)),
                Err(broadcast::error::RecvError::Lagged(missed)) => {
                    tracing::debug!(
                        missed,
                        "a run-change subscriber fell behind; skipping ahead"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        }
    })
}

/// Listen until the store is dropped, reconnecting with back-off whenever the connection
/// fails or closes.
async fn listen_loop(
    config: tokio_postgres::Config,
    channel: String,
    instance: String,
    sender: broadcast::Sender<RunChanged>,
) {
    let mut backoff = MIN_BACKOFF;
    loop {
        let started = Instant::now();
        let outcome = listen_once(&config, &channel, &instance, &sender).await;
        if started.elapsed() >= STABLE_AFTER {
            backoff = MIN_BACKOFF;
        }
        match outcome {
            Ok(()) => tracing::warn!(
                channel = %channel,
                retry_in_ms = backoff.as_millis() as u64,
                "the PostgreSQL LISTEN connection was closed; reconnecting (the engine keeps polling meanwhile)"
            ),
            Err(e) => tracing::warn!(
                channel = %channel,
                error = %crate::error::describe(&e),
                retry_in_ms = backoff.as_millis() as u64,
                "the PostgreSQL LISTEN connection failed; reconnecting (the engine keeps polling meanwhile)"
            ),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: `LISTEN`, then forward notifications until the connection ends.
async fn listen_once(
    config: &tokio_postgres::Config,
    channel: &str,
    instance: &str,
    sender: &broadcast::Sender<RunChanged>,
) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let mut messages = futures::stream::poll_fn(move |cx| connection.poll_message(cx));
    // The channel name is built from a checked schema name: no quoting needed.
    let listen_sql = format!("LISTEN {channel}");
    let listen = client.batch_execute(&listen_sql);
    tokio::pin!(listen);
    let mut listening = false;
    loop {
        tokio::select! {
            done = &mut listen, if !listening => {
                done?;
                listening = true;
                tracing::debug!(channel = %channel, "listening for run changes");
            }
            message = messages.next() => match message {
                Some(Ok(AsyncMessage::Notification(n))) => {
                    match parse_payload(n.payload(), instance) {
                        // No subscriber left is fine: nobody needs the hint.
                        Some(change) => { let _ = sender.send(change); }
                        None => tracing::debug!(payload = n.payload(), "ignoring a malformed run-change notification"),
                    }
                }
                Some(Ok(_notice)) => {}
                Some(Err(e)) => return Err(e),
                None => return Ok(()),
            },
        }
    }
}

/// The notification payload for a commit by store instance `instance`:
/// `~INSTANCE~run_id:last_seq` (the run id may itself contain `:` and `~`).
pub(crate) fn payload(instance: &str, run_id: &str, last_seq: u64) -> String {
    format!("~{instance}~{run_id}:{last_seq}")
}

/// Parse a payload written by [`payload`] (or, from older versions, `run_id:last_seq`), marking
/// it `local` when `own_instance` wrote it.
fn parse_payload(payload: &str, own_instance: &str) -> Option<RunChanged> {
    let (instance, rest) = match payload
        .strip_prefix('~')
        .and_then(|p| p.split_once('~'))
        .filter(|(i, _)| !i.is_empty() && i.bytes().all(|b| b.is_ascii_hexdigit()))
    {
        Some((instance, rest)) => (Some(instance), rest),
        None => (None, payload),
    };
    let (run_id, seq) = rest.rsplit_once(':')?;
    Some(RunChanged {
        run_id: run_id.to_owned(),
        last_seq: seq.parse().ok()?,
        local: instance == Some(own_instance),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(run_id: &str, last_seq: u64, local: bool) -> Option<RunChanged> {
        Some(RunChanged {
            run_id: run_id.into(),
            last_seq,
            local,
        })
    }

    #[test]
    fn payloads() {
        assert_eq!(
            parse_payload("run-1:42", "ab12"),
            change("run-1", 42, false)
        );
        assert_eq!(parse_payload("a:b:7", "ab12"), change("a:b", 7, false));
        assert_eq!(parse_payload("nocolon", "ab12"), None);
        assert_eq!(parse_payload("r:x", "ab12"), None);
    }

    #[test]
    fn payloads_name_the_instance_that_committed() {
        let own = payload("ab12", "run-1", 42);
        assert_eq!(parse_payload(&own, "ab12"), change("run-1", 42, true));
        assert_eq!(parse_payload(&own, "cd34"), change("run-1", 42, false));
        let odd = payload("ab12", "~x~y:z", 3);
        assert_eq!(parse_payload(&odd, "ab12"), change("~x~y:z", 3, true));
        // Not an instance prefix (not hex): the whole text is the run id.
        assert_eq!(
            parse_payload("~run~1:5", "ab12"),
            change("~run~1", 5, false)
        );
    }
}
