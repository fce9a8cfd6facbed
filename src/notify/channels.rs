//! The channels, each speaking its real protocol: SMTP (lettre), a Twilio-compatible Messages
//! API, the Telegram Bot API and Standard Webhooks. Each turns a stored message into one
//! attempt and classifies the answer.

use std::time::{Duration, SystemTime};

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart, SinglePart};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use super::config::{EmailConfig, TelegramConfig, TwilioConfig, WebhookConfig};
use super::outcome::{Outcome, from_http, parse_retry_after};
use super::smtp::Mailer;
use crate::standard_webhooks::{Secret, signature_header};

/// A stored email.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Email {
    /// Recipient address.
    pub to: String,
    /// Subject.
    pub subject: String,
    /// Plain text.
    pub text: String,
    /// HTML.
    pub html: String,
    /// Photo to embed inline (`cid:stage-photo`), if any.
    pub photo_id: Option<i64>,
    /// One-click unsubscribe URL, if the message is to a customer.
    pub unsubscribe_url: Option<String>,
}

/// A stored SMS or WhatsApp message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Text {
    /// E.164 number.
    pub to: String,
    /// Body.
    pub body: String,
    /// Public photo URL (WhatsApp only).
    pub media_url: Option<String>,
}

/// A stored Telegram message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Telegram {
    /// Chat id.
    pub chat_id: String,
    /// Text (the caption when there is a photo).
    pub text: String,
    /// Public photo URL.
    pub photo_url: Option<String>,
}

/// A stored webhook call.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Webhook {
    /// Endpoint name from the configuration.
    pub endpoint: String,
    /// JSON body, sent byte for byte on every attempt.
    pub body: String,
}

/// Sends `email` with the stable `message_id`; `photo` is the inline picture's JPEG.
pub async fn send_email(
    mailer: &Mailer,
    config: &EmailConfig,
    email: &Email,
    message_id: &str,
    photo: Option<Vec<u8>>,
) -> Outcome {
    let permanent = |detail: String| Outcome::Permanent { detail };
    let Ok(from) = config.from.parse::<Mailbox>() else {
        return permanent(format!("invalid From address `{}`", config.from));
    };
    let Ok(to) = email.to.parse::<Mailbox>() else {
        return permanent(format!("invalid address `{}`", email.to));
    };
    let mut builder =
        lettre::Message::builder().from(from).to(to).subject(&email.subject).message_id(Some(message_id.to_owned()));
    if let Some(url) = &email.unsubscribe_url {
        builder = builder
            .raw_header(HeaderValue::new(HeaderName::new_from_ascii_str("List-Unsubscribe"), format!("<{url}>")))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ));
    }
    let html = SinglePart::html(email.html.clone());
    let related = match photo {
        Some(bytes) => MultiPart::related().singlepart(html).singlepart(
            Attachment::new_inline("stage-photo".to_owned())
                .body(bytes, ContentType::parse("image/jpeg").unwrap_or(ContentType::TEXT_PLAIN)),
        ),
        None => MultiPart::related().singlepart(html),
    };
    let body = MultiPart::alternative().singlepart(SinglePart::plain(email.text.clone())).multipart(related);
    let message = match builder.multipart(body) {
        Ok(m) => m,
        Err(e) => return permanent(format!("cannot build the email: {e}")),
    };
    match mailer.send(&message).await {
        Ok(response) => Outcome::Sent {
            detail: format!("{} {}", response.code(), response.message().collect::<Vec<_>>().join(" ")),
        },
        Err(e) if e.is_permanent() => permanent(format!("SMTP: {e}")),
        Err(e) => Outcome::Retry { detail: format!("SMTP: {e}"), after: None },
    }
}

fn retry_after(res: &reqwest::Response) -> Option<Duration> {
    res.headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| parse_retry_after(v, SystemTime::now()))
}

fn network(e: &reqwest::Error) -> Outcome {
    Outcome::Retry { detail: format!("network: {e}"), after: None }
}

