//! The engine's read side: runs, journals and hooks as stored, and waiting for a run to end,
//! to apply an entry, or to hold a hook. Nothing here writes.

use std::time::Duration;

use tether_core::Event;
use tether_store::{HookRecord, RunFilter, RunRecord};

use crate::engine::{plausible, Engine};
use crate::error::EngineError;

impl Engine {
    /// One run.
    pub async fn get_run(&self, run_id: &str) -> Result<RunRecord, EngineError> {
        if !plausible(run_id) {
            return Err(EngineError::RunNotFound {
                run_id: run_id.chars().take(64).collect(),
            });
        }
        self.inner
            .store
            .get_run(run_id)
            .await?
            .ok_or_else(|| EngineError::RunNotFound {
                run_id: run_id.to_string(),
            })
    }

    /// Runs, newest first.
    pub async fn list_runs(&self, filter: &RunFilter) -> Result<Vec<RunRecord>, EngineError> {
        Ok(self.inner.store.list_runs(filter).await?)
    }

    /// The journal of a run.
    pub async fn events(&self, run_id: &str) -> Result<Vec<Event>, EngineError> {
        self.get_run(run_id).await?;
        Ok(self.inner.store.load_journal(run_id, 0).await?)
    }

    /// The child runs a run started (`ctx.start_child`), oldest first.
    pub async fn children(&self, run_id: &str) -> Result<Vec<RunRecord>, EngineError> {
        self.get_run(run_id).await?;
        Ok(self.inner.store.list_children(run_id).await?)
    }

    /// The active hooks of a run.
    pub async fn hooks(&self, run_id: &str) -> Result<Vec<HookRecord>, EngineError> {
        self.get_run(run_id).await?;
        Ok(self.inner.store.list_hooks(run_id).await?)
    }

    /// The active hook holding `token`.
    pub async fn hook(&self, token: &str) -> Result<HookRecord, EngineError> {
        if !plausible(token) {
            return Err(EngineError::HookNotFound);
        }
        if let Some(hook) = self.inner.store.get_hook(token).await? {
            return Ok(hook);
        }
        // Expired or reserved: the same answer a resume gets.
        let end = self.inner.store.get_hook_end(token).await?;
        let refused =
            tether_store::plan::hook_end::refusal(end.as_ref(), token, self.inner.now_ms());
        Err(refused.into())
    }

    /// Wait until the run has ended or `timeout` passes; returns the run as it is then. The run
    /// may end on another node sharing the store: the store's notifications of its journal
    /// growing make the wait read it again.
    pub async fn wait_for_run(
        &self,
        run_id: &str,
        timeout: Duration,
    ) -> Result<RunRecord, EngineError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let rx = self.inner.waiters.add(run_id);
            // `Ok(None)`: woken before the deadline, the run not read since; look again.
            let result = async {
                let run = self.get_run(run_id).await?;
                if run.status.is_terminal() {
                    return Ok(Some(run));
                }
                match tokio::time::timeout_at(deadline, rx).await {
                    // Ended by this node's commit: the run as read, with the ending written.
                    Ok(Ok(Some(ended))) => Ok(Some(ended.apply_to(run))),
                    Ok(_) => Ok(None),
                    Err(_) => self.get_run(run_id).await.map(Some),
                }
            }
            .await;
            self.inner.waiters.drop_closed(run_id);
            if let Some(run) = result? {
                return Ok(run);
            }
        }
    }

    /// Wait until the run, live in this process, has applied its journal up to `seq` (e.g. the
    /// entry a resume appended), or `timeout` passes. Returns whether it got there. Meant for
    /// benchmarks and tests that need to know a payload was processed, not only accepted.
    pub async fn wait_applied(&self, run_id: &str, seq: u64, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let rx = self.inner.live.applied_watch(run_id);
            if let Some(mut rx) = rx {
                let left = deadline.saturating_duration_since(tokio::time::Instant::now());
                match tokio::time::timeout(left, rx.wait_for(|s| *s >= seq)).await {
                    Ok(Ok(_)) => return true,
                    Ok(Err(_)) => {} // that actor left; look again
                    Err(_) => return false,
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Wait until `token` is held by an active hook (e.g. right after starting a run that
    /// creates it), or `timeout` passes.
    pub async fn wait_for_hook(
        &self,
        token: &str,
        timeout: Duration,
    ) -> Result<HookRecord, EngineError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(h) = self.inner.store.get_hook(token).await? {
                return Ok(h);
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(EngineError::HookNotFound);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}
