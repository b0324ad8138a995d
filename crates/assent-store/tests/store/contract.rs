//! The store contract: one scenario suite, run against every backend through the `Store`
//! trait only. What a scenario asserts is what the rest of Assent relies on whichever
//! database it runs on, so a difference between the backends fails here first.
//!
//! Each scenario runs twice, as `sqlite::NAME` on a temp file and `postgres::NAME` on a
//! database of its own (`assent_ct_<pid>_<n>`, dropped afterwards) on the server that
//! `ASSENT_TEST_POSTGRES_URL` names. The PostgreSQL runs are `#[ignore]`d, so a run
//! without a server reports them as skipped; `scripts/test` includes them in its
//! PostgreSQL pass (`--run-ignored all`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use assent_core::consent::{Channel, ConsentState, MarketingStatus, Source, Thread};
use assent_core::gate::{Purpose, RegistrationStatus};
use assent_core::phone::E164;
use assent_store::*;
use chrono::{DateTime, Duration, TimeZone, Utc};

// ---------------------------------------------------------------------------------------
// One database per test, on either backend.

enum Guard {
    Sqlite(#[allow(dead_code)] tempfile::TempDir),
    Postgres { server: String, name: String },
}

/// A migrated store and what removes its database. The store is dropped first (fields
/// drop in order), so its connections are gone before the database is.
struct Db {
    store: Arc<dyn Store>,
    _guard: Guard,
}

async fn sqlite() -> Db {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/contract.db", dir.path().display());
    let store = Arc::new(assent_sqlite::SqliteStore::open(&url).await.unwrap());
    store.migrate().await.unwrap();
    Db {
        store,
        _guard: Guard::Sqlite(dir),
    }
}

/// `None` (the test says it was skipped) when no PostgreSQL server is given.
async fn postgres() -> Option<Db> {
    use sqlx::Connection;
    static N: AtomicU32 = AtomicU32::new(0);
    let server = assent_store::testing::postgres_url_or_skip()?;
    let name = format!(
        "assent_ct_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut admin = sqlx::PgConnection::connect(&server).await.unwrap();
    // A run that died may have left one of this name behind (process ids come round again).
    for sql in [
        format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        format!("CREATE DATABASE \"{name}\""),
    ] {
        sqlx::query(sqlx::AssertSqlSafe(sql))
            .execute(&mut admin)
            .await
            .unwrap();
    }
    let store = Arc::new(
        assent_postgres::PostgresStore::open(&assent_store::testing::database_url(&server, &name))
            .await
            .unwrap(),
    );
    store.migrate().await.unwrap();
    Some(Db {
        store,
        _guard: Guard::Postgres { server, name },
    })
}

impl Drop for Guard {
    fn drop(&mut self) {
        let Guard::Postgres { server, name } = self else {
            return;
        };
        let (server, sql) = (
            server.clone(),
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
        );
        // Drop runs inside the test's runtime, which cannot be blocked on: use a thread.
        let done = std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(async {
                    use sqlx::Connection;
                    let mut admin = sqlx::PgConnection::connect(&server).await?;
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .execute(&mut admin)
                        .await
                })
        })
        .join();
        if !matches!(done, Ok(Ok(_))) {
            eprintln!("could not drop test database {name}: {done:?}");
        }
    }
}

/// Runs every scenario named on both backends.
macro_rules! contract {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $scenario() {
                    let db = super::sqlite().await;
                    super::$scenario(&*db.store).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                #[ignore = "needs ASSENT_TEST_POSTGRES_URL"]
                async fn $scenario() {
                    let Some(db) = super::postgres().await else {
                        return;
                    };
                    super::$scenario(&*db.store).await;
                }
            )*
        }
    };
}

contract!(
    tenants_are_found_by_id_slug_key_and_sender,
    transact_writes_the_whole_plan,
    a_dedup_key_seen_before_writes_nothing,
    a_review_is_decided_once,
    a_reply_is_written_with_its_author_or_not_at_all,
    decided_reviews_release_what_they_held,
    claim_hands_off_due_messages_once,
    claim_paces_each_sender,
    retry_backs_off_then_fails,
    a_claim_put_back_unstarted_gives_back_its_daily_count,
    a_claim_held_back_at_its_call_gives_back_its_daily_count,
    a_claim_settled_before_its_call_gives_back_its_daily_count,
    one_write_starts_the_calls_of_several_claims_each_by_its_own,
    a_change_to_the_tenant_reaches_the_next_start,
    a_status_never_moves_backwards,
    a_tenant_reaches_only_its_own_messages,
    an_outbox_delivery_is_written_under_its_tenant,
    status_changes_reach_each_receiver_once,
    form_hits_are_all_or_nothing,
    recipients_are_recorded_once_per_step_and_phone,
    a_batch_of_recipients_larger_than_a_write_is_recorded_whole,
    recorded_recipients_are_composed_once,
    moving_a_campaign_is_compare_and_set,
    pause_holds_and_resume_releases,
    a_tagged_audience_pages_each_phone_once,
    a_tagged_audience_page_carries_each_phones_consent,
    the_opted_in_audience_pages_each_phone_once,
    overdue_reviews_come_oldest_deadline_first,
    a_send_log_counts_and_pages_in_the_store,
    campaign_counters_equal_a_count_of_the_send_log,
    conversations_page_through_a_tie_each_phone_once,
    a_taken_email_is_a_conflict_in_words,
    a_taken_slug_or_api_key_is_a_conflict_in_words,
    reads_for_imports_and_the_runner_return_only_what_is_asked,
);

// ---------------------------------------------------------------------------------------
// What the scenarios are made of.

const TX: &str = "+15125550100";
const MK: &str = "+15125550101";
const PHONE: &str = "+15125550142";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 18, 0, 0).unwrap()
}

fn e164(s: &str) -> E164 {
    E164::parse(s).unwrap()
}

/// The `n`th test phone: +1 512 555 01nn.
fn phone(n: u32) -> E164 {
    e164(&format!("+1512555{:04}", 200 + n))
}

fn tenant(id: &str, tx: &str, mk: &str) -> Tenant {
    Tenant {
        id: id.into(),
        slug: format!("{id}-slug"),
        name: format!("Tenant {id}"),
        time_zone: assent_core::Tz::America__Chicago,
        settings: Settings::default(),
        senders: Senders {
            transactional: Some(e164(tx)),
            marketing: Some(e164(mk)),
            former: vec![],
        },
        created_at: now(),
    }
}

/// Creates tenant `t1` texting from TX and MK.
async fn acme(store: &dyn Store) -> Tenant {
    let t = tenant("t1", TX, MK);
    store.create_tenant(&t, "key-t1").await.unwrap();
    store.set_senders(&t.id, &t.senders, now()).await.unwrap();
    t
}

/// A queued outbound message from `t`'s transactional sender, due now.
fn outbound(t: &Tenant, id: &str, to: &E164) -> Message {
    Message {
        id: id.into(),
        tenant_id: t.id.clone(),
        direction: Direction::Outbound,
        channel: Channel::Transactional,
        from: e164(TX),
        to: to.clone(),
        phone: to.clone(),
        body: format!("message {id}"),
        kind: MessageKind::Api,
        purpose: Some(Purpose::JobNotification),
        status: MessageStatus::Queued,
        reason: None,
        provider_id: None,
        segments: 1,
        priority: 1,
        due_at: now(),
        expires_at: None,
        idempotency_key: None,
        created_at: now(),
        updated_at: now(),
    }
}

fn inbound(t: &Tenant, id: &str, sid: &str, from: &E164, body: &str) -> Message {
    Message {
        direction: Direction::Inbound,
        from: from.clone(),
        to: e164(TX),
        body: body.into(),
        kind: MessageKind::Customer,
        purpose: None,
        status: MessageStatus::Received,
        provider_id: Some(sid.into()),
        ..outbound(t, id, from)
    }
}

fn ledger(p: &E164, channel: &str, old: &str, new: &str) -> NewLedgerEntry {
    NewLedgerEntry {
        phone: p.clone(),
        channel: channel.parse().expect("a ledger channel"),
        old_state: old.parse().expect("a ledger state"),
        new_state: new.parse().expect("a ledger state"),
        source: Source::Keyword,
        actor: "customer".into(),
        occurred_at: now(),
        evidence: Evidence::default(),
    }
}

fn customer(id: &str, tags: &[&str], phones: &[&E164], created_min: i64) -> Customer {
    Customer {
        id: id.into(),
        name: format!("Customer {id}"),
        address: None,
        tags: tags.iter().map(|t| t.to_string()).collect(),
        phones: phones
            .iter()
            .map(|p| ContactMethod {
                number: (*p).clone(),
                job_notifications: true,
                marketing_updates: false,
            })
            .collect(),
        created_at: now() + Duration::minutes(created_min),
    }
}

/// Writes `plan` for `p` at `at`, with no dedup key.
async fn write(store: &dyn Store, t: &Tenant, p: &E164, at: DateTime<Utc>, plan: Plan) {
    let outcome = store
        .transact(&t.id, p, at, None, &mut |_| plan.clone())
        .await
        .unwrap();
    assert_eq!(outcome, Transacted::Applied);
}

async fn queue(store: &dyn Store, t: &Tenant, messages: Vec<Message>) {
    for m in messages {
        let p = m.phone.clone();
        write(
            store,
            t,
            &p,
            m.created_at,
            Plan {
                messages: vec![m],
                ..Default::default()
            },
        )
        .await;
    }
}

fn send_all(_: &Message, _: &PhoneSnapshot) -> Handoff {
    Handoff::Send
}

/// `message`'s call, claimed at `claimed_at`, to start.
fn call(message: &Message, claimed_at: DateTime<Utc>) -> CallStart<'_> {
    CallStart {
        message,
        claimed_at,
    }
}

/// The calls of `claimed`, all claimed at `claimed_at`, to start.
fn starts(claimed: &[Message], claimed_at: DateTime<Utc>) -> Vec<CallStart<'_>> {
    claimed.iter().map(|m| call(m, claimed_at)).collect()
}

fn ids(messages: &[Message]) -> Vec<&str> {
    messages.iter().map(|m| m.id.as_str()).collect()
}

async fn stored(store: &dyn Store, t: &Tenant, id: &str) -> Message {
    store.message(&t.id, id).await.unwrap().unwrap()
}

fn campaign(t: &Tenant, id: &str, status: CampaignStatus) -> Campaign {
    Campaign {
        id: id.into(),
        tenant_id: t.id.clone(),
        name: format!("Campaign {id}"),
        kind: CampaignKind::Marketing,
        body: "Spring sale".into(),
        tags: vec![],
        days: vec![],
        send_at: None,
        status,
        created_at: now(),
        resumed_at: None,
    }
}

/// A recipient of `c`'s `send` step with a queued marketing message.
fn recipient(t: &Tenant, c: &str, message_id: &str, to: &E164) -> Recipient {
    let mut m = outbound(t, message_id, to);
    m.kind = MessageKind::Campaign;
    m.purpose = Some(Purpose::Marketing);
    m.channel = Channel::Marketing;
    m.from = e164(MK);
    Recipient {
        message: Some(m),
        ..Recipient::new(c, "send".into(), to, now())
    }
}

fn review(id: &str, message_id: &str, deadline: DateTime<Utc>) -> NewReview {
    NewReview {
        id: id.into(),
        thread: Thread::Transactional,
        message_id: message_id.into(),
        text: "please stop texting me".into(),
        word: "stop".into(),
        deadline,
    }
}

/// Opens review `id` on `p`, with the inbound message it is about.
async fn open_review(store: &dyn Store, t: &Tenant, p: &E164, id: &str, deadline: DateTime<Utc>) {
    let msg = format!("in-{id}");
    write(
        store,
        t,
        p,
        now(),
        Plan {
            messages: vec![inbound(t, &msg, &format!("SM{id}"), p, "stop please")],
            review: Some(review(id, &msg, deadline)),
            ..Default::default()
        },
    )
    .await;
}

// ---------------------------------------------------------------------------------------
// The scenarios.

