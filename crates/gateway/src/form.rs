//! The one reader of posted forms: the client posts some forms as multipart and others
//! url-encoded (and a few either way, by version), so every handler that takes a form
//! reads it here, whichever the content type says.

use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::rejection::FormRejection;
use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};

use crate::ApiError;

/// At most this many text fields are read from one form; the rest are ignored. The
/// largest form the client posts (an error report) has about twenty.
pub(crate) const MAX_FORM_FIELDS: usize = 64;

/// Why a form could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum FormError {
    #[error("unreadable multipart form: {0}")]
    Multipart(#[from] MultipartRejection),
    #[error("unreadable multipart field: {0}")]
    Field(#[from] MultipartError),
    #[error("unreadable form: {0}")]
    UrlEncoded(#[from] FormRejection),
}

impl FormError {
    /// The status the framework gives this rejection (413 for a body over the limit,
    /// 415 for a wrong content type, 400 otherwise).
    fn status(&self) -> StatusCode {
        match self {
            FormError::Multipart(e) => e.status(),
            FormError::Field(e) => e.status(),
            FormError::UrlEncoded(e) => e.status(),
        }
    }
}

impl From<FormError> for ApiError {
    fn from(e: FormError) -> Self {
        ApiError::Rejected(e.status(), e.to_string())
    }
}

/// The form's text fields in the order sent, at most [`MAX_FORM_FIELDS`] of them. File
/// parts (the screenshot of an error report) are skipped: no handler of a text form
/// keeps one, and the body limit already bounds what is read.
pub(crate) async fn text_fields(request: Request) -> Result<Vec<(String, String)>, FormError> {
    let is_multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !is_multipart {
        let axum::Form(mut pairs): axum::Form<Vec<(String, String)>> =
            axum::Form::from_request(request, &()).await?;
        pairs.truncate(MAX_FORM_FIELDS);
        return Ok(pairs);
    }
    let mut multipart = Multipart::from_request(request, &()).await?;
    let mut fields = Vec::new();
    while let Some(field) = multipart.next_field().await? {
        if fields.len() >= MAX_FORM_FIELDS {
            break;
        }
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = field.file_name().is_some();
        let bytes = field.bytes().await?;
        if is_file || name.is_empty() {
            continue;
        }
        fields.push((name, String::from_utf8_lossy(&bytes).into_owned()));
    }
    Ok(fields)
}
