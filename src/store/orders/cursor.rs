//! Sort orders for listing orders, and the opaque keyset cursor that continues each one.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::domain::model::Order;

/// The key that orders without a due date sort by: after every `YYYY-MM-DD`.
pub(super) const NO_DUE_DATE: &str = "9999-99-99";

/// How a list of orders is sorted; every order ends with the id, so the order is total.
///
/// Newest and oldest go by creation time (which never changes) rather than by id: the two
/// agree except for imported orders, which keep the time they were really placed, and a
/// created-date range then reads `orders_created_idx` in order and stops at a page, where
/// ordering by id had to visit every order in the range (or, worse, walk the table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Sort {
    /// Newest first.
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// Earliest due date first; orders without one last.
    DueDate,
    /// Longest in their current stage first.
    TimeInStage,
}

impl Sort {
    /// Every sort, by its name in the API.
    pub const ALL: [(&'static str, Sort); 4] = [
        ("newest", Sort::Newest),
        ("oldest", Sort::Oldest),
        ("due_date", Sort::DueDate),
        ("time_in_stage", Sort::TimeInStage),
    ];

    /// Parses the API name of a sort, naming the accepted ones when it is not one.
    pub fn parse(raw: &str) -> Result<Self, String> {
        Self::ALL.iter().find(|(name, _)| *name == raw).map(|(_, s)| *s).ok_or_else(|| {
            let names: Vec<&str> = Self::ALL.iter().map(|(n, _)| *n).collect();
            format!("`{raw}` is not one of: {}", names.join(", "))
        })
    }

    /// The API name.
    pub fn as_str(self) -> &'static str {
        Self::ALL.iter().find(|(_, s)| *s == self).map_or("newest", |(n, _)| n)
    }

    fn tag(self) -> char {
        match self {
            Sort::Newest => 'n',
            Sort::Oldest => 'o',
            Sort::DueDate => 'd',
            Sort::TimeInStage => 't',
        }
    }

    /// `ORDER BY` for this sort. A query of open orders only reads it from the open orders'
    /// partial indexes (`orders_open_created_idx` for newest and oldest), so a walk that
    /// finds nothing still ends after the open orders, not after every order ever made.
    pub(super) fn order_by(self) -> String {
        match self {
            Sort::Newest => "created_at DESC, id DESC".to_owned(),
            Sort::Oldest => "created_at, id".to_owned(),
            Sort::DueDate => format!("coalesce(due_date, '{NO_DUE_DATE}'), id"),
            Sort::TimeInStage => "stage_entered_at, id".to_owned(),
        }
    }
}

/// The sort key of the last order of a page, besides its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum SortKey {
    /// Newest and oldest: when the order was created (epoch ms).
    Created(i64),
    /// A due date, or [`NO_DUE_DATE`].
    Due(String),
    /// When the order entered its stage (epoch ms).
    Entered(i64),
}

/// Where the next page starts: just after the order this names, in one sort order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    sort: Sort,
    pub(super) key: SortKey,
    pub(super) id: i64,
}

impl Cursor {
    /// The cursor just after `order` in `sort`.
    pub fn after(sort: Sort, order: &Order) -> Self {
        let key = match sort {
            Sort::Newest | Sort::Oldest => SortKey::Created(order.created_at.timestamp_millis()),
            Sort::DueDate => SortKey::Due(
                order.due_date.map_or_else(|| NO_DUE_DATE.to_owned(), |d| d.format("%Y-%m-%d").to_string()),
            ),
            Sort::TimeInStage => SortKey::Entered(order.stage_entered_at.timestamp_millis()),
        };
        Self { sort, key, id: order.id }
    }

    /// The sort this cursor continues.
    pub fn sort(&self) -> Sort {
        self.sort
    }

    /// The cursor as opaque URL-safe text.
    pub fn encode(&self) -> String {
        let text = match &self.key {
            SortKey::Created(ms) => format!("{}{}.{ms}", self.sort.tag(), self.id),
            SortKey::Due(d) => format!("{}{}.{d}", self.sort.tag(), self.id),
            SortKey::Entered(ms) => format!("{}{}.{ms}", self.sort.tag(), self.id),
        };
        URL_SAFE_NO_PAD.encode(text)
    }

    /// Reads a cursor [`Cursor::encode`] made, for a page in `sort`.
    pub fn decode(raw: &str, sort: Sort) -> Result<Self, String> {
        let garbage = || "not a cursor this API returned".to_owned();
        let text = URL_SAFE_NO_PAD.decode(raw).ok().and_then(|b| String::from_utf8(b).ok()).ok_or_else(garbage)?;
        let mut chars = text.chars();
        let tag = chars.next().ok_or_else(garbage)?;
        let found = Sort::ALL.iter().map(|(_, s)| *s).find(|s| s.tag() == tag).ok_or_else(garbage)?;
        if found != sort {
            return Err(format!("continues the `{}` sort, not `{}`", found.as_str(), sort.as_str()));
        }
        let rest = chars.as_str();
        let (id, key) = match rest.split_once('.') {
            Some((id, key)) => (id, Some(key)),
            None => (rest, None),
        };
        let id: i64 = id.parse().map_err(|_| garbage())?;
        let key = match (sort, key) {
            (Sort::Newest | Sort::Oldest, Some(ms)) => SortKey::Created(ms.parse().map_err(|_| garbage())?),
            (Sort::DueDate, Some(d))
                if d == NO_DUE_DATE || chrono::NaiveDate::parse_from_str(d, "%Y-%m-%d").is_ok() =>
            {
                SortKey::Due(d.to_owned())
            }
            (Sort::TimeInStage, Some(ms)) => SortKey::Entered(ms.parse().map_err(|_| garbage())?),
            _ => return Err(garbage()),
        };
        Ok(Self { sort, key, id })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_for_every_sort() {
        for key in [SortKey::Created(-5), SortKey::Due("2026-03-01".into()), SortKey::Due(NO_DUE_DATE.into())] {
            let sort = if key == SortKey::Created(-5) { Sort::Oldest } else { Sort::DueDate };
            let cursor = Cursor { sort, key, id: 42 };
            assert_eq!(Cursor::decode(&cursor.encode(), sort), Ok(cursor));
        }
        let cursor = Cursor { sort: Sort::TimeInStage, key: SortKey::Entered(1_700_000_000_000), id: 7 };
        assert_eq!(Cursor::decode(&cursor.encode(), Sort::TimeInStage), Ok(cursor));
    }

    #[test]
    fn garbage_and_cursors_of_another_sort_are_refused() {
        let newest = Cursor { sort: Sort::Newest, key: SortKey::Created(9), id: 5 }.encode();
        assert!(Cursor::decode(&newest, Sort::DueDate).expect_err("other sort").contains("`newest`"));
        assert!(Cursor::decode("nope", Sort::Newest).is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("x1"), Sort::Newest).is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("d1.someday"), Sort::DueDate).is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("n1"), Sort::Newest).is_err());
        assert!(Cursor::decode(&URL_SAFE_NO_PAD.encode("t1.soon"), Sort::TimeInStage).is_err());
    }

    #[test]
    fn sorts_parse_by_their_api_names() {
        for (name, sort) in Sort::ALL {
            assert_eq!(Sort::parse(name), Ok(sort));
            assert_eq!(sort.as_str(), name);
        }
        assert!(Sort::parse("random").expect_err("unknown").contains("time_in_stage"));
    }
}
