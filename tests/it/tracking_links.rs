//! Operators can see an order's tracking link again, revoke it and re-issue it.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_link_can_be_shown_again_reissued_and_revoked_and_each_change_is_audited() {
    let app = spawn_app().await;
    let order = app.create_order("stone").await;
    let reference = order["reference"].as_str().expect("reference");
    let original = order["tracking_url"].as_str().expect("url").to_owned();
    let path = format!("/orders/{reference}/tracking-link");

    let shown: Value = app.get(&path).await.json().await.expect("json");
    assert_eq!(shown["url"], original.as_str(), "the same link, shown again later");
    let token = original.rsplit('/').next().expect("token");
    assert_eq!(
        app.count(&format!(
            "SELECT COUNT(*) FROM tracking_links WHERE token_hash = '{token}' OR token_enc = '{token}'"
        ))
        .await,
        0,
        "the token is not stored in the clear"
    );
    assert_eq!(
        app.service.order_for_token(token).await.expect("lookup").map(|o| o.reference.to_string()).as_deref(),
        Some(reference)
    );

    let res = app.client.post(app.api(&path)).bearer_auth(&app.write_token).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::CREATED);
    let reissued: Value = res.json().await.expect("json");
    let new_url = reissued["url"].as_str().expect("url").to_owned();
    assert_ne!(new_url, original);
    assert!(app.service.order_for_token(token).await.expect("lookup").is_none(), "the old link stops working");
    assert_eq!(app.order(reference).await["tracking_url"], new_url.as_str());

    let res = app.client.delete(app.api(&path)).bearer_auth(&app.write_token).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.order(reference).await["tracking_url"], Value::Null);
    let new_token = new_url.rsplit('/').next().expect("token");
    assert!(app.service.order_for_token(new_token).await.expect("lookup").is_none());

    let kinds: Vec<_> =
        app.events(reference).await.iter().map(|e| e["kind"].as_str().unwrap_or("").to_owned()).collect();
    assert_eq!(kinds, ["created", "link_reissued", "link_revoked"]);

    let res = app.client.post(app.api(&path)).bearer_auth(&app.read_token).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
}
