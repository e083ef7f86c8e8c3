//! Runs this node is creating: the hand-over from `Engine::start_run` (`start.rs`) to the run's
//! first actor. The actor builds the run from a [`Seed`] (the claim and the `RunStarted` entry
//! the creating commit wrote) instead of reading the store, and the `start_run` caller waits
//! until the run has first flushed what it waits for.

use std::collections::HashMap;

use parking_lot::Mutex;
use tether_core::Event;
use tether_store::Fence;
use tokio::sync::oneshot;

/// What the first actor of a run this node just created needs: the claim it holds and the
/// journal the creating commit wrote.
pub(crate) struct Seed {
    /// The claim made in the creating commit.
    pub(crate) fence: Fence,
    /// The `RunStarted` entry, as the store wrote it.
    pub(crate) started: Event,
}

/// The runs being started on this node, by run id.
#[derive(Default)]
pub(crate) struct NewRuns {
    /// Runs just started whose caller waits for their first suspension.
    starting: Mutex<HashMap<String, oneshot::Sender<()>>>,
    /// Seeds not yet taken by an actor.
    seeds: Mutex<HashMap<String, Seed>>,
}

impl NewRuns {
    /// Leave `seed` for the run's first actor; the receiver hears when the run first flushed.
    /// Must come before the creating commit (which hands `RunStarted` to a new actor).
    pub(crate) fn register(&self, run_id: &str, seed: Seed) -> oneshot::Receiver<()> {
        let (tx, first_flush) = oneshot::channel();
        self.starting.lock().insert(run_id.to_owned(), tx);
        self.seeds.lock().insert(run_id.to_owned(), seed);
        first_flush
    }

    /// The seed of `run_id`, if this node created it and no actor has taken the seed yet.
    pub(crate) fn take_seed(&self, run_id: &str) -> Option<Seed> {
        self.seeds.lock().remove(run_id)
    }

    /// The run has written its first decisions (or ended): release `start_run`'s caller.
    pub(crate) fn first_flush_done(&self, run_id: &str) {
        if let Some(tx) = self.starting.lock().remove(run_id) {
            let _ = tx.send(());
        }
    }

    /// Forget the run's hand-over (started, or its creation failed): an actor that has not
    /// taken its seed reads the store instead.
    pub(crate) fn forget(&self, run_id: &str) {
        self.starting.lock().remove(run_id);
        self.seeds.lock().remove(run_id);
    }
}
