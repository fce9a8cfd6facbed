//! Demo data: four workshops' orders spread over their stages, each moved there through the
//! same path real moves take, with a plausible history.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::config::Config;
use crate::domain::change::Change;
use crate::domain::model::{Actor, Customer, ExternalIds, LineItem};
use crate::domain::order::{
    Channel, CustomerNeed, EmailAddress, Language, PhoneNumber, Priority, Source, TimeZone, Visibility,
};
use crate::domain::transition::Action;
use crate::service::{Created, NewOrder, Rendered, Scope, Service, Upload};
use crate::store::orders::{self, ListFilter};

mod pictures;

/// What seeding produced, for the start-up banner.
#[derive(Debug)]
pub struct DemoSummary {
    /// A fresh write token.
    pub token: String,
    /// Whether orders were created now (false when the database already had orders).
    pub seeded: bool,
    /// `(reference, workflow, stage, tracking URL)` of a few orders.
    pub links: Vec<(String, String, String, String)>,
    /// The demo owner's email and a password set just now, to sign in to the dashboard.
    pub owner: (String, String),
}

/// The demo shop owner's sign-in.
pub const DEMO_OWNER: &str = "owner@kiln.example";

/// Creates the demo owner, or gives the existing one a new password (only this run prints it).
async fn demo_owner(service: &Service) -> anyhow::Result<(String, String)> {
    let password = crate::crypto::random_token(12);
    match service.user_by_email(DEMO_OWNER).await? {
        Some(user) => {
            service.reset_password(user.id, &password, "demo").await?;
            if user.disabled_at.is_some() {
                service.set_user_disabled(user.id, false, "demo").await?;
            }
        }
        None => {
            let new = crate::service::NewUser {
                email: DEMO_OWNER,
                name: Some("Demo owner"),
                role: crate::domain::access::Role::Owner,
                password: &password,
            };
            service.add_user(new, "demo").await?;
        }
    }
    Ok((DEMO_OWNER.to_owned(), password))
}

