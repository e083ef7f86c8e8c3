//! The live environment: the system clock and the operating system's cryptographic RNG.

use std::time::{SystemTime, UNIX_EPOCH};

use tether_core::Environment;

/// System clock + OS randomness (`getrandom`). Hook tokens drawn from it are real secrets.
#[derive(Debug, Default, Clone)]
pub struct SystemEnvironment {
    /// The base URL webhooks are reached at (`None`: `http://127.0.0.1:8080`).
    pub public_url: Option<String>,
}

/// Milliseconds since the Unix epoch, by the system clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl Environment for SystemEnvironment {
    fn now_ms(&self) -> u64 {
        now_ms()
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
