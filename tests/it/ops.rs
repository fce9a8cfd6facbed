//! The shop's dashboard over real HTTP: sign-in, sessions, CSRF and Origin checks, roles on
//! every route, bulk moves, list filters and search, and the floor display's link.

use std::time::Duration;

use kiln::domain::access::Role;
use kiln::service::NewUser;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};

use crate::helpers::{TestApp, order_body, spawn_app, spawn_app_with};

const PASSWORD: &str = "correct horse battery";

/// A browser-like client of the dashboard: one cookie jar, no automatic redirects.
pub struct Staff {
    base: String,
    http: reqwest::Client,
    /// The session cookie as `name=value`.
    pub cookie: String,
}

fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client")
}

/// The `name=value` of a `Set-Cookie` for `name`.
fn set_cookie(headers: &HeaderMap, name: &str) -> Option<(String, String)> {
    headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).find_map(|v| {
        let (pair, attrs) = v.split_once(';').unwrap_or((v, ""));
        let (k, val) = pair.split_once('=')?;
        (k == name).then(|| (val.to_owned(), attrs.to_owned()))
    })
}

/// The value of the first `_csrf` field in a page.
pub fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"_csrf\" value=\"").expect("a form with a CSRF field");
    let rest = &html[at + "name=\"_csrf\" value=\"".len()..];
    rest[..rest.find('"').expect("closing quote")].to_owned()
}

/// Adds a user straight through the service.
pub async fn add_user(app: &TestApp, email: &str, role: Role) {
    let new = NewUser { email, name: None, role, password: PASSWORD };
    app.service.add_user(new, "test").await.expect("user added");
}

/// Signs in through the login form; panics unless it works.
pub async fn sign_in(app: &TestApp, email: &str) -> Staff {
    try_sign_in(app, email, PASSWORD).await.expect("signed in")
}

/// Signs in through the login form; the failed response when it does not work.
pub async fn try_sign_in(app: &TestApp, email: &str, password: &str) -> Result<Staff, reqwest::Response> {
    let http = no_redirects();
    let page = http.get(format!("{}/login", app.base)).send().await.expect("login page");
    assert_eq!(page.status(), StatusCode::OK);
    let (login_cookie, _) = set_cookie(page.headers(), "kiln_login").expect("login cookie");
    let html = page.text().await.expect("html");
    let token = csrf_in(&html);
    assert_eq!(token, login_cookie, "the form carries the cookie's value (double submit)");
    let res = http
        .post(format!("{}/login", app.base))
        .header("cookie", format!("kiln_login={login_cookie}"))
        .header("origin", &app.base)
        .form(&[("email", email), ("password", password), ("_csrf", &token), ("next", "/")])
        .send()
        .await
        .expect("login");
    if res.status() != StatusCode::SEE_OTHER {
        return Err(res);
    }
    let (session, attrs) = set_cookie(res.headers(), "kiln_session").expect("session cookie");
    assert!(attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax") && attrs.contains("Path=/"), "{attrs}");
    Ok(Staff { base: app.base.clone(), http, cookie: format!("kiln_session={session}") })
}

impl Staff {
    /// GET a dashboard path.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(format!("{}{path}", self.base)).header("cookie", &self.cookie).send().await.expect("get")
    }

    /// The CSRF token of this session, read from a page.
    pub async fn csrf(&self) -> String {
        let res = self.get("/").await;
        assert_eq!(res.status(), StatusCode::OK, "signed in");
        csrf_in(&res.text().await.expect("html"))
    }

    /// POST a form from our own origin with this session's CSRF token.
    pub async fn post(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let token = self.csrf().await;
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("_csrf", &token));
        self.post_raw(path, &form, Some(&self.base)).await
    }

    /// POST a form as given, with an optional Origin.
    pub async fn post_raw(&self, path: &str, form: &[(&str, &str)], origin: Option<&str>) -> reqwest::Response {
        let mut req = self.http.post(format!("{}{path}", self.base)).header("cookie", &self.cookie).form(form);
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        req.send().await.expect("post")
    }
}

/// The stage column of a board page that shows a card for `reference`.
fn column_of(board: &str, reference: &str) -> Option<String> {
    let at = board.find(&format!("data-ref=\"{reference}\""))?;
    let start = board[..at].rfind("id=\"col-")? + "id=\"col-".len();
    Some(board[start..].chars().take_while(|c| *c != '"').collect())
}

