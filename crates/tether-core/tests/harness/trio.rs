//! The three-way check of a scenario, [`assert_trio`]: (a) live run, (b) full replay, (c) replay
//! of every prefix and continuation from every suspension point (see the harness docs).

use std::collections::VecDeque;
use std::sync::Arc;

use serde_json::Value;
use tether_core::{ErasedWorkflow, Event, EventBody, Progress, ReplayError, RunMachine, StepTask};

use super::sim::Snapshot;
use super::{assert_same_journal, is_command_record, replay_run, without_outputs, Replayed, Sim};

impl Sim {
    /// Rebuild a fresh machine from the first `n` journal entries, as a worker restarting after
    /// a crash that happened right after entry `n` was committed.
    pub fn replay_prefix(&self, n: usize) -> Result<Replayed, ReplayError> {
        replay_run(&self.run_id, &self.workflow, &self.journal[..n])
    }

    /// (b): the complete journal replays to the same end, issuing nothing.
    pub fn check_full_replay(&self) {
        let r = replay_run(&self.run_id, &self.workflow, &self.journal)
            .unwrap_or_else(|e| panic!("(b) replaying the complete journal failed: {e}\n{self:?}"));
        assert_eq!(
            r.progress,
            Progress::Finished(self.end().clone()),
            "(b) replaying the complete journal must reach the recorded end\n{self:?}"
        );
        assert!(
            r.outbox.is_empty(),
            "(b) replaying the complete journal issued new records {:?}\n{self:?}",
            r.outbox
        );
        assert!(
            r.step_tasks.is_empty(),
            "(b) replaying the complete journal asked to run steps {:?}\n{self:?}",
            r.step_tasks
        );
        let live = self.snapshots.last().expect("at least one entry");
        assert_eq!(r.machine.pending_timers(), live.pending_timers);
        assert_eq!(r.machine.pending_deadlines(), live.pending_deadlines);
        assert_eq!(r.machine.steps_in_flight(), live.steps_in_flight);
    }

    /// (c): every prefix replays to the live state at that point; from every suspension point
    /// (nothing left to append) the replayed run, continued with the rest of the journal's
    /// deliveries, writes the same journal.
    pub fn check_every_prefix(&self) {
        for n in 1..self.journal.len() {
            let r = self.replay_prefix(n).unwrap_or_else(|e| {
                panic!("(c) replaying the first {n} entries failed: {e}\n{self:?}")
            });
            let live = &self.snapshots[n - 1];
            let here = format!("(c) after replaying the first {n} entries");
            assert_eq!(r.progress, live.progress, "{here}: progress\n{self:?}");
            assert_eq!(
                r.machine.pending_timers(),
                live.pending_timers,
                "{here}: pending timers\n{self:?}"
            );
            assert_eq!(
                r.machine.pending_deadlines(),
                live.pending_deadlines,
                "{here}: pending deadlines\n{self:?}"
            );
            assert_eq!(
                r.machine.steps_in_flight(),
                live.steps_in_flight,
                "{here}: steps in flight\n{self:?}"
            );
            self.check_records_are_recorded_later(n, &r.outbox);
            self.check_steps_are_rerun(n, &r.step_tasks);
            if r.outbox.is_empty() {
                let continued = self.continue_after(n, r);
                assert_same_journal(&continued, &self.journal, &here);
            }
        }
    }

    /// A replay cut between a command and its record issues the record again: it must be the
    /// one the live run appended later, at the same command index.
    fn check_records_are_recorded_later(&self, n: usize, outbox: &[EventBody]) {
        for record in outbox {
            let same_place = |b: &EventBody| match (record, b) {
                // A patch marker takes no command index: the same change id.
                (EventBody::Patched { change_id, .. }, EventBody::Patched { change_id: c, .. }) => {
                    change_id == c
                }
                (EventBody::Patched { .. }, _) => false,
                _ => {
                    let cmd = record
                        .command_index()
                        .expect("records carry a command index");
                    is_command_record(b) && b.command_index() == Some(cmd)
                }
            };
            let later = self.journal[n..]
                .iter()
                .map(|e| &e.body)
                .find(|b| same_place(b))
                .unwrap_or_else(|| {
                    panic!("(c) after replaying {n} entries the machine issued {record:?}, which the live run never recorded\n{self:?}")
                });
            assert!(
                same_command(record, later),
                "(c) after replaying {n} entries the machine issued {record:?}; the live run recorded {later:?}\n{self:?}"
            );
        }
    }

