//! The PostgreSQL batch as the executor's [`BatchBackend`]: the SQL of each op's rows, sent
//! through the batch (its up-front row locks, its write buffer merging writes per kind, its
//! pipeline of statements whose answer no op needs). The decisions are in
//! [`tether_store::plan`].

use serde_json::Value;
use tether_core::event::{ErrorInfo, Event};
use tether_store::plan::batch::BatchBackend;
use tether_store::plan::{
    AppendPlan, NewThread, QueueBackend, QueueLoad, RunChange, RunQueue, RunRow,
};
use tether_store::{Fence, FirstClaim, OpResult, StoreError, WriteOp};

use crate::buffer::RunUpdate;
use crate::journal::{finish_run, insert_events};
use crate::rows::{
    bound, col, encode_error_info, encode_value, from_db, opt_from_db, opt_to_db, to_db,
};
use crate::threads;
use crate::write::Batch;

impl BatchBackend for Batch<'_> {
    fn begin_op(&mut self) -> u64 {
        Batch::begin_op(self)
    }

    fn end_op(
        &mut self,
        op: &WriteOp,
        result: &OpResult,
        writes_before: u64,
    ) -> Result<(), StoreError> {
        Batch::end_op(self, op, result, writes_before)
    }

    async fn insert_run(
        &mut self,
        run_id: &str,
        input: &Value,
        claim: Option<&FirstClaim>,
        queue: &str,
        started: &Event,
    ) -> Result<bool, StoreError> {
        let tether_core::event::EventBody::RunStarted { workflow, .. } = &started.body else {
            return Err(StoreError::corrupt(
                "a run's first entry must be RunStarted",
            ));
        };
        let input_json = encode_value(input, "run input")?;
        let at = to_db(started.at_ms, "commit time")?;
        let row = FirstClaim::new_run_row(claim);
        let lease_until = opt_to_db(row.lease_until_ms, "lease end")?;
        let epoch = to_db(row.epoch, "epoch")?;
        let admitted_at = claim.map(|_| at);
        let inserted = self
            .execute(
                "INSERT INTO runs (id, workflow, status, input, created_at, updated_at, last_seq,
                                   owner, lease_until, epoch, queue, admitted_at)
                 VALUES ($1, $2, $3, $4, $5, $5, 1, $6, $7, $8, $9, $10)
                 ON CONFLICT (id) DO NOTHING",
                &[
                    &run_id,
                    &workflow,
                    &row.status.as_str(),
                    &input_json,
                    &at,
                    &row.owner,
                    &lease_until,
                    &epoch,
                    &queue,
                    &admitted_at,
                ],
                "insert run",
            )
            .await?;
        if inserted == 0 {
            return Ok(false);
        }
        // The new row is ours until commit.
        self.mark_locked(run_id);
        insert_events(self, run_id, std::slice::from_ref(started))?;
        Ok(true)
    }

    async fn write_append(
        &mut self,
        run_id: &str,
        run: &RunRow,
        plan: &AppendPlan,
        change: RunChange,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        insert_events(self, run_id, &plan.written)?;
        let last_seq = to_db(plan.last_seq(run.last_seq), "journal seq")?;
        let at = to_db(at_ms, "commit time")?;
        if let Some(end) = &plan.ending {
            return finish_run(self, run_id, end, last_seq, at);
        }
        // The write buffer merges run updates per kind: it takes every column.
        let status = change.status.unwrap_or(run.status);
        let wake_at = opt_to_db(change.wake_at.unwrap_or(run.wake_at), "wake-up time")?;
        self.update_run(
            run_id,
            RunUpdate {
                last_seq,
                updated_at: at,
                status: Some(status.as_str()),
                wake_at: Some(wake_at),
                end: None,
            },
        );
        Ok(())
    }

    async fn write_blocked(
        &mut self,
        run_id: &str,
        error: &ErrorInfo,
        at_ms: u64,
    ) -> Result<(), StoreError> {
        let error = encode_error_info(error)?;
        self.execute(
            "UPDATE runs SET error = $2, updated_at = $3 WHERE id = $1",
            &[&run_id, &error, &to_db(at_ms, "commit time")?],
            "mark run blocked",
        )
        .await?;
        Ok(())
    }

    async fn checkpoint(&mut self, run_id: &str, applied_seq: u64) -> Result<bool, StoreError> {
        // A mark past any seq this backend can store covers the whole journal.
        let mark = crate::rows::bound(applied_seq);
        if self.holds(run_id) {
            // The row is locked by this batch, so the run exists: the mark goes with the
            // batch's other writes.
            self.buffer().checkpoint(run_id, mark);
            return Ok(true);
        }
        let n = self
            .execute(
                "UPDATE runs SET applied_seq = GREATEST(applied_seq, $2) WHERE id = $1",
                &[&run_id, &mark],
                "record checkpoint",
            )
            .await?;
        Ok(n > 0)
    }

    async fn write_claim(
        &mut self,
        run_id: &str,
        node: &str,
        lease_until_ms: u64,
        epoch: u64,
        admitted_at: Option<u64>,
    ) -> Result<(), StoreError> {
        self.send(
            "UPDATE runs SET owner = $2, lease_until = $3, epoch = $4,
                             admitted_at = COALESCE($5, admitted_at)
             WHERE id = $1",
            vec![
                Box::new(run_id.to_owned()),
                Box::new(node.to_owned()),
                Box::new(to_db(lease_until_ms, "lease end")?),
                Box::new(to_db(epoch, "epoch")?),
                Box::new(opt_to_db(admitted_at, "admission time")?),
            ],
            "claim run",
        )
        .await
    }

    async fn release(&mut self, run_id: &str, fence: &Fence) -> Result<bool, StoreError> {
        // An epoch past BIGINT matches no stored one.
        if let Ok(epoch) = i64::try_from(fence.epoch) {
            let released = self
                .execute(
                    "UPDATE runs SET owner = NULL, lease_until = NULL
                     WHERE id = $1 AND owner = $2 AND epoch = $3",
                    &[&run_id, &fence.node, &epoch],
                    "release run",
                )
                .await?;
            if released > 0 {
                return Ok(true);
            }
        }
        let exists = self
            .query_opt("SELECT 1 FROM runs WHERE id = $1", &[&run_id], "load run")
            .await?;
        Ok(exists.is_some())
    }

    async fn renew(&mut self, node: &str, lease_until_ms: u64) -> Result<u64, StoreError> {
        self.execute(
            // Rows locked in id order, like every batch's first locks: no deadlock with a
            // node taking over some of these runs at the same moment.
            "UPDATE runs SET lease_until = $2
             WHERE owner = $1
               AND id IN (SELECT id FROM runs WHERE owner = $1 ORDER BY id FOR UPDATE)",
            &[&node, &to_db(lease_until_ms, "lease end")?],
            "renew leases",
        )
        .await
    }

    async fn root_of(&mut self, run_id: &str) -> Result<String, StoreError> {
        threads::root_of(self, run_id).await
    }

    async fn insert_thread(&mut self, thread: NewThread<'_>) -> Result<Option<Event>, StoreError> {
        threads::create_thread(self, thread).await
    }
}

