//! The PostgreSQL batch as the append planner sees it ([`tether_store::plan::AppendBackend`]):
//! each side effect of an entry is the SQL in `hooks` and `threads`, queued in the batch's
//! pipeline and write buffer where no answer is needed.

use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody};
use tether_store::plan::{AppendBackend, NewHook, NewThread, Released, SignalOutcome};
use tether_store::StoreError;

use crate::hooks::{register_hook, release_hook};
use crate::threads;
use crate::write::Batch;

impl AppendBackend for Batch<'_, '_> {
    async fn namespace(&mut self, run_id: &str) -> Result<String, StoreError> {
        // Other nodes write the same namespace: lock its shared state for this transaction.
        threads::lock_namespace(self, run_id).await
    }

    async fn state_op(&mut self, root: &str, body: EventBody) -> Result<EventBody, StoreError> {
        threads::state_op(self, root, body).await
    }

    async fn create_thread(&mut self, thread: NewThread<'_>) -> Result<(), StoreError> {
        threads::create_thread(self, thread).await.map(drop)
    }

    async fn deliver_signal(
        &mut self,
        signal_id: &str,
        payload: &Value,
        at_ms: u64,
        sender: &str,
    ) -> Result<SignalOutcome, StoreError> {
        threads::deliver_signal(self, signal_id, payload, at_ms, sender).await
    }

    async fn wait_signal(
        &mut self,
        run_id: &str,
        cmd: CommandIndex,
        signal_id: &str,
        at_ms: u64,
    ) -> Result<Option<Value>, StoreError> {
        threads::wait_signal(self, run_id, cmd, signal_id, at_ms).await
    }

    async fn release_wait(
        &mut self,
        run_id: &str,
        wait_cmd: CommandIndex,
        signal_id: &str,
        written: &[Event],
        at_ms: u64,
    ) -> Result<Released, StoreError> {
        threads::release_wait(self, run_id, wait_cmd, signal_id, written, at_ms).await
    }

    async fn register_hook(&mut self, hook: &NewHook<'_>) -> Result<Option<String>, StoreError> {
        register_hook(self, hook).await
    }

    async fn release_hook(
        &mut self,
        token: &str,
        run_id: &str,
        hook_cmd: CommandIndex,
    ) -> Result<(), StoreError> {
        release_hook(self, token, run_id, hook_cmd).await
    }
}
