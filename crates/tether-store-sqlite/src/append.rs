//! The SQLite transaction as the append planner sees it ([`tether_store::plan::AppendBackend`]):
//! each side effect of an entry is the SQL in `hooks` and `threads`. Nothing here pends, so
//! the planner's future finishes on its first poll (`block_on` costs no thread).

use rusqlite::Connection;
use tether_core::event::CommandIndex;
use tether_store::plan::{AppendBackend, HookRelease, NewHook, NewThread};
use tether_store::StoreError;

use crate::hooks::{register_hook, release_hook};
use crate::threads;

/// The write transaction's connection.
pub(crate) struct Tx<'c>(pub(crate) &'c Connection);

impl AppendBackend for Tx<'_> {
    async fn namespace(&mut self, run_id: &str) -> Result<String, StoreError> {
        // One writer connection: the immediate transaction already excludes every other write.
        threads::root_of(self.0, run_id)
    }

    async fn create_thread(&mut self, thread: NewThread<'_>) -> Result<(), StoreError> {
        threads::create_thread(self.0, thread).map(drop)
    }

    async fn register_hook(&mut self, hook: &NewHook<'_>) -> Result<Option<String>, StoreError> {
        register_hook(self.0, hook)
    }

    async fn release_hook(
        &mut self,
        token: &str,
        run_id: &str,
        hook_cmd: CommandIndex,
        how: HookRelease,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        release_hook(self.0, token, run_id, hook_cmd, how, at_ms)
    }
}
