//! Rendering tracking pages: templates compiled once, a strict CSP built from the hashes of
//! the inline CSS and script, and each (order, language) rendering cached until the order
//! changes (or the minute turns, for the countdown of browsers without JavaScript).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::http::HeaderValue;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use minijinja::{Environment, Value, context};
use sha2::{Digest, Sha256};

use crate::config::ShopConfig;
use crate::domain::workflow::Workflows;
use crate::i18n::{Bundle, Catalog};
use crate::service::TrackSnapshot;
use crate::view::{self, ShopView, TrackView};

const PAGE: &str = include_str!("../../../templates/portal/page.html");
const LIVE: &str = include_str!("../../../templates/portal/live.html");
const MESSAGE: &str = include_str!("../../../templates/portal/message.html");
const CSS: &str = include_str!("../../../assets/track.css");
const JS: &str = include_str!("../../../assets/track.js");

/// Orders whose renderings are kept before the cache is emptied.
const CACHE_LIMIT: usize = 20_000;

/// An order's renderings, one per language asked for.
type ByLanguage = Vec<(String, Arc<Rendered>)>;

/// One order rendered in one language.
#[derive(Debug)]
pub struct Rendered {
    snapshot: Arc<TrackSnapshot>,
    minute: i64,
    /// The whole page.
    pub page: Bytes,
    /// The server-sent event carrying the live part of the page.
    pub frame: Bytes,
    /// The JSON twin.
    pub json: Bytes,
    /// Id of the newest event shown.
    pub last_event_id: i64,
}

/// Where a page's live stream and forms are, and how the forms' anti-forgery tokens are made.
pub struct Forms<'a> {
    /// The page's own path, `/t/{token}`, which the form actions extend.
    pub page_path: &'a str,
    /// The live stream's URL.
    pub events_url: &'a str,
    /// Signs a form context (a proof round, the question form) for this page's token.
    pub sign: &'a dyn Fn(&str) -> String,
}

/// A page with a title and a few sentences, shown instead of a tracking page or after a form.
#[derive(Debug, Default)]
pub struct Message {
    /// The heading (and title).
    pub title: String,
    /// The sentence under it.
    pub text: String,
    /// Text quoted back, such as the question just sent.
    pub quote: Option<String>,
    /// HTML kiln built itself (the unsubscribe choices).
    pub extra: Option<String>,
    /// A way back, with its words.
    pub back: Option<(String, String)>,
}

/// The longest question the tracking page accepts, in characters.
pub const MAX_QUESTION: usize = 2000;

/// Renders tracking pages and the messages shown instead of them.
pub struct Renderer {
    env: Environment<'static>,
    css: String,
    csp: HeaderValue,
    catalog: Catalog,
    shop: ShopView,
    default_tz: Tz,
    default_language: String,
    brand: String,
    /// Per order, its renderings by language.
    cache: Mutex<HashMap<i64, ByLanguage>>,
}

impl std::fmt::Debug for Renderer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Renderer").field("shop", &self.shop).finish_non_exhaustive()
    }
}

/// Black or white text on `hex`, whichever contrasts more (WCAG relative luminance).
pub fn text_on(hex: &str) -> &'static str {
    let channel = |i: usize| {
        let v = f64::from(u8::from_str_radix(hex.get(i..i + 2).unwrap_or("00"), 16).unwrap_or(0)) / 255.0;
        if v <= 0.03928 { v / 12.92 } else { ((v + 0.055) / 1.055).powf(2.4) }
    };
    let luminance = 0.2126 * channel(1) + 0.7152 * channel(3) + 0.0722 * channel(5);
    let with_white = 1.05 / (luminance + 0.05);
    let with_black = (luminance + 0.05) / 0.05;
    if with_white >= with_black { "#ffffff" } else { "#1d1b19" }
}

fn hash_source(source: &str) -> String {
    format!("'sha256-{}'", STANDARD.encode(Sha256::digest(source.as_bytes())))
}

/// Escapes nothing: for HTML kiln rendered itself (the live fragment inside the page).
fn trusted(html: String) -> Value {
    Value::from_safe_string(html)
}

