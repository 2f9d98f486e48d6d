//! Markdown output: tables, number formatting, target verdicts, the tables and ratios
//! of a sweep's runs, the machine line, and splicing generated sections into
//! `docs/benchmarks.md` between `<!-- BEGIN name -->` / `<!-- END name -->`.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use crate::harness::{Summary, median, range};

/// A markdown table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Self {
        Table {
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }

    /// Appends a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        debug_assert_eq!(cells.len(), self.header.len());
        self.rows.push(cells);
    }

    /// The table as GitHub-flavoured markdown.
    pub fn to_markdown(&self) -> String {
        let mut out = String::new();
        let line = |out: &mut String, cells: &[String]| {
            out.push('|');
            for c in cells {
                let _ = write!(out, " {c} |");
            }
            out.push('\n');
        };
        line(&mut out, &self.header);
        out.push('|');
        for (i, _) in self.header.iter().enumerate() {
            out.push_str(if i == 0 { "---|" } else { "---:|" });
        }
        out.push('\n');
        for r in &self.rows {
            line(&mut out, r);
        }
        out
    }
}

/// Microseconds with one decimal (`"123.4"`), or `"-"` for NaN.
pub fn us(d: Duration) -> String {
    us_f(d.as_nanos() as f64 / 1_000.0)
}

/// A microsecond value with one decimal, or `"-"` for NaN.
pub fn us_f(micros: f64) -> String {
    if micros.is_nan() {
        "-".to_owned()
    } else if micros.abs() >= 10_000.0 {
        format!("{micros:.0}")
    } else {
        format!("{micros:.1}")
    }
}

/// Milliseconds: one decimal under 100 ms (`"23.4 ms"`), whole milliseconds under 10 s
/// (`"412 ms"`), seconds with two decimals above (`"12.35 s"`).
pub fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1e3;
    if ms < 100.0 {
        format!("{ms:.1} ms")
    } else if ms < 10_000.0 {
        format!("{ms:.0} ms")
    } else {
        format!("{:.2} s", ms / 1e3)
    }
}

/// Operations per second, rounded (`"48,210"`), or `"-"` for NaN.
pub fn ops(per_sec: f64) -> String {
    if per_sec.is_nan() {
        return "-".to_owned();
    }
    let n = per_sec.round() as u64;
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A ratio as `"0.97×"`, or `"-"` for NaN.
pub fn ratio(r: f64) -> String {
    if r.is_nan() {
        "-".to_owned()
    } else {
        format!("{r:.2}×")
    }
}

/// A median with the range over rounds: `"0.97× (0.95–0.99)"`.
pub fn ratio_with_range(median: f64, (lo, hi): (f64, f64)) -> String {
    if median.is_nan() {
        return "-".to_owned();
    }
    format!("{} ({lo:.2}–{hi:.2})", ratio(median))
}

/// Whether a target of issue 5 is met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Met in this run.
    Met,
    /// Missed in this run.
    Missed,
    /// Not measured, and why.
    Pending(String),
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Met => f.write_str("**met**"),
            Verdict::Missed => f.write_str("**missed**"),
            Verdict::Pending(why) => write!(f, "not measured: {why}"),
        }
    }
}

impl Verdict {
    /// `Met` when `ok`, else `Missed`.
    pub fn from_bool(ok: bool) -> Verdict {
        if ok { Verdict::Met } else { Verdict::Missed }
    }
}

/// One target with what was measured against it.
#[derive(Debug, Clone)]
pub struct Check {
    /// The target as issue 5 states it.
    pub target: String,
    /// The measured value (median over rounds).
    pub measured: String,
    /// Met, missed or not measured.
    pub verdict: Verdict,
}

/// What a workload produced: its markdown section and its target checks.
#[derive(Debug, Clone, Default)]
pub struct Section {
    /// The section, from its `###` title on.
    pub markdown: String,
    /// The targets it measured.
    pub checks: Vec<Check>,
}

