//! Markdown output: tables, number formatting, target verdicts, and splicing generated
//! sections into `docs/benchmarks.md` between `<!-- BEGIN name -->` / `<!-- END name -->`.

use std::fmt::Write as _;
use std::time::Duration;

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
    }

    #[test]
    fn splice_replaces_only_the_marked_section() {
        let doc = "intro\n<!-- BEGIN t -->\nold\n<!-- END t -->\noutro\n";
        let out = splice(doc, "t", "new\n").unwrap();
        assert_eq!(out, "intro\n<!-- BEGIN t -->\nnew\n<!-- END t -->\noutro\n");
        assert!(splice(doc, "missing", "x").is_err());
    }
}
