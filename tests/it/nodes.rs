//! Caches stay correct: after a change on this node at once, and on other nodes within
//! moments (PostgreSQL change notifications).

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::helpers::{TestApp, on_postgres, spawn_app, spawn_second_node};

#[tokio::test]
async fn a_read_right_after_a_write_on_the_same_node_sees_it() {
    let app = spawn_app().await;
    let reference = app.new_order("print").await;
    for to in ["queued", "printing", "finishing"] {
        assert_ne!(app.order(&reference).await["stage"]["key"], to);
        assert_eq!(app.move_to(&reference, to).await.status(), StatusCode::OK);
        assert_eq!(app.order(&reference).await["stage"]["key"], to, "no stale cached view");
    }
    let path = format!("/orders/{reference}/tracking-link");
    let before = app.order(&reference).await["tracking_url"].clone();
    let res = app.client.post(app.api(&path)).bearer_auth(&app.write_token).send().await.expect("request");
    assert_eq!(res.status(), StatusCode::CREATED);
    assert_ne!(app.order(&reference).await["tracking_url"], before, "a re-issued link shows at once");
}

#[tokio::test]
async fn a_revoked_token_stops_working_at_once() {
    let app = spawn_app().await;
    assert_eq!(app.get("/orders").await.status(), StatusCode::OK);
    let id = reader_token_id(&app).await;
    assert!(app.service.revoke_token(id).await.expect("revoke"));
    assert_eq!(app.get("/orders").await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_change_on_one_node_reaches_the_cached_reads_of_another() {
    if !on_postgres() {
        eprintln!("skipped: several nodes share a database only on PostgreSQL (set KILN_TEST_DATABASE_URL)");
        return;
    }
    let a = spawn_app().await;
    let b = spawn_second_node(&a).await;
    let reference = a.new_order("stone").await;
    assert_eq!(b.order(&reference).await["stage"]["key"], "quarry_extraction", "b has it cached now");

    assert_eq!(a.move_to(&reference, "block_selection").await.status(), StatusCode::OK);
    let started = Instant::now();
    loop {
        if b.order(&reference).await["stage"]["key"] == "block_selection" {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "node b still serves the old stage");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A token revoked through node a is refused by node b too. Both nodes made a
    // `test-reader`; the listing is newest first, so the first one is node b's.
    let id = reader_token_id(&a).await;
    let reader = b.read_token.clone();
    let b_get = || b.client.get(b.api("/orders")).bearer_auth(&reader).send();
    assert_eq!(b_get().await.expect("request").status(), StatusCode::OK);
    assert!(a.service.revoke_token(id).await.expect("revoke"));
    let started = Instant::now();
    while b_get().await.expect("request").status() != StatusCode::UNAUTHORIZED {
        assert!(started.elapsed() < Duration::from_secs(5), "node b still accepts the revoked token");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn a_token_revoked_by_the_cli_stops_working_within_the_invalidation_delay() {
    let app = spawn_app().await;
    // The reader token is cached by the server now.
    assert_eq!(app.get("/orders").await.status(), StatusCode::OK);
    let id = reader_token_id(&app).await;
    // Another process — `kiln token revoke` on the same database — revokes it.
    let dir = tempfile::tempdir().expect("temp dir");
    // Awaited, not blocking: a blocked runtime would freeze the server under test, perhaps
    // mid-transaction, holding SQLite's write lock.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_kiln"))
        .env_remove("KILN_CONFIG")
        .env("KILN_DATABASE_URL", &app.db_url)
        .env("KILN_DATA_DIR", dir.path())
        .args(["token", "revoke", &id.to_string()])
        .output()
        .await
        .expect("kiln runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let started = Instant::now();
    while app.get("/orders").await.status() != StatusCode::UNAUTHORIZED {
        // The cache keeps a token for 30 s; a revocation must not wait for that.
        assert!(started.elapsed() < Duration::from_secs(5), "the server still accepts the revoked token");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The id of the newest `test-reader` token the app's database holds.
async fn reader_token_id(app: &TestApp) -> i64 {
    let tokens = app.service.list_tokens().await.expect("tokens");
    tokens.into_iter().find(|t| t.name == "test-reader").expect("reader").id
}
