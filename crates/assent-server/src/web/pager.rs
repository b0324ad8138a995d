//! The web app's list pages: 50 rows a page read from a keyset cursor, "1–50 of 1,234",
//! and Previous and Next links (`templates/pager.html`).

use assent_store::page::{COUNT_CAP, Page, Seek};
use serde::Deserialize;

use super::{thousands, url_part};
use crate::service::pages::{WEB_PAGE, key_cursor, parse_key};

/// A list page's place: after a row's cursor (Next), before one (Previous), and the
/// position of its first row (`at`, for "51–100").
#[derive(Deserialize, Default, Clone)]
pub struct PageParams {
    pub after: Option<String>,
    pub before: Option<String>,
    pub at: Option<String>,
}

impl PageParams {
    /// The store's read for this page. A `newest_first` page shows a list the store keeps
    /// oldest first (the ledger) the other way round. A cursor that is not one (edited by
    /// hand, say) starts from the top.
    pub fn seek(&self, numeric: bool, newest_first: bool) -> Seek {
        let key = |v: &Option<String>| v.as_deref().and_then(|c| parse_key(c, numeric));
        let (from, back) = match key(&self.before) {
            Some(k) => (Some(k), true),
            None => (key(&self.after), false),
        };
        Seek {
            from,
            backwards: back != newest_first,
            limit: WEB_PAGE,
        }
    }

    fn at(&self) -> u64 {
        self.at
            .as_deref()
            .and_then(|a| a.parse().ok())
            .filter(|a| *a >= 1)
            .unwrap_or(1)
    }
}

/// What `pager.html` shows.
pub struct Pager {
    pub first: u64,
    pub last: u64,
    /// "1,234", or "10,000+" past the count's cap.
    pub total: String,
    pub empty: bool,
    pub prev: Option<String>,
    pub next: Option<String>,
}

/// "10,000+" past the count's cap.
pub fn total_text(n: u64) -> String {
    if n > COUNT_CAP {
        format!("{}+", thousands(COUNT_CAP))
    } else {
        thousands(n)
    }
}

impl Pager {
    /// The pager of a page of `n` rows whose neighbours' cursors are known (the send log
    /// keeps its own keys).
    pub fn of_keys(
        params: &PageParams,
        n: usize,
        total: u64,
        base: &str,
        prev: Option<String>,
        next: Option<String>,
    ) -> Pager {
        let n = n as u64;
        let first = if prev.is_none() { 1 } else { params.at() };
        let sep = if base.contains('?') { '&' } else { '?' };
        let per_page = WEB_PAGE as u64;
        Pager {
            first,
            last: first + n.saturating_sub(1),
            total: total_text(total.max(first + n.saturating_sub(1))),
            empty: n == 0,
            prev: prev.map(|c| {
                format!(
                    "{base}{sep}before={}&at={}",
                    url_part(&c),
                    first.saturating_sub(per_page).max(1)
                )
            }),
            next: next.map(|c| format!("{base}{sep}after={}&at={}", url_part(&c), first + n)),
        }
    }

    /// The pager of `page` (read with `params.seek(_, newest_first)`; its items stay in
    /// the store's order, which a `newest_first` page shows reversed), `total` rows in all,
    /// its links on `base` (a path with the list's own query, if any).
    pub fn new<T>(
        page: &Page<T>,
        params: &PageParams,
        newest_first: bool,
        total: u64,
        base: &str,
    ) -> Pager {
        let (prev, next) = if newest_first {
            (page.next().cloned(), page.prev().cloned())
        } else {
            (page.prev().cloned(), page.next().cloned())
        };
        Pager::of_keys(
            params,
            page.items.len(),
            total,
            base,
            prev.map(|k| key_cursor(&k)),
            next.map(|k| key_cursor(&k)),
        )
    }
}
