//! Photos from the bench through real HTTP: judged by content, cleaned of metadata, stored,
//! and shown to the customer only when meant for them.

use std::io::Cursor;

use reqwest::StatusCode;
use reqwest::multipart::{Form, Part};
use serde_json::Value;

use crate::fixtures;
use crate::helpers::{TestApp, problem, spawn_app, spawn_app_with};

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
    let thumb_in_html = photos[0]["thumb_url"].as_str().expect("thumb").replace('/', "&#x2f;");
    assert!(page.contains(&format!("src=\"{thumb_in_html}\"")), "the page shows the thumbnail");

    for url in [web_url, photos[0]["thumb_url"].as_str().expect("thumb")] {
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
