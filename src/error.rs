//! The service layer's error type. It names no HTTP status and no clap type: `http::error` maps it
//! to responses, the CLI prints it as a sentence.
use std::time::Duration;

use sea_orm::{DbErr, RuntimeErr};

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input breaks a rule; `code` is a stable snake_case identifier.
    #[error("{message}")]
    InvalidInput { code: &'static str, message: String },
    /// The thing does not exist (or is not the caller's).
    #[error("{0} not found")]
    NotFound(&'static str),
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// A wrong e-mail or password; deliberately says no more.
    #[error("invalid email or password")]
    InvalidCredentials,
    /// An authentication that was refused for a reason the client is not told (e.g. a SAML
    /// Response); the reason is audited.
    #[error("{message}")]
    Rejected { code: &'static str, message: String },
    /// A wrong or replayed one-time code (TOTP or recovery code).
    #[error("the code is not valid")]
    InvalidCode,
    /// No session, or one that has ended.
    #[error("not signed in, or the session has ended")]
    Unauthenticated,
    #[error("{message}")]
    Forbidden { code: &'static str, message: String },
    /// A token that was valid once and is no longer (used or expired).
    #[error("{message}")]
    Gone { code: &'static str, message: String },
    #[error("too many attempts; try again in {} seconds", retry_after.as_secs().max(1))]
    Throttled { retry_after: Duration },
    /// The database cannot be reached.
    #[error("the database is unavailable")]
    Unavailable(#[source] DbErr),
    #[error("database error")]
    Db(#[source] DbErr),
    #[error("mail could not be sent: {0}")]
    Mail(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidInput {
            code,
            message: message.into(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
        }
    }

    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        Self::Forbidden {
            code,
            message: message.into(),
        }
    }

    pub fn gone(code: &'static str, message: impl Into<String>) -> Self {
        Self::Gone {
            code,
            message: message.into(),
        }
    }
}

impl From<DbErr> for Error {
    fn from(err: DbErr) -> Self {
        if is_unavailable(&err) {
            Self::Unavailable(err)
        } else {
            Self::Db(err)
        }
    }
}

/// Whether a database error means "cannot reach the database" rather than "the query is wrong".
pub fn is_unavailable(err: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => matches!(
            e.as_ref(),
            Sqlx::Io(_)
                | Sqlx::PoolTimedOut
                | Sqlx::PoolClosed
                | Sqlx::WorkerCrashed
                | Sqlx::Tls(_)
        ),
        _ => false,
    }
}
