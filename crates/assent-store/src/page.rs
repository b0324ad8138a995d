//! Keyset pages: every list the API and the web app show is read a page at a time, from
//! the key of the row before it, in a stable order. No list read loads more than a page.

use assent_core::phone::E164;
use chrono::{DateTime, Utc};

use crate::{Direction, MessageKind, MessageStatus};

/// Where a row sits in its list's order: a number (a time in milliseconds, or a sequence)
/// and a tie-breaker (an id, a phone, or a sequence as text). Lists ordered by one number
/// leave `id` empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub at: i64,
    pub id: String,
}

/// Which page to read: at most `limit` rows after `from` in the list's order, or, going
/// `backwards`, the `limit` rows before it. Without `from`, the first (or, backwards, the
/// last) page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seek {
    pub from: Option<Key>,
    pub backwards: bool,
    pub limit: usize,
}

impl Seek {
    pub fn first(limit: usize) -> Seek {
        Seek {
            from: None,
            backwards: false,
            limit,
        }
    }
    pub fn after(from: Option<Key>, limit: usize) -> Seek {
        Seek {
            from,
            backwards: false,
            limit,
        }
    }
    pub fn before(from: Option<Key>, limit: usize) -> Seek {
        Seek {
            from,
            backwards: true,
            limit,
        }
    }
    /// The `LIMIT` a backend asks for: one row more than the page, to know there is more.
    pub fn fetch(&self) -> i64 {
        i64::try_from(self.limit.min(100_000)).unwrap_or(100_000) + 1
    }
}

/// One page of a list, in the list's order whichever way it was read.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// The first and last rows' keys.
    pub first: Option<Key>,
    pub last: Option<Key>,
    /// Whether rows were left beyond the page in the direction it was read.
    more: bool,
    backwards: bool,
    from_key: bool,
}

impl<T> Page<T> {
    /// A page from up to `seek.limit + 1` rows with their keys, in the direction read: the
    /// extra row only says there is more.
    pub fn of(mut rows: Vec<(Key, T)>, seek: &Seek) -> Page<T> {
        let more = rows.len() > seek.limit;
        rows.truncate(seek.limit);
        if seek.backwards {
            rows.reverse();
        }
        let first = rows.first().map(|r| r.0.clone());
        let last = rows.last().map(|r| r.0.clone());
        Page {
            items: rows.into_iter().map(|r| r.1).collect(),
            first,
            last,
            more,
            backwards: seek.backwards,
            from_key: seek.from.is_some(),
        }
    }

    /// Maps the items, keys kept.
    pub fn map<U>(self, f: impl FnMut(T) -> U) -> Page<U> {
        Page {
            items: self.items.into_iter().map(f).collect(),
            first: self.first,
            last: self.last,
            more: self.more,
            backwards: self.backwards,
            from_key: self.from_key,
        }
    }

    /// The key the next page starts after, when there is one.
    pub fn next(&self) -> Option<&Key> {
        let more_after = if self.backwards {
            self.from_key
        } else {
            self.more
        };
        more_after.then_some(self.last.as_ref()).flatten()
    }

    /// The key the previous page ends before, when there is one.
    pub fn prev(&self) -> Option<&Key> {
        let more_before = if self.backwards {
            self.more
        } else {
            self.from_key
        };
        more_before.then_some(self.first.as_ref()).flatten()
    }
}

/// Which messages a list shows: one phone's (oldest first) or the tenant's (newest first),
/// optionally only those with a status, a direction or a kind.
#[derive(Debug, Clone, Default)]
pub struct MessageFilter {
    pub phone: Option<E164>,
    pub status: Option<MessageStatus>,
    pub direction: Option<Direction>,
    pub kind: Option<MessageKind>,
}

/// Which customers a list shows: a search (names and phone digits, see
/// [`crate::customer_search_patterns`]; empty lists all), and optionally only those with a
/// phone whose stored marketing status is `marketing` (a phone with no consent yet is
/// `none`), or who carry `tag`.
#[derive(Debug, Clone, Default)]
pub struct CustomerFilter {
    pub q: String,
    pub marketing: Option<assent_core::consent::MarketingStatus>,
    pub tag: Option<String>,
}

impl CustomerFilter {
    /// Only a search.
    pub fn search(q: &str) -> Self {
        CustomerFilter {
            q: q.to_string(),
            ..Default::default()
        }
    }
}

/// Which ledger entries a list shows, oldest first: `from` included, `to` excluded.
#[derive(Debug, Clone, Default)]
pub struct LedgerFilter {
    pub phone: Option<E164>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
}

