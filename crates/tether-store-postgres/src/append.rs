//! The PostgreSQL batch as the append planner sees it ([`tether_store::plan::AppendBackend`]):
//! each side effect of an entry is the SQL in `hooks` and `threads`, queued in the batch's
//! pipeline and write buffer where no answer is needed.

use tether_core::event::CommandIndex;
use tether_store::plan::{AppendBackend, HookRelease, NewHook, NewThread};
use tether_store::StoreError;

use crate::hooks::{register_hook, release_hook};
use crate::threads;
use crate::write::Batch;

impl AppendBackend for Batch<'_> {
    async fn namespace(&mut self, run_id: &str) -> Result<String, StoreError> {
        // Other nodes write the same namespace: lock its shared state for this transaction.
        threads::lock_namespace(self, run_id).await
    }

    async fn create_thread(&mut self, thread: NewThread<'_>) -> Result<(), StoreError> {
        threads::create_thread(self, thread).await.map(drop)
    }

    async fn register_hook(&mut self, hook: &NewHook<'_>) -> Result<Option<String>, StoreError> {
        register_hook(self, hook).await
    }

    async fn release_hook(
        &mut self,
        token: &str,
        run_id: &str,
        hook_cmd: CommandIndex,
        how: HookRelease,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        release_hook(self, token, run_id, hook_cmd, how, at_ms).await
    }
}
