//! Order value types. Each is built only through `parse`, so bad data cannot travel inward.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// Declares a closed set of lowercase string values with `parse`, `as_str` and serde output.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The wire spelling.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Parses the wire spelling, listing the accepted values on failure.
            pub fn parse(raw: &str) -> Result<Self, String> {
                match raw {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!(
                        "`{raw}` is not one of: {}",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl ::std::fmt::Display for $name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}
pub(crate) use string_enum;

string_enum! {
    /// How urgently an order is worked on; `hold` pauses it until released.
    Priority { Rush = "rush", Standard = "standard", Hold = "hold" }
}

string_enum! {
    /// Whether an order is still moving; `awaiting_payment` is not yet work for the shop (a
    /// Checkout kiln started, not paid yet).
    Status { Open = "open", Completed = "completed", Cancelled = "cancelled", AwaitingPayment = "awaiting_payment" }
}

string_enum! {
    /// A way to reach the customer.
    Channel { Email = "email", Sms = "sms", Whatsapp = "whatsapp", Telegram = "telegram" }
}

string_enum! {
    /// Where a change came from.
    Source { Api = "api", Ops = "ops", Webhook = "webhook", System = "system", Portal = "portal" }
}

string_enum! {
    /// Who may see an event or note.
    Visibility { Customer = "customer", Internal = "internal" }
}

/// Declares a validated string newtype with `parse`, `as_str`, `Display` and serde output.
macro_rules! string_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub struct $name(String);

        impl $name {
            /// The validated text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.0)
            }
        }
    };
}

string_newtype! {
    /// A human-readable order reference such as `K-000123`.
    OrderRef
}

impl OrderRef {
    /// Accepts 1–40 ASCII letters, digits, `-` and `_`.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 40
            && raw.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if ok {
            Ok(Self(raw.to_owned()))
        } else {
            Err(format!("`{raw}` is not a valid reference: use 1-40 letters, digits, `-` or `_`"))
        }
    }

    /// The reference for the n-th order under a prefix, e.g. `K-000123`.
    pub fn numbered(prefix: &str, n: i64) -> Self {
        Self(format!("{prefix}-{n:06}"))
    }
}

string_newtype! {
    /// An email address, trimmed, with a plausible `local@domain.tld` shape.
    EmailAddress
}

impl EmailAddress {
    /// Checks the shape only; deliverability is the mail server's call.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let plausible = s.len() <= 254
            && !s.chars().any(|c| c.is_whitespace() || c.is_control())
            && s.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            });
        if plausible { Ok(Self(s.to_owned())) } else { Err(format!("`{raw}` is not an email address")) }
    }
}

string_newtype! {
    /// A phone number in E.164 form, e.g. `+393471234567`.
    PhoneNumber
}

impl PhoneNumber {
    /// Accepts `+` and 8–15 digits; spaces, dots, dashes and brackets are dropped.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-' | '.' | '(' | ')')).collect();
        let digits = compact.strip_prefix('+').unwrap_or("");
        if (8..=15).contains(&digits.len()) && digits.bytes().all(|b| b.is_ascii_digit()) && !digits.starts_with('0') {
            Ok(Self(compact))
        } else {
            Err(format!("`{raw}` is not an international phone number such as +393471234567"))
        }
    }
}

string_newtype! {
    /// A language tag such as `en`, `it` or `pt-BR`.
    Language
}

impl Language {
    /// A primary subtag of 2–3 letters and an optional 2-letter or 3-digit region.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let mut parts = raw.split(['-', '_']);
        let primary = parts.next().unwrap_or("");
        let region = parts.next();
        let ok = (2..=3).contains(&primary.len())
            && primary.bytes().all(|b| b.is_ascii_alphabetic())
            && parts.next().is_none()
            && region.is_none_or(|r| {
                (r.len() == 2 && r.bytes().all(|b| b.is_ascii_alphabetic()))
                    || (r.len() == 3 && r.bytes().all(|b| b.is_ascii_digit()))
            });
        if !ok {
            return Err(format!("`{raw}` is not a language tag such as `en`, `it` or `pt-BR`"));
        }
        let mut tag = primary.to_ascii_lowercase();
        if let Some(r) = region {
            tag.push('-');
            tag.push_str(&r.to_ascii_uppercase());
        }
        Ok(Self(tag))
    }

    /// The primary language, e.g. `pt` for `pt-BR`.
    pub fn primary(&self) -> &str {
        self.0.split('-').next().unwrap_or(&self.0)
    }

    /// English, the default.
    pub fn english() -> Self {
        Self("en".to_owned())
    }
}

