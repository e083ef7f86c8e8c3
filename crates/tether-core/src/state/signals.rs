//! Issuing the commands of threads and signals: commands answered by their own committed
//! record (shared state access, hook spawns, signals sent), waits for a signal, and the
//! release of a wait that ends without its payload.

use super::{describe, RecordSlot, RunState, SignalSlot};
use crate::event::{CommandIndex, EventBody};

impl RunState {
    /// Issue a command answered by its own committed record (`template` carries the command's
    /// inputs; the store fills the outputs). Matching a recorded entry means same kind and
    /// same [`describe`] text (key, signal id, target workflow).
    ///
    /// A new command issued once the run has been asked to cancel is not written (its future
    /// fails with `Cancelled`): the cancel request is applied at the same journal position on
    /// replay, so replay issues it unwritten too. A journal that recorded such a command (an
    /// older release wrote them) still answers it from its record.
    pub fn issue_record(
        &mut self,
        template: impl FnOnce(CommandIndex) -> EventBody,
    ) -> CommandIndex {
        let cmd = self.take_cmd();
        let body = template(cmd);
        let written = match self.recorded.get(&cmd) {
            Some(rec) if rec.kind() == body.kind() && describe(rec) == describe(&body) => true,
            Some(other) => {
                let other = other.clone();
                self.mismatch(cmd, &other, describe(&body));
                true
            }
            None if self.cancelled.is_some() => false,
            None => {
                self.outbox.push(body.clone());
                true
            }
        };
        if let (true, EventBody::SignalSent { signal_id, .. }) = (written, &body) {
            self.signals_sent.insert(signal_id.clone());
        }
        self.records.insert(
            cmd,
            RecordSlot {
                record: None,
                waker: None,
            },
        );
        cmd
    }

    /// Issue a wait for a signal.
    pub fn issue_wait(&mut self, signal_id: &str) -> CommandIndex {
        let cmd = self.issue_record(|cmd| EventBody::SignalWaited {
            cmd,
            signal_id: signal_id.to_string(),
        });
        self.records.remove(&cmd);
        let written = self.recorded.contains_key(&cmd)
            || self
                .outbox
                .last()
                .is_some_and(|b| b.command_index() == Some(cmd));
        self.signals.insert(
            cmd,
            SignalSlot {
                payload: None,
                waker: None,
                written,
            },
        );
        cmd
    }

    /// Release a wait for a signal that ends without taking its payload (see
    /// [`EventBody::SignalReleased`]). Not during teardown (an evicted run's waits stay).
    ///
    /// Journals of the first release lack this entry. The rule that keeps them replaying: a
    /// release is *optional* in a recorded journal. If the record at the next command index
    /// is a release of this wait, it answers it; if it is another command (the journal moved
    /// on without a release), the release is skipped and takes no command index, so the
    /// commands after it keep their recorded indices; if there is none (the journal ends
    /// here), the release is new and written. A release of another wait at that index is a
    /// non-determinism like any mismatch. Releases are written even after a cancel request:
    /// they give back, never take.
    pub fn issue_release(&mut self, wait_cmd: CommandIndex, signal_id: &str) {
        if self.teardown {
            return;
        }
        let next = self.next_cmd;
        match self.recorded.get(&next) {
            Some(EventBody::SignalReleased { wait_cmd: w, .. }) if *w == wait_cmd => {
                self.take_cmd();
            }
            Some(rec @ EventBody::SignalReleased { .. }) => {
                let rec = rec.clone();
                let cmd = self.take_cmd();
                self.mismatch(
                    cmd,
                    &rec,
                    format!("release of wait #{wait_cmd} for signal {signal_id:?}"),
                );
            }
            // An older journal that went on without releases: skip it.
            Some(_) => {}
            None => {
                let cmd = self.take_cmd();
                self.outbox.push(EventBody::SignalReleased {
                    cmd,
                    wait_cmd,
                    signal_id: signal_id.to_string(),
                    returned: false,
                    delivered_to: None,
                });
            }
        }
    }
}
