//! The `[media]` settings: where photos are kept and how big they may be.

use std::path::{Path, PathBuf};

use secrecy::SecretString;
use serde::Deserialize;

use super::process::Limits;

/// Photo storage and intake limits; meant to sit in `Config` as a `[media]` table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// Where photos are kept: `disk` (under `disk_root`) or `s3` (the bucket in `s3`).
    pub backend: Backend,
    /// Folder for photos with the `disk` backend; unset means `photos` in `data_dir`.
    pub disk_root: Option<PathBuf>,
    /// The bucket for the `s3` backend; required with it, ignored otherwise.
    pub s3: Option<S3Config>,
    /// Largest upload accepted, in bytes; checked before decoding.
    pub max_bytes: usize,
    /// Most pixels (width × height) an upload may declare; checked before decoding.
    pub max_pixels: u64,
}

impl Default for StorageConfig {
    fn default() -> Self {
        Self {
            backend: Backend::Disk,
            disk_root: None,
            s3: None,
            max_bytes: Limits::DEFAULT_MAX_BYTES,
            max_pixels: Limits::DEFAULT_MAX_PIXELS,
        }
    }
}

impl StorageConfig {
    /// The intake limits for [`process`](super::process).
    pub fn limits(&self) -> Limits {
        Limits { max_bytes: self.max_bytes, max_pixels: self.max_pixels }
    }

    /// The folder the `disk` backend writes to.
    pub fn disk_root(&self, data_dir: &Path) -> PathBuf {
        self.disk_root.clone().unwrap_or_else(|| data_dir.join("photos"))
    }

    /// Checks the settings together.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        if self.max_bytes == 0 {
            return Err(InvalidSetting::new("media.max_bytes", "must be at least 1"));
        }
        if self.max_pixels == 0 {
            return Err(InvalidSetting::new("media.max_pixels", "must be at least 1"));
        }
        match (self.backend, &self.s3) {
            (Backend::S3, None) => Err(InvalidSetting::new("media.s3", "is required when backend = \"s3\"")),
            (Backend::S3, Some(s3)) => s3.validate(),
            (Backend::Disk, _) => Ok(()),
        }
    }
}

/// A `[media]` setting that does not make sense; `field` is its full name, e.g. `media.s3.bucket`.
#[derive(Debug, thiserror::Error)]
#[error("invalid setting `{field}`: {message}")]
pub struct InvalidSetting {
    /// The setting.
    pub field: &'static str,
    /// What is wrong.
    pub message: String,
}

impl InvalidSetting {
    fn new(field: &'static str, message: &str) -> Self {
        Self { field, message: message.to_owned() }
    }
}

/// Where photos are kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// Files under a local folder; fine for one node.
    Disk,
    /// An S3-compatible bucket (AWS S3, Cloudflare R2, MinIO, Garage, …); needed when several
    /// nodes serve photos.
    S3,
}

/// An S3-compatible bucket.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// Bucket name; the bucket must exist.
    pub bucket: String,
    /// Endpoint URL, e.g. `https://<account>.r2.cloudflarestorage.com`; unset means AWS S3
    /// in `region`.
    pub endpoint: Option<String>,
    /// Region, e.g. `eu-west-1` (`auto` for R2).
    #[serde(default = "default_region")]
    pub region: String,
    /// Access key id.
    pub access_key_id: String,
    /// Secret access key; never printed.
    pub secret_access_key: SecretString,
    /// Allow a plain `http://` endpoint; only for tests and private networks.
    #[serde(default)]
    pub allow_http: bool,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

impl S3Config {
    fn validate(&self) -> Result<(), InvalidSetting> {
        if self.bucket.is_empty() {
            return Err(InvalidSetting::new("media.s3.bucket", "must not be empty"));
        }
        if self.access_key_id.is_empty() {
            return Err(InvalidSetting::new("media.s3.access_key_id", "must not be empty"));
        }
        if let Some(endpoint) = &self.endpoint {
            let plain = endpoint.starts_with("http://");
            if !(plain || endpoint.starts_with("https://")) {
                return Err(InvalidSetting::new("media.s3.endpoint", "must start with https:// or http://"));
            }
            if plain && !self.allow_http {
                return Err(InvalidSetting::new(
                    "media.s3.endpoint",
                    "is plain http://; set allow_http = true to allow it",
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn a_media_table_parses_and_its_secret_never_prints() {
        let text = r#"
            backend = "s3"
            max_bytes = 1000
            [s3]
            bucket = "photos"
            endpoint = "http://127.0.0.1:9000"
            access_key_id = "kiln"
            secret_access_key = "hunter2"
            allow_http = true
        "#;
        let config: StorageConfig = toml::from_str(text).expect("valid [media] table");
        assert_eq!(config.backend, Backend::S3);
        assert_eq!(config.limits(), Limits { max_bytes: 1000, max_pixels: Limits::DEFAULT_MAX_PIXELS });
        let s3 = config.s3.as_ref().expect("s3 table");
        assert_eq!((s3.region.as_str(), s3.secret_access_key.expose_secret()), ("us-east-1", "hunter2"));
        assert!(config.validate().is_ok());
        assert!(!format!("{config:?}").contains("hunter2"));
    }

    #[test]
    fn unknown_keys_and_incomplete_settings_are_refused() {
        let err = toml::from_str::<StorageConfig>("backend = \"disk\"\nmax_byte = 1\n").expect_err("typo");
        assert!(err.to_string().contains("unknown field `max_byte`"), "{err}");
        assert!(toml::from_str::<StorageConfig>("backend = \"ftp\"\n").is_err());

        let config: StorageConfig = toml::from_str("backend = \"s3\"\n").expect("parses");
        assert_eq!(config.validate().map_err(|e| e.field), Err("media.s3"));

        let config = StorageConfig::default();
        assert_eq!(config.disk_root(Path::new("kiln-data")), Path::new("kiln-data/photos"));
        assert!(config.validate().is_ok());
    }
}
