//! Shared state ops within an append (`StateGet`, `StateSet`, `StateIncr`, `StateDelete`):
//! what each reads and writes in its namespace and the outputs its entry records. The backend
//! gives the rows ([`StateBackend`]).

use serde_json::Value;
use tether_core::event::EventBody;

use crate::StoreError;

/// The `run_state` rows of a namespace (its root run), in the batch's transaction.
#[allow(async_fn_in_trait)] // generic use only: the caller's concrete future keeps its `Send`
pub trait StateBackend {
    /// The value of `key`, if set.
    async fn read_state(&mut self, root: &str, key: &str) -> Result<Option<Value>, StoreError>;

    /// Set `key` to `value`.
    async fn write_state(&mut self, root: &str, key: &str, value: &Value)
        -> Result<(), StoreError>;

    /// Delete `key`; whether it was set.
    async fn delete_state(&mut self, root: &str, key: &str) -> Result<bool, StoreError>;
}

/// Perform a shared-state entry on namespace `root` and fill its outputs (`value`,
/// `existed`); a `StateIncr` of a value that is not an integer leaves it and records
/// `value: None`. Any other entry comes back as it is.
pub async fn state_op<B: StateBackend>(
    b: &mut B,
    root: &str,
    body: EventBody,
) -> Result<EventBody, StoreError> {
    Ok(match body {
        EventBody::StateGet { cmd, key, .. } => {
            let value = b.read_state(root, &key).await?;
            EventBody::StateGet { cmd, key, value }
        }
        EventBody::StateSet { cmd, key, value } => {
            b.write_state(root, &key, &value).await?;
            EventBody::StateSet { cmd, key, value }
        }
        EventBody::StateIncr { cmd, key, by, .. } => {
            let value = match b.read_state(root, &key).await? {
                None => Some(by),
                Some(v) => v.as_i64().map(|n| n.saturating_add(by)),
            };
            if let Some(n) = value {
                b.write_state(root, &key, &Value::from(n)).await?;
            }
            EventBody::StateIncr {
                cmd,
                key,
                by,
                value,
            }
        }
        EventBody::StateDelete { cmd, key, .. } => {
            let existed = b.delete_state(root, &key).await?;
            EventBody::StateDelete { cmd, key, existed }
        }
        other => other,
    })
}
