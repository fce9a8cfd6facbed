//! `multipart/form-data` bodies with photos: text fields and files, each bounded as it
//! streams in, so an oversized upload is refused without being buffered whole.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::header;
use bytes::{Bytes, BytesMut};

use super::error::ApiError;
use crate::media::PhotoError;
use crate::service::{ServiceError, Upload};

/// Largest text field, in bytes.
const MAX_TEXT: usize = 64 * 1024;
/// Most parts in one form.
const MAX_PARTS: usize = 32;

/// Names under which files are accepted.
const FILE_FIELDS: &[&str] = &["photo", "photos", "photo[]", "photos[]"];

/// A parsed form: text fields in order and photo files.
#[derive(Debug, Default)]
pub struct Form {
    /// Text fields as `(name, value)`.
    pub fields: Vec<(String, String)>,
    /// Uploaded files, in order.
    pub files: Vec<Upload>,
}

impl Form {
    /// Takes the value of text field `name`; a repeated field is an error.
    pub fn take(&mut self, name: &str) -> Result<Option<String>, ApiError> {
        let mut found = None;
        let mut rest = Vec::with_capacity(self.fields.len());
        for (k, v) in self.fields.drain(..) {
            if k == name {
                if found.is_some() {
                    return Err(ApiError::invalid(name, "is given more than once"));
                }
                found = Some(v);
            } else {
                rest.push((k, v));
            }
        }
        self.fields = rest;
        Ok(found)
    }

    /// Refuses any text field nobody took.
    pub fn finish(&self) -> Result<(), ApiError> {
        match self.fields.first() {
            Some((name, _)) => Err(ApiError::invalid(name.clone(), "unknown field")),
            None => Ok(()),
        }
    }
}

/// Whether the request declares a multipart body.
pub fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Reads a multipart form; each file may have at most `max_file` bytes.
pub async fn read(req: Request, max_file: usize) -> Result<Form, ApiError> {
    let mut multipart = Multipart::from_request(req, &())
        .await
        .map_err(|e| ApiError::bad_request(format!("could not read the multipart body: {}", e.body_text())))?;
    let mut form = Form::default();
    let mut parts = 0;
    let malformed = |e: axum::extract::multipart::MultipartError| {
        ApiError::bad_request(format!("could not read the multipart body: {}", e.body_text()))
    };
    while let Some(mut field) = multipart.next_field().await.map_err(malformed)? {
        parts += 1;
        if parts > MAX_PARTS {
            return Err(ApiError::bad_request(format!("a form may have at most {MAX_PARTS} parts")));
        }
        let name = field.name().unwrap_or_default().to_owned();
        let is_file = FILE_FIELDS.contains(&name.as_str());
        if field.file_name().is_some() && !is_file {
            return Err(ApiError::invalid(name, "files go in a field named `photo`"));
        }
        let limit = if is_file { max_file } else { MAX_TEXT };
        let label = match field.file_name() {
            Some(file) if is_file => format!("photo[{}] ({file})", form.files.len()),
            _ if is_file => format!("photo[{}]", form.files.len()),
            _ => name.clone(),
        };
        let mut buf = BytesMut::new();
        while let Some(chunk) = field.chunk().await.map_err(malformed)? {
            if buf.len() + chunk.len() > limit {
                if is_file {
                    let size = buf.len() + chunk.len();
                    let source = PhotoError::TooLarge { size, max: max_file };
                    return Err(ServiceError::Photo { field: label, source }.into());
                }
                return Err(ApiError::invalid(name, format!("is longer than {MAX_TEXT} bytes")));
            }
            buf.extend_from_slice(&chunk);
        }
        let bytes: Bytes = buf.freeze();
        if is_file {
            form.files.push(Upload { field: label, bytes });
        } else {
            let text =
                String::from_utf8(bytes.to_vec()).map_err(|_| ApiError::invalid(name.clone(), "is not UTF-8"))?;
            form.fields.push((name, text));
        }
    }
    Ok(form)
}