    /// A replay cut while a step runs asks for the step again (at-least-once): its result, if
    /// the live run has one, is recorded later under the same name.
    fn check_steps_are_rerun(&self, n: usize, tasks: &[StepTask]) {
        for task in tasks {
            let result = |range: &[Event]| {
                range.iter().find_map(|e| match &e.body {
                    EventBody::StepCompleted { cmd, name, .. }
                    | EventBody::StepFailed { cmd, name, .. }
                        if *cmd == task.cmd =>
                    {
                        Some(name.clone())
                    }
                    _ => None,
                })
            };
            assert_eq!(
                result(&self.journal[..n]),
                None,
                "(c) after replaying {n} entries the machine asked to re-run step #{} whose result is journaled\n{self:?}",
                task.cmd
            );
            if let Some(name) = result(&self.journal[n..]) {
                assert_eq!(name, task.name, "(c) step #{} changed name", task.cmd);
            }
        }
    }

    /// Continue a run replayed from the first `n` entries as the live host would: append its own
    /// command records, and take every delivery and step result from the rest of the live
    /// journal, in the same order and at the same times. Returns the journal it writes.
    fn continue_after(&self, n: usize, replayed: Replayed) -> Vec<Event> {
        let Replayed {
            mut machine,
            mut progress,
            step_tasks: mut tasks,
            env,
            ..
        } = replayed;
        // The replay drew fewer random bytes than the live run did (recorded values are read
        // from the journal): catch up, so that new draws are the live run's draws.
        env.skip_to(self.snapshots[n - 1].drawn);
        let mut journal = self.journal[..n].to_vec();
        let mut outbox: VecDeque<EventBody> = VecDeque::new();
        for recorded in &self.journal[n..] {
            env.advance_to(recorded.at_ms);
            outbox.extend(machine.take_outbox());
            tasks.extend(machine.take_step_tasks());
            let here = format!(
                "(c) continuing after {n} replayed entries, at entry {}",
                recorded.seq
            );
            if let EventBody::AttemptFailed { error, .. } = &recorded.body {
                // The engine writes this in place of the failed attempt's end, then rebuilds
                // the thread by replay for its next attempt.
                assert!(
                    matches!(&progress, Progress::Finished(EventBody::RunFailed { error: e }) if e == error),
                    "{here}: the attempt did not fail with {error:?}: {progress:?}\n{self:?}"
                );
                assert!(
                    outbox.is_empty(),
                    "{here}: records left over {outbox:?}\n{self:?}"
                );
                journal.push(recorded.clone());
                let (m, p) =
                    RunMachine::replay(&self.run_id, self.workflow.as_ref(), env.clone(), &journal)
                        .unwrap_or_else(|e| {
                            panic!("{here}: the next attempt failed: {e}\n{self:?}")
                        });
                machine = m;
                progress = p;
                tasks.clear();
                assert_eq!(
                    Snapshot::of(&machine, &progress, &env),
                    self.snapshots[recorded.seq as usize - 1],
                    "{here}: state differs from the live run\n{self:?}"
                );
                continue;
            }
            let body = match &recorded.body {
                b if b.is_terminal() => match &progress {
                    Progress::Finished(end) => end.clone(),
                    Progress::Waiting => panic!("{here}: the run has not ended\n{self:?}"),
                },
                b if is_command_record(b) => {
                    let mine = outbox.pop_front().unwrap_or_else(|| {
                        panic!("{here}: the run issued no command where the live run recorded {b:?}\n{self:?}")
                    });
                    match (&mine, b) {
                        // The store's answer to a contested token.
                        (
                            EventBody::HookCreated { cmd, token, .. },
                            EventBody::HookConflict {
                                cmd: c, token: t, ..
                            },
                        ) if cmd == c && token == t => b.clone(),
                        // The same command: the store filled its outputs (what was read, the
                        // count, where a signal went) as it did for the live run.
                        _ if without_outputs(&mine) == without_outputs(b) => b.clone(),
                        _ => mine,
                    }
                }
                EventBody::StepCompleted { cmd, name, .. }
                | EventBody::StepFailed { cmd, name, .. } => {
                    match tasks.iter().position(|t| t.cmd == *cmd) {
                        Some(i) => {
                            let task = tasks.remove(i);
                            assert_eq!(&task.name, name, "{here}: step name");
                        }
                        None => assert!(
                            journal.iter().any(|e| matches!(&e.body,
                                EventBody::StepCompleted { cmd: c, .. } | EventBody::StepFailed { cmd: c, .. } if c == cmd)),
                            "{here}: the run never asked to run step #{cmd}\n{self:?}"
                        ),
                    }
                    recorded.body.clone()
                }
                delivery => delivery.clone(),
            };
            let event = Event {
                seq: recorded.seq,
                at_ms: env.now_ms(),
                body,
            };
            journal.push(event.clone());
            progress = machine
                .feed(&event)
                .unwrap_or_else(|e| panic!("{here}: feeding failed: {e}\n{self:?}"));
            assert_eq!(
                Snapshot::of(&machine, &progress, &env),
                self.snapshots[event.seq as usize - 1],
                "{here}: state differs from the live run\n{self:?}"
            );
        }
        outbox.extend(machine.take_outbox());
        assert!(
            outbox.is_empty(),
            "(c) continuing after {n} replayed entries: records left over {outbox:?}\n{self:?}"
        );
        journal
    }
}

