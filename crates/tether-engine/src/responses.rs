//! The engine's response hub: where a manual webhook's response meets the HTTP request waiting
//! for it, whichever node runs the workflow.
//!
//! `WebhookRequest::respond_with` (in `tether-core`) only journals a `StepCompleted` whose
//! output is a [`WebhookReply`]. A request waits here under its id:
//!
//! - when this node's group commit writes the reply (the run is live here), the writer hands
//!   it over at once (`ResponseHub::committed`, from `writer.rs`);
//! - when another node runs the workflow, the waiting request watches the run's journal: it is
//!   woken by the store's notifications of the run's growth (`background.rs` wakes the run's
//!   waiters, see `waiters.rs`), and reads the entries past the last one it saw
//!   ([`Engine::resume_webhook`]), with a read every `poll_interval` in case a notification
//!   was lost.
//!
//! Nothing here is process-global: each engine has its own hub.

use std::collections::HashMap;
use std::time::Duration;

use parking_lot::Mutex;
use serde_json::Value;
use tether_core::{WebhookReply, WebhookRequest, WebhookResponse};
use tokio::sync::oneshot;

use crate::engine::Engine;
use crate::error::EngineError;

/// The requests of this node waiting for a manual response, by request id.
#[derive(Debug, Default)]
pub(crate) struct ResponseHub {
    waiting: Mutex<HashMap<String, oneshot::Sender<WebhookResponse>>>,
}

impl ResponseHub {
    /// Wait for the response to `request_id`; the wait ends when the returned guard drops.
    /// A request id already waited for here (a verified delivery retried while its first
    /// request still waits: same id) leaves that first wait alone; the newcomer's guard
    /// receives nothing and removes nothing (its request is answered as a duplicate).
    pub(crate) fn expect(&self, request_id: &str) -> Expected<'_> {
        let mut waiting = self.waiting.lock();
        if waiting.contains_key(request_id) {
            return Expected {
                hub: self,
                request_id: request_id.to_owned(),
                rx: None,
                owner: false,
            };
        }
        let (tx, rx) = oneshot::channel();
        waiting.insert(request_id.to_owned(), tx);
        Expected {
            hub: self,
            request_id: request_id.to_owned(),
            rx: Some(rx),
            owner: true,
        }
    }

    /// A committed `respond_with` step's output: hand its response to the request waiting for
    /// it here, if any (a 0.1 output, `true`/`false`, carries none).
    pub(crate) fn committed(&self, output: &Value) {
        let Some(reply) = WebhookReply::from_output(output) else {
            return;
        };
        self.answer(reply);
    }

    /// Hand `reply` to its waiting request, if it waits here.
    fn answer(&self, reply: WebhookReply) {
        let waiter = self.waiting.lock().remove(&reply.request_id);
        if let Some(tx) = waiter {
            let _ = tx.send(reply.response);
        }
    }

    /// How many requests wait here.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.waiting.lock().len()
    }
}

/// A request's wait for its response in the hub; dropping it (answered, timed out, or the
/// caller gone) removes the request from the hub.
pub(crate) struct Expected<'a> {
    hub: &'a ResponseHub,
    request_id: String,
    /// Taken once answered or once the hub dropped the sender.
    rx: Option<oneshot::Receiver<WebhookResponse>>,
    /// Whether this guard's sender is the one in the hub (else another wait owns the id).
    owner: bool,
}

impl Drop for Expected<'_> {
    fn drop(&mut self) {
        if self.owner {
            self.hub.waiting.lock().remove(&self.request_id);
        }
    }
}

impl Expected<'_> {
    /// The response, once this node's commit hands it over; pending forever otherwise.
    async fn local(&mut self) -> WebhookResponse {
        if let Some(rx) = self.rx.as_mut() {
            if let Ok(response) = rx.await {
                return response;
            }
            self.rx = None;
        }
        std::future::pending().await
    }
}