/// A list's SQL, built clause by clause with `$n` placeholders numbered in order of
/// appearance (what both drivers read the same way; see [`crate::shared`]). The caller
/// binds values in the same order it asked for placeholders.
#[derive(Debug, Default)]
pub struct Sql {
    pub text: String,
    n: usize,
}

impl Sql {
    pub fn new(text: &str) -> Sql {
        Sql {
            text: text.to_string(),
            n: 0,
        }
    }
    /// The next placeholder.
    pub fn param(&mut self) -> String {
        self.n += 1;
        format!("${}", self.n)
    }
    pub fn push(&mut self, s: &str) -> &mut Sql {
        self.text.push_str(s);
        self
    }
    /// ` AND {column} = $n`.
    pub fn and_eq(&mut self, column: &str) -> &mut Sql {
        let p = self.param();
        self.text.push_str(&format!(" AND {column} = {p}"));
        self
    }
    /// The keyset tail: `AND (a, b) > ($n, $m)` when resuming, then `ORDER BY` and
    /// `LIMIT`. `columns` are the order's one or two columns, `newest_first` whether the
    /// list runs in descending order. Binds: the key's parts (one per column), then the
    /// limit ([`Seek::fetch`]).
    pub fn seek(&mut self, columns: &[&str], newest_first: bool, seek: &Seek) -> &mut Sql {
        let desc = newest_first != seek.backwards;
        let (cmp, order) = if desc { ("<", "DESC") } else { (">", "ASC") };
        if seek.from.is_some() {
            let params: Vec<String> = columns.iter().map(|_| self.param()).collect();
            self.text.push_str(&format!(
                " AND ({}) {cmp} ({})",
                columns.join(", "),
                params.join(", ")
            ));
        }
        let ordered: Vec<String> = columns.iter().map(|c| format!("{c} {order}")).collect();
        let limit = self.param();
        self.text
            .push_str(&format!(" ORDER BY {} LIMIT {limit}", ordered.join(", ")));
        self
    }
    /// `count` rows of `self` as a subquery, at most `cap` (binds: `self`'s, then `cap`).
    pub fn capped_count(mut self) -> Sql {
        let p = self.param();
        Sql {
            text: format!("SELECT count(*) FROM ({} LIMIT {p}) AS capped", self.text),
            n: self.n,
        }
    }
    /// `column IN ($n, …)` for `count` values (at least one).
    pub fn in_list(&mut self, column: &str, count: usize) -> &mut Sql {
        let params: Vec<String> = (0..count.max(1)).map(|_| self.param()).collect();
        self.text
            .push_str(&format!(" {column} IN ({})", params.join(", ")));
        self
    }
}

/// How many rows "of N" counts at most: beyond it a page says "of 10,000+".
pub const COUNT_CAP: u64 = 10_000;

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: i64) -> Key {
        Key {
            at: n,
            id: String::new(),
        }
    }

    #[test]
    fn pages_know_their_neighbours() {
        let rows = |r: std::ops::Range<i64>| r.map(|n| (key(n), n)).collect::<Vec<_>>();
        // First page of 3, with more.
        let p = Page::of(rows(1..5), &Seek::first(3));
        assert_eq!(p.items, [1, 2, 3]);
        assert_eq!(p.next(), Some(&key(3)));
        assert_eq!(p.prev(), None);
        // The last page, reached forwards.
        let p = Page::of(rows(4..6), &Seek::after(Some(key(3)), 3));
        assert_eq!(p.items, [4, 5]);
        assert_eq!(p.next(), None);
        assert_eq!(p.prev(), Some(&key(4)));
        // Backwards from 4: read 3, 2, 1 (no more before).
        let p = Page::of(
            vec![(key(3), 3), (key(2), 2), (key(1), 1)],
            &Seek::before(Some(key(4)), 3),
        );
        assert_eq!(p.items, [1, 2, 3]);
        assert_eq!(p.prev(), None);
        assert_eq!(p.next(), Some(&key(3)));
    }

    #[test]
    fn sql_numbers_placeholders_in_order() {
        let mut s = Sql::new("SELECT * FROM t WHERE tenant_id = $1");
        s.param();
        s.and_eq("phone");
        s.seek(&["created_at", "id"], true, &Seek::after(Some(key(1)), 10));
        assert_eq!(
            s.text,
            "SELECT * FROM t WHERE tenant_id = $1 AND phone = $2 AND (created_at, id) < ($3, $4) \
             ORDER BY created_at DESC, id DESC LIMIT $5"
        );
        let mut s = Sql::new("SELECT 1 FROM t WHERE tenant_id = $1");
        s.param();
        assert_eq!(
            s.capped_count().text,
            "SELECT count(*) FROM (SELECT 1 FROM t WHERE tenant_id = $1 LIMIT $2) AS capped"
        );
    }
}
