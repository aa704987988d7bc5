//! The few server-rendered pages behind mailed links: one button that does the action on `POST`
//! (a mail scanner's `GET` changes nothing), and the page that says what happened.
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Escapes text for an HTML attribute or element.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// Whether the client asked for a page (a browser) rather than JSON (curl, scripts).
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

/// A page with `status`: a title and the body's HTML (already escaped by the caller).
pub fn page(status: StatusCode, title: &str, body: &str) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\"><title>{}</title></head>\
         <body><main><h1>{}</h1>{body}</main></body></html>",
        escape(title),
        escape(title)
    );
    (status, [(header::CACHE_CONTROL, "no-store")], Html(html)).into_response()
}

/// A page that tells, in words, why a link did not work.
pub fn refusal(status: StatusCode, message: &str, next: &str) -> Response {
    page(
        status,
        "This link did not work",
        &format!("<p>{}</p><p>{}</p>", escape(message), escape(next)),
    )
}
