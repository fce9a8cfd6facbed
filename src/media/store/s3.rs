//! Photos as objects in an S3-compatible bucket.

use std::fmt;

use bytes::Bytes;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path;
use object_store::{Attribute, Attributes, ObjectStore, ObjectStoreExt, PutOptions, PutPayload};
use secrecy::ExposeSecret;

use super::{PhotoKey, StoreError};
use crate::media::config::S3Config;

#[derive(Clone)]
pub(super) struct S3Store {
    client: AmazonS3,
    bucket: String,
    endpoint: Option<String>,
}

/// Written by hand so that nothing of the client's configuration (credentials) is printed.
impl fmt::Debug for S3Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Store").field("bucket", &self.bucket).field("endpoint", &self.endpoint).finish()
    }
}

impl S3Store {
    pub(super) fn new(config: &S3Config) -> Result<Self, StoreError> {
        // `new()`, unlike `from_env()`, reads no AWS_* variables: the settings are all there is.
        let mut builder = AmazonS3Builder::new()
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            .with_access_key_id(&config.access_key_id)
            .with_secret_access_key(config.secret_access_key.expose_secret())
            .with_allow_http(config.allow_http);
        if let Some(endpoint) = &config.endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        let client = builder.build().map_err(|err| StoreError::Config(err.to_string()))?;
        Ok(Self { client, bucket: config.bucket.clone(), endpoint: config.endpoint.clone() })
    }

    pub(super) fn bucket(&self) -> &str {
        &self.bucket
    }

    fn location(&self, key: &PhotoKey, action: &'static str) -> Result<Path, StoreError> {
        Path::parse(key.as_str()).map_err(|err| self.failed(action, key, err.into()))
    }

    fn failed(&self, action: &'static str, key: &PhotoKey, source: object_store::Error) -> StoreError {
        StoreError::S3 { action, bucket: self.bucket.clone(), key: key.to_string(), source: Box::new(source) }
    }

    pub(super) async fn put(&self, key: &PhotoKey, bytes: Bytes, content_type: &str) -> Result<(), StoreError> {
        let location = self.location(key, "write")?;
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, content_type.to_owned().into());
        let options = PutOptions { attributes, ..PutOptions::default() };
        self.client
            .put_opts(&location, PutPayload::from(bytes), options)
            .await
            .map_err(|err| self.failed("write", key, err))?;
        Ok(())
    }

    pub(super) async fn get(&self, key: &PhotoKey) -> Result<Option<Bytes>, StoreError> {
        let location = self.location(key, "read")?;
        let found = match self.client.get(&location).await {
            Ok(found) => found,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(err) => return Err(self.failed("read", key, err)),
        };
        found.bytes().await.map(Some).map_err(|err| self.failed("read", key, err))
    }
}
