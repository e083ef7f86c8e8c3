//! Deterministic concurrency helpers. Use [`race`] (first branch wins ties) rather than
//! `futures::select!`, which picks at random among ready branches and so may take another
//! branch on replay. [`join`] and [`join_all`] are deterministic as they are.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

pub use futures::future::{join, join3, join_all};

/// The result of [`race`]: which branch finished first, with its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future won.
    Left(A),
    /// The second future won.
    Right(B),
}

/// Run two futures and return the output of the first that finishes; the other is dropped
/// (a dropped `hook.next()` takes no payload, a dropped sleep is abandoned). When both are
/// ready at the same poll, the first argument wins, on replay as live.
pub fn race<A: Future, B: Future>(a: A, b: B) -> Race<A, B> {
    Race {
        a: Box::pin(a),
        b: Box::pin(b),
    }
}

/// The future of [`race`].
#[must_use = "futures do nothing unless awaited"]
#[derive(Debug)]
pub struct Race<A, B> {
    a: Pin<Box<A>>,
    b: Pin<Box<B>>,
}

impl<A: Future, B: Future> Future for Race<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if let Poll::Ready(v) = self.a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = self.b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    }
}
