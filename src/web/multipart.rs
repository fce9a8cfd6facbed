//! `multipart/form-data` bodies with photos: text fields and files, each bounded as it
//! streams in, so an oversized upload is refused without being buffered whole.

use std::sync::Arc;

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{StatusCode, header};
use bytes::{Bytes, BytesMut};
use tokio::sync::Semaphore;

use super::error::ApiError;
use crate::media::PhotoError;
use crate::service::{MAX_PHOTOS, ServiceError, Upload};

/// Largest text field, in bytes.
const MAX_TEXT: usize = 64 * 1024;
/// Most parts in one form.
const MAX_PARTS: usize = 32;

/// Names under which files are accepted.
const FILE_FIELDS: &[&str] = &["photo", "photos", "photo[]", "photos[]"];

/// How long a request waits for room in the server's upload budget before it is told to
/// come back later.
const BUDGET_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// A parsed form: text fields in order and photo files.
#[derive(Debug, Default)]
pub struct Form {
    /// Text fields as `(name, value)`.
    pub fields: Vec<(String, String)>,
    /// Uploaded files, in order.
    pub files: Vec<Upload>,
    /// Bytes buffered so far.
    buffered: usize,
    /// The share of the server's upload budget this form's bytes hold, returned when the
    /// form (and so the handler that read it) is done.
    budget: Option<tokio::sync::OwnedSemaphorePermit>,
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

impl Form {
    /// Takes room for `bytes` more from the upload budget (whole KiB, rounded up).
    async fn reserve(&mut self, budget: &Arc<Semaphore>, bytes: usize) -> Result<(), ApiError> {
        let held = self.budget.as_ref().map_or(0, |p| p.num_permits());
        let needed = (self.buffered + bytes).div_ceil(1024);
        self.buffered += bytes;
        let Some(more) = needed.checked_sub(held).filter(|n| *n > 0) else {
            return Ok(());
        };
        let more = u32::try_from(more).unwrap_or(u32::MAX);
        let permit = tokio::time::timeout(BUDGET_WAIT, budget.clone().acquire_many_owned(more))
            .await
            .ok()
            .and_then(Result::ok)
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "uploads-busy",
                    "Too many uploads at once",
                    "the server is receiving as many photos as it can hold; send them again shortly",
                )
                .retry_after(5)
            })?;
        match &mut self.budget {
            Some(held) => held.merge(permit),
            None => self.budget = Some(permit),
        }
        Ok(())
    }
}

/// Whether the request declares a multipart body.
pub fn is_multipart(req: &Request) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// Reads a multipart form; each file may have at most `max_file` bytes, and at most
/// [`MAX_PHOTOS`] files are read. Every buffered byte takes its share of `budget` (one permit
/// per KiB, shared by all requests), so the memory all uploads in flight hold has a ceiling
/// whatever clients send; a request that finds no room within [`BUDGET_WAIT`] gets a 503.
pub async fn read(req: Request, max_file: usize, budget: &Arc<Semaphore>) -> Result<Form, ApiError> {
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
        if is_file && form.files.len() >= MAX_PHOTOS {
            // Refused before the extra file is read, not after the whole form is in memory.
            return Err(ApiError::invalid("photo", format!("send at most {MAX_PHOTOS} photos at once")));
        }
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
            form.reserve(budget, chunk.len()).await?;
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
