//! Routes of HTTP actions: by method and exact path or path prefix, with Convex's
//! `httpRouter` rules, to the crux action that handles the request.

use std::collections::HashMap;

use crux_local::{ActionCtx, Deployment};
use crux_runtime::function::Function;

use crate::http_message::{HttpMethod, HttpRequest, HttpResponse};

/// Routes HTTP requests to actions, as Convex's `httpRouter` does: by method and an exact
/// `path` or a `path_prefix`. An exact route wins over a prefix; of two prefixes the longer
/// wins. `HEAD` is routed as `GET`. Register it with
/// [`ServerBuilder::http_actions`](crate::ServerBuilder::http_actions).
///
/// A handler is an action taking an [`HttpRequest`] and returning an [`HttpResponse`];
/// declare it `#[crux::internal_action]` so only the router (and admin-key callers of
/// `/api/action`) reach it, and register it on the deployment like any function.
///
/// ```
/// use crux::prelude::*;
/// use crux_server::{HttpMethod, HttpRequest, HttpResponse, HttpRouter, RouteError};
///
/// #[crux::internal_action(path = "http:hook", name = "stripe webhook")]
/// async fn hook(_ctx: &ActionCtx, request: HttpRequest) -> crux::Result<HttpResponse> {
///     Ok(HttpResponse::text(format!("{} bytes", request.body.0.len())))
/// }
///
/// # fn main() -> Result<(), RouteError> {
/// let router = HttpRouter::new()
///     .route(HttpMethod::Post, "/webhooks/stripe", hook)?
///     .route_prefix(HttpMethod::Get, "/files/", hook)?;
/// assert!(HttpRouter::new().route(HttpMethod::Get, "no-slash", hook).is_err());
/// assert!(HttpRouter::new().route_prefix(HttpMethod::Get, "/files", hook).is_err());
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, Default)]
pub struct HttpRouter {
    exact: HashMap<(HttpMethod, String), Target>,
    /// Longest prefix first, so the first match is the one Convex picks.
    prefixes: Vec<(HttpMethod, String, Target)>,
}

/// The action a route runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Target {
    /// Its Convex path (`http:stripe_webhook`).
    pub(crate) function: &'static str,
    /// Where its handler is declared, to tell it from another function at the same path.
    module_path: &'static str,
    export: &'static str,
}

/// A route that cannot be added, or a router whose actions the deployment lacks.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RouteError {
    /// A path or prefix must start with `/`.
    #[error("HTTP route `{0}` does not start with a /")]
    NotAbsolute(String),
    /// A prefix must end with `/` (`/files/` matches `/files/a` and `/files/`).
    #[error("HTTP route prefix `{0}` must end with a /")]
    PrefixWithoutTrailingSlash(String),
    /// `/api/` is Convex's HTTP API (and `/.files/` Convex's file storage).
    #[error(
        "HTTP route `{0}` is reserved: /api/ serves Convex's HTTP API and /.files/ is Convex's \
         file storage"
    )]
    Reserved(String),
    /// The same method and path (or prefix) were routed twice.
    #[error("HTTP route {method} `{path}` is already in use")]
    Duplicate {
        /// The method.
        method: &'static str,
        /// The path or prefix.
        path: String,
    },
    /// A routed action is not registered on the deployment served (or another function
    /// is registered at its path).
    #[error(
        "the HTTP action `{function}` routed at {method} `{path}` is not registered on the \
         deployment: add it with DeploymentBuilder::function"
    )]
    NotRegistered {
        /// The action's Convex path.
        function: &'static str,
        /// The route's method.
        method: &'static str,
        /// The route's path or prefix.
        path: String,
    },
}

impl HttpRouter {
    /// An empty router.
    pub fn new() -> Self {
        HttpRouter::default()
    }

