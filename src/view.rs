//! What a tracking page shows, in the customer's language and time zone: the same structure
//! feeds the HTML page, its JSON twin and the messages the outbox worker renders.

use chrono::{DateTime, Datelike, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::ShopConfig;
use crate::domain::approval::{self, Proofs};
use crate::domain::eta::{Eta, EtaInput, Lateness, estimate};
use crate::domain::model::Event;
use crate::domain::order::{Priority, Source, Status};
use crate::domain::transition::EventKind;
use crate::domain::workflow::Workflow;
use crate::i18n::Bundle;
use crate::service::TrackSnapshot;

/// The shop, as the page presents it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ShopView {
    /// Name.
    pub name: String,
    /// Logo URL on this server, if configured.
    pub logo_url: Option<String>,
    /// Contact email.
    pub email: Option<String>,
    /// Contact phone.
    pub phone: Option<String>,
    /// Website.
    pub website: Option<String>,
    /// WhatsApp link (`https://wa.me/…`), when the shop takes messages there.
    pub whatsapp_url: Option<String>,
    /// Where finished orders are collected.
    pub pickup_address: Option<String>,
    /// When.
    pub pickup_hours: Option<String>,
}

impl ShopView {
    /// The public part of the shop configuration.
    pub fn new(shop: &ShopConfig) -> Self {
        Self {
            name: shop.name.clone(),
            logo_url: shop.logo.as_ref().map(|_| "/assets/logo".to_owned()),
            email: shop.email.clone(),
            phone: shop.phone.clone(),
            website: shop.website.clone(),
            whatsapp_url: shop
                .whatsapp
                .as_ref()
                .map(|n| format!("https://wa.me/{}", n.chars().filter(char::is_ascii_digit).collect::<String>())),
            pickup_address: shop.pickup_address.clone(),
            pickup_hours: shop.pickup_hours.clone(),
        }
    }
}

/// One stop on the route map.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StopView {
    /// Stage key.
    pub key: String,
    /// Label in the customer's language.
    pub label: String,
    /// `done`, `current` or `ahead`.
    pub state: &'static str,
    /// The state in words, for screen readers.
    pub state_text: String,
}

/// The stage the order is in.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StageView {
    /// Stage key.
    pub key: String,
    /// Label.
    pub label: String,
    /// What happens in it.
    pub text: String,
    /// "Now: …" headline.
    pub headline: String,
}

/// The estimate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EtaView {
    /// `expected`, `confirming`, `awaiting` (the customer's turn), `paused`, `done` or
    /// `cancelled`.
    pub state: &'static str,
    /// The expected time (RFC 3339), when there is one (the earliest, for a range).
    pub at: Option<String>,
    /// The end of the range, when the order runs behind its plan (RFC 3339).
    pub latest: Option<String>,
    /// The expected date in words.
    pub date_text: Option<String>,
    /// "in 12 days" as of rendering (pages refresh it in the browser).
    pub countdown_text: Option<String>,
    /// The main sentence.
    pub message: String,
    /// Lateness, honestly stated.
    pub late: Vec<String>,
}

/// A photo on the timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PhotoView {
    /// Full-size (web) URL.
    pub url: String,
    /// Thumbnail URL (up to 400 px).
    pub thumb_url: String,
    /// Small thumbnail URL (up to 224 px, for 112 px slots; the thumbnail for older photos).
    pub small_url: String,
    /// `srcset` of the thumbnail slots: the small and the thumbnail file with their widths.
    pub thumb_srcset: String,
    /// Alt text.
    pub alt: String,
    /// Full-size width in pixels.
    pub width: u32,
    /// Full-size height.
    pub height: u32,
    /// Thumbnail width, so the page does not jump as thumbnails load.
    pub thumb_width: u32,
    /// Thumbnail height.
    pub thumb_height: u32,
}

/// One entry of the timeline.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct EntryView {
    /// Event id.
    pub id: i64,
    /// When (RFC 3339).
    pub at: String,
    /// When, in the customer's zone and language.
    pub when: String,
    /// What happened.
    pub title: String,
    /// The shop's note.
    pub note: Option<String>,
    /// Photos.
    pub photos: Vec<PhotoView>,
}

/// A line item.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemView {
    /// What it is.
    pub description: String,
    /// Variant or size.
    pub variant: Option<String>,
    /// Material or technique.
    pub material: Option<String>,
    /// How many.
    pub quantity: u32,
}

