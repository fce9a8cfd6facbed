//! The SMTP client. lettre speaks the protocol; for plain and STARTTLS connections kiln opens
//! the sockets itself, with `TCP_NODELAY`, and keeps a few idle ones for reuse.
//!
//! Why: lettre writes a message's closing `.` line separately from its body, and with Nagle's
//! algorithm on (lettre 0.11.23 never turns it off) that five-byte write waits for the
//! server's delayed ACK, 40 ms on Linux, for every message. Implicit TLS (port 465) still goes
//! through lettre's own pool, since lettre cannot be handed a TLS stream opened elsewhere.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use lettre::address::Envelope;
use lettre::transport::smtp::authentication::{Credentials, DEFAULT_MECHANISMS};
use lettre::transport::smtp::client::{AsyncSmtpConnection, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::transport::smtp::response::Response;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use secrecy::ExposeSecret;

use super::config::{EmailConfig, SmtpSecurity};

/// Idle connections kept for reuse.
const MAX_IDLE: usize = 16;
/// An idle connection older than this is closed rather than reused (servers drop idle
/// sessions after a minute or so).
const IDLE_FOR: Duration = Duration::from_secs(30);

/// Why a message was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The server refused it, or the conversation failed.
    #[error("{0}")]
    Smtp(#[from] lettre::transport::smtp::Error),
    /// Could not reach the server.
    #[error("cannot connect to {0}: {1}")]
    Connect(String, std::io::Error),
    /// The server did not answer in time.
    #[error("no answer within {0:?}")]
    Timeout(Duration),
}

impl SendError {
    /// Whether trying again cannot help (the server answered 5xx).
    pub fn is_permanent(&self) -> bool {
        matches!(self, SendError::Smtp(e) if e.is_permanent())
    }
}

/// Sends email over SMTP as configured.
#[derive(Debug)]
pub struct Mailer {
    inner: Inner,
}

#[derive(Debug)]
enum Inner {
    Direct(Box<Direct>),
    Pooled(AsyncSmtpTransport<Tokio1Executor>),
}

struct Direct {
    host: String,
    port: u16,
    starttls: Option<TlsParameters>,
    credentials: Option<Credentials>,
    timeout: Duration,
    hello: ClientId,
    idle: Mutex<Vec<(AsyncSmtpConnection, Instant)>>,
}

impl std::fmt::Debug for Direct {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Direct").field("host", &self.host).field("port", &self.port).finish_non_exhaustive()
    }
}

impl Mailer {
    /// Prepares the client (no connection is made until the first message).
    pub fn new(config: &EmailConfig) -> anyhow::Result<Self> {
        let credentials = match (&config.username, &config.password) {
            (Some(user), Some(password)) => Some(Credentials::new(user.clone(), password.expose_secret().to_owned())),
            _ => None,
        };
        let (port, starttls) = match config.security {
            SmtpSecurity::None => (config.port.unwrap_or(25), None),
            SmtpSecurity::Starttls => (config.port.unwrap_or(587), Some(TlsParameters::new(config.host.clone())?)),
            SmtpSecurity::Tls => {
                let mut builder = AsyncSmtpTransport::<Tokio1Executor>::relay(&config.host)?
                    .port(config.port.unwrap_or(465))
                    .timeout(Some(config.timeout));
                if let Some(credentials) = credentials {
                    builder = builder.credentials(credentials);
                }
                return Ok(Self { inner: Inner::Pooled(builder.build()) });
            }
        };
        Ok(Self {
            inner: Inner::Direct(Box::new(Direct {
                host: config.host.clone(),
                port,
                starttls,
                credentials,
                timeout: config.timeout,
                hello: ClientId::default(),
                idle: Mutex::default(),
            })),
        })
    }

    /// Sends one message; the response is the server's acceptance.
    pub async fn send(&self, message: &lettre::Message) -> Result<Response, SendError> {
        match &self.inner {
            Inner::Pooled(transport) => Ok(transport.send(message.clone()).await?),
            Inner::Direct(direct) => direct.send(message.envelope(), &message.formatted()).await,
        }
    }
}

impl Direct {
    fn idle(&self) -> std::sync::MutexGuard<'_, Vec<(AsyncSmtpConnection, Instant)>> {
        self.idle.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    async fn send(&self, envelope: &Envelope, bytes: &[u8]) -> Result<Response, SendError> {
        let reused = loop {
            let Some((conn, since)) = self.idle().pop() else { break None };
            if since.elapsed() < IDLE_FOR {
                break Some(conn);
            }
            // Dropping closes the socket; the server has likely given up on it anyway.
        };
        if let Some(conn) = reused {
            match self.send_on(conn, envelope, bytes).await {
                // A connection that went stale while idle fails before the server says anything
                // about the message; try once more on a fresh one.
                Err(SendError::Smtp(e)) if !(e.is_transient() || e.is_permanent()) => {
                    tracing::debug!(error = %e, "idle SMTP connection failed; reconnecting");
                }
                other => return other,
            }
        }
        let conn = tokio::time::timeout(self.timeout, self.connect())
            .await
            .map_err(|_| SendError::Timeout(self.timeout))??;
        self.send_on(conn, envelope, bytes).await
    }

    async fn send_on(
        &self,
        mut conn: AsyncSmtpConnection,
        envelope: &Envelope,
        bytes: &[u8],
    ) -> Result<Response, SendError> {
        let response = tokio::time::timeout(self.timeout, conn.send(envelope, bytes))
            .await
            .map_err(|_| SendError::Timeout(self.timeout))??;
        if !conn.has_broken() {
            let mut idle = self.idle();
            if idle.len() < MAX_IDLE {
                idle.push((conn, Instant::now()));
            }
        }
        Ok(response)
    }

    async fn connect(&self) -> Result<AsyncSmtpConnection, SendError> {
        let address = format!("{}:{}", self.host, self.port);
        let stream =
            tokio::net::TcpStream::connect(&address).await.map_err(|e| SendError::Connect(address.clone(), e))?;
        stream.set_nodelay(true).map_err(|e| SendError::Connect(address.clone(), e))?;
        let mut conn = AsyncSmtpConnection::connect_with_transport(Box::new(stream), &self.hello).await?;
        if let Some(tls) = &self.starttls {
            conn.starttls(tls.clone(), &self.hello).await?;
        }
        if let Some(credentials) = &self.credentials {
            conn.auth(DEFAULT_MECHANISMS, credentials).await?;
        }
        Ok(conn)
    }
}
