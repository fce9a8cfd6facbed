//! Photos from the bench: checked, cleaned, stored, recorded, then attached to an event.

use bytes::Bytes;

use super::{Applied, Service, ServiceError};
use crate::domain::change::Change;
use crate::domain::model::Actor;
use crate::domain::order::Visibility;
use crate::media::{PhotoKey, process};
use crate::store::now_ms;
use crate::store::photos::{self, NewPhoto, Photo};

/// Most photos in one request.
pub const MAX_PHOTOS: usize = 10;

/// One uploaded file, as received.
#[derive(Debug, Clone)]
pub struct Upload {
    /// How the request names it in errors, e.g. `photo[1] (bench.jpg)`.
    pub field: String,
    /// The bytes, whatever they claim to be.
    pub bytes: Bytes,
}

/// Which rendition of a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhotoSize {
    /// Up to the web size, for opening full screen.
    Web,
    /// A preview, up to 400 px.
    Thumb,
    /// A preview for small slots, up to 224 px (the thumb for photos stored before it existed).
    Small,
}

impl PhotoSize {
    /// `web`, `thumb` or `small` from a URL segment.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "web" => Some(Self::Web),
            "thumb" => Some(Self::Thumb),
            "small" => Some(Self::Small),
            _ => None,
        }
    }
}

impl Service {
    /// Checks, re-encodes and stores `uploads` for order `order_id` and records them; all or
    /// nothing (a bad file refuses the whole request before anything is stored).
    pub async fn store_photos(
        &self,
        order_id: i64,
        uploads: Vec<Upload>,
        visibility: Visibility,
        caption: Option<String>,
        actor: &Actor,
    ) -> Result<Vec<i64>, ServiceError> {
        if uploads.len() > MAX_PHOTOS {
            return Err(ServiceError::invalid("photo", format!("send at most {MAX_PHOTOS} photos at once")));
        }
        let limits = self.config().media.limits();
        let mut processed = Vec::with_capacity(uploads.len());
        for upload in uploads {
            // Decoding takes up to 16 bytes a pixel: only as many at once as memory allows.
            let _slot = self
                .inner
                .decodes
                .acquire()
                .await
                .map_err(|e| ServiceError::internal("photo decoding is shut down", e))?;
            // Decoding is CPU-bound: keep it off the async workers.
            let done = tokio::task::spawn_blocking(move || {
                let size = upload.bytes.len();
                process(&upload.bytes, &limits).map(|p| (p, size)).map_err(|e| (upload.field, e))
            })
            .await
            .map_err(|e| ServiceError::internal("photo task failed", e))?;
            processed.push(done.map_err(|(field, source)| ServiceError::Photo { field, source })?);
        }

        let mut records = Vec::with_capacity(processed.len());
        for (p, size) in processed {
            let web_key = PhotoKey::random(p.web.content_type);
            let thumb_key = PhotoKey::random(p.thumb.content_type);
            let small_key = PhotoKey::random(p.small.content_type);
            let media = &self.inner.media;
            let (web, thumb, small) = tokio::join!(
                media.put(&web_key, Bytes::from(p.web.bytes), p.web.content_type),
                media.put(&thumb_key, Bytes::from(p.thumb.bytes), p.thumb.content_type),
                media.put(&small_key, Bytes::from(p.small.bytes), p.small.content_type),
            );
            web.and(thumb).and(small).map_err(|e| ServiceError::internal("cannot store a photo", e))?;
            records.push(NewPhoto {
                order_id,
                visibility,
                caption: caption.clone(),
                source_type: p.format.as_str().to_owned(),
                web_key: web_key.as_str().to_owned(),
                web_size: (p.web.width, p.web.height),
                thumb_key: thumb_key.as_str().to_owned(),
                thumb_size: (p.thumb.width, p.thumb.height),
                small_key: small_key.as_str().to_owned(),
                small_size: (p.small.width, p.small.height),
                bytes: i64::try_from(size).unwrap_or(i64::MAX),
                uploaded_by: actor.name.clone(),
            });
        }
        Ok(photos::insert(self.db(), &records, now_ms()).await?)
    }

    /// Attaches photos to order `reference` outside a move: stores them, then appends a
    /// `photos_added` event through the one change path.
    pub async fn add_photos(
        &self,
        reference: &str,
        uploads: Vec<Upload>,
        visibility: Visibility,
        caption: Option<String>,
        actor: &Actor,
    ) -> Result<Applied, ServiceError> {
        let order_id = self.order_id(reference).await?.ok_or_else(|| ServiceError::OrderNotFound(reference.into()))?;
        if uploads.is_empty() {
            return Err(ServiceError::invalid("photo", "attach at least one photo"));
        }
        let photo_ids = self.store_photos(order_id, uploads, visibility, caption.clone(), actor).await?;
        self.change(reference, &Change::Photos { photo_ids, caption, visibility }, actor).await
    }

    /// A photo's record.
    pub async fn photo(&self, id: i64) -> Result<Option<Photo>, ServiceError> {
        Ok(photos::by_id(self.db(), id).await?)
    }

    /// The bytes of one rendition of `photo` (always a JPEG).
    pub async fn photo_bytes(&self, photo: &Photo, size: PhotoSize) -> Result<Option<Bytes>, ServiceError> {
        let key = match (size, &photo.small) {
            (PhotoSize::Web, _) => &photo.web_key,
            (PhotoSize::Small, Some((small, _))) => small,
            // Photos stored before the small rendition existed serve their thumb instead.
            (PhotoSize::Thumb | PhotoSize::Small, _) => &photo.thumb_key,
        };
        let key = PhotoKey::parse(key).map_err(|e| ServiceError::internal("stored photo key", e))?;
        self.inner.media.get(&key).await.map_err(|e| ServiceError::internal("cannot read a photo", e))
    }
}
