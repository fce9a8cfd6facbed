//! Where renditions are kept: a local folder or an S3-compatible bucket. Photos are written
//! once under a fresh random key and never changed or deleted.

mod disk;
mod key;
mod s3;

use std::fmt;
use std::path::{Path, PathBuf};

use bytes::Bytes;

pub use key::{InvalidPhotoKey, PhotoKey};

use super::config::{Backend, S3Config, StorageConfig};

/// Photo storage, cheap to clone and share between requests.
#[derive(Debug, Clone)]
pub struct Store {
    inner: Inner,
}

#[derive(Debug, Clone)]
enum Inner {
    Disk(disk::DiskStore),
    S3(s3::S3Store),
}

/// Why a photo could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The settings do not describe a usable store.
    #[error("photo storage is misconfigured: {0}")]
    Config(String),
    /// A file under the disk root could not be read or written.
    #[error("cannot {action} photo file {}: {source}", .path.display())]
    Disk {
        /// `read` or `write`.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bucket refused or failed a request.
    #[error("cannot {action} photo {key} in bucket {bucket}: {source}")]
    S3 {
        /// `read` or `write`.
        action: &'static str,
        /// The bucket.
        bucket: String,
        /// The key.
        key: String,
        /// What the client reported (boxed: the client's error is large, and rare).
        source: Box<object_store::Error>,
    },
}

impl Store {
    /// The store `config` selects; `data_dir` holds the default disk root.
    pub fn from_config(config: &StorageConfig, data_dir: &Path) -> Result<Self, StoreError> {
        match (config.backend, &config.s3) {
            (Backend::Disk, _) => Ok(Self::disk(config.disk_root(data_dir))),
            (Backend::S3, Some(s3)) => Self::s3(s3),
            (Backend::S3, None) => Err(StoreError::Config("backend is s3 but [media.s3] is missing".to_owned())),
        }
    }

    /// Files under `root`, created on first write.
    pub fn disk(root: impl Into<PathBuf>) -> Self {
        Self { inner: Inner::Disk(disk::DiskStore::new(root.into())) }
    }

    /// An S3-compatible bucket. No request is made until the first `put` or `get`.
    pub fn s3(config: &S3Config) -> Result<Self, StoreError> {
        Ok(Self { inner: Inner::S3(s3::S3Store::new(config)?) })
    }

    /// Which backend this is.
    pub fn backend(&self) -> Backend {
        match self.inner {
            Inner::Disk(_) => Backend::Disk,
            Inner::S3(_) => Backend::S3,
        }
    }

    /// Stores `bytes` under `key`, all or nothing: a reader never sees a partial photo.
    pub async fn put(&self, key: &PhotoKey, bytes: Bytes, content_type: &str) -> Result<(), StoreError> {
        match &self.inner {
            Inner::Disk(store) => store.put(key, bytes).await,
            Inner::S3(store) => store.put(key, bytes, content_type).await,
        }
    }

    /// The bytes stored under `key`, or `None` if there are none.
    pub async fn get(&self, key: &PhotoKey) -> Result<Option<Bytes>, StoreError> {
        match &self.inner {
            Inner::Disk(store) => store.get(key).await,
            Inner::S3(store) => store.get(key).await,
        }
    }
}

/// Where photos go, for start-up logs: the folder or the bucket, never credentials.
impl fmt::Display for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.inner {
            Inner::Disk(store) => write!(f, "folder {}", store.root().display()),
            Inner::S3(store) => write!(f, "bucket {}", store.bucket()),
        }
    }
}

#[cfg(test)]
mod tests;