fn location(res: &reqwest::Response) -> String {
    res.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

async fn stage_of(app: &TestApp, reference: &str) -> String {
    app.order(reference).await["stage"]["key"].as_str().expect("stage").to_owned()
}

#[tokio::test]
async fn signing_in_and_out() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    add_user(&app, "ann@shop.example", Role::Operator).await;

    let anonymous = no_redirects().get(format!("{}/", app.base)).send().await.expect("get");
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&anonymous), "/login");

    let wrong = try_sign_in(&app, "ann@shop.example", "not the password").await.err().expect("refused");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    assert!(wrong.text().await.expect("html").contains("do not match an active account"));
    let unknown = try_sign_in(&app, "nobody@shop.example", PASSWORD).await.err().expect("refused");
    assert_eq!(unknown.status(), StatusCode::UNAUTHORIZED);

    let ann = sign_in(&app, "ann@shop.example").await;
    let home = ann.get("/").await;
    assert_eq!(home.status(), StatusCode::OK);
    assert_eq!(home.headers()["cache-control"], "private, no-store, max-age=0");
    assert!(home.headers()["content-security-policy"].to_str().expect("csp").contains("frame-ancestors 'none'"));
    assert!(home.text().await.expect("html").contains(&reference));

    let out = ann.post("/logout", &[]).await;
    assert_eq!(out.status(), StatusCode::SEE_OTHER);
    let (cleared, attrs) = set_cookie(out.headers(), "kiln_session").expect("cookie cleared");
    assert!(cleared.is_empty() && attrs.contains("Max-Age=0"));
    // The old cookie no longer signs anybody in: the session ended on the server.
    assert_eq!(ann.get("/").await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM staff_audit WHERE action IN ('login', 'logout', 'login.failed')").await,
        4
    );
}

