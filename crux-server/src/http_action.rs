//! Serving one request to an HTTP action: the route, the request as the action's argument,
//! the run continued from a trusted `traceparent` (or opened fresh), the action's
//! [`HttpResponse`] back as the HTTP response.
//!
//! The action runs through the deployment's own dispatch (`Deployment::call_with`), so its
//! run, boundary and final flush are an action's; the server records nothing itself.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use crux_local::{Bytes, ClientCall};
use crux_runtime::function::FunctionKind;

use crate::http_message::{HttpRequest, HttpResponse};
use crate::http_router::Target;
use crate::server::{Called, Shared, admit, failure, not_found, peer_of, read_body, traceparent};

/// The prefix Convex's local backend serves HTTP actions under; a request there is routed
/// by the rest of its path when nothing matches the whole of it.
const LOCAL_BACKEND_PREFIX: &str = "/http";

/// Every request no API route took: an HTTP action's, or 404.
pub(crate) async fn fallback(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let path = request.uri().path();
    if shared.http.is_empty() || path == "/api" || path.starts_with("/api/") {
        return not_found().await;
    }
    let Some((target, path)) = route(&shared, request.method().as_str(), path) else {
        // Convex's own reply to an unrouted path.
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            format!("No HttpAction routed for {path}"),
        )
            .into_response();
    };
    let _permit = match admit(&shared, request.headers()) {
        Ok(permit) => permit,
        Err(response) => return response,
    };
    let peer = peer_of(&request);
    let head = request.method() == Method::HEAD;
    let (parts, body) = request.into_parts();
    let body = match read_body(&shared.limits, &parts.headers, body).await {
        Ok(body) => body,
        Err(response) => return response,
    };
    let request = HttpRequest {
        method: parts.method.as_str().to_owned(),
        path,
        query: parts.uri.query().map(str::to_owned),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
                (name.as_str().to_owned(), value)
            })
            .collect(),
        body: Bytes(body.to_vec()),
    };
    let admin = is_admin(&shared, &parts.headers);
    // The router's own call: an internal action is reachable, and only an action runs.
    let mut call = ClientCall::new().admin(true).kind(FunctionKind::Action);
    if let Some(traceparent) = traceparent(&parts.headers) {
        call = call.remote_parent(traceparent);
    }
    // A user's JWT from a configured issuer is the action's `ctx.auth`, as on Convex; a bad
    // one is refused. Any other bearer token is left to the action (a webhook's secret).
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match bearer.and_then(|token| shared.auth.verify_if_ours(token)) {
        Some(Ok(identity)) => call = call.identity(identity),
        Some(Err(err)) => return failure(StatusCode::UNAUTHORIZED, err.code(), err.to_string()),
        None => {}
    }
    // A signature binds the HTTP action by its method and URL path: signed for `GET`, a
    // context replayed on `POST` to the same path is not continued.
    let call_named = Called {
        kind: "http",
        method: parts.method.as_str(),
        path: parts.uri.path(),
    };
    if let Some(reason) = shared.distrust(admin, peer, &parts.headers, call_named, None) {
        call = call.distrust_context(reason);
    }
    let args = match serde_json::to_value(&request) {
        Ok(args) => args,
        Err(err) => return action_failed(target.function, &err.to_string()),
    };
    drop(request);
    match shared
        .deployment
        .call_with(target.function, args, call)
        .await
    {
        Ok(value) => match serde_json::from_value::<HttpResponse>(value) {
            Ok(reply) => into_response(target.function, reply, head),
            Err(err) => action_failed(target.function, &err.to_string()),
        },
        Err(err) => action_failed(target.function, err.message()),
    }
}

/// The action for `method` at `path`, and the path it was routed by (without
/// [`LOCAL_BACKEND_PREFIX`] when that was needed to match).
fn route(shared: &Shared, method: &str, path: &str) -> Option<(Target, String)> {
    if let Some(target) = shared.http.lookup(method, path) {
        return Some((target, path.to_owned()));
    }
    let rest = path.strip_prefix(LOCAL_BACKEND_PREFIX)?;
    if !rest.starts_with('/') {
        return None;
    }
    let target = shared.http.lookup(method, rest)?;
    Some((target, rest.to_owned()))
}

/// Whether the request proves the admin key (`Authorization: Convex <key>`). Any other
/// `Authorization` is the action's business (a webhook's signature, a user's token).
fn is_admin(shared: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Convex "))
        .is_some_and(|key| shared.is_admin_key(key))
}

/// The action failed (an error, a panic, its execution limit): 500, as Convex answers an
/// HTTP action that throws.
fn action_failed(function: &str, message: &str) -> Response {
    failure(
        StatusCode::INTERNAL_SERVER_ERROR,
        "HttpActionFailed",
        format!("the HTTP action '{function}' failed: {message}"),
    )
}

/// The action's response as HTTP; one that HTTP cannot carry (a status outside 100–999, a
/// header name or value that is not valid) is a 500 naming what was wrong.
fn into_response(function: &str, reply: HttpResponse, head: bool) -> Response {
    let Ok(status) = StatusCode::from_u16(reply.status) else {
        return action_failed(
            function,
            &format!("it returned status {}, not one of 100–999", reply.status),
        );
    };
    let mut headers = HeaderMap::with_capacity(reply.headers.len());
    for (name, value) in reply.headers {
        let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
            return action_failed(
                function,
                &format!("it returned an invalid header name {name:?}"),
            );
        };
        let Ok(value) = HeaderValue::from_str(&value) else {
            return action_failed(
                function,
                &format!("it returned an invalid value for header `{name}`: {value:?}"),
            );
        };
        headers.append(name, value);
    }
    let body = if head {
        Body::empty()
    } else {
        Body::from(reply.body.0)
    };
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    response
}
