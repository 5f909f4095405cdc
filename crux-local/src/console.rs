//! `ctx.console`: log lines for the caller, as Convex's `console.log` in a function. An
//! HTTP client gets them as the reply's `logLines` (`[LEVEL] message`, the npm client prints
//! them); the lines of every function a call reaches go to the same caller.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crux_runtime::wire::cap_string;

/// How many lines one client call collects; later ones are counted and reported by one
/// closing line, as Convex does.
pub const MAX_LOG_LINES: usize = 256;

/// The longest line kept, in bytes; a longer one is cut and marked
/// `… [truncated N bytes]`.
pub const MAX_LOG_LINE: usize = 4096;

/// The log lines of one client call, shared by every function it reaches; bounded by
/// [`MAX_LOG_LINES`] and [`MAX_LOG_LINE`]. A cheap `Clone` handle.
///
/// ```
/// # async fn demo(deployment: crux_local::Deployment) -> crux_runtime::Result<()> {
/// use crux_local::{ClientCall, LogLines};
/// let lines = LogLines::new();
/// deployment
///     .call_with("chat:respond", serde_json::json!({}), ClientCall::new().log_lines(lines.clone()))
///     .await?;
/// for line in lines.take() {
///     println!("{line}"); // "[INFO] planning research"
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct LogLines {
    inner: Arc<Mutex<Collected>>,
}

#[derive(Debug, Default)]
struct Collected {
    lines: Vec<String>,
    omitted: usize,
}

impl LogLines {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// Takes the lines collected so far, plus a closing `[WARN] Log overflow ...` line when
    /// some were omitted; the collection is empty afterwards.
    pub fn take(&self) -> Vec<String> {
        let mut collected = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines = std::mem::take(&mut collected.lines);
        let omitted = std::mem::take(&mut collected.omitted);
        if omitted > 0 {
            lines.push(format!(
                "[WARN] Log overflow (maximum {MAX_LOG_LINES}). {omitted} remaining log lines \
                 omitted."
            ));
        }
        lines
    }

    fn push(&self, level: Level, message: &dyn fmt::Display) {
        let mut collected = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if collected.lines.len() >= MAX_LOG_LINES {
            collected.omitted += 1;
            return;
        }
        // Formatted under the lock: lines from concurrent functions stay whole and in the
        // order they were logged.
        let line = cap_string(format!("[{}] {message}", level.name()), MAX_LOG_LINE);
        collected.lines.push(line);
    }
}

/// The level of a log line, as Convex names it in `logLines`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    Log,
    Debug,
    Info,
    Warn,
    Error,
}

impl Level {
    fn name(self) -> &'static str {
        match self {
            Level::Log => "LOG",
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warn => "WARN",
            Level::Error => "ERROR",
        }
    }
}

/// `ctx.console`: Convex's `console` in a function. Each method adds one line
/// `[LEVEL] message` to the caller's `logLines`; without a caller collecting them (an
/// in-process call without [`ClientCall::log_lines`](crate::ClientCall::log_lines), a
/// scheduled job) the line is dropped. Logging never changes a call's result.
///
/// ```ignore
/// ctx.console.info(format_args!("planning research for {}", args.thread_id));
/// ```
#[derive(Clone, Debug, Default)]
pub struct Console {
    lines: Option<LogLines>,
}

impl Console {
    pub(crate) fn new(lines: Option<LogLines>) -> Self {
        Console { lines }
    }

    fn write(&self, level: Level, message: &dyn fmt::Display) {
        if let Some(lines) = &self.lines {
            lines.push(level, message);
        }
    }

    /// `console.log`: a `[LOG]` line.
    pub fn log(&self, message: impl fmt::Display) {
        self.write(Level::Log, &message);
    }

    /// `console.debug`: a `[DEBUG]` line.
    pub fn debug(&self, message: impl fmt::Display) {
        self.write(Level::Debug, &message);
    }

    /// `console.info`: an `[INFO]` line.
    pub fn info(&self, message: impl fmt::Display) {
        self.write(Level::Info, &message);
    }

    /// `console.warn`: a `[WARN]` line.
    pub fn warn(&self, message: impl fmt::Display) {
        self.write(Level::Warn, &message);
    }

    /// `console.error`: an `[ERROR]` line.
    pub fn error(&self, message: impl fmt::Display) {
        self.write(Level::Error, &message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_convex_shaped_and_bounded() {
        let lines = LogLines::new();
        let console = Console::new(Some(lines.clone()));
        console.log("hello");
        console.warn(format_args!("{} left", 3));
        console.error("x".repeat(10_000));
        let taken = lines.take();
        assert_eq!(&taken[..2], ["[LOG] hello", "[WARN] 3 left"]);
        assert!(taken[2].len() <= MAX_LOG_LINE && taken[2].starts_with("[ERROR] xxx"));
        assert!(taken[2].ends_with(" bytes]"), "{}", &taken[2][4000..]);
        assert!(lines.take().is_empty(), "taken once");
        for i in 0..MAX_LOG_LINES + 10 {
            console.info(i);
        }
        let taken = lines.take();
        assert_eq!(taken.len(), MAX_LOG_LINES + 1);
        assert_eq!(taken[MAX_LOG_LINES - 1], "[INFO] 255");
        assert_eq!(
            taken[MAX_LOG_LINES],
            "[WARN] Log overflow (maximum 256). 10 remaining log lines omitted."
        );
        // Nobody collecting: dropped, never a failure.
        Console::default().info("nowhere");
    }
}
