//! Everything a store lets one read about the universe of [`crate::ops`], taken after a batch
//! and compared between the backends.

use proptest::prelude::*;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value};
use tether_core::event::{Event, RunStatus};
use tether_store::{
    HookEnd, HookRecord, RunCount, RunCursor, RunFilter, RunRecord, Store, StoreError,
};

use crate::ops::{NODES, RUN_IDS, T0, TOKENS};

/// What one run looks like through every read of the contract.
#[derive(Debug, PartialEq)]
pub struct RunView {
    /// `get_run`.
    pub record: Result<Option<RunRecord>, StoreError>,
    /// `load_journal` from the start.
    pub journal: Result<Vec<Event>, StoreError>,
    /// `load_journal` after entry 2.
    pub journal_after_2: Result<Vec<Event>, StoreError>,
    /// `list_hooks`.
    pub hooks: Result<Vec<HookRecord>, StoreError>,
    /// `get_state`.
    pub state: Result<Option<Map<String, Value>>, StoreError>,
    /// `list_threads`.
    pub threads: Result<Vec<RunRecord>, StoreError>,
    /// `list_children`.
    pub children: Result<Vec<RunRecord>, StoreError>,
}

/// The whole readable state of a store.
#[derive(Debug, PartialEq)]
pub struct Snapshot {
    /// Per run id of the universe.
    pub runs: Vec<(String, RunView)>,
    /// `get_hook` per token of the universe.
    pub hooks: Vec<(String, Result<Option<HookRecord>, StoreError>)>,
    /// `get_hook_end` per token of the universe.
    pub hook_ends: Vec<(String, Result<Option<HookEnd>, StoreError>)>,
    /// `list_runs` with the default filter, then by status, by workflow, and a page of two
    /// after the first.
    pub listed: Vec<Result<Vec<RunRecord>, StoreError>>,
    /// `count_runs`.
    pub counts: Result<Vec<RunCount>, StoreError>,
    /// `runs_needing_work` per node, at a time past every lease of the universe and at its
    /// start.
    pub needing_work: Vec<(String, u64, Result<Vec<String>, StoreError>)>,
}

/// Read everything.
pub async fn take(store: &dyn Store) -> Snapshot {
    let mut runs = Vec::new();
    for &run_id in RUN_IDS {
        let view = RunView {
            record: store.get_run(run_id).await,
            journal: store.load_journal(run_id, 0).await,
            journal_after_2: store.load_journal(run_id, 2).await,
            hooks: store.list_hooks(run_id).await,
            state: store.get_state(run_id).await,
            threads: store.list_threads(run_id).await,
            children: store.list_children(run_id).await,
        };
        runs.push((run_id.to_owned(), view));
    }
    let mut hooks = Vec::new();
    let mut hook_ends = Vec::new();
    for &token in TOKENS {
        hooks.push((token.to_owned(), store.get_hook(token).await));
        hook_ends.push((token.to_owned(), store.get_hook_end(token).await));
    }
    let mut needing_work = Vec::new();
    for &node in NODES {
        for now in [T0, T0 + 1_000_000] {
            let due = store.runs_needing_work(now, node, None, 100).await;
            needing_work.push((node.to_owned(), now, due));
        }
    }
    Snapshot {
        runs,
        hooks,
        hook_ends,
        listed: list_runs(store).await,
        counts: store.count_runs().await,
        needing_work,
    }
}

/// `list_runs` through several filters (see [`Snapshot::listed`]).
async fn list_runs(store: &dyn Store) -> Vec<Result<Vec<RunRecord>, StoreError>> {
    let all = store.list_runs(&RunFilter::default()).await;
    let after_first = match &all {
        Ok(runs) => runs.first().map(RunCursor::of),
        Err(_) => None,
    };
    let filters = [
        RunFilter {
            status: Some(RunStatus::Pending),
            ..RunFilter::default()
        },
        RunFilter {
            workflow: Some("w1".to_owned()),
            ..RunFilter::default()
        },
        RunFilter {
            limit: 2,
            before: after_first,
            ..RunFilter::default()
        },
    ];
    let mut listed = vec![all];
    for filter in &filters {
        listed.push(store.list_runs(filter).await);
    }
    listed
}

/// Fail the case, naming the first part that differs, when `left` (SQLite) and `right`
/// (PostgreSQL) differ after batch `batch`.
pub fn assert_same(left: &Snapshot, right: &Snapshot, batch: usize) -> Result<(), TestCaseError> {
    for ((run_id, l), (_, r)) in left.runs.iter().zip(&right.runs) {
        prop_assert_eq!(
            l,
            r,
            "run {} differs after batch {} (left: SQLite)",
            run_id,
            batch
        );
    }
    prop_assert_eq!(
        &left.hooks,
        &right.hooks,
        "get_hook differs after batch {}",
        batch
    );
    prop_assert_eq!(
        &left.hook_ends,
        &right.hook_ends,
        "get_hook_end differs after batch {}",
        batch
    );
    prop_assert_eq!(
        &left.listed,
        &right.listed,
        "list_runs differs after batch {}",
        batch
    );
    prop_assert_eq!(
        &left.counts,
        &right.counts,
        "count_runs differs after batch {}",
        batch
    );
    prop_assert_eq!(
        &left.needing_work,
        &right.needing_work,
        "runs_needing_work differs after batch {}",
        batch
    );
    Ok(())
}
