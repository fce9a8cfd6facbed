//! Real protocol peers started by the tests: an SMTP server, and an HTTP server that plays a
//! provider (Twilio, Telegram, a webhook receiver) with scripted answers.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// A message the SMTP server accepted.
#[derive(Debug, Clone)]
pub struct Mail {
    /// Envelope recipients.
    pub rcpt: Vec<String>,
    /// The message as sent (RFC 5322), dot-stuffing undone.
    pub data: Vec<u8>,
}

/// A minimal SMTP server (RFC 5321: EHLO, MAIL, RCPT, DATA, RSET, NOOP, QUIT) that can be
/// stopped and started again on the same port.
pub struct SmtpServer {
    pub addr: SocketAddr,
    pub mails: Arc<Mutex<Vec<Mail>>>,
    task: Option<JoinHandle<()>>,
}

impl SmtpServer {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind smtp");
        let addr = listener.local_addr().expect("addr");
        let mut server = Self { addr, mails: Arc::default(), task: None };
        server.task = Some(tokio::spawn(serve_smtp(listener, server.mails.clone())));
        server
    }

    /// Stops accepting and drops open sessions (an outage).
    pub fn stop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }

    /// Listens again on the same port.
    pub async fn restart(&mut self) {
        self.stop();
        let listener = TcpListener::bind(self.addr).await.expect("rebind smtp");
        self.task = Some(tokio::spawn(serve_smtp(listener, self.mails.clone())));
    }

    pub fn received(&self) -> Vec<Mail> {
        self.mails.lock().expect("lock").clone()
    }

    /// How many mails arrived, without copying them.
    pub fn count(&self) -> usize {
        self.mails.lock().expect("lock").len()
    }

    /// Waits until at least `n` mails arrived.
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Mail> {
        let started = std::time::Instant::now();
        loop {
            let got = self.count();
            if got >= n {
                return self.received();
            }
            assert!(started.elapsed() < within, "only {got} of {n} mails arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn reply(w: &mut tokio::net::tcp::OwnedWriteHalf, text: &str) -> std::io::Result<()> {
    w.write_all(text.as_bytes()).await
}

async fn serve_smtp(listener: TcpListener, mails: Arc<Mutex<Vec<Mail>>>) {
    let mut sessions = tokio::task::JoinSet::new();
    while let Ok((stream, _)) = listener.accept().await {
        sessions.spawn(smtp_session(stream, mails.clone()));
    }
}

async fn smtp_session(stream: tokio::net::TcpStream, mails: Arc<Mutex<Vec<Mail>>>) {
    let (read, mut write) = stream.into_split();
    let mut lines = BufReader::new(read);
    if reply(&mut write, "220 kiln-test ESMTP ready\r\n").await.is_err() {
        return;
    }
    let mut rcpt = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        if lines.read_line(&mut line).await.unwrap_or(0) == 0 {
            return;
        }
        let upper = line.to_ascii_uppercase();
        let answer = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            "250-kiln-test\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n"
        } else if upper.starts_with("MAIL FROM") {
            rcpt.clear();
            "250 2.1.0 OK\r\n"
        } else if upper.starts_with("RCPT TO") {
            rcpt.push(line[8..].trim().trim_start_matches(':').trim().trim_matches(['<', '>']).to_owned());
            "250 2.1.5 OK\r\n"
        } else if upper.starts_with("DATA") {
            if reply(&mut write, "354 go ahead\r\n").await.is_err() {
                return;
            }
            let mut data = Vec::new();
            loop {
                let mut l = String::new();
                if lines.read_line(&mut l).await.unwrap_or(0) == 0 {
                    return;
                }
                if l == ".\r\n" {
                    break;
                }
                let l = l.strip_prefix('.').unwrap_or(&l);
                data.extend_from_slice(l.as_bytes());
            }
            mails.lock().expect("lock").push(Mail { rcpt: std::mem::take(&mut rcpt), data });
            "250 2.0.0 queued\r\n"
        } else if upper.starts_with("QUIT") {
            let _ = reply(&mut write, "221 bye\r\n").await;
            return;
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            "250 OK\r\n"
        } else {
            "502 not implemented\r\n"
        };
        if reply(&mut write, answer).await.is_err() {
            return;
        }
    }
}

/// A request an HTTP peer received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Request {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    pub fn form(&self) -> Vec<(String, String)> {
        url::form_urlencoded::parse(&self.body).into_owned().collect()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON body")
    }
}