/// Run a scenario three ways (see the harness module documentation) and return the live
/// simulation. `driver` plays the outside world; whatever it leaves undone is settled
/// afterwards, and the run must then have ended.
pub fn assert_trio(
    workflow: &Arc<dyn ErasedWorkflow>,
    input: Value,
    driver: impl FnOnce(&mut Sim),
) -> Sim {
    assert_trio_of(Sim::start(workflow, input), driver)
}

/// [`assert_trio`] for a run already started (e.g. a hook thread, [`Sim::start_thread`]).
pub fn assert_trio_of(mut sim: Sim, driver: impl FnOnce(&mut Sim)) -> Sim {
    driver(&mut sim);
    sim.settle();
    assert!(
        sim.is_finished(),
        "(a) the driver must bring the run to its end\n{sim:?}"
    );
    sim.check_full_replay();
    sim.check_every_prefix();
    sim
}

/// Whether a record issued after a replay is the same command as the one recorded live. Values
/// that come from the environment (times, random values, generated tokens) may differ.
fn same_command(issued: &EventBody, recorded: &EventBody) -> bool {
    match (issued, recorded) {
        // A marker decided again after a crash lost it may be decided at a later entry.
        (EventBody::Patched { change_id, .. }, EventBody::Patched { change_id: c, .. }) => {
            change_id == c
        }
        // The expiry comes from the clock when the hook is created, like a timer's deadline.
        (
            EventBody::HookCreated {
                generated: false, ..
            },
            EventBody::HookCreated { .. },
        ) => without_expiry(issued) == without_expiry(recorded),
        (
            EventBody::HookCreated {
                cmd,
                token,
                generated: false,
                ..
            },
            EventBody::HookConflict {
                cmd: c, token: t, ..
            },
        ) => cmd == c && token == t,
        (
            EventBody::HookDisposed { cmd, hook_cmd, .. },
            EventBody::HookDisposed {
                cmd: c,
                hook_cmd: h,
                ..
            },
        ) => cmd == c && hook_cmd == h,
        _ => issued.kind() == recorded.kind() && issued.command_index() == recorded.command_index(),
    }
}

/// A hook creation without its expiry instant (which comes from the clock).
fn without_expiry(body: &EventBody) -> EventBody {
    match body.clone() {
        EventBody::HookCreated {
            cmd,
            token,
            kind,
            metadata,
            definition,
            generated,
            reserve_ms,
            ..
        } => EventBody::HookCreated {
            cmd,
            token,
            kind,
            metadata,
            definition,
            generated,
            expires_at_ms: None,
            reserve_ms,
        },
        other => other,
    }
}
