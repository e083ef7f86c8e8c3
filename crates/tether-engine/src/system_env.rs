//! The live environment: the engine's clock (the system clock unless configured otherwise)
//! and the operating system's cryptographic RNG.

use tether_core::Environment;

use crate::clock::Clock;

/// The engine's [`Clock`] + OS randomness (`getrandom`). Hook tokens drawn from it are real
/// secrets, whatever the clock.
#[derive(Debug, Default, Clone)]
pub struct SystemEnvironment {
    /// The base URL webhooks are reached at (`None`: `http://127.0.0.1:8080`).
    pub public_url: Option<String>,
    /// The clock workflows read (`ctx.now()`, the deadline of `ctx.sleep`). Default: the
    /// system clock. [`crate::Engine::start`] sets it to [`crate::EngineConfig::clock`].
    pub clock: Clock,
}

/// Milliseconds since the Unix epoch, by the system clock.
pub fn now_ms() -> u64 {
    crate::clock::system_now_ms()
}

impl Environment for SystemEnvironment {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }

    fn public_base_url(&self) -> String {
        self.public_url
            .clone()
            .unwrap_or_else(|| "http://127.0.0.1:8080".to_string())
    }

    fn random_bytes(&self, buf: &mut [u8]) {
        if let Err(e) = getrandom::fill(buf) {
            // Without an OS entropy source no secret can be made; continuing would hand out
            // guessable tokens.
            panic!("the operating system's random source failed: {e}");
        }
    }
}
