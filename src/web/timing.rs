//! `Server-Timing` on the answers of the API and the dashboard: how long kiln itself took, for
//! browsers' dev tools and for the benchmarks, whose targets are server time.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;

/// Adds `Server-Timing: app;dur=<ms>` (the time to the response's head) to the answer.
pub async fn server_timing(req: Request, next: Next) -> Response {
    let started = std::time::Instant::now();
    let mut res = next.run(req).await;
    let took = format!("app;dur={:.1}", started.elapsed().as_secs_f64() * 1000.0);
    if let Ok(value) = HeaderValue::from_str(&took) {
        res.headers_mut().insert("server-timing", value);
    }
    res
}