impl Renderer {
    /// Compiles the templates for this shop; a template error is reported at start-up.
    pub fn new(shop: &ShopConfig, base_url: &url::Url) -> anyhow::Result<Self> {
        let mut env = Environment::new();
        env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.set_syntax(minijinja::syntax::SyntaxConfig::builder().trim_blocks(true).lstrip_blocks(true).build()?);
        env.add_template("page.html", PAGE)?;
        env.add_template("live.html", LIVE)?;
        env.add_template("message.html", MESSAGE)?;
        let css = format!(
            ":root{{--brand:{};--on-brand:{};--accent:{};--on-accent:{}}}\n{CSS}",
            shop.color,
            text_on(&shop.color),
            shop.accent,
            text_on(&shop.accent)
        );
        // Photo URLs are absolute (the JSON twin is read from other sites), so the page must
        // also accept images from the configured base URL's origin.
        let csp = format!(
            "default-src 'none'; img-src 'self' {}; style-src {}; script-src {}; connect-src 'self'; \
             base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
            base_url.origin().ascii_serialization(),
            hash_source(&css),
            hash_source(JS)
        );
        Ok(Self {
            env,
            css,
            csp: HeaderValue::from_str(&csp)?,
            catalog: Catalog::load()?,
            shop: ShopView::new(shop),
            default_tz: crate::domain::order::TimeZone::parse(&shop.timezone).map_err(anyhow::Error::msg)?.0,
            default_language: shop.language.clone(),
            brand: shop.color.clone(),
            cache: Mutex::new(HashMap::new()),
        })
    }

    /// The Content-Security-Policy of every page this renders.
    pub fn csp(&self) -> HeaderValue {
        self.csp.clone()
    }

    fn bundle(&self, wanted: Option<&str>, customer: &str) -> Arc<Bundle> {
        self.catalog.pick(wanted.into_iter().chain([customer, self.default_language.as_str()]))
    }

    /// The strings of the customer's language (or the shop's).
    pub fn strings(&self, customer: &str) -> Arc<Bundle> {
        self.bundle(None, customer)
    }

    /// The language a customer's page is shown in.
    pub fn language_of(&self, snapshot: &TrackSnapshot, wanted: Option<&str>) -> String {
        self.bundle(wanted, snapshot.order.customer.language.as_str()).language().to_owned()
    }

    /// The rendering of exactly this snapshot in the language, if one was made this minute.
    /// Cheap, so that thousands of live watchers woken by one change can all ask.
    pub fn cached(
        &self,
        snapshot: &Arc<TrackSnapshot>,
        wanted_language: Option<&str>,
        now: DateTime<Utc>,
    ) -> Option<Arc<Rendered>> {
        let bundle = self.bundle(wanted_language, snapshot.order.customer.language.as_str());
        let minute = now.timestamp() / 60;
        let cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (_, r) = cache.get(&snapshot.order.id)?.iter().find(|(language, _)| language == bundle.language())?;
        (Arc::ptr_eq(&r.snapshot, snapshot) && r.minute == minute).then(|| r.clone())
    }

    /// Renders an order's page, live event and JSON twin in a language and keeps them for
    /// [`Renderer::cached`], which callers ask first.
    pub fn render(
        &self,
        snapshot: &Arc<TrackSnapshot>,
        workflows: &Workflows,
        wanted_language: Option<&str>,
        photo_base: &str,
        forms: &Forms<'_>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<Arc<Rendered>> {
        let bundle = self.bundle(wanted_language, snapshot.order.customer.language.as_str());
        let minute = now.timestamp() / 60;
        let wf = workflows
            .get(&snapshot.order.workflow)
            .ok_or_else(|| anyhow::anyhow!("workflow `{}` is not loaded", snapshot.order.workflow))?;
        let tz = snapshot.order.customer.timezone.map_or(self.default_tz, |z| z.0);
        let view = view::build(snapshot, photo_base, wf, &self.shop, &bundle, tz, now);
        let rendered = Arc::new(self.render_view(snapshot.clone(), &view, &bundle, forms, minute)?);
        let mut cache = self.cache.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= CACHE_LIMIT {
            cache.clear();
        }
        let languages = cache.entry(snapshot.order.id).or_default();
        match languages.iter_mut().find(|(language, _)| language == bundle.language()) {
            Some((_, slot)) => *slot = rendered.clone(),
            None => languages.push((bundle.language().to_owned(), rendered.clone())),
        }
        Ok(rendered)
    }

