//! The one error type handlers return. Each variant maps to one of Vault's
//! error kinds, and through it to an HTTP status.

use super::storage::StorageError;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// Bad input: HTTP 400 with the message, which must say what is wrong
    /// and how to fix it.
    #[error("{0}")]
    BadRequest(String),
    /// HTTP 403.
    #[error("permission denied")]
    PermissionDenied,
    /// No path matched: HTTP 404.
    #[error("unsupported path")]
    UnsupportedPath,
    /// The path exists but does not serve this operation: HTTP 405.
    #[error("unsupported operation")]
    UnsupportedOperation,
    /// A specific HTTP status with a message (409 for conflicts, 503...).
    #[error("{message}")]
    Coded { status: u16, message: String },
    /// HTTP 500. The message reaches the operator, so it must never hold a
    /// secret.
    #[error("{0}")]
    Internal(String),
}

impl Error {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::BadRequest(message.into())
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::Internal(message.into())
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::Coded {
            status: 409,
            message: message.into(),
        }
    }

    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::Coded {
            status: 503,
            message: message.into(),
        }
    }

    /// The same error with `note` after its message; errors without a
    /// message of their own stay as they are.
    pub fn with_note(self, note: &str) -> Self {
        match self {
            Self::BadRequest(message) => Self::BadRequest(format!("{message}; {note}")),
            Self::Coded { status, message } => Self::Coded {
                status,
                message: format!("{message}; {note}"),
            },
            Self::Internal(message) => Self::Internal(format!("{message}; {note}")),
            other => other,
        }
    }
}

impl From<StorageError> for Error {
    fn from(err: StorageError) -> Self {
        match err {
            StorageError::ReadOnly => Self::unavailable(err.to_string()),
            other => Self::Internal(format!("storage error: {other}")),
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
