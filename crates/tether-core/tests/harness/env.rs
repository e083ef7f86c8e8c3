//! The simulation's clock and random source, [`SimEnv`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tether_core::{Environment, TestEnvironment};

use super::SEED;

/// The simulation's clock and random source: a [`TestEnvironment`] (a clock moved by hand and a
/// seeded generator) that also counts the random bytes it has handed out.
///
/// The count is what lets a replayed run pick up the random sequence exactly where the live run
/// was (see [`SimEnv::skip_to`]): a replay answers `random`, `uuid` and generated tokens from
/// the journal, so it draws fewer bytes than the live run did.
#[derive(Debug)]
pub struct SimEnv {
    inner: TestEnvironment,
    drawn: AtomicU64,
}

impl SimEnv {
    /// A clock at `start_ms` and a generator seeded with [`SEED`].
    pub fn new(start_ms: u64) -> Arc<SimEnv> {
        Arc::new(SimEnv {
            inner: TestEnvironment::new(start_ms, SEED),
            drawn: AtomicU64::new(0),
        })
    }

    /// The simulated time, ms since the Unix epoch.
    pub fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    /// Move the clock forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.inner.advance(ms);
    }

    /// Move the clock forward to `at_ms` (the clock never goes back).
    pub fn advance_to(&self, at_ms: u64) {
        let now = self.now_ms();
        assert!(
            at_ms >= now,
            "the clock cannot go back from {now} to {at_ms}"
        );
        self.inner.advance(at_ms - now);
    }

    /// How many random bytes were handed out so far.
    pub fn drawn(&self) -> u64 {
        self.drawn.load(Ordering::SeqCst)
    }

    /// Draw and throw away bytes until `drawn` bytes have been handed out in all.
    pub fn skip_to(&self, drawn: u64) {
        let have = self.drawn();
        assert!(
            have <= drawn,
            "this environment already handed out {have} bytes, more than the {drawn} asked for"
        );
        let mut sink = vec![0u8; (drawn - have) as usize];
        self.random_bytes(&mut sink);
    }
}

impl Environment for SimEnv {
    fn now_ms(&self) -> u64 {
        self.inner.now_ms()
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        self.drawn.fetch_add(buf.len() as u64, Ordering::SeqCst);
        self.inner.random_bytes(buf);
    }
}
