//! Photos from the bench through real HTTP: judged by content, cleaned of metadata, stored,
//! and shown to the customer only when meant for them.

use std::io::Cursor;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::fixtures;
use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};
use crate::ops::{add_user, sign_in};

fn file(bytes: Vec<u8>, name: &str, claimed_type: &str) -> Part {
    Part::bytes(bytes).file_name(name.to_owned()).mime_str(claimed_type).expect("mime")
}

async fn send(app: &TestApp, path: &str, form: Form) -> reqwest::Response {
    app.client.post(app.api(path)).bearer_auth(&app.write_token).multipart(form).send().await.expect("request")
}

/// The JSON twin of an order's tracking page.
async fn twin(app: &TestApp, tracking_url: &str) -> Value {
    let token = tracking_url.rsplit('/').next().expect("token");
    let res = app.client.get(format!("{}/api/v1/track/{token}", app.base)).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("json")
}

fn phone_photo() -> Vec<u8> {
    fixtures::with_metadata(&fixtures::jpeg(&fixtures::photo_like(1600, 1200)), &fixtures::exif_with_gps(1))
}

#[tokio::test]
async fn a_photo_on_a_move_reaches_the_tracking_page_without_its_location() {
    let app = spawn_app().await;
    let order = app.create_order("stone").await;
    let reference = order["reference"].as_str().expect("reference");
    let tracking_url = order["tracking_url"].as_str().expect("url");

    let original = phone_photo();
    assert!(exif::Reader::new().read_from_container(&mut Cursor::new(&original)).is_ok(), "the upload has EXIF");
    let form = Form::new()
        .text("to", "block_selection")
        .text("note", "Your block, straight from the quarry")
        .text("photo_caption", "The chosen block")
        .part("photo", file(original, "IMG_0042.JPG", "image/jpeg"))
        .part("photo", file(fixtures::png_rgba(&image::RgbaImage::new(300, 200)), "scan.png", "image/png"));
    let res = send(&app, &format!("/orders/{reference}/moves"), form).await;
    assert_eq!(res.status(), StatusCode::OK);
    let moved: Value = res.json().await.expect("json");
    assert_eq!(moved["order"]["stage"]["key"], "block_selection");
    assert_eq!(moved["events"][0]["photo_ids"].as_array().map(Vec::len), Some(2));

    let view = twin(&app, tracking_url).await;
    let photos = view["timeline"][0]["photos"].as_array().cloned().expect("photos on the newest entry");
    assert_eq!(photos.len(), 2);
    assert_eq!(photos[0]["alt"], "The chosen block");
    let web_url = photos[0]["url"].as_str().expect("url");
    assert!(web_url.starts_with(&format!("{tracking_url}/photos/")), "{web_url}");

    let page = app.client.get(tracking_url).send().await.expect("page").text().await.expect("html");
    // minijinja's HTML escaping writes `/` as `&#x2f;`, which browsers read back as `/`.
    let small_in_html = photos[0]["small_url"].as_str().expect("small").replace('/', "&#x2f;");
    assert!(page.contains(&format!("src=\"{small_in_html}\"")), "the page shows the thumbnail");

    for url in
        [web_url, photos[0]["thumb_url"].as_str().expect("thumb"), photos[0]["small_url"].as_str().expect("small")]
    {
        let res = app.client.get(url).send().await.expect("photo");
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.headers()["content-type"], "image/jpeg");
        assert_eq!(res.headers()["referrer-policy"], "no-referrer");
        assert!(res.headers()["cache-control"].to_str().expect("ascii").starts_with("private"));
        let stored = res.bytes().await.expect("bytes").to_vec();
        let decoded = image::load_from_memory(&stored).expect("a real JPEG");
        assert!(decoded.width() <= 1600 && decoded.width() > 0);
        match exif::Reader::new().read_from_container(&mut Cursor::new(&stored)) {
            Err(_) => {}
            Ok(exif) => {
                let gps =
                    exif.fields().filter(|f| f.ifd_num == exif::In::PRIMARY && f.tag.to_string().starts_with("GPS"));
                assert_eq!(gps.count(), 0, "no GPS field survives");
            }
        }
        let text = String::from_utf8_lossy(&stored);
        assert!(!text.contains(fixtures::SECRET_NOTE) && !text.contains("KilnTestPhone"), "no metadata survives");
    }
}