    /// Routes `method` requests for exactly `path` (`/profile` matches `/profile`, not
    /// `/profile/`) to the action `f`.
    ///
    /// # Errors
    ///
    /// [`RouteError`] when `path` does not start with `/`, lies under `/api/` or
    /// `/.files/`, or is already routed for `method`.
    pub fn route<F>(mut self, method: HttpMethod, path: &str, f: F) -> Result<Self, RouteError>
    where
        F: Function<Context = ActionCtx, Args = HttpRequest, Output = HttpResponse>,
    {
        check_path(path)?;
        let key = (method, path.to_owned());
        if self.exact.contains_key(&key) {
            return Err(RouteError::Duplicate {
                method: method.as_str(),
                path: key.1,
            });
        }
        self.exact.insert(key, Target::of(f));
        Ok(self)
    }

    /// Routes `method` requests for every path starting with `prefix` (`/files/` matches
    /// `/files/`, `/files/a` and `/files/a/b`, not `/files`) to the action `f`.
    ///
    /// # Errors
    ///
    /// [`RouteError`] when `prefix` does not start and end with `/`, lies under `/api/` or
    /// `/.files/`, or is already routed for `method`.
    pub fn route_prefix<F>(
        mut self,
        method: HttpMethod,
        prefix: &str,
        f: F,
    ) -> Result<Self, RouteError>
    where
        F: Function<Context = ActionCtx, Args = HttpRequest, Output = HttpResponse>,
    {
        check_path(prefix)?;
        if !prefix.ends_with('/') {
            return Err(RouteError::PrefixWithoutTrailingSlash(prefix.to_owned()));
        }
        if self
            .prefixes
            .iter()
            .any(|(m, p, _)| *m == method && p == prefix)
        {
            return Err(RouteError::Duplicate {
                method: method.as_str(),
                path: prefix.to_owned(),
            });
        }
        // Stable: among equal lengths the earlier route stays first (they cannot both
        // match one path anyway: equal length and both a prefix of it means equal).
        let at = self
            .prefixes
            .partition_point(|(_, p, _)| p.len() >= prefix.len());
        self.prefixes
            .insert(at, (method, prefix.to_owned(), Target::of(f)));
        Ok(self)
    }

    /// Whether nothing is routed.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.prefixes.is_empty()
    }

    /// The action for a request to `path` with method `method` (as sent: `HEAD` is looked
    /// up as `GET`).
    pub(crate) fn lookup(&self, method: &str, path: &str) -> Option<Target> {
        let method = HttpMethod::route_of(method)?;
        if let Some(target) = self.exact.get(&(method, path.to_owned())) {
            return Some(*target);
        }
        self.prefixes
            .iter()
            .find(|(m, prefix, _)| *m == method && path.starts_with(prefix.as_str()))
            .map(|(_, _, target)| *target)
    }

    /// Checks that every routed action is registered on `deployment`.
    pub(crate) fn check(&self, deployment: &Deployment) -> Result<(), RouteError> {
        let routes = self
            .exact
            .iter()
            .map(|((method, path), target)| (*method, path, target))
            .chain(self.prefixes.iter().map(|(m, p, t)| (*m, p, t)));
        for (method, path, target) in routes {
            let registered = deployment.metadata(target.function).is_some_and(|found| {
                found.module_path == target.module_path && found.export == target.export
            });
            if !registered {
                return Err(RouteError::NotRegistered {
                    function: target.function,
                    method: method.as_str(),
                    path: path.clone(),
                });
            }
        }
        Ok(())
    }
}

impl Target {
    fn of<F: Function>(_: F) -> Self {
        Target {
            function: F::path(),
            module_path: F::METADATA.module_path,
            export: F::METADATA.export,
        }
    }
}

/// The rules a path and a prefix share.
fn check_path(path: &str) -> Result<(), RouteError> {
    if !path.starts_with('/') {
        return Err(RouteError::NotAbsolute(path.to_owned()));
    }
    if path.starts_with("/api/") || path == "/api" || path.starts_with("/.files/") {
        return Err(RouteError::Reserved(path.to_owned()));
    }
    Ok(())
}
