//! `ctx.console`: log lines for the caller, as Convex's `console.log` in a function. An
//! HTTP client gets them as the reply's `logLines` (`[LEVEL] message`, the npm client prints
//! them); the lines of every function a call reaches go to the same caller.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use crux_runtime::wire::cap_string;

/// How many lines one client call returns at most, as on Convex: past it, the first
/// `MAX_LOG_LINES - 1` lines and then Convex's `[ERROR] Log overflow (maximum 256).
/// Remaining log lines omitted.`
pub const MAX_LOG_LINES: usize = 256;

/// The longest line kept, in bytes; a longer one is cut and marked
/// `… [truncated N bytes]` (Convex allows 32 KiB; 4 KiB keeps a reply of 256 lines small).
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

    /// Takes the lines collected so far, ending with Convex's `[ERROR] Log overflow ...`
    /// line when some were left out; the collection is empty afterwards.
    pub fn take(&self) -> Vec<String> {
        let mut collected = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let mut lines = std::mem::take(&mut collected.lines);
        if std::mem::take(&mut collected.omitted) > 0 {
            lines.push(format!(
                "[ERROR] Log overflow (maximum {MAX_LOG_LINES}). Remaining log lines omitted."
            ));
        }
        lines
    }

    /// How many lines were left out since the last [`take`](Self::take).
    pub fn omitted(&self) -> usize {
        self.inner
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .omitted
    }

    pub(crate) fn push(&self, level: Level, message: &dyn fmt::Display) {
        // A full collection does not pay for formatting.
        if self.full_then_omit() {
            return;
        }
        // Formatted before locking: a `Display` that logs (through `tracing` and
        // `ConsoleLayer`) re-enters here instead of deadlocking on the lock it holds.
        self.push_line(format!("[{}] {message}", level.name()));
    }

    /// Adds lines already formatted `[LEVEL] message` (a remote callee's `logLines`),
    /// within the same bounds as the lines logged here.
    pub fn append(&self, lines: impl IntoIterator<Item = String>) {
        for line in lines {
            self.push_line(line);
        }
    }

    fn push_line(&self, line: String) {
        let line = cap_string(line, MAX_LOG_LINE);
        let mut collected = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        if collected.lines.len() >= MAX_LOG_LINES - 1 {
            collected.omitted += 1;
            return;
        }
        collected.lines.push(line);
    }

    /// Counts a line as omitted when no place is left (the last is kept for the overflow
    /// line).
    fn full_then_omit(&self) -> bool {
        let mut collected = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let full = collected.lines.len() >= MAX_LOG_LINES - 1;
        if full {
            collected.omitted += 1;
        }
        full
    }
}

/// The level of a log line, as Convex names it in `logLines`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
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

#[cfg(feature = "tracing")]
pub(crate) use current::{WithLogLines, log_current};

/// The log lines of the call being polled on this thread, for [`ConsoleLayer`]
/// (`crate::ConsoleLayer`), which sees `tracing` events but no context.
#[cfg(feature = "tracing")]
mod current {
    use std::cell::RefCell;
    use std::fmt;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use super::{Level, LogLines};

    thread_local! {
        static CURRENT: RefCell<Option<LogLines>> = const { RefCell::new(None) };
    }

    /// Adds a line to the log lines of the call being polled on this thread; `false` when
    /// none is collecting.
    pub(crate) fn log_current(level: Level, message: &dyn fmt::Display) -> bool {
        CURRENT.with(|current| match &*current.borrow() {
            Some(lines) => {
                lines.push(level, message);
                true
            }
            None => false,
        })
    }

    /// Whether a call being polled on this thread collects log lines.
    pub(crate) fn collecting() -> bool {
        CURRENT.with(|current| current.borrow().is_some())
    }

    /// Makes `lines` the current log lines on every poll of the inner future (and puts
    /// back what was current after it, also when the poll unwinds).
    pub(crate) struct WithLogLines<F> {
        lines: LogLines,
        inner: F,
    }

    impl<F> WithLogLines<F> {
        pub(crate) fn new(lines: LogLines, inner: F) -> Self {
            WithLogLines { lines, inner }
        }
    }

    struct Restore(Option<LogLines>);

    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            CURRENT.with(|current| *current.borrow_mut() = previous);
        }
    }

    /// `F` is a pinned reference (`pin!`), so this needs no unsafe pin projection.
    impl<F: Future + Unpin> Future for WithLogLines<F> {
        type Output = F::Output;

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
            let this = self.get_mut();
            let previous = CURRENT.with(|current| current.replace(Some(this.lines.clone())));
            let _restore = Restore(previous);
            Pin::new(&mut this.inner).poll(cx)
        }
    }
}

#[cfg(feature = "tracing")]
pub(crate) use current::collecting;

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
        assert_eq!(lines.omitted(), 11);
        let taken = lines.take();
        assert_eq!(taken.len(), MAX_LOG_LINES);
        assert_eq!(taken[MAX_LOG_LINES - 2], "[INFO] 254");
        assert_eq!(
            taken[MAX_LOG_LINES - 1],
            "[ERROR] Log overflow (maximum 256). Remaining log lines omitted."
        );
        // Exactly 255 lines fit without the notice.
        for i in 0..MAX_LOG_LINES - 1 {
            console.info(i);
        }
        assert_eq!(lines.take().len(), MAX_LOG_LINES - 1);
        // Nobody collecting: dropped, never a failure.
        Console::default().info("nowhere");
    }

    /// A value whose `Display` logs to the same console (as one that emits a `tracing`
    /// event would, through `ConsoleLayer`).
    struct LogsWhileShown(Console);

    impl fmt::Display for LogsWhileShown {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            self.0.debug("from inside Display");
            f.write_str("outer")
        }
    }

    #[test]
    fn a_message_that_logs_while_formatted_does_not_deadlock() {
        let lines = LogLines::new();
        let console = Console::new(Some(lines.clone()));
        console.info(LogsWhileShown(console.clone()));
        assert_eq!(
            lines.take(),
            ["[DEBUG] from inside Display", "[INFO] outer"]
        );
    }
}
