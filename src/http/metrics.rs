//! `GET /metrics`: Prometheus text format. Request counters are per process (Prometheus sums
//! replicas); the gauges are read from the database at scrape time, so every replica reports the
//! same state.
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::context::AppContext;
use crate::service::{sessions, users};

use super::error::ApiError;

/// Responses by status class, counted by the edge layer (`http::edge`).
#[derive(Clone, Default)]
pub struct Counters(Arc<[AtomicU64; 5]>);

impl Counters {
    pub(crate) fn record(&self, status: u16) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.0[class].fetch_add(1, Ordering::Relaxed);
    }
}

/// Prometheus metrics: HTTP responses by status class, users, pending deletions, live sessions.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "Prometheus text exposition format", content_type = "text/plain")))]
pub async fn metrics(
    State(ctx): State<AppContext>,
    axum::Extension(counters): axum::Extension<Counters>,
) -> Result<Response, ApiError> {
    let now = ctx.now();
    let users = users::count(&ctx.db).await?;
    let pending = users::count_pending_deletion(&ctx.db).await?;
    let sessions = sessions::count_unexpired(&ctx.db, now).await?;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# HELP authctl_http_responses_total HTTP responses served by this process, by status class."
    );
    let _ = writeln!(out, "# TYPE authctl_http_responses_total counter");
    for (i, n) in counters.0.iter().enumerate() {
        let _ = writeln!(
            out,
            "authctl_http_responses_total{{class=\"{}xx\"}} {}",
            i + 1,
            n.load(Ordering::Relaxed)
        );
    }
    for (name, help, value) in [
        ("authctl_users", "Accounts in the database.", users),
        (
            "authctl_users_pending_deletion",
            "Accounts scheduled for deletion.",
            pending,
        ),
        (
            "authctl_sessions_unexpired",
            "Sessions not past their absolute expiry.",
            sessions,
        ),
    ] {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
        );
    }
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response())
}