/// Sends an SMS (`whatsapp` false) or WhatsApp message through the Messages API.
pub async fn send_text(http: &reqwest::Client, config: &TwilioConfig, text: &Text, whatsapp: bool) -> Outcome {
    let from = if whatsapp { config.whatsapp_from.as_ref() } else { config.sms_from.as_ref() };
    let Some(from) = from else {
        return Outcome::Permanent { detail: "no sender number configured for this channel".to_owned() };
    };
    let (to, from) = if whatsapp {
        (format!("whatsapp:{}", text.to), format!("whatsapp:{from}"))
    } else {
        (text.to.clone(), from.clone())
    };
    let url =
        format!("{}/2010-04-01/Accounts/{}/Messages.json", config.base_url.trim_end_matches('/'), config.account_sid);
    let mut form = vec![("To", to), ("From", from), ("Body", text.body.clone())];
    if let Some(media) = text.media_url.as_ref().filter(|_| whatsapp) {
        form.push(("MediaUrl", media.clone()));
    }
    let res = http
        .post(url)
        .basic_auth(&config.account_sid, Some(config.auth_token.expose_secret()))
        .form(&form)
        .send()
        .await;
    let res = match res {
        Ok(res) => res,
        Err(e) => return network(&e),
    };
    let status = res.status().as_u16();
    let after = retry_after(&res);
    let body: serde_json::Value = res.json().await.unwrap_or_default();
    let detail = match (&body["sid"], &body["message"]) {
        (serde_json::Value::String(sid), _) => sid.clone(),
        (_, serde_json::Value::String(m)) => format!("{} (code {})", m, body["code"]),
        _ => body.to_string(),
    };
    from_http(status, after, detail)
}

/// Sends a Telegram message (`sendPhoto` with a caption when there is a photo).
pub async fn send_telegram(http: &reqwest::Client, config: &TelegramConfig, msg: &Telegram) -> Outcome {
    let base = format!("{}/bot{}", config.base_url.trim_end_matches('/'), config.bot_token.expose_secret());
    let (url, body) = match &msg.photo_url {
        Some(photo) => (
            format!("{base}/sendPhoto"),
            serde_json::json!({ "chat_id": msg.chat_id, "photo": photo, "caption": truncate(&msg.text, 1024) }),
        ),
        None => (
            format!("{base}/sendMessage"),
            serde_json::json!({ "chat_id": msg.chat_id, "text": truncate(&msg.text, 4096) }),
        ),
    };
    let res = match http.post(url).json(&body).send().await {
        Ok(res) => res,
        // The URL holds the bot token: never log reqwest's error with it.
        Err(e) => return network(&e.without_url()),
    };
    let status = res.status().as_u16();
    let header_after = retry_after(&res);
    let reply: serde_json::Value = res.json().await.unwrap_or_default();
    if reply["ok"] == true {
        return Outcome::Sent { detail: format!("message_id {}", reply["result"]["message_id"]) };
    }
    let after = reply["parameters"]["retry_after"].as_u64().map(Duration::from_secs).or(header_after);
    let code = reply["error_code"].as_u64().and_then(|c| u16::try_from(c).ok()).unwrap_or(status);
    let description = reply["description"].as_str().unwrap_or("no description").to_owned();
    from_http(if code < 300 { 502 } else { code }, after, description)
}

fn truncate(text: &str, max_chars: usize) -> String {
    text.chars().take(max_chars).collect()
}

/// Calls a webhook endpoint with Standard Webhooks headers; `id` is the same on every attempt.
pub async fn send_webhook(http: &reqwest::Client, endpoint: &WebhookConfig, id: &str, body: &str) -> Outcome {
    let secrets: Result<Vec<Secret>, String> =
        endpoint.secrets.iter().map(|s| Secret::parse(s.expose_secret())).collect();
    let secrets = match secrets {
        Ok(s) => s,
        Err(e) => return Outcome::Permanent { detail: format!("webhook secret: {e}") },
    };
    let timestamp = chrono::Utc::now().timestamp();
    let res = http
        .post(&endpoint.url)
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", timestamp.to_string())
        .header("webhook-signature", signature_header(&secrets, id, timestamp, body.as_bytes()))
        .body(body.to_owned())
        .send()
        .await;
    let res = match res {
        Ok(res) => res,
        Err(e) => return network(&e),
    };
    let status = res.status().as_u16();
    let after = retry_after(&res);
    let location = res.headers().get(reqwest::header::LOCATION).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let text = res.text().await.unwrap_or_default();
    let detail = location.map_or_else(|| truncate(&text, 200), |l| format!("Location: {l}"));
    from_http(status, after, detail)
}