async fn tenants_are_found_by_id_slug_key_and_sender(store: &dyn Store) {
    let t = acme(store).await;
    let other = tenant("t2", "+15125550300", "+15125550301");
    store.create_tenant(&other, "key-t2").await.unwrap();
    store
        .set_senders(&other.id, &other.senders, now())
        .await
        .unwrap();
    assert_eq!(store.tenant_count().await.unwrap(), 2);

    let by_id = store.tenant("t1").await.unwrap().unwrap();
    assert_eq!(
        (by_id.slug.as_str(), by_id.name.as_str()),
        ("t1-slug", "Tenant t1")
    );
    assert_eq!(by_id.time_zone.name(), "America/Chicago");
    assert_eq!(by_id.settings, t.settings);
    assert_eq!(by_id.senders, t.senders);
    assert_eq!(by_id.created_at, now());
    assert_eq!(
        store.tenant_by_slug("t2-slug").await.unwrap().unwrap().id,
        "t2"
    );
    assert_eq!(
        store.tenant_by_api_key("key-t1").await.unwrap().unwrap().id,
        "t1"
    );
    assert_eq!(
        store.tenant_by_sender(&e164(MK)).await.unwrap().unwrap().id,
        "t1"
    );
    assert!(store.tenant("nobody").await.unwrap().is_none());
    assert!(store.tenant_by_slug("nobody").await.unwrap().is_none());
    assert!(store.tenant_by_api_key("nobody").await.unwrap().is_none());
    assert!(store.tenant_by_sender(&phone(99)).await.unwrap().is_none());

    // A new transactional number: the old one is kept as a former sender, and a STOP sent
    // to it still finds the tenant and the thread it served.
    let later = now() + Duration::days(1);
    let new_tx = e164("+15125550102");
    let replaced = Senders {
        transactional: Some(new_tx.clone()),
        marketing: Some(e164(MK)),
        former: vec![],
    };
    store.set_senders("t1", &replaced, later).await.unwrap();
    let t1 = store.tenant_by_sender(&e164(TX)).await.unwrap().unwrap();
    assert_eq!(t1.id, "t1");
    assert_eq!(t1.senders.transactional, Some(new_tx.clone()));
    assert_eq!(
        t1.senders.former,
        vec![FormerSender {
            number: e164(TX),
            transactional: true,
            marketing: false,
            retired_at: later,
        }]
    );
    assert_eq!(t1.thread_of(&e164(TX)), Some(Thread::Transactional));
    assert_eq!(
        store.tenant_by_sender(&new_tx).await.unwrap().unwrap().id,
        "t1"
    );

    // A number another tenant texts from is refused, and nothing changes.
    let stolen = Senders {
        transactional: Some(e164("+15125550300")),
        ..replaced.clone()
    };
    let err = store.set_senders("t1", &stolen, later).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let t1 = store.tenant("t1").await.unwrap().unwrap();
    assert_eq!(t1.senders.transactional, Some(new_tx));
    let t2 = store.tenant_by_sender(&e164("+15125550300")).await.unwrap();
    assert_eq!(t2.unwrap().id, "t2");
}

async fn transact_writes_the_whole_plan(store: &dyn Store) {
    let t = acme(store).await;
    let p = e164(PHONE);
    let mut c = customer("c1", &[], &[&p], 0);
    c.phones[0].job_notifications = false;
    store.create_customer(&t.id, &c, &[]).await.unwrap();
    let before = store.snapshot(&t.id, &p, now()).await.unwrap();
    assert_eq!(before.consent, ConsentState::default());
    assert!(before.toggles.on_a_record);
    assert!(!before.toggles.job_notifications);

    let consent = ConsentState {
        marketing: MarketingStatus::OptedIn,
        last_opt_in: Some(now()),
        ..Default::default()
    };
    let deadline = now() + Duration::days(2);
    let plan = Plan {
        consent: Some(consent.clone()),
        ledger: vec![ledger(&p, "marketing", "none", "opted_in")],
        messages: vec![
            inbound(&t, "in-1", "SM1", &p, "YES"),
            outbound(&t, "out-1", &p),
        ],
        review: Some(review("r1", "in-1", deadline)),
        toggles: Some(("c1".into(), true, false)),
        ..Default::default()
    };
    let mut seen = None;
    let outcome = store
        .transact(&t.id, &p, now(), None, &mut |snap| {
            seen = Some(snap.consent.clone());
            plan.clone()
        })
        .await
        .unwrap();
    assert_eq!(outcome, Transacted::Applied);
    assert_eq!(
        seen,
        Some(ConsentState::default()),
        "the planner saw the snapshot"
    );

    let snap = store.snapshot(&t.id, &p, now()).await.unwrap();
    assert_eq!(snap.consent, consent);
    assert!(snap.toggles.job_notifications && !snap.toggles.marketing_updates);
    let entries = testing::phone_ledger(store, &t.id, &p).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entry, plan.ledger[0]);
    assert_eq!(
        store
            .ledger_page(
                &t.id,
                &page::LedgerFilter::default(),
                &page::Seek::first(100)
            )
            .await
            .unwrap()
            .items,
        entries
    );
    let messages = testing::phone_messages(store, &t.id, &p).await.unwrap();
    let mut got: Vec<&str> = ids(&messages);
    got.sort_unstable();
    assert_eq!(got, ["in-1", "out-1"]);
    let sent = stored(store, &t, "out-1").await;
    assert_eq!(sent.status, MessageStatus::Queued);
    assert_eq!(sent.purpose, Some(Purpose::JobNotification));
    assert_eq!(sent.due_at, now());
    let got = store
        .message_by_provider_id(&t.id, "SM1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (got.id.as_str(), got.direction),
        ("in-1", Direction::Inbound)
    );
    let r = store.review(&t.id, "r1").await.unwrap().unwrap();
    assert_eq!((r.phone.as_str(), r.thread), (PHONE, Thread::Transactional));
    assert_eq!((r.message_id.as_str(), r.word.as_str()), ("in-1", "stop"));
    assert_eq!((r.decision, r.deadline), (None, Some(deadline)));
    assert_eq!(
        store
            .reviews_page(&t.id, &page::Seek::first(100))
            .await
            .unwrap()
            .items
            .len(),
        1
    );

    // Written consent turns Marketing updates on on every record holding the phone.
    let c2 = customer("c2", &[], &[&p], 1);
    store.create_customer(&t.id, &c2, &[]).await.unwrap();
    write(
        store,
        &t,
        &p,
        now(),
        Plan {
            marketing_updates_on: true,
            ..Default::default()
        },
    )
    .await;
    for id in ["c1", "c2"] {
        let c = store.customer(&t.id, id).await.unwrap().unwrap();
        assert!(c.phones[0].marketing_updates, "{id}");
    }
    assert!(
        store
            .snapshot(&t.id, &p, now())
            .await
            .unwrap()
            .toggles
            .marketing_updates
    );
}

async fn a_dedup_key_seen_before_writes_nothing(store: &dyn Store) {
    let t = acme(store).await;
    let p = e164(PHONE);
    let plan = |id: &str| Plan {
        ledger: vec![ledger(&p, "transactional", "opted_in", "opted_out")],
        messages: vec![inbound(&t, id, "SM-dup", &p, "STOP")],
        ..Default::default()
    };
    let first = store
        .transact(&t.id, &p, now(), Some("SM-dup"), &mut |_| plan("in-1"))
        .await
        .unwrap();
    assert_eq!(first, Transacted::Applied);
    let mut planned = false;
    let again = store
        .transact(&t.id, &p, now(), Some("SM-dup"), &mut |_| {
            planned = true;
            plan("in-2")
        })
        .await
        .unwrap();
    assert_eq!(again, Transacted::Duplicate);
    assert!(!planned, "a duplicate is not planned");
    assert_eq!(
        testing::phone_ledger(store, &t.id, &p).await.unwrap().len(),
        1
    );
    assert_eq!(
        ids(&testing::phone_messages(store, &t.id, &p).await.unwrap()),
        ["in-1"]
    );
}

