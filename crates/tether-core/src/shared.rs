//! Shared run state (the HotMesh model): a JSON key/value namespace per run, read and written
//! by the main thread and every hook thread of the run. Every access is a journaled command
//! answered inside the store's transaction, so replay sees what was seen then, and `incr` is
//! atomic across threads.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::ctx::Ctx;
use crate::error::{check_name, WorkflowError};
use crate::event::EventBody;
use crate::record::RecordFuture;

impl Ctx {
    /// Issue a state command now; its future resolves to the committed record.
    fn state_op(
        &self,
        key: &str,
        op: impl FnOnce(u32) -> EventBody,
    ) -> Result<RecordFuture, WorkflowError> {
        check_name("a state key", key)?;
        let cmd = self.state.lock().issue_record(op);
        Ok(RecordFuture {
            state: self.state.clone(),
            cmd,
        })
    }

    /// Read `key` from the run's shared state (`None` when absent). A key holding JSON `null`
    /// also reads as `None`: the journal records both the same way, so live execution and
    /// replay must not tell them apart. Issued when called (like every `ctx` method).
    pub fn get<T: DeserializeOwned>(
        &self,
        key: &str,
    ) -> impl Future<Output = Result<Option<T>, WorkflowError>> + Send {
        let issued = self.state_op(key, |cmd| EventBody::StateGet {
            cmd,
            key: key.to_string(),
            value: None,
        });
        let key = key.to_string();
        async move {
            match issued?.await? {
                EventBody::StateGet { value: Some(v), .. } if !v.is_null() => {
                    serde_json::from_value(v)
                        .map(Some)
                        .map_err(|e| WorkflowError::Decode {
                            message: format!("state key {key:?}: {e}"),
                        })
                }
                _ => Ok(None),
            }
        }
    }

    /// Write `key` in the run's shared state. Issued when called.
    pub fn set<T: Serialize + ?Sized>(
        &self,
        key: &str,
        value: &T,
    ) -> impl Future<Output = Result<(), WorkflowError>> + Send {
        let issued = serde_json::to_value(value)
            .map_err(|e| WorkflowError::Decode {
                message: format!("state key {key:?} is not serializable: {e}"),
            })
            .and_then(|value| {
                self.state_op(key, |cmd| EventBody::StateSet {
                    cmd,
                    key: key.to_string(),
                    value,
                })
            });
        async move { issued?.await.map(|_| ()) }
    }

    /// Add `by` to the integer at `key` (absent counts as 0), atomically across the run's
    /// threads; returns the new value. Fails if the key holds something else than an integer.
    /// Issued when called.
    pub fn incr(
        &self,
        key: &str,
        by: i64,
    ) -> impl Future<Output = Result<i64, WorkflowError>> + Send {
        let issued = self.state_op(key, |cmd| EventBody::StateIncr {
            cmd,
            key: key.to_string(),
            by,
            value: None,
        });
        let key = key.to_string();
        async move {
            match issued?.await? {
                EventBody::StateIncr { value: Some(v), .. } => Ok(v),
                _ => Err(WorkflowError::with_code(
                    "state_not_integer",
                    format!("state key {key:?} holds a value that is not an integer; incr left it unchanged"),
                )),
            }
        }
    }

    /// Remove `key` from the run's shared state; returns whether it was there. Issued when
    /// called.
    pub fn delete(&self, key: &str) -> impl Future<Output = Result<bool, WorkflowError>> + Send {
        let issued = self.state_op(key, |cmd| EventBody::StateDelete {
            cmd,
            key: key.to_string(),
            existed: false,
        });
        async move {
            match issued?.await? {
                EventBody::StateDelete { existed, .. } => Ok(existed),
                _ => Ok(false),
            }
        }
    }
}
