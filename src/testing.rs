//! Pinning what a run looks like in your own tests: the run trees of a [`Memory`] sink (or
//! of records), printed as `crux show` prints them, with ids numbered and times left out so
//! the text is the same on every execution.
//!
//! ```standalone_crate
//! use crux::prelude::*;
//! use crux::sink::Memory;
//!
//! #[derive(Serialize, Deserialize)]
//! pub struct Ask {
//!     pub question: String,
//! }
//!
//! #[crux::action(name = "support chat", root = "agent.run")]
//! pub async fn respond(ctx: &ActionCtx, args: Ask) -> crux::Result<usize> {
//!     ctx.crux.run_query("count words", count_words, args).await
//! }
//!
//! #[crux::internal_query]
//! pub async fn count_words(_ctx: &QueryCtx, args: Ask) -> crux::Result<usize> {
//!     Ok(args.question.split_whitespace().count())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> crux::Result<()> {
//! let memory = Memory::new();
//! let deployment = Deployment::builder()
//!     .sink(memory.clone())
//!     .functions((respond, count_words))
//!     .build();
//! deployment.action(respond, Ask { question: "where is my refund".into() }).await?;
//! deployment.flush(std::time::Duration::from_secs(1)).await;
//!
//! crux::testing::assert_run_trees(&memory, r#"
//!     run run#1 "support chat" (agent.run)
//!     status ok · 4 records · 1 segment
//!
//!     └─ ↳ runtime.convex.query "count words" → rust_out:count_words  ok  (folded)
//! "#);
//! # Ok(())
//! # }
//! ```
//!
//! [`run_trees`] gives the text itself (for `insta::assert_snapshot!`, or to print), with
//! options: [`RunTrees::all_spans`], [`RunTrees::with_attributes`], [`RunTrees::run`]. For
//! the trees with real ids, times and durations (what the examples print), use
//! [`crux::view::Trees`](crate::view::Trees).

use std::borrow::Cow;
use std::fmt;

use serde_json::Value;

use crate::ids::RunId;
use crate::record::Record;
use crate::sink::Memory;

/// Records to draw trees from: a [`Memory`] sink, wire records as JSON values, or typed
/// [`Record`]s, in delivery order.
pub trait RecordSource {
    /// The records as wire JSON.
    fn wire_records(&self) -> Cow<'_, [Value]>;
}

impl RecordSource for Memory {
    fn wire_records(&self) -> Cow<'_, [Value]> {
        Cow::Owned(self.records())
    }
}

impl RecordSource for [Value] {
    fn wire_records(&self) -> Cow<'_, [Value]> {
        Cow::Borrowed(self)
    }
}

impl RecordSource for Vec<Value> {
    fn wire_records(&self) -> Cow<'_, [Value]> {
        Cow::Borrowed(self)
    }
}

impl<const N: usize> RecordSource for [Value; N] {
    fn wire_records(&self) -> Cow<'_, [Value]> {
        Cow::Borrowed(self)
    }
}

impl RecordSource for [Record] {
    fn wire_records(&self) -> Cow<'_, [Value]> {
        Cow::Owned(self.iter().map(Record::to_json).collect())
    }
}

impl RecordSource for Vec<Record> {
    fn wire_records(&self) -> Cow<'_, [Value]> {
        self.as_slice().wire_records()
    }
}

impl<T: RecordSource + ?Sized> RecordSource for &T {
    fn wire_records(&self) -> Cow<'_, [Value]> {
        (**self).wire_records()
    }
}

/// The normalized run trees of `records`: every run, in the order its first record was
/// delivered, as `crux show` prints it, except that run, span and other ids become `run#1`,
/// `span#1`, `id#1` (numbered in order of appearance) and start times, durations and event
/// offsets are left out. Compare it with [`assert_run_trees`], `==` or
/// `insta::assert_snapshot!(run_trees(&memory).to_string())`.
///
/// Flush the deployment or observer first, so every record has reached the sink.
pub fn run_trees(records: &(impl RecordSource + ?Sized)) -> RunTrees {
    RunTrees {
        trees: crate::view::Trees::from_values(records.wire_records().iter()).normalized(),
    }
}

/// Asserts that [`run_trees`]`(records)` is `expected`; on a mismatch, panics with a line
/// diff and the actual text to paste.
///
/// `expected` is compared as written in a test: a leading newline, the indentation common
/// to its lines and trailing spaces are ignored, so it can be an indented raw string.
#[track_caller]
pub fn assert_run_trees(records: &(impl RecordSource + ?Sized), expected: &str) {
    run_trees(records).assert_eq(expected);
}