#[tokio::test]
async fn every_sign_in_gets_a_new_session_id() {
    let app = spawn_app().await;
    add_user(&app, "ann@shop.example", Role::Viewer).await;
    let first = sign_in(&app, "ann@shop.example").await;
    let second = sign_in(&app, "ann@shop.example").await;
    assert_ne!(first.cookie, second.cookie);
    // A session id planted in the browser before signing in is not the one it gets.
    let planted = "kiln_session=planted-by-an-attacker";
    let http = no_redirects();
    let page = http.get(format!("{}/login", app.base)).header("cookie", planted).send().await.expect("page");
    let (login_cookie, _) = set_cookie(page.headers(), "kiln_login").expect("login cookie");
    let res = http
        .post(format!("{}/login", app.base))
        .header("cookie", format!("{planted}; kiln_login={login_cookie}"))
        .form(&[("email", "ann@shop.example"), ("password", PASSWORD), ("_csrf", &login_cookie)])
        .send()
        .await
        .expect("login");
    let (session, _) = set_cookie(res.headers(), "kiln_session").expect("new session");
    assert_ne!(session, "planted-by-an-attacker");
    assert_eq!(first.get("/").await.status(), StatusCode::OK, "other sessions go on");
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_account() {
    let app = spawn_app_with(|c| c.staff.login_attempts_per_account = 3).await;
    add_user(&app, "ann@shop.example", Role::Viewer).await;
    for _ in 0..3 {
        let res = try_sign_in(&app, "ann@shop.example", "wrong password!").await.err().expect("refused");
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    }
    let limited = try_sign_in(&app, "ANN@shop.example", PASSWORD).await.err().expect("limited");
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    assert!(limited.text().await.expect("html").contains("Too many sign-in attempts"));
    // Another account from the same address is not locked out by Ann's.
    add_user(&app, "bo@shop.example", Role::Viewer).await;
    sign_in(&app, "bo@shop.example").await;
}

#[tokio::test]
async fn sign_in_attempts_are_rate_limited_per_address() {
    let app = spawn_app_with(|c| c.staff.login_attempts_per_address = 2).await;
    add_user(&app, "ann@shop.example", Role::Viewer).await;
    for email in ["x1@shop.example", "x2@shop.example"] {
        assert_eq!(try_sign_in(&app, email, PASSWORD).await.err().expect("refused").status(), StatusCode::UNAUTHORIZED);
    }
    let limited = try_sign_in(&app, "ann@shop.example", PASSWORD).await.err().expect("limited");
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn an_idle_session_ends() {
    let app = spawn_app_with(|c| {
        c.staff.session_idle = Duration::from_secs(1);
        c.staff.session_absolute = Duration::from_secs(60);
    })
    .await;
    add_user(&app, "ann@shop.example", Role::Viewer).await;
    let ann = sign_in(&app, "ann@shop.example").await;
    for _ in 0..4 {
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(ann.get("/").await.status(), StatusCode::OK, "use keeps it alive");
    }
    tokio::time::sleep(Duration::from_millis(1300)).await;
    let res = ann.get("/").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/login");
}

#[tokio::test]
async fn a_session_ends_at_its_absolute_timeout_however_active() {
    let app = spawn_app_with(|c| {
        c.staff.session_idle = Duration::from_secs(2);
        c.staff.session_absolute = Duration::from_secs(3);
    })
    .await;
    add_user(&app, "ann@shop.example", Role::Viewer).await;
    let ann = sign_in(&app, "ann@shop.example").await;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_millis(2700) {
        assert_eq!(ann.get("/").await.status(), StatusCode::OK);
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(ann.get("/").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn forms_need_the_csrf_token_and_our_origin() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let ann = sign_in(&app, "ann@shop.example").await;
    let path = format!("/orders/{reference}/note");
    let note = [("body", "checked the drawing"), ("visibility", "internal")];

    let missing = ann.post_raw(&path, &note, Some(&app.base)).await;
    assert_eq!(missing.status(), StatusCode::FORBIDDEN);
    assert!(missing.text().await.expect("html").contains("This form has expired"));

    let token = ann.csrf().await;
    let mut forged = note.to_vec();
    forged.push(("_csrf", "0000"));
    assert_eq!(ann.post_raw(&path, &forged, Some(&app.base)).await.status(), StatusCode::FORBIDDEN);

    let mut valid = note.to_vec();
    valid.push(("_csrf", &token));
    let foreign = ann.post_raw(&path, &valid, Some("https://evil.example")).await;
    assert_eq!(foreign.status(), StatusCode::FORBIDDEN);
    assert!(foreign.text().await.expect("html").contains("sent from another site"));

    // Another session's token is not this one's.
    add_user(&app, "bo@shop.example", Role::Operator).await;
    let bo_token = sign_in(&app, "bo@shop.example").await.csrf().await;
    let mut swapped = note.to_vec();
    swapped.push(("_csrf", &bo_token));
    assert_eq!(ann.post_raw(&path, &swapped, Some(&app.base)).await.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events WHERE kind = 'noted'").await, 0, "nothing was noted");

    let done = ann.post_raw(&path, &valid, Some(&app.base)).await;
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    let events = app.events(&reference).await;
    let noted = events.iter().find(|e| e["kind"] == "noted").expect("noted");
    assert_eq!(noted["actor"], "ann@shop.example");
    assert_eq!(noted["source"], "ops");
}

#[tokio::test]
async fn a_viewer_can_read_but_not_change_anything() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    add_user(&app, "vic@shop.example", Role::Viewer).await;
    let vic = sign_in(&app, "vic@shop.example").await;
    for page in ["/", "/board/jobshop", &format!("/orders/{reference}")] {
        assert_eq!(vic.get(page).await.status(), StatusCode::OK, "{page}");
    }
    let detail = vic.get(&format!("/orders/{reference}")).await.text().await.expect("html");
    assert!(!detail.contains("/act?"), "no move buttons are offered to a viewer");
    let r = reference.as_str();
    let routes: Vec<(String, Vec<(&str, &str)>)> = vec![
        (format!("/orders/{r}/act"), vec![("op", "move:released"), ("expected_stage", "order_received")]),
        (format!("/orders/{r}/note"), vec![("body", "hello"), ("visibility", "internal")]),
        (format!("/orders/{r}/edit"), vec![("priority", "rush")]),
        (format!("/orders/{r}/link/revoke"), vec![]),
        (format!("/orders/{r}/link/reissue"), vec![]),
        ("/messages/1/retry".to_owned(), vec![]),
        ("/bulk".to_owned(), vec![("ref", r), ("bulk_op", "hold")]),
        ("/settings/users".to_owned(), vec![("email", "x@shop.example"), ("role", "owner")]),
        ("/settings/users/1".to_owned(), vec![("op", "disable")]),
        ("/settings/tokens".to_owned(), vec![("name", "x"), ("scope", "write")]),
        ("/settings/tokens/1/revoke".to_owned(), vec![]),
        ("/settings/displays".to_owned(), vec![("name", "TV")]),
        ("/settings/displays/1/revoke".to_owned(), vec![]),
    ];
    for (path, fields) in &routes {
        let res = vic.post(path, fields).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(vic.get("/settings").await.status(), StatusCode::FORBIDDEN);
    assert_eq!(stage_of(&app, &reference).await, "order_received");
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events").await, 1, "only the creation");
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
    assert_eq!(app.count("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NULL").await, 2);
}

#[tokio::test]
async fn an_operator_moves_orders_but_cannot_manage_users_or_tokens() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let ann = sign_in(&app, "ann@shop.example").await;
    let board = ann.get("/board/jobshop").await.text().await.expect("html");
    assert_eq!(column_of(&board, &reference).as_deref(), Some("order_received"));
    let res = ann
        .post(
            &format!("/orders/{reference}/act"),
            &[("op", "move:released"), ("expected_stage", "order_received"), ("note", "Released to the floor")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(stage_of(&app, &reference).await, "released");
    // The board shown to every screen follows the move at once.
    let board = ann.get("/board/jobshop").await.text().await.expect("html");
    assert_eq!(column_of(&board, &reference).as_deref(), Some("released"));
    let moved = app.events(&reference).await.into_iter().find(|e| e["kind"] == "moved").expect("moved");
    assert_eq!((moved["actor"].as_str(), moved["source"].as_str()), (Some("ann@shop.example"), Some("ops")));
    assert_eq!(moved["note"], "Released to the floor");

    assert_eq!(ann.get("/settings").await.status(), StatusCode::FORBIDDEN);
    for (path, fields) in [
        ("/settings/users", vec![("email", "eve@shop.example"), ("role", "owner")]),
        ("/settings/tokens", vec![("name", "eve"), ("scope", "write")]),
    ] {
        assert_eq!(ann.post(path, &fields).await.status(), StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.count("SELECT COUNT(*) FROM users").await, 1);
}

#[tokio::test]
async fn a_move_from_a_stale_page_says_what_happened_meanwhile() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let ann = sign_in(&app, "ann@shop.example").await;
    assert_eq!(app.move_to(&reference, "released").await.status(), StatusCode::OK);
    let res = ann
        .post(&format!("/orders/{reference}/act"), &[("op", "move:released"), ("expected_stage", "order_received")])
        .await;
    assert_eq!(res.status(), StatusCode::CONFLICT);
    let html = res.text().await.expect("html");
    assert!(html.contains("The order changed meanwhile") && html.contains("test-writer"), "{html}");
    assert_eq!(app.count("SELECT COUNT(*) FROM order_events WHERE kind = 'moved'").await, 1);
}

#[tokio::test]
async fn disabling_a_user_ends_their_sessions() {
    let app = spawn_app().await;
    add_user(&app, "own@shop.example", Role::Owner).await;
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let owner = sign_in(&app, "own@shop.example").await;
    let ann = sign_in(&app, "ann@shop.example").await;
    let ann_phone = sign_in(&app, "ann@shop.example").await;
    let id = app.service.user_by_email("ann@shop.example").await.expect("read").expect("ann").id;
    let res = owner.post(&format!("/settings/users/{id}"), &[("op", "disable")]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    for session in [&ann, &ann_phone] {
        assert_eq!(session.get("/").await.status(), StatusCode::SEE_OTHER, "signed out everywhere");
    }
    let refused = try_sign_in(&app, "ann@shop.example", PASSWORD).await.err().expect("refused");
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    // The last owner cannot lock everybody out.
    let own_id = app.service.user_by_email("own@shop.example").await.expect("read").expect("owner").id;
    let res = owner.post(&format!("/settings/users/{own_id}"), &[("op", "disable")]).await;
    assert_eq!(res.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        app.count("SELECT COUNT(*) FROM staff_audit WHERE action = 'user.disabled' AND actor = 'own@shop.example'")
            .await,
        1
    );
}

#[tokio::test]
async fn sign_out_everywhere_ends_every_session_of_the_user() {
    let app = spawn_app().await;
    add_user(&app, "ann@shop.example", Role::Viewer).await;
    let desk = sign_in(&app, "ann@shop.example").await;
    let phone = sign_in(&app, "ann@shop.example").await;
    assert_eq!(phone.post("/logout/everywhere", &[]).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(desk.get("/").await.status(), StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_bulk_move_reports_each_order() {
    let app = spawn_app_with(|c| {
        c.notify.email = None;
    })
    .await;
    let a = app.new_order("jobshop").await;
    let b = app.new_order("jobshop").await;
    let c = app.new_order("jobshop").await;
    let stone = app.new_order("stone").await;
    assert_eq!(app.move_to(&c, "released").await.status(), StatusCode::OK);
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let ann = sign_in(&app, "ann@shop.example").await;
    let jobs_before = app.count("SELECT COUNT(*) FROM outbox").await;
    let res = ann
        .post(
            "/bulk",
            &[("ref", &a), ("ref", &b), ("ref", &c), ("ref", &stone), ("bulk_op", "move:released"), ("back", "/")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("html");
    assert!(html.contains("2 done, 2 refused"), "{html}");
    for reference in [&a, &b] {
        assert_eq!(stage_of(&app, reference).await, "released");
    }
    assert_eq!(stage_of(&app, &stone).await, "quarry_extraction");
    // The way back is a path on this site, whatever the form said.
    let res = ann.post("/bulk", &[("ref", &a), ("bulk_op", "hold"), ("back", "javascript:alert(1)")]).await;
    let html = res.text().await.expect("html");
    assert!(!html.contains("javascript:") && html.contains("1 done, 0 refused"), "{html}");
    let moves =
        app.count("SELECT COUNT(*) FROM order_events WHERE kind = 'moved' AND actor = 'ann@shop.example'").await;
    assert_eq!(moves, 2);
    // Each move enqueued its own jobs, as a single move does.
    assert!(app.count("SELECT COUNT(*) FROM outbox").await > jobs_before);
}

#[tokio::test]
async fn the_list_filters_and_searches() {
    let app = spawn_app().await;
    let mut body = order_body("jobshop");
    body["customer"]["name"] = "Mariana Quintero".into();
    body["customer"]["email"] = "mq@fabrica.example".into();
    body["customer"]["phone"] = "+34600123456".into();
    let res = app.post("/orders", &body).await;
    assert_eq!(res.status(), StatusCode::CREATED);
    let mariana = res.json::<serde_json::Value>().await.expect("json")["reference"].as_str().expect("ref").to_owned();
    let other = app.new_order("stone").await;
    add_user(&app, "vic@shop.example", Role::Viewer).await;
    let vic = sign_in(&app, "vic@shop.example").await;
    let list = |q: String| {
        let vic = &vic;
        async move {
            let res = vic.get(&q).await;
            assert_eq!(res.status(), StatusCode::OK, "{q}");
            res.text().await.expect("html")
        }
    };
    for q in
        ["/?q=quinter", "/?q=MQ%40FABRICA.example", "/?q=600123456", &format!("/?q={mariana}"), "/?workflow=jobshop"]
    {
        let html = list(q.to_owned()).await;
        assert!(html.contains(&format!(">{mariana}<")) && !html.contains(&format!(">{other}<")), "{q}");
    }
    let stone = list("/?workflow=stone".to_owned()).await;
    assert!(stone.contains(&format!(">{other}<")) && !stone.contains(&format!(">{mariana}<")));
    let none = list("/?status=cancelled".to_owned()).await;
    assert!(none.contains("No orders match these filters."));
    // Past its promised date: late, and first when sorted by due date.
    let res = app.patch(&format!("/orders/{mariana}"), &serde_json::json!({ "due_date": "2026-01-02" })).await;
    assert_eq!(res.status(), StatusCode::OK);
    let late = list("/?late=1".to_owned()).await;
    assert!(late.contains(&format!(">{mariana}<")) && !late.contains(&format!(">{other}<")));
    let by_due = list("/?sort=due_date&status=any".to_owned()).await;
    let (m, o) = (by_due.find(&format!(">{mariana}<")), by_due.find(&format!(">{other}<")));
    assert!(m.is_some() && o.is_some() && m < o, "due first");
    let bad = vic.get("/?created_from=yesterday").await;
    assert_eq!(bad.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.text().await.expect("html").contains("created_from"));
}

#[tokio::test]
async fn the_floor_display_works_without_sign_in_until_revoked() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    add_user(&app, "own@shop.example", Role::Owner).await;
    let owner = sign_in(&app, "own@shop.example").await;
    let res = owner.post("/settings/displays", &[("name", "Workshop TV"), ("workflow", "jobshop")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("html").replace("&#x2f;", "/");
    let start = html.find(&format!("{}/floor/", app.base)).expect("the new link is shown");
    let url: String = html[start..].chars().take_while(|c| *c != '"').collect();
    let tv = no_redirects();
    let screen = tv.get(&url).send().await.expect("display");
    assert_eq!(screen.status(), StatusCode::OK);
    assert!(screen.text().await.expect("html").contains(&reference));
    assert_eq!(tv.get(format!("{url}/events")).send().await.expect("events").status(), StatusCode::OK);

    let id = app.count("SELECT MAX(id) FROM display_links").await;
    assert_eq!(owner.post(&format!("/settings/displays/{id}/revoke"), &[]).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(tv.get(&url).send().await.expect("display").status(), StatusCode::NOT_FOUND);
    assert_eq!(tv.get(format!("{url}/events")).send().await.expect("events").status(), StatusCode::NOT_FOUND);
    let guessed = tv.get(format!("{}/floor/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", app.base)).send().await.expect("guess");
    assert_eq!(guessed.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn owners_manage_users_and_tokens_from_settings() {
    let app = spawn_app().await;
    add_user(&app, "own@shop.example", Role::Owner).await;
    let owner = sign_in(&app, "own@shop.example").await;
    let res =
        owner.post("/settings/users", &[("email", "New@Shop.example"), ("name", "Nina"), ("role", "operator")]).await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("html");
    assert!(html.contains("New password for new@shop.example"));
    let at = html.find("id=\"revealed\" readonly value=\"").expect("password shown once");
    let rest = &html[at + "id=\"revealed\" readonly value=\"".len()..];
    let password = &rest[..rest.find('"').expect("quote")];
    try_sign_in(&app, "new@shop.example", password).await.map_err(|r| r.status()).expect("the new user signs in");
    let hash = app.strings("SELECT password_hash FROM users WHERE email = 'new@shop.example'").await;
    assert!(hash[0].starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{}", hash[0]);

    let dup = owner.post("/settings/users", &[("email", "new@shop.example"), ("role", "viewer")]).await;
    assert_eq!(dup.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(dup.text().await.expect("html").contains("already exists"));

    let res = owner.post("/settings/tokens", &[("name", "zapier"), ("scope", "read")]).await;
    let html = res.text().await.expect("html");
    assert!(html.contains("kiln_"), "the token is shown once");
    let id = app.count("SELECT MAX(id) FROM api_tokens").await;
    assert_eq!(owner.post(&format!("/settings/tokens/{id}/revoke"), &[]).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.count(&format!("SELECT COUNT(*) FROM api_tokens WHERE id = {id} AND revoked_at IS NOT NULL")).await,
        1
    );
}

#[tokio::test]
async fn the_dashboard_hears_about_every_change_live() {
    let app = spawn_app().await;
    let reference = app.new_order("jobshop").await;
    add_user(&app, "vic@shop.example", Role::Viewer).await;
    let vic = sign_in(&app, "vic@shop.example").await;
    let client = reqwest::Client::builder()
        .default_headers(HeaderMap::from_iter([("cookie".parse().expect("name"), vic.cookie.parse().expect("value"))]))
        .build()
        .expect("client");
    let (status, headers, stream) =
        crate::helpers::SseClient::connect(&client, &format!("{}/ops/events", app.base), None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "text/event-stream");
    let mut stream = stream.expect("stream");
    assert_eq!(app.move_to(&reference, "released").await.status(), StatusCode::OK);
    let event = stream.next(Duration::from_secs(5)).await.expect("an event");
    assert_eq!(event.event.as_deref(), Some("changed"));
    // Signed out: no stream.
    let anonymous = reqwest::Client::new();
    let (status, _, _) =
        crate::helpers::SseClient::connect(&anonymous, &format!("{}/ops/events", app.base), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_move_from_the_bench_carries_photos_to_the_tracking_page() {
    let app = spawn_app().await;
    let created = app.create_order("stone").await;
    let reference = created["reference"].as_str().expect("reference").to_owned();
    add_user(&app, "ann@shop.example", Role::Operator).await;
    let ann = sign_in(&app, "ann@shop.example").await;
    let token = ann.csrf().await;
    let jpeg = crate::fixtures::jpeg(&crate::fixtures::photo_like(640, 480));
    let form = reqwest::multipart::Form::new()
        .text("op", "move:block_selection")
        .text("expected_stage", "quarry_extraction")
        .text("note", "Cut and ready")
        .part(
            "photo",
            reqwest::multipart::Part::bytes(jpeg).file_name("bench.jpg").mime_str("image/jpeg").expect("mime"),
        )
        // The empty part a browser sends for an unused second file input.
        .part(
            "photo",
            reqwest::multipart::Part::bytes(Vec::new())
                .file_name("")
                .mime_str("application/octet-stream")
                .expect("mime"),
        );
    let res = no_redirects()
        .post(format!("{}/orders/{reference}/act?_csrf={token}", app.base))
        .header("cookie", &ann.cookie)
        .header("origin", &app.base)
        .multipart(form)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let moved = app.events(&reference).await.into_iter().find(|e| e["kind"] == "moved").expect("moved");
    assert_eq!(moved["photo_ids"].as_array().map(Vec::len), Some(1));
    let tracking =
        reqwest::get(created["tracking_url"].as_str().expect("url")).await.expect("page").text().await.expect("html");
    let tracking = tracking.replace("&#x2f;", "/");
    assert!(tracking.contains("Cut and ready"));
    assert!(tracking.contains(&format!("/photos/{}/", moved["photo_ids"][0])), "the photo is on the tracking page");
}

#[tokio::test]
async fn settings_show_channel_health_and_dead_messages_an_operator_can_retry() {
    // A webhook endpoint nobody listens on: every attempt fails, and with one attempt allowed
    // the message is dead at once.
    let port = std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
    let closed = format!("http://127.0.0.1:{port}/hook");
    let app = spawn_app_with(|c| {
        c.notify.webhooks = vec![crate::notifications::webhook("erp", &closed, &[crate::notifications::NEW_SECRET])];
        c.notify.worker.max_attempts = 1;
    })
    .await;
    let reference = app.new_order("jobshop").await;
    app.drain_outbox().await;
    let dead = app.count("SELECT COUNT(*) FROM outbox WHERE status = 'dead'").await;
    assert!(dead >= 1, "the webhook died");
    add_user(&app, "own@shop.example", Role::Owner).await;
    let owner = sign_in(&app, "own@shop.example").await;
    let res = owner.get("/settings").await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.expect("html");
    assert!(html.contains("webhook erp") && html.contains(&format!("dead {dead}")), "{html}");
    assert!(html.contains(&format!(">{reference}<")), "the dead message names its order");

    let detail = owner.get(&format!("/orders/{reference}")).await.text().await.expect("html");
    assert!(detail.contains("/retry"), "a dead message has a retry button");
    let id = app.count("SELECT MIN(id) FROM outbox WHERE status = 'dead'").await;
    let res = owner.post(&format!("/messages/{id}/retry"), &[("back", &format!("/orders/{reference}"))]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), format!("/orders/{reference}"));
    assert_eq!(app.count(&format!("SELECT COUNT(*) FROM outbox WHERE id = {id} AND status = 'dead'")).await, 0);
    assert_eq!(app.count("SELECT COUNT(*) FROM staff_audit WHERE action = 'message.retried'").await, 1);
}

#[tokio::test]
async fn over_https_the_cookies_are_secure_host_cookies_and_pages_speak_the_browsers_language() {
    let app = spawn_app_with(|c| c.base_url = "https://shop.example/".parse().expect("url")).await;
    let http = no_redirects();
    let page = http
        .get(format!("{}/login", app.base))
        .header("accept-language", "it-IT,it;q=0.9,en;q=0.5")
        .send()
        .await
        .expect("page");
    let (value, attrs) = set_cookie(page.headers(), "__Host-kiln_login").expect("a __Host- cookie");
    assert!(attrs.contains("Secure") && attrs.contains("Path=/") && !attrs.contains("Domain"), "{attrs}");
    let html = page.text().await.expect("html");
    assert!(html.contains("lang=\"it\"") && html.contains("Accedi"), "Italian");
    add_user(&app, "ann@shop.example", Role::Viewer).await;
    let res = http
        .post(format!("{}/login", app.base))
        .header("cookie", format!("__Host-kiln_login={value}"))
        .header("origin", "https://shop.example")
        .form(&[("email", "ann@shop.example"), ("password", PASSWORD), ("_csrf", &value)])
        .send()
        .await
        .expect("login");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, attrs) = set_cookie(res.headers(), "__Host-kiln_session").expect("a __Host- session cookie");
    assert!(attrs.contains("Secure") && attrs.contains("HttpOnly") && attrs.contains("SameSite=Lax"), "{attrs}");
}
