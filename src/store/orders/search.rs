//! What the search box means: an exact reference, email or phone finds that order through
//! its own index; anything else is a case-insensitive fragment of the reference, customer
//! name, email or phone, found through a trigram index (FTS5 on SQLite; on PostgreSQL a GIN
//! index of pieces of the text keyed by when the order was made, see [`in_periods`]).
//! Both engines return the same orders.

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
    /// A fragment of three or more characters (lowercased): trigram or search-key index.
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

/// `search_text` contains `lowered`.
pub(super) fn contains(query: &mut Query, lowered: &str) {
    query.push(" AND search_text LIKE ? ESCAPE '\\'", [Arg::Text(like_pattern(lowered))]);
}

/// An order's period of creation: `created_at` (epoch ms) over 2^31 ms, about 25 days. The
/// same arithmetic as `search_keys` in migrations/postgres/0015_fragment_search_keys.sql,
/// which prefixes each key with it.
pub(super) fn period(created_at: i64) -> i64 {
    created_at >> 31
}

/// Pieces of `lowered` (three or more characters) that any text containing it contains:
/// itself when it is three characters long, else its first, middle and last four
/// characters. They are among the index's keys (every 3- and 4-character piece of an
/// order's text); a text holding all three apart is possible but rare, and `contains`
/// decides.
fn pieces(lowered: &str) -> Vec<String> {
    let chars: Vec<char> = lowered.chars().collect();
    if chars.len() < 4 {
        return vec![lowered.to_owned()];
    }
    let last = chars.len() - 4;
    let mut starts = vec![0, last / 2, last];
    starts.dedup();
    starts.into_iter().map(|s| chars[s..s + 4].iter().collect()).collect()
}

/// Conditions on `order_search`: the order was made in one of `periods` and its text
/// contains `fragment` (three or more characters, lowered). On PostgreSQL, one lookup of the
/// key index per piece and period, which finds only that period's orders, then `LIKE` on
/// what it found.
pub(super) fn in_periods(query: &mut Query, periods: std::ops::RangeInclusive<i64>, fragment: &str) {
    let pieces = pieces(fragment);
    let placeholders = vec!["?"; pieces.len()].join(", ");
    for (i, period) in periods.enumerate() {
        query.push(if i == 0 { " AND (" } else { " OR " }, []);
        query.push(
            &format!("search_keys(search_text, created_at) @> ARRAY[{placeholders}]"),
            pieces.iter().map(|p| Arg::Text(format!("{period} {p}"))),
        );
    }
    query.push(")", []);
    contains(query, fragment);
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
    fn pieces_are_the_fragment_or_its_first_middle_and_last_four_characters() {
        assert_eq!(pieces("ros"), ["ros"]);
        assert_eq!(pieces("rossi"), ["ross", "ossi"]);
        assert_eq!(pieces("müller-ørsted"), ["müll", "er-ø", "sted"]);
        assert_eq!(pieces("abcd"), ["abcd"]);
    }

    #[test]
    fn periods_are_about_25_days_and_shift_like_postgresql() {
        assert_eq!(period(0), 0);
        assert_eq!(period((1 << 31) - 1), 0);
        assert_eq!(period(1 << 31), 1);
        assert_eq!(period(-1), -1, "an arithmetic shift, as bigint >> 31");
    }

    #[test]
    fn fts_phrases_quote_their_quotes() {
        assert_eq!(fts_phrase("o\"neil"), "\"o\"\"neil\"");
        assert_eq!(fts_phrase("a OR b*"), "\"a OR b*\"");
    }
}
