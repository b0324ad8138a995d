//! What the test suites of every crate share: about PostgreSQL, one way to find the server
//! and one way to say a PostgreSQL-only test did not run; and a phone's snapshot built by
//! hand ([`snapshot`]).
//!
//! PostgreSQL-only tests carry `#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]`, so a run
//! without a server reports them as skipped instead of passed; `scripts/test` runs them
//! (`--run-ignored all`) in its PostgreSQL pass. When one is run by hand without the
//! variable anyway, it calls [`postgres_url_or_skip`] and returns, after saying so.

/// The variable that names the PostgreSQL server tests create their databases on.
pub const POSTGRES_URL_VAR: &str = "ASSENT_TEST_POSTGRES_URL";

/// Why a PostgreSQL-only test is ignored by default (`#[ignore = …]` needs a literal, so
/// this is a reminder to keep them alike rather than something to pass to it).
pub const IGNORE_REASON: &str = "needs ASSENT_TEST_POSTGRES_URL";

/// The server `ASSENT_TEST_POSTGRES_URL` names, if it is set and not blank.
pub fn postgres_url() -> Option<String> {
    std::env::var(POSTGRES_URL_VAR)
        .ok()
        .filter(|v| !v.trim().is_empty())
}

/// The server for a PostgreSQL-only test, or `None` after printing
/// `SKIPPED: <test> needs ASSENT_TEST_POSTGRES_URL` to stderr, so that a test that returns
/// early is never mistaken for one that passed. The test is named by its thread, which the
/// test harness names after it.
pub fn postgres_url_or_skip() -> Option<String> {
    let url = postgres_url();
    if url.is_none() {
        let thread = std::thread::current();
        let test = thread.name().unwrap_or("this test");
        eprintln!("SKIPPED: {test} {IGNORE_REASON}");
    }
    url
}

/// Every message of a phone, oldest first, read page by page (tests look at whole threads).
pub async fn phone_messages(
    store: &(impl crate::ListStore + ?Sized),
    tenant_id: &str,
    phone: &assent_core::phone::E164,
) -> crate::Result<Vec<crate::Message>> {
    let filter = crate::page::MessageFilter {
        phone: Some(phone.clone()),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut seek = crate::page::Seek::first(1000);
    loop {
        let page = store.messages_page(tenant_id, &filter, &seek).await?;
        let next = page.next().cloned();
        out.extend(page.items);
        match next {
            Some(k) => seek = crate::page::Seek::after(Some(k), 1000),
            None => return Ok(out),
        }
    }
}

/// Every ledger entry of a phone in commit order, read page by page (tests look at whole
/// histories; the app reads a page).
pub async fn phone_ledger(
    store: &(impl crate::ListStore + ?Sized),
    tenant_id: &str,
    phone: &assent_core::phone::E164,
) -> crate::Result<Vec<crate::LedgerEntry>> {
    let filter = crate::page::LedgerFilter {
        phone: Some(phone.clone()),
        ..Default::default()
    };
    let mut out = Vec::new();
    let mut seek = crate::page::Seek::first(1000);
    loop {
        let page = store.ledger_page(tenant_id, &filter, &seek).await?;
        let next = page.next().cloned();
        out.extend(page.items);
        match next {
            Some(k) => seek = crate::page::Seek::after(Some(k), 1000),
            None => return Ok(out),
        }
    }
}

/// The URL of database `name` on the server of `server` (its query string kept), for tests
/// that make a database of their own.
pub fn database_url(server: &str, name: &str) -> String {
    let (base, query) = server.split_once('?').unwrap_or((server, ""));
    let host_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[host_start..]
        .find('/')
        .map_or(base.len(), |i| host_start + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if !query.is_empty() {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// A snapshot of a phone on one customer record with both switches on, no address and no
/// recent marketing, for tests of what is planned from a snapshot.
pub fn snapshot(
    tenant: crate::Tenant,
    registrations: crate::Registrations,
    consent: assent_core::consent::ConsentState,
) -> crate::PhoneSnapshot {
    crate::PhoneSnapshot {
        tenant: std::sync::Arc::new(tenant),
        registrations: std::sync::Arc::new(registrations),
        consent,
        toggles: assent_core::gate::Toggles {
            on_a_record: true,
            job_notifications: true,
            marketing_updates: true,
        },
        address: None,
        recent_marketing: Vec::new(),
    }
}