/// One scripted answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    /// Bytes to answer instead of `body` (a photo).
    pub raw: Option<Vec<u8>>,
}

impl Answer {
    pub fn new(status: u16, body: impl Into<String>) -> Self {
        Self { status, headers: Vec::new(), body: body.into(), raw: None }
    }

    /// An answer of raw bytes with a content type.
    pub fn bytes(status: u16, content_type: &str, bytes: Vec<u8>) -> Self {
        Self { status, headers: vec![("content-type", content_type.to_owned())], body: String::new(), raw: Some(bytes) }
    }

    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }
}

type Default = Arc<dyn Fn(&Request) -> Answer + Send + Sync>;

#[derive(Clone)]
struct PeerState {
    requests: Arc<Mutex<Vec<Request>>>,
    hold: Arc<Mutex<Option<tokio::sync::watch::Receiver<bool>>>>,
    script: Arc<Mutex<VecDeque<Answer>>>,
    default: Default,
    delay: Arc<Mutex<Duration>>,
}

/// An HTTP server that records every request and answers from a script, then by default.
pub struct HttpPeer {
    pub base: String,
    state: PeerState,
    _task: JoinHandle<()>,
}

impl HttpPeer {
    pub async fn start(default: impl Fn(&Request) -> Answer + Send + Sync + 'static) -> Self {
        let state = PeerState {
            requests: Arc::default(),
            hold: Arc::default(),
            script: Arc::default(),
            default: Arc::new(default),
            delay: Arc::default(),
        };
        let router = axum::Router::new().fallback(handle).with_state(state.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind peer");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Self { base, state, _task: task }
    }

    /// Answers the next requests with these, in order.
    pub fn script(&self, answers: impl IntoIterator<Item = Answer>) {
        self.state.script.lock().expect("lock").extend(answers);
    }

    /// Records the next request at once but answers it only when `release` turns true.
    pub fn hold_next(&self, release: tokio::sync::watch::Receiver<bool>) {
        *self.state.hold.lock().expect("lock") = Some(release);
    }

    /// Takes this long over every answer from now on, like a slow receiver.
    pub fn delay(&self, delay: Duration) {
        *self.state.delay.lock().expect("lock") = delay;
    }

    pub fn requests(&self) -> Vec<Request> {
        self.state.requests.lock().expect("lock").clone()
    }

    /// How many requests arrived, without copying them.
    pub fn count(&self) -> usize {
        self.state.requests.lock().expect("lock").len()
    }

    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Request> {
        let started = std::time::Instant::now();
        loop {
            let got = self.count();
            if got >= n {
                return self.requests();
            }
            assert!(started.elapsed() < within, "only {got} of {n} requests arrived");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn handle(
    axum::extract::State(state): axum::extract::State<PeerState>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let request = Request { method, path: uri.path().to_owned(), query: uri.query().map(str::to_owned), headers, body };
    let answer = state.script.lock().expect("lock").pop_front().unwrap_or_else(|| (state.default)(&request));
    state.requests.lock().expect("lock").push(request);
    let delay = *state.delay.lock().expect("lock");
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let hold = state.hold.lock().expect("lock").take();
    if let Some(mut release) = hold {
        let _ = release.wait_for(|v| *v).await;
    }
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    let mut res = match answer.raw {
        Some(raw) => (status, raw).into_response(),
        None => (status, answer.body).into_response(),
    };
    for (name, value) in answer.headers {
        res.headers_mut().insert(name, value.parse().expect("header value"));
    }
    res.headers_mut().entry("content-type").or_insert("application/json".parse().expect("ct"));
    res
}

/// Verifies a Standard Webhooks request the way a receiver would: true if any `v1,` signature
/// in the header matches `secret` (`whsec_…`).
pub fn verify_webhook(secret: &str, id: &str, timestamp: &str, body: &[u8], header: &str) -> bool {
    use base64::Engine;
    use hmac::{KeyInit, Mac};
    let engine = base64::engine::general_purpose::STANDARD;
    let Some(key) = secret.strip_prefix("whsec_").and_then(|k| engine.decode(k).ok()) else {
        return false;
    };
    let signed = [id.as_bytes(), b".", timestamp.as_bytes(), b".", body].concat();
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).any(|sig| {
        let Ok(expected) = engine.decode(sig) else { return false };
        let mut mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).expect("any key length");
        mac.update(&signed);
        mac.verify_slice(&expected).is_ok()
    })
}