impl QueueBackend for Batch<'_> {
    async fn run_queue(&mut self, run_id: &str) -> Result<Option<RunQueue>, StoreError> {
        let row = self
            .query_opt(
                "SELECT queue, admitted_at FROM runs WHERE id = $1",
                &[&run_id],
                "load run queue",
            )
            .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(RunQueue {
            queue: col(&row, 0, "load run queue")?,
            admitted_at: opt_from_db(col(&row, 1, "load run queue")?, "admission time")?,
        }))
    }

    async fn queue_load(
        &mut self,
        queue: &str,
        since_ms: Option<u64>,
    ) -> Result<QueueLoad, StoreError> {
        // The batch took the admission lock before its row locks (`Batch::prelock`): every
        // other node's admission waits for this transaction, and this count (a new snapshot
        // per statement) sees every admission committed before.
        let since = since_ms.map(bound);
        let row = self
            .query_opt(
                "SELECT
                   (SELECT COUNT(*) FROM runs
                     WHERE queue = $1 AND admitted_at IS NOT NULL
                       AND status NOT IN ('completed', 'failed', 'cancelled')),
                   (SELECT COUNT(*) FROM runs
                     WHERE $2::BIGINT IS NOT NULL AND queue = $1 AND admitted_at >= $2)",
                &[&queue, &since],
                "count a queue's runs",
            )
            .await?;
        let Some(row) = row else {
            return Err(StoreError::corrupt(
                "counting a queue's runs returned no row",
            ));
        };
        let running: i64 = col(&row, 0, "count a queue's runs")?;
        let admitted_since: i64 = col(&row, 1, "count a queue's runs")?;
        Ok(QueueLoad {
            running: from_db(running, "running runs")?,
            admitted_since: from_db(admitted_since, "admissions")?,
        })
    }
}
