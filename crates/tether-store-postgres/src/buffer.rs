//! Set-based writes: the journal entries, run updates and hook releases of many ops, gathered
//! and written with one statement per kind.
//!
//! A batch of 30 resumes and 30 run completions would otherwise send about 150 statements, and
//! the server's cost per statement (not per row) is most of the batch's time. The batch keeps
//! what its ops write here and turns it into at most six statements ([`WriteBuffer::take`])
//! before any statement that reads (so every read sees every earlier write) and before commit.
//!
//! A statement joining a table to `unnest(...)` also names the keys with `= ANY($1)`: with
//! only the join, the generic plan PostgreSQL settles on for a prepared statement hashes the
//! whole table (a sequential scan per batch, growing with the table).

use std::collections::HashMap;

use tether_core::event::Event;
use tether_store::StoreError;

use crate::pipeline::OwnedParams;
use crate::rows::{encode_body, to_db};

/// One statement made from the buffer: SQL, parameters, and what it does (for errors).
pub(crate) type Statement = (&'static str, OwnedParams, &'static str);

/// How an op changes a run's row (the columns it does not name keep their value).
pub(crate) struct RunUpdate {
    /// The run's last journal `seq`.
    pub(crate) last_seq: i64,
    /// Commit time.
    pub(crate) updated_at: i64,
    /// New status, if it changes.
    pub(crate) status: Option<&'static str>,
    /// New wake-up time, if it changes (`Some(None)` clears it).
    pub(crate) wake_at: Option<Option<i64>>,
    /// The run ends: its output and error (JSON); clears `wake_at` and the lease too.
    pub(crate) end: Option<(Option<String>, Option<String>)>,
}

/// What the ops of a batch wrote and the server has not been sent yet.
#[derive(Default)]
pub(crate) struct WriteBuffer {
    /// Journal entries: run id, seq, commit time, kind, JSON body.
    ev_runs: Vec<String>,
    ev_seqs: Vec<i64>,
    ev_ats: Vec<i64>,
    ev_kinds: Vec<&'static str>,
    ev_bodies: Vec<String>,
    /// Run updates, one per run (a later update of the same run is merged into it).
    runs: Vec<(String, RunUpdate)>,
    run_index: HashMap<String, usize>,
    /// Hooks released: token, run id, command index, whether it expired, when.
    released: Vec<(String, String, i64, bool, i64)>,
    /// Runs that ended, and when: every hook and signal wait of theirs goes.
    ended: Vec<(String, i64)>,
    /// Checkpoint marks to raise: run id, mark.
    checkpoints: Vec<(String, i64)>,
}

/// The released hooks of a batch, with what they leave (`tether_store::plan::hook_end::end_of` in SQL; the
/// largest reservation is `hook_end::MAX_RESERVE_MS`, checked by a test).
const RELEASE_HOOKS: &str = concat!(
    "WITH gone AS (
        DELETE FROM hooks h
        USING unnest($1::text[], $2::text[], $3::bigint[], $4::bool[], $5::bigint[])
              AS r (token, run_id, cmd, expired, at)
        WHERE h.token = r.token AND h.run_id = r.run_id AND h.hook_cmd = r.cmd
          AND h.token = ANY($1)
        RETURNING h.token, h.run_id, h.hook_cmd, h.reserve_ms, r.expired, r.at)",
    "
    INSERT INTO hook_ends (token, run_id, hook_cmd, expired, ended_at, reserved_until)
    SELECT token, run_id, hook_cmd, expired, at,
           CASE WHEN reserve_ms IS NOT NULL THEN at + LEAST(reserve_ms, 3153600000000) END
      FROM gone WHERE expired OR reserve_ms IS NOT NULL
    ON CONFLICT (token) DO UPDATE SET run_id = EXCLUDED.run_id, hook_cmd = EXCLUDED.hook_cmd,
        expired = EXCLUDED.expired, ended_at = EXCLUDED.ended_at,
        reserved_until = EXCLUDED.reserved_until"
);