async fn a_reply_is_written_with_its_author_or_not_at_all(store: &dyn Store) {
    let t = acme(store).await;
    let p = e164(PHONE);
    let reply = |id: &str| Plan {
        messages: vec![
            inbound(&t, &format!("{id}-in"), &format!("SM-{id}"), &p, "When?"),
            outbound(&t, id, &p),
        ],
        author: Some("user-7".into()),
        ..Default::default()
    };
    write(store, &t, &p, now(), reply("reply-1")).await;
    let asked = ["reply-1".to_string(), "reply-1-in".to_string()];
    assert_eq!(
        store.authors(&t.id, &asked).await.unwrap(),
        [("reply-1".to_string(), "user-7".to_string())],
        "the outbound message has its author, the inbound one none"
    );

    // A transaction that fails after the author is written (a review decided twice)
    // keeps neither.
    open_review(store, &t, &p, "r1", now() + Duration::days(2)).await;
    let decided = |id: &str| Plan {
        review_decision: Some(("r1".into(), "opted_out".into())),
        ..reply(id)
    };
    write(store, &t, &p, now(), decided("reply-2")).await;
    let err = store
        .transact(&t.id, &p, now(), None, &mut |_| decided("reply-3"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let on_file = testing::phone_messages(store, &t.id, &p).await.unwrap();
    assert!(!ids(&on_file).contains(&"reply-3"), "{:?}", ids(&on_file));
    assert!(
        store
            .authors(&t.id, &["reply-3".to_string()])
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_review_is_decided_once(store: &dyn Store) {
    let t = acme(store).await;
    let p = e164(PHONE);
    open_review(store, &t, &p, "r1", now() + Duration::days(2)).await;
    let decide = |decision: &str| Plan {
        review_decision: Some(("r1".into(), decision.into())),
        ledger: vec![ledger(&p, "transactional", "opted_in", decision)],
        ..Default::default()
    };
    let later = now() + Duration::hours(1);
    write(store, &t, &p, later, decide("opted_out")).await;
    let r = store.review(&t.id, "r1").await.unwrap().unwrap();
    assert_eq!(
        r.decision.as_ref().map(ReviewDecision::as_str),
        Some("opted_out")
    );
    assert_eq!(r.decided_at, Some(later));

    // A second decision (a person after the deadline worker) fails whole: no ledger entry.
    let err = store
        .transact(&t.id, &p, later, None, &mut |_| decide("opted_in"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");
    let r = store.review(&t.id, "r1").await.unwrap().unwrap();
    assert_eq!(
        r.decision.as_ref().map(ReviewDecision::as_str),
        Some("opted_out")
    );
    let entries = testing::phone_ledger(store, &t.id, &p).await.unwrap();
    assert_eq!(entries.len(), 1);
    assert_eq!(entries[0].entry.new_state, "opted_out");
}

async fn decided_reviews_release_what_they_held(store: &dyn Store) {
    let t = acme(store).await;
    let p = e164(PHONE);
    let held_until = now() + Duration::days(30);
    let mut held = outbound(&t, "held", &p);
    held.status = MessageStatus::Deferred;
    held.reason = Some("under_review".into());
    held.due_at = held_until;
    let mut quiet = outbound(&t, "quiet", &p);
    quiet.status = MessageStatus::Deferred;
    quiet.reason = Some("quiet_hours".into());
    quiet.due_at = held_until;
    let mut request = outbound(&t, "request", &p);
    request.kind = MessageKind::OptInRequest;
    request.purpose = Some(Purpose::OptInRequest {
        customer_asked: false,
    });
    request.status = MessageStatus::Deferred;
    request.reason = Some("quiet_hours".into());
    request.due_at = held_until;
    queue(store, &t, vec![held, quiet, request]).await;

    let later = now() + Duration::hours(1);
    write(
        store,
        &t,
        &p,
        later,
        Plan {
            release_held: true,
            ..Default::default()
        },
    )
    .await;
    assert_eq!(stored(store, &t, "held").await.due_at, later);
    assert_eq!(stored(store, &t, "quiet").await.due_at, held_until);
    assert_eq!(stored(store, &t, "request").await.due_at, held_until);

    // YES before the opt-in request left: it goes now, as one the customer asked for.
    write(
        store,
        &t,
        &p,
        later,
        Plan {
            release_request: Some("request".into()),
            ..Default::default()
        },
    )
    .await;
    let request = stored(store, &t, "request").await;
    assert_eq!(request.due_at, later);
    assert_eq!(
        request.purpose,
        Some(Purpose::OptInRequest {
            customer_asked: true
        })
    );
    assert_eq!(stored(store, &t, "quiet").await.due_at, held_until);
}

async fn claim_hands_off_due_messages_once(store: &dyn Store) {
    let t = acme(store).await;
    let (p1, p2) = (phone(1), phone(2));
    let mut later = outbound(&t, "later", &p1);
    later.status = MessageStatus::Deferred;
    later.reason = Some("quiet_hours".into());
    later.due_at = now() + Duration::hours(2);
    let mut reply = outbound(&t, "reply", &p2);
    reply.priority = 0;
    reply.due_at = now() - Duration::seconds(1);
    queue(
        store,
        &t,
        vec![
            outbound(&t, "go", &p1),
            outbound(&t, "refuse", &p1),
            outbound(&t, "defer", &p2),
            later,
            reply,
        ],
    )
    .await;

    let retry_at = now() + Duration::minutes(10);
    let mut seen = Vec::new();
    let claimed = store
        .claim_due(now(), 10, &mut |m, snap| {
            seen.push((m.id.clone(), snap.tenant.id.clone(), m.phone.clone()));
            match m.id.as_str() {
                "refuse" => Handoff::Refuse {
                    status: MessageStatus::Blocked,
                    reason: "opted_out".into(),
                },
                "defer" => Handoff::Defer {
                    until: retry_at,
                    reason: "quiet_hours".into(),
                },
                _ => Handoff::Send,
            }
        })
        .await
        .unwrap();
    let mut got = ids(&claimed);
    got.sort_unstable();
    assert_eq!(got, ["go", "reply"]);
    assert_eq!(claimed[0].id, "reply", "the priority lane goes first");
    assert!(claimed.iter().all(|m| m.status == MessageStatus::Sending));
    assert_eq!(seen.len(), 4, "only due messages are planned: {seen:?}");
    assert!(seen.iter().all(|(_, tenant, _)| tenant == "t1"));

    assert_eq!(stored(store, &t, "go").await.status, MessageStatus::Sending);
    let refused = stored(store, &t, "refuse").await;
    assert_eq!(refused.status, MessageStatus::Blocked);
    assert_eq!(
        refused.reason.as_ref().map(MessageReason::as_str),
        Some("opted_out")
    );
    let deferred = stored(store, &t, "defer").await;
    assert_eq!(deferred.status, MessageStatus::Deferred);
    assert_eq!(
        deferred.reason.as_ref().map(MessageReason::as_str),
        Some("quiet_hours")
    );
    assert_eq!(deferred.due_at, retry_at);
    assert_eq!(deferred.deferred_until(), Some(retry_at));
    assert_eq!(
        stored(store, &t, "later").await.status,
        MessageStatus::Deferred
    );
    // Claimed is not yet started: nothing can reach the carrier until `start_calls`.
    let since = now() - Duration::minutes(1);
    assert_eq!(store.in_flight(&t.id, &p1, since).await.unwrap(), 0);

    // Nothing is handed off twice, and deferred messages wait for their time.
    let again = store.claim_due(now(), 10, &mut send_all).await.unwrap();
    assert!(again.is_empty(), "{:?}", ids(&again));
    let at_retry = store.claim_due(retry_at, 10, &mut send_all).await.unwrap();
    assert_eq!(ids(&at_retry), ["defer"]);
    let at_two = now() + Duration::hours(2);
    let at_two = store.claim_due(at_two, 10, &mut send_all).await.unwrap();
    assert_eq!(ids(&at_two), ["later"]);

    // The limit is honoured.
    queue(
        store,
        &t,
        vec![outbound(&t, "a", &p1), outbound(&t, "b", &p1)],
    )
    .await;
    let one = store
        .claim_due(now() + Duration::hours(3), 1, &mut send_all)
        .await
        .unwrap();
    assert_eq!(one.len(), 1);
}

async fn claim_paces_each_sender(store: &dyn Store) {
    let mut t = acme(store).await;
    t.settings.rate_limits.per_sender_per_minute = 1;
    store.update_settings(&t.id, &t.settings).await.unwrap();
    let p = phone(1);
    let mut from_mk = outbound(&t, "mk", &p);
    from_mk.from = e164(MK);
    let mut reply = outbound(&t, "reply", &p);
    reply.priority = 0;
    queue(
        store,
        &t,
        vec![
            outbound(&t, "first", &p),
            outbound(&t, "second", &p),
            from_mk,
            reply,
        ],
    )
    .await;

    let claimed = store.claim_due(now(), 10, &mut send_all).await.unwrap();
    let mut got = ids(&claimed);
    got.sort_unstable();
    // One a minute from each sender; automatic replies are never held.
    assert_eq!(got, ["first", "mk", "reply"]);
    let second = stored(store, &t, "second").await;
    assert_eq!(second.status, MessageStatus::Deferred);
    assert_eq!(
        second.reason.as_ref().map(MessageReason::as_str),
        Some("rate_limited")
    );
    assert_eq!(second.due_at, now() + Duration::minutes(1));

    // The pace is kept between claims: the sender's next slot is a minute on.
    queue(store, &t, vec![outbound(&t, "third", &p)]).await;
    let soon = now() + Duration::seconds(30);
    assert!(
        store
            .claim_due(soon, 10, &mut send_all)
            .await
            .unwrap()
            .is_empty()
    );
    let next = now() + Duration::minutes(1);
    let claimed = store.claim_due(next, 10, &mut send_all).await.unwrap();
    assert_eq!(ids(&claimed), ["second"]);
    assert_eq!(
        stored(store, &t, "third")
            .await
            .reason
            .as_ref()
            .map(MessageReason::as_str),
        Some("rate_limited")
    );
}

async fn retry_backs_off_then_fails(store: &dyn Store) {
    let t = acme(store).await;
    let p = phone(1);
    queue(store, &t, vec![outbound(&t, "m", &p)]).await;
    let backoff = |attempt: u32| Duration::minutes(i64::from(attempt));
    // Not sending yet: nothing to retry.
    let err = store
        .retry_later(&t.id, "m", &"timeout".into(), now(), Some(3), &backoff)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // Throttles first: each waits as long as the next attempt would and none is counted,
    // so all three attempts below still happen.
    let mut at = now();
    for _ in 0..3 {
        assert_eq!(
            ids(&store.claim_due(at, 10, &mut send_all).await.unwrap()),
            ["m"]
        );
        let status = store
            .retry_later(&t.id, "m", &"throttled".into(), at, None, &backoff)
            .await
            .unwrap();
        assert_eq!(status, MessageStatus::Queued);
        let m = stored(store, &t, "m").await;
        assert_eq!(m.due_at, at + Duration::minutes(1));
        at = m.due_at;
    }
    for attempt in 1..=2 {
        assert_eq!(
            ids(&store.claim_due(at, 10, &mut send_all).await.unwrap()),
            ["m"]
        );
        let status = store
            .retry_later(&t.id, "m", &"timeout".into(), at, Some(3), &backoff)
            .await
            .unwrap();
        assert_eq!(status, MessageStatus::Queued, "attempt {attempt}");
        let m = stored(store, &t, "m").await;
        assert_eq!(
            (m.status, m.reason.as_ref().map(MessageReason::as_str)),
            (MessageStatus::Queued, Some("timeout"))
        );
        let due = at + Duration::minutes(i64::from(attempt));
        assert_eq!(m.due_at, due);
        // Not before its backoff is over.
        let early = due - Duration::seconds(1);
        assert!(
            store
                .claim_due(early, 10, &mut send_all)
                .await
                .unwrap()
                .is_empty()
        );
        at = due;
    }
    assert_eq!(
        ids(&store.claim_due(at, 10, &mut send_all).await.unwrap()),
        ["m"]
    );
    let status = store
        .retry_later(&t.id, "m", &"timeout".into(), at, Some(3), &backoff)
        .await
        .unwrap();
    assert_eq!(status, MessageStatus::Failed);
    let m = stored(store, &t, "m").await;
    assert_eq!(
        (m.status, m.reason.as_ref().map(MessageReason::as_str)),
        (MessageStatus::Failed, Some("timeout"))
    );
    let far = at + Duration::days(1);
    assert!(
        store
            .claim_due(far, 10, &mut send_all)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn a_status_never_moves_backwards(store: &dyn Store) {
    let t = acme(store).await;
    let p = phone(1);
    queue(
        store,
        &t,
        vec![outbound(&t, "a", &p), outbound(&t, "b", &p)],
    )
    .await;
    store.claim_due(now(), 10, &mut send_all).await.unwrap();
    let update = |status, provider_id: Option<&str>| MessageUpdate {
        status: Some(status),
        reason: None,
        provider_id: provider_id.map(str::to_string),
        at: Some(now()),
    };
    // The batch path (accepted hand-offs) and one by one; unknown ids are skipped.
    store
        .update_messages(&[
            (
                t.id.clone(),
                "a".into(),
                update(MessageStatus::Sent, Some("SMa")),
            ),
            (
                t.id.clone(),
                "missing".into(),
                update(MessageStatus::Sent, Some("SMx")),
            ),
            (
                t.id.clone(),
                "b".into(),
                update(MessageStatus::Delivered, Some("SMb")),
            ),
        ])
        .await
        .unwrap();
    let a = store
        .message_by_provider_id(&t.id, "SMa")
        .await
        .unwrap()
        .unwrap();
    assert_eq!((a.id.as_str(), a.status), ("a", MessageStatus::Sent));
    assert_eq!(
        stored(store, &t, "b").await.status,
        MessageStatus::Delivered
    );
    assert_eq!(
        store
            .in_flight(&t.id, &p, now() - Duration::minutes(1))
            .await
            .unwrap(),
        0
    );

    // A late "sent" report does not undo "delivered"; the provider id, once set, stays.
    store
        .update_message(&t.id, "b", &update(MessageStatus::Sent, Some("SMother")))
        .await
        .unwrap();
    let b = stored(store, &t, "b").await;
    assert_eq!(
        (b.status, b.provider_id.as_deref()),
        (MessageStatus::Delivered, Some("SMb"))
    );
    let mut undelivered = update(MessageStatus::Undelivered, None);
    undelivered.reason = Some("30003".into());
    store
        .update_message(&t.id, "a", &undelivered)
        .await
        .unwrap();
    let a = stored(store, &t, "a").await;
    assert_eq!(
        (a.status, a.reason.as_ref().map(MessageReason::as_str)),
        (MessageStatus::Undelivered, Some("30003"))
    );
    let err = store
        .update_message(&t.id, "missing", &update(MessageStatus::Sent, None))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");

    // A process that died mid-hand-off: a claim never started goes back to the queue
    // (nothing was sent); a started call may have reached the carrier, so it is `unknown`.
    queue(store, &t, vec![outbound(&t, "c", &p)]).await;
    store.claim_due(now(), 10, &mut send_all).await.unwrap();
    let later = now() + Duration::seconds(1);
    assert_eq!(
        store
            .recover_orphaned_sends(now(), now(), later)
            .await
            .unwrap(),
        (0, 0),
        "nothing older than the bounds"
    );
    assert_eq!(
        store
            .recover_orphaned_sends(later, later, later)
            .await
            .unwrap(),
        (1, 0)
    );
    assert_eq!(stored(store, &t, "c").await.status, MessageStatus::Queued);
    let claimed = store.claim_due(later, 10, &mut send_all).await.unwrap();
    let started = store
        .start_calls(&starts(&claimed, later), later, &mut send_all)
        .await
        .unwrap();
    assert_eq!(started, vec![true]);
    assert_eq!(store.in_flight(&t.id, &p, now()).await.unwrap(), 1);
    let after = later + Duration::seconds(1);
    assert_eq!(
        store
            .recover_orphaned_sends(after, after, after)
            .await
            .unwrap(),
        (0, 1)
    );
    let c = stored(store, &t, "c").await;
    assert_eq!(
        (c.status, c.reason.as_ref().map(MessageReason::as_str)),
        (MessageStatus::Unknown, Some("handoff_interrupted"))
    );
}

/// Tenant `t1` allowed one hand-off a day, and message "a" claimed: the day's one.
async fn one_claimed_under_a_daily_cap_of_one(store: &dyn Store) -> (Tenant, Vec<Message>) {
    let mut t = tenant("t1", TX, MK);
    t.settings.rate_limits.per_tenant_per_day = 1;
    store.create_tenant(&t, "key-t1").await.unwrap();
    store.set_senders(&t.id, &t.senders, now()).await.unwrap();
    queue(store, &t, vec![outbound(&t, "a", &phone(1))]).await;
    let claimed = store.claim_due(now(), 10, &mut send_all).await.unwrap();
    assert_eq!(ids(&claimed), ["a"]);
    (t, claimed)
}

/// A claim put back before its call started (the sweep after a crash, the shutdown's
/// requeue) sent nothing, so its count against the tenant's daily cap is given back: with
/// a cap of one a day, the same message is claimed again at once rather than deferred to
/// tomorrow (`daily_cap`).
async fn a_claim_put_back_unstarted_gives_back_its_daily_count(store: &dyn Store) {
    let (t, _) = one_claimed_under_a_daily_cap_of_one(store).await;

    // Swept in the next hour: the count goes back to the hour it was taken in.
    let later = now() + Duration::minutes(61);
    assert_eq!(
        store
            .recover_orphaned_sends(later, later, later)
            .await
            .unwrap(),
        (1, 0)
    );
    let again = store.claim_due(later, 10, &mut send_all).await.unwrap();
    assert_eq!(
        ids(&again),
        ["a"],
        "the sweep gave back the day's one hand-off"
    );

    assert_eq!(
        store
            .requeue_unstarted(&[(t.id.as_str(), "a")], later, later)
            .await
            .unwrap(),
        1
    );
    let third = later + Duration::seconds(1);
    let once_more = store.claim_due(third, 10, &mut send_all).await.unwrap();
    assert_eq!(
        ids(&once_more),
        ["a"],
        "the shutdown's requeue gave back the day's one hand-off"
    );
    // Started, it counts: nothing else goes today.
    assert_eq!(
        store
            .start_calls(&starts(&once_more, third), third, &mut send_all)
            .await
            .unwrap(),
        vec![true]
    );
    queue(store, &t, vec![outbound(&t, "b", &phone(2))]).await;
    assert!(
        store
            .claim_due(third, 10, &mut send_all)
            .await
            .unwrap()
            .is_empty()
    );
}

/// A claim that the gate stops at its call (a STOP between the claim and the call) was
/// never handed off: with a cap of one a day, another message goes in its place.
async fn a_claim_held_back_at_its_call_gives_back_its_daily_count(store: &dyn Store) {
    let (t, claimed) = one_claimed_under_a_daily_cap_of_one(store).await;
    let mut refuse = |_: &Message, _: &PhoneSnapshot| Handoff::Refuse {
        status: MessageStatus::Blocked,
        reason: MessageReason::NoPurpose,
    };
    let later = now() + Duration::seconds(1);
    assert_eq!(
        store
            .start_calls(&starts(&claimed, now()), later, &mut refuse)
            .await
            .unwrap(),
        vec![false]
    );
    assert_eq!(stored(store, &t, "a").await.status, MessageStatus::Blocked);
    queue(store, &t, vec![outbound(&t, "b", &phone(2))]).await;
    assert_eq!(
        ids(&store.claim_due(later, 10, &mut send_all).await.unwrap()),
        ["b"],
        "the held-back claim gave back the day's one hand-off"
    );
}

/// A claim settled before its call (the reassigned-number check found the number changed
/// hands) was never handed off: with a cap of one a day, another message goes instead.
async fn a_claim_settled_before_its_call_gives_back_its_daily_count(store: &dyn Store) {
    let (t, _) = one_claimed_under_a_daily_cap_of_one(store).await;
    let outcome = ClaimOutcome {
        tenant_id: t.id.clone(),
        id: "a".into(),
        status: MessageStatus::Blocked,
        reason: MessageReason::ReassignedNumber,
        due_at: now(),
    };
    let later = now() + Duration::seconds(1);
    assert_eq!(
        store
            .settle_claimed(std::slice::from_ref(&outcome), now(), later)
            .await
            .unwrap(),
        1
    );
    // Settled once: a second time finds it no longer this claim's and gives nothing back.
    assert_eq!(
        store
            .settle_claimed(&[outcome], now(), later)
            .await
            .unwrap(),
        0
    );
    assert_eq!(stored(store, &t, "a").await.status, MessageStatus::Blocked);
    queue(store, &t, vec![outbound(&t, "b", &phone(2))]).await;
    assert_eq!(
        ids(&store.claim_due(later, 10, &mut send_all).await.unwrap()),
        ["b"],
        "the settled claim gave back the day's one hand-off"
    );
}

/// A writer may start the calls of several claims in one write: each message is started
/// only under the claim that took it, by that claim's time.
async fn one_write_starts_the_calls_of_several_claims_each_by_its_own(store: &dyn Store) {
    let t = acme(store).await;
    queue(store, &t, vec![outbound(&t, "a", &phone(1))]).await;
    let first = store.claim_due(now(), 10, &mut send_all).await.unwrap();
    let then = now() + Duration::seconds(1);
    queue(store, &t, vec![outbound(&t, "b", &phone(2))]).await;
    let second = store.claim_due(then, 10, &mut send_all).await.unwrap();
    assert_eq!((ids(&first), ids(&second)), (vec!["a"], vec!["b"]));
    let later = then + Duration::seconds(1);
    let both = [call(&first[0], now()), call(&second[0], then)];
    assert_eq!(
        store
            .start_calls(&both, later, &mut send_all)
            .await
            .unwrap(),
        vec![true, true]
    );
    assert_eq!(store.in_flight(&t.id, &phone(2), now()).await.unwrap(), 1);
    // Under another claim's time a message is not that claim's: it stays unstarted.
    queue(store, &t, vec![outbound(&t, "c", &phone(3))]).await;
    let third = store.claim_due(later, 10, &mut send_all).await.unwrap();
    assert_eq!(ids(&third), ["c"]);
    assert_eq!(
        store
            .start_calls(&starts(&third, then), later, &mut send_all)
            .await
            .unwrap(),
        vec![false]
    );
    assert_eq!(store.in_flight(&t.id, &phone(3), now()).await.unwrap(), 0);

    // A claim the sweep put back and another took again, both asking in one write (two
    // lanes on one writer): only the live claim starts it, and only once.
    let swept = later + Duration::minutes(2);
    assert_eq!(
        store
            .recover_orphaned_sends(swept, now(), swept)
            .await
            .unwrap(),
        (1, 0)
    );
    let again = store.claim_due(swept, 10, &mut send_all).await.unwrap();
    assert_eq!(ids(&again), ["c"]);
    let stale_and_live = [
        call(&third[0], later),
        call(&again[0], swept),
        call(&again[0], swept),
    ];
    assert_eq!(
        store
            .start_calls(&stale_and_live, swept, &mut send_all)
            .await
            .unwrap(),
        vec![false, true, false]
    );
    assert_eq!(store.in_flight(&t.id, &phone(3), now()).await.unwrap(), 1);
}

/// The gate at each call reads the tenant as it stands: a registration refused, a setting
/// or a sender changed between two starts is what the second one sees (PostgreSQL keeps a
/// copy of the tenant's context under its revision; SQLite forgets its copy on a change).
async fn a_change_to_the_tenant_reaches_the_next_start(store: &dyn Store) {
    let t = acme(store).await;
    let registration = |status| Registration {
        kind: RegistrationKind::Texting,
        status,
        reason: None,
        details: serde_json::json!({}),
        updated_at: now(),
    };
    store
        .save_registration(&t.id, &registration(RegistrationStatus::Approved))
        .await
        .unwrap();
    let messages = (1..=4)
        .map(|n| outbound(&t, &format!("m{n}"), &phone(n)))
        .collect();
    queue(store, &t, messages).await;
    let claimed = store.claim_due(now(), 10, &mut send_all).await.unwrap();
    assert_eq!(claimed.len(), 4);
    let mut seen = Vec::new();
    let mut record = |_: &Message, snap: &PhoneSnapshot| {
        seen.push((
            snap.registrations.texting.as_ref().map(|r| r.status),
            snap.tenant.settings.rate_limits.per_tenant_per_day,
            snap.tenant.senders.marketing.clone(),
        ));
        Handoff::Send
    };
    let at = now() + Duration::seconds(1);
    let start = |i: usize| [call(&claimed[i], now())];
    store.start_calls(&start(0), at, &mut record).await.unwrap();
    store
        .save_registration(&t.id, &registration(RegistrationStatus::Rejected))
        .await
        .unwrap();
    store.start_calls(&start(1), at, &mut record).await.unwrap();
    let mut settings = t.settings.clone();
    settings.rate_limits.per_tenant_per_day = 7;
    store.update_settings(&t.id, &settings).await.unwrap();
    store.start_calls(&start(2), at, &mut record).await.unwrap();
    let senders = Senders {
        marketing: None,
        ..t.senders.clone()
    };
    store.set_senders(&t.id, &senders, at).await.unwrap();
    store.start_calls(&start(3), at, &mut record).await.unwrap();
    let approved = Some(RegistrationStatus::Approved);
    let rejected = Some(RegistrationStatus::Rejected);
    let day = t.settings.rate_limits.per_tenant_per_day;
    let mk = Some(e164(MK));
    assert_eq!(
        seen,
        vec![
            (approved, day, mk.clone()),
            (rejected, day, mk.clone()),
            (rejected, 7, mk),
            (rejected, 7, None),
        ]
    );
}

/// Every write and read of a message names its tenant: two tenants may hold the same
/// message id and the same provider id (keys lead with tenant_id), and one tenant's key
/// never reaches the other's row through the updates, the retry, the shutdown requeue or
/// the lookup by provider id.
async fn a_tenant_reaches_only_its_own_messages(store: &dyn Store) {
    let a = acme(store).await;
    let b = tenant("t2", "+15125550300", "+15125550301");
    store.create_tenant(&b, "key-t2").await.unwrap();
    store.set_senders(&b.id, &b.senders, now()).await.unwrap();
    let p = phone(1);
    let from_b = |id: &str| Message {
        from: e164("+15125550300"),
        ..outbound(&b, id, &p)
    };
    queue(
        store,
        &a,
        vec![outbound(&a, "same", &p), outbound(&a, "only-a", &p)],
    )
    .await;
    queue(store, &b, vec![from_b("same")]).await;
    let claimed = store.claim_due(now(), 10, &mut send_all).await.unwrap();
    assert_eq!(claimed.len(), 3, "both tenants' \"same\" are claimed");

    // The batch path: only a's "same" moves.
    store
        .update_messages(&[(a.id.clone(), "same".into(), sent("SMshared"))])
        .await
        .unwrap();
    assert_eq!(stored(store, &a, "same").await.status, MessageStatus::Sent);
    let theirs = stored(store, &b, "same").await;
    assert_eq!(
        (theirs.status, theirs.provider_id),
        (MessageStatus::Sending, None)
    );
    // b's key on a's message: not found, and nothing changed.
    let err = store
        .update_message(&b.id, "only-a", &sent("SMx"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    store
        .update_messages(&[(b.id.clone(), "only-a".into(), sent("SMy"))])
        .await
        .unwrap();
    let backoff = |_: u32| Duration::minutes(1);
    let err = store
        .retry_later(&b.id, "only-a", &"timeout".into(), now(), Some(3), &backoff)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound), "{err:?}");
    assert_eq!(
        store
            .requeue_unstarted(&[(b.id.as_str(), "only-a")], now(), now())
            .await
            .unwrap(),
        0
    );
    let mine = stored(store, &a, "only-a").await;
    assert_eq!(
        (mine.status, mine.provider_id, mine.reason),
        (MessageStatus::Sending, None, None)
    );

    // A provider id is unique per tenant: b's "same" may carry the one a's has.
    store
        .update_message(&b.id, "same", &sent("SMshared"))
        .await
        .unwrap();
    let found_a = store
        .message_by_provider_id(&a.id, "SMshared")
        .await
        .unwrap()
        .unwrap();
    let found_b = store
        .message_by_provider_id(&b.id, "SMshared")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found_a.tenant_id.as_str(), found_b.tenant_id.as_str()),
        ("t1", "t2")
    );
    assert!(
        store
            .message_by_provider_id(&b.id, "SMy")
            .await
            .unwrap()
            .is_none()
    );

    // Each tenant's own key does reach its message.
    assert_eq!(
        store
            .retry_later(&a.id, "only-a", &"timeout".into(), now(), Some(3), &backoff)
            .await
            .unwrap(),
        MessageStatus::Queued
    );
    let again = store
        .claim_due(now() + Duration::minutes(1), 10, &mut send_all)
        .await
        .unwrap();
    assert_eq!(ids(&again), ["only-a"]);
    let claimed_at = now() + Duration::minutes(1);
    assert_eq!(
        store
            .requeue_unstarted(&[(a.id.as_str(), "only-a")], claimed_at, now())
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        stored(store, &a, "only-a").await.status,
        MessageStatus::Queued
    );
}

/// The provider accepted the message as `pid`.
fn sent(pid: &str) -> MessageUpdate {
    MessageUpdate {
        status: Some(MessageStatus::Sent),
        reason: None,
        provider_id: Some(pid.into()),
        at: Some(now()),
    }
}

/// A webhook endpoint `id` of tenant `t` for one kind of event.
async fn endpoint(store: &dyn Store, t: &Tenant, id: &str, event: &str) {
    store
        .create_webhook_endpoint(&WebhookEndpoint {
            id: id.into(),
            tenant_id: t.id.clone(),
            url: format!("https://hooks.example/{id}"),
            secret: "whsec".into(),
            events: vec![event.into()],
            created_at: now(),
            deleted_at: None,
        })
        .await
        .unwrap();
}

/// Every status change a batch writes reaches each receiver once: one message.status
/// event per change and endpoint (the endpoints of one change share its event id), one
/// status callback per change of a message that asked for it, and nothing for a write that
/// leaves the status as it was.
async fn status_changes_reach_each_receiver_once(store: &dyn Store) {
    let t = acme(store).await;
    for id in ["we1", "we2"] {
        endpoint(store, &t, id, "message.status").await;
    }
    queue(
        store,
        &t,
        vec![
            outbound(&t, "m1", &phone(1)),
            outbound(&t, "m2", &phone(2)),
            outbound(&t, "m3", &phone(3)),
        ],
    )
    .await;
    store
        .set_status_callback(&t.id, "m1", "https://client.example/status")
        .await
        .unwrap();
    // One statement moves all three to sending, another two of them to sent.
    assert_eq!(
        store
            .claim_due(now(), 10, &mut send_all)
            .await
            .unwrap()
            .len(),
        3
    );
    store
        .update_messages(&[
            (t.id.clone(), "m1".into(), sent("SM1")),
            (t.id.clone(), "m2".into(), sent("SM2")),
        ])
        .await
        .unwrap();
    // Already sent: the status stays, so nobody hears of it again.
    store
        .update_messages(&[(t.id.clone(), "m1".into(), sent("SM1"))])
        .await
        .unwrap();

    // A receiver gets one key's rows one at a time, in order: delivered, the next comes.
    let mut rows = Vec::new();
    for _ in 0..10 {
        let taken = store
            .claim_outbox(now(), now() + Duration::minutes(5), 100)
            .await
            .unwrap();
        if taken.is_empty() {
            break;
        }
        for r in &taken {
            store
                .outbox_delivered(&r.tenant_id, r.id, now())
                .await
                .unwrap();
        }
        rows.extend(taken);
    }
    let mut events = Vec::new();
    let mut callbacks = Vec::new();
    for r in &rows {
        let body: serde_json::Value = serde_json::from_str(&r.body).unwrap();
        match r.kind.as_str() {
            "event" => {
                assert_eq!(body["type"], "message.status", "{body}");
                assert_eq!(body["id"], r.event_id.as_str(), "{body}");
                let d = &body["data"];
                events.push((
                    d["message_id"].as_str().unwrap().to_string(),
                    d["previous_status"].as_str().unwrap().to_string(),
                    d["status"].as_str().unwrap().to_string(),
                    r.endpoint_id.clone().unwrap(),
                    r.event_id.clone(),
                ));
            }
            "status_callback" => {
                assert_eq!(r.url, "https://client.example/status");
                callbacks.push((
                    body["message_id"].as_str().unwrap().to_string(),
                    body["status"].as_str().unwrap().to_string(),
                ));
            }
            other => panic!("unexpected outbox row {other}"),
        }
    }
    callbacks.sort();
    assert_eq!(
        callbacks,
        [
            ("m1".into(), "sending".into()),
            ("m1".into(), "sent".into())
        ] as [(String, String); 2]
    );
    let mut changes: Vec<(String, String, String)> = events
        .iter()
        .map(|(m, from, to, _, _)| (m.clone(), from.clone(), to.clone()))
        .collect();
    changes.sort();
    changes.dedup();
    let q = |m: &str, from: &str, to: &str| (m.to_string(), from.to_string(), to.to_string());
    assert_eq!(
        changes,
        [
            q("m1", "queued", "sending"),
            q("m1", "sending", "sent"),
            q("m2", "queued", "sending"),
            q("m2", "sending", "sent"),
            q("m3", "queued", "sending"),
        ]
    );
    assert_eq!(
        events.len(),
        10,
        "each change once to each endpoint: {events:?}"
    );
    for (m, from, to, _, id) in &events {
        let same: Vec<_> = events
            .iter()
            .filter(|e| (&e.0, &e.1, &e.2) == (m, from, to))
            .collect();
        let mut endpoints: Vec<&str> = same.iter().map(|e| e.3.as_str()).collect();
        endpoints.sort_unstable();
        assert_eq!(endpoints, ["we1", "we2"]);
        assert!(same.iter().all(|e| &e.4 == id), "one event id per change");
        assert_eq!(
            events.iter().filter(|e| &e.4 == id).count(),
            2,
            "another change has its own id"
        );
    }
}

/// The relay's writes name the delivery by (tenant, id): another tenant's id changes
/// nothing, and the delivery comes back after its lease until its own tenant marks it.
async fn an_outbox_delivery_is_written_under_its_tenant(store: &dyn Store) {
    let a = acme(store).await;
    let b = tenant("t2", "+15125550300", "+15125550301");
    store.create_tenant(&b, "key-t2").await.unwrap();
    endpoint(store, &a, "we1", "consent.changed").await;
    let p = phone(7);
    write(
        store,
        &a,
        &p,
        now(),
        Plan {
            ledger: vec![ledger(&p, "transactional", "opted_in", "opted_out")],
            ..Default::default()
        },
    )
    .await;
    let lease = now() + Duration::minutes(5);
    let taken = store.claim_outbox(now(), lease, 10).await.unwrap();
    assert_eq!(taken.len(), 1, "{taken:?}");
    let item = &taken[0];
    assert_eq!(item.tenant_id, a.id);

    store.outbox_delivered(&b.id, item.id, now()).await.unwrap();
    store
        .outbox_failed(&b.id, item.id, "not theirs", None, now())
        .await
        .unwrap();
    let again = store
        .claim_outbox(lease, lease + Duration::minutes(5), 10)
        .await
        .unwrap();
    assert_eq!(
        again.iter().map(|i| i.id).collect::<Vec<_>>(),
        [item.id],
        "another tenant's writes left the delivery due"
    );

    store.outbox_delivered(&a.id, item.id, lease).await.unwrap();
    let later = lease + Duration::minutes(10);
    assert!(
        store
            .claim_outbox(later, later, 10)
            .await
            .unwrap()
            .is_empty(),
        "delivered by its tenant"
    );
}

async fn form_hits_are_all_or_nothing(store: &dyn Store) {
    let hour = Duration::hours(1);
    let both = [
        ("ip:1".to_string(), 2, hour),
        ("tenant:t1".to_string(), 3, Duration::days(1)),
    ];
    let tenant_only = [both[1].clone()];
    assert!(store.take_hits(&both, now()).await.unwrap());
    assert!(store.take_hits(&both, now()).await.unwrap());
    // The address is full: refused, and the tenant's count is left as it was…
    assert!(!store.take_hits(&both, now()).await.unwrap());
    // …so it still has one more.
    assert!(store.take_hits(&tenant_only, now()).await.unwrap());
    assert!(!store.take_hits(&tenant_only, now()).await.unwrap());

    // The address's window runs out; the tenant's day does not.
    let later = now() + hour + Duration::seconds(1);
    let ip_only = [both[0].clone()];
    assert!(store.take_hits(&ip_only, later).await.unwrap());
    assert!(!store.take_hits(&both, later).await.unwrap());

    // Forgetting hits up to a time removes those and no others.
    assert_eq!(store.forget_hits(now()).await.unwrap(), 5);
    assert_eq!(store.forget_hits(now()).await.unwrap(), 0);
    assert!(store.take_hits(&both, later).await.unwrap());
    assert!(!store.take_hits(&ip_only, later).await.unwrap());
}

/// SQLite writes a batch in parts of 5,000 and commits them together (a fan-out hands
/// over the pages that gathered while it wrote): every part is recorded and counted once,
/// including a phone repeated across parts, and a second time records nothing.
async fn a_batch_of_recipients_larger_than_a_write_is_recorded_whole(store: &dyn Store) {
    let t = acme(store).await;
    store
        .save_campaign(&campaign(&t, "c1", CampaignStatus::Scheduled))
        .await
        .unwrap();
    let mut batch: Vec<Recipient> = (0..12_001)
        .map(|k| {
            Recipient::new(
                "c1",
                "send".into(),
                &e164(&format!("+1737{:07}", 2_000_000 + k)),
                now(),
            )
        })
        .collect();
    for r in batch.iter_mut().skip(1).step_by(3) {
        r.skip_reason = Some(SkipReason::OptedOut);
    }
    // The first phone again, in the third part.
    batch.push(batch[0].clone());
    assert_eq!(store.add_recipients(&t.id, &batch).await.unwrap(), 12_001);
    assert_eq!(store.add_recipients(&t.id, &batch).await.unwrap(), 0);
    let counts = store.campaign_counts(&t.id, "c1").await.unwrap();
    assert_eq!(
        counts.by_status.into_iter().collect::<Vec<_>>(),
        [(SendStatus::Queued, 8_001), (SendStatus::Skipped, 4_000)]
    );
}

async fn recipients_are_recorded_once_per_step_and_phone(store: &dyn Store) {
    let t = acme(store).await;
    let c = campaign(&t, "c1", CampaignStatus::Sending);
    store.save_campaign(&c).await.unwrap();
    assert!(!store.campaign_recorded(&t.id, "c1").await.unwrap());
    let (p1, p2, p3) = (phone(1), phone(2), phone(3));
    let first = vec![
        recipient(&t, "c1", "m1", &p1),
        Recipient::new("c1", "send".into(), &p2, now()).skipped(SkipReason::OptedOut),
    ];
    assert_eq!(store.add_recipients(&t.id, &first).await.unwrap(), 2);
    assert!(store.campaign_recorded(&t.id, "c1").await.unwrap());

    // Again, with one new phone and one already-recorded phone under another message id.
    let second = vec![
        recipient(&t, "c1", "m1-again", &p1),
        recipient(&t, "c1", "m3", &p3),
        Recipient::new("c1", "send".into(), &p2, now()).skipped(SkipReason::OptedOut),
    ];
    assert_eq!(store.add_recipients(&t.id, &second).await.unwrap(), 1);
    assert!(store.message(&t.id, "m1-again").await.unwrap().is_none());
    assert_eq!(stored(store, &t, "m3").await.status, MessageStatus::Queued);

    // One phone twice in the same batch: the first is recorded with its message, the
    // second is not (PostgreSQL writes the batch in one statement).
    store
        .save_campaign(&campaign(&t, "c2", CampaignStatus::Sending))
        .await
        .unwrap();
    let p4 = phone(4);
    let twice = vec![
        recipient(&t, "c2", "m4-first", &p4),
        recipient(&t, "c2", "m4-second", &p4),
    ];
    assert_eq!(store.add_recipients(&t.id, &twice).await.unwrap(), 1);
    assert_eq!(
        stored(store, &t, "m4-first").await.status,
        MessageStatus::Queued
    );
    assert!(store.message(&t.id, "m4-second").await.unwrap().is_none());
    let c2 = store.campaign_counts(&t.id, "c2").await.unwrap();
    assert_eq!(
        c2.by_status.into_iter().collect::<Vec<_>>(),
        [(SendStatus::Queued, 1)]
    );

    // Another step of the same phone is its own recipient.
    let mut next_step = recipient(&t, "c1", "m1-next", &p1);
    next_step.step = "later".into();
    assert_eq!(store.add_recipients(&t.id, &[next_step]).await.unwrap(), 1);

    // Only the steps asked about come back (the runner asks one page of steps at a time).
    let later = store
        .recorded_steps(&t.id, "c1", &["later".to_string(), "never".to_string()])
        .await
        .unwrap();
    assert_eq!(later, [("later".to_string(), p1.clone())]);
    assert!(
        store
            .recorded_steps(&t.id, "c1", &[])
            .await
            .unwrap()
            .is_empty()
    );
    let mut steps: Vec<(String, String)> = store
        .recorded_steps(&t.id, "c1", &["send".to_string(), "later".to_string()])
        .await
        .unwrap()
        .into_iter()
        .map(|(s, p)| (s, p.as_str().to_string()))
        .collect();
    steps.sort();
    let want = |s: &str, p: &E164| (s.to_string(), p.as_str().to_string());
    assert_eq!(
        steps,
        [
            want("later", &p1),
            want("send", &p1),
            want("send", &p2),
            want("send", &p3)
        ]
    );
    let mut log: Vec<(String, String, Option<String>)> = store
        .send_log(&t.id, "c1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.phone.as_str().to_string(), r.status.to_string(), r.reason))
        .collect();
    log.sort();
    assert_eq!(
        log,
        [
            (p1.as_str().into(), "queued".into(), None),
            (p1.as_str().into(), "queued".into(), None),
            (
                p2.as_str().into(),
                "skipped".into(),
                Some("opted_out".into())
            ),
            (p3.as_str().into(), "queued".into(), None),
        ]
    );
    assert!(!store.campaign_settled(&t.id, "c1").await.unwrap());
}

/// A fan-out's recipients recorded as queued without a message: listed in phone order
/// until composed, each composed once (a second runner's write is a no-op), with the
/// counters moved as they go, and a paused campaign's messages held as they are written.
async fn recorded_recipients_are_composed_once(store: &dyn Store) {
    let t = acme(store).await;
    store
        .save_campaign(&campaign(&t, "c1", CampaignStatus::Sending))
        .await
        .unwrap();
    let phones: Vec<E164> = (1..=4).map(phone).collect();
    let recorded: Vec<Recipient> = phones
        .iter()
        .map(|p| Recipient::new("c1", "send".into(), p, now()))
        .collect();
    assert_eq!(store.add_recipients(&t.id, &recorded).await.unwrap(), 4);
    let counts = store.campaign_counts(&t.id, "c1").await.unwrap();
    assert_eq!(counts.by_status.get(&SendStatus::Queued), Some(&4));
    assert!(!store.campaign_settled(&t.id, "c1").await.unwrap());
    // The database itself refuses to finish it meanwhile (a process of the previous
    // version judged settledness from the messages alone).
    let (sending, finished) = (CampaignStatus::Sending, CampaignStatus::Finished);
    assert!(
        !store
            .move_campaign(&t.id, "c1", sending, finished, None)
            .await
            .unwrap()
    );
    let c = store.campaign(&t.id, "c1").await.unwrap().unwrap();
    assert_eq!(c.status, sending);
    let tenant_id = t.id.clone();
    let waiting = |after: Option<E164>, limit| {
        let tenant_id = tenant_id.clone();
        async move {
            store
                .uncomposed_recipients(&tenant_id, "c1", "send", after.as_ref(), limit)
                .await
                .unwrap()
        }
    };
    assert_eq!(waiting(None, 2).await, phones[..2]);
    assert_eq!(waiting(Some(phones[1].clone()), 10).await, phones[2..]);

    // The first composed to a message, the second to a skip; the first again (another
    // runner) is not written twice.
    let composed = vec![
        recipient(&t, "c1", "m1", &phones[0]),
        Recipient::new("c1", "send".into(), &phones[1], now()).skipped(SkipReason::OptedOut),
    ];
    assert_eq!(store.compose_recipients(&t.id, &composed).await.unwrap(), 2);
    let again = vec![recipient(&t, "c1", "m1-again", &phones[0])];
    assert_eq!(store.compose_recipients(&t.id, &again).await.unwrap(), 0);
    assert!(store.message(&t.id, "m1-again").await.unwrap().is_none());
    assert_eq!(waiting(None, 10).await, phones[2..]);
    let counts = store.campaign_counts(&t.id, "c1").await.unwrap();
    assert_eq!(counts.recipients, 4);
    assert_eq!(counts.by_status.get(&SendStatus::Queued), Some(&3));
    assert_eq!(counts.skipped_by_reason.get("opted_out"), Some(&1));

    // Paused meanwhile: the message is written held.
    assert!(
        store
            .move_campaign(
                &t.id,
                "c1",
                CampaignStatus::Sending,
                CampaignStatus::Paused,
                None
            )
            .await
            .unwrap()
    );
    let held = vec![recipient(&t, "c1", "m3", &phones[2])];
    assert_eq!(store.compose_recipients(&t.id, &held).await.unwrap(), 1);
    let m3 = store.message(&t.id, "m3").await.unwrap().unwrap();
    assert_eq!(m3.status, MessageStatus::Deferred);
    assert_eq!(m3.reason, Some(MessageReason::CampaignPaused));
    let counts = store.campaign_counts(&t.id, "c1").await.unwrap();
    assert_eq!(counts.by_status.get(&SendStatus::Queued), Some(&2));
    assert_eq!(counts.by_status.get(&SendStatus::Deferred), Some(&1));
    let log = store.send_log(&t.id, "c1").await.unwrap();
    let status = |p: &E164| {
        log.iter()
            .find(|r| &r.phone == p)
            .map(|r| (r.status.to_string(), r.message_id.clone()))
            .unwrap()
    };
    assert_eq!(status(&phones[0]), ("queued".into(), Some("m1".into())));
    assert_eq!(status(&phones[1]).0, "skipped");
    assert_eq!(status(&phones[2]), ("deferred".into(), Some("m3".into())));
    assert_eq!(status(&phones[3]), ("queued".into(), None));
    assert!(!store.campaign_settled(&t.id, "c1").await.unwrap());
}

async fn moving_a_campaign_is_compare_and_set(store: &dyn Store) {
    let t = acme(store).await;
    store
        .save_campaign(&campaign(&t, "c1", CampaignStatus::Active))
        .await
        .unwrap();
    let (active, paused) = (CampaignStatus::Active, CampaignStatus::Paused);
    assert!(
        store
            .move_campaign(&t.id, "c1", active, paused, None)
            .await
            .unwrap()
    );
    // A second pause (or a runner still believing it active) moves nothing.
    assert!(
        !store
            .move_campaign(&t.id, "c1", active, paused, None)
            .await
            .unwrap()
    );
    let c = store.campaign(&t.id, "c1").await.unwrap().unwrap();
    assert_eq!((c.status, c.resumed_at), (paused, None));
    let resumed = now() + Duration::hours(1);
    assert!(
        store
            .move_campaign(&t.id, "c1", paused, active, Some(resumed))
            .await
            .unwrap()
    );
    let c = store.campaign(&t.id, "c1").await.unwrap().unwrap();
    assert_eq!((c.status, c.resumed_at), (active, Some(resumed)));
    // Without a time, `resumed_at` is kept.
    let finished = CampaignStatus::Finished;
    assert!(
        store
            .move_campaign(&t.id, "c1", active, finished, None)
            .await
            .unwrap()
    );
    let c = store.campaign(&t.id, "c1").await.unwrap().unwrap();
    assert_eq!((c.status, c.resumed_at), (finished, Some(resumed)));
    assert!(
        !store
            .move_campaign(&t.id, "nope", active, paused, None)
            .await
            .unwrap()
    );
    assert!(store.running_campaigns().await.unwrap().is_empty());
}

async fn pause_holds_and_resume_releases(store: &dyn Store) {
    let t = acme(store).await;
    store
        .save_campaign(&campaign(&t, "c1", CampaignStatus::Sending))
        .await
        .unwrap();
    let running = store.running_campaigns().await.unwrap();
    assert_eq!(
        running.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(),
        ["c1"]
    );
    let (p1, p2, p3) = (phone(1), phone(2), phone(3));
    let recipients = vec![
        recipient(&t, "c1", "sent", &p1),
        recipient(&t, "c1", "queued", &p2),
    ];
    store.add_recipients(&t.id, &recipients).await.unwrap();
    assert_eq!(
        ids(&store.claim_due(now(), 1, &mut send_all).await.unwrap()),
        ["sent"]
    );

    // Holding only while the campaign is paused.
    assert_eq!(
        store.hold_campaign(&t.id, "c1", true, now()).await.unwrap(),
        0
    );
    let (sending, paused) = (CampaignStatus::Sending, CampaignStatus::Paused);
    assert!(
        store
            .move_campaign(&t.id, "c1", sending, paused, None)
            .await
            .unwrap()
    );
    assert_eq!(
        store.hold_campaign(&t.id, "c1", true, now()).await.unwrap(),
        1
    );
    let held = stored(store, &t, "queued").await;
    assert_eq!(held.status, MessageStatus::Deferred);
    assert_eq!(
        held.reason.as_ref().map(MessageReason::as_str),
        Some("campaign_paused")
    );
    assert_eq!(held.due_at.timestamp_millis(), PAUSED_UNTIL_MS);
    assert_eq!(held.deferred_until(), None);
    assert_eq!(
        stored(store, &t, "sent").await.status,
        MessageStatus::Sending
    );

    // What a paused campaign queues is held as it is written.
    let late = vec![recipient(&t, "c1", "late", &p3)];
    assert_eq!(store.add_recipients(&t.id, &late).await.unwrap(), 1);
    assert_eq!(
        stored(store, &t, "late")
            .await
            .reason
            .as_ref()
            .map(MessageReason::as_str),
        Some("campaign_paused")
    );
    let far = now() + Duration::days(365);
    assert!(
        store
            .claim_due(far, 10, &mut send_all)
            .await
            .unwrap()
            .is_empty()
    );

    // Releasing only once it is no longer paused.
    let resumed = now() + Duration::hours(1);
    assert_eq!(
        store
            .hold_campaign(&t.id, "c1", false, resumed)
            .await
            .unwrap(),
        0
    );
    assert!(
        store
            .move_campaign(&t.id, "c1", paused, sending, Some(resumed))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .hold_campaign(&t.id, "c1", false, resumed)
            .await
            .unwrap(),
        2
    );
    for id in ["queued", "late"] {
        let m = stored(store, &t, id).await;
        assert_eq!(
            (m.status, m.reason, m.due_at),
            (MessageStatus::Queued, None, resumed)
        );
    }
    let claimed = store.claim_due(resumed, 10, &mut send_all).await.unwrap();
    let mut got = ids(&claimed);
    got.sort_unstable();
    assert_eq!(got, ["late", "queued"]);
}

/// What a fan-out takes of each audience member: phone, name, consent, toggles, address.
type Seen = (String, Option<String>, ConsentState, String, Option<String>);

fn seen(m: &AudienceMember, snap: &PhoneSnapshot) -> Seen {
    (
        m.phone.as_str().to_string(),
        m.name.clone(),
        snap.consent.clone(),
        format!("{:?}", snap.toggles),
        snap.address.clone(),
    )
}

/// The audience read a page at a time with `audience_page`, and (when the store bounds
/// pages ahead) with `audience_page_end` and `audience_range` as a fan-out reads it: the
/// two must agree, page by page.
async fn walk_both(store: &dyn Store, t: &Tenant, tags: &[String], limit: usize) -> Vec<Seen> {
    let mut pages: Vec<Vec<Seen>> = Vec::new();
    let mut after: Option<E164> = None;
    loop {
        let page = store
            .audience_page(&t.id, tags, after.as_ref(), limit, now())
            .await
            .unwrap();
        pages.push(page.members.iter().map(|(m, s)| seen(m, s)).collect());
        match page.next {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    if let Some(ranges) = store.audience_ranges()
        && ranges
            .audience_page_end(&t.id, tags, None, limit)
            .await
            .unwrap()
            .is_some()
    {
        let mut by_range: Vec<Vec<Seen>> = Vec::new();
        let mut after: Option<E164> = None;
        loop {
            let end = ranges
                .audience_page_end(&t.id, tags, after.as_ref(), limit)
                .await
                .unwrap()
                .expect("an audience whose first page's end is found has every one's");
            let page = ranges
                .audience_range(&t.id, tags, after.as_ref(), &end, now())
                .await
                .unwrap();
            by_range.push(page.members.iter().map(|(m, s)| seen(m, s)).collect());
            match end {
                PageEnd::At(last) => {
                    assert_eq!(page.next.as_ref(), Some(&last));
                    after = Some(last);
                }
                PageEnd::Last => {
                    assert!(page.next.is_none());
                    break;
                }
            }
        }
        // A range ending exactly at the audience's last phone is followed by an empty one.
        if by_range.len() == pages.len() + 1 && by_range.last().is_some_and(Vec::is_empty) {
            by_range.pop();
        }
        assert_eq!(by_range, pages, "limit {limit}");
    }
    pages.concat()
}

/// Walks an audience a page at a time, checking each page's size and order.
async fn walk(store: &dyn Store, t: &Tenant, tags: &[String], limit: usize) -> Vec<AudienceMember> {
    let mut out: Vec<AudienceMember> = Vec::new();
    let mut after: Option<E164> = None;
    for _ in 0..100 {
        let page = store
            .audience_page(&t.id, tags, after.as_ref(), limit, now())
            .await
            .unwrap();
        assert!(
            page.members.len() <= limit,
            "a page of {limit} after {after:?} holds {:?}",
            page.members
                .iter()
                .map(|m| m.0.phone.as_str())
                .collect::<Vec<_>>()
        );
        for (m, snap) in page.members {
            assert!(after.as_ref().is_none_or(|a| m.phone.as_str() > a.as_str()));
            assert_eq!(snap.tenant.id, t.id);
            out.push(m);
        }
        match page.next {
            Some(next) => after = Some(next),
            None => return out,
        }
    }
    panic!("the audience never ended");
}

fn phones_of(members: &[AudienceMember]) -> Vec<&str> {
    members.iter().map(|m| m.phone.as_str()).collect()
}

async fn a_tagged_audience_pages_each_phone_once(store: &dyn Store) {
    let t = acme(store).await;
    let p: Vec<E164> = (0..7).map(phone).collect();
    let customers = [
        customer("a", &["vip"], &[&p[0], &p[1]], 0),
        customer("b", &["vip", "spring"], &[&p[2]], 1),
        // p[2] again, on an older record without the tag: named after the tagged one.
        customer("c", &[], &[&p[2]], -1),
        customer("d", &["spring"], &[&p[3], &p[4]], 2),
        // p[4] again, tagged too.
        customer("e", &["vip"], &[&p[4]], 3),
        customer("f", &["other"], &[&p[5]], 4),
        customer("g", &[], &[&p[6]], 5),
    ];
    for c in &customers {
        store.create_customer(&t.id, c, &[]).await.unwrap();
    }
    let tags = vec!["vip".to_string(), "spring".to_string()];
    let want = [&p[0], &p[1], &p[2], &p[3], &p[4]].map(|p| p.as_str());
    for limit in [1, 2, 3, 10] {
        let members = walk(store, &t, &tags, limit).await;
        assert_eq!(phones_of(&members), want, "limit {limit}");
        assert_eq!(walk_both(store, &t, &tags, limit).await.len(), want.len());
        assert_eq!(
            members[2].name.as_deref(),
            Some("Customer b"),
            "limit {limit}"
        );
        assert_eq!(
            members[4].name.as_deref(),
            Some("Customer d"),
            "limit {limit}"
        );
    }
    let vip = walk(store, &t, &["vip".to_string()], 2).await;
    assert_eq!(
        phones_of(&vip),
        [&p[0], &p[1], &p[2], &p[4]].map(|p| p.as_str())
    );
    assert!(walk(store, &t, &["nobody".to_string()], 2).await.is_empty());
}

/// A tagged page reads its phones' consent apart from their records: each phone gets its
/// own, phones without any keep the default, and consent of phones on no record (between
/// and around the page's) is no one's.
async fn a_tagged_audience_page_carries_each_phones_consent(store: &dyn Store) {
    let t = acme(store).await;
    let p: Vec<E164> = (0..8).map(phone).collect();
    let opted_in = ConsentState {
        marketing: MarketingStatus::OptedIn,
        ..Default::default()
    };
    // On records: p[1], p[3], p[4], p[6]; consent for p[0] (no record), p[3], p[5] (no
    // record), p[6] and p[7] (no record).
    for i in [7, 0, 3, 5, 6] {
        let plan = Plan {
            consent: Some(opted_in.clone()),
            ..Default::default()
        };
        write(store, &t, &p[i], now(), plan).await;
    }
    for (id, phones) in [("a", vec![&p[1], &p[3]]), ("b", vec![&p[4], &p[6]])] {
        let c = customer(id, &["vip"], &phones, 0);
        store.create_customer(&t.id, &c, &[]).await.unwrap();
    }
    let tags = vec!["vip".to_string()];
    for limit in [1, 2, 3, 10] {
        let mut seen = Vec::new();
        let mut after: Option<E164> = None;
        loop {
            let page = store
                .audience_page(&t.id, &tags, after.as_ref(), limit, now())
                .await
                .unwrap();
            for (m, snap) in page.members {
                seen.push((m.phone.as_str().to_string(), snap.consent == opted_in));
            }
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        let want: Vec<(String, bool)> = [(1, false), (3, true), (4, false), (6, true)]
            .iter()
            .map(|(i, on)| (p[*i].as_str().to_string(), *on))
            .collect();
        assert_eq!(seen, want, "limit {limit}");
        let both = walk_both(store, &t, &tags, limit).await;
        let consent: Vec<(String, bool)> =
            both.into_iter().map(|s| (s.0, s.2 == opted_in)).collect();
        assert_eq!(consent, want, "limit {limit}");
    }
}

async fn the_opted_in_audience_pages_each_phone_once(store: &dyn Store) {
    let t = acme(store).await;
    let p: Vec<E164> = (0..6).map(phone).collect();
    let opted_in = ConsentState {
        marketing: MarketingStatus::OptedIn,
        ..Default::default()
    };
    let pending = ConsentState {
        marketing: MarketingStatus::Pending,
        ..Default::default()
    };
    // Written out of order; p[1] and p[4] are not opted in, p[5] is on no record.
    for (i, state) in [
        (3, &opted_in),
        (0, &opted_in),
        (1, &pending),
        (5, &opted_in),
        (2, &opted_in),
    ] {
        let plan = Plan {
            consent: Some(state.clone()),
            ..Default::default()
        };
        write(store, &t, &p[i], now(), plan).await;
    }
    let c = customer("a", &[], &[&p[0], &p[4]], 0);
    store.create_customer(&t.id, &c, &[]).await.unwrap();
    let want = [&p[0], &p[2], &p[3], &p[5]].map(|p| p.as_str());
    for limit in [1, 2, 3, 10] {
        let members = walk(store, &t, &[], limit).await;
        assert_eq!(phones_of(&members), want, "limit {limit}");
        assert_eq!(walk_both(store, &t, &[], limit).await.len(), want.len());
    }
    let page = store
        .audience_page(&t.id, &[], None, 10, now())
        .await
        .unwrap();
    let (first, snap) = &page.members[0];
    assert_eq!(first.name.as_deref(), Some("Customer a"));
    assert_eq!(snap.consent, opted_in);
    assert!(snap.toggles.on_a_record);
    assert!(!page.members[3].1.toggles.on_a_record);
}

async fn overdue_reviews_come_oldest_deadline_first(store: &dyn Store) {
    let t1 = acme(store).await;
    let t2 = tenant("t2", "+15125550300", "+15125550301");
    store.create_tenant(&t2, "key-t2").await.unwrap();
    let h = Duration::hours;
    open_review(store, &t1, &phone(1), "late", now() - h(1)).await;
    open_review(store, &t2, &phone(2), "later", now() - h(3)).await;
    open_review(store, &t1, &phone(3), "on-time", now()).await;
    open_review(store, &t1, &phone(4), "future", now() + h(1)).await;
    open_review(store, &t2, &phone(5), "decided", now() - h(5)).await;
    let decide = Plan {
        review_decision: Some(("decided".into(), "opted_in".into())),
        ..Default::default()
    };
    write(store, &t2, &phone(5), now(), decide).await;

    let overdue = store.overdue_reviews(now(), 10).await.unwrap();
    let got: Vec<(&str, &str)> = overdue
        .iter()
        .map(|(tenant, r)| (tenant.as_str(), r.id.as_str()))
        .collect();
    assert_eq!(got, [("t2", "later"), ("t1", "late"), ("t1", "on-time")]);
    assert_eq!(overdue[0].1.phone, phone(2));
    let first = store.overdue_reviews(now(), 1).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1.id, "later");
}

/// Walks a campaign's send log `limit` rows at a time, forwards with `send_log_page`
/// (or backwards with `send_log_page_before`), returning (step, phone) in the order seen.
async fn walk_log(
    store: &dyn Store,
    t: &Tenant,
    status: Option<SendStatus>,
    limit: usize,
    backwards: bool,
) -> Vec<(String, String)> {
    let mut seen = Vec::new();
    let mut cursor: Option<SendLogKey> = None;
    loop {
        let page = if backwards {
            store
                .send_log_page_before(&t.id, "c1", status, cursor.as_ref(), limit)
                .await
                .unwrap()
        } else {
            store
                .send_log_page(&t.id, "c1", status, cursor.as_ref(), limit)
                .await
                .unwrap()
        };
        assert!(page.rows.len() <= limit);
        let mut keys: Vec<(String, String)> = page
            .rows
            .iter()
            .map(|r| (r.step.clone(), r.phone.as_str().to_string()))
            .collect();
        if backwards {
            keys.reverse();
        }
        seen.extend(keys);
        match page.next {
            Some(next) => cursor = Some(next),
            None => return seen,
        }
    }
}

async fn a_send_log_counts_and_pages_in_the_store(store: &dyn Store) {
    let t = acme(store).await;
    store
        .save_campaign(&campaign(&t, "c1", CampaignStatus::Sending))
        .await
        .unwrap();
    store
        .save_campaign(&campaign(&t, "c2", CampaignStatus::Sending))
        .await
        .unwrap();
    let mut rs = Vec::new();
    for i in 0..23u32 {
        let p = phone(100 + i);
        rs.push(match i % 3 {
            0 => recipient(&t, "c1", &format!("m{i}"), &p),
            1 => Recipient::new("c1", "send".into(), &p, now()).skipped(SkipReason::OptedOut),
            _ => Recipient::new("c1", "send".into(), &p, now()).skipped(SkipReason::QuietHours),
        });
    }
    // Another step, and another campaign that must not be counted.
    let mut later = recipient(&t, "c1", "m-later", &phone(100));
    later.step = "later".into();
    rs.push(later);
    rs.push(recipient(&t, "c2", "m-other", &phone(100)));
    store.add_recipients(&t.id, &rs).await.unwrap();

    let counts = store.campaign_counts(&t.id, "c1").await.unwrap();
    assert_eq!(counts.recipients, 24);
    assert_eq!(
        counts.by_status.into_iter().collect::<Vec<_>>(),
        [(SendStatus::Queued, 9), (SendStatus::Skipped, 15)]
    );
    assert_eq!(
        counts.skipped_by_reason.into_iter().collect::<Vec<_>>(),
        [("opted_out".to_string(), 8), ("quiet_hours".to_string(), 7)]
    );
    assert_eq!(counts.opted_out_after, 0);
    let none = store.campaign_counts(&t.id, "nope").await.unwrap();
    assert_eq!(none, CampaignCounts::default());

    // Every row exactly once, in key order, forwards and backwards, at any page size.
    let mut want: Vec<(String, String)> = store
        .send_log(&t.id, "c1")
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.step, r.phone.as_str().to_string()))
        .collect();
    want.sort();
    for limit in [1, 5, 24, 100] {
        assert_eq!(
            walk_log(store, &t, None, limit, false).await,
            want,
            "{limit}"
        );
        let mut back = walk_log(store, &t, None, limit, true).await;
        back.reverse();
        assert_eq!(back, want, "backwards, {limit}");
    }
    // A page that ends exactly at the last row says there is no more.
    let page = store
        .send_log_page(&t.id, "c1", None, None, 24)
        .await
        .unwrap();
    assert_eq!((page.rows.len(), page.next), (24, None));

    let skipped = walk_log(store, &t, Some(SendStatus::Skipped), 4, false).await;
    assert_eq!(skipped.len(), 15);
    let page = store
        .send_log_page(&t.id, "c1", Some(SendStatus::Skipped), None, 100)
        .await
        .unwrap();
    assert!(
        page.rows
            .iter()
            .all(|r| r.status == "skipped" && r.reason.is_some())
    );
    let queued = walk_log(store, &t, Some(SendStatus::Queued), 4, false).await;
    assert_eq!(queued.len(), 9);
    assert!(
        walk_log(store, &t, Some(SendStatus::Sent), 4, false)
            .await
            .is_empty()
    );
}

/// A unique violation is a typed conflict whose words are for people: the database's own
/// message (table and index names) stays in the log.
/// A campaign's counts as the send log says, counted here row by row.
async fn counted_from_the_log(store: &dyn Store, t: &Tenant, c: &str) -> CampaignCounts {
    let mut want = CampaignCounts::default();
    for r in store.send_log(&t.id, c).await.unwrap() {
        want.recipients += 1;
        *want.by_status.entry(r.status).or_default() += 1;
        if r.status == SendStatus::Skipped {
            let reason = r.reason.clone().expect("a skipped row has its reason");
            *want.skipped_by_reason.entry(reason).or_default() += 1;
        }
        if r.opted_out_after {
            want.opted_out_after += 1;
        }
    }
    want
}

/// The counters the store keeps for `c` (the report's, and the campaigns list's) equal a
/// count of its send log; returns them.
async fn counters_agree(store: &dyn Store, t: &Tenant, c: &str, when: &str) -> CampaignCounts {
    let want = counted_from_the_log(store, t, c).await;
    let got = store.campaign_counts(&t.id, c).await.unwrap();
    assert_eq!(got, want, "campaign {c}, {when}");
    let listed = store
        .campaigns_page(&t.id, &page::Seek::first(100))
        .await
        .unwrap();
    let (_, in_list) = listed
        .items
        .iter()
        .find(|(campaign, _)| campaign.id == c)
        .expect("the campaign is listed");
    assert_eq!(in_list, &want, "campaign {c} in the list, {when}");
    got
}

/// Records `p`'s marketing consent going from `old` to `new` at `at`.
async fn consent_change(
    store: &dyn Store,
    t: &Tenant,
    p: &E164,
    old: &str,
    new: &str,
    at: DateTime<Utc>,
) {
    let mut entry = ledger(p, "marketing", old, new);
    entry.occurred_at = at;
    write(
        store,
        t,
        p,
        at,
        Plan {
            ledger: vec![entry],
            ..Default::default()
        },
    )
    .await;
}

async fn campaign_counters_equal_a_count_of_the_send_log(store: &dyn Store) {
    let mut t = acme(store).await;
    // Every due message goes in one claim (no pacing in this scenario).
    t.settings.rate_limits.per_sender_per_minute = 1_000;
    store.update_settings(&t.id, &t.settings).await.unwrap();
    store
        .save_campaign(&campaign(&t, "c1", CampaignStatus::Sending))
        .await
        .unwrap();
    store
        .save_campaign(&campaign(&t, "c2", CampaignStatus::Paused))
        .await
        .unwrap();
    let p = |n: u32| phone(n);
    let h = Duration::hours;
    // Opt-outs recorded before anything is handed off: one before the hand-off (never
    // "afterwards"), one dated after it (counted once the message goes).
    consent_change(store, &t, &p(5), "opted_in", "opted_out", now() - h(1)).await;
    consent_change(store, &t, &p(7), "opted_in", "opted_out", now() + h(1)).await;

    let mut rs: Vec<Recipient> = (1..=8)
        .map(|i| recipient(&t, "c1", &format!("m{i}"), &p(i)))
        .collect();
    rs.push(Recipient::new("c1", "send".into(), &p(9), now()).skipped(SkipReason::OptedOut));
    for i in 10..=11 {
        rs.push(Recipient::new("c1", "send".into(), &p(i), now()).skipped(SkipReason::QuietHours));
    }
    // A paused campaign's message is written held (deferred), not queued.
    rs.push(recipient(&t, "c2", "c2-m1", &p(1)));
    rs.push(
        Recipient::new("c2", "send".into(), &p(12), now()).skipped(SkipReason::NoMarketingConsent),
    );
    store.add_recipients(&t.id, &rs).await.unwrap();
    let c1 = counters_agree(store, &t, "c1", "recorded").await;
    assert_eq!(c1.by_status.get(&SendStatus::Queued), Some(&8));
    assert_eq!(c1.by_status.get(&SendStatus::Skipped), Some(&3));
    let c2 = counters_agree(store, &t, "c2", "recorded").await;
    assert_eq!(c2.by_status.get(&SendStatus::Deferred), Some(&1));

    // Claimed: one refused, one deferred, the rest sending (handed off now).
    let retry_at = now() + Duration::minutes(10);
    let claimed = store
        .claim_due(now(), 100, &mut |m, _| match m.id.as_str() {
            "m2" => Handoff::Refuse {
                status: MessageStatus::Blocked,
                reason: "opted_out".into(),
            },
            "m3" => Handoff::Defer {
                until: retry_at,
                reason: "quiet_hours".into(),
            },
            _ => Handoff::Send,
        })
        .await
        .unwrap();
    assert_eq!(claimed.len(), 6, "{:?}", ids(&claimed));
    counters_agree(store, &t, "c1", "claimed").await;

    // Sent, delivered, failed, and one put back to retry.
    let update = |status, provider_id: &str| MessageUpdate {
        status: Some(status),
        reason: None,
        provider_id: Some(provider_id.into()),
        at: Some(now()),
    };
    let mut failed = update(MessageStatus::Failed, "SM5");
    failed.reason = Some("30008".into());
    store
        .update_messages(&[
            (
                t.id.clone(),
                "m1".into(),
                update(MessageStatus::Sent, "SM1"),
            ),
            (
                t.id.clone(),
                "m4".into(),
                update(MessageStatus::Delivered, "SM4"),
            ),
            (t.id.clone(), "m5".into(), failed),
            (
                t.id.clone(),
                "m6".into(),
                update(MessageStatus::Sent, "SM6"),
            ),
        ])
        .await
        .unwrap();
    store
        .update_message(&t.id, "m6", &update(MessageStatus::Delivered, "SM6"))
        .await
        .unwrap();
    let backoff = |attempt: u32| Duration::minutes(i64::from(attempt));
    store
        .retry_later(&t.id, "m8", &"timeout".into(), now(), Some(3), &backoff)
        .await
        .unwrap();
    counters_agree(store, &t, "c1", "reported").await;

    // Opt-outs afterwards: p1 twice in its 7 days (counted once), p4 after 8 days (not
    // counted), p9 was skipped (no message: not counted); p7's came before any of these.
    consent_change(store, &t, &p(1), "opted_in", "opted_out", now() + h(24)).await;
    consent_change(store, &t, &p(1), "opted_out", "opted_in", now() + h(48)).await;
    consent_change(store, &t, &p(1), "opted_in", "opted_out", now() + h(72)).await;
    consent_change(store, &t, &p(4), "opted_in", "opted_out", now() + h(24 * 8)).await;
    consent_change(store, &t, &p(9), "opted_in", "opted_out", now() + h(24)).await;
    let c1 = counters_agree(store, &t, "c1", "opted out").await;
    assert_eq!(c1.opted_out_after, 2, "p1 and p7");
    assert_eq!(c1.recipients, 11);
    let statuses: Vec<(SendStatus, u64)> = c1.by_status.into_iter().collect();
    assert_eq!(
        statuses,
        [
            (SendStatus::Blocked, 1),
            (SendStatus::Deferred, 1),
            (SendStatus::Delivered, 2),
            (SendStatus::Failed, 1),
            (SendStatus::Queued, 1),
            (SendStatus::Sending, 1),
            (SendStatus::Sent, 1),
            (SendStatus::Skipped, 3),
        ]
    );
    assert_eq!(
        c1.skipped_by_reason.into_iter().collect::<Vec<_>>(),
        [("opted_out".to_string(), 1), ("quiet_hours".to_string(), 2)]
    );

    // A hand-off undone (a claim orphaned, never started) loses its "afterwards": p3 opts
    // out just after its message is claimed, then the claim is given back.
    let claimed = store.claim_due(retry_at, 100, &mut send_all).await.unwrap();
    assert!(ids(&claimed).contains(&"m3"), "{:?}", ids(&claimed));
    consent_change(store, &t, &p(3), "opted_in", "opted_out", retry_at + h(1)).await;
    assert_eq!(
        counters_agree(store, &t, "c1", "claimed again")
            .await
            .opted_out_after,
        3
    );
    let later = retry_at + Duration::seconds(1);
    store
        .recover_orphaned_sends(later, later, later)
        .await
        .unwrap();
    counters_agree(store, &t, "c1", "orphans recovered").await;

    // Resumed: the held message is released, and goes.
    let (paused, sending) = (CampaignStatus::Paused, CampaignStatus::Sending);
    assert!(
        store
            .move_campaign(&t.id, "c2", paused, sending, Some(later))
            .await
            .unwrap()
    );
    assert_eq!(
        store
            .hold_campaign(&t.id, "c2", false, later)
            .await
            .unwrap(),
        1
    );
    store.claim_due(later, 100, &mut send_all).await.unwrap();
    counters_agree(store, &t, "c2", "released").await;
    counters_agree(store, &t, "c1", "at the end").await;
    assert_eq!(
        store.campaign_counts(&t.id, "nope").await.unwrap(),
        CampaignCounts::default()
    );
}

/// Phones of the conversations list, walked `limit` at a time (backwards from the end
/// when `backwards`), in the order shown.
async fn walk_conversations(
    store: &dyn Store,
    t: &Tenant,
    limit: usize,
    backwards: bool,
) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    let mut seek = if backwards {
        // The end first: walk forwards once to find the last key.
        let mut s = page::Seek::first(limit);
        loop {
            let p = store.conversations_page(&t.id, &s).await.unwrap();
            match p.next() {
                Some(k) => s = page::Seek::after(Some(k.clone()), limit),
                None => {
                    seen.extend(p.items.iter().rev().map(|c| c.phone.as_str().to_string()));
                    break page::Seek::before(p.first.clone(), limit);
                }
            }
        }
    } else {
        page::Seek::first(limit)
    };
    loop {
        let p = store.conversations_page(&t.id, &seek).await.unwrap();
        assert!(p.items.len() <= limit);
        if backwards {
            seen.extend(p.items.iter().rev().map(|c| c.phone.as_str().to_string()));
            match p.prev() {
                Some(k) => seek = page::Seek::before(Some(k.clone()), limit),
                None => break,
            }
        } else {
            seen.extend(p.items.iter().map(|c| c.phone.as_str().to_string()));
            match p.next() {
                Some(k) => seek = page::Seek::after(Some(k.clone()), limit),
                None => break,
            }
        }
    }
    if backwards {
        seen.reverse();
    }
    seen
}

async fn conversations_page_through_a_tie_each_phone_once(store: &dyn Store) {
    let t = acme(store).await;
    // Nine messages at one time (as a fan-out writes them), phone 3 twice, then one later.
    let mut messages: Vec<Message> = (1..=8)
        .map(|i| outbound(&t, &format!("m{i}"), &phone(i)))
        .collect();
    messages.push(outbound(&t, "m3-again", &phone(3)));
    let mut later = outbound(&t, "later", &phone(9));
    later.created_at = now() + Duration::minutes(1);
    messages.push(later);
    queue(store, &t, messages).await;
    // Newest first: the later one, then the tie in reverse order of writing; phone 3 at its
    // second message.
    let want: Vec<String> = [9, 3, 8, 7, 6, 5, 4, 2, 1]
        .iter()
        .map(|&i| phone(i).as_str().to_string())
        .collect();
    for limit in [1, 2, 4, 100] {
        assert_eq!(
            walk_conversations(store, &t, limit, false).await,
            want,
            "limit {limit}"
        );
        assert_eq!(
            walk_conversations(store, &t, limit, true).await,
            want,
            "back, limit {limit}"
        );
    }
}

async fn a_taken_email_is_a_conflict_in_words(store: &dyn Store) {
    let t = acme(store).await;
    let user = |id: &str| User {
        id: id.into(),
        tenant_id: t.id.clone(),
        email: "owner@example.com".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into(),
        failed_logins: 0,
        locked_until: None,
        created_at: now(),
        role: assent_store::Role::Owner,
        disabled: false,
    };
    store.create_user(&user("u1")).await.unwrap();
    match store.create_user(&user("u2")).await {
        Err(StoreError::Conflict(m)) => {
            assert_eq!(m, "that email address already has an account");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

/// The words come from the constraint that was broken, on either database: each taken
/// thing its own, and what the words name nothing else.
async fn a_taken_slug_or_api_key_is_a_conflict_in_words(store: &dyn Store) {
    let t = acme(store).await;
    let conflict = |r: Result<()>| match r {
        Err(StoreError::Conflict(m)) => m,
        other => panic!("expected a conflict, got {other:?}"),
    };
    // Another tenant under t1's slug.
    let mut same_slug = tenant("t2", "+15125550110", "+15125550111");
    same_slug.slug = t.slug.clone();
    assert_eq!(
        conflict(store.create_tenant(&same_slug, "key-t2").await),
        "that name's address (slug) is already taken"
    );
    // Another tenant with t1's API key.
    let other = tenant("t3", "+15125550112", "+15125550113");
    assert_eq!(
        conflict(store.create_tenant(&other, "key-t1").await),
        "that API key is already in use"
    );
    // t1's id again: taken, but none of the named things.
    let mut same_id = tenant("t1", "+15125550114", "+15125550115");
    same_id.slug = "fresh-slug".into();
    assert_eq!(
        conflict(store.create_tenant(&same_id, "key-fresh").await),
        "that conflicts with a record already saved; nothing was changed"
    );
    // Nothing was created.
    assert!(store.tenant("t3").await.unwrap().is_none());
    assert!(store.tenant_by_slug("fresh-slug").await.unwrap().is_none());
}

/// The reads an import and the campaign runner make are bounded: owners of the phones
/// asked about, a page of unsold estimates or recurring services, a tenant's active
/// campaigns of one kind; never the tenant's whole table.
async fn reads_for_imports_and_the_runner_return_only_what_is_asked(store: &dyn Store) {
    let t = acme(store).await;
    let p: Vec<E164> = (0..4).map(phone).collect();
    for c in [
        customer("old", &[], &[&p[0]], 0),
        customer("other", &[], &[&p[1]], 1),
        customer("new", &[], &[&p[0], &p[2]], 2),
    ] {
        store.create_customer(&t.id, &c, &[]).await.unwrap();
    }
    let owners = store
        .phone_owners(&t.id, &[p[0].clone(), p[3].clone()])
        .await
        .unwrap();
    assert_eq!(
        owners,
        [
            (p[0].clone(), "old".to_string()),
            (p[0].clone(), "new".to_string())
        ],
        "the phones asked about, oldest customer first"
    );
    assert!(store.phone_owners(&t.id, &[]).await.unwrap().is_empty());

    for (i, status) in [
        EstimateStatus::Unsold,
        EstimateStatus::Sold,
        EstimateStatus::Unsold,
        EstimateStatus::Unsold,
        EstimateStatus::Dismissed,
        EstimateStatus::Unsold,
    ]
    .into_iter()
    .enumerate()
    {
        let e = Estimate {
            id: format!("e{i}"),
            customer_id: "old".into(),
            phone: None,
            number: None,
            amount_cents: 100,
            status,
            created_at: now() - Duration::minutes(i as i64),
        };
        store.save_estimate(&t.id, &e).await.unwrap();
        let r = RecurringService {
            id: format!("r{i}"),
            customer_id: "old".into(),
            name: "Filter change".into(),
            due_on: now().date_naive(),
            created_at: now(),
        };
        store.save_recurring_service(&t.id, &r).await.unwrap();
    }
    let mut pages = Vec::new();
    let mut after: Option<String> = None;
    loop {
        let page = store
            .unsold_estimates(&t.id, after.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.len() <= 2);
        if page.is_empty() {
            break;
        }
        after = page.last().map(|e| e.id.clone());
        pages.push(page.into_iter().map(|e| e.id).collect::<Vec<_>>());
    }
    assert_eq!(pages, [vec!["e0", "e2"], vec!["e3", "e5"]]);
    let services = store
        .recurring_services(&t.id, Some("r1"), 3)
        .await
        .unwrap();
    let ids: Vec<&str> = services.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids, ["r2", "r3", "r4"]);

    let mut missed = campaign(&t, "missed", CampaignStatus::Active);
    missed.kind = CampaignKind::MissedCalls;
    let mut paused = campaign(&t, "missed-paused", CampaignStatus::Paused);
    paused.kind = CampaignKind::MissedCalls;
    let mut estimates = campaign(&t, "estimates", CampaignStatus::Active);
    estimates.kind = CampaignKind::UnsoldEstimates;
    for c in [&missed, &paused, &estimates] {
        store.save_campaign(c).await.unwrap();
    }
    let active: Vec<String> = store
        .active_campaigns(&t.id, CampaignKind::MissedCalls)
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.id)
        .collect();
    assert_eq!(active, ["missed"]);
}