    fn render_view(
        &self,
        snapshot: Arc<TrackSnapshot>,
        view: &TrackView,
        t: &Bundle,
        forms: &Forms<'_>,
        minute: i64,
    ) -> anyhow::Result<Rendered> {
        let strings = t.section("track");
        let shop = view.shop.name.as_str();
        let note_title = t.fill("track.note", &[("shop", shop)]);
        let view_value = Value::from(minijinja::value::Serde(view));
        let strings = Value::from(minijinja::value::Serde(&strings));
        let events_url = forms.events_url;
        let round_context = view.approval.as_ref().map(|a| crate::domain::approval::round_context(&a.stage, a.round));
        let forms = context! {
            answer_url => format!("{}/answer", forms.page_path),
            round_token => round_context.map(|c| (forms.sign)(&c)).unwrap_or_default(),
            ask_url => format!("{}/ask", forms.page_path),
            ask_token => (forms.sign)(ASK_CONTEXT),
            max_question => MAX_QUESTION,
        };
        let live = self.env.get_template("live.html")?.render(
            context! { view => view_value.clone(), t => strings.clone(), note_title, forms => forms.clone() },
        )?;
        let page = self.env.get_template("page.html")?.render(context! {
            view => view_value,
            t => strings,
            title => t.fill("track.title", &[("reference", &view.reference), ("shop", shop)]),
            heading => t.fill("track.heading", &[("reference", &view.reference)]),
            contact => t.fill("track.contact", &[("shop", shop)]),
            live => trusted(live.clone()),
            events_url,
            forms,
            revoked => t.fill("track.revoked", &[("shop", shop)]),
            css => trusted(self.css.clone()),
            js => trusted(JS.to_owned()),
        })?;
        let mut frame = format!("id: {}\nevent: update\n", view.last_event_id);
        for line in live.lines() {
            frame.push_str("data: ");
            frame.push_str(line);
            frame.push('\n');
        }
        frame.push('\n');
        Ok(Rendered {
            snapshot,
            minute,
            page: Bytes::from(page),
            frame: Bytes::from(frame),
            json: Bytes::from(serde_json::to_vec(view)?),
            last_event_id: view.last_event_id,
        })
    }

    /// A page with a title and one sentence, in the shop's language (404s, 429s).
    pub fn message(&self, title_key: &str, text_key: &str) -> anyhow::Result<Bytes> {
        let t = self.catalog.pick([self.default_language.as_str()]);
        let back = self.shop.website.clone().map(|w| (w, t.fill("track.home", &[("shop", &self.shop.name)])));
        self.message_page(
            &t,
            &Message { title: t.t(title_key).to_owned(), text: t.t(text_key).to_owned(), back, ..Message::default() },
        )
    }

    /// A message page in a customer's language.
    pub fn message_page(&self, t: &Bundle, message: &Message) -> anyhow::Result<Bytes> {
        let html = self.env.get_template("message.html")?.render(context! {
            language => t.language(),
            shop => Value::from(minijinja::value::Serde(&self.shop)),
            title => &message.title,
            text => &message.text,
            quote => &message.quote,
            extra => trusted(message.extra.clone().unwrap_or_default()),
            back_url => message.back.as_ref().map(|b| b.0.as_str()),
            back_text => message.back.as_ref().map(|b| b.1.as_str()),
            css => trusted(self.css.clone()),
        })?;
        Ok(Bytes::from(html))
    }

    /// The shop's brand colour, for the favicon.
    pub fn brand(&self) -> &str {
        self.brand.as_str()
    }
}

/// The form context of the question form (one per page, bound to its token).
pub const ASK_CONTEXT: &str = "ask";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_colour_contrasts_with_the_brand_colour() {
        assert_eq!(text_on("#7a3b1d"), "#ffffff");
        assert_eq!(text_on("#ffd54f"), "#1d1b19");
        assert_eq!(text_on("#000000"), "#ffffff");
        assert_eq!(text_on("#ffffff"), "#1d1b19");
    }

    #[test]
    fn the_policy_allows_exactly_the_inline_css_and_script() {
        let renderer = Renderer::new(&ShopConfig::default(), &url::Url::parse("http://localhost:8080/").expect("url"))
            .expect("templates compile");
        let csp = renderer.csp().to_str().expect("ascii").to_owned();
        assert!(csp.contains(&hash_source(&renderer.css)));
        assert!(csp.contains(&hash_source(JS)));
        assert!(!csp.contains("unsafe-inline"));
        assert!(csp.starts_with("default-src 'none'"));
    }
}