/// Every hook of the ended runs goes; those with a reservation leave it (as in [`RELEASE_HOOKS`]).
const RELEASE_HOOKS_OF_ENDED: &str = concat!(
    "WITH gone AS (
        DELETE FROM hooks h
        USING unnest($1::text[], $2::bigint[]) AS e (run_id, at)
        WHERE h.run_id = e.run_id AND h.run_id = ANY($1)
        RETURNING h.token, h.run_id, h.hook_cmd, h.reserve_ms, false AS expired, e.at)",
    "
    INSERT INTO hook_ends (token, run_id, hook_cmd, expired, ended_at, reserved_until)
    SELECT token, run_id, hook_cmd, expired, at,
           CASE WHEN reserve_ms IS NOT NULL THEN at + LEAST(reserve_ms, 3153600000000) END
      FROM gone WHERE expired OR reserve_ms IS NOT NULL
    ON CONFLICT (token) DO UPDATE SET run_id = EXCLUDED.run_id, hook_cmd = EXCLUDED.hook_cmd,
        expired = EXCLUDED.expired, ended_at = EXCLUDED.ended_at,
        reserved_until = EXCLUDED.reserved_until"
);

impl WriteBuffer {
    /// Keep journal entries of `run_id`.
    pub(crate) fn events(&mut self, run_id: &str, events: &[Event]) -> Result<(), StoreError> {
        for event in events {
            self.ev_runs.push(run_id.to_owned());
            self.ev_seqs.push(to_db(event.seq, "journal seq")?);
            self.ev_ats.push(to_db(event.at_ms, "commit time")?);
            self.ev_kinds.push(event.body.kind());
            self.ev_bodies.push(encode_body(&event.body)?);
        }
        Ok(())
    }

    /// Keep an update of `run_id`'s row, merged into an earlier one of the same run.
    pub(crate) fn run(&mut self, run_id: &str, update: RunUpdate) {
        if let Some(&i) = self.run_index.get(run_id) {
            let kept = &mut self.runs[i].1;
            kept.last_seq = update.last_seq;
            kept.updated_at = update.updated_at;
            if update.status.is_some() {
                kept.status = update.status;
            }
            if update.wake_at.is_some() {
                kept.wake_at = update.wake_at;
            }
            if update.end.is_some() {
                kept.end = update.end;
            }
        } else {
            self.run_index.insert(run_id.to_owned(), self.runs.len());
            self.runs.push((run_id.to_owned(), update));
        }
    }

    /// Keep the release of the token `token` held by `run_id`'s hook `hook_cmd` at `at`
    /// (`expired`: by its expiry).
    pub(crate) fn release(
        &mut self,
        token: &str,
        run_id: &str,
        hook_cmd: i64,
        expired: bool,
        at: i64,
    ) {
        self.released
            .push((token.to_owned(), run_id.to_owned(), hook_cmd, expired, at));
    }

    /// Keep the end of `run_id` at `at`: its hooks and signal waits go.
    pub(crate) fn ended(&mut self, run_id: &str, at: i64) {
        self.ended.push((run_id.to_owned(), at));
    }

    /// Keep a checkpoint: raise `run_id`'s mark to `mark` (never lower it).
    pub(crate) fn checkpoint(&mut self, run_id: &str, mark: i64) {
        self.checkpoints.push((run_id.to_owned(), mark));
    }

