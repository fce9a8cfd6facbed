//! Customer-facing strings, from the translation files in `locales/`, with English as the
//! fallback, plus localised dates and durations.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Locale};

/// `(language, TOML source)` of each translation file.
const FILES: [(&str, &str); 3] = [
    ("en", include_str!("../locales/en.toml")),
    ("es", include_str!("../locales/es.toml")),
    ("it", include_str!("../locales/it.toml")),
];

/// The strings of one language, with English filling any gap.
#[derive(Debug)]
pub struct Bundle {
    language: String,
    strings: BTreeMap<String, String>,
    locale: Locale,
}

impl Bundle {
    /// The language tag, e.g. `it`.
    pub fn language(&self) -> &str {
        &self.language
    }

    /// The string for `key` (`section.name`), or the key itself if no file defines it.
    pub fn t<'a>(&'a self, key: &'a str) -> &'a str {
        self.strings.get(key).map_or(key, String::as_str)
    }

    /// The string for `key` with `{name}` placeholders filled in.
    pub fn fill(&self, key: &str, args: &[(&str, &str)]) -> String {
        let mut text = self.t(key).to_owned();
        for (name, value) in args {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    /// All strings of a section, keyed without the section prefix (for templates).
    pub fn section(&self, section: &str) -> BTreeMap<String, String> {
        let prefix = format!("{section}.");
        self.strings.iter().filter_map(|(k, v)| k.strip_prefix(&prefix).map(|k| (k.to_owned(), v.clone()))).collect()
    }

    /// A date in this language, e.g. "martedì 3 marzo 2026".
    pub fn date(&self, at: DateTime<chrono_tz::Tz>) -> String {
        at.format_localized(self.t("meta.date"), self.locale).to_string()
    }

    /// A short date, e.g. "3 mar".
    pub fn short_date(&self, at: DateTime<chrono_tz::Tz>) -> String {
        at.format_localized(self.t("meta.date_short"), self.locale).to_string()
    }

    /// A time of day, e.g. "14:05".
    pub fn time(&self, at: DateTime<chrono_tz::Tz>) -> String {
        at.format_localized(self.t("meta.time"), self.locale).to_string()
    }

    /// A rough duration in the largest fitting unit, e.g. "3 days" or "2 weeks".
    pub fn duration(&self, d: Duration) -> String {
        let minutes = d.as_secs() / 60;
        let (unit, n) = match minutes {
            m if m < 60 => ("minute", m.max(1)),
            m if m < 48 * 60 => ("hour", (m + 30) / 60),
            m if m < 21 * 24 * 60 => ("day", (m + 12 * 60) / (24 * 60)),
            m => ("week", (m + 84 * 60) / (7 * 24 * 60)),
        };
        let form = if n == 1 { "one" } else { "other" };
        self.fill(&format!("units.{unit}_{form}"), &[("n", &n.to_string())])
    }
}

/// Every language kiln speaks.
#[derive(Debug, Clone)]
pub struct Catalog {
    bundles: BTreeMap<String, Arc<Bundle>>,
}

/// A translation file that is not valid, or misses keys English has.
#[derive(Debug, thiserror::Error)]
#[error("locales/{language}.toml: {message}")]
pub struct CatalogError {
    language: String,
    message: String,
}

fn flatten(prefix: &str, table: &toml::Table, out: &mut BTreeMap<String, String>) {
    for (key, value) in table {
        let path = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
        match value {
            toml::Value::Table(t) => flatten(&path, t, out),
            toml::Value::String(s) => {
                out.insert(path, s.clone());
            }
            other => {
                out.insert(path, other.to_string());
            }
        }
    }
}

fn locale_for(language: &str) -> Locale {
    match language {
        "it" => Locale::it_IT,
        "es" => Locale::es_ES,
        _ => Locale::en_GB,
    }
}

impl Catalog {
    /// Loads the built-in translation files; every language must define every English key.
    pub fn load() -> Result<Self, CatalogError> {
        let mut raw = BTreeMap::new();
        for (language, source) in FILES {
            let table: toml::Table = toml::from_str(source)
                .map_err(|e| CatalogError { language: language.to_owned(), message: e.to_string() })?;
            let mut strings = BTreeMap::new();
            flatten("", &table, &mut strings);
            raw.insert(language.to_owned(), strings);
        }
        let english = raw.get("en").cloned().unwrap_or_default();
        let mut bundles = BTreeMap::new();
        for (language, strings) in raw {
            let missing: Vec<&str> = english.keys().filter(|k| !strings.contains_key(*k)).map(String::as_str).collect();
            if !missing.is_empty() {
                return Err(CatalogError { language, message: format!("missing keys: {}", missing.join(", ")) });
            }
            let locale = locale_for(&language);
            bundles.insert(language.clone(), Arc::new(Bundle { language, strings, locale }));
        }
        Ok(Self { bundles })
    }

    /// The languages, e.g. `["en", "es", "it"]`.
    pub fn languages(&self) -> Vec<&str> {
        self.bundles.keys().map(String::as_str).collect()
    }

    /// The bundle for the first of `wanted` that kiln speaks (by primary subtag), else English.
    pub fn pick<'a>(&self, wanted: impl IntoIterator<Item = &'a str>) -> Arc<Bundle> {
        for tag in wanted {
            let primary = tag.split(['-', '_']).next().unwrap_or(tag).to_ascii_lowercase();
            if let Some(bundle) = self.bundles.get(&primary) {
                return bundle.clone();
            }
        }
        self.english()
    }

    /// English.
    pub fn english(&self) -> Arc<Bundle> {
        match self.bundles.get("en") {
            Some(b) => b.clone(),
            None => Arc::new(Bundle { language: "en".to_owned(), strings: BTreeMap::new(), locale: Locale::en_GB }),
        }
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, 14, 5, 0).single().expect("valid")
    }