/// The top card: what is true of the order now, in words that fit its state.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardView {
    /// `open`, `awaiting` (an approval), `waiting` (on the customer), `held`, `needs` (held
    /// until the customer sends what the shop needs), `completed` or `cancelled`.
    pub kind: &'static str,
    /// The headline.
    pub title: String,
    /// What it means for the customer.
    pub text: Option<String>,
    /// The reason the shop gave the customer (holds, cancellations).
    pub reason: Option<String>,
    /// The carrier's tracking page for a shipped order (from the order's
    /// `metadata.carrier_tracking_url`).
    pub carrier_url: Option<String>,
    /// Whether the pickup address and hours apply (a completed order).
    pub pickup: bool,
}

/// The proof waiting for the customer's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ApprovalView {
    /// The approval stage.
    pub stage: String,
    /// The proof round, bound into the answer forms so a stale page cannot answer a newer proof.
    pub round: u32,
    /// The proof's photos.
    pub photos: Vec<PhotoView>,
    /// The shop's note with the proof.
    pub note: Option<String>,
    /// "Shared on …".
    pub since_text: String,
    /// "Proof 2": shown from the second round on.
    pub round_text: Option<String>,
}

/// Everything on a tracking page.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct TrackView {
    /// Language of the texts.
    pub language: String,
    /// IANA zone of the times.
    pub timezone: String,
    /// The shop.
    pub shop: ShopView,
    /// Order reference.
    pub reference: String,
    /// `open`, `completed` or `cancelled`.
    pub status: String,
    /// `rush`, `standard` or `hold`.
    pub priority: String,
    /// Priority in words.
    pub priority_text: String,
    /// The top card.
    pub card: CardView,
    /// The proof to approve, while the order waits for that.
    pub approval: Option<ApprovalView>,
    /// "Approved on …", once the customer approved a proof on this page.
    pub approved: Option<String>,
    /// Current stage.
    pub stage: StageView,
    /// Customer-visible stages as stops.
    pub route: Vec<StopView>,
    /// Estimate.
    pub eta: EtaView,
    /// The shop's note to the customer.
    pub note: Option<String>,
    /// Items.
    pub items: Vec<ItemView>,
    /// Customer-visible events, newest first.
    pub timeline: Vec<EntryView>,
    /// Id of the newest customer-visible event.
    pub last_event_id: i64,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Which visible stop the order is at: its own stage, or the last visible one before it.
fn current_stop(wf: &Workflow, stage: &str) -> Option<usize> {
    let position = wf.position(stage)?;
    wf.stages[..=position].iter().filter(|s| s.visible).count().checked_sub(1)
}

fn route(wf: &Workflow, snapshot: &TrackSnapshot, t: &Bundle) -> Vec<StopView> {
    let current = current_stop(wf, &snapshot.order.state.stage);
    let finished = snapshot.order.state.status == Status::Completed;
    wf.stages
        .iter()
        .filter(|s| s.visible)
        .enumerate()
        .map(|(i, s)| {
            let state = match current {
                Some(c) if i < c || (i == c && finished) => "done",
                Some(c) if i == c => "current",
                _ => "ahead",
            };
            StopView {
                key: s.key.to_string(),
                label: s.text_for(t.language()).label.clone(),
                state,
                state_text: t
                    .t(&format!("track.step_{}", if state == "current" { "current" } else { state }))
                    .to_owned(),
            }
        })
        .collect()
}

/// A day in words, the same way everywhere on the page.
fn day(t: &Bundle, at: DateTime<Utc>, tz: Tz) -> String {
    t.date(at.with_timezone(&tz))
}

/// "3 Mar, 14:05", with the year when it is not this year's.
fn when(t: &Bundle, at: DateTime<Utc>, tz: Tz, now: DateTime<Utc>) -> String {
    let local = at.with_timezone(&tz);
    let date = if local.year() == now.with_timezone(&tz).year() {
        t.short_date(local)
    } else {
        format!("{} {}", t.short_date(local), local.year())
    };
    format!("{date}, {}", t.time(local))
}

fn noon(date: chrono::NaiveDate, tz: Tz) -> DateTime<Tz> {
    date.and_hms_opt(12, 0, 0).map_or_else(|| Utc::now().with_timezone(&tz), |d| d.and_utc().with_timezone(&tz))
}

