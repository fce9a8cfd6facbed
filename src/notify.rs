//! Notifications: the outbox worker turns the jobs a change enqueued into messages — email,
//! SMS, WhatsApp, Telegram and signed webhooks — rendered from the shop's templates, sent
//! through each channel's real protocol, retried with backoff, and logged per attempt.

pub mod channels;
pub mod config;
pub mod lease;
pub mod outcome;
pub mod smtp;
pub mod templates;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::domain::history;
use crate::domain::model::{Event, Order, jobs};
use crate::domain::order::Channel;
use crate::domain::transition::EventKind;
use crate::i18n::Catalog;
use crate::intake::shopify_writeback;
use crate::service::{PhotoSize, Service};
use crate::store::deliveries::{self, Job, NewDelivery, Settle, Status};
use crate::store::{events, now_ms, orders};
use crate::view::{self, ShopView};
use channels::{Email, Telegram, Text, Webhook};
use lease::Leases;
use outcome::{Outcome, backoff};
use templates::{Part, Templates};

/// Everything the worker needs; cheap to share.
#[derive(Debug)]
pub struct Notifier {
    service: Service,
    templates: Templates,
    catalog: Catalog,
    shop: ShopView,
    http: reqwest::Client,
    smtp: Option<smtp::Mailer>,
    node: String,
}

/// Why an event job could not be expanded yet.
type ComposeResult = Result<Vec<NewDelivery>, Outcome>;