struct Sample {
    workflow: &'static str,
    name: &'static str,
    email: &'static str,
    phone: Option<&'static str>,
    language: &'static str,
    timezone: &'static str,
    item: (&'static str, Option<&'static str>, u32, Option<&'static str>),
    /// How many linear moves to make from the first stage.
    moves: usize,
    days_ago: i64,
    priority: Priority,
    twist: Twist,
}

#[derive(Clone, Copy, PartialEq)]
enum Twist {
    None,
    Rework,
    Hold,
    Cancel,
}

#[rustfmt::skip]
const SAMPLES: &[Sample] = &[
    Sample { workflow: "stone", name: "Giulia Bernardi", email: "giulia@example.it", phone: Some("+393471234567"), language: "it", timezone: "Europe/Rome", item: ("Kitchen countertop", Some("320 x 65 cm"), 1, Some("Calacatta Oro marble")), moves: 0, days_ago: 3, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "stone", name: "Martin Keller", email: "m.keller@example.de", phone: None, language: "en", timezone: "Europe/Berlin", item: ("Island slab with waterfall edge", Some("240 x 110 cm"), 1, Some("Nero Marquina")), moves: 1, days_ago: 17, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "stone", name: "Lucía Fernández", email: "lucia@example.es", phone: Some("+34612345678"), language: "es", timezone: "Europe/Madrid", item: ("Bathroom vanity tops", Some("120 x 55 cm"), 2, Some("Travertine")), moves: 2, days_ago: 30, priority: Priority::Rush, twist: Twist::None },
    Sample { workflow: "stone", name: "Oliver Grant", email: "oliver@example.co.uk", phone: None, language: "en", timezone: "Europe/London", item: ("Fireplace surround", None, 1, Some("Statuario marble")), moves: 4, days_ago: 46, priority: Priority::Standard, twist: Twist::Rework },
    Sample { workflow: "stone", name: "Sofia Marchetti", email: "sofia@example.it", phone: None, language: "it", timezone: "Europe/Rome", item: ("Dining table top", Some("Ø 140 cm"), 1, Some("Verde Alpi")), moves: 5, days_ago: 62, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "stone", name: "Hannah Weiss", email: "hannah@example.com", phone: None, language: "en", timezone: "America/New_York", item: ("Outdoor kitchen counters", Some("3 pieces"), 3, Some("Granite")), moves: 8, days_ago: 95, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "jewelry", name: "Amelia Clarke", email: "amelia@example.com", phone: Some("+447700900123"), language: "en", timezone: "Europe/London", item: ("Engagement ring", Some("Size N"), 1, Some("Platinum, 1.2 ct oval diamond")), moves: 0, days_ago: 2, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "jewelry", name: "Chiara Rossi", email: "chiara@example.it", phone: Some("+393331112223"), language: "it", timezone: "Europe/Rome", item: ("Signet ring, engraved crest", Some("Size 14"), 1, Some("18k yellow gold")), moves: 1, days_ago: 6, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "jewelry", name: "Diego Morales", email: "diego@example.mx", phone: None, language: "es", timezone: "America/Mexico_City", item: ("Wedding bands (pair)", Some("Sizes 7 and 10"), 2, Some("Rose gold")), moves: 2, days_ago: 12, priority: Priority::Rush, twist: Twist::None },
    Sample { workflow: "jewelry", name: "Priya Nair", email: "priya@example.com", phone: None, language: "en", timezone: "Asia/Kolkata", item: ("Pendant with birthstones", None, 1, Some("Sterling silver")), moves: 3, days_ago: 22, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "jewelry", name: "Emma Laurent", email: "emma@example.fr", phone: None, language: "en", timezone: "Europe/Paris", item: ("Cufflinks, monogram", None, 2, Some("White gold")), moves: 4, days_ago: 28, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "jobshop", name: "Northwind Robotics", email: "purchasing@example.com", phone: None, language: "en", timezone: "America/Chicago", item: ("Laser-cut mounting brackets", Some("3 mm steel"), 250, Some("S235 steel, powder coat")), moves: 0, days_ago: 1, priority: Priority::Rush, twist: Twist::None },
    Sample { workflow: "jobshop", name: "Harbor Marine", email: "orders@example.net", phone: Some("+14155550123"), language: "en", timezone: "America/Los_Angeles", item: ("Stainless handrail sections", Some("2.4 m"), 12, Some("316 stainless")), moves: 1, days_ago: 4, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "jobshop", name: "Officine Ferri", email: "ufficio@example.it", phone: None, language: "it", timezone: "Europe/Rome", item: ("Welded frame assemblies", None, 8, Some("Aluminium 6061")), moves: 2, days_ago: 7, priority: Priority::Standard, twist: Twist::Hold },
    Sample { workflow: "jobshop", name: "Greenfield Farms", email: "ops@example.org", phone: None, language: "en", timezone: "America/Denver", item: ("Gate hinges", Some("Heavy duty"), 40, Some("Galvanised steel")), moves: 4, days_ago: 14, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "jobshop", name: "Atlas Signs", email: "hello@example.com", phone: None, language: "en", timezone: "Europe/Dublin", item: ("Sign letters", Some("400 mm"), 26, Some("Corten steel")), moves: 5, days_ago: 20, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "print", name: "Bella Coffee Co.", email: "team@example.com", phone: None, language: "en", timezone: "America/New_York", item: ("Staff T-shirts", Some("S 4, M 10, L 8, XL 3"), 25, Some("DTG")), moves: 0, days_ago: 1, priority: Priority::Rush, twist: Twist::None },
    Sample { workflow: "print", name: "Club Atlético Río", email: "club@example.es", phone: Some("+34600111222"), language: "es", timezone: "Europe/Madrid", item: ("Team hoodies", Some("M 12, L 9"), 21, Some("Screen print, 2 colours")), moves: 1, days_ago: 2, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "print", name: "Pixel Fest", email: "crew@example.org", phone: None, language: "en", timezone: "Europe/Amsterdam", item: ("Volunteer tees", Some("Mixed sizes"), 120, Some("Screen print")), moves: 2, days_ago: 3, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "print", name: "Studio Lumen", email: "studio@example.it", phone: None, language: "it", timezone: "Europe/Rome", item: ("Embroidered caps", None, 30, Some("Embroidery")), moves: 3, days_ago: 4, priority: Priority::Standard, twist: Twist::None },
    Sample { workflow: "print", name: "Ridge Runners", email: "ridge@example.com", phone: None, language: "en", timezone: "America/Denver", item: ("Race shirts", Some("Mixed sizes"), 300, Some("DTG")), moves: 1, days_ago: 5, priority: Priority::Standard, twist: Twist::Cancel },
];

fn parse_customer(s: &Sample) -> anyhow::Result<Customer> {
    let email = EmailAddress::parse(s.email).map_err(anyhow::Error::msg)?;
    let phone = s.phone.map(PhoneNumber::parse).transpose().map_err(anyhow::Error::msg)?;
    let mut channels = vec![Channel::Email];
    if phone.is_some() {
        channels.push(Channel::Whatsapp);
    }
    Ok(Customer {
        name: s.name.to_owned(),
        email: Some(email),
        phone,
        telegram_chat_id: None,
        channels,
        language: Language::parse(s.language).map_err(anyhow::Error::msg)?,
        timezone: Some(TimeZone::parse(s.timezone).map_err(anyhow::Error::msg)?),
    })
}

/// Seeds demo orders into an empty database and creates a fresh write token.
pub async fn seed(service: &Service) -> anyhow::Result<DemoSummary> {
    let (token, _) = service.create_token("demo", Scope::Write).await?;
    let existing = orders::list(service.db(), &ListFilter { limit: 1, ..ListFilter::default() }).await?;
    let seeded = existing.is_empty();
    if seeded {
        for sample in SAMPLES {
            seed_one(service, sample).await?;
        }
    }
    let recent = orders::list(service.db(), &ListFilter { limit: 200, ..ListFilter::default() }).await?;
    let mut links = Vec::new();
    // Orders waiting for their customer's approval first: the page to try the feature on.
    let awaiting = |o: &crate::domain::model::Order| {
        service.workflows().get(&o.workflow).and_then(|w| w.stage(&o.state.stage)).is_some_and(|s| s.approval.is_some())
    };
    let open: Vec<_> = recent.iter().filter(|o| o.state.status == crate::domain::order::Status::Open).collect();
    let shown = open.iter().filter(|o| awaiting(o)).chain(open.iter().rev().filter(|o| !awaiting(o))).take(6);
    for order in shown {
        if let Some(url) = service.tracking_url(order.id).await? {
            links.push((order.reference.to_string(), order.workflow.clone(), order.state.stage.clone(), url));
        }
    }
    let owner = demo_owner(service).await?;
    Ok(DemoSummary { token, seeded, links, owner })
}

/// The date a shop would promise: the workflow's expected duration plus a fifth, from `placed`.
fn promised_date(service: &Service, workflow: &str, placed: chrono::DateTime<Utc>) -> chrono::NaiveDate {
    let expected = service.workflows().get(workflow).and_then(|wf| wf.remaining_from(wf.first_stage().key.as_str()));
    let days = expected.map_or(30, |d| (d.as_secs() * 6 / 5).div_ceil(86_400));
    (placed + Duration::days(i64::try_from(days).unwrap_or(30))).date_naive()
}

async fn seed_one(service: &Service, s: &Sample) -> anyhow::Result<()> {
    let shop = Actor { name: "demo".to_owned(), source: Source::System };
    let floor = Actor { name: "workshop floor".to_owned(), source: Source::Ops };
    let placed = Utc::now() - Duration::days(s.days_ago) - Duration::hours(3);
    let (description, variant, quantity, material) = s.item;
    let new = NewOrder {
        reference: None,
        workflow: s.workflow.to_owned(),
        stage: None,
        priority: s.priority,
        customer: parse_customer(s)?,
        items: vec![LineItem {
            description: description.to_owned(),
            variant: variant.map(str::to_owned),
            quantity,
            material: material.map(str::to_owned),
            metadata: json!({}),
        }],
        due_date: Some(promised_date(service, s.workflow, placed)),
        notes: String::new(),
        customer_note: String::new(),
        external_ids: ExternalIds::default(),
        metadata: json!({ "demo": true }),
        created_at: Some(placed),
    };
    let created =
        service.create_order(new, &shop, None, |_, _, _| Rendered { status: 201, body: String::new() }).await?;
    let Created::New { order, .. } = created else { anyhow::bail!("demo order was not created") };
    let reference = order.reference.to_string();
    let wf = service.workflows().get(s.workflow).ok_or_else(|| anyhow::anyhow!("no {} workflow", s.workflow))?;

    // Space the moves over the order's age so its history reads like a real one.
    let step = Duration::days(s.days_ago.max(1)) / i32::try_from(s.moves + 1).unwrap_or(1);
    let mut at = placed;
    for i in 0..s.moves {
        let to = wf.stages.get(i + 1).map(|st| st.key.to_string()).ok_or_else(|| anyhow::anyhow!("too many moves"))?;
        at += step;
        // A proof for the customer's approval: its note says exactly what is attached.
        let (proof_note, proof_photos) = match to.as_str() {
            "awaiting_approval" => ("Three renders of your design: front, side and top.", 3),
            "drawing_approval" => ("Two photos of your slab in our yard, with the cut lines marked.", 2),
            "proof_approval" => ("Your print proof: placement and colours as they will print.", 1),
            _ => ("", 0),
        };
        let note = match (s.twist, to.as_str()) {
            (_, "quality_check") => Some("Every edge checked against your drawing.".to_owned()),
            _ if proof_photos > 0 => Some(proof_note.to_owned()),
            _ => None,
        };
        // The last photo-worthy stage reached gets a picture from the bench, and every proof
        // its pictures.
        let last_photo_stage = (i + 1..s.moves).all(|j| wf.stages.get(j + 1).is_none_or(|st| !st.photo));
        let pictures_here = match wf.stage(&to) {
            _ if proof_photos > 0 => proof_photos,
            Some(stage) if stage.photo && last_photo_stage => 1,
            _ => 0,
        };
        let mut uploads = Vec::new();
        for n in 0..pictures_here {
            let seed = u32::try_from(i as i64 + s.days_ago).unwrap_or(0) + 17 * n;
            uploads.push(Upload { field: "photo".to_owned(), bytes: pictures::picture(s.workflow, seed)?.into() });
        }
        // No caption: the page's alt text then names the stage in the customer's language.
        let photo_ids = if uploads.is_empty() {
            vec![]
        } else {
            service.store_photos(order.id, uploads, Visibility::Customer, None, &floor).await?
        };
        // Leaving a proof stage forward is the customer's approval on their page.
        let approved = wf.stages.get(i).and_then(|st| st.approval.as_ref()).is_some_and(|a| a.approve.as_str() == to);
        let actor = if approved { crate::service::customer() } else { floor.clone() };
        let change =
            Change::Act { action: Action::Move { to }, expected_stage: None, note, internal_note: None, photo_ids };
        service.change_at(&reference, &change, &actor, at).await?;
    }
    let act = |action| Change::Act { action, expected_stage: None, note: None, internal_note: None, photo_ids: vec![] };
    match s.twist {
        Twist::Rework => {
            let back = Change::Act {
                action: Action::Move { to: "fabrication".to_owned() },
                expected_stage: Some("quality_check".to_owned()),
                note: Some("We found a hairline flaw on one edge and are re-polishing it.".to_owned()),
                internal_note: Some("Edge chip, 2 mm, left return.".to_owned()),
                photo_ids: vec![],
            };
            service.change_at(&reference, &back, &floor, at + Duration::hours(6)).await?;
        }
        Twist::Hold => {
            // The customer's page then says what the shop needs, and whose the wait is.
            let needs = CustomerNeed::parse("il disegno aggiornato con le quote").map_err(anyhow::Error::msg)?;
            let mut hold = act(Action::Hold { needs: Some(needs) });
            if let Change::Act { internal_note, .. } = &mut hold {
                *internal_note = Some("Waiting for the customer's revised drawing.".to_owned());
            }
            service.change_at(&reference, &hold, &floor, at + Duration::hours(2)).await?;
        }
        Twist::Cancel => {
            service.change_at(&reference, &act(Action::Cancel), &shop, at + Duration::hours(1)).await?;
        }
        Twist::None => {}
    }
    Ok(())
}

/// Prints where to look once the demo is running.
pub fn print_banner(config: &Config, port: u16, summary: &DemoSummary) {
    let base = if config.bind.port() == 0 {
        format!("http://{}:{port}", config.bind.ip())
    } else {
        config.base_url.as_str().trim_end_matches('/').to_owned()
    };
    println!();
    println!("  kiln demo is running at {base}");
    if summary.seeded {
        println!("  Loaded {} demo orders across the stone, jewelry, jobshop and print workshops.", SAMPLES.len());
    }
    println!();
    println!("  Sign in to the dashboard at {base}/");
    println!("    email:    {}", summary.owner.0);
    println!("    password: {}", summary.owner.1);
    println!();
    println!("  API token (write, created just now):");
    println!("    {}", summary.token);
    println!();
    println!("  Try the API:");
    println!("    curl -s -H 'Authorization: Bearer {}' {base}/api/v1/orders", summary.token);
    println!("    OpenAPI document: {base}/api/v1/openapi.json");
    if !summary.links.is_empty() {
        println!();
        println!("  Orders to look at:");
        for (reference, workflow, stage, url) in &summary.links {
            println!("    {reference}  {workflow:<8} {stage:<20} {url}");
        }
    }
    println!();
    println!("  Press Ctrl-C to stop.");
    println!();
}
