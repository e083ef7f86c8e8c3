//! Where the deterministic core gets the two non-deterministic inputs it needs when a command is
//! issued for the first time: the wall clock and randomness. Replay never asks: it reads the
//! journal. The engine plugs in the system clock and the OS's cryptographic RNG; tests plug in
//! [`TestEnvironment`].

use std::sync::atomic::{AtomicU64, Ordering};

/// The clock and the randomness source of live (non-replayed) execution.
pub trait Environment: Send + Sync + 'static {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// Fill `buf` with random bytes. Hook tokens come from here, so the engine's implementation
    /// must be a cryptographic source.
    fn random_bytes(&self, buf: &mut [u8]);

    /// The base URL callers reach this server at (for webhook URLs), e.g.
    /// `https://tether.example.com`. Not journaled: a URL follows the current configuration.
    fn public_base_url(&self) -> String {
        "http://127.0.0.1:8080".to_string()
    }
}

/// A deterministic environment for tests: a clock you move by hand and a seeded generator.
/// Never use it for real runs: its tokens are guessable.
#[derive(Debug)]
pub struct TestEnvironment {
    now: AtomicU64,
    seed: AtomicU64,
}

impl TestEnvironment {
    /// A clock starting at `start_ms` and a generator seeded with `seed`.
    pub fn new(start_ms: u64, seed: u64) -> Self {
        TestEnvironment {
            now: AtomicU64::new(start_ms),
            seed: AtomicU64::new(seed.max(1)),
        }
    }

    /// Move the clock forward.
    pub fn advance(&self, ms: u64) {
        self.now.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Environment for TestEnvironment {
    fn now_ms(&self) -> u64 {
        self.now.load(Ordering::SeqCst)
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        for b in buf.iter_mut() {
            // xorshift64*
            let mut x = self.seed.load(Ordering::SeqCst);
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            self.seed.store(x, Ordering::SeqCst);
            *b = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8;
        }
    }
}
