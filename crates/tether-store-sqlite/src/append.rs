//! The SQLite transaction as the append planner sees it ([`tether_store::plan::AppendBackend`]):
//! each side effect of an entry is the SQL in `hooks` and `threads`. Nothing here pends, so
//! the planner's future finishes on its first poll (`block_on` costs no thread).

use rusqlite::Connection;
use serde_json::Value;
use tether_core::event::{CommandIndex, Event, EventBody};
use tether_store::plan::{AppendBackend, NewHook, NewThread, Released, SignalOutcome};
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

    async fn state_op(&mut self, root: &str, body: EventBody) -> Result<EventBody, StoreError> {
        threads::state_op(self.0, root, body)
    }

    async fn create_thread(&mut self, thread: NewThread<'_>) -> Result<(), StoreError> {
        threads::create_thread(self.0, thread).map(drop)
    }

    async fn deliver_signal(
        &mut self,
        signal_id: &str,
        payload: &Value,
        at_ms: u64,
        sender: &str,
    ) -> Result<SignalOutcome, StoreError> {
        threads::deliver_signal(self.0, signal_id, payload, at_ms, sender)
    }

    async fn wait_signal(
        &mut self,
        run_id: &str,
        cmd: CommandIndex,
        signal_id: &str,
        at_ms: u64,
    ) -> Result<Option<Value>, StoreError> {
        threads::wait_signal(self.0, run_id, cmd, signal_id, at_ms)
    }

    async fn release_wait(
        &mut self,
        run_id: &str,
        wait_cmd: CommandIndex,
        signal_id: &str,
        written: &[Event],
        at_ms: u64,
    ) -> Result<Released, StoreError> {
        threads::release_wait(self.0, run_id, wait_cmd, signal_id, written, at_ms)
    }

    async fn register_hook(&mut self, hook: &NewHook<'_>) -> Result<Option<String>, StoreError> {
        register_hook(self.0, hook)
    }

    async fn release_hook(
        &mut self,
        token: &str,
        run_id: &str,
        hook_cmd: CommandIndex,
    ) -> Result<(), StoreError> {
        release_hook(self.0, token, run_id, hook_cmd)
    }
}