/// The lines that say honestly whose step is late and against what.
fn late_lines(late: Option<Lateness>, stage: &str, t: &Bundle, tz: Tz) -> Vec<String> {
    let Some(late) = late else { return Vec::new() };
    let mut lines = Vec::new();
    if let Some(behind) = late.behind {
        match late.within_due {
            Some(due) => lines.push(t.fill(
                "track.eta_behind_on_time",
                &[("stage", stage), ("duration", &t.duration(behind)), ("due", &t.date(noon(due, tz)))],
            )),
            None => lines.push(t.fill("track.eta_behind", &[("stage", stage), ("duration", &t.duration(behind))])),
        }
    }
    if let Some(due) = late.past_due {
        lines.push(t.fill("track.eta_past_due", &[("due", &t.date(noon(due, tz)))]));
    }
    lines
}

fn eta_view(eta: Eta, stage: &str, t: &Bundle, tz: Tz, now: DateTime<Utc>) -> EtaView {
    let plain = |state: &'static str, message: String, late: Vec<String>| EtaView {
        state,
        at: None,
        latest: None,
        date_text: None,
        countdown_text: None,
        message,
        late,
    };
    match eta {
        Eta::Done => plain("done", t.t("track.eta_done").to_owned(), vec![]),
        Eta::Cancelled => plain("cancelled", t.t("track.eta_cancelled").to_owned(), vec![]),
        Eta::Paused { remaining } => {
            plain("paused", t.fill("track.eta_paused", &[("duration", &t.duration(remaining))]), vec![])
        }
        Eta::AwaitingCustomer { after, approval, .. } => {
            let key = if approval { "track.eta_awaiting_approval" } else { "track.eta_awaiting_you" };
            plain("awaiting", t.fill(key, &[("duration", &t.duration(after))]), vec![])
        }
        Eta::Confirming { by, late } => plain(
            "confirming",
            t.fill("track.eta_confirming", &[("date", &day(t, by, tz))]),
            late_lines(Some(late), stage, t, tz),
        ),
        Eta::Expected { at, latest, late } => {
            let date = day(t, at, tz);
            let left = (at - now).to_std().unwrap_or_default();
            let countdown = if left.as_secs() < 60 {
                t.t("track.eta_soon").to_owned()
            } else {
                t.fill("track.eta_countdown", &[("duration", &t.duration(left))])
            };
            let (date_text, message) = match latest {
                Some(latest) => {
                    let range = t.fill("track.eta_range", &[("from", &date), ("to", &day(t, latest, tz))]);
                    (range.clone(), range)
                }
                None => (date.clone(), t.fill("track.eta_expected", &[("date", &date)])),
            };
            EtaView {
                state: "expected",
                at: Some(rfc3339(at)),
                latest: latest.map(rfc3339),
                message,
                date_text: Some(date_text),
                countdown_text: Some(countdown),
                late: late_lines(late, stage, t, tz),
            }
        }
    }
}

/// The `srcset` (width descriptors) of a thumbnail slot for photo `p` under `photo_base`, so
/// that a small slot loads the small file and a larger or denser one the thumbnail. Photos
/// stored before the small rendition existed list their thumbnail only.
pub fn thumb_srcset(photo_base: &str, p: &crate::store::photos::Photo) -> String {
    let thumb = format!("{photo_base}{}/thumb {}w", p.id, p.thumb_size.0);
    match &p.small {
        Some((_, (width, _))) if *width < p.thumb_size.0 => format!("{photo_base}{}/small {width}w, {thumb}", p.id),
        _ => thumb,
    }
}

fn photo_view(p: &crate::store::photos::Photo, photo_base: &str, alt: String) -> PhotoView {
    PhotoView {
        url: format!("{photo_base}{}/web", p.id),
        thumb_url: format!("{photo_base}{}/thumb", p.id),
        small_url: format!("{photo_base}{}/small", p.id),
        thumb_srcset: thumb_srcset(photo_base, p),
        alt: p.caption.clone().unwrap_or(alt),
        width: p.web_size.0,
        height: p.web_size.1,
        thumb_width: p.thumb_size.0,
        thumb_height: p.thumb_size.1,
    }
}

