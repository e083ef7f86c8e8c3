//! One live run: a task that owns the run's [`RunMachine`], feeds it the run's committed
//! journal entries in order, writes what the workflow decided, runs its steps and fires its
//! timers. A resume reaches it as a `HookReceived` entry in its inbox: no replay on the hot path.
//!
//! The actor writes through the group-commit writer and waits for each of its writes to
//! commit before going on; committed entries come back through its inbox (they are applied
//! in journal order like any other entry, which keeps live execution and replay identical).
//!
//! This module holds the actor's messages, its state and the task that runs it; the main loop
//! is in `main_loop.rs`, loading and claiming the run in `load.rs`, writing in `write.rs`, the
//! run's end in `finish.rs` and a hook thread's wait between attempts in `retry.rs`.

use std::collections::HashSet;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tether_core::{Event, EventBody, RunStatus};
use tether_store::{Fence, StoreError, WriteOp};
use tokio::task::JoinSet;
use tracing::{debug, error, info_span, warn, Instrument};

use crate::activity::Ticket;
use crate::engine::Inner;
use crate::live_runs::Slot;

mod finish;
mod load;
mod main_loop;
mod retry;
mod write;

/// A message to a live run.
#[derive(Debug)]
pub(crate) enum ActorMsg {
    /// Committed journal entries of this run, in order.
    Events(Vec<Event>, Delivery),
    /// The cache is full: leave if idle.
    Evict,
    /// Another process committed entries up to `last_seq` (a `LISTEN/NOTIFY` hint).
    Poke {
        /// The run's last seq after that commit.
        last_seq: u64,
    },
}

/// A message in a live run's inbox, with the ticket that counts it as work in flight until
/// the run has handled it (see `activity.rs`).
#[derive(Debug)]
pub(crate) struct Mail {
    pub msg: ActorMsg,
    pub ticket: Ticket,
}

/// How committed entries reached the actor: when their group commit returned, and the span
/// of the request that wrote them (a resume's apply span is its child).
#[derive(Debug)]
pub(crate) struct Delivery {
    pub committed: std::time::Instant,
    pub span: tracing::Span,
}

/// Why an actor stopped.
#[derive(Debug)]
enum Exit {
    /// The run ended (or was already over, or does not exist).
    Done,
    /// Evicted while idle; already removed from the cache.
    Evicted,
    /// Code and journal disagree; the run is marked and left alone until restart.
    Blocked,
    /// A storage failure worth retrying ([`StoreError::is_retryable`]); rebuild later.
    Failed(String),
    /// A terminal storage failure (damaged data, bad settings): rebuilding would fail the same
    /// way, so the run is left alone until restart, like a blocked one.
    Broken(String),
    /// Another node holds the run (its claim was refused, or this node's was fenced off).
    NotMine,
}

impl From<StoreError> for Exit {
    /// A store failure ends the actor: retryable ones rebuild the run later, terminal ones
    /// leave it alone.
    fn from(e: StoreError) -> Exit {
        if e.is_retryable() {
            Exit::Failed(e.to_string())
        } else {
            Exit::Broken(e.to_string())
        }
    }
}
/// The task of a live run: `slot` is its entry in the live-run cache (see `live_runs.rs`),
/// `starting` counts it as busy until it first waits; `claimed`: the claim the commit that
/// made it live took for it (a resume's [`tether_store::ClaimIfFree`]), if any.
pub(crate) async fn run_actor(
    inner: Arc<Inner>,
    run_id: String,
    slot: Slot,
    starting: Ticket,
    claimed: Option<Fence>,
) {
    let Slot {
        generation,
        mut rx,
        idle,
        applied,
    } = slot;
    let span = info_span!("run", run_id = %run_id);
    let (exit, busy) = async {
        let mut actor = Actor {
            inner: inner.clone(),
            run_id: run_id.clone(),
            generation,
            idle,
            applied,
            steps: JoinSet::new(),
            fired_sent: HashSet::new(),
            status_sent: None,
            wake_sent: None,
            checkpoint_sent: 0,
            result_after: None,
            announced: false,
            fence: claimed,
            parent: None,
            busy: Some(starting),
        };
        let exit = actor.run(&mut rx).await;
        // Give the run up for others, unless it ended (the store cleared its owner) or is
        // held elsewhere anyway.
        if let (Some(fence), Exit::Evicted | Exit::Blocked | Exit::Failed(_) | Exit::Broken(_)) =
            (&actor.fence, &exit)
        {
            inner.writer.write_detached(WriteOp::Release {
                run_id: run_id.clone(),
                fence: fence.clone(),
            });
        }
        // Still busy until the run has left the cache (below).
        let busy = actor
            .busy
            .take()
            .unwrap_or_else(|| actor.inner.activity.ticket());
        (exit, busy)
    }
    .instrument(span)
    .await;
    inner.new_runs.first_flush_done(&run_id);
    match exit {
        Exit::Evicted => debug!(%run_id, "evicted"),
        Exit::Done => inner.live.remove(&run_id, generation),
        Exit::Blocked => {
            inner.live.remove(&run_id, generation);
            inner.live.block(run_id);
        }
        Exit::NotMine => {
            debug!(%run_id, ?exit, "run leaves this node's memory");
            inner.live.remove(&run_id, generation);
        }
        Exit::Failed(why) => {
            warn!(%run_id, %why, "run stopped on a storage failure; it will be rebuilt");
            inner.live.remove(&run_id, generation);
            inner.wake_later(run_id);
        }
        Exit::Broken(why) => {
            error!(%run_id, %why, "run stopped on a terminal storage failure; it is left alone until restart");
            inner.live.remove(&run_id, generation);
            inner.live.block(run_id);
        }
    }
    drop(busy);
}

struct Actor {
    inner: Arc<Inner>,
    run_id: String,
    generation: u64,
    idle: Arc<AtomicBool>,
    applied: tokio::sync::watch::Sender<u64>,
    steps: JoinSet<(EventBody, Ticket)>,
    fired_sent: HashSet<u32>,
    status_sent: Option<RunStatus>,
    wake_sent: Option<Option<u64>>,
    checkpoint_sent: u64,
    /// A step result this actor wrote is committed and waits in the inbox, not yet applied
    /// (the machine's last `seq` when it was written: the result comes after it). The run is
    /// still busy, so no status change is written meanwhile: without this, each step would
    /// write `suspended` and then `running` again. A message with only entries the machine
    /// already has (the run's own `RunStarted`, handed over by the commit that created it)
    /// does not count as the result.
    result_after: Option<u64>,
    announced: bool,
    /// This actor's claim on the run; every write carries it. Set before loading when the
    /// commit that made the run live claimed it already.
    fence: Option<Fence>,
    /// The run that started this one as a child run: told (woken) when this run ends, as its
    /// `ChildEnded` was appended in the same transaction.
    parent: Option<String>,
    /// Counts this run as work in flight while it is between two waits (`None` while it
    /// waits in `run`'s `select!`; see `activity.rs`).
    busy: Option<Ticket>,
}