    #[test]
    fn every_language_has_every_english_string() {
        let catalog = Catalog::load().expect("complete catalog");
        assert_eq!(catalog.languages(), ["en", "es", "it"]);
    }

    #[test]
    fn languages_fall_back_by_primary_tag_then_to_english() {
        let catalog = Catalog::load().expect("catalog");
        assert_eq!(catalog.pick(["it-CH"]).language(), "it");
        assert_eq!(catalog.pick(["fr", "es"]).language(), "es");
        assert_eq!(catalog.pick(["de"]).language(), "en");
    }

    #[test]
    fn strings_fill_placeholders_and_dates_and_durations_are_localised() {
        let catalog = Catalog::load().expect("catalog");
        let it = catalog.pick(["it"]);
        assert_eq!(it.fill("track.now_in", &[("stage", "Lavorazione")]), "Ora: Lavorazione");
        let rome = at(2026, 3, 3).with_timezone(&chrono_tz::Europe::Rome);
        assert_eq!(it.date(rome), "martedì 3 marzo 2026");
        assert_eq!(it.time(rome), "15:05");
        assert_eq!(catalog.pick(["es"]).date(rome), "martes 3 de marzo de 2026");
        assert_eq!(catalog.english().date(rome), "Tuesday 3 March 2026");
        let en = catalog.english();
        assert_eq!(en.duration(Duration::from_secs(90)), "1 minute");
        assert_eq!(en.duration(Duration::from_secs(5 * 3600)), "5 hours");
        assert_eq!(en.duration(Duration::from_secs(3 * 86_400)), "3 days");
        assert_eq!(en.duration(Duration::from_secs(60 * 86_400)), "9 weeks");
        assert_eq!(it.duration(Duration::from_secs(86_400)), "24 ore");
        assert_eq!(it.duration(Duration::from_secs(2 * 86_400)), "2 giorni");
    }
}