fn entry(
    e: &Event,
    snapshot: &TrackSnapshot,
    photo_base: &str,
    wf: &Workflow,
    t: &Bundle,
    tz: Tz,
    now: DateTime<Utc>,
) -> EntryView {
    let stage_label = |key: &Option<String>| {
        key.as_deref().and_then(|k| wf.stage(k)).map(|s| s.text_for(t.language()).label.clone()).unwrap_or_default()
    };
    let answered = (e.kind == EventKind::Moved && e.source == Source::Portal)
        .then(|| e.from_stage.as_deref().and_then(|k| wf.stage(k)).and_then(|s| s.approval.as_ref()))
        .flatten();
    let title = match (e.kind, answered) {
        (EventKind::Moved, Some(a)) if e.to_stage.as_deref() == Some(a.approve.as_str()) => {
            t.t("track.event_approved").to_owned()
        }
        (EventKind::Moved, Some(_)) => t.t("track.event_changes").to_owned(),
        (EventKind::Created | EventKind::Paid, _) => t.t("track.event_created").to_owned(),
        (EventKind::Moved, None) => stage_label(&e.to_stage),
        (EventKind::Held, _) => t.t("track.event_held").to_owned(),
        (EventKind::Resumed, _) => t.t("track.event_resumed").to_owned(),
        (EventKind::Cancelled, _) => t.t("track.event_cancelled").to_owned(),
        (EventKind::PhotosAdded, _) => t.t("track.event_photos").to_owned(),
        _ => t.t("track.event_noted").to_owned(),
    };
    EntryView {
        id: e.id,
        at: rfc3339(e.created_at),
        when: when(t, e.created_at, tz, now),
        note: e.note.clone(),
        photos: e
            .photo_ids
            .iter()
            .filter_map(|id| snapshot.photo(*id))
            .map(|p| photo_view(p, photo_base, t.fill("track.photo_alt", &[("stage", &title)])))
            .collect(),
        title,
    }
}

/// The proof waiting for an answer, and the latest approval given on the page.
fn approvals(
    snapshot: &TrackSnapshot,
    wf: &Workflow,
    photo_base: &str,
    t: &Bundle,
    tz: Tz,
) -> (Option<ApprovalView>, Option<String>) {
    let order = &snapshot.order;
    let waiting = order.state.status == Status::Open && order.state.priority != Priority::Hold;
    let mut open = None;
    let mut approved: Option<DateTime<Utc>> = None;
    for stage in wf.stages.iter().filter(|s| s.approval.is_some()) {
        let Proofs { open: round, answers, .. } = approval::proofs(&snapshot.events, stage);
        if let Some(a) = answers.iter().rev().find(|a| a.approved) {
            approved = approved.max(Some(a.at));
        }
        if stage.key.as_str() == order.state.stage
            && waiting
            && let Some(round) = round
        {
            let label = stage.text_for(t.language()).label.clone();
            open = Some(ApprovalView {
                stage: stage.key.to_string(),
                round: round.number,
                photos: round
                    .photo_ids
                    .iter()
                    .filter_map(|id| snapshot.photo(*id))
                    .map(|p| photo_view(p, photo_base, t.fill("track.proof_alt", &[("stage", &label)])))
                    .collect(),
                note: round.note.clone(),
                since_text: t.fill("track.proof_since", &[("date", &day(t, round.opened_at, tz))]),
                round_text: (round.number > 1)
                    .then(|| t.fill("track.proof_round", &[("n", &round.number.to_string())])),
            });
        }
    }
    let approved =
        approved.filter(|_| open.is_none()).map(|at| t.fill("track.approved_on", &[("date", &day(t, at, tz))]));
    (open, approved)
}

/// The latest customer-visible event of a kind, for the date and reason of a state.
fn last_of(snapshot: &TrackSnapshot, kind: EventKind) -> Option<&Event> {
    snapshot.events.iter().rev().find(|e| e.kind == kind)
}

