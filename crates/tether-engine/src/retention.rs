//! Bounded disk: the background task that deletes ended runs past
//! [`crate::EngineConfig::retention`] and forgets idempotency keys past
//! [`crate::EngineConfig::idempotency_window`]. *What* may go is the store's rule
//! (`tether_store::retention`); this only decides *when*, in batches of
//! [`RETENTION_BATCH`] so a backlog never holds the database for long.

use std::sync::Weak;
use std::time::Duration;

use tether_store::retention::RETENTION_BATCH;

use crate::engine::Inner;
use crate::error::EngineError;

/// What one [`crate::Engine::apply_retention`] pass deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RetentionPass {
    /// Ended runs deleted (hook threads included).
    pub runs_deleted: u64,
    /// Idempotency keys forgotten.
    pub keys_deleted: u64,
}

impl crate::Engine {
    /// Apply the configured retention and idempotency window once, now (by the engine's
    /// clock): delete, batch after batch, every ended namespace past
    /// [`crate::EngineConfig::retention`] and every key past
    /// [`crate::EngineConfig::idempotency_window`]. Does nothing for a setting that is `None`.
    /// The background task calls this every [`crate::EngineConfig::retention_interval`]; tests
    /// call it directly. Deletions are counted in `tether_runs_deleted_total` and
    /// `tether_idempotency_keys_deleted_total`.
    pub async fn apply_retention(&self) -> Result<RetentionPass, EngineError> {
        apply(&self.inner).await
    }
}

async fn apply(engine: &Inner) -> Result<RetentionPass, EngineError> {
    let now = engine.now_ms();
    let mut pass = RetentionPass::default();
    if let Some(retention) = engine.config.retention {
        let cutoff = now.saturating_sub(millis(retention));
        loop {
            let n = engine
                .store
                .delete_ended_before(cutoff, RETENTION_BATCH)
                .await?;
            pass.runs_deleted += n;
            engine.metrics.retention_done(n, 0);
            if n < RETENTION_BATCH as u64 {
                break;
            }
            // Let the run writes waiting for the database go first.
            tokio::task::yield_now().await;
        }
    }
    if let Some(window) = engine.config.idempotency_window {
        let cutoff = now.saturating_sub(millis(window));
        loop {
            let n = engine
                .store
                .delete_keys_before(cutoff, RETENTION_BATCH)
                .await?;
            pass.keys_deleted += n;
            engine.metrics.retention_done(0, n);
            if n < RETENTION_BATCH as u64 {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    if pass != RetentionPass::default() {
        tracing::info!(
            runs = pass.runs_deleted,
            keys = pass.keys_deleted,
            "retention deleted ended runs and expired idempotency keys"
        );
    }
    Ok(pass)
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// How long the task sleeps between passes: the configured interval, but at most a quarter
/// of the shorter window (at least 100 ms).
pub(crate) fn pause(config: &crate::EngineConfig) -> Duration {
    [config.retention, config.idempotency_window]
        .into_iter()
        .flatten()
        .map(|d| d / 4)
        .fold(config.retention_interval, Duration::min)
        .max(Duration::from_millis(100))
}

/// Whether the engine has anything for the task to do.
pub(crate) fn enabled(config: &crate::EngineConfig) -> bool {
    config.retention.is_some() || config.idempotency_window.is_some()
}

/// Every [`pause`]: one [`apply`] pass. A failed pass is logged and tried again next time.
pub(crate) async fn retention_loop(inner: Weak<Inner>) {
    loop {
        let Some(engine) = inner.upgrade() else {
            return;
        };
        if engine.lifecycle.is_stopping() {
            return;
        }
        let pause = pause(&engine.config);
        if let Err(e) = apply(&engine).await {
            tracing::warn!(error = %e, "could not delete ended runs or expired idempotency keys; will try again");
        }
        drop(engine);
        tokio::time::sleep(pause).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pause_follows_the_shorter_window() {
        let mut config = crate::EngineConfig::default();
        assert_eq!(pause(&config), Duration::from_secs(60));
        config.retention = Some(Duration::from_secs(20));
        assert_eq!(pause(&config), Duration::from_secs(5));
        config.idempotency_window = None;
        config.retention = Some(Duration::from_millis(1));
        assert_eq!(pause(&config), Duration::from_millis(100));
        config.retention = None;
        assert!(!enabled(&config));
    }
}