string_newtype! {
    /// What a hold waits for from the customer, e.g. "your ring size": one line of at most
    /// [`CustomerNeed::MAX_CHARS`] characters, shown to them as "We need: …".
    CustomerNeed
}

impl CustomerNeed {
    /// Longest accepted text, in characters: a few words that fit a text message.
    pub const MAX_CHARS: usize = 160;

    /// Trims the text; refuses it blank, too long or with a control character (a line break
    /// included: it is shown inline, after "We need:").
    pub fn parse(raw: &str) -> Result<Self, String> {
        let text = raw.trim();
        if text.is_empty() {
            Err("must not be empty".to_owned())
        } else if text.chars().count() > Self::MAX_CHARS {
            Err(format!("must be at most {} characters", Self::MAX_CHARS))
        } else if text.chars().any(char::is_control) {
            Err("must be one line without control characters".to_owned())
        } else {
            Ok(Self(text.to_owned()))
        }
    }
}

/// An IANA time zone such as `Europe/Rome`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeZone(pub chrono_tz::Tz);

impl TimeZone {
    /// Parses an IANA zone name.
    pub fn parse(raw: &str) -> Result<Self, String> {
        chrono_tz::Tz::from_str(raw)
            .map(Self)
            .map_err(|_| format!("`{raw}` is not an IANA time zone such as `Europe/Rome`"))
    }

    /// The zone name.
    pub fn as_str(&self) -> &'static str {
        self.0.name()
    }
}

impl Serialize for TimeZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A calendar date written `YYYY-MM-DD`.
pub fn parse_date(raw: &str) -> Result<chrono::NaiveDate, String> {
    chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d").map_err(|_| format!("`{raw}` is not a date written YYYY-MM-DD"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enums_round_trip_and_list_their_values_on_error() {
        for p in Priority::ALL {
            assert_eq!(Priority::parse(p.as_str()), Ok(*p));
        }
        assert_eq!(Priority::parse("urgent"), Err("`urgent` is not one of: rush, standard, hold".to_owned()));
    }

    #[test]
    fn emails_are_checked_for_shape() {
        assert_eq!(EmailAddress::parse(" ana@example.com ").map(|e| e.to_string()), Ok("ana@example.com".to_owned()));
        for bad in ["", "ana", "ana@", "@example.com", "ana@example", "a b@example.com", "a@b@c.com", "ana@.com"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn phones_are_normalised_to_e164() {
        assert_eq!(PhoneNumber::parse("+39 347-123 4567").map(|p| p.to_string()), Ok("+393471234567".to_owned()));
        for bad in ["3471234567", "+12", "+39 abc 1234567", "+0391234567", "+1234567890123456"] {
            assert!(PhoneNumber::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn languages_are_normalised() {
        assert_eq!(Language::parse("pt_br").map(|l| l.to_string()), Ok("pt-BR".to_owned()));
        assert_eq!(Language::parse("IT").map(|l| l.primary().to_owned()), Ok("it".to_owned()));
        for bad in ["", "e", "english", "en-", "en-GB-x", "e1"] {
            assert!(Language::parse(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn a_customer_need_is_one_short_trimmed_line() {
        assert_eq!(CustomerNeed::parse("  your ring size ").map(|n| n.to_string()), Ok("your ring size".to_owned()));
        assert!(CustomerNeed::parse(&"é".repeat(CustomerNeed::MAX_CHARS)).is_ok(), "characters, not bytes");
        for bad in ["", "   ", "ring\nsize", "ring\u{0}size"] {
            assert!(CustomerNeed::parse(bad).is_err(), "{bad:?} should be refused");
        }
        assert!(CustomerNeed::parse(&"x".repeat(CustomerNeed::MAX_CHARS + 1)).unwrap_err().contains("at most 160"));
    }

    #[test]
    fn references_zones_and_dates() {
        assert_eq!(OrderRef::numbered("K", 123).as_str(), "K-000123");
        assert!(OrderRef::parse("K-000123").is_ok());
        assert!(OrderRef::parse("K 1").is_err());
        assert!(TimeZone::parse("Europe/Rome").is_ok());
        assert!(TimeZone::parse("Mars/Olympus").is_err());
        assert!(parse_date("2026-02-30").is_err());
        assert!(parse_date("2026-12-01").is_ok());
    }
}
