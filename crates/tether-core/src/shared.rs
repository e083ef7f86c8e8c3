//! Shared run state (the HotMesh model): a JSON key/value namespace per run, read and written
//! by the main thread and every hook thread of the run. Every access is a journaled command
//! answered inside the store's transaction, so replay sees what was seen then, and `incr` is
//! atomic across threads.

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::{check_name, WorkflowError};
use crate::event::EventBody;
use crate::record::RecordFuture;

impl Ctx {
    async fn state_op(
        &self,
        op: impl FnOnce(u32) -> EventBody,
    ) -> Result<EventBody, WorkflowError> {
        let cmd = self.state.lock().issue_record(op);
        RecordFuture {
            state: self.state.clone(),
            cmd,
        }
        .await
    }

    /// Read `key` from the run's shared state (`None` when absent). A key holding JSON `null`
    /// also reads as `None`: the journal records both the same way, so live execution and
    /// replay must not tell them apart.
    pub async fn get<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, WorkflowError> {
        check_name("a state key", key)?;
        let key = key.to_string();
        match self
            .state_op(|cmd| EventBody::StateGet {
                cmd,
                key: key.clone(),
                value: None,
            })
            .await?
        {
            EventBody::StateGet { value: Some(v), .. } if !v.is_null() => serde_json::from_value(v)
                .map(Some)
                .map_err(|e| WorkflowError::Decode {
                    message: format!("state key {key:?}: {e}"),
                }),
            _ => Ok(None),
        }
    }

    /// Write `key` in the run's shared state.
    pub async fn set<T: Serialize>(&self, key: &str, value: &T) -> Result<(), WorkflowError> {
        check_name("a state key", key)?;
        let value = serde_json::to_value(value).map_err(|e| WorkflowError::Decode {
            message: format!("state key {key:?} is not serializable: {e}"),
        })?;
        self.state_op(|cmd| EventBody::StateSet {
            cmd,
            key: key.to_string(),
            value,
        })
        .await
        .map(|_| ())
    }

    /// Add `by` to the integer at `key` (absent counts as 0), atomically across the run's
    /// threads; returns the new value. Fails if the key holds something else than an integer.
    pub async fn incr(&self, key: &str, by: i64) -> Result<i64, WorkflowError> {
        check_name("a state key", key)?;
        match self
            .state_op(|cmd| EventBody::StateIncr {
                cmd,
                key: key.to_string(),
                by,
                value: None,
            })
            .await?
        {
            EventBody::StateIncr { value: Some(v), .. } => Ok(v),
            _ => Err(WorkflowError::with_code(
                "state_not_integer",
                format!("state key {key:?} holds a value that is not an integer; incr left it unchanged"),
            )),
        }
    }

    /// Remove `key` from the run's shared state; returns whether it was there.
    pub async fn delete(&self, key: &str) -> Result<bool, WorkflowError> {
        check_name("a state key", key)?;
        match self
            .state_op(|cmd| EventBody::StateDelete {
                cmd,
                key: key.to_string(),
                existed: false,
            })
            .await?
        {
            EventBody::StateDelete { existed, .. } => Ok(existed),
            _ => Ok(false),
        }
    }
}