/// The cells of a sweep: per (tasks, variant), one summary per round.
pub type Runs<V> = BTreeMap<(usize, V), Vec<Summary>>;

/// A duration in microseconds.
pub fn us_of(d: Duration) -> f64 {
    d.as_nanos() as f64 / 1_000.0
}

/// The median over rounds of `f` for one cell; NaN if it was not measured.
pub fn med<V: Ord + Copy>(runs: &Runs<V>, tasks: usize, v: V, f: impl Fn(&Summary) -> f64) -> f64 {
    runs.get(&(tasks, v))
        .map_or(f64::NAN, |s| median(&s.iter().map(f).collect::<Vec<_>>()))
}

/// Per-round ratio `f(num) / f(den)`, as (median, (min, max)).
pub fn ratio_runs<V: Ord + Copy>(
    runs: &Runs<V>,
    tasks: usize,
    num: V,
    den: V,
    f: impl Fn(&Summary) -> f64,
) -> (f64, (f64, f64)) {
    let (Some(n), Some(d)) = (runs.get(&(tasks, num)), runs.get(&(tasks, den))) else {
        return (f64::NAN, (f64::NAN, f64::NAN));
    };
    let r: Vec<f64> = n.iter().zip(d).map(|(n, d)| f(n) / f(d)).collect();
    (median(&r), range(&r))
}

/// What a ratio row compares: `f(numerator) / f(denominator)`, a throughput or a
/// latency.
pub type Metric = fn(&Summary) -> f64;

/// Throughput, for [`ratio_table`].
pub fn throughput(s: &Summary) -> f64 {
    s.ops_per_sec
}

/// Median latency in µs, for [`ratio_table`].
pub fn p50_us(s: &Summary) -> f64 {
    us_of(s.p50)
}

/// 99th percentile latency in µs, for [`ratio_table`].
pub fn p99_us(s: &Summary) -> f64 {
    us_of(s.p99)
}

/// A table of per-round ratios (median, and range over rounds), a row per
/// `(label, numerator, denominator, metric)` and a column per concurrency.
pub fn ratio_table<V: Ord + Copy>(
    runs: &Runs<V>,
    concurrency: &[usize],
    rows: &[(&str, V, V, Metric)],
) -> String {
    let mut header = vec!["ratio".to_owned()];
    header.extend(
        concurrency
            .iter()
            .map(|&n| format!("{n} task{}", if n == 1 { "" } else { "s" })),
    );
    let header: Vec<&str> = header.iter().map(String::as_str).collect();
    let mut t = Table::new(&header);
    for &(label, num, den, f) in rows {
        let mut cells = vec![label.to_owned()];
        for &tasks in concurrency {
            let (m, r) = ratio_runs(runs, tasks, num, den, f);
            cells.push(ratio_with_range(m, r));
        }
        t.row(cells);
    }
    t.to_markdown()
}

/// [`summary_table`] at each concurrency, each under a bold `N task(s)` heading.
pub fn summary_tables<V: Ord + Copy>(
    runs: &Runs<V>,
    concurrency: &[usize],
    rounds: usize,
    variants: &[(V, &str)],
) -> String {
    let mut md = String::new();
    for &tasks in concurrency {
        md.push_str(&format!(
            "**{tasks} task{}** (medians over {rounds} rounds):\n\n",
            if tasks == 1 { "" } else { "s" },
        ));
        md.push_str(&summary_table(runs, tasks, variants));
        md.push('\n');
    }
    md
}

/// Throughput and latency percentiles (medians over rounds) of the named variants at
/// one concurrency.
pub fn summary_table<V: Ord + Copy>(
    runs: &Runs<V>,
    tasks: usize,
    variants: &[(V, &str)],
) -> String {
    let mut t = Table::new(&["variant", "ops/s", "p50 µs", "p99 µs", "p99.9 µs"]);
    for (v, name) in variants {
        t.row(vec![
            (*name).to_owned(),
            ops(med(runs, tasks, *v, |s| s.ops_per_sec)),
            us_f(med(runs, tasks, *v, |s| us_of(s.p50))),
            us_f(med(runs, tasks, *v, |s| us_of(s.p99))),
            us_f(med(runs, tasks, *v, |s| us_of(s.p999))),
        ]);
    }
    t.to_markdown()
}

