//! The one error type of the HTTP layer.
//!
//! Handlers return `Result<T>` and use `?`. What the client sees is a status and a friendly
//! sentence; the detail goes to the log. The page itself is drawn by the error-page middleware
//! (which knows the request id), from the [`ErrorPage`] extension this type leaves on the response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// `Result` with [`Error`] as the default error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Why a request could not be answered as asked.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 404: it does not exist, or the user may not see it.
    #[error("not found")]
    NotFound,
    /// 403: the user may not do this.
    #[error("forbidden")]
    Forbidden,
    /// 403: a POST without the right CSRF token or from another site.
    #[error("cross-site request refused: {0}")]
    CrossSite(&'static str),
    /// 500: a bug or an outage; logged with its detail, shown as a generic page.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<sqlx::Error> for Error {
    fn from(error: sqlx::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<minijinja::Error> for Error {
    fn from(error: minijinja::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<tower_sessions::session::Error> for Error {
    fn from(error: tower_sessions::session::Error) -> Self {
        Self::Internal(error.into())
    }
}

impl From<projections::ProjectionError> for Error {
    fn from(error: projections::ProjectionError) -> Self {
        Self::Internal(error.into())
    }
}

impl From<crate::cvs::CvFailure> for Error {
    /// For handlers that have no form to show again: a refused CV command there is a bug.
    fn from(failure: crate::cvs::CvFailure) -> Self {
        Self::Internal(anyhow::anyhow!("CV command failed: {failure}"))
    }
}

/// Marks a response whose body the error-page middleware should draw.
#[derive(Debug, Clone)]
pub struct ErrorPage {
    /// A sentence for the visitor.
    pub message: &'static str,
}

impl Error {
    fn status(&self) -> StatusCode {
        match self {
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::Forbidden | Self::CrossSite(_) => StatusCode::FORBIDDEN,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match &self {
            Self::Internal(error) => tracing::error!(error = ?error, "request failed"),
            Self::CrossSite(reason) => tracing::warn!(reason, "cross-site request refused"),
            _ => {}
        }
        let status = self.status();
        let mut response = status.into_response();
        response.extensions_mut().insert(ErrorPage {
            message: message_for(status),
        });
        response
    }
}

/// The sentence shown for a status on the error page.
pub fn message_for(status: StatusCode) -> &'static str {
    match status.as_u16() {
        400 => "The request could not be understood.",
        403 => "You are not allowed to do that. If you submitted a form, reload the page and try again.",
        404 => "There is nothing here. The page may have moved, or you may not have access to it.",
        405 => "That action is not available here.",
        408 => "The request took too long. Please try again.",
        413 => "What you sent is too large.",
        415 => "That kind of content is not accepted here.",
        429 => "Too many attempts. Please wait a little and try again.",
        s if s >= 500 => "Something went wrong on our side. It has been logged; please try again later.",
        _ => "The request could not be completed.",
    }
}
