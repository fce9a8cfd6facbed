//! What a tracking page shows, in the customer's language and time zone: the same structure
//! feeds the HTML page, its JSON twin and the messages the outbox worker renders.

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::config::ShopConfig;
use crate::domain::eta::{Eta, EtaInput, estimate};
use crate::domain::model::Event;
use crate::domain::order::{Priority, Status};
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
    /// `expected`, `paused`, `done` or `cancelled`.
    pub state: &'static str,
    /// The expected time (RFC 3339), when there is one.
    pub at: Option<String>,
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
    /// Thumbnail URL.
    pub thumb_url: String,
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

fn eta_view(eta: Eta, t: &Bundle, tz: Tz, now: DateTime<Utc>) -> EtaView {
    match eta {
        Eta::Done => EtaView {
            state: "done",
            at: None,
            date_text: None,
            countdown_text: None,
            message: t.t("track.eta_done").to_owned(),
            late: vec![],
        },
        Eta::Cancelled => EtaView {
            state: "cancelled",
            at: None,
            date_text: None,
            countdown_text: None,
            message: t.t("track.eta_cancelled").to_owned(),
            late: vec![],
        },
        Eta::Paused { remaining } => EtaView {
            state: "paused",
            at: None,
            date_text: None,
            countdown_text: None,
            message: t.fill("track.eta_paused", &[("duration", &t.duration(remaining))]),
            late: vec![],
        },
        Eta::Expected { at, late } => {
            let date = t.date(at.with_timezone(&tz));
            let left = (at - now).to_std().unwrap_or_default();
            let countdown = if left.as_secs() < 60 {
                t.t("track.eta_soon").to_owned()
            } else {
                t.fill("track.eta_countdown", &[("duration", &t.duration(left))])
            };
            let mut late_text = Vec::new();
            if let Some(late) = late {
                if let Some(behind) = late.behind {
                    late_text.push(t.fill("track.eta_behind", &[("duration", &t.duration(behind)), ("date", &date)]));
                }
                if let Some(due) = late.past_due {
                    let due = due.and_hms_opt(12, 0, 0).map(|d| d.and_utc().with_timezone(&tz));
                    let due_text = due.map(|d| t.date(d)).unwrap_or_default();
                    late_text.push(t.fill("track.eta_past_due", &[("due", &due_text)]));
                }
            }
            EtaView {
                state: "expected",
                at: Some(rfc3339(at)),
                message: t.fill("track.eta_expected", &[("date", &date)]),
                date_text: Some(date),
                countdown_text: Some(countdown),
                late: late_text,
            }
        }
    }
}

fn entry(e: &Event, snapshot: &TrackSnapshot, photo_base: &str, wf: &Workflow, t: &Bundle, tz: Tz) -> EntryView {
    let stage_label = |key: &Option<String>| {
        key.as_deref().and_then(|k| wf.stage(k)).map(|s| s.text_for(t.language()).label.clone()).unwrap_or_default()
    };
    let title = match e.kind {
        EventKind::Created | EventKind::Paid => t.t("track.event_created").to_owned(),
        EventKind::Moved => stage_label(&e.to_stage),
        EventKind::Held => t.t("track.event_held").to_owned(),
        EventKind::Resumed => t.t("track.event_resumed").to_owned(),
        EventKind::Cancelled => t.t("track.event_cancelled").to_owned(),
        EventKind::PhotosAdded => t.t("track.event_photos").to_owned(),
        _ => t.t("track.event_noted").to_owned(),
    };
    let local = e.created_at.with_timezone(&tz);
    EntryView {
        id: e.id,
        at: rfc3339(e.created_at),
        when: format!("{}, {}", t.short_date(local), t.time(local)),
        note: e.note.clone(),
        photos: e
            .photo_ids
            .iter()
            .filter_map(|id| snapshot.photo(*id))
            .map(|p| PhotoView {
                url: format!("{photo_base}{}/web", p.id),
                thumb_url: format!("{photo_base}{}/thumb", p.id),
                alt: p.caption.clone().unwrap_or_else(|| t.fill("track.photo_alt", &[("stage", &title)])),
                width: p.web_size.0,
                height: p.web_size.1,
                thumb_width: p.thumb_size.0,
                thumb_height: p.thumb_size.1,
            })
            .collect(),
        title,
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
    TrackView {
        language: t.language().to_owned(),
        timezone: tz.name().to_owned(),
        shop: shop.clone(),
        reference: order.reference.to_string(),
        status: order.state.status.to_string(),
        priority: order.state.priority.to_string(),
        priority_text: t.t(priority_key).to_owned(),
        stage: StageView {
            key: shown.map_or_else(|| order.state.stage.clone(), |s| s.key.to_string()),
            headline: t.fill("track.now_in", &[("stage", &label)]),
            label,
            text,
        },
        route: route(wf, snapshot, t),
        eta: eta_view(eta, t, tz, now),
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
        timeline: snapshot.events.iter().rev().map(|e| entry(e, snapshot, photo_base, wf, t, tz)).collect(),
        last_event_id: snapshot.last_event_id,
    }
}