/// A line saying how many cells were re-run, or nothing.
pub fn rerun_note(rerun: usize) -> String {
    if rerun == 0 {
        String::new()
    } else {
        format!(
            "_{rerun} cell(s) were measured again because the cache failed operations \
             during them (the machine stalled past the deadline); only valid cells are \
             reported._\n\n"
        )
    }
}

/// The first line of `cmd args…`'s output, or `"unknown"`.
pub fn command_line(cmd: &str, args: &[&str]) -> String {
    std::process::Command::new(cmd)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned())
}

/// The machine the numbers come from: cores, CPU, redis-server and rustc versions, and
/// the load average at the start.
pub fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let load = std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default();
    format!(
        "{cores} × {cpu}; {}; {}; tokio multi-thread runtime with 2 workers; load average at start: {load}",
        command_line("redis-server", &["--version"])
            .split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" "),
        command_line("rustc", &["--version"]),
    )
}

/// Replaces the section `name` of the file at `path` with `content` (see [`splice`]).
/// A relative `path` that does not exist is taken from the workspace's root (cargo runs
/// benches in the package's directory, so `--doc docs/x.md` means the workspace's).
/// Panics if the file cannot be read or written or has no such section.
pub fn splice_file(path: &std::path::Path, name: &str, content: &str) {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = if path.is_relative() && !path.exists() {
        &root.join(path)
    } else {
        path
    };
    let doc = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("read {} to update it: {e}", path.display()));
    let updated = splice(&doc, name, content).expect("splice the tables");
    std::fs::write(path, updated).expect("write the doc");
    eprintln!("updated {}", path.display());
}

/// Replaces the text between `<!-- BEGIN name -->` and `<!-- END name -->` in `doc`.
pub fn splice(doc: &str, name: &str, content: &str) -> Result<String, String> {
    let begin = format!("<!-- BEGIN {name} -->");
    let end = format!("<!-- END {name} -->");
    let b = doc
        .find(&begin)
        .ok_or_else(|| format!("marker `{begin}` not found"))?;
    let after_begin = b + begin.len();
    let e = doc[after_begin..]
        .find(&end)
        .ok_or_else(|| format!("marker `{end}` not found"))?
        + after_begin;
    let mut out = String::with_capacity(doc.len() + content.len());
    out.push_str(&doc[..after_begin]);
    out.push('\n');
    out.push_str(content.trim_end());
    out.push('\n');
    out.push_str(&doc[e..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_render_as_markdown() {
        let mut t = Table::new(&["a", "b"]);
        t.row(vec!["x".into(), "1".into()]);
        assert_eq!(t.to_markdown(), "| a | b |\n|---|---:|\n| x | 1 |\n");
    }

    #[test]
    fn numbers_are_formatted() {
        assert_eq!(ops(1_234_567.4), "1,234,567");
        assert_eq!(ops(999.0), "999");
        assert_eq!(us(Duration::from_nanos(12_345)), "12.3");
        assert_eq!(ratio(0.966), "0.97×");
        assert_eq!(ratio(f64::NAN), "-");
        assert_eq!(ms(Duration::from_micros(23_440)), "23.4 ms");
        assert_eq!(ms(Duration::from_micros(412_300)), "412 ms");
        assert_eq!(ms(Duration::from_millis(12_346)), "12.35 s");
    }

    #[test]
    fn splice_replaces_only_the_marked_section() {
        let doc = "intro\n<!-- BEGIN t -->\nold\n<!-- END t -->\noutro\n";
        let out = splice(doc, "t", "new\n").unwrap();
        assert_eq!(out, "intro\n<!-- BEGIN t -->\nnew\n<!-- END t -->\noutro\n");
        assert!(splice(doc, "missing", "x").is_err());
    }
}
