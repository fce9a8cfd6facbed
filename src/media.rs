//! Photo intake and storage: turn an uploaded photo into clean renditions and keep them.
//!
//! [`process`] checks what a file really is (by its bytes, never its name), refuses files that
//! are too big or would decode to too many pixels, turns the photo upright, and re-encodes a
//! `web`, a `thumb` and a `small` JPEG from the pixels alone, so that no EXIF (GPS included),
//! XMP or comment survives. It is CPU-bound and synchronous: call it from `spawn_blocking`.
//!
//! [`Store`] keeps the renditions on local disk or in an S3-compatible bucket, configured by
//! [`StorageConfig`]. Nothing here knows about HTTP or the database.

mod config;
mod decode;
mod error;
mod process;
mod render;
mod sniff;
mod store;

pub use config::{Backend, InvalidSetting, S3Config, StorageConfig};
pub use error::PhotoError;
pub use process::{DECODE_BUDGET, Limits, Processed, Rendition, SMALL_MAX_SIDE, THUMB_MAX_SIDE, WEB_MAX_SIDE, process};
pub use sniff::SourceFormat;
pub use store::{InvalidPhotoKey, PhotoKey, Store, StoreError};

#[cfg(test)]
mod tests;
