//! A panic in a handler is a failed call, not a crash: [`CatchPanic`] turns it into an
//! [`Error`] naming the function, with the panic message cut to [`MAX_PANIC_MESSAGE`].

use std::any::Any;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::function::Metadata;
use crate::wire::cap_text;
use crate::{Error, ErrorKind, Result};

/// How many bytes of a panic message an error keeps; longer ones are cut, and the cut is
/// marked.
pub const MAX_PANIC_MESSAGE: usize = 4096;

/// Polls a handler's future and turns a panic while polling it into an error naming
/// `path`; after a panic the inner future is dropped and never polled again.
///
/// The future is boxed, so it lives on the heap and not in the frames of every poll.
pub struct CatchPanic<F> {
    function: Named,
    inner: Option<Pin<Box<F>>>,
}

/// The function a [`CatchPanic`] names; its path is computed only when it panics.
#[derive(Clone, Copy, Debug)]
enum Named {
    Path(&'static str),
    Metadata(&'static Metadata),
}

impl Named {
    fn path(self) -> std::borrow::Cow<'static, str> {
        match self {
            Named::Path(path) => path.into(),
            Named::Metadata(metadata) => metadata.convex_path().into(),
        }
    }
}

impl<F> CatchPanic<F> {
    /// Wraps the future of the function at `path`.
    pub fn new(path: &'static str, future: F) -> Self {
        Self {
            function: Named::Path(path),
            inner: Some(Box::pin(future)),
        }
    }

    /// Wraps the future of the function `metadata` describes.
    pub fn of(metadata: &'static Metadata, future: F) -> Self {
        Self {
            function: Named::Metadata(metadata),
            inner: Some(Box::pin(future)),
        }
    }
}

impl<F> std::fmt::Debug for CatchPanic<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CatchPanic")
            .field("function", &self.function)
            .finish_non_exhaustive()
    }
}

impl<T, F: Future<Output = Result<T>>> Future for CatchPanic<F> {
    type Output = Result<T>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<T>> {
        let function = self.function;
        let Some(inner) = self.inner.as_mut() else {
            return Poll::Ready(Err(Error::new(
                ErrorKind::Server,
                format!("'{}' was polled after it panicked", function.path()),
            )));
        };
        match catch_unwind(AssertUnwindSafe(|| inner.as_mut().poll(cx))) {
            Ok(poll) => poll,
            Err(payload) => {
                // Dropping the future may panic too (a `Drop` of its state); that one is
                // contained as well, and the first message wins.
                let inner = self.inner.take();
                let _ = catch_unwind(AssertUnwindSafe(move || drop(inner)));
                Poll::Ready(Err(panic_error(&function.path(), payload.as_ref())))
            }
        }
    }
}

/// The error a panic with `payload` in the function at `path` becomes:
/// `Uncaught panic in '<path>': <message>` ([`ErrorKind::Server`]), the message cut at
/// [`MAX_PANIC_MESSAGE`] bytes by the wire's one text cap ([`cap_text`]).
pub fn panic_error(path: &str, payload: &(dyn Any + Send)) -> Error {
    let message = if let Some(text) = payload.downcast_ref::<&str>() {
        text
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.as_str()
    } else {
        "(a panic payload that is not text)"
    };
    Error::new(
        ErrorKind::Server,
        format!(
            "Uncaught panic in '{path}': {}",
            cap_text(message, MAX_PANIC_MESSAGE)
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_bounded_and_name_the_function() {
        let long = "é".repeat(MAX_PANIC_MESSAGE);
        let err = panic_error("a:b", &long);
        assert_eq!(err.kind(), ErrorKind::Server);
        assert!(err.message().starts_with("Uncaught panic in 'a:b': é"));
        assert!(
            err.message().len() < MAX_PANIC_MESSAGE + 100,
            "{}",
            err.message().len()
        );
        let message = err
            .message()
            .strip_prefix("Uncaught panic in 'a:b': ")
            .unwrap();
        assert_eq!(message, cap_text(&long, MAX_PANIC_MESSAGE));
        let kept = message.find('…').unwrap();
        assert!(message.ends_with(&format!("[truncated {} bytes]", long.len() - kept)));
        let short = panic_error("a:b", &"boom");
        assert_eq!(short.message(), "Uncaught panic in 'a:b': boom");
        assert!(panic_error("a:b", &7u8).message().contains("not text"));
    }
}
