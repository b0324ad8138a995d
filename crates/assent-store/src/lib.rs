//! The storage trait every backend implements, and the models it speaks.
//!
//! The store knows nothing of consent rules. Everything that changes a phone's consent
//! goes through [`ConsentStore::transact`]: the store loads a [`PhoneSnapshot`] inside one
//! transaction that no other writer for that phone can interleave with, the caller's pure
//! planning function (the core) decides, and the store writes the [`Plan`] before it
//! commits. That keeps "what happens on STOP" in the core and atomicity in the backend.

pub mod decide;
pub mod migrations;
mod model;
pub mod page;
pub mod shared;
#[doc(hidden)]
pub mod testing;

pub use model::*;

#[doc(hidden)]
pub use chrono as __chrono;
#[doc(hidden)]
pub use sqlx as __sqlx;

use assent_core::phone::E164;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("not found")]
    NotFound,
    #[error("database error: {0}")]
    Database(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Both backends' one conversion: a unique violation is a typed `Conflict` (a taken
/// number, slug or key), anything else a database error.
impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        if let sqlx::Error::Database(d) = &e
            && d.is_unique_violation()
        {
            // The database's own words name tables and indexes; they go to the log, and
            // the caller (and through it an API client) gets what was taken.
            tracing::debug!(error = %d.message(), "unique violation");
            return StoreError::Conflict(taken(&unique_constraint(d.as_ref())).to_string());
        }
        StoreError::Database(e.to_string())
    }
}

/// The unique constraint a violation broke: PostgreSQL names it (`users_email_key`);
/// SQLite names none, and its message lists the columns instead ("UNIQUE constraint
/// failed: users.email"), which stand for it.
fn unique_constraint(d: &dyn sqlx::error::DatabaseError) -> String {
    match d.constraint() {
        Some(name) => name.to_string(),
        None => d
            .message()
            .strip_prefix("UNIQUE constraint failed: ")
            .unwrap_or_default()
            .to_string(),
    }
}

/// What a unique violation means to a person, by the constraint it broke (PostgreSQL's
/// name, or SQLite's columns; see [`unique_constraint`]).
fn taken(constraint: &str) -> &'static str {
    match constraint {
        "users_email_key" | "users.email" => "that email address already has an account",
        "senders_number" | "senders_pkey" | "senders.number" => {
            "that number is already another tenant's sender"
        }
        "tenants_slug_key" | "tenants.slug" => "that name's address (slug) is already taken",
        "tenants_api_key_hash_key" | "tenants.api_key_hash" => "that API key is already in use",
        _ => "that conflicts with a record already saved; nothing was changed",
    }
}

impl From<sqlx::migrate::MigrateError> for StoreError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        StoreError::Database(format!("migration: {e}"))
    }
}

/// Held while an import runs; dropping it lets the next one in.
pub type ImportLock = Box<dyn std::any::Any + Send>;

/// Decides what a transaction writes, given what it read.
pub type Planner<'a> = dyn FnMut(&PhoneSnapshot) -> Plan + Send + 'a;
/// A claimed message about to go to the provider, with the time of the claim that took it
/// (its `handed_off_at`): one write may start the messages of several claims.
#[derive(Debug, Clone, Copy)]
pub struct CallStart<'a> {
    pub message: &'a Message,
    pub claimed_at: DateTime<Utc>,
}

/// Decides, for each claimed message, what happens at hand-off.
pub type HandoffPlanner<'a> = dyn FnMut(&Message, &PhoneSnapshot) -> Handoff + Send + 'a;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transacted {
    Applied,
    /// The dedup key (an inbound `MessageSid`) was seen before; nothing was written.
    Duplicate,
}

/// The database and its tenants: what changes their settings, sending numbers and
/// registrations.
#[async_trait]
pub trait TenantStore: Send + Sync {
    /// Applies pending migrations; safe to call on every start.
    async fn migrate(&self) -> Result<()>;
    /// Answers only when the database takes writes too: a write transaction is opened
    /// and rolled back (a locked SQLite file or a read-only PostgreSQL fails it).
    async fn ping(&self) -> Result<()>;
    async fn create_tenant(&self, tenant: &Tenant, api_key_hash: &str) -> Result<()>;
    async fn update_settings(&self, tenant_id: &str, settings: &Settings) -> Result<()>;
    /// Fails with `Conflict` when another tenant already uses one of the numbers. The
    /// numbers replaced are kept as former senders, retired at `now`.
    async fn set_senders(
        &self,
        tenant_id: &str,
        senders: &Senders,
        now: DateTime<Utc>,
    ) -> Result<()>;
    async fn save_registration(&self, tenant_id: &str, reg: &Registration) -> Result<()>;
    /// Renames a tenant and sets its time zone (its slug stays); `NotFound` when it is gone.
    async fn update_profile(
        &self,
        tenant_id: &str,
        name: &str,
        time_zone: &assent_core::Tz,
    ) -> Result<()>;
}

/// Customers found by id or by phone.
#[async_trait]
pub trait CustomerLookup: Send + Sync {
    /// The (phone, customer id) pairs of `phones` that are on a record, oldest customer
    /// first: an import looks up one batch of its rows at a time (at most a few thousand
    /// phones), never the whole tenant.
    async fn phone_owners(&self, tenant_id: &str, phones: &[E164]) -> Result<Vec<(E164, String)>>;
    /// Ids of the customers holding `phone`, oldest first.
    async fn customers_with_phone(&self, tenant_id: &str, phone: &E164) -> Result<Vec<String>>;
    async fn customer(&self, tenant_id: &str, id: &str) -> Result<Option<Customer>>;
}

