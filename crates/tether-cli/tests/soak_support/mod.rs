//! What the soak samples besides the process: the SQLite database, read from the test process
//! with its own read-only connection while the server runs — the main file's and the WAL's
//! sizes apart, `PRAGMA page_count` and `freelist_count`, the row count of every table of the
//! schema (enumerated from `sqlite_master`, so a table added by a later migration is counted
//! without touching this file) and the pages each table holds with its indexes (`dbstat`).
//! Also the CSV the samples are written to, and the per-third figures the test checks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags};

/// How long a sample's read waits for a lock (the writer never blocks a WAL reader; only
/// the server's recovery after a restart can).
const READ_TIMEOUT: Duration = Duration::from_millis(500);

/// One sample of the server process and the database.
#[derive(Clone, Debug, Default)]
pub struct Sample {
    /// Seconds since the soak began.
    pub t: f64,
    /// The server's resident set (`VmRSS`).
    pub rss_kib: u64,
    /// The server's open file descriptors.
    pub fds: u64,
    /// The database file's size.
    pub main_bytes: u64,
    /// The WAL file's size (its high-water mark: SQLite reuses it from the start after a
    /// checkpoint and only truncates it as `journal_size_limit` says).
    pub wal_bytes: u64,
    /// What was read inside the database; `None` when the read failed (e.g. during the
    /// server's recovery after a kill).
    pub inside: Option<Inside>,
}

impl Sample {
    /// The database file and its WAL together.
    pub fn db_bytes(&self) -> u64 {
        self.main_bytes + self.wal_bytes
    }
}

/// What one read transaction saw inside the database.
#[derive(Clone, Debug, Default)]
pub struct Inside {
    /// `PRAGMA page_count`: pages of the database as of the read (WAL included).
    pub page_count: u64,
    /// `PRAGMA freelist_count`: pages of it that are free.
    pub freelist_count: u64,
    /// Rows of each table.
    pub rows: BTreeMap<String, u64>,
    /// Pages of each table and its indexes (from `dbstat`; `sqlite_schema` for the schema).
    pub pages: BTreeMap<String, u64>,
}

/// The size of `db` with `suffix` appended (`-wal`), 0 when missing.
fn file_len(db: &Path, suffix: &str) -> u64 {
    let mut p = db.as_os_str().to_owned();
    p.push(suffix);
    std::fs::metadata(PathBuf::from(p)).map_or(0, |m| m.len())
}

/// Sample the database at `db` (sizes first, so the read below cannot have moved them).
pub fn sample_db(db: &Path) -> (u64, u64, Option<Inside>) {
    let main = file_len(db, "");
    let wal = file_len(db, "-wal");
    (main, wal, read_inside(db).ok())
}

/// One short read transaction on a fresh read-only connection, closed at once (a read-only
/// connection never checkpoints; it is told not to try on close either).
fn read_inside(db: &Path) -> rusqlite::Result<Inside> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let mut conn = Connection::open_with_flags(db, flags)?;
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)?;
    conn.busy_timeout(READ_TIMEOUT)?;
    let tx = conn.transaction()?;
    let mut inside = Inside {
        page_count: tx.query_row("PRAGMA page_count", [], |r| r.get(0))?,
        freelist_count: tx.query_row("PRAGMA freelist_count", [], |r| r.get(0))?,
        ..Inside::default()
    };
    // Every table and index with the table it belongs to.
    let mut owner = BTreeMap::new();
    let mut stmt = tx.prepare(
        "SELECT name, tbl_name, type FROM sqlite_master WHERE type IN ('table', 'index')",
    )?;
    let mut objects = stmt.query([])?;
    let mut tables = Vec::new();
    while let Some(row) = objects.next()? {
        let (name, table, kind): (String, String, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
        // SQLite's own tables (`sqlite_sequence`) are not the schema's: pages only.
        if kind == "table" && !name.starts_with("sqlite_") {
            tables.push(name.clone());
        }
        owner.insert(name, table);
    }
    drop(objects);
    drop(stmt);
    for table in tables {
        // The name comes from the schema; quoted as an identifier all the same.
        let sql = format!("SELECT count(*) FROM \"{}\"", table.replace('"', "\"\""));
        let n: u64 = tx.query_row(&sql, [], |r| r.get(0))?;
        inside.rows.insert(table, n);
    }
    let mut stmt = tx.prepare("SELECT name, count(*) FROM dbstat GROUP BY name")?;
    let mut pages = stmt.query([])?;
    while let Some(row) = pages.next()? {
        let (name, n): (String, u64) = (row.get(0)?, row.get(1)?);
        // Autoindexes are listed in sqlite_master under their table; the schema is its own.
        let table = owner.get(&name).cloned().unwrap_or(name);
        *inside.pages.entry(table).or_default() += n;
    }
    drop(pages);
    drop(stmt);
    tx.commit()?;
    Ok(inside)
}

