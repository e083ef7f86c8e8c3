//! The engine's clock: the system clock, or a manual one that tests move by hand.
//!
//! Every time the engine reads (journal times, timer deadlines, leases, the poller's "due")
//! and every wait for an instant (a run's next timer, a step's retry back-off) goes through
//! the [`Clock`] in [`crate::EngineConfig::clock`]. The system clock is a plain
//! `SystemTime` read and a tokio sleep. A manual clock only moves when told
//! ([`Clock::advance`], [`Clock::set_ms`]); whatever waits on it wakes as soon as it is moved
//! to or past the instant waited for, so a test can skip a day in microseconds.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use parking_lot::Mutex;
use tokio::sync::{watch, Notify};

/// Where the engine reads the time and waits for it. Cheap to clone (clones share the same
/// time). The default is the system clock.
///
/// ```
/// use std::time::Duration;
/// use tether_engine::Clock;
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let clock = Clock::manual(1_735_689_600_000); // 2025-01-01T00:00:00Z
/// let wait = clock.sleep(Duration::from_secs(3600));
/// clock.advance(Duration::from_secs(3600)); // no real time passes
/// wait.await;
/// assert_eq!(clock.now_ms(), 1_735_689_600_000 + 3_600_000);
/// # }
/// ```
#[derive(Clone, Default)]
pub struct Clock {
    /// `None`: the system clock.
    manual: Option<Arc<Manual>>,
}

/// The shared state of a manual clock.
struct Manual {
    /// The current time, ms since the Unix epoch (read without a lock).
    now: AtomicU64,
    /// The current time again, for waiters (a waiter checks it, then waits for a change).
    tx: watch::Sender<u64>,
    /// Instants something waits for (a live run's next timer, a step's back-off), with how
    /// many wait for each. Also serializes moves of the clock.
    waits: Mutex<BTreeMap<u64, usize>>,
    /// Notified when a wait that was due gives up its place (see [`Clock::has_due_waits`]).
    released: Notify,
}

impl Clock {
    /// The system clock (the default): `now_ms` reads `SystemTime`, waits are tokio sleeps.
    pub fn system() -> Clock {
        Clock { manual: None }
    }

    /// A manual clock standing at `start_ms` (ms since the Unix epoch) until it is moved with
    /// [`Clock::advance`] or [`Clock::set_ms`].
    pub fn manual(start_ms: u64) -> Clock {
        let (tx, _) = watch::channel(start_ms);
        Clock {
            manual: Some(Arc::new(Manual {
                now: AtomicU64::new(start_ms),
                tx,
                waits: Mutex::new(BTreeMap::new()),
                released: Notify::new(),
            })),
        }
    }

    /// Whether this is a manual clock.
    pub fn is_manual(&self) -> bool {
        self.manual.is_some()
    }

    /// Milliseconds since the Unix epoch.
    #[inline]
    pub fn now_ms(&self) -> u64 {
        match &self.manual {
            None => system_now_ms(),
            Some(m) => m.now.load(Ordering::SeqCst),
        }
    }

    /// The current time as a `SystemTime`.
    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(self.now_ms())
    }

    /// Move a manual clock forward by `by`. Everything waiting for an instant up to the new
    /// time wakes.
    ///
    /// # Panics
    ///
    /// On the system clock, which cannot be moved (use [`Clock::manual`]).
    pub fn advance(&self, by: Duration) {
        let m = self.expect_manual("advance");
        let by = u64::try_from(by.as_millis()).unwrap_or(u64::MAX);
        let waits = m.waits.lock();
        let to = m.now.load(Ordering::SeqCst).saturating_add(by);
        m.set_locked(&waits, to);
    }

    /// Set a manual clock to `ms` (ms since the Unix epoch). Everything waiting for an instant
    /// up to it wakes. Moving it back is allowed (timers already fired stay fired).
    ///
    /// # Panics
    ///
    /// On the system clock, which cannot be moved (use [`Clock::manual`]).
    pub fn set_ms(&self, ms: u64) {
        let m = self.expect_manual("set_ms");
        let waits = m.waits.lock();
        m.set_locked(&waits, ms);
    }

    /// The earliest instant something in this process waits for on this manual clock (a live
    /// run's next timer, a step's retry back-off), even if already due; `None` if nothing
    /// waits, and always on the system clock. Runs that are not in memory are not counted:
    /// their next timer is the `wake_at_ms` the store keeps.
    pub fn next_wait_ms(&self) -> Option<u64> {
        let m = self.manual.as_ref()?;
        let first = m.waits.lock().keys().next().copied();
        first
    }

    /// Wait until the clock reads `at_ms` or later. On a manual clock the wait is counted by
    /// [`Clock::next_wait_ms`] from this call on (not only once the future is first polled).
    pub fn sleep_until(&self, at_ms: u64) -> impl Future<Output = ()> + Send + 'static {
        let wait = self.wait_until(Some(at_ms));
        async move {
            wait.await;
        }
    }

    /// Wait for `duration` by this clock (see [`Clock::sleep_until`]).
    pub fn sleep(&self, duration: Duration) -> impl Future<Output = ()> + Send + 'static {
        let wait = self.wait_for(duration);
        async move {
            wait.await;
        }
    }

    /// Wait until `at_ms` (`None`: forever). A manual clock registers the wait now; it stays
    /// registered until the returned [`Wakeup`] is dropped, so the caller can mark itself busy
    /// before the wait stops counting as due (see `Engine::settle`).
    pub(crate) fn wait_until(
        &self,
        at_ms: Option<u64>,
    ) -> impl Future<Output = Wakeup> + Send + 'static {
        let registration = match (&self.manual, at_ms) {
            (Some(m), Some(at)) => Some(Registration::new(m, at)),
            _ => None,
        };
        let system = self.manual.is_none();
        async move {
            match (registration, at_ms) {
                (Some(r), _) => {
                    r.wait().await;
                    Wakeup(Some(r))
                }
                (None, Some(at)) if system => {
                    let left = at.saturating_sub(system_now_ms());
                    tokio::time::sleep(Duration::from_millis(left)).await;
                    Wakeup(None)
                }
                _ => std::future::pending().await,
            }
        }
    }

    /// Wait for `duration`: a plain tokio sleep on the system clock (as before clocks
    /// existed), until `now + duration` on a manual one.
    pub(crate) fn wait_for(
        &self,
        duration: Duration,
    ) -> impl Future<Output = Wakeup> + Send + 'static {
        let registration = self.manual.as_ref().map(|m| {
            let by = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
            Registration::new(m, m.now.load(Ordering::SeqCst).saturating_add(by))
        });
        async move {
            match registration {
                Some(r) => {
                    r.wait().await;
                    Wakeup(Some(r))
                }
                None => {
                    tokio::time::sleep(duration).await;
                    Wakeup(None)
                }
            }
        }
    }

    /// Whether something waits on this manual clock for an instant already reached (it is
    /// about to wake). Always `false` on the system clock.
    pub(crate) fn has_due_waits(&self) -> bool {
        let Some(m) = &self.manual else { return false };
        let waits = m.waits.lock();
        let now = m.now.load(Ordering::SeqCst);
        waits.keys().next().is_some_and(|at| *at <= now)
    }

    /// Notified when a due wait is released (manual clocks).
    pub(crate) fn released(&self) -> Option<&Notify> {
        self.manual.as_ref().map(|m| &m.released)
    }

    /// A receiver that changes whenever a manual clock is moved (`None` on the system clock).
    pub(crate) fn moves(&self) -> Option<watch::Receiver<u64>> {
        self.manual.as_ref().map(|m| m.tx.subscribe())
    }

    fn expect_manual(&self, what: &str) -> &Manual {
        match &self.manual {
            Some(m) => m,
            None => panic!(
                "Clock::{what} called on the system clock, which cannot be moved; \
                 build the engine with Clock::manual(start_ms) instead"
            ),
        }
    }
}