    /// The statements that write what was kept, emptying the buffer.
    pub(crate) fn take(&mut self) -> Vec<Statement> {
        let mut out: Vec<Statement> = Vec::new();
        if !self.released.is_empty() {
            let (mut tokens, mut runs, mut cmds) = (Vec::new(), Vec::new(), Vec::new());
            let (mut expired, mut ats) = (Vec::new(), Vec::new());
            for (token, run, cmd, exp, at) in self.released.drain(..) {
                // An ended run's hooks all go below (an expired one leaves its mark first).
                if exp || !self.ended.iter().any(|(r, _)| *r == run) {
                    tokens.push(token);
                    runs.push(run);
                    cmds.push(cmd);
                    expired.push(exp);
                    ats.push(at);
                }
            }
            if !tokens.is_empty() {
                out.push((
                    RELEASE_HOOKS,
                    vec![
                        Box::new(tokens),
                        Box::new(runs),
                        Box::new(cmds),
                        Box::new(expired),
                        Box::new(ats),
                    ],
                    "release hooks",
                ));
            }
        }
        if !self.ev_runs.is_empty() {
            out.push((
                "INSERT INTO events (run_id, seq, at, kind, body)
                 SELECT * FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::text[])",
                vec![
                    Box::new(std::mem::take(&mut self.ev_runs)),
                    Box::new(std::mem::take(&mut self.ev_seqs)),
                    Box::new(std::mem::take(&mut self.ev_ats)),
                    Box::new(std::mem::take(&mut self.ev_kinds)),
                    Box::new(std::mem::take(&mut self.ev_bodies)),
                ],
                "insert journal entries",
            ));
        }
        if !self.runs.is_empty() {
            out.push(self.take_runs());
        }
        if !self.checkpoints.is_empty() {
            let (ids, marks): (Vec<String>, Vec<i64>) = self.checkpoints.drain(..).unzip();
            out.push((
                "UPDATE runs SET applied_seq = GREATEST(runs.applied_seq, u.mark)
                 FROM (SELECT id, MAX(mark) AS mark
                       FROM unnest($1::text[], $2::bigint[]) AS c (id, mark) GROUP BY id) AS u
                 WHERE runs.id = u.id AND runs.id = ANY($1)",
                vec![Box::new(ids), Box::new(marks)],
                "record checkpoints",
            ));
        }
        if !self.ended.is_empty() {
            let (ended, ats): (Vec<String>, Vec<i64>) =
                std::mem::take(&mut self.ended).into_iter().unzip();
            out.push((
                RELEASE_HOOKS_OF_ENDED,
                vec![Box::new(ended.clone()), Box::new(ats)],
                "release hooks of finished runs",
            ));
            out.push((
                "DELETE FROM signal_waits WHERE run_id = ANY($1)",
                vec![Box::new(ended)],
                "drop signal waits of finished runs",
            ));
        }
        out
    }

    /// One `UPDATE ... FROM unnest(...)` for every kept run update, raising the checkpoint
    /// marks of the runs it updates (a second update of the same row would write a second
    /// row version and its index entries).
    fn take_runs(&mut self) -> Statement {
        let n = self.runs.len();
        let mut applied: Vec<Option<i64>> = vec![None; n];
        let index = &self.run_index;
        self.checkpoints.retain(|(id, mark)| {
            match index.get(id).and_then(|&i| applied.get_mut(i)) {
                Some(kept) => {
                    *kept = Some(kept.map_or(*mark, |k| k.max(*mark)));
                    false
                }
                None => true,
            }
        });
        self.run_index.clear();
        let mut ids = Vec::with_capacity(n);
        let mut last_seqs = Vec::with_capacity(n);
        let mut updated = Vec::with_capacity(n);
        let mut statuses: Vec<Option<&'static str>> = Vec::with_capacity(n);
        let mut wake_set = Vec::with_capacity(n);
        let mut wakes: Vec<Option<i64>> = Vec::with_capacity(n);
        let mut ends = Vec::with_capacity(n);
        let mut outputs: Vec<Option<String>> = Vec::with_capacity(n);
        let mut errors: Vec<Option<String>> = Vec::with_capacity(n);
        for (id, u) in self.runs.drain(..) {
            ids.push(id);
            last_seqs.push(u.last_seq);
            updated.push(u.updated_at);
            statuses.push(u.status);
            wake_set.push(u.wake_at.is_some());
            wakes.push(u.wake_at.flatten());
            ends.push(u.end.is_some());
            let (output, error) = u.end.unwrap_or((None, None));
            outputs.push(output);
            errors.push(error);
        }
        (
            "UPDATE runs SET
                 last_seq = u.last_seq,
                 updated_at = u.updated_at,
                 status = COALESCE(u.status, runs.status),
                 wake_at = CASE WHEN u.ended THEN NULL
                                WHEN u.wake_set THEN u.wake_at
                                ELSE runs.wake_at END,
                 output = CASE WHEN u.ended THEN u.output ELSE runs.output END,
                 error = CASE WHEN u.ended THEN u.error ELSE runs.error END,
                 owner = CASE WHEN u.ended THEN NULL ELSE runs.owner END,
                 lease_until = CASE WHEN u.ended THEN NULL ELSE runs.lease_until END,
                 applied_seq = GREATEST(runs.applied_seq, u.applied)
             FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::text[], $5::bool[],
                         $6::bigint[], $7::bool[], $8::text[], $9::text[], $10::bigint[])
                  AS u (id, last_seq, updated_at, status, wake_set, wake_at, ended, output, error,
                        applied)
             WHERE runs.id = u.id AND runs.id = ANY($1)",
            vec![
                Box::new(ids),
                Box::new(last_seqs),
                Box::new(updated),
                Box::new(statuses),
                Box::new(wake_set),
                Box::new(wakes),
                Box::new(ends),
                Box::new(outputs),
                Box::new(errors),
                Box::new(applied),
            ],
            "update runs",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(last_seq: i64) -> RunUpdate {
        RunUpdate {
            last_seq,
            updated_at: last_seq * 10,
            status: None,
            wake_at: None,
            end: None,
        }
    }

    #[test]
    fn a_later_update_of_a_run_merges_into_the_kept_one() {
        let mut buffer = WriteBuffer::default();
        buffer.run(
            "r",
            RunUpdate {
                status: Some("suspended"),
                wake_at: Some(Some(5)),
                ..update(3)
            },
        );
        buffer.run("other", update(1));
        buffer.run("r", update(4));
        assert_eq!(buffer.runs.len(), 2, "one update per run");
        let kept = &buffer.runs[0].1;
        assert_eq!(
            (kept.last_seq, kept.updated_at),
            (4, 40),
            "the later seq wins"
        );
        assert_eq!(
            kept.status,
            Some("suspended"),
            "a column the later one leaves is kept"
        );
        assert_eq!(kept.wake_at, Some(Some(5)));
        buffer.run(
            "r",
            RunUpdate {
                wake_at: Some(None),
                ..update(5)
            },
        );
        assert_eq!(
            buffer.runs[0].1.wake_at,
            Some(None),
            "clearing a wake-up time is a change"
        );
    }

    #[test]
    fn take_empties_the_buffer_and_skips_releases_of_ended_runs() {
        let mut buffer = WriteBuffer::default();
        assert!(buffer.take().is_empty(), "nothing kept, nothing sent");
        buffer.release("t1", "ended", 1, false, 10);
        buffer.ended("ended", 10);
        let kinds: Vec<&str> = buffer.take().into_iter().map(|(_, _, what)| what).collect();
        assert_eq!(
            kinds,
            [
                "release hooks of finished runs",
                "drop signal waits of finished runs"
            ],
            "an ended run's hooks all go with one statement"
        );
        buffer.release("t2", "live", 2, false, 10);
        buffer.run("live", update(2));
        buffer.checkpoint("resting", 2);
        let kinds: Vec<&str> = buffer.take().into_iter().map(|(_, _, what)| what).collect();
        assert_eq!(
            kinds,
            ["release hooks", "update runs", "record checkpoints"]
        );
        assert!(buffer.take().is_empty());
        assert!(buffer.run_index.is_empty());
    }

    #[test]
    fn the_checkpoint_of_an_updated_run_goes_with_its_update() {
        let mut buffer = WriteBuffer::default();
        buffer.checkpoint("r", 4);
        buffer.run("other", update(1));
        buffer.run("r", update(5));
        buffer.checkpoint("r", 3);
        buffer.checkpoint("resting", 7);
        let statements = buffer.take();
        let kinds: Vec<&str> = statements.iter().map(|(_, _, what)| *what).collect();
        assert_eq!(
            kinds,
            ["update runs", "record checkpoints"],
            "only the run with no update needs a statement of its own"
        );
        let marks = format!("{:?}", statements[0].1.last());
        assert_eq!(marks, "Some([None, Some(4)])", "the highest mark, by run");
    }

    #[test]
    fn the_sql_caps_reservations_as_the_planner_does() {
        let cap = tether_store::plan::hook_end::MAX_RESERVE_MS.to_string();
        assert!(RELEASE_HOOKS.contains(&cap));
        assert!(RELEASE_HOOKS_OF_ENDED.contains(&cap));
    }
}