/// The run trees of some records, normalized for tests; see [`run_trees`]. `Display` (and
/// `Debug`) print the text.
pub struct RunTrees {
    trees: crate::view::Trees,
}

impl RunTrees {
    /// Every span as recorded: no Convex hop folded into its work (`crux show --all`).
    pub fn all_spans(self) -> RunTrees {
        RunTrees {
            trees: self.trees.all_spans(),
        }
    }

    /// With attributes, metrics and artifacts (`crux show --attributes`); ids and timestamps
    /// among the values are normalized too.
    pub fn with_attributes(self) -> RunTrees {
        RunTrees {
            trees: self.trees.with_attributes(),
        }
    }

    /// Only the run `run_id` (which then prints as `run#1`).
    pub fn run(self, run_id: RunId) -> RunTrees {
        RunTrees {
            trees: self.trees.run(run_id),
        }
    }

    /// Panics, with a line diff and the actual text, unless the text is `expected`
    /// (compared as [`assert_run_trees`] does).
    #[track_caller]
    pub fn assert_eq(&self, expected: &str) {
        let actual = self.to_string();
        let (want, got) = (tidy(expected), tidy(&actual));
        if want != got {
            panic!(
                "the run trees differ from the expected text (- expected, + actual):\n{}\n\
                 actual text:\n{got}",
                line_diff(&want, &got)
            );
        }
    }
}

impl fmt::Display for RunTrees {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.trees, f)
    }
}

/// The text itself, on lines of its own, so `assert_eq!` failures stay readable.
impl fmt::Debug for RunTrees {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "\n{}", self.trees)
    }
}

impl PartialEq<str> for RunTrees {
    fn eq(&self, expected: &str) -> bool {
        tidy(expected) == tidy(&self.to_string())
    }
}

impl PartialEq<&str> for RunTrees {
    fn eq(&self, expected: &&str) -> bool {
        *self == **expected
    }
}

impl PartialEq<String> for RunTrees {
    fn eq(&self, expected: &String) -> bool {
        *self == **expected
    }
}

/// Text as a test writes it: leading and trailing blank lines, the indentation common to
/// the non-blank lines and trailing spaces removed; ends with one newline.
fn tidy(text: &str) -> String {
    let lines: Vec<&str> = text.lines().map(str::trim_end).collect();
    let first = lines
        .iter()
        .position(|l| !l.is_empty())
        .unwrap_or(lines.len());
    let last = lines
        .iter()
        .rposition(|l| !l.is_empty())
        .map_or(first, |i| i + 1);
    let lines = &lines[first..last];
    let indent = lines
        .iter()
        .filter(|l| !l.is_empty())
        .map(|l| l.len() - l.trim_start_matches(' ').len())
        .min()
        .unwrap_or(0);
    let mut out = String::new();
    for line in lines {
        out.push_str(line.get(indent..).unwrap_or(""));
        out.push('\n');
    }
    out
}

/// Lines of `want` and `got` marked ` `, `-` (only expected) or `+` (only actual), in the
/// order of a longest common subsequence.
fn line_diff(want: &str, got: &str) -> String {
    let (a, b): (Vec<&str>, Vec<&str>) = (want.lines().collect(), got.lines().collect());
    // Quadratic table: past a few million cells, show both texts whole instead.
    if a.len().saturating_mul(b.len()) > 4_000_000 {
        return format!("expected text:\n{want}");
    }
    let mut common = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            common[i][j] = if a[i] == b[j] {
                common[i + 1][j + 1] + 1
            } else {
                common[i + 1][j].max(common[i][j + 1])
            };
        }
    }
    let (mut i, mut j) = (0, 0);
    let mut out = String::new();
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            out.push_str(&format!("  {}\n", a[i]));
            (i, j) = (i + 1, j + 1);
        } else if i < a.len() && (j == b.len() || common[i + 1][j] >= common[i][j + 1]) {
            out.push_str(&format!("- {}\n", a[i]));
            i += 1;
        } else {
            out.push_str(&format!("+ {}\n", b[j]));
            j += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expected_text_is_compared_as_written_in_a_test() {
        assert_eq!(tidy("\n    a\n      b  \n\n    c\n  "), "a\n  b\n\nc\n");
        assert_eq!(tidy("a\nb"), "a\nb\n");
        assert_eq!(tidy(""), "");
    }

    #[test]
    fn the_diff_marks_lines_on_either_side() {
        assert_eq!(
            line_diff("a\nb\nc\n", "a\nx\nc\nd\n"),
            "  a\n- b\n+ x\n  c\n+ d\n"
        );
    }
}
