//! The `[notify]` settings: which channels are on, how to reach them, and how the outbox
//! worker retries.

use std::time::Duration;

use secrecy::SecretString;
use serde::Deserialize;

/// Messages to customers and staff.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// Folder of message templates overriding the built-in ones (see `docs/notifications.md`).
    pub templates_dir: Option<std::path::PathBuf>,
    /// Email over SMTP; off when absent.
    pub email: Option<EmailConfig>,
    /// SMS and WhatsApp through a Twilio-compatible API; off when absent.
    pub twilio: Option<TwilioConfig>,
    /// Telegram bot; off when absent.
    pub telegram: Option<TelegramConfig>,
    /// Outbound webhooks (Standard Webhooks), any number.
    pub webhooks: Vec<WebhookConfig>,
    /// Who on staff hears about new orders, and how.
    pub staff: StaffConfig,
    /// The outbox worker.
    pub worker: WorkerConfig,
}

/// How to talk to the SMTP server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpSecurity {
    /// Plain SMTP; only for a relay on the same host or in tests.
    None,
    /// Plain connection upgraded with STARTTLS (usually port 587).
    Starttls,
    /// TLS from the first byte (usually port 465).
    Tls,
}

/// Email over SMTP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmailConfig {
    /// SMTP server host.
    pub host: String,
    /// Port; defaults to 587 (STARTTLS), 465 (TLS) or 25 (none).
    pub port: Option<u16>,
    /// `starttls` (default), `tls` or `none`.
    #[serde(default = "default_security")]
    pub security: SmtpSecurity,
    /// Login, if the server wants one.
    pub username: Option<String>,
    /// Password for `username`.
    pub password: Option<SecretString>,
    /// The From address, e.g. `Marmi Rossi <orders@marmirossi.it>`.
    pub from: String,
    /// Give up on an SMTP conversation after this long.
    #[serde(default = "default_timeout", with = "humantime_serde_compat")]
    pub timeout: Duration,
}

fn default_security() -> SmtpSecurity {
    SmtpSecurity::Starttls
}

fn default_timeout() -> Duration {
    Duration::from_secs(20)
}

/// A Twilio-compatible Messages API.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TwilioConfig {
    /// API base, `https://api.twilio.com` unless a compatible provider is used.
    #[serde(default = "default_twilio")]
    pub base_url: String,
    /// Account SID (also the basic-auth user).
    pub account_sid: String,
    /// Auth token (basic-auth password).
    pub auth_token: SecretString,
    /// Sender number for SMS (E.164); SMS is off without it.
    pub sms_from: Option<String>,
    /// Sender number for WhatsApp (E.164, without the `whatsapp:` prefix); off without it.
    pub whatsapp_from: Option<String>,
}

fn default_twilio() -> String {
    "https://api.twilio.com".to_owned()
}

/// A Telegram bot.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// API base, `https://api.telegram.org` by default.
    #[serde(default = "default_telegram")]
    pub base_url: String,
    /// The bot token from @BotFather.
    pub bot_token: SecretString,
}

fn default_telegram() -> String {
    "https://api.telegram.org".to_owned()
}

/// One outbound webhook endpoint.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// A name for logs and the delivery log, e.g. `zapier`.
    pub name: String,
    /// Where to POST.
    pub url: String,
    /// Signing secrets `whsec_<base64>`; during a rotation list the new one and the old one,
    /// and every request carries a signature for each.
    pub secrets: Vec<SecretString>,
}

/// Staff notifications.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaffConfig {
    /// Email address for staff messages.
    pub email: Option<String>,
    /// Phone for staff SMS.
    pub phone: Option<String>,
    /// Telegram chat id for staff messages.
    pub telegram_chat_id: Option<String>,
}

/// The outbox worker.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerConfig {
    /// Run the worker inside `kiln serve` (run `kiln worker` separately when false).
    pub enabled: bool,
    /// Jobs claimed per round.
    pub batch: u32,
    /// Messages in flight at once.
    pub concurrency: usize,
    /// How often to look for due jobs when idle.
    #[serde(with = "humantime_serde_compat")]
    pub poll_interval: Duration,
    /// How long a claimed job is reserved; after that a crashed worker's job is taken again.
    #[serde(with = "humantime_serde_compat")]
    pub lease: Duration,
    /// First retry delay; doubled at each attempt, with jitter.
    #[serde(with = "humantime_serde_compat")]
    pub backoff: Duration,
    /// Longest delay between attempts.
    #[serde(with = "humantime_serde_compat")]
    pub max_backoff: Duration,
    /// Attempts before a job is dead.
    pub max_attempts: u32,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            batch: 64,
            concurrency: 32,
            poll_interval: Duration::from_millis(500),
            lease: Duration::from_secs(120),
            backoff: Duration::from_secs(15),
            max_backoff: Duration::from_secs(3600),
            max_attempts: 10,
        }
    }
}

/// The shortest lease the worker can keep renewed.
pub const MIN_LEASE: Duration = Duration::from_secs(3);

/// Durations written like `30s` or `5m` in the config file.
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(de: D) -> Result<Duration, D::Error> {
        let text = String::deserialize(de)?;
        humantime::parse_duration(&text).map_err(serde::de::Error::custom)
    }
}

impl NotifyConfig {
    /// Checks the settings together; the error names the setting.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        for hook in &self.webhooks {
            if !(hook.url.starts_with("https://") || hook.url.starts_with("http://")) {
                return Err(("notify.webhooks.url", format!("`{}` must start with https:// or http://", hook.url)));
            }
            if hook.secrets.is_empty() {
                return Err(("notify.webhooks.secrets", format!("webhook `{}` needs at least one secret", hook.name)));
            }
            for secret in &hook.secrets {
                if let Err(e) = crate::standard_webhooks::Secret::parse(secrecy::ExposeSecret::expose_secret(secret)) {
                    return Err(("notify.webhooks.secrets", format!("webhook `{}`: {e}", hook.name)));
                }
            }
        }
        if let Some(email) = self.email.as_ref().filter(|e| e.from.parse::<lettre::message::Mailbox>().is_err()) {
            return Err(("notify.email.from", format!("`{}` is not an email address", email.from)));
        }
        let w = &self.worker;
        if w.batch == 0 || w.concurrency == 0 || w.max_attempts == 0 {
            return Err(("notify.worker", "batch, concurrency and max_attempts must be at least 1".to_owned()));
        }
        // The lease is renewed every third of it, and a renewal must finish within that third
        // (or the job is abandoned before another worker could take it): shorter leases leave
        // no room for a database round trip under load.
        if w.lease < MIN_LEASE {
            return Err(("notify.worker.lease", format!("must be at least {}s", MIN_LEASE.as_secs())));
        }
        if w.poll_interval.is_zero() || w.poll_interval >= w.lease {
            return Err(("notify.worker.poll_interval", "must be more than zero and less than the lease".to_owned()));
        }
        Ok(())
    }
}