fn card(
    snapshot: &TrackSnapshot,
    wf: &Workflow,
    headline: &str,
    stage_text: &str,
    awaiting: bool,
    t: &Bundle,
    tz: Tz,
) -> CardView {
    let order = &snapshot.order;
    let stage = wf.stage(&order.state.stage);
    let blank = CardView {
        kind: "open",
        title: headline.to_owned(),
        text: Some(stage_text.to_owned()).filter(|s| !s.is_empty()),
        reason: None,
        carrier_url: None,
        pickup: false,
    };
    let date_of = |kind| last_of(snapshot, kind).map(|e| day(t, e.created_at, tz));
    let reason_of = |kind| last_of(snapshot, kind).and_then(|e| e.note.clone()).filter(|n| !n.trim().is_empty());
    match order.state.status {
        Status::Cancelled => CardView {
            kind: "cancelled",
            title: t.t("track.card_cancelled").to_owned(),
            text: date_of(EventKind::Cancelled).map(|d| t.fill("track.card_cancelled_on", &[("date", &d)])),
            reason: reason_of(EventKind::Cancelled),
            ..blank
        },
        Status::Completed => {
            let on = snapshot.events.iter().rev().find(|e| e.to_stage.as_deref() == Some(order.state.stage.as_str()));
            let carrier = order.metadata.get("carrier_tracking_url").and_then(|v| v.as_str());
            CardView {
                kind: "completed",
                title: on.map_or_else(
                    || t.t("track.eta_done").to_owned(),
                    |e| t.fill("track.card_completed_on", &[("date", &day(t, e.created_at, tz))]),
                ),
                carrier_url: carrier
                    .filter(|u| u.starts_with("https://") || u.starts_with("http://"))
                    .map(str::to_owned),
                pickup: true,
                ..blank
            }
        }
        Status::AwaitingPayment => CardView {
            kind: "payment",
            title: t.t("track.card_payment").to_owned(),
            text: Some(t.t("track.card_payment_text").to_owned()),
            ..blank
        },
        Status::Open if order.state.priority == Priority::Hold => {
            match last_of(snapshot, EventKind::Held).and_then(Event::customer_need) {
                Some(needs) => CardView {
                    kind: "needs",
                    title: t.t("track.card_needs").to_owned(),
                    text: Some(t.fill("track.card_needs_text", &[("needs", needs)])),
                    reason: reason_of(EventKind::Held),
                    ..blank
                },
                None => CardView {
                    kind: "held",
                    title: t.t("track.card_held").to_owned(),
                    text: Some(t.t("track.card_held_text").to_owned()),
                    reason: reason_of(EventKind::Held),
                    ..blank
                },
            }
        }
        Status::Open if awaiting => {
            CardView { kind: "awaiting", title: t.t("track.card_awaiting").to_owned(), ..blank }
        }
        Status::Open if stage.is_some_and(|s| s.waits_on_customer) => {
            CardView { kind: "waiting", text: Some(t.t("track.card_waiting_text").to_owned()), ..blank }
        }
        Status::Open => blank,
    }
}

/// Builds the view of `snapshot` for a customer reading `t`'s language in zone `tz`.
pub fn build(
    snapshot: &TrackSnapshot,
    photo_base: &str,
    wf: &Workflow,
    shop: &ShopView,
    t: &Bundle,
    tz: Tz,
    now: DateTime<Utc>,
) -> TrackView {
    let order = &snapshot.order;
    let stage = wf.stage(&order.state.stage);
    // A hidden stage shows as the last stop the customer can see.
    let shown =
        current_stop(wf, &order.state.stage).and_then(|i| wf.stages.iter().filter(|s| s.visible).nth(i)).or(stage);
    let (label, text) = shown.map_or_else(
        || (order.state.stage.clone(), String::new()),
        |s| {
            let w = s.text_for(t.language());
            (w.label.clone(), w.text.clone())
        },
    );
    let eta = estimate(&EtaInput {
        workflow: wf,
        stage: &order.state.stage,
        status: order.state.status,
        priority: order.state.priority,
        resume_priority: order.state.resume_priority,
        stage_entered_at: order.stage_entered_at,
        holds: &snapshot.holds,
        due_date: order.due_date,
        now,
    });
    let priority_key = match order.state.priority {
        Priority::Rush => "track.priority_rush",
        Priority::Standard => "track.priority_standard",
        Priority::Hold => "track.priority_hold",
    };
    let headline = t.fill("track.now_in", &[("stage", &label)]);
    let (approval, approved) = approvals(snapshot, wf, photo_base, t, tz);
    TrackView {
        language: t.language().to_owned(),
        timezone: tz.name().to_owned(),
        shop: shop.clone(),
        reference: order.reference.to_string(),
        status: order.state.status.to_string(),
        priority: order.state.priority.to_string(),
        priority_text: t.t(priority_key).to_owned(),
        card: card(snapshot, wf, &headline, &text, approval.is_some(), t, tz),
        approval,
        approved,
        stage: StageView {
            key: shown.map_or_else(|| order.state.stage.clone(), |s| s.key.to_string()),
            headline,
            label: label.clone(),
            text,
        },
        route: route(wf, snapshot, t),
        eta: eta_view(eta, &label, t, tz, now),
        note: Some(order.customer_note.clone()).filter(|n| !n.trim().is_empty()),
        items: snapshot
            .items
            .iter()
            .map(|i| ItemView {
                description: i.description.clone(),
                variant: i.variant.clone(),
                material: i.material.clone(),
                quantity: i.quantity,
            })
            .collect(),
        timeline: snapshot.events.iter().rev().map(|e| entry(e, snapshot, photo_base, wf, t, tz, now)).collect(),
        last_event_id: snapshot.last_event_id,
    }
}

#[cfg(test)]
mod tests;
