//! Versioning markers: `ctx.patched(change_id)` and `ctx.deprecate_patch(change_id)`.
//!
//! A marker ([`EventBody::Patched`]) takes no command index, so the commands after it keep the
//! indexes they have in journals written before the change. It records instead the last
//! journal entry the code had been given when it asked (`after_seq`): the machine polls the
//! code after each entry, in replay and live alike, so a replay asks at that same entry.
//! A question with no marker at its entry is answered from the rest of the journal: if the run
//! went on from here under the old code (a delivery, or a command not issued yet, follows), it
//! passed this point without the change (old branch, nothing written); if not, this is new
//! ground (new branch, marker written). A point the old code passed with nothing journaled
//! after it counts as new ground: nothing recorded depends on which branch ran there. A change
//! id answered `true` once stays `true` for the rest of the execution. A new marker is waited
//! for: [`crate::patch::Patch`] resolves once it is committed.

use super::RunState;
use crate::error::ReplayError;
use crate::event::{CommandIndex, Event, EventBody};

/// One entry of the loaded journal, as the patch decisions need it.
#[derive(Clone, Debug)]
pub(crate) enum Outline {
    /// A command record with this index.
    Command(CommandIndex),
    /// A patch marker with this change id, written after this entry.
    Marker(String, u64),
    /// Anything that reaches the code from outside (a payload, a fire, a cancel request).
    Delivery,
}

/// Where a change id stands at the moment the code asks.
enum Moment {
    /// The journal has this change's marker here, or the code took it earlier.
    Taken,
    /// The run passed this point under the old code (the journal goes on without a marker).
    PassedWithout,
    /// New ground: the journal is used up.
    Fresh,
}

impl RunState {
    /// The loaded journal's entries after `RunStarted` (and before any end), in order.
    pub fn set_outline(&mut self, journal: &[Event]) {
        self.outline = journal
            .iter()
            .filter(|e| !matches!(e.body, EventBody::RunStarted { .. }) && !e.body.is_terminal())
            .map(|e| {
                let kind = match (&e.body, e.body.command_index()) {
                    (
                        EventBody::Patched {
                            change_id,
                            after_seq,
                            ..
                        },
                        _,
                    ) => Outline::Marker(change_id.clone(), *after_seq),
                    (_, Some(cmd)) => Outline::Command(cmd),
                    (_, None) => Outline::Delivery,
                };
                (e.seq, kind)
            })
            .collect();
    }

    fn moment(&self, change_id: &str) -> Moment {
        if self.patches_taken.contains(change_id) {
            return Moment::Taken;
        }
        let here = self.applied_seq;
        // The marker of this change, if the journal has one: written at this entry (or at an
        // earlier one the code no longer asks at: the run has been on the new branch since),
        // or at a later one (this is an earlier pass, under the old code).
        let marker = self.outline.iter().find_map(|(_, o)| match o {
            Outline::Marker(id, after) if id == change_id => Some(*after),
            _ => None,
        });
        match marker {
            Some(after) if after <= here => return Moment::Taken,
            Some(_) => return Moment::PassedWithout,
            None => {}
        }
        let issued = self.next_cmd;
        let went_on = self.outline.iter().any(|(seq, o)| {
            *seq > here
                && match o {
                    // Records of commands the code has issued already say nothing about this
                    // point; other changes' markers neither.
                    Outline::Command(cmd) => *cmd >= issued,
                    Outline::Marker(..) => false,
                    Outline::Delivery => true,
                }
        });
        if went_on {
            Moment::PassedWithout
        } else {
            Moment::Fresh
        }
    }

    fn write_marker(&mut self, change_id: &str) {
        self.patches_taken.insert(change_id.to_string());
        // Asked to cancel: nothing new is written (no command follows anyway).
        if self.cancelled.is_none() && !self.teardown {
            self.patches_uncommitted.insert(change_id.to_string(), None);
            self.outbox.push(EventBody::Patched {
                change_id: change_id.to_string(),
                at_cmd: self.next_cmd,
                after_seq: self.applied_seq,
            });
        }
    }

    /// `ctx.patched(change_id)`: whether the code takes the new branch here.
    pub fn patched(&mut self, change_id: &str) -> bool {
        match self.moment(change_id) {
            Moment::Taken => {
                self.patches_taken.insert(change_id.to_string());
                true
            }
            Moment::PassedWithout => false,
            Moment::Fresh => {
                self.write_marker(change_id);
                true
            }
        }
    }

    /// `ctx.deprecate_patch(change_id)`: the old branch is gone. A run that passed this point
    /// under the old code cannot be replayed any more: that is a replay error.
    pub fn deprecate_patch(&mut self, change_id: &str) {
        match self.moment(change_id) {
            Moment::Taken => {
                self.patches_taken.insert(change_id.to_string());
            }
            Moment::Fresh => self.write_marker(change_id),
            Moment::PassedWithout => {
                if self.error.is_none() {
                    let seq = self
                        .outline
                        .iter()
                        .map(|(seq, _)| *seq)
                        .find(|seq| *seq > self.applied_seq)
                        .unwrap_or(self.applied_seq);
                    self.error = Some(ReplayError::Unexpected {
                        seq,
                        message: format!(
                            "the run passed change {change_id:?} under the code before it (the \
                             journal has no patch marker there), but this code deprecated the \
                             patch and has only the new branch; keep ctx.patched({change_id:?}) \
                             and the old branch until every such run has ended"
                        ),
                    });
                }
            }
        }
    }
}