/// Finding tenants and reading their registrations.
#[async_trait]
pub trait TenantDirectory: Send + Sync {
    /// How many tenants the database holds (`serve --demo` seeds only an empty one).
    async fn tenant_count(&self) -> Result<u64>;
    async fn tenant(&self, id: &str) -> Result<Option<Tenant>>;
    async fn tenant_by_slug(&self, slug: &str) -> Result<Option<Tenant>>;
    /// Tenants' slugs in order, at most `limit` after `after` (a keyset page).
    async fn tenant_slugs_page(&self, after: Option<&str>, limit: usize) -> Result<Vec<String>>;
    async fn tenant_by_api_key(&self, api_key_hash: &str) -> Result<Option<Tenant>>;
    /// The tenant that texts from `number`, and the channels the number serves.
    async fn tenant_by_sender(&self, number: &E164) -> Result<Option<Tenant>>;
    async fn registrations(&self, tenant_id: &str) -> Result<Registrations>;
    /// Whether a tenant already has this name (trimmed, in any case).
    async fn tenant_name_taken(&self, name: &str) -> Result<bool>;
    /// Pending registrations of every tenant, in (tenant id, kind) order: at most `limit`
    /// after `after` (the last one of the previous page). The registration checker walks
    /// them a page at a time.
    async fn pending_registrations(
        &self,
        after: Option<&(String, RegistrationKind)>,
        limit: u32,
    ) -> Result<Vec<(String, Registration)>>;
}

/// Customers, their phones and their contact toggles (imports too).
#[async_trait]
pub trait CustomerStore: Send + Sync {
    /// Waits until no other process imports customers for this tenant, and holds that
    /// until the returned guard is dropped (two imports matching rows to existing phones
    /// at once would both create the same customers). `None` where one process owns the
    /// database and its own lock is enough (SQLite).
    async fn hold_import_lock(&self, tenant_id: &str) -> Result<Option<ImportLock>> {
        let _ = tenant_id;
        Ok(None)
    }
    /// Brings the query planner's statistics of the customer tables up to date after a bulk
    /// write (an import). PostgreSQL's autovacuum analyzes only a minute or more later, and
    /// until then plans for a tenant it has no statistics of walk everything: a
    /// 1,000,000-customer audience read 5,000 phones in 27.5 s instead of 72 ms. A no-op
    /// where no query depends on statistics (SQLite, tests/sqlite/plans.rs).
    async fn refresh_statistics(&self) -> Result<()> {
        Ok(())
    }
    /// Creates a customer and writes the ledger entries of its initial toggles.
    async fn create_customer(
        &self,
        tenant_id: &str,
        customer: &Customer,
        ledger: &[NewLedgerEntry],
    ) -> Result<()>;
    /// Creates many customers in one write (imports). Backends without a bulk path create
    /// them one by one.
    async fn create_customers(
        &self,
        tenant_id: &str,
        customers: &[(Customer, Vec<NewLedgerEntry>)],
    ) -> Result<()> {
        for (c, ledger) in customers {
            self.create_customer(tenant_id, c, ledger).await?;
        }
        Ok(())
    }
    /// Adds a phone to a customer's contact methods (last), writing the ledger entries of
    /// its initial toggles; `NotFound` without the customer, `Conflict` when the customer
    /// already holds that phone.
    async fn add_phone(
        &self,
        tenant_id: &str,
        customer_id: &str,
        method: &ContactMethod,
        ledger: &[NewLedgerEntry],
    ) -> Result<()>;
    /// Takes a phone off a customer's contact methods. The phone's consent and its ledger
    /// stay as they are (consent belongs to the number); `NotFound` when the customer does
    /// not hold it.
    async fn remove_phone(&self, tenant_id: &str, customer_id: &str, phone: &E164) -> Result<()>;
    /// Sets one contact method's toggles and records the change; `NotFound` when the
    /// customer does not hold that phone.
    async fn set_toggles(
        &self,
        tenant_id: &str,
        customer_id: &str,
        phone: &E164,
        toggles: (bool, bool),
        ledger: &[NewLedgerEntry],
    ) -> Result<()>;
}