#[tokio::test]
async fn uploads_are_judged_by_their_bytes_and_bounded() {
    let app = spawn_app_with(|c| c.media.max_bytes = 200_000).await;
    let reference = app.new_order("jewelry").await;
    let path = format!("/orders/{reference}/photos");

    let text = b"Dear customer, this is not a photo at all.\n".repeat(10);
    let res = send(&app, &path, Form::new().part("photo", file(text, "ring.jpg", "image/jpeg"))).await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let body = problem(res).await;
    assert_eq!(body["field"], "photo[0] (ring.jpg)");
    assert!(body["detail"].as_str().expect("detail").contains("unsupported file type"), "{body}");

    let big = vec![0xFF; 300_000];
    let res = send(&app, &path, Form::new().part("photo", file(big, "huge.jpg", "image/jpeg"))).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(problem(res).await["detail"].as_str().expect("detail").contains("the most accepted is"));

    let bomb = fixtures::png_bomb(100_000, 100_000);
    let ok = fixtures::jpeg(&fixtures::photo_like(64, 64));
    let form = Form::new()
        .part("photo", file(ok, "fine.jpg", "image/jpeg"))
        .part("photo", file(bomb, "bomb.png", "image/png"));
    let res = send(&app, &path, form).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = problem(res).await;
    assert_eq!(body["field"], "photo[1] (bomb.png)");
    assert!(body["detail"].as_str().expect("detail").contains("megapixels"), "{body}");

    let res = send(&app, &path, Form::new().text("caption", "nothing attached")).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(problem(res).await["field"], "photo");
    let res = send(&app, &path, Form::new().text("colour", "red")).await;
    assert_eq!(problem(res).await["field"], "colour");
    let res = app.post(&path, &serde_json::json!({})).await;
    assert_eq!(res.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);

    // An eleventh file is refused as it starts, not after the whole form is in memory.
    let small = fixtures::jpeg(&fixtures::photo_like(16, 16));
    let form =
        (0..11).fold(Form::new(), |f, i| f.part("photo", file(small.clone(), &format!("{i}.jpg"), "image/jpeg")));
    let res = send(&app, &path, form).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body = problem(res).await;
    assert_eq!(body["field"], "photo");
    assert!(body["detail"].as_str().expect("detail").contains("at most 10"), "{body}");

    assert_eq!(app.count("SELECT COUNT(*) FROM photos").await, 0, "a refused request stores nothing");
}