impl Manual {
    fn set_locked(&self, _waits: &parking_lot::MutexGuard<'_, BTreeMap<u64, usize>>, ms: u64) {
        self.now.store(ms, Ordering::SeqCst);
        self.tx.send_replace(ms);
    }
}

/// A wait's place among a manual clock's waits.
struct Registration {
    clock: Arc<Manual>,
    at: u64,
}

impl Registration {
    fn new(clock: &Arc<Manual>, at: u64) -> Registration {
        *clock.waits.lock().entry(at).or_insert(0) += 1;
        Registration {
            clock: clock.clone(),
            at,
        }
    }

    async fn wait(&self) {
        let mut rx = self.clock.tx.subscribe();
        let at = self.at;
        // The sender lives as long as the clock, which this registration holds.
        let _ = rx.wait_for(|now| *now >= at).await;
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut waits = self.clock.waits.lock();
        if let Some(n) = waits.get_mut(&self.at) {
            *n -= 1;
            if *n == 0 {
                waits.remove(&self.at);
            }
        }
        let due = self.at <= self.clock.now.load(Ordering::SeqCst);
        drop(waits);
        if due {
            self.clock.released.notify_waiters();
        }
    }
}

/// What a finished wait returns: on a manual clock it keeps the wait registered (as due)
/// until dropped.
#[derive(Debug)]
pub(crate) struct Wakeup(#[allow(dead_code)] Option<Registration>);

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Registration(at {})", self.at)
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.manual {
            None => f.write_str("Clock::System"),
            Some(m) => write!(
                f,
                "Clock::Manual({})",
                tether_core::time_fmt::rfc3339_ms(m.now.load(Ordering::SeqCst))
            ),
        }
    }
}

impl PartialEq for Clock {
    /// Two system clocks are equal; manual clocks are equal when they are the same clock
    /// (clones of one another).
    fn eq(&self, other: &Clock) -> bool {
        match (&self.manual, &other.manual) {
            (None, None) => true,
            (Some(a), Some(b)) => Arc::ptr_eq(a, b),
            _ => false,
        }
    }
}

impl Eq for Clock {}

/// Milliseconds since the Unix epoch, by the system clock.
#[inline]
pub(crate) fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_wait_wakes_when_the_clock_reaches_it() {
        let clock = Clock::manual(1_000);
        let wait = clock.sleep_until(5_000);
        assert_eq!(clock.next_wait_ms(), Some(5_000));
        assert!(!clock.has_due_waits());
        let task = tokio::spawn(wait);
        clock.advance(Duration::from_millis(3_999));
        tokio::task::yield_now().await;
        assert!(!task.is_finished());
        clock.advance(Duration::from_millis(1));
        assert!(clock.has_due_waits());
        task.await.unwrap();
        assert_eq!(clock.next_wait_ms(), None);
        assert!(!clock.has_due_waits());
        assert_eq!(clock.now_ms(), 5_000);
    }

    #[test]
    fn clocks_compare_by_identity() {
        let a = Clock::manual(0);
        assert_eq!(a, a.clone());
        assert_ne!(a, Clock::manual(0));
        assert_eq!(Clock::system(), Clock::default());
        assert_ne!(Clock::system(), a);
        assert_eq!(format!("{a:?}"), "Clock::Manual(1970-01-01T00:00:00.000Z)");
    }
}
