//! `ApiError`: the only place where a service error becomes an HTTP status and a JSON body
//! `{"error": "<code>", "message": "<text>"}`.
use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::error::Error;

/// The body of every error response.
#[derive(Debug, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// A stable snake_case code for programs.
    pub error: String,
    /// A sentence for people.
    pub message: String,
}

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }
}

impl From<Error> for ApiError {
    fn from(err: Error) -> Self {
        let message = err.to_string();
        match err {
            Error::InvalidInput { code, .. } => {
                Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            Error::NotFound(_) => Self::new(StatusCode::NOT_FOUND, "not_found", message),
            Error::Conflict { code, .. } => Self::new(StatusCode::CONFLICT, code, message),
            Error::InvalidCredentials => {
                Self::new(StatusCode::UNAUTHORIZED, "invalid_credentials", message)
            }
            Error::InvalidCode => Self::new(StatusCode::UNAUTHORIZED, "invalid_code", message),
            Error::Rejected { code, .. } => Self::new(StatusCode::UNAUTHORIZED, code, message),
            Error::Unauthenticated => {
                Self::new(StatusCode::UNAUTHORIZED, "unauthenticated", message)
            }
            Error::Forbidden { code, .. } => Self::new(StatusCode::FORBIDDEN, code, message),
            Error::Gone { code, .. } => Self::new(StatusCode::GONE, code, message),
            Error::Throttled { retry_after } => Self {
                retry_after: Some(retry_after.as_secs().max(1)),
                ..Self::new(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", message)
            },
            Error::Unavailable(source) => {
                tracing::error!(error = %source, "database unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "service_unavailable",
                    "the service is temporarily unavailable; try again shortly",
                )
            }
            Error::Db(_) | Error::Mail(_) | Error::Internal(_) => {
                tracing::error!(error = ?anyhow::Error::from(err), "internal error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "an internal error occurred",
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (
            self.status,
            Json(ErrorBody {
                error: self.code.to_owned(),
                message: self.message,
            }),
        )
            .into_response();
        if let Some(secs) = self.retry_after {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Cookie"));
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn service_errors_map_to_the_documented_statuses() {
        let cases: Vec<(Error, StatusCode, &str)> = vec![
            (
                Error::invalid("password_too_short", "x"),
                StatusCode::UNPROCESSABLE_ENTITY,
                "password_too_short",
            ),
            (Error::NotFound("user"), StatusCode::NOT_FOUND, "not_found"),
            (
                Error::conflict("email_taken", "x"),
                StatusCode::CONFLICT,
                "email_taken",
            ),
            (
                Error::InvalidCredentials,
                StatusCode::UNAUTHORIZED,
                "invalid_credentials",
            ),
            (
                Error::forbidden("email_not_verified", "x"),
                StatusCode::FORBIDDEN,
                "email_not_verified",
            ),
            (
                Error::gone("token_used", "x"),
                StatusCode::GONE,
                "token_used",
            ),
            (
                Error::Throttled {
                    retry_after: Duration::from_secs(3),
                },
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_attempts",
            ),
            (
                Error::Internal(anyhow::anyhow!("boom")),
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal",
            ),
        ];
        for (err, status, code) in cases {
            let api = ApiError::from(err);
            assert_eq!((api.status, api.code), (status, code));
        }
    }

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let api = ApiError::from(Error::Internal(anyhow::anyhow!("SELECT secret FROM users")));
        assert!(!api.message.contains("SELECT"));
    }
}
