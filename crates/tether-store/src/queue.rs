//! Task queues in the storage contract: names, depths and the limits a claim carries.

/// The name of the default task queue: the queue of a run started without one.
pub const DEFAULT_QUEUE: &str = "default";

/// How many runs of one queue wait to be admitted (see [`crate::Store::queue_depths`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueDepth {
    /// The queue.
    pub queue: String,
    /// Its unfinished runs not yet admitted (never claimed).
    pub waiting: u64,
}

/// At most `count` admissions per `per_ms` milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QueueRate {
    /// Admissions allowed per period (at least 1).
    pub count: u64,
    /// The period, in milliseconds (at least 1).
    pub per_ms: u64,
}

/// The limits of one queue, cluster-wide.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueueLimit {
    /// At most this many admitted, unfinished runs of the queue at once.
    pub concurrency: Option<u64>,
    /// At most this many admissions per period.
    pub rate: Option<QueueRate>,
}

impl QueueLimit {
    /// Whether this limits anything.
    pub fn is_none(&self) -> bool {
        self.concurrency.is_none() && self.rate.is_none()
    }
}

/// The queues a node serves and the limits it admits runs under (passed with every
/// [`WriteOp::Claim`](crate::WriteOp::Claim)). `Default`: every queue, no limits.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct QueuePolicy {
    /// The queues served; `None`: all of them.
    pub serves: Option<std::collections::BTreeSet<String>>,
    /// Limits per queue; a queue not named here has none.
    pub limits: std::collections::BTreeMap<String, QueueLimit>,
}

impl QueuePolicy {
    /// Whether the node serves `queue`.
    pub fn serves(&self, queue: &str) -> bool {
        self.serves.as_ref().is_none_or(|s| s.contains(queue))
    }

    /// The limits of `queue`, if it has any.
    pub fn limit(&self, queue: &str) -> Option<&QueueLimit> {
        self.limits.get(queue).filter(|l| !l.is_none())
    }

    /// Whether a run of `queue` may be created already claimed by this node (it serves the
    /// queue and the queue has no limit): else it is created unclaimed and admitted by a
    /// [`WriteOp::Claim`](crate::WriteOp::Claim).
    pub fn claims_at_creation(&self, queue: &str) -> bool {
        self.serves(queue) && self.limit(queue).is_none()
    }

    /// The served queues as a list (`None`: all), for [`crate::Store::runs_needing_work`].
    pub fn served(&self) -> Option<Vec<String>> {
        self.serves.as_ref().map(|s| s.iter().cloned().collect())
    }
}

/// Longest queue name.
pub const MAX_QUEUE_NAME_LEN: usize = 128;

/// Check a queue name: 1 to [`MAX_QUEUE_NAME_LEN`] ASCII letters, digits, `_`, `-`, `.` or
/// `:` (so that `--queues a,b` and `--queue-limit a=10` can name any queue). The reason when
/// it is not one.
pub fn check_queue_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_QUEUE_NAME_LEN {
        return Err(format!(
            "a queue name must be 1 to {MAX_QUEUE_NAME_LEN} characters"
        ));
    }
    if let Some(c) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':')))
    {
        return Err(format!(
            "a queue name may only hold ASCII letters, digits, `_`, `-`, `.` and `:` (not {c:?})"
        ));
    }
    Ok(())
}
