//! Store tests against a real folder and a real S3-compatible server.

mod moto;

use bytes::Bytes;
use object_store::aws::AmazonS3Builder;
use object_store::{Attribute, ObjectStoreExt};
use secrecy::SecretString;

use super::*;
use crate::media::config::S3Config;

fn photo_bytes() -> Bytes {
    Bytes::from_static(b"\xFF\xD8\xFF\xE0 pretend this is a JPEG \xFF\xD9")
}

/// Settings for `bucket` on the test server.
fn s3_config(server: &moto::MotoServer, bucket: &str) -> S3Config {
    S3Config {
        bucket: bucket.to_owned(),
        endpoint: Some(server.endpoint()),
        region: "us-east-1".to_owned(),
        access_key_id: "kiln-test".to_owned(),
        secret_access_key: SecretString::from("not-a-real-secret"),
        allow_http: true,
    }
}

/// Creates `bucket` on the test server and returns its settings.
async fn new_bucket(server: &moto::MotoServer, bucket: &str) -> S3Config {
    // object_store does not create buckets; moto accepts an unsigned CreateBucket.
    let created = reqwest::Client::new().put(format!("{}/{bucket}", server.endpoint())).send().await.expect("create");
    assert!(created.status().is_success(), "create bucket: {}", created.status());
    s3_config(server, bucket)
}

#[tokio::test]
async fn the_disk_store_round_trips_a_photo_and_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = Store::disk(dir.path().join("photos"));
    let key = PhotoKey::random("image/jpeg");

    store.put(&key, photo_bytes(), "image/jpeg").await.expect("put");

    assert_eq!(store.get(&key).await.expect("get"), Some(photo_bytes()));
    let file = dir.path().join("photos").join(key.as_str());
    assert!(file.is_file(), "{} exists", file.display());
    let siblings: Vec<_> = std::fs::read_dir(file.parent().expect("folder"))
        .expect("list folder")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(siblings.len(), 1, "only the photo is left: {siblings:?}");
    assert_eq!(store.get(&PhotoKey::random("image/jpeg")).await.expect("get"), None);
}

#[test]
fn keys_are_random_and_fanned_out_over_two_folder_levels() {
    let key = PhotoKey::random("image/jpeg");
    let parts: Vec<&str> = key.as_str().split('/').collect();
    assert_eq!(parts.len(), 3, "{key}");
    assert!(parts[2].starts_with(&format!("{}{}", parts[0], parts[1])) && parts[2].ends_with(".jpg"), "{key}");
    assert_eq!(PhotoKey::parse(key.as_str()).ok(), Some(key.clone()));
    assert_ne!(key, PhotoKey::random("image/jpeg"));
}

#[test]
fn keys_that_could_leave_the_store_are_refused() {
    for bad in
        ["", "../secret.key", "ab/../../kiln.db", "/etc/passwd", "ab//c.jpg", "ab/./c.jpg", "a\\b.jpg", "C:/x.jpg"]
    {
        let err = PhotoKey::parse(bad).expect_err(bad);
        assert!(err.to_string().starts_with("invalid photo key"), "{bad}: {err}");
    }
    assert!(PhotoKey::parse(".hidden.tmp").is_err(), "temporary files cannot be named");
    assert!(PhotoKey::parse(&"a".repeat(201)).is_err());
    assert!(PhotoKey::parse("3f/a9/3fa9c2.jpg").is_ok());
}

#[tokio::test]
async fn the_s3_store_round_trips_a_photo_on_a_real_s3_server() {
    let Some(server) = moto::MotoServer::start() else { return };
    let bucket = "kiln-photos";
    let store = Store::s3(&new_bucket(&server, bucket).await).expect("store");
    assert!(!format!("{store:?}").contains("not-a-real-secret"));
    assert_eq!(store.to_string(), "bucket kiln-photos");
    let key = PhotoKey::random("image/jpeg");

    store.put(&key, photo_bytes(), "image/jpeg").await.expect("put");

    assert_eq!(store.get(&key).await.expect("get"), Some(photo_bytes()));
    assert_eq!(store.get(&PhotoKey::random("image/jpeg")).await.expect("get missing"), None);
    // The content type is stored with the object, for serving straight from the bucket later.
    let direct = AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_endpoint(server.endpoint())
        .with_region("us-east-1")
        .with_access_key_id("kiln-test")
        .with_secret_access_key("not-a-real-secret")
        .with_allow_http(true)
        .build()
        .expect("client");
    let object = direct.get(&object_store::path::Path::from(key.as_str())).await.expect("direct get");
    assert_eq!(object.attributes.get(&Attribute::ContentType).map(|v| v.as_ref()), Some("image/jpeg"));
}

#[tokio::test]
async fn the_s3_store_keeps_every_rendition_of_a_processed_photo() {
    let Some(server) = moto::MotoServer::start() else { return };
    let store = Store::s3(&new_bucket(&server, "kiln-renditions").await).expect("store");
    let photo = image::RgbImage::from_fn(1200, 900, |x, y| image::Rgb([(x % 251) as u8, (y % 241) as u8, 90]));
    let mut upload = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut upload, 90)
        .encode_image(&photo)
        .expect("encode the upload");
    let processed = crate::media::process(&upload, &crate::media::Limits::default()).expect("processed");

    let mut stored = Vec::new();
    for rendition in [&processed.web, &processed.thumb, &processed.small] {
        let key = PhotoKey::random(rendition.content_type);
        store.put(&key, Bytes::from(rendition.bytes.clone()), rendition.content_type).await.expect("put");
        stored.push((key, rendition));
    }

    for (key, rendition) in &stored {
        let read = store.get(key).await.expect("get").expect("stored");
        assert_eq!(read.as_ref(), rendition.bytes.as_slice(), "{}x{}", rendition.width, rendition.height);
    }
    let (small, thumb) = (&stored[2], &stored[1]);
    assert_eq!(small.1.width, crate::media::SMALL_MAX_SIDE);
    assert!(small.1.bytes.len() < thumb.1.bytes.len(), "the small rendition is the lighter download");
}

#[tokio::test]
async fn a_missing_bucket_is_an_error_that_names_it() {
    let Some(server) = moto::MotoServer::start() else { return };
    let store = Store::s3(&s3_config(&server, "no-such-bucket")).expect("store");

    let err = store.put(&PhotoKey::random("image/jpeg"), photo_bytes(), "image/jpeg").await.expect_err("no bucket");

    assert!(err.to_string().contains("in bucket no-such-bucket"), "{err}");
    assert!(!err.to_string().contains("not-a-real-secret"), "{err}");
}