impl Notifier {
    /// Compiles the templates (a bad one fails here, at start-up, with file and line) and
    /// prepares the channels the configuration turns on.
    pub fn new(service: Service) -> anyhow::Result<Arc<Self>> {
        let config = service.config();
        let templates =
            Templates::load(config.notify.templates_dir.as_deref(), service.workflows(), &config.shop.language)
                .map_err(|e| anyhow::anyhow!("message template {e}"))?;
        let smtp = config.notify.email.as_ref().map(smtp::Mailer::new).transpose()?;
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(15))
            .user_agent(concat!("kiln/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let node = config.base_url.host_str().unwrap_or("kiln.local").to_owned();
        Ok(Arc::new(Self {
            shop: ShopView::new(&config.shop),
            catalog: Catalog::load()?,
            templates,
            smtp,
            http,
            node,
            service,
        }))
    }

    /// Runs the worker until `stop` is cancelled.
    ///
    /// Each result is recorded as soon as it is known, while the rest of its batch is still
    /// being sent; the last results of a batch are recorded while the next batch is claimed
    /// and sent (never more than one batch waits to be recorded).
    pub async fn run(self: Arc<Self>, stop: CancellationToken) {
        let w = self.service.config().notify.worker.clone();
        tracing::info!(concurrency = w.concurrency, "outbox worker started");
        let mut recording: Option<tokio::task::JoinHandle<()>> = None;
        loop {
            if stop.is_cancelled() {
                break;
            }
            let claimed_at = now_ms();
            let jobs = match self.claim(claimed_at).await {
                Ok(jobs) => jobs,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim outbox jobs");
                    Vec::new()
                }
            };
            if jobs.is_empty() {
                // The batch being recorded may expand into new jobs, or unblock the next
                // message of an order: look again once it is in.
                if let Some(previous) = recording.take() {
                    Self::finish(previous).await;
                    continue;
                }
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = self.service.outbox_signal().notified() => {}
                    () = tokio::time::sleep(w.poll_interval) => {}
                }
                continue;
            }
            let tail = self.send_batch(jobs, claimed_at).await;
            if let Some(previous) = recording.replace(tail) {
                Self::finish(previous).await;
            }
        }
        if let Some(previous) = recording {
            Self::finish(previous).await;
        }
        tracing::info!("outbox worker stopped");
    }

    async fn finish(recording: tokio::task::JoinHandle<()>) {
        if let Err(e) = recording.await {
            tracing::error!(error = %e, "recording outbox results failed");
        }
    }

    /// Processes every due job once (for tests and `kiln worker --once`); returns how many.
    pub async fn drain_once(self: &Arc<Self>) -> anyhow::Result<usize> {
        let claimed_at = now_ms();
        let jobs = self.claim(claimed_at).await?;
        let n = jobs.len();
        if n > 0 {
            Self::finish(self.send_batch(jobs, claimed_at).await).await;
        }
        Ok(n)
    }

    /// Claims the next batch of due jobs for one lease.
    async fn claim(&self, now: i64) -> Result<Vec<Job>, sqlx::Error> {
        let w = &self.service.config().notify.worker;
        let lease = i64::try_from(w.lease.as_millis()).unwrap_or(i64::MAX / 4);
        deliveries::claim(self.service.db(), now, lease, i64::from(w.batch)).await
    }

    /// Sends a claimed batch, up to `concurrency` messages at a time, under leases kept alive
    /// until every result is recorded; returns once every job is handled, with the recording
    /// of the last results still running in the returned task.
    async fn send_batch(self: &Arc<Self>, jobs: Vec<Job>, claimed_at: i64) -> tokio::task::JoinHandle<()> {
        let w = &self.service.config().notify.worker;
        let leases = Arc::new(Leases::new(self.service.db().clone(), w.lease, claimed_at, &jobs));
        let (results, rx) = tokio::sync::mpsc::unbounded_channel();
        let stop_keeping = CancellationToken::new();
        let keeper = tokio::spawn({
            let (leases, stop) = (leases.clone(), stop_keeping.clone());
            async move { leases.keep(stop).await }
        });
        let recorder = tokio::spawn({
            let (me, leases) = (self.clone(), leases.clone());
            async move {
                me.record_as_they_come(rx, &leases).await;
                stop_keeping.cancel();
                let _ = keeper.await;
            }
        });
        futures::stream::iter(jobs)
            .map(|job| self.handle_leased(job, &leases))
            .buffer_unordered(w.concurrency)
            .for_each(|settled| {
                if let Some(settled) = settled {
                    // The recorder only stops once this sender is dropped.
                    let _ = results.send(settled);
                }
                std::future::ready(())
            })
            .await;
        drop(results);
        recorder
    }

    /// Handles `job` while its lease holds: `None` if another worker took it over (nothing
    /// may be recorded then), a retry if the lease could not be renewed before it ran out.
    async fn handle_leased(&self, job: Job, leases: &Leases) -> Option<Settle> {
        let id = job.id;
        let work = self.handle(job.clone());
        tokio::pin!(work);
        loop {
            let left = leases.deadline(id)? - now_ms();
            if left <= 0 {
                let detail = "not sent: the worker could not renew its lease in time".to_owned();
                return Some(self.settle(job, Outcome::Retry { detail, after: None }));
            }
            tokio::select! {
                settled = &mut work => return Some(settled),
                () = tokio::time::sleep(Duration::from_millis(left.unsigned_abs())) => {}
            }
        }
    }

    /// Records results as they arrive, together when several are ready at once.
    async fn record_as_they_come(&self, mut rx: tokio::sync::mpsc::UnboundedReceiver<Settle>, leases: &Leases) {
        let mut ready = Vec::new();
        while let Some(first) = rx.recv().await {
            ready.push(first);
            while ready.len() < 256 {
                match rx.try_recv() {
                    Ok(more) => ready.push(more),
                    Err(_) => break,
                }
            }
            self.record(&ready).await;
            leases.release(ready.iter().map(|s| s.job().id));
            ready.clear();
        }
    }

    /// Records results in one transaction. A crash before that commit leaves the jobs
    /// claimed; when their lease runs out they are taken again and re-sent under the same
    /// identity.
    async fn record(&self, results: &[Settle]) {
        // New deliveries are due now, and a recorded message may let the next of its order go.
        match deliveries::settle(self.service.db(), results, now_ms()).await {
            Ok(_) => self.service.outbox_signal().notify_one(),
            Err(e) => tracing::warn!(error = %e, jobs = results.len(), "cannot record outbox results"),
        }
    }

    async fn handle(&self, job: Job) -> Settle {
        let outcome = match job.kind.as_str() {
            "deliver" => self.deliver(&job).await,
            kind => match self.compose(kind, &job).await {
                Ok(deliveries) => return Settle::Expand { job, deliveries },
                Err(outcome) => outcome,
            },
        };
        self.settle(job, outcome)
    }

    /// The job's new state after an attempt that came to `outcome`.
    fn settle(&self, job: Job, outcome: Outcome) -> Settle {
        let w = &self.service.config().notify.worker;
        let now = now_ms();
        let attempts = u32::try_from(job.attempts).unwrap_or(u32::MAX);
        let (status, run_at_ms, detail) = match outcome {
            Outcome::Sent { detail } => (Status::Sent, now, detail),
            Outcome::Skipped { detail } => (Status::Skipped, now, detail),
            Outcome::Permanent { detail } => (Status::Dead, now, detail),
            Outcome::Retry { detail, .. } if attempts >= w.max_attempts => {
                (Status::Dead, now, format!("gave up after {attempts} attempts: {detail}"))
            }
            Outcome::Retry { detail, after } => {
                let wait = backoff(attempts, w.backoff, w.max_backoff, after, rand::random::<f64>());
                (Status::Retrying, now + i64::try_from(wait.as_millis()).unwrap_or(i64::MAX / 4), detail)
            }
        };
        match status {
            Status::Dead => tracing::warn!(job = job.id, channel = ?job.channel, %detail, "message is dead"),
            Status::Retrying => {
                tracing::info!(job = job.id, channel = ?job.channel, %detail, "message will be retried")
            }
            _ => tracing::debug!(job = job.id, channel = ?job.channel, "message done"),
        }
        Settle::Attempt { job, status, run_at_ms, detail }
    }

    /// The stable identity of a message: the same on every attempt, whatever the worker, in
    /// RFC 5322's `<id-left@id-right>` form (lettre writes the header value as given).
    fn message_id(&self, job: &Job) -> String {
        format!("<kiln.{}.{}@{}>", job.id, job.created_at, self.node)
    }

    async fn deliver(&self, job: &Job) -> Outcome {
        let config = &self.service.config().notify;
        let bad = |e: serde_json::Error| Outcome::Permanent { detail: format!("stored message is unreadable: {e}") };
        let payload: Value = match serde_json::from_str(&job.payload) {
            Ok(v) => v,
            Err(e) => return bad(e),
        };
        // The customer may have opted out since the message was queued.
        if let Some(scopes) = payload.get("opt_out_scopes").and_then(Value::as_array) {
            let scopes: Vec<String> = scopes.iter().filter_map(|s| s.as_str().map(str::to_owned)).collect();
            match deliveries::opted_out(self.service.db(), &scopes).await {
                Ok(found) if !found.is_empty() => {
                    return Outcome::Skipped { detail: format!("opted out ({})", found.join(", ")) };
                }
                Ok(_) => {}
                Err(e) => return Outcome::Retry { detail: format!("database: {e}"), after: None },
            }
        }
        let message = &payload["message"];
        match job.channel.as_deref() {
            Some("email") => {
                let (Some(smtp), Some(email_config)) = (&self.smtp, &config.email) else {
                    return Outcome::Permanent { detail: "email is not configured".to_owned() };
                };
                let email: Email = match serde_json::from_value(message.clone()) {
                    Ok(e) => e,
                    Err(e) => return bad(e),
                };
                let photo = match email.photo_id {
                    Some(id) => self.photo_jpeg(id).await,
                    None => None,
                };
                channels::send_email(smtp, email_config, &email, &self.message_id(job), photo).await
            }
            Some(channel @ ("sms" | "whatsapp")) => {
                let Some(twilio) = &config.twilio else {
                    return Outcome::Permanent { detail: "SMS and WhatsApp are not configured".to_owned() };
                };
                match serde_json::from_value::<Text>(message.clone()) {
                    Ok(text) => channels::send_text(&self.http, twilio, &text, channel == "whatsapp").await,
                    Err(e) => bad(e),
                }
            }
            Some("telegram") => {
                let Some(telegram) = &config.telegram else {
                    return Outcome::Permanent { detail: "Telegram is not configured".to_owned() };
                };
                match serde_json::from_value::<Telegram>(message.clone()) {
                    Ok(msg) => channels::send_telegram(&self.http, telegram, &msg).await,
                    Err(e) => bad(e),
                }
            }
            Some(shopify_writeback::CHANNEL) => {
                shopify_writeback::send(&self.http, self.service.config().intake.shopify.as_ref(), message).await
            }
            Some("webhook") => {
                let hook: Webhook = match serde_json::from_value(message.clone()) {
                    Ok(h) => h,
                    Err(e) => return bad(e),
                };
                let Some(endpoint) = config.webhooks.iter().find(|w| w.name == hook.endpoint) else {
                    return Outcome::Permanent {
                        detail: format!("webhook `{}` is no longer configured", hook.endpoint),
                    };
                };
                let id = format!("msg_kiln_{}_{}", job.id, job.created_at);
                channels::send_webhook(&self.http, endpoint, &id, &hook.body).await
            }
            other => Outcome::Permanent { detail: format!("unknown channel {other:?}") },
        }
    }

    async fn photo_jpeg(&self, id: i64) -> Option<Vec<u8>> {
        let photo = self.service.photo(id).await.ok().flatten()?;
        self.service.photo_bytes(&photo, PhotoSize::Web).await.ok().flatten().map(|b| b.to_vec())
    }

    async fn compose(&self, kind: &str, job: &Job) -> ComposeResult {
        let db = self.service.db();
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry { detail: format!("database: {e}"), after: None };
        let (Some(order_id), Some(event_id)) = (job.order_id, job.event_id) else {
            return Err(Outcome::Permanent { detail: "job names no order or event".to_owned() });
        };
        let order = orders::by_id(db, order_id).await.map_err(|e| retry(&e))?;
        let event = events::by_id(db, event_id).await.map_err(|e| retry(&e))?;
        let (Some(mut order), Some(event)) = (order, event) else {
            return Err(Outcome::Permanent { detail: "the order or event is gone".to_owned() });
        };
        // Every message says what was true when its event happened, however late it is sent.
        let log = events::for_order(db, order_id, false).await.map_err(|e| retry(&e))?;
        let upto: Vec<Event> = log.into_iter().filter(|e| e.id <= event.id).collect();
        order.state = history::state_after(self.service.workflows().get(&order.workflow), &upto, &order.state);
        match kind {
            jobs::PUBLISH_EVENT => Ok(self.publish(&order, &event).await),
            jobs::NOTIFY_CUSTOMER => self.customer(&order, &event).await,
            jobs::NOTIFY_STAFF => self.staff(&order, &event).await,
            other => Err(Outcome::Permanent { detail: format!("unknown job kind `{other}`") }),
        }
    }

    async fn publish(&self, order: &Order, event: &Event) -> Vec<NewDelivery> {
        let hooks = &self.service.config().notify.webhooks;
        let mut out = self.shopify_write_back(order, event).await;
        if hooks.is_empty() {
            return out;
        }
        let tracking_url = self.service.tracking_url(order.id).await.ok().flatten();
        let body = json!({
            "type": format!("order.{}", event.kind),
            "timestamp": event.created_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "data": {
                "event_id": event.id,
                "order": order.reference.to_string(),
                "workflow": order.workflow,
                "stage": order.state.stage,
                "status": order.state.status.to_string(),
                "priority": order.state.priority.to_string(),
                "from_stage": event.from_stage,
                "to_stage": event.to_stage,
                "note": event.note,
                "visibility": event.visibility.to_string(),
                "actor": event.actor,
                "source": event.source.to_string(),
                "photo_ids": event.photo_ids,
                "tracking_url": tracking_url,
            }
        })
        .to_string();
        out.extend(hooks.iter().map(|h| NewDelivery {
            channel: "webhook".to_owned(),
            recipient: h.name.clone(),
            payload: json!({ "message": Webhook { endpoint: h.name.clone(), body: body.clone() } }).to_string(),
            skipped: None,
        }));
        out
    }

    /// The stage write-back to Shopify an event causes, if any (see `intake::shopify_writeback`).
    async fn shopify_write_back(&self, order: &Order, event: &Event) -> Vec<NewDelivery> {
        let Some(config) = &self.service.config().intake.shopify else {
            return Vec::new();
        };
        // Most orders did not come from Shopify: no reads for them.
        if config.metafield.is_none() || order.external_ids.shopify.is_none() || event.to_stage.is_none() {
            return Vec::new();
        }
        let stage = event.to_stage.as_deref().unwrap_or_default();
        let label = self
            .service
            .workflows()
            .get(&order.workflow)
            .and_then(|wf| wf.stage(stage))
            .map(|s| s.wording.label.clone());
        let url = self.service.tracking_url(order.id).await.ok().flatten();
        let label = label.unwrap_or_else(|| stage.to_owned());
        match shopify_writeback::message(config, order, event, &label, url.as_deref()) {
            Some(message) => vec![NewDelivery {
                channel: shopify_writeback::CHANNEL.to_owned(),
                recipient: "metafield".to_owned(),
                payload: json!({ "message": message }).to_string(),
                skipped: None,
            }],
            None => Vec::new(),
        }
    }

    /// The template variables for `event` of `order` (see `docs/notifications.md`).
    async fn context(&self, order: &Order, event: &Event, lang: &str) -> Result<(Value, Option<i64>), Outcome> {
        let retry = |e: &dyn std::fmt::Display| Outcome::Retry { detail: format!("{e}"), after: None };
        let snapshot = self.service.track_snapshot(order.id).await.map_err(|e| retry(&e))?;
        let tracking_url = self.service.tracking_url(order.id).await.map_err(|e| retry(&e))?;
        let (Some(snapshot), Some(tracking_url)) = (snapshot, tracking_url) else {
            return Err(Outcome::Skipped { detail: "the order has no active tracking link".to_owned() });
        };
        let wf = self
            .service
            .workflows()
            .get(&order.workflow)
            .ok_or_else(|| Outcome::Permanent { detail: format!("workflow `{}` is not loaded", order.workflow) })?;
        let bundle = self.catalog.pick([lang, self.service.config().shop.language.as_str()]);
        let tz = order
            .customer
            .timezone
            .map(|z| z.0)
            .or_else(|| self.service.config().shop.timezone.parse().ok())
            .unwrap_or(chrono_tz::UTC);
        let photo_base = format!("{tracking_url}/photos/");
        let view = view::build(&snapshot, &photo_base, wf, &self.shop, &bundle, tz, chrono::Utc::now());
        let stage_key = event.to_stage.clone().unwrap_or_else(|| order.state.stage.clone());
        let stage = wf.stage(&stage_key).map(|s| s.text_for(bundle.language()).clone());
        let photo_id = event.photo_ids.iter().copied().find(|id| snapshot.photo(*id).is_some());
        let photo_url = photo_id.map(|id| format!("{photo_base}{id}/web"));
        let token = tracking_url.rsplit('/').next().unwrap_or_default().to_owned();
        // Entering an approval stage asks for the customer's answer: the link opens the page
        // at the proof. A reminder is a customer note sent by `approval-reminder`.
        let proof = wf.stage(&stage_key).is_some_and(|s| s.approval.is_some())
            && (event.kind == EventKind::Moved || event.actor == crate::service::REMINDER_ACTOR);
        let reminder = event.actor == crate::service::REMINDER_ACTOR;
        let tracking_url = if proof { format!("{tracking_url}#proof") } else { tracking_url };
        let ctx = json!({
            "shop": {
                "name": self.shop.name, "email": self.shop.email, "phone": self.shop.phone,
                "website": self.shop.website, "color": self.service.config().shop.color,
            },
            "customer": { "name": order.customer.name },
            "order": {
                "reference": order.reference.to_string(),
                "workflow": order.workflow,
                "priority": order.state.priority.to_string(),
                "items": view.items,
            },
            "stage": {
                "key": stage_key,
                "label": stage.as_ref().map(|s| s.label.clone()).unwrap_or_default(),
                "text": stage.as_ref().map(|s| s.text.clone()).unwrap_or_default(),
                "approval": proof,
            },
            "event": staff_event(Some(wf), event),
            "reminder": reminder,
            "note": event.note,
            "photo_url": photo_url,
            "photo_cid": photo_id.map(|_| "cid:stage-photo"),
            "tracking_url": tracking_url,
            "unsubscribe_url": self.service.config().public_url(&format!("u/{token}")),
            "eta": { "message": view.eta.message, "date": view.eta.date_text, "late": view.eta.late },
        });
        Ok((ctx, photo_id))
    }

    fn render(&self, part: Part, order: &Order, stage: &str, lang: &str, ctx: &Value) -> Result<String, Outcome> {
        self.templates
            .render(part, &order.workflow, stage, lang, ctx)
            .map_err(|e| Outcome::Permanent { detail: format!("template {e}") })
    }

    async fn customer(&self, order: &Order, event: &Event) -> ComposeResult {
        let c = &order.customer;
        let mut scopes = vec![format!("order:{}", order.id)];
        scopes.extend(c.email.as_ref().map(|e| format!("address:{}", e.as_str().to_lowercase())));
        scopes.extend(c.phone.as_ref().map(|p| format!("address:{}", p.as_str())));
        let retry = |e: sqlx::Error| Outcome::Retry { detail: format!("database: {e}"), after: None };
        let opted = deliveries::opted_out(self.service.db(), &scopes).await.map_err(retry)?;
        let skip = |channel: &str, recipient: &str, reason: String| NewDelivery {
            channel: channel.to_owned(),
            recipient: recipient.to_owned(),
            payload: "{}".to_owned(),
            skipped: Some(reason),
        };
        if opted.iter().any(|s| s.starts_with("order:")) {
            return Ok(vec![skip("none", &c.name, "the customer opted out of messages about this order".into())]);
        }
        let config = &self.service.config().notify;
        let preferred = if c.channels.is_empty() { vec![Channel::Email] } else { c.channels.clone() };
        let mut reasons = Vec::new();
        let mut chosen = None;
        for channel in preferred {
            let (on, address) = match channel {
                Channel::Email => (self.smtp.is_some(), c.email.as_ref().map(|e| e.as_str().to_owned())),
                Channel::Sms => (
                    config.twilio.as_ref().is_some_and(|t| t.sms_from.is_some()),
                    c.phone.as_ref().map(|p| p.as_str().to_owned()),
                ),
                Channel::Whatsapp => (
                    config.twilio.as_ref().is_some_and(|t| t.whatsapp_from.is_some()),
                    c.phone.as_ref().map(|p| p.as_str().to_owned()),
                ),
                Channel::Telegram => (config.telegram.is_some(), c.telegram_chat_id.clone()),
            };
            match (on, address) {
                (false, _) => reasons.push(format!("{channel} is off")),
                (true, None) => reasons.push(format!("no {channel} address")),
                (true, Some(a)) if opted.contains(&format!("address:{}", a.to_lowercase())) => {
                    reasons.push(format!("{a} opted out"));
                }
                (true, Some(a)) => {
                    chosen = Some((channel, a));
                    break;
                }
            }
        }
        let Some((channel, to)) = chosen else {
            return Ok(vec![skip("none", &c.name, format!("no channel possible: {}", reasons.join("; ")))]);
        };
        let lang = c.language.as_str();
        let (ctx, photo_id) = match self.context(order, event, lang).await {
            Ok(v) => v,
            Err(Outcome::Skipped { detail }) => return Ok(vec![skip(channel.as_str(), &to, detail)]),
            Err(e) => return Err(e),
        };
        let stage = ctx["stage"]["key"].as_str().unwrap_or_default().to_owned();
        let photo_url = ctx["photo_url"].as_str().map(str::to_owned);
        let message = match channel {
            Channel::Email => json!(Email {
                to: to.clone(),
                subject: self.render(Part::EmailSubject, order, &stage, lang, &ctx)?,
                text: self.render(Part::EmailText, order, &stage, lang, &ctx)?,
                html: self.render(Part::EmailHtml, order, &stage, lang, &ctx)?,
                photo_id,
                unsubscribe_url: ctx["unsubscribe_url"].as_str().map(str::to_owned),
            }),
            Channel::Sms => json!(Text {
                to: to.clone(),
                body: self.render(Part::Sms, order, &stage, lang, &ctx)?,
                media_url: None
            }),
            Channel::Whatsapp => json!(Text {
                to: to.clone(),
                body: self.render(Part::Whatsapp, order, &stage, lang, &ctx)?,
                media_url: photo_url.clone(),
            }),
            Channel::Telegram => json!(Telegram {
                chat_id: to.clone(),
                text: self.render(Part::Telegram, order, &stage, lang, &ctx)?,
                photo_url,
            }),
        };
        Ok(vec![NewDelivery {
            channel: channel.as_str().to_owned(),
            recipient: to,
            payload: json!({ "message": message, "opt_out_scopes": scopes }).to_string(),
            skipped: None,
        }])
    }

    async fn staff(&self, order: &Order, event: &Event) -> ComposeResult {
        // New orders when they become work (created, or paid for), and whatever the customer
        // does on their tracking page.
        if !matches!(event.kind, EventKind::Created | EventKind::Paid)
            && event.source != crate::domain::order::Source::Portal
        {
            return Ok(Vec::new());
        }
        let config = &self.service.config().notify;
        let lang = self.service.config().shop.language.clone();
        let (mut ctx, _) = match self.context(order, event, &lang).await {
            Ok(v) => v,
            Err(Outcome::Permanent { .. } | Outcome::Skipped { .. }) => {
                (templates::sample_context(&order.workflow, "", ""), None)
            }
            Err(e) => return Err(e),
        };
        ctx["order"]["reference"] = json!(order.reference.to_string());
        ctx["customer"]["name"] = json!(order.customer.name);
        ctx["event"] = staff_event(self.service.workflows().get(&order.workflow), event);
        ctx["note"] = json!(event.note);
        let subject = self.render(Part::StaffSubject, order, "", &lang, &ctx)?;
        let text = self.render(Part::StaffText, order, "", &lang, &ctx)?;
        let mut out = Vec::new();
        let staff = &config.staff;
        if let (Some(to), Some(_)) = (&staff.email, &self.smtp) {
            let email = Email {
                to: to.clone(),
                subject: subject.clone(),
                html: format!("<pre style=\"font-family:inherit\">{}</pre>", html_escape(&text)),
                text: text.clone(),
                photo_id: None,
                unsubscribe_url: None,
            };
            out.push(NewDelivery {
                channel: "email".into(),
                recipient: to.clone(),
                payload: json!({ "message": email }).to_string(),
                skipped: None,
            });
        }
        if let (Some(chat), Some(_)) = (&staff.telegram_chat_id, &config.telegram) {
            let msg = Telegram { chat_id: chat.clone(), text: text.clone(), photo_url: None };
            out.push(NewDelivery {
                channel: "telegram".into(),
                recipient: chat.clone(),
                payload: json!({ "message": msg }).to_string(),
                skipped: None,
            });
        }
        if let (Some(phone), Some(_)) = (&staff.phone, config.twilio.as_ref().and_then(|t| t.sms_from.as_ref())) {
            let msg = Text { to: phone.clone(), body: subject.clone(), media_url: None };
            out.push(NewDelivery {
                channel: "sms".into(),
                recipient: phone.clone(),
                payload: json!({ "message": msg }).to_string(),
                skipped: None,
            });
        }
        Ok(out)
    }
}

/// What the templates know of an event: its kind and source, what a hold that waits on the
/// customer needs from them, and for a customer's answer to a proof, whether it approved it
/// and the stages it moved between.
fn staff_event(wf: Option<&crate::domain::workflow::Workflow>, event: &Event) -> Value {
    let label = |key: &Option<String>| {
        key.as_deref().and_then(|k| wf.and_then(|w| w.stage(k))).map(|s| s.wording.label.clone()).unwrap_or_default()
    };
    let approval =
        event.from_stage.as_deref().and_then(|k| wf.and_then(|w| w.stage(k))).and_then(|s| s.approval.as_ref());
    json!({
        "kind": event.kind.to_string(),
        "source": event.source.to_string(),
        "answer": match approval {
            Some(a) if event.kind == EventKind::Moved && event.to_stage.as_deref() == Some(a.approve.as_str()) => "approved",
            Some(_) if event.kind == EventKind::Moved => "changes",
            _ => "",
        },
        "from_label": label(&event.from_stage),
        "to_label": label(&event.to_stage),
        "needs": event.customer_need().unwrap_or_default(),
    })
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;")
}
