//! Several processes on one PostgreSQL database: two servers (two `AppState`s, each with
//! its own connection pool, simulator and memory) share a database, as two `assent serve`
//! processes behind a load balancer do. Needs `ASSENT_TEST_POSTGRES_URL`: every test here is
//! `#[ignore]`d, so a run without it reports them as skipped (`scripts/test` runs them in
//! its PostgreSQL pass).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use crate::common::*;
use assent_core::consent::{Change, ConsentState, LedgerState};
use assent_core::gate::Purpose;
use assent_core::keyword::LINK_PHRASE;
use assent_server::Clock;
use assent_store::{Direction, LedgerEntry, MessageKind, MessageStatus};
use reqwest::StatusCode;
use serde_json::json;

fn skipped() -> bool {
    assent_store::testing::postgres_url_or_skip().is_none()
}

/// xorshift64*: a reproducible random sequence without another dependency.
struct Rng(u64);

impl Rng {
    fn seeded() -> Rng {
        let seed = std::env::var("ASSENT_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("seed {seed} (ASSENT_TEST_SEED={seed} repeats this run)");
        Rng(seed | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 33) as usize % n
    }
}

fn new_sid() -> String {
    format!("SM{}", uuid::Uuid::now_v7().simple())
}

/// An inbound text with a chosen `MessageSid`, signed for the server that receives it.
async fn text(app: &TestApp, from: &str, to: &str, body: &str, sid: &str) -> StatusCode {
    app.inbound_with(&[
        ("MessageSid", sid),
        ("AccountSid", "ACtest"),
        ("From", from),
        ("To", to),
        ("Body", body),
    ])
    .await
}

/// The ledger's consent entries as the state machine's changes, oldest first.
fn changes(ledger: &[LedgerEntry]) -> Vec<Change> {
    ledger
        .iter()
        .filter_map(|e| {
            Some(Change {
                channel: e.entry.channel.channel()?,
                old_state: e.entry.old_state,
                new_state: e.entry.new_state,
                source: e.entry.source,
                rule: e.entry.evidence.rule.clone(),
                at: None,
            })
        })
        .collect()
}

/// Reads a phone back through both processes and checks it against its ledger: the state
/// equals the ledger's fold, and every entry starts from the state the previous one left
/// (a write that did not see the one before it would break the chain).
async fn assert_state_is_the_ledger_fold(a: &TestApp, b: &TestApp, t: &Tenant, phone: &str) {
    let ledger = assent_store::testing::phone_ledger(a.app.store.as_ref(), &t.id, &e164(phone))
        .await
        .unwrap();
    let changes = changes(&ledger);
    let (tx_out, marketing) = ConsentState::fold(&changes);
    let mut last: BTreeMap<&str, LedgerState> = BTreeMap::from([
        ("transactional", LedgerState::Active),
        ("marketing", LedgerState::None),
    ]);
    for c in &changes {
        let prev = last.get_mut(c.channel.as_str()).unwrap();
        assert_eq!(
            &c.old_state, prev,
            "{phone}: an entry that did not see the previous one: {changes:#?}"
        );
        *prev = c.new_state;
    }
    for app in [a, b] {
        let snap = app
            .app
            .store
            .snapshot(&t.id, &e164(phone), app.clock.now())
            .await
            .unwrap();
        assert_eq!(
            (snap.consent.transactional_opted_out, snap.consent.marketing),
            (tx_out, marketing),
            "{phone}: state differs from the ledger's fold"
        );
        let c = app.consent(t, phone).await;
        assert_eq!(c["transactional"]["opted_out"], tx_out);
        assert_eq!(c["marketing"]["status"], marketing.as_str());
    }
}

/// Every inbound `MessageSid` was recorded exactly once.
async fn assert_each_sid_once(app: &TestApp, t: &Tenant, phone: &str, sids: &HashSet<String>) {
    let messages = assent_store::testing::phone_messages(&*app.app.store, &t.id, &e164(phone))
        .await
        .unwrap();
    let inbound: Vec<&str> = messages
        .iter()
        .filter(|m| m.direction == Direction::Inbound)
        .filter_map(|m| m.provider_id.as_deref())
        .collect();
    let unique: HashSet<&str> = inbound.iter().copied().collect();
    assert_eq!(inbound.len(), unique.len(), "{phone}: a MessageSid twice");
    for sid in sids {
        assert!(unique.contains(sid.as_str()), "{phone}: {sid} missing");
    }
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Stop {
        marketing_thread: bool,
    },
    Start {
        marketing_thread: bool,
    },
    Yes {
        marketing_thread: bool,
    },
    LinkPhrase,
    OptInRequest,
    /// The same `MessageSid` as an earlier text, to the other process (a Twilio retry).
    Retry,
    Drain,
}

fn random_step(rng: &mut Rng) -> Step {
    match rng.below(9) {
        0 => Step::Stop {
            marketing_thread: false,
        },
        1 => Step::Stop {
            marketing_thread: true,
        },
        2 => Step::Start {
            marketing_thread: rng.below(2) == 0,
        },
        3 => Step::Yes {
            marketing_thread: rng.below(3) > 0,
        },
        4 => Step::LinkPhrase,
        5 | 6 => Step::OptInRequest,
        7 => Step::Retry,
        _ => Step::Drain,
    }
}

struct Setup {
    a: Arc<TestApp>,
    b: Arc<TestApp>,
    t: Arc<Tenant>,
    /// (phone, customer id)
    phones: Vec<(String, String)>,
}

async fn two_processes(phones: usize) -> Setup {
    let a = TestApp::spawn().await;
    let b = a.another_process().await;
    let (t, c) = a.tenant().await;
    let mut list = vec![(PHONE.to_string(), c)];
    for i in 1..phones {
        let phone = format!("+1512555{:04}", 200 + i);
        let c = a
            .customer(&t, &format!("Customer {i}"), &phone, true, true)
            .await;
        list.push((phone, c));
    }
    Setup {
        a: Arc::new(a),
        b: Arc::new(b),
        t: Arc::new(t),
        phones: list,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn interleaved_consent_events_from_two_processes_leave_the_state_the_ledger_folds_to() {
    if skipped() {
        return;
    }
    let s = two_processes(3).await;
    let mut rng = Rng::seeded();
    // Four streams at once, two per process, each a random sequence of events on three
    // phones: the phones' locks decide the interleaving.
    let mut streams = Vec::new();
    for stream in 0..4 {
        let steps: Vec<(Step, usize)> = (0..30)
            .map(|_| (random_step(&mut rng), rng.below(s.phones.len())))
            .collect();
        let (me, other) = if stream % 2 == 0 {
            (s.a.clone(), s.b.clone())
        } else {
            (s.b.clone(), s.a.clone())
        };
        let (t, phones) = (s.t.clone(), s.phones.clone());
        streams.push(tokio::spawn(async move {
            let mut sent: Vec<(String, String, &'static str, String)> = Vec::new();
            for (step, p) in steps {
                let (phone, customer) = &phones[p];
                let (to, body) = match step {
                    Step::Stop { marketing_thread } => {
                        (if marketing_thread { MK } else { TX }, "STOP")
                    }
                    Step::Start { marketing_thread } => {
                        (if marketing_thread { MK } else { TX }, "START")
                    }
                    Step::Yes { marketing_thread } => {
                        (if marketing_thread { MK } else { TX }, "YES")
                    }
                    Step::LinkPhrase => (MK, LINK_PHRASE),
                    Step::OptInRequest => {
                        let (st, v) = me
                            .post(
                                &format!("/customers/{customer}/phones/{phone}/opt-in-requests"),
                                &t.key,
                                json!({}),
                            )
                            .await;
                        assert!(!st.is_server_error(), "opt-in request: {st} {v}");
                        continue;
                    }
                    Step::Retry => {
                        if let Some((phone, body, to, sid)) = sent.last() {
                            let st = text(&other, phone, to, body, sid).await;
                            assert_eq!(st, StatusCode::OK, "retried {sid}");
                        }
                        continue;
                    }
                    Step::Drain => {
                        assent_server::dispatch::dispatch_once(&me.app, 20)
                            .await
                            .unwrap();
                        continue;
                    }
                };
                let sid = new_sid();
                let st = text(&me, phone, to, body, &sid).await;
                assert_eq!(st, StatusCode::OK, "{body} to {to}");
                sent.push((phone.clone(), body.to_string(), to, sid));
            }
            sent
        }));
    }
    let mut sids: BTreeMap<String, HashSet<String>> = BTreeMap::new();
    for s in streams {
        for (phone, _, _, sid) in s.await.unwrap() {
            sids.entry(phone).or_default().insert(sid);
        }
    }
    s.a.drain().await;
    s.b.drain().await;
    for (phone, _) in &s.phones {
        assert_state_is_the_ledger_fold(&s.a, &s.b, &s.t, phone).await;
        let none = HashSet::new();
        assert_each_sid_once(&s.a, &s.t, phone, sids.get(phone).unwrap_or(&none)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn concurrent_stop_stop_start_from_two_processes_all_reach_the_ledger() {
    if skipped() {
        return;
    }
    let s = two_processes(1).await;
    let mut all = HashSet::new();
    for _round in 0..15 {
        let sids = [new_sid(), new_sid(), new_sid()];
        let (x, y, z) = tokio::join!(
            text(&s.a, PHONE, TX, "STOP", &sids[0]),
            text(&s.b, PHONE, TX, "STOP", &sids[1]),
            text(&s.a, PHONE, TX, "START", &sids[2]),
        );
        assert_eq!((x, y, z), (StatusCode::OK, StatusCode::OK, StatusCode::OK));
        all.extend(sids);
    }
    let ledger = assent_store::testing::phone_ledger(s.a.app.store.as_ref(), &s.t.id, &e164(PHONE))
        .await
        .unwrap();
    for sid in &all {
        // STOP and START on the transactional thread each write a transactional entry.
        let n = ledger
            .iter()
            .filter(|e| {
                e.entry.channel == "transactional"
                    && e.entry.evidence.message_sid.as_deref() == Some(sid.as_str())
            })
            .count();
        assert_eq!(n, 1, "{sid}");
    }
    assert_state_is_the_ledger_fold(&s.a, &s.b, &s.t, PHONE).await;
    assert_each_sid_once(&s.a, &s.t, PHONE, &all).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn one_message_sid_posted_to_both_processes_at_once_changes_consent_once() {
    if skipped() {
        return;
    }
    let s = two_processes(1).await;
    let mut all = HashSet::new();
    for round in 0..20 {
        let sid = new_sid();
        let body = if round % 2 == 0 { "STOP" } else { "START" };
        let (x, y) = tokio::join!(
            text(&s.a, PHONE, TX, body, &sid),
            text(&s.b, PHONE, TX, body, &sid),
        );
        assert_eq!((x, y), (StatusCode::OK, StatusCode::OK));
        all.insert(sid);
    }
    let ledger = assent_store::testing::phone_ledger(s.a.app.store.as_ref(), &s.t.id, &e164(PHONE))
        .await
        .unwrap();
    for sid in &all {
        let n = ledger
            .iter()
            .filter(|e| {
                e.entry.channel == "transactional"
                    && e.entry.evidence.message_sid.as_deref() == Some(sid.as_str())
            })
            .count();
        assert_eq!(n, 1, "{sid} applied {n} times");
    }
    assert_each_sid_once(&s.a, &s.t, PHONE, &all).await;
    assert_state_is_the_ledger_fold(&s.a, &s.b, &s.t, PHONE).await;
    // One reply per text, whichever process took it.
    s.a.drain().await;
    s.b.drain().await;
    assert_eq!(
        s.a.sent_to(PHONE).len() + s.b.sent_to(PHONE).len(),
        all.len()
    );
}

async fn set_rate_limits(s: &Setup, per_sender_per_minute: u32, per_tenant_per_day: u32) {
    let (st, v) =
        s.a.put(
            "/settings",
            &s.t.key,
            json!({"rate_limits": {"per_sender_per_minute": per_sender_per_minute,
                                   "per_tenant_per_day": per_tenant_per_day}}),
        )
        .await;
    assert_eq!(st, StatusCode::OK, "{v}");
}

/// Queues `n` job notifications over the setup's phones, from both processes at once.
async fn queue_from_both(s: &Setup, n: usize) {
    let mut queueing = Vec::new();
    for (half, app) in [s.a.clone(), s.b.clone()].into_iter().enumerate() {
        let (t, phones) = (s.t.clone(), s.phones.clone());
        queueing.push(tokio::spawn(async move {
            let tenant = app.app.store.tenant(&t.id).await.unwrap().unwrap();
            for i in (half..n).step_by(2) {
                let phone = e164(&phones[i % phones.len()].0);
                let queued = assent_server::service::send(
                    &app.app,
                    &tenant,
                    &phone,
                    Purpose::JobNotification,
                    &format!("Acme Plumbing: job update #{i}"),
                    MessageKind::Api,
                    None,
                )
                .await
                .unwrap();
                assert!(queued.is_ok(), "{queued:?}");
            }
        }));
    }
    for q in queueing {
        q.await.unwrap();
    }
}

/// Queues `n` job notifications in order, `run` in a row to each phone: two claims of
/// `run` messages then hold different phones, and only the sender's and the tenant's
/// locks stand between them.
async fn queue_in_runs(s: &Setup, n: usize, run: usize) {
    let tenant = s.a.app.store.tenant(&s.t.id).await.unwrap().unwrap();
    for i in 0..n {
        let phone = e164(&s.phones[(i / run) % s.phones.len()].0);
        let queued = assent_server::service::send(
            &s.a.app,
            &tenant,
            &phone,
            Purpose::JobNotification,
            &format!("Acme Plumbing: job update #{i}"),
            MessageKind::Api,
            None,
        )
        .await
        .unwrap();
        assert!(queued.is_ok(), "{queued:?}");
    }
}

/// Both processes' workers drain the queue at once until neither finds work; returns how
/// many messages each handed off.
async fn drain_with_both(s: &Setup, batch: u32) -> Vec<usize> {
    drain_with_both_until(s, batch, None).await
}

/// As [`drain_with_both`]; with `all`, each worker keeps claiming until that many have been
/// handed off between them (a worker whose claims keep finding the other's phones locked on
/// a busy machine would otherwise give up early), for at most a minute.
async fn drain_with_both_until(s: &Setup, batch: u32, all: Option<usize>) -> Vec<usize> {
    let mut workers = Vec::new();
    // Both first claims start together, where a missing lock would show.
    let start = Arc::new(tokio::sync::Barrier::new(2));
    let total = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    for app in [s.a.clone(), s.b.clone()] {
        let (start, total) = (start.clone(), total.clone());
        workers.push(tokio::spawn(async move {
            start.wait().await;
            let mut idle = 0;
            let mut claimed = 0;
            loop {
                let done = match all {
                    Some(all) => {
                        total.load(std::sync::atomic::Ordering::SeqCst) >= all
                            || std::time::Instant::now() > deadline
                    }
                    None => idle >= 5,
                };
                if done {
                    break;
                }
                let n = assent_server::dispatch::dispatch_once(&app.app, batch)
                    .await
                    .unwrap();
                claimed += n;
                total.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                if n == 0 {
                    idle += 1;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                } else {
                    idle = 0;
                }
            }
            claimed
        }));
    }
    let mut claimed = Vec::new();
    for w in workers {
        claimed.push(w.await.unwrap());
    }
    claimed
}

/// Holds a named advisory lock from a connection of its own, as another process's claim
/// or STOP would, until `release`.
struct HeldElsewhere(sqlx::PgConnection, String);

impl HeldElsewhere {
    async fn take(url: &str, key: String) -> HeldElsewhere {
        let mut conn = pg_connect(url).await;
        sqlx::query("SELECT pg_advisory_lock(hashtextextended($1, 0))")
            .bind(&key)
            .execute(&mut conn)
            .await
            .unwrap();
        HeldElsewhere(conn, key)
    }
    async fn release(mut self) {
        sqlx::query("SELECT pg_advisory_unlock(hashtextextended($1, 0))")
            .bind(&self.1)
            .execute(&mut self.0)
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn a_claim_leaves_what_another_holds_for_later_instead_of_waiting() {
    if skipped() {
        return;
    }
    let s = two_processes(2).await;
    set_rate_limits(&s, 1_000_000, 1_000_000).await;
    let (busy, free) = (&s.phones[0].0, &s.phones[1].0);
    let claim = || assent_server::dispatch::dispatch_once(&s.a.app, 100);

    // A phone being written elsewhere (a STOP, another claim): its messages wait.
    queue_in_runs(&s, 4, 2).await;
    let held = HeldElsewhere::take(&s.a.db_url, format!("{}:{busy}", s.t.id)).await;
    assert_eq!(claim().await.unwrap(), 2, "only the free phone's");
    assert!(s.a.sent().iter().all(|m| &m.0 == free));
    held.release().await;
    assert_eq!(claim().await.unwrap(), 2, "then the rest");

    // The sender's pace being updated elsewhere: nothing from that sender.
    queue_in_runs(&s, 4, 2).await;
    let held = HeldElsewhere::take(&s.a.db_url, format!("sender:{TX}")).await;
    assert_eq!(claim().await.unwrap(), 0);
    held.release().await;
    assert_eq!(claim().await.unwrap(), 4);

    // The tenant's daily count being updated elsewhere: nothing of that tenant.
    queue_in_runs(&s, 4, 2).await;
    let held = HeldElsewhere::take(&s.a.db_url, format!("daily:{}", s.t.id)).await;
    assert_eq!(claim().await.unwrap(), 0);
    held.release().await;
    assert_eq!(claim().await.unwrap(), 4);
    assert_eq!(s.a.sent().len(), 12);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn a_stop_waits_for_the_phone_another_process_holds() {
    if skipped() {
        return;
    }
    let s = two_processes(1).await;
    let held = HeldElsewhere::take(&s.a.db_url, format!("{}:{PHONE}", s.t.id)).await;
    let b = s.b.clone();
    let stop = tokio::spawn(async move { text(&b, PHONE, TX, "STOP", &new_sid()).await });
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!stop.is_finished(), "the STOP waits for the phone's lock");
    assert_eq!(
        s.a.consent(&s.t, PHONE).await["transactional"]["opted_out"],
        false
    );
    held.release().await;
    assert_eq!(stop.await.unwrap(), StatusCode::OK);
    assert_eq!(
        s.a.consent(&s.t, PHONE).await["transactional"]["opted_out"],
        true
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn a_senders_pace_holds_across_two_workers() {
    if skipped() {
        return;
    }
    let s = two_processes(6).await;
    // 600 a minute lets a burst of 10 leave at once; the clock does not move.
    set_rate_limits(&s, 600, 100_000).await;
    queue_in_runs(&s, 60, 12).await;
    let claimed = drain_with_both(&s, 12).await;
    assert_eq!(
        claimed.iter().sum::<usize>(),
        10,
        "one burst between both processes, not one each: {claimed:?}"
    );
    assert_eq!(s.a.sent().len() + s.b.sent().len(), 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn the_daily_cap_holds_across_two_workers() {
    if skipped() {
        return;
    }
    let s = two_processes(6).await;
    set_rate_limits(&s, 1_000_000, 6).await;
    queue_in_runs(&s, 60, 8).await;
    let claimed = drain_with_both(&s, 8).await;
    assert_eq!(claimed.iter().sum::<usize>(), 6, "{claimed:?}");
    assert_eq!(s.a.sent().len() + s.b.sent().len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn two_workers_draining_one_queue_hand_each_message_off_exactly_once() {
    if skipped() {
        return;
    }
    const QUEUED: usize = 2000;
    let s = two_processes(40).await;
    set_rate_limits(&s, 1_000_000, 1_000_000).await;
    queue_from_both(&s, QUEUED).await;
    let claimed = drain_with_both_until(&s, 50, Some(QUEUED)).await;
    let sent: Vec<String> =
        s.a.sent()
            .into_iter()
            .chain(s.b.sent())
            .map(|(_, _, body)| body)
            .collect();
    let unique: HashSet<&String> = sent.iter().collect();
    assert_eq!(unique.len(), QUEUED, "every message handed off");
    assert_eq!(sent.len(), QUEUED, "and none twice");
    assert_eq!(claimed.iter().sum::<usize>(), QUEUED);
    assert!(
        claimed.iter().all(|n| *n > 0),
        "both workers took part: {claimed:?}"
    );
    let mut statuses: BTreeMap<MessageStatus, usize> = BTreeMap::new();
    for (phone, _) in &s.phones {
        for m in assent_store::testing::phone_messages(&*s.a.app.store, &s.t.id, &e164(phone))
            .await
            .unwrap()
        {
            *statuses.entry(m.status).or_default() += 1;
        }
    }
    assert_eq!(
        statuses,
        BTreeMap::from([(MessageStatus::Sent, QUEUED)]),
        "every message recorded as sent once"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn processes_starting_together_migrate_the_database_once() {
    if skipped() {
        return;
    }
    // A fresh database nobody has migrated yet; six processes start on it together.
    let (_db, url) = TestDb::fresh().await;
    let mut opening = Vec::new();
    for _ in 0..6 {
        let url = url.clone();
        opening.push(tokio::spawn(async move { open_store(&url).await }));
    }
    for o in opening {
        o.await.unwrap().ping().await.unwrap();
    }
    let mut conn = pg_connect(&url).await;
    // Versions are numbered per engineer, so a branch may skip some: count distinct ones.
    let row = sqlx::query(
        "SELECT COUNT(*) AS n, COUNT(DISTINCT version) AS distinct_n, MIN(version) AS first \
         FROM _sqlx_migrations",
    )
    .fetch_one(&mut conn)
    .await
    .unwrap();
    let (n, first, distinct_n): (i64, i64, i64) = (
        sqlx::Row::get(&row, "n"),
        sqlx::Row::get(&row, "first"),
        sqlx::Row::get(&row, "distinct_n"),
    );
    assert_eq!((first, n), (1, distinct_n), "each migration recorded once");
    assert!(n >= 8, "every migration applied: {n}");
}

/// A database URL with `sslmode=require` connects over TLS, as a managed PostgreSQL
/// demands (sqlx was once built without TLS here, and such a URL failed to connect).
#[tokio::test]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn the_store_connects_over_tls_when_the_url_requires_it() {
    if skipped() {
        return;
    }
    let (_db, url) = TestDb::fresh().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    let store = assent_postgres::PostgresStore::open(&format!("{url}{sep}sslmode=require"))
        .await
        .unwrap();
    assent_store::TenantStore::migrate(&store).await.unwrap();
    let mut c = pg_connect(&url).await;
    let (encrypted, n): (Option<bool>, i64) = sqlx::query_as(
        "SELECT bool_and(s.ssl), COUNT(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.datname = current_database() AND a.application_name = 'assent'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert!(n >= 1, "the store holds a connection");
    assert_eq!(encrypted, Some(true), "every one of them encrypted");
}

/// The opt-in form's limits hold across processes: five sign-ups per address in ten
/// minutes in all, however a load balancer spreads them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
async fn the_forms_limits_hold_across_two_processes() {
    if skipped() {
        return;
    }
    let s = two_processes(0).await;
    let post = |app: Arc<TestApp>, slug: String, i: usize| async move {
        app.client
            .post(format!("{}/optin/{slug}", app.base))
            .form(&[
                ("phone", format!("73755506{i:02}")),
                ("consent", "yes".to_string()),
            ])
            .send()
            .await
            .unwrap()
            .status()
    };
    let mut tasks = Vec::new();
    for i in 0..8 {
        let app = if i % 2 == 0 { s.a.clone() } else { s.b.clone() };
        tasks.push(tokio::spawn(post(app, s.t.slug.clone(), i)));
    }
    let mut ok = 0;
    for t in tasks {
        if t.await.unwrap() == StatusCode::OK {
            ok += 1;
        }
    }
    assert_eq!(ok, 5, "five in all, not five per process");
}
