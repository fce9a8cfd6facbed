//! Photos as files under a root folder.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::{PhotoKey, StoreError};

#[derive(Debug, Clone)]
pub(super) struct DiskStore {
    root: PathBuf,
}

impl DiskStore {
    pub(super) fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub(super) fn root(&self) -> &Path {
        &self.root
    }

    fn path(&self, key: &PhotoKey) -> PathBuf {
        // `PhotoKey` admits only relative paths without `.` or `..` segments.
        self.root.join(key.as_str())
    }

    pub(super) async fn put(&self, key: &PhotoKey, bytes: Bytes) -> Result<(), StoreError> {
        let path = self.path(key);
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || write_atomically(&target, &bytes))
            .await
            .unwrap_or_else(|join| Err(io::Error::other(join)));
        written.map_err(|source| StoreError::Disk { action: "write", path, source })
    }

    pub(super) async fn get(&self, key: &PhotoKey) -> Result<Option<Bytes>, StoreError> {
        let path = self.path(key);
        match tokio::fs::read(&path).await {
            Ok(bytes) => Ok(Some(Bytes::from(bytes))),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(StoreError::Disk { action: "read", path, source }),
        }
    }
}

/// Writes a temporary file beside `path`, flushes it to disk and renames it into place, so a
/// crash leaves either no file or the whole file.
fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the key names no file"));
    };
    fs::create_dir_all(dir)?;
    let mut nonce = [0u8; 8];
    rand::fill(&mut nonce[..]);
    let nonce: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    // Keys never start with a dot, so the temporary name cannot be another photo's.
    let temp = dir.join(format!(".{}.{nonce}.tmp", name.to_string_lossy()));
    let written = (|| {
        let mut file = File::create_new(&temp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temp, path)?;
        sync_dir(dir)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written
}

/// Makes the rename itself durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> io::Result<()> {
    Ok(())
}