/// A phone's consent: the one transaction that changes it, snapshots, the ledger, and the
/// replies waiting for a person's review.
#[async_trait]
pub trait ConsentStore: Send + Sync {
    /// Loads a phone's snapshot, lets `plan` decide, writes the plan, commits. Calls for
    /// the same phone are serialised, across processes too.
    async fn transact(
        &self,
        tenant_id: &str,
        phone: &E164,
        now: DateTime<Utc>,
        dedup: Option<&str>,
        plan: &mut Planner<'_>,
    ) -> Result<Transacted>;
    /// A read-only snapshot (for showing what the gate would say).
    async fn snapshot(
        &self,
        tenant_id: &str,
        phone: &E164,
        now: DateTime<Utc>,
    ) -> Result<PhoneSnapshot>;
    /// Snapshots of many phones, in the order given (campaign fan-out).
    async fn snapshots(
        &self,
        tenant_id: &str,
        phones: &[E164],
        now: DateTime<Utc>,
    ) -> Result<Vec<PhoneSnapshot>> {
        let mut out = Vec::with_capacity(phones.len());
        for p in phones {
            out.push(self.snapshot(tenant_id, p, now).await?);
        }
        Ok(out)
    }
    /// Open reviews of every tenant whose deadline is at or before `now`, oldest deadline
    /// first, at most `limit` (the deadline worker decides them).
    async fn overdue_reviews(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<(String, Review)>>;
    async fn review(&self, tenant_id: &str, id: &str) -> Result<Option<Review>>;
}

/// Outbound and inbound messages: the queue, its claims and hand-offs, and what the provider
/// reported. Queueing goes through [`ConsentStore::transact`], hence the supertrait.
#[async_trait]
pub trait QueueStore: ConsentStore + Send + Sync {
    /// Queues many outbound messages at once (campaign fan-out, benchmarks); each has
    /// already passed the gate. Backends without a bulk path insert them one by one.
    async fn enqueue(&self, messages: &[Message]) -> Result<()> {
        for m in messages {
            let mut plan = |_: &PhoneSnapshot| Plan {
                messages: vec![m.clone()],
                ..Default::default()
            };
            self.transact(&m.tenant_id, &m.phone, m.created_at, None, &mut plan)
                .await?;
        }
        Ok(())
    }
    /// Claims up to `limit` due messages (queued, or deferred until now) and decides each
    /// one's hand-off in the same transaction. Returns the messages now `sending`.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        plan: &mut HandoffPlanner<'_>,
    ) -> Result<Vec<Message>>;
    /// Records what the provider said about the tenant's message `id`; a status never moves
    /// backwards.
    async fn update_message(&self, tenant_id: &str, id: &str, update: &MessageUpdate)
    -> Result<()>;
    /// Several updates in one transaction (one durable write for a whole batch of
    /// hand-offs or delivery reports, whichever tenants they are of), each
    /// `(tenant_id, id, update)`. Unknown messages are skipped.
    async fn update_messages(&self, updates: &[(String, String, MessageUpdate)]) -> Result<()> {
        for (tenant_id, id, u) in updates {
            match self.update_message(tenant_id, id, u).await {
                Ok(()) | Err(StoreError::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
    /// Puts a `sending` message whose hand-off sent nothing back in the queue after
    /// `backoff(attempt)`, or marks it `failed` once `max_attempts` hand-offs were tried;
    /// with no `max_attempts` (the provider throttled the account) the attempt is not
    /// counted and the message is never failed for it. Nothing was sent, so the claim's
    /// count against the tenant's daily cap is given back and `handed_off_at` cleared.
    /// Returns the new status. Every backend implements it: a default that failed the
    /// message at once would fail it for a throttle too, which is never a failure.
    async fn retry_later(
        &self,
        tenant_id: &str,
        id: &str,
        reason: &MessageReason,
        now: DateTime<Utc>,
        max_attempts: Option<u32>,
        backoff: &(dyn Fn(u32) -> chrono::Duration + Send + Sync),
    ) -> Result<MessageStatus>;
    /// The last step before claimed messages go to the provider: each message still
    /// `sending` from the claim made at its `claimed_at` and not yet started is decided again by
    /// `plan` under its phone's lock (the one a STOP's [`ConsentStore::transact`] takes), and those
    /// it lets go are marked as started (`call_started_at = now`) in the same transaction.
    /// Returns, in the order given, whether each message may be handed off now; the others
    /// get the planner's status, or were not this claim's any more (requeued by
    /// [`QueueStore::recover_orphaned_sends`]) and are left alone.
    async fn start_calls(
        &self,
        starts: &[CallStart<'_>],
        now: DateTime<Utc>,
        plan: &mut HandoffPlanner<'_>,
    ) -> Result<Vec<bool>>;
    /// The writes one hand-off makes between provider calls: the outcomes of the calls
    /// that came back ([`QueueStore::update_messages`]), then the next calls started
    /// ([`QueueStore::start_calls`], whose answer this returns). PostgreSQL makes both in
    /// one transaction, so a burst of calls costs one commit instead of two.
    async fn record_and_start(
        &self,
        updates: &[(String, String, MessageUpdate)],
        starts: &[CallStart<'_>],
        now: DateTime<Utc>,
        plan: &mut HandoffPlanner<'_>,
    ) -> Result<Vec<bool>> {
        self.update_messages(updates).await?;
        self.start_calls(starts, now, plan).await
    }
    /// True when only this process can write the database (embedded SQLite): then every
    /// message found `sending` at start was left by a process that died.
    fn single_process(&self) -> bool {
        false
    }
    /// Cleans up after a process that died mid-hand-off: a `sending` message claimed before
    /// `claimed_before` whose provider call never started goes back to the queue (nothing
    /// was sent, so its count against the tenant's daily cap is given back); one whose call
    /// started before `started_before` becomes `unknown`. Returns (requeued, unknown).
    async fn recover_orphaned_sends(
        &self,
        claimed_before: DateTime<Utc>,
        started_before: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<(u64, u64)>;
    /// A claim given back at shutdown: those of `keys` (each `(tenant_id, id)`) still
    /// `sending` from the claim made at `claimed_at` whose call never started go back to the
    /// queue (nothing was sent, so their count against the daily cap is given back).
    /// Returns how many.
    async fn requeue_unstarted(
        &self,
        keys: &[(&str, &str)],
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64>;
}

/// Messages found by id, idempotency key or provider id, and the queue's counts.
#[async_trait]
pub trait MessageLookup: Send + Sync {
    async fn message(&self, tenant_id: &str, id: &str) -> Result<Option<Message>>;
    /// Finds an API send by its idempotency key.
    async fn message_by_idempotency_key(
        &self,
        tenant_id: &str,
        key: &str,
    ) -> Result<Option<Message>>;
    /// The tenant's message with the provider's id (an outbound SID or an inbound
    /// MessageSid). A status report finds the tenant by its sender number first.
    async fn message_by_provider_id(
        &self,
        tenant_id: &str,
        provider_id: &str,
    ) -> Result<Option<Message>>;
    /// Messages to `phone` whose provider call started after `since` and has not been
    /// answered: they may still reach the carrier.
    async fn in_flight(&self, tenant_id: &str, phone: &E164, since: DateTime<Utc>) -> Result<u64>;
    /// The send queue as the database holds it (every process's messages): for `/metrics`.
    async fn queue_depth(&self, now: DateTime<Utc>) -> Result<QueueDepth>;
}

/// How many outbound messages wait, by status, and since when the oldest due one has
/// been due.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueDepth {
    pub queued: u64,
    pub deferred: u64,
    pub sending: u64,
    /// The due time of the longest-waiting message that is due now (queued, or deferred
    /// until now or earlier); `None` when nothing is due.
    pub oldest_due: Option<DateTime<Utc>>,
}

/// Audience pages whose ends are found before they are read ([`CampaignStore::audience_ranges`]).
#[async_trait]
pub trait AudienceRanges: Send + Sync {
    /// Where the page of at most `limit` phones after `after` of the audience that
    /// [`CampaignStore::audience_page`] would read ends, or `None` when this audience's
    /// ends cannot be found ahead (then it is read with `audience_page`).
    async fn audience_page_end(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        limit: usize,
    ) -> Result<Option<PageEnd>>;
    /// The page after `after` up to `end`, as [`AudienceRanges::audience_page_end`] found
    /// it, with what [`CampaignStore::audience_page`] gives each phone; its `next` is the
    /// end's phone.
    async fn audience_range(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        end: &PageEnd,
        now: DateTime<Utc>,
    ) -> Result<AudiencePage>;
}

/// What a campaign does to the queue: its audience, fan-out, pause and withdrawal, under
/// each backend's own locking. An audience page carries each phone's snapshot, hence the
/// supertrait.
#[async_trait]
pub trait CampaignStore: ConsentStore + Send + Sync {
    /// One page of a marketing audience (every opted-in phone when `tags` is empty, else
    /// every phone of customers with any of the tags) in phone order: at most `limit`
    /// phones after `after`, each with its snapshot, and where the next page starts. A
    /// fan-out walks the audience a page at a time, so memory stays flat however large it
    /// is.
    /// A snapshot's recent marketing hand-offs may be left out: they only defer (the
    /// frequency cap), which decides nobody's place in the audience nor a skip.
    async fn audience_page(
        &self,
        tenant_id: &str,
        tags: &[String],
        after: Option<&E164>,
        limit: usize,
        now: DateTime<Utc>,
    ) -> Result<AudiencePage>;
    /// This store's audience pages bounded before they are read, when it has them: a
    /// fan-out then reads the next page while the last is still being read and folded.
    fn audience_ranges(&self) -> Option<&dyn AudienceRanges> {
        None
    }
    /// Records recipients and queues their messages in one write; a (campaign, step,
    /// phone) already recorded is left alone, message included. Returns how many were new.
    /// A recipient with neither a message nor a skip reason is recorded as queued and
    /// composed later ([`CampaignStore::compose_recipients`]): a marketing fan-out records
    /// its whole audience that way, and its messages follow a page at a time.
    async fn add_recipients(&self, tenant_id: &str, recipients: &[Recipient]) -> Result<u64>;
    /// The members of a marketing audience among `phones`, in their order: each phone's
    /// snapshot, and the name of its oldest customer record with one of `tags` (any record
    /// when `tags` is empty; none when no record has them).
    async fn audience_members(
        &self,
        tenant_id: &str,
        tags: &[String],
        phones: &[E164],
        now: DateTime<Utc>,
    ) -> Result<Vec<(AudienceMember, PhoneSnapshot)>>;
    /// Writes what recipients recorded without a message came to: their message (held if
    /// the campaign is paused by then, as [`CampaignStore::add_recipients`] does) or their
    /// skip reason. Only a recipient still recorded that way is written, so two runners
    /// composing the same page write it once. Returns how many were written.
    async fn compose_recipients(&self, tenant_id: &str, recipients: &[Recipient]) -> Result<u64>;
    /// Moves a campaign from `from` to `to` only if its status is still `from`, setting
    /// `resumed_at` when given; returns whether it moved. Pause, resume and the runner
    /// change a campaign's status only this way, so none of them undoes another's change.
    async fn move_campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        from: CampaignStatus,
        to: CampaignStatus,
        resumed_at: Option<DateTime<Utc>>,
    ) -> Result<bool>;
    /// Pausing holds a campaign's queued and deferred messages (deferred, reason
    /// `campaign_paused`); resuming queues them again. Sent ones are never touched. Either
    /// happens only if the campaign's status (read in the same statement) still agrees:
    /// holding only while it is `paused`, releasing only while it is not. Messages that
    /// [`CampaignStore::add_recipients`] queues for a paused campaign are held as they are written.
    async fn hold_campaign(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        paused: bool,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Blocks (reason `estimate_closed`) the still-queued or deferred campaign messages of an
    /// estimate's follow-up steps: a sold or dismissed estimate gets no more follow-ups.
    async fn withdraw_estimate_steps(
        &self,
        tenant_id: &str,
        estimate_id: &str,
        now: DateTime<Utc>,
    ) -> Result<u64>;
}

/// A campaign's row and what it recorded, read back: the runner's checks and the reports.
#[async_trait]
pub trait CampaignRecords: Send + Sync {
    async fn save_campaign(&self, c: &Campaign) -> Result<()>;
    async fn campaign(&self, tenant_id: &str, id: &str) -> Result<Option<Campaign>>;
    /// A tenant's active campaigns of one kind, oldest first (never the whole list: that is
    /// [`ListStore::campaigns_page`]).
    async fn active_campaigns(&self, tenant_id: &str, kind: CampaignKind) -> Result<Vec<Campaign>>;
    /// Scheduled, sending and active campaigns of every tenant, for the runner.
    async fn running_campaigns(&self) -> Result<Vec<Campaign>>;
    /// Which of `steps` a campaign has already recorded, with their phones (to skip work
    /// already done); the runner asks for one page of steps at a time.
    async fn recorded_steps(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        steps: &[String],
    ) -> Result<Vec<(String, E164)>>;
    /// Whether a campaign has recorded any recipient (a marketing campaign has fanned out):
    /// one `EXISTS`, never the send log.
    async fn campaign_recorded(&self, tenant_id: &str, campaign_id: &str) -> Result<bool>;
    /// Whether every recipient of a campaign is accounted for (skipped, or its message past
    /// queued, deferred and sending; a recipient not yet composed counts as queued): read
    /// from the campaign's counters, never the send log.
    async fn campaign_settled(&self, tenant_id: &str, campaign_id: &str) -> Result<bool>;
    /// At most `limit` phones of a campaign's step, after `after` in phone order, recorded
    /// without a message or a skip reason: what [`CampaignStore::compose_recipients`] has
    /// still to compose.
    async fn uncomposed_recipients(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        step: &str,
        after: Option<&E164>,
        limit: usize,
    ) -> Result<Vec<E164>>;
    /// The whole send log, for tests of small campaigns only: pages and reports use
    /// [`CampaignRecords::send_log_page`] and [`CampaignRecords::campaign_counts`].
    async fn send_log(&self, tenant_id: &str, campaign_id: &str) -> Result<Vec<SendLogRow>>;
    /// A campaign's counts by status, skipped by reason and opted out afterwards: the
    /// counters the database keeps (table `campaign_counts`, kept in the transaction of
    /// each change: by triggers, and on SQLite by `add_recipients` for the recipients it
    /// records), a few rows whatever the audience; a report never
    /// loads or aggregates the send log.
    async fn campaign_counts(&self, tenant_id: &str, campaign_id: &str) -> Result<CampaignCounts>;
    /// At most `limit` rows of a campaign's send log after `after`, in key order (step,
    /// phone), only those with `status` when given.
    async fn send_log_page(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        status: Option<SendStatus>,
        after: Option<&SendLogKey>,
        limit: usize,
    ) -> Result<SendLogPage>;
    /// At most `limit` rows of a campaign's send log before `before` (the last ones when
    /// `None`), still in key order; `next` is then the first row's key, when there are more
    /// before it. The web report's "previous" link.
    async fn send_log_page_before(
        &self,
        tenant_id: &str,
        campaign_id: &str,
        status: Option<SendStatus>,
        before: Option<&SendLogKey>,
        limit: usize,
    ) -> Result<SendLogPage>;
}

/// What the automated campaigns work from: the business's estimates, recurring services
/// and calls.
#[async_trait]
pub trait CampaignInputStore: Send + Sync {
    async fn save_estimate(&self, tenant_id: &str, e: &Estimate) -> Result<()>;
    async fn estimate(&self, tenant_id: &str, id: &str) -> Result<Option<Estimate>>;
    /// At most `limit` unsold estimates after the id `after`, in id order: the runner and
    /// the preview walk them a page at a time.
    async fn unsold_estimates(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Estimate>>;
    async fn save_recurring_service(&self, tenant_id: &str, r: &RecurringService) -> Result<()>;
    /// At most `limit` recurring services after the id `after`, in id order.
    async fn recurring_services(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<RecurringService>>;
    /// A number that changes whenever one of the tenant's estimates or recurring services
    /// is saved (`None` before the first): the campaign runner redoes a
    /// pass only when it moved or a step falls due.
    async fn campaign_inputs_version(&self, tenant_id: &str) -> Result<Option<i64>>;
    async fn save_call(&self, tenant_id: &str, call: &Call) -> Result<()>;
}

/// The opt-in form's hit limits.
#[async_trait]
pub trait FormLimitStore: Send + Sync {
    /// Records one hit on every `(key, max, window)` if none of them already has `max` hits
    /// within its window, all or nothing; returns whether it did. Kept in the database, so
    /// the opt-in form's limits hold across every process of a deployment.
    async fn take_hits(
        &self,
        limits: &[(String, u32, chrono::Duration)],
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// Forgets hits older than `before` (none of the windows is longer).
    async fn forget_hits(&self, before: DateTime<Utc>) -> Result<u64>;
}

/// The web app: users, sessions, sign-in limits and the look-ups the pages need.
#[async_trait]
pub trait WebStore: Send + Sync {
    /// Fails with `Conflict` when the email is taken.
    async fn create_user(&self, user: &User) -> Result<()>;
    async fn user_by_email(&self, email: &str) -> Result<Option<User>>;
    /// Counts a sign-in attempt at `now`, before its password is checked (a success clears
    /// the count): the `max`th in a row locks the account until `lock_until`, and after a
    /// lock has run out the count starts again. Returns false, counting nothing, while the
    /// account is locked. Atomic: of any number of parallel attempts, at most `max` count.
    async fn count_login_attempt(
        &self,
        user_id: &str,
        now: DateTime<Utc>,
        max: u32,
        lock_until: DateTime<Utc>,
    ) -> Result<bool>;
    /// A successful sign-in clears the count and any lock.
    async fn clear_failed_logins(&self, user_id: &str) -> Result<()>;
    /// Sets a user's password hash, clears any lock and ends the user's sessions;
    /// `NotFound` when the user is gone.
    async fn set_password(&self, user_id: &str, password_hash: &str) -> Result<()>;
    /// One of a tenant's users by id.
    async fn tenant_user(&self, tenant_id: &str, user_id: &str) -> Result<Option<User>>;
    /// Sets a user's role and whether they are disabled (disabling ends their sessions);
    /// `NotFound` when the tenant has no such user.
    async fn set_user_access(
        &self,
        tenant_id: &str,
        user_id: &str,
        role: Role,
        disabled: bool,
    ) -> Result<()>;
    /// Removes one of a tenant's users and their sessions; `NotFound` when there is none.
    async fn delete_user(&self, tenant_id: &str, user_id: &str) -> Result<()>;
    /// A tenant's users in email order: at most `limit` after the email `after`.
    async fn users_of_tenant(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<User>>;
    /// Records a failed sign-in to one of a tenant's accounts, keeping only the tenant's
    /// last [`LOGIN_FAILURES_KEPT`].
    async fn record_login_failure(&self, tenant_id: &str, failure: &LoginFailure) -> Result<()>;
    /// A tenant's most recent failed sign-ins, newest first, at most `limit`.
    async fn login_failures(&self, tenant_id: &str, limit: u32) -> Result<Vec<LoginFailure>>;
    /// Stores a new session and removes the user's expired ones.
    async fn create_session(&self, session: &Session) -> Result<()>;
    /// The unexpired session with this id hash, and its user.
    async fn session(&self, id_hash: &str, now: DateTime<Utc>) -> Result<Option<(Session, User)>>;
    async fn delete_session(&self, id_hash: &str) -> Result<()>;
    /// The authors of those of `message_ids` written in the web app: (message id, user id).
    /// A reply's author is written with it ([`Plan::author`]).
    async fn authors(
        &self,
        tenant_id: &str,
        message_ids: &[String],
    ) -> Result<Vec<(String, String)>>;
}

/// The lists the API and the web app page through, one keyset page a read (see [`page`]),
/// and their sizes for "1–50 of 1,234" (counted up to [`page::COUNT_CAP`] + 1). Both
/// backends get theirs from [`shared_list_sql!`].
#[async_trait]
pub trait ListStore: Send + Sync {
    /// Customers matching a search (see [`customer_search_patterns`]; empty lists all),
    /// newest first, with their phones.
    async fn customers_page(
        &self,
        tenant_id: &str,
        f: &page::CustomerFilter,
        seek: &page::Seek,
    ) -> Result<page::Page<Customer>>;
    async fn customer_count(&self, tenant_id: &str, f: &page::CustomerFilter) -> Result<u64>;
    /// Phones with messages, the most recently active first.
    async fn conversations_page(
        &self,
        tenant_id: &str,
        seek: &page::Seek,
    ) -> Result<page::Page<ConversationSummary>>;
    async fn conversation_count(&self, tenant_id: &str) -> Result<u64>;
    /// One phone's messages oldest first, or the tenant's newest first (see
    /// [`page::MessageFilter`]). Keys hold the insertion order as their id.
    async fn messages_page(
        &self,
        tenant_id: &str,
        filter: &page::MessageFilter,
        seek: &page::Seek,
    ) -> Result<page::Page<Message>>;
    /// Ledger entries in commit order (`seq`).
    async fn ledger_page(
        &self,
        tenant_id: &str,
        filter: &page::LedgerFilter,
        seek: &page::Seek,
    ) -> Result<page::Page<LedgerEntry>>;
    async fn ledger_count(&self, tenant_id: &str, filter: &page::LedgerFilter) -> Result<u64>;
    /// Campaigns newest first, each with its counts (the page's counters, read in one
    /// query).
    async fn campaigns_page(
        &self,
        tenant_id: &str,
        seek: &page::Seek,
    ) -> Result<page::Page<(Campaign, CampaignCounts)>>;
    async fn campaign_count(&self, tenant_id: &str) -> Result<u64>;
    /// Reviews oldest first, decided ones included.
    async fn reviews_page(&self, tenant_id: &str, seek: &page::Seek) -> Result<page::Page<Review>>;
    async fn review_count(&self, tenant_id: &str) -> Result<u64>;
    /// Reviews still to decide, the tenant's whole list (not a page's), capped like the
    /// other counts.
    async fn open_review_count(&self, tenant_id: &str) -> Result<u64>;
}

/// A tenant's side of the Twilio-compatible API (CONTRACT.md "Twilio-compatible sending").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TwilioAccount {
    pub tenant_id: String,
    /// `AC` + 32 hex digits.
    pub account_sid: String,
    /// The tenant API key as last presented with Basic auth (Twilio signs with the auth
    /// token itself); `None` until then.
    pub auth_token: Option<String>,
}

impl TwilioAccount {
    /// A new account SID: `AC` and 32 hex digits.
    pub fn new_sid() -> String {
        format!("AC{}", uuid::Uuid::now_v7().simple())
    }
}

/// What the Twilio-compatible message list is filtered by, and the page it reads: at most
/// `limit` messages, newest first (by creation time, then insertion order), after the key
/// `after` of the previous page's last message.
#[derive(Debug, Clone, Default)]
pub struct TwilioMessageFilter {
    pub to: Option<E164>,
    pub from: Option<E164>,
    /// Created at or after.
    pub sent_from: Option<DateTime<Utc>>,
    /// Created before.
    pub sent_before: Option<DateTime<Utc>>,
    pub after: Option<page::Key>,
    pub limit: u32,
}

/// One delivery waiting in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    /// Stable across retries: a receiver deduplicates by it.
    pub event_id: String,
    pub tenant_id: String,
    /// `status_callback` (body: the message's id, status, reason, to and from as JSON) or
    /// `event` (body: the event's JSON, as posted).
    pub kind: String,
    pub endpoint_id: Option<String>,
    pub url: String,
    pub body: String,
    /// Attempts so far, this one included.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
}

/// A tenant's outbound-event endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookEndpoint {
    pub id: String,
    pub tenant_id: String,
    pub url: String,
    /// The HMAC-SHA256 key of its `Assent-Signature`.
    pub secret: String,
    /// Of `consent.changed`, `message.status`, `review.opened`.
    pub events: Vec<String>,
    pub created_at: DateTime<Utc>,
    pub deleted_at: Option<DateTime<Utc>>,
}

/// One line of an endpoint's delivery log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: i64,
    pub event_id: String,
    pub event_type: String,
    pub attempts: u32,
    pub next_attempt_at: DateTime<Utc>,
    pub delivered_at: Option<DateTime<Utc>>,
    pub given_up_at: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Twilio-compatible accounts, status callbacks and the outbox of deliveries to other
/// systems. Outbox rows for status changes are written by the database in the transaction
/// of the change (see [`shared::relay`]).
#[async_trait]
pub trait RelayStore: Send + Sync {
    /// The tenant's account; every tenant has one (made with the tenant, or by the
    /// migration for tenants made before).
    async fn twilio_account(&self, tenant_id: &str) -> Result<Option<TwilioAccount>>;
    /// Remembers the key the tenant authenticated with, for signing its callbacks.
    async fn set_twilio_auth_token(&self, tenant_id: &str, token: &str) -> Result<()>;
    /// Where the status changes of a message go (written before the message is queued).
    async fn set_status_callback(&self, tenant_id: &str, message_id: &str, url: &str)
    -> Result<()>;
    /// Forgets a status callback whose message was never queued (a refused send).
    async fn forget_status_callback(&self, tenant_id: &str, message_id: &str) -> Result<()>;
    /// One page of the tenant's messages for the Twilio-compatible list, and the cursor of
    /// the next one.
    async fn twilio_messages(
        &self,
        tenant_id: &str,
        filter: &TwilioMessageFilter,
    ) -> Result<(Vec<Message>, Option<page::Key>)>;
    /// Takes up to `limit` due deliveries (each the earliest undelivered one of its phone and
    /// target), counting an attempt and leasing them until `lease_until`.
    async fn claim_outbox(
        &self,
        now: DateTime<Utc>,
        lease_until: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<OutboxItem>>;
    /// The tenant's delivery `id` went (each write names the tenant: the outbox's key
    /// leads with it, see docs/SCALING.md).
    async fn outbox_delivered(&self, tenant_id: &str, id: i64, now: DateTime<Utc>) -> Result<()>;
    /// A failed attempt: tried again at `retry_at`, or given up when `None`.
    async fn outbox_failed(
        &self,
        tenant_id: &str,
        id: i64,
        error: &str,
        retry_at: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> Result<()>;

    /// Deletes at most `limit` deliveries delivered or given up before `before` (the
    /// outbox's retention); returns how many were deleted.
    async fn prune_outbox(&self, before: DateTime<Utc>, limit: u32) -> Result<u64>;

    async fn create_webhook_endpoint(&self, endpoint: &WebhookEndpoint) -> Result<()>;
    /// A live (not deleted) endpoint of the tenant.
    async fn webhook_endpoint(&self, tenant_id: &str, id: &str) -> Result<Option<WebhookEndpoint>>;
    /// The tenant's live endpoints in id order: at most `limit` after `after`.
    async fn webhook_endpoints(
        &self,
        tenant_id: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<WebhookEndpoint>>;
    /// Deletes an endpoint (its log stays; its waiting deliveries are given up); false
    /// when the tenant has no such live endpoint.
    async fn delete_webhook_endpoint(
        &self,
        tenant_id: &str,
        id: &str,
        now: DateTime<Utc>,
    ) -> Result<bool>;
    /// An endpoint's delivery log, newest first: at most `limit` older than `before`.
    async fn deliveries(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>>;
    /// Sends a delivery again, due now; false when the endpoint has no such delivery.
    async fn resend_delivery(
        &self,
        tenant_id: &str,
        endpoint_id: &str,
        id: i64,
        now: DateTime<Utc>,
    ) -> Result<bool>;
}

/// The web app's overview, grouped in the database, and the paged lists of what the
/// transactional campaigns run on. Both backends get theirs from [`shared_overview_sql!`].
#[async_trait]
pub trait OverviewStore: Send + Sync {
    /// What needs attention: undecided reviews, held messages by reason, sends failed
    /// and opt-outs since `since`; each list at most `limit` long.
    async fn attention(
        &self,
        tenant_id: &str,
        since: DateTime<Utc>,
        limit: usize,
    ) -> Result<shared::overview::Attention>;
    /// Opt-ins (good) and opt-outs (bad) per day since `since`, days starting at local
    /// midnight for a zone `offset_ms` ahead of UTC; days without any are absent.
    async fn consent_by_day(
        &self,
        tenant_id: &str,
        since: DateTime<Utc>,
        offset_ms: i64,
    ) -> Result<Vec<shared::overview::DayCounts>>;
    /// Outbound messages settled per day: delivered (good), failed or undelivered (bad).
    async fn delivery_by_day(
        &self,
        tenant_id: &str,
        since: DateTime<Utc>,
        offset_ms: i64,
    ) -> Result<Vec<shared::overview::DayCounts>>;
    /// Estimates, newest first, each with its customer's name.
    async fn estimates_page(
        &self,
        tenant_id: &str,
        seek: &page::Seek,
    ) -> Result<page::Page<(Estimate, Option<String>)>>;
    /// Recurring services, newest first, each with its customer's name.
    async fn recurring_services_page(
        &self,
        tenant_id: &str,
        seek: &page::Seek,
    ) -> Result<page::Page<(RecurringService, Option<String>)>>;
    /// How many estimates, recurring services or calls (up to [`page::COUNT_CAP`] + 1).
    async fn campaign_data_count(
        &self,
        tenant_id: &str,
        what: shared::overview::CampaignData,
    ) -> Result<u64>;
    /// Calls, newest first.
    async fn calls_page(&self, tenant_id: &str, seek: &page::Seek) -> Result<page::Page<Call>>;
}

/// The ledger's hash chain, read back (see [`decide::chain`]); entries are chained as they
/// are appended, by every write path of [`ConsentStore`] and [`CustomerStore`].
#[async_trait]
pub trait ChainStore: Send + Sync {
    /// The tenant's last chained entry: (chain seq, hash); `None` before its first entry.
    async fn ledger_head(&self, tenant_id: &str) -> Result<Option<(i64, String)>>;
    /// Up to `limit` of the tenant's entries after chain seq `after`, in chain order.
    async fn ledger_chain_page(
        &self,
        tenant_id: &str,
        after: i64,
        limit: i64,
    ) -> Result<Vec<shared::chain::ChainRow>>;
    /// The storage seq of the tenant's first entry that has no place in the chain.
    async fn ledger_unchained(&self, tenant_id: &str) -> Result<Option<i64>>;
}

/// Reassigned-number checks and the history of status callbacks: evidence for the proof
/// of consent (docs/PROOF.md), written beside the send path.
#[async_trait]
pub trait EvidenceStore: Send + Sync {
    async fn record_reassigned_check(&self, check: &ReassignedCheck) -> Result<()>;
    /// The newest check of a phone that got an answer at or after `since`.
    async fn answered_check_since(
        &self,
        tenant_id: &str,
        phone: &E164,
        since: DateTime<Utc>,
    ) -> Result<Option<ReassignedCheck>>;
    /// A phone's checks, oldest first, at most `limit`.
    async fn reassigned_checks(
        &self,
        tenant_id: &str,
        phone: &E164,
        limit: u32,
    ) -> Result<Vec<ReassignedCheck>>;
    /// Settles claimed messages that do not go after all: each still `sending` from the
    /// claim made at `claimed_at`, its call not started, gets its outcome's status, reason
    /// and due time. Returns how many were changed.
    async fn settle_claimed(
        &self,
        outcomes: &[ClaimOutcome],
        claimed_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64>;
    /// Keeps status callbacks as received (every one, not only the furthest).
    async fn record_status_events(&self, events: &[StatusEvent]) -> Result<()>;
    /// The callbacks of these messages, in the order received, at most `limit`.
    async fn status_events(
        &self,
        tenant_id: &str,
        message_ids: &[String],
        limit: u32,
    ) -> Result<Vec<StatusEvent>>;
}

/// Everything a backend provides. Callers hold an `Arc<dyn Store>`; a backend implements the
/// focused traits, and the blanket impl makes it a `Store`. Bring the traits' methods into
/// scope with `use assent_store::prelude::*;`.
pub trait Store:
    TenantStore
    + TenantDirectory
    + CustomerStore
    + CustomerLookup
    + ConsentStore
    + QueueStore
    + MessageLookup
    + CampaignStore
    + CampaignRecords
    + WebStore
    + CampaignInputStore
    + FormLimitStore
    + ListStore
    + RelayStore
    + OverviewStore
    + ChainStore
    + EvidenceStore
    + 'static
{
}

impl<T> Store for T where
    T: TenantStore
        + TenantDirectory
        + CustomerStore
        + CustomerLookup
        + ConsentStore
        + QueueStore
        + MessageLookup
        + CampaignStore
        + CampaignRecords
        + CampaignRecords
        + WebStore
        + CampaignInputStore
        + FormLimitStore
        + ListStore
        + RelayStore
        + OverviewStore
        + ChainStore
        + EvidenceStore
        + 'static
{
}

/// The store traits, for callers: `use assent_store::prelude::*;`.
pub mod prelude {
    pub use crate::{
        CampaignInputStore, CampaignRecords, CampaignStore, ChainStore, ConsentStore,
        CustomerLookup, CustomerStore, EvidenceStore, FormLimitStore, ListStore, MessageLookup,
        OverviewStore, QueueStore, RelayStore, Store, TenantDirectory, TenantStore, WebStore,
    };
}