impl Engine {
    /// Deliver a webhook request to the webhook holding `token` (as [`Engine::resume_hook`]
    /// does) and wait up to `timeout` for the response the workflow sends with
    /// `WebhookRequest::respond_with`, whichever node sharing the store runs it. `Ok(None)`:
    /// no response came in time (the request is in the run's journal all the same).
    ///
    /// With an `idempotency_key` (a verified delivery's id) already used for this token,
    /// nothing is stored again and nobody waits: the answer is
    /// [`WebhookResponse::duplicate`] (`200 {"duplicate": true}`). A key first used with
    /// another request is [`EngineError::IdempotencyKeyReused`], as for
    /// [`Engine::resume_hook`].
    pub async fn resume_webhook(
        &self,
        token: &str,
        request: &WebhookRequest,
        timeout: Duration,
        idempotency_key: Option<String>,
    ) -> Result<Option<WebhookResponse>, EngineError> {
        let deadline = tokio::time::Instant::now() + timeout;
        let payload = serde_json::to_value(request).map_err(|e| EngineError::InvalidPayload {
            message: format!("the webhook request cannot be encoded as JSON: {e}"),
        })?;
        // Waiting before the request is stored: the run may answer before `resume` returns.
        let mut expected = self.inner.responses.expect(&request.request_id);
        let keyed = idempotency_key.is_some();
        let accepted = self
            .resume_accepted(token, payload, idempotency_key)
            .await?;
        if keyed && accepted.seq.is_none() {
            // Accepted before: the first request was (or is being) answered.
            return Ok(Some(WebhookResponse::duplicate()));
        }
        let run_id = accepted.run_id;
        // Only a store shared with other nodes can hold a reply this node did not commit.
        let watch = self.inner.shared_store.then_some(accepted.seq.unwrap_or(0));
        let found = self
            .wait_reply(&run_id, &request.request_id, &mut expected, watch, deadline)
            .await;
        self.inner.waiters.drop_closed(&run_id);
        found
    }

    /// Wait for the reply: from this node's commits through `expected`, and with `watch`
    /// (the last entry of the run already looked at) from the run's journal too.
    async fn wait_reply(
        &self,
        run_id: &str,
        request_id: &str,
        expected: &mut Expected<'_>,
        mut watch: Option<u64>,
        deadline: tokio::time::Instant,
    ) -> Result<Option<WebhookResponse>, EngineError> {
        let poll = self.inner.config.poll_interval;
        loop {
            // Woken when another node's commit grows the run's journal (or the run ends).
            let woken = self.inner.waiters.add(run_id);
            if let Some(after) = watch.as_mut() {
                if let Some(response) = self.reply_in_journal(run_id, request_id, after).await? {
                    return Ok(Some(response));
                }
            }
            let next_read = tokio::time::sleep(poll);
            tokio::select! {
                response = expected.local() => return Ok(Some(response)),
                _ = woken => {}
                _ = next_read, if watch.is_some() => {}
                _ = tokio::time::sleep_until(deadline) => return Ok(None),
            }
        }
    }

    /// The reply to `request_id` among the run's entries past `*after`, which moves to the
    /// last entry read.
    async fn reply_in_journal(
        &self,
        run_id: &str,
        request_id: &str,
        after: &mut u64,
    ) -> Result<Option<WebhookResponse>, EngineError> {
        let entries = self.inner.store.load_journal(run_id, *after).await?;
        if let Some(last) = entries.last() {
            *after = last.seq;
        }
        Ok(entries
            .iter()
            .filter_map(|e| WebhookReply::from_entry(&e.body))
            .find(|r| r.request_id == request_id)
            .map(|r| r.response))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[tokio::test]
    async fn a_committed_reply_reaches_its_request_and_a_dropped_wait_leaves() {
        let hub = ResponseHub::default();
        let mut wait = hub.expect("r1");
        let other = hub.expect("r2");
        assert_eq!(hub.len(), 2);
        hub.committed(&json!(true)); // 0.1's output: nothing to hand over
        let reply = WebhookReply {
            request_id: "r1".into(),
            response: WebhookResponse::text(201, "ok"),
        };
        hub.committed(&serde_json::to_value(&reply).expect("encode"));
        assert_eq!(wait.local().await, WebhookResponse::text(201, "ok"));
        // A second wait on an id already waited for leaves the first one in place.
        let first = hub.expect("r3");
        drop(hub.expect("r3"));
        assert_eq!(hub.len(), 2, "r2, and r3's first wait (r1 was answered)");
        drop(first);
        drop(other);
        drop(wait);
        assert_eq!(hub.len(), 0, "answered and abandoned waits are gone");
        // A reply nobody waits for is dropped.
        hub.committed(&serde_json::to_value(&reply).expect("encode"));
        assert_eq!(hub.len(), 0);
    }
}