/// The CSV of the samples: the process and file figures, then `rows_<table>` and
/// `pages_<table>` for every table any sample saw (empty cells where a read failed).
pub fn csv(samples: &[Sample]) -> String {
    let tables: BTreeSet<&String> = samples
        .iter()
        .filter_map(|s| s.inside.as_ref())
        .flat_map(|i| i.rows.keys().chain(i.pages.keys()))
        .collect();
    let mut out = String::from(
        "t_secs,rss_kib,open_fds,db_bytes,main_bytes,wal_bytes,page_count,freelist_count",
    );
    for prefix in ["rows_", "pages_"] {
        for t in &tables {
            out.push_str(&format!(",{prefix}{t}"));
        }
    }
    out.push('\n');
    for s in samples {
        out.push_str(&format!(
            "{:.1},{},{},{},{},{}",
            s.t,
            s.rss_kib,
            s.fds,
            s.db_bytes(),
            s.main_bytes,
            s.wal_bytes
        ));
        let cell = |v: Option<u64>| v.map_or(String::new(), |v| v.to_string());
        let inside = s.inside.as_ref();
        out.push_str(&format!(
            ",{},{}",
            cell(inside.map(|i| i.page_count)),
            cell(inside.map(|i| i.freelist_count))
        ));
        for pick in [rows, pages] {
            for t in &tables {
                let v = pick(s, t);
                out.push_str(&format!(",{}", cell(v)));
            }
        }
        out.push('\n');
    }
    out
}

/// The maximum of `f` over the samples of `part` (0-based) of `parts` equal parts of the run,
/// skipping samples without a value.
pub fn part_max(
    samples: &[Sample],
    part: usize,
    parts: usize,
    f: impl Fn(&Sample) -> Option<u64>,
) -> u64 {
    let n = samples.len();
    let (from, to) = (n * part / parts, n * (part + 1) / parts);
    samples[from..to].iter().filter_map(f).max().unwrap_or(0)
}

/// Every table any sample counted rows of.
pub fn table_names(samples: &[Sample]) -> BTreeSet<String> {
    samples
        .iter()
        .filter_map(|s| s.inside.as_ref())
        .flat_map(|i| i.rows.keys().cloned())
        .collect()
}

/// The row count of `table` in `s`, if it was read.
pub fn rows(s: &Sample, table: &str) -> Option<u64> {
    s.inside.as_ref().and_then(|i| i.rows.get(table).copied())
}

/// The pages of `table` (with its indexes) in `s`, if read.
pub fn pages(s: &Sample, table: &str) -> Option<u64> {
    s.inside.as_ref().and_then(|i| i.pages.get(table).copied())
}

/// A figure of the samples: its name and how to read it from a sample.
type Figure = (String, Box<dyn Fn(&Sample) -> Option<u64>>);

/// Every figure the summary shows: the process, the files, the pages, then the rows and
/// pages of each table.
fn figures(samples: &[Sample]) -> Vec<Figure> {
    let mut all: Vec<Figure> = vec![
        ("rss_kib".into(), Box::new(|s| Some(s.rss_kib))),
        ("open_fds".into(), Box::new(|s| Some(s.fds))),
        ("db_bytes".into(), Box::new(|s| Some(s.db_bytes()))),
        ("main_bytes".into(), Box::new(|s| Some(s.main_bytes))),
        ("wal_bytes".into(), Box::new(|s| Some(s.wal_bytes))),
        (
            "page_count".into(),
            Box::new(|s| s.inside.as_ref().map(|i| i.page_count)),
        ),
        (
            "freelist_count".into(),
            Box::new(|s| s.inside.as_ref().map(|i| i.freelist_count)),
        ),
    ];
    for t in table_names(samples) {
        let name = t.clone();
        all.push((format!("rows_{t}"), Box::new(move |s| rows(s, &name))));
    }
    for t in table_names(samples) {
        let name = t.clone();
        all.push((format!("pages_{t}"), Box::new(move |s| pages(s, &name))));
    }
    all
}

/// Print every figure's maximum per sixth of the run and per third; return, by name, the
/// first and the last third's maxima.
pub fn report(samples: &[Sample]) -> BTreeMap<String, (u64, u64)> {
    let mut thirds = BTreeMap::new();
    for (name, f) in figures(samples) {
        let sixths: Vec<String> = (0..6)
            .map(|p| part_max(samples, p, 6, &f).to_string())
            .collect();
        let (first, last) = (part_max(samples, 0, 3, &f), part_max(samples, 2, 3, &f));
        println!(
            "soak {name}: first third max {first}, last third max {last}; max per sixth {}",
            sixths.join(" / ")
        );
        thirds.insert(name, (first, last));
    }
    thirds
}

/// Print what `s` (a sample taken after the load) holds: files, pages, rows per table.
pub fn describe(what: &str, s: &Sample) {
    let inside = s.inside.clone().unwrap_or_default();
    let rows: Vec<String> = inside
        .rows
        .iter()
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    let pages: Vec<String> = inside
        .pages
        .iter()
        .map(|(t, n)| format!("{t}={n}"))
        .collect();
    println!(
        "soak {what}: main {} bytes, WAL {} bytes, {} pages ({} free); rows {}; pages {}",
        s.main_bytes,
        s.wal_bytes,
        inside.page_count,
        inside.freelist_count,
        rows.join(" "),
        pages.join(" ")
    );
}