#[tokio::test]
async fn internal_photos_are_never_served_to_customers() {
    let app = spawn_app().await;
    let order = app.create_order("jobshop").await;
    let reference = order["reference"].as_str().expect("reference");
    let tracking_url = order["tracking_url"].as_str().expect("url");
    let path = format!("/orders/{reference}/photos");
    let jpeg = || fixtures::jpeg(&fixtures::photo_like(400, 300));

    let form = Form::new().text("visibility", "internal").part("photo", file(jpeg(), "fixture.jpg", "image/jpeg"));
    let res = send(&app, &path, form).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let internal: Value = res.json().await.expect("json");
    let internal_id = internal["photos"][0]["id"].as_i64().expect("id");
    assert_eq!(internal["event"]["kind"], "photos_added");

    let form = Form::new().text("caption", "Parts off the mill").part("photo", file(jpeg(), "mill.jpg", "image/jpeg"));
    let res = send(&app, &path, form).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let shown: Value = res.json().await.expect("json");
    let shown_id = shown["photos"][0]["id"].as_i64().expect("id");

    let view = twin(&app, tracking_url).await;
    let urls: Vec<String> = view["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .flat_map(|e| e["photos"].as_array().cloned().unwrap_or_default())
        .map(|p| p["url"].as_str().expect("url").to_owned())
        .collect();
    assert_eq!(urls, [format!("{tracking_url}/photos/{shown_id}/web")]);

    let client = app.client.clone();
    let fetch = |url: String| {
        let client = client.clone();
        async move { client.get(url).send().await.expect("request").status() }
    };
    assert_eq!(fetch(format!("{tracking_url}/photos/{shown_id}/web")).await, StatusCode::OK);
    assert_eq!(fetch(format!("{tracking_url}/photos/{internal_id}/web")).await, StatusCode::NOT_FOUND);
    assert_eq!(fetch(format!("{tracking_url}/photos/{shown_id}/original")).await, StatusCode::NOT_FOUND);

    // Operators see every photo through the API.
    let res = app.get(&format!("/photos/{internal_id}/thumb")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    let listed: Value = app.get(&path).await.json().await.expect("json");
    assert_eq!(listed.as_array().map(Vec::len), Some(2));

    // A photo of another order is not reachable through this order's token.
    let other = app.new_order("jobshop").await;
    let form = Form::new().part("photo", file(jpeg(), "other.jpg", "image/jpeg"));
    let res = send(&app, &format!("/orders/{other}/photos"), form).await;
    let other_id = res.json::<Value>().await.expect("json")["photos"][0]["id"].as_i64().expect("id");
    assert_eq!(fetch(format!("{tracking_url}/photos/{other_id}/web")).await, StatusCode::NOT_FOUND);

    // Revoking the link takes its photo URLs with it.
    let res = app
        .client
        .delete(app.api(&format!("/orders/{reference}/tracking-link")))
        .bearer_auth(&app.write_token)
        .send()
        .await
        .expect("revoke");
    assert_eq!(res.status(), StatusCode::NO_CONTENT, "revoke");
    assert_eq!(fetch(format!("{tracking_url}/photos/{shown_id}/web")).await, StatusCode::NOT_FOUND);
}

/// Attaches one customer-visible 1600 x 1200 photo to a new stone order; returns the order's
/// reference, its tracking URL and the photo's id.
async fn order_with_photo(app: &TestApp) -> (String, String, i64) {
    let order = app.create_order("stone").await;
    let reference = order["reference"].as_str().expect("reference").to_owned();
    let tracking_url = order["tracking_url"].as_str().expect("url").to_owned();
    let photo = fixtures::jpeg(&fixtures::photo_like(1600, 1200));
    let res = send(
        app,
        &format!("/orders/{reference}/photos"),
        Form::new().part("photo", file(photo, "a.jpg", "image/jpeg")),
    )
    .await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let id = res.json::<Value>().await.expect("json")["photos"][0]["id"].as_i64().expect("id");
    (reference, tracking_url, id)
}

/// Status, content type and bytes of a GET.
async fn fetch(client: &reqwest::Client, url: &str, token: Option<&str>) -> (StatusCode, String, Vec<u8>) {
    let mut req = client.get(url);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    let res = req.send().await.expect("request");
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    (res.status(), content_type, res.bytes().await.expect("bytes").to_vec())
}

#[tokio::test]
async fn thumbnails_load_the_small_rendition_through_srcset_on_the_page_and_the_dashboard() {
    let app = spawn_app().await;
    let (reference, tracking_url, id) = order_with_photo(&app).await;

    let base = format!("{tracking_url}/photos/{id}");
    let page = app.client.get(&tracking_url).send().await.expect("page").text().await.expect("html");
    let srcset = format!("srcset=\"{base}/small 224w, {base}/thumb 400w\" sizes=\"112px\"").replace('/', "&#x2f;");
    assert!(page.contains(&srcset), "a 112 px slot picks the 224 px file on a 2x screen");
    assert!(page.len() < 50_000, "page is {} bytes", page.len());

    let (status, content_type, small) = fetch(&app.client, &format!("{base}/small"), None).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "image/jpeg"));
    let (_, _, thumb) = fetch(&app.client, &format!("{base}/thumb"), None).await;
    let decoded = image::load_from_memory(&small).expect("a real JPEG");
    assert_eq!((decoded.width(), decoded.height()), (224, 168));
    assert!(small.len() < thumb.len(), "small {} bytes, thumb {} bytes", small.len(), thumb.len());

    let api = app.api(&format!("/photos/{id}/small"));
    let (status, content_type, by_api) = fetch(&app.client, &api, Some(&app.read_token)).await;
    assert_eq!((status, content_type.as_str(), by_api), (StatusCode::OK, "image/jpeg", small.clone()));
    let listed: Value = app.get(&format!("/orders/{reference}/photos")).await.json().await.expect("json");
    assert_eq!(listed[0]["small_url"], format!("/api/v1/photos/{id}/small"));

    add_user(&app, "ann@shop.example", kiln::domain::access::Role::Viewer).await;
    let ann = sign_in(&app, "ann@shop.example").await;
    let detail = ann.get(&format!("/orders/{reference}")).await.text().await.expect("html");
    let ops_base = format!("/orders/{reference}/photos/{id}");
    let srcset =
        format!("srcset=\"{ops_base}/small 224w, {ops_base}/thumb 400w\" sizes=\"96px\"").replace('/', "&#x2f;");
    assert!(detail.contains(&srcset), "the dashboard's thumbnails too");
    let res = ann.get(&format!("{ops_base}/small")).await;
    assert_eq!(res.headers()["content-type"], "image/jpeg");
    assert_eq!(res.bytes().await.expect("bytes").to_vec(), small);
}

#[tokio::test]
async fn a_photo_stored_before_small_renditions_serves_its_thumb_in_their_place() {
    let app = spawn_app().await;
    let (reference, tracking_url, id) = order_with_photo(&app).await;
    app.sql("UPDATE photos SET small_key = NULL, small_width = NULL, small_height = NULL").await;
    // Any change to the order reloads what its page shows.
    let res = app.patch(&format!("/orders/{reference}"), &serde_json::json!({ "customer_note": "Photos below" })).await;
    assert_eq!(res.status(), StatusCode::OK);

    let base = format!("{tracking_url}/photos/{id}");
    let (status, content_type, small) = fetch(&app.client, &format!("{base}/small"), None).await;
    assert_eq!((status, content_type.as_str()), (StatusCode::OK, "image/jpeg"), "not a 404");
    let (_, _, thumb) = fetch(&app.client, &format!("{base}/thumb"), None).await;
    assert_eq!(small, thumb, "the thumb stands in");
    let api = app.api(&format!("/photos/{id}/small"));
    assert_eq!(fetch(&app.client, &api, Some(&app.read_token)).await.2, thumb);

    let page = app.client.get(&tracking_url).send().await.expect("page").text().await.expect("html");
    let srcset = format!("srcset=\"{base}/thumb 400w\"").replace('/', "&#x2f;");
    assert!(page.contains(&srcset), "only the files it has, with their true widths");
    assert!(!page.contains("small 224w"));
}
