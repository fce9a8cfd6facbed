//! What the search box means: an exact reference, email or phone finds that order through
//! its own index; anything else is a case-insensitive fragment of the reference, customer
//! name, email or phone, found through a trigram index (FTS5 on SQLite, `pg_trgm` on
//! PostgreSQL). Both engines return the same orders.

use super::list::{Arg, Query};
use crate::domain::order::{EmailAddress, OrderRef, PhoneNumber};
use crate::store::{Backend, Db, on_read};

/// How a search text is matched, decided once per search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Search {
    /// Some order has exactly this reference (lowercased).
    Reference(String),
    /// Some order has exactly this email (lowercased).
    Email(String),
    /// Some order has exactly this phone number (E.164).
    Phone(String),
    /// A fragment of three or more characters (lowercased): trigram index.
    Fragment(String),
    /// One or two characters, too short for trigrams: read in list order until the page
    /// is full, which is quick for the common letters such short texts are made of.
    Short(String),
}

/// Escapes `%`, `_` and `\` so user text matches literally inside a LIKE pattern.
pub(super) fn like_pattern(lowered: &str) -> String {
    let mut out = String::with_capacity(lowered.len() + 2);
    out.push('%');
    for c in lowered.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// An FTS5 phrase matching the text literally: inside double quotes only `"` is special.
fn fts_phrase(lowered: &str) -> String {
    format!("\"{}\"", lowered.replace('"', "\"\""))
}

async fn exists(db: &Db, column: &str, value: &str) -> Result<bool, sqlx::Error> {
    // `column` is one of the fixed expressions below, never input.
    let sql = format!("SELECT 1 FROM orders WHERE {column} = $1 LIMIT 1");
    let found: Option<i32> =
        on_read!(db, |conn| sqlx::query_scalar(sqlx::AssertSqlSafe(sql)).bind(value).fetch_optional(conn).await)?;
    Ok(found.is_some())
}

/// Decides how `text` (trimmed, not empty) is matched. Exact lookups compare ASCII-lowered
/// text, because SQLite's `lower()` folds ASCII only; other text is a fragment, lowered
/// in Rust as `search_text` was.
pub(super) async fn resolve(db: &Db, text: &str) -> Result<Search, sqlx::Error> {
    if text.is_ascii() {
        let lowered = text.to_ascii_lowercase();
        if OrderRef::parse(text).is_ok() && exists(db, "lower(reference)", &lowered).await? {
            return Ok(Search::Reference(lowered));
        }
        if EmailAddress::parse(text).is_ok() && exists(db, "lower(customer_email)", &lowered).await? {
            return Ok(Search::Email(lowered));
        }
        if let Ok(phone) = PhoneNumber::parse(text)
            && exists(db, "customer_phone", phone.as_str()).await?
        {
            return Ok(Search::Phone(phone.as_str().to_owned()));
        }
    }
    let lowered = text.to_lowercase();
    Ok(if lowered.chars().count() >= 3 { Search::Fragment(lowered) } else { Search::Short(lowered) })
}

impl Search {
    /// Adds the condition that selects the matching orders.
    pub(super) fn narrow(&self, query: &mut Query, backend: Backend) {
        match self {
            Search::Reference(r) => query.push(" AND lower(reference) = ?", [Arg::Text(r.clone())]),
            Search::Email(e) => query.push(" AND lower(customer_email) = ?", [Arg::Text(e.clone())]),
            Search::Phone(p) => query.push(" AND customer_phone = ?", [Arg::Text(p.clone())]),
            Search::Fragment(f) => match backend {
                Backend::Sqlite => query.push(
                    " AND id IN (SELECT rowid FROM orders_search WHERE orders_search MATCH ?)",
                    [Arg::Text(fts_phrase(f))],
                ),
                Backend::Postgres => contains(query, f),
            },
            Search::Short(s) => contains(query, s),
        }
    }
}

/// `search_text` contains `lowered` (a trigram index serves it on PostgreSQL for three or
/// more characters).
pub(super) fn contains(query: &mut Query, lowered: &str) {
    query.push(" AND search_text LIKE ? ESCAPE '\\'", [Arg::Text(like_pattern(lowered))]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_match_user_text_literally() {
        assert_eq!(like_pattern("ana_50%"), "%ana\\_50\\%%");
        assert_eq!(like_pattern("a\\b"), "%a\\\\b%");
    }

    #[test]
    fn fts_phrases_quote_their_quotes() {
        assert_eq!(fts_phrase("o\"neil"), "\"o\"\"neil\"");
        assert_eq!(fts_phrase("a OR b*"), "\"a OR b*\"");
    }
}
