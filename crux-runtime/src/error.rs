//! The error type handlers return and that crosses function boundaries unchanged.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `Result` with [`Error`] as the error type; what every crux handler returns.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong in a function call, as a Convex client would see it.
///
/// Like `anyhow::Error`, it converts from any `std::error::Error` with `?`, so it does not
/// implement `std::error::Error` itself. It serializes to JSON so that an error raised three
/// function hops away reaches the caller with the same kind, message and data.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Error {
    kind: ErrorKind,
    message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    data: Option<serde_json::Value>,
}

/// The class of an [`Error`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The arguments did not match the function's `Args` type (Convex's `ArgumentValidationError`).
    ArgumentValidation,
    /// The return value did not match the caller's `Output` type (Convex's `ReturnsValidationError`).
    ReturnsValidation,
    /// No function with that path is visible to the caller.
    NotFound,
    /// An application error carrying structured data (Convex's `ConvexError`).
    Application,
    /// Any other failure raised by a handler, including a panic in one.
    Server,
    /// A function ran longer than its kind's execution limit.
    Timeout,
    /// A function call was nested deeper than the host allows.
    CallDepth,
}

impl Error {
    /// A server error with a message.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self::new(ErrorKind::Server, message)
    }

    /// An error of the given kind.
    pub fn new(kind: ErrorKind, message: impl fmt::Display) -> Self {
        Self {
            kind,
            message: message.to_string(),
            data: None,
        }
    }

    /// An application error carrying structured data, like Convex's `ConvexError`.
    ///
    /// ```
    /// let err = crux_runtime::Error::application("thread is closed", serde_json::json!({"code": "closed"}));
    /// assert_eq!(err.data().unwrap()["code"], "closed");
    /// ```
    pub fn application(message: impl fmt::Display, data: serde_json::Value) -> Self {
        Self {
            kind: ErrorKind::Application,
            message: message.to_string(),
            data: Some(data),
        }
    }

    /// The class of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human-readable message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Structured data of an application error.
    pub fn data(&self) -> Option<&serde_json::Value> {
        self.data.as_ref()
    }

    /// The error's type name as Crux records it (`error.name`).
    pub fn name(&self) -> &'static str {
        match self.kind {
            ErrorKind::ArgumentValidation => "ArgumentValidationError",
            ErrorKind::ReturnsValidation => "ReturnsValidationError",
            ErrorKind::NotFound => "FunctionNotFound",
            ErrorKind::Application => "ConvexError",
            ErrorKind::Server => "Error",
            ErrorKind::Timeout => "TimeoutError",
            ErrorKind::CallDepth => "CallDepthError",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("Error");
        s.field("kind", &self.kind).field("message", &self.message);
        if let Some(data) = &self.data {
            s.field("data", data);
        }
        s.finish()
    }
}

impl<E> From<E> for Error
where
    E: std::error::Error + Send + Sync + 'static,
{
    fn from(err: E) -> Self {
        Self::msg(err)
    }
}
