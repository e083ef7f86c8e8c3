//! Pipelined writes: a batch sends a statement whose answer it does not need (an insert of
//! journal entries, a run update, a hook release) without waiting for the server's reply, and
//! reads the replies once, before it commits.
//!
//! One connection carries the batch, and the server runs its statements in the order they
//! arrive, so a read sent after a pipelined write sees that write. What pipelining saves is the
//! round trip per statement: a batch of resumes whose run rows were locked up front sends all
//! its writes back to back and waits once.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Mutex, PoisonError};
use std::task::Poll;

use tether_store::StoreError;
use tokio_postgres::types::ToSql;

use crate::error::Ctx;

/// Owned query parameters, kept by a pipelined statement until its reply is read.
pub(crate) type OwnedParams = Vec<Box<dyn ToSql + Sync + Send>>;

/// A sent statement whose reply has not been read yet.
type Reply<'t> = Pin<Box<dyn Future<Output = Result<u64, tokio_postgres::Error>> + Send + 't>>;

/// A statement sent without waiting: its reply, or its outcome once read.
enum Sent<'t> {
    Waiting(Reply<'t>),
    Read(Result<u64, tokio_postgres::Error>),
}

/// The statements a batch has sent without reading their replies, in the order they were sent.
#[derive(Default)]
pub(crate) struct Pipeline<'t> {
    replies: Mutex<Vec<(&'static str, Sent<'t>)>>,
}

impl<'t> Pipeline<'t> {
    /// Send the statement `reply` stands for (its first poll writes it to the connection) and
    /// keep it, to read its reply at the next [`Pipeline::settle`].
    ///
    /// The statement must be prepared before `reply` is made: a statement still being prepared
    /// would go out after statements sent later, and reads would overtake it.
    pub(crate) async fn send(
        &self,
        what: &'static str,
        mut reply: Reply<'t>,
    ) -> Result<(), StoreError> {
        let first = std::future::poll_fn(|cx| Poll::Ready(reply.as_mut().poll(cx))).await;
        match first {
            Poll::Ready(result) => result.map(drop).ctx(what),
            Poll::Pending => {
                self.lock().push((what, Sent::Waiting(reply)));
                Ok(())
            }
        }
    }

    /// Wait for `awaited` (a statement whose answer the batch needs, sent after the pipelined
    /// ones) while reading the replies of the statements sent before it. The connection hands
    /// replies out in order, each through a small buffer: a reply nobody reads could hold up
    /// the ones behind it, the awaited one included.
    pub(crate) async fn alongside<F: Future>(&self, awaited: F) -> F::Output {
        let mut awaited = std::pin::pin!(awaited);
        std::future::poll_fn(|cx| {
            for (_, sent) in self.lock().iter_mut() {
                if let Sent::Waiting(reply) = sent {
                    if let Poll::Ready(result) = reply.as_mut().poll(cx) {
                        *sent = Sent::Read(result);
                    }
                }
            }
            awaited.as_mut().poll(cx)
        })
        .await
    }

    /// Read the replies of every statement sent so far; the first failure is the batch's
    /// error (the server aborts the transaction there, and every later statement fails with a
    /// message that would hide the cause).
    pub(crate) async fn settle(&self) -> Result<(), StoreError> {
        let replies = std::mem::take(&mut *self.lock());
        for (what, sent) in replies {
            match sent {
                Sent::Waiting(reply) => reply.await.ctx(what)?,
                Sent::Read(result) => result.ctx(what)?,
            };
        }
        Ok(())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(&'static str, Sent<'t>)>> {
        // A panic while the list was held cannot leave it half-changed (push, take and
        // replacing one entry by its outcome).
        self.replies.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Build the reply future of `stmt` with owned `params` on `client`.
pub(crate) fn execute<'t>(
    client: &'t deadpool_postgres::ClientWrapper,
    stmt: tokio_postgres::Statement,
    params: OwnedParams,
) -> Reply<'t> {
    Box::pin(async move {
        let refs: Vec<&(dyn ToSql + Sync)> =
            params.iter().map(|p| &**p as &(dyn ToSql + Sync)).collect();
        client.execute(&stmt, &refs).await
    })
}

/// Build the reply future of a parameterless command (`BEGIN`, `COMMIT`) on `client`.
pub(crate) fn command<'t>(
    client: &'t deadpool_postgres::ClientWrapper,
    sql: &'static str,
) -> Reply<'t> {
    Box::pin(async move { client.batch_execute(sql).await.map(|()| 0) })
}
