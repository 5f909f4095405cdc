//! The web viewer's assets, built into the binary (no CDN, works offline): one page of
//! plain HTML, CSS and JavaScript reading the JSON API.

use super::reply::Reply;

const INDEX: &str = include_str!("web/index.html");
const APP_JS: &str = include_str!("web/app.js");
const APP_CSS: &str = include_str!("web/app.css");
const ICON: &str = include_str!("web/icon.svg");

/// The asset at `path`, if it is one.
pub(super) fn asset(path: &str) -> Option<Reply> {
    let (content_type, body) = match path {
        "/" | "/index.html" => ("text/html; charset=utf-8", INDEX),
        "/assets/app.js" => ("text/javascript; charset=utf-8", APP_JS),
        "/assets/app.css" => ("text/css; charset=utf-8", APP_CSS),
        "/favicon.ico" | "/assets/icon.svg" => ("image/svg+xml", ICON),
        _ => return None,
    };
    Some(Reply::asset(content_type, body.as_bytes()))
}
