//! The send worker: claims due messages, passes each through the gate again at the moment
//! of hand-off (a STOP processed after queueing wins), hands it to the provider and records
//! the outcome. A hand-off whose outcome is unknown is never retried automatically: a
//! missed text is better than a doubled one.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use assent_core::gate::{Decision, Stage};
use assent_provider::{OutboundSms, SendError, StatusReport};
use assent_store::*;

use chrono::{DateTime, Utc};

use crate::AppState;
use crate::service::{gate_for, provider_stop_list};

/// Claims and sends one batch; returns how many messages were claimed.
pub async fn dispatch_once(app: &AppState, batch: u32) -> Result<usize> {
    let (writer, written) = Writer::start(app);
    let claimed = claim_and_hand_off(app, batch, &writer).await;
    // Every batch it wrote for has ended: the last clone goes, and its task with it.
    drop(writer);
    let _ = written.await;
    claimed
}

/// One claim and its hand-off, written back through `writer`.
async fn claim_and_hand_off(app: &AppState, batch: u32, writer: &Writer) -> Result<usize> {
    // A writer that failed starts nothing: a claim now would wait for the sweep.
    if writer.halted() {
        return Err(writer.failure());
    }
    let now = app.clock.now();
    // Marketing messages whose phone needs a reassigned-number check (with a lookup
    // provider only): asked about between the claim and the hand-off.
    let mut checks = Vec::new();
    let lookups = app.lookups.is_some();
    let claimed = app
        .store
        .claim_due(now, batch, &mut |m, snap| {
            let h = at_claim(m, snap, now);
            if lookups
                && h == Handoff::Send
                && let Some(c) = crate::service::reassigned::candidate(m, snap, now)
            {
                checks.push(c);
            }
            h
        })
        .await?;
    let n = claimed.len();
    let claimed = crate::service::reassigned::screen(app, claimed, checks, now).await?;
    if !claimed.is_empty() {
        hand_off(app, claimed, now, writer).await?;
    }
    Ok(n)
}

/// What the gate says of a claimed message.
fn at_claim(m: &Message, snap: &PhoneSnapshot, now: DateTime<Utc>) -> Handoff {
    if m.expires_at.is_some_and(|e| e <= now) {
        return Handoff::Refuse {
            status: MessageStatus::Expired,
            reason: MessageReason::NotHandedOffWithin5Minutes,
        };
    }
    let Some(purpose) = m.purpose else {
        return Handoff::Refuse {
            status: MessageStatus::Blocked,
            reason: MessageReason::NoPurpose,
        };
    };
    match gate_for(snap, &m.phone, purpose, Stage::Handoff, now) {
        Decision::Allow => Handoff::Send,
        Decision::Defer { reason, until } => Handoff::Defer {
            until,
            reason: reason.into(),
        },
        Decision::Block(r) => Handoff::Refuse {
            status: MessageStatus::Blocked,
            reason: r.into(),
        },
    }
}

/// The gate again at the provider call itself: only what blocks counts (a STOP, a
/// withdrawn registration, an expiry). A deferral does not: the claim already took the
/// message's place in the pace, and the frequency cap now counts the message itself.
fn at_call(m: &Message, snap: &PhoneSnapshot, now: DateTime<Utc>) -> Handoff {
    match at_claim(m, snap, now) {
        Handoff::Defer { .. } => Handoff::Send,
        other => other,
    }
}

type Outcome = std::result::Result<assent_provider::Accepted, SendError>;

/// A claimed batch being handed off.
struct Batch {
    claimed: Vec<Message>,
    claimed_at: DateTime<Utc>,
}

/// Writes the hand-offs of one or more batches in flight: their tasks send it their steps,
/// and what has gathered goes in one store call, one at a time.
#[derive(Clone)]
struct Writer {
    steps: tokio::sync::mpsc::UnboundedSender<Step>,
    /// Set once a write fails: no further call is started whose outcome might not be kept.
    halted: Arc<std::sync::atomic::AtomicBool>,
    failure: Arc<std::sync::Mutex<Option<String>>>,
}

impl Writer {
    /// The writer, and its task: it ends once every clone of the writer is gone.
    fn start(app: &AppState) -> (Self, tokio::task::JoinHandle<()>) {
        let (steps, mut rx) = tokio::sync::mpsc::unbounded_channel::<Step>();
        let halted = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let failure = Arc::new(std::sync::Mutex::new(None));
        let (app, stop, failed) = (app.clone(), halted.clone(), failure.clone());
        let done = tokio::spawn(async move {
            while let Some(first) = rx.recv().await {
                gather().await;
                let mut burst = vec![first];
                while let Ok(more) = rx.try_recv() {
                    burst.push(more);
                }
                // After a failed write the outcomes are still kept, but nothing new starts.
                let start = !stop.load(Ordering::SeqCst);
                match settle(&app, &mut burst, start).await {
                    Ok(go) => {
                        for (step, go) in burst.into_iter().zip(go) {
                            let _ = step.reply.send(go);
                        }
                    }
                    // The replies are dropped: their tasks stop.
                    Err(e) => {
                        stop.store(true, Ordering::SeqCst);
                        tracing::error!(error = %e, "could not record hand-off outcomes");
                        let mut failed = failed.lock().unwrap_or_else(|p| p.into_inner());
                        failed.get_or_insert(e.to_string());
                    }
                }
            }
        });
        (
            Writer {
                steps,
                halted,
                failure,
            },
            done,
        )
    }

    fn halted(&self) -> bool {
        self.halted.load(Ordering::SeqCst)
    }

    fn halt(&self) {
        self.halted.store(true, Ordering::SeqCst);
    }

    /// Why the writer stopped, for each batch it stopped.
    fn failure(&self) -> StoreError {
        let failed = self.failure.lock().unwrap_or_else(|p| p.into_inner());
        StoreError::Database(
            failed
                .clone()
                .unwrap_or_else(|| "the hand-off writer stopped".to_string()),
        )
    }
}

/// Hands a claimed batch to the provider, [`SEND_CONCURRENCY`] calls at a time. Each
/// message is started (re-gated under its phone's lock and marked `call_started_at`) just
/// before its own call, and its outcome is written as soon as it returns, in the same
/// write that starts its task's next call: a crash leaves only the calls then in flight
/// `unknown`, and a STOP either blocks a message before its call or finds it started and
/// waits for it. A few long-lived tasks share the batch rather than one task per message:
/// spawning wakes a sleeping worker thread each time, which cost more than the task itself.
async fn hand_off(
    app: &AppState,
    claimed: Vec<Message>,
    claimed_at: DateTime<Utc>,
    writer: &Writer,
) -> Result<()> {
    let callback = format!("{}/webhooks/twilio/status", app.config.public_url);
    let batch = Arc::new(Batch {
        claimed,
        claimed_at,
    });
    let next = Arc::new(AtomicUsize::new(0));
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..SEND_CONCURRENCY.min(batch.claimed.len()) {
        let (stopping, metrics) = (app.shutdown.clone(), app.metrics.clone());
        let (provider, batch, next, writer, callback) = (
            app.provider.clone(),
            batch.clone(),
            next.clone(),
            writer.clone(),
            callback.clone(),
        );
        set.spawn(async move {
            let mut finished = None;
            loop {
                // At shutdown no new call starts; the claim's rest goes back to the queue.
                let i = if writer.halted() || stopping.is_set() {
                    None
                } else {
                    Some(next.fetch_add(1, Ordering::Relaxed)).filter(|i| *i < batch.claimed.len())
                };
                if finished.is_none() && i.is_none() {
                    return;
                }
                let (reply, answer) = tokio::sync::oneshot::channel();
                let step = Step {
                    batch: batch.clone(),
                    finished: finished.take(),
                    next: i,
                    reply,
                };
                if writer.steps.send(step).is_err() {
                    writer.halt();
                    return;
                }
                match (answer.await, i) {
                    (Ok(true), Some(i)) => {
                        let m = &batch.claimed[i];
                        let sms = OutboundSms {
                            from: m.from.clone(),
                            to: m.to.clone(),
                            body: m.body.clone(),
                            status_callback: Some(callback.clone()),
                        };
                        let started = std::time::Instant::now();
                        let result = provider.send(&sms).await;
                        metrics.handoff(
                            match &result {
                                Ok(_) => "sent",
                                Err(SendError::Retryable(_)) => "retry",
                                Err(SendError::Throttled(_)) => "throttled",
                                Err(SendError::Unknown(_)) => "unknown",
                                Err(_) => "failed",
                            },
                            started.elapsed(),
                        );
                        // Kept with the next start: a task never has more than one call
                        // started and unrecorded.
                        finished = Some((i, result));
                    }
                    // Blocked since the claim, or no longer this claim's: try the next.
                    (Ok(false), Some(_)) => {}
                    // The last outcome is kept and nothing is left to start.
                    (Ok(_), None) => return,
                    // The write failed: nothing more goes.
                    (Err(_), _) => {
                        writer.halt();
                        return;
                    }
                }
            }
        });
    }
    // A panicked hand-off leaves its message `sending` with its call started: the sweep
    // marks it unknown. The others' results were kept as they came.
    while set.join_next().await.is_some() {}
    if writer.halted() {
        return Err(writer.failure());
    }
    if app.shutdown.is_set() {
        give_back(app, &batch.claimed, claimed_at).await?;
    }
    Ok(())
}

/// What a hand-off task asks of its writer: keep the outcome of its last call, if any,
/// and start its batch's next message, if any. The reply says whether that message may go.
struct Step {
    batch: Arc<Batch>,
    finished: Option<(usize, Outcome)>,
    next: Option<usize>,
    reply: tokio::sync::oneshot::Sender<bool>,
}

/// Writes a burst of steps: the outcomes that came back and the calls to start (when
/// `start`), in one store call. Returns each step's answer, in order.
async fn settle(app: &AppState, burst: &mut [Step], start: bool) -> Result<Vec<bool>> {
    let finished: Vec<(usize, usize, Outcome)> = burst
        .iter_mut()
        .enumerate()
        .filter_map(|(k, s)| s.finished.take().map(|(i, r)| (k, i, r)))
        .collect();
    let outcomes: Vec<(&Message, Outcome)> = finished
        .into_iter()
        .map(|(k, i, r)| (&burst[k].batch.claimed[i], r))
        .collect();
    let starts: Vec<CallStart<'_>> = if start {
        burst
            .iter()
            .filter_map(|s| {
                s.next.map(|i| CallStart {
                    message: &s.batch.claimed[i],
                    claimed_at: s.batch.claimed_at,
                })
            })
            .collect()
    } else {
        Vec::new()
    };
    let Outcomes {
        updates,
        retries,
        blocked,
    } = outcome_updates(app, outcomes);
    let now = app.clock.now();
    let go = app
        .store
        .record_and_start(&updates, &starts, now, &mut |m, snap| at_call(m, snap, now))
        .await?;
    after_outcomes(app, retries, blocked).await?;
    let mut go = go.into_iter();
    Ok(burst
        .iter()
        .map(|s| match s.next {
            Some(_) if start => go.next().unwrap_or(false),
            Some(_) => false,
            None => true,
        })
        .collect())
}

/// At shutdown: the claimed messages whose call never started go back to the queue now,
/// not after a minute's sweep (the ones started were all recorded before this).
async fn give_back(app: &AppState, claimed: &[Message], claimed_at: DateTime<Utc>) -> Result<()> {
    let keys: Vec<(&str, &str)> = claimed
        .iter()
        .map(|m| (m.tenant_id.as_str(), m.id.as_str()))
        .collect();
    let n = app
        .store
        .requeue_unstarted(&keys, claimed_at, app.clock.now())
        .await?;
    if n > 0 {
        tracing::info!(
            requeued = n,
            "shutting down: claimed messages not yet handed off are queued again"
        );
    }
    Ok(())
}

/// Lets the rest of a burst join its first before it is written: a lane's tasks are woken
/// together by one write's acks and their calls come back within a millisecond or so of
/// each other, but one by one; without this the first of each went alone, and every
/// write was two, one of them for a single message.
async fn gather() {
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
}

/// What a burst of provider outcomes comes to.
struct Outcomes<'a> {
    /// The messages' new states, written with the burst's starts.
    updates: Vec<(String, String, MessageUpdate)>,
    /// Nothing sent: to be tried again later, with whether it counts as an attempt.
    retries: Vec<(&'a Message, MessageReason, bool)>,
    /// Refused by the provider as an opted-out number.
    blocked: Vec<&'a Message>,
}

fn outcome_updates<'a>(app: &AppState, burst: Vec<(&'a Message, Outcome)>) -> Outcomes<'a> {
    let mut updates = Vec::with_capacity(burst.len());
    let mut blocked = Vec::new();
    let mut retries = Vec::new();
    let at = Some(app.clock.now());
    for (m, result) in burst {
        if let Err(e) = &result {
            tracing::warn!(message_id = %m.id, to = %m.to.masked(), error = %e, "hand-off failed");
        } else {
            app.metrics.sent.increment(1);
        }
        if matches!(result, Err(SendError::Blocked)) {
            blocked.push(m);
        }
        match &result {
            Err(SendError::Retryable(e)) => {
                let reason = MessageReason::Provider(format!("provider_unavailable: {e}"));
                retries.push((m, reason, true));
                continue;
            }
            Err(SendError::Throttled(e)) => {
                let reason = MessageReason::Provider(format!("provider_throttled: {e}"));
                retries.push((m, reason, false));
                continue;
            }
            _ => {}
        }
        updates.push((
            m.tenant_id.clone(),
            m.id.clone(),
            outcome_update(&result, at),
        ));
    }
    Outcomes {
        updates,
        retries,
        blocked,
    }
}

/// What follows a burst's outcomes: retries put back in the queue, and numbers the
/// provider said are blocked recorded as such.
async fn after_outcomes(
    app: &AppState,
    retries: Vec<(&Message, MessageReason, bool)>,
    blocked: Vec<&Message>,
) -> Result<()> {
    for (m, reason, counted) in retries {
        let id = &m.id;
        // Nothing was sent: try again later, then give up with the reason.
        let status = app
            .store
            .retry_later(
                &m.tenant_id,
                id,
                &reason,
                app.clock.now(),
                counted.then_some(MAX_ATTEMPTS),
                &backoff,
            )
            .await?;
        tracing::info!(message_id = %id, status = status.as_str(), "hand-off will be retried or has failed");
    }
    for m in blocked {
        provider_stop_list(app, m).await?;
    }
    Ok(())
}

const SEND_CONCURRENCY: usize = 32;
/// Batches in flight at once (see [`dispatch_pipelined`]).
const LANES: usize = 4;
/// Lanes whose hand-offs one [`Writer`] writes. A write costs PostgreSQL about a dozen
/// statements and a commit whatever its size, so bigger bursts cost less a message; but
/// one write at a time for the whole process held the calls waiting on it (bench dispatch:
/// 9,300-10,000 msg/s against 10,600-11,700 with a writer per lane). Two lanes a writer
/// kept the rate and took 15% less of the machine a message (README, "Dispatch").
const LANES_PER_WRITER: usize = 2;
/// The most provider calls one process has started and not yet recorded: after a crash,
/// at most this many of its messages are `unknown`.
pub const MAX_CALLS_IN_FLIGHT: usize = SEND_CONCURRENCY * LANES;
/// How long a lane whose claim came back empty waits before it claims again, while
/// another lane is still at work (see [`dispatch_pipelined`]).
const LANE_RETRY: std::time::Duration = std::time::Duration::from_millis(2);
/// Hand-offs tried before a message that the provider keeps refusing to take is `failed`.
pub const MAX_ATTEMPTS: u32 = 6;

/// Exponential backoff with jitter: about 2, 4, 8, 16, 32 seconds (capped at 5 minutes),
/// each plus up to a second at random so retries of a burst do not arrive together.
pub fn backoff(attempt: u32) -> chrono::Duration {
    let base = 1000i64 << attempt.min(8);
    let mut jitter = [0u8; 2];
    let _ = getrandom::fill(&mut jitter);
    chrono::Duration::milliseconds(base.min(300_000) + i64::from(u16::from_le_bytes(jitter) % 1000))
}

fn outcome_update(
    result: &std::result::Result<assent_provider::Accepted, SendError>,
    at: Option<chrono::DateTime<chrono::Utc>>,
) -> MessageUpdate {
    let failed = |status, reason: MessageReason| MessageUpdate {
        status: Some(status),
        reason: Some(reason),
        at,
        ..Default::default()
    };
    match result {
        Ok(a) => MessageUpdate {
            status: Some(MessageStatus::Sent),
            provider_id: Some(a.provider_id.clone()),
            at,
            ..Default::default()
        },
        Err(SendError::Blocked) => failed(MessageStatus::Failed, MessageReason::CarrierBlocked),
        Err(SendError::Refused { code, message }) => failed(
            MessageStatus::Failed,
            match code {
                Some(c) => MessageReason::provider_error(*c),
                None => MessageReason::Provider(format!("provider_refused: {message}")),
            },
        ),
        Err(SendError::Retryable(e)) => {
            let reason = format!("provider_unavailable: {e}");
            failed(MessageStatus::Failed, MessageReason::Provider(reason))
        }
        Err(SendError::Throttled(e)) => {
            let reason = format!("provider_throttled: {e}");
            failed(MessageStatus::Failed, MessageReason::Provider(reason))
        }
        Err(SendError::Unknown(e)) => failed(
            MessageStatus::Unknown,
            MessageReason::Provider(format!("handoff_outcome_unknown: {e}")),
        ),
    }
}

fn status_of(report: &StatusReport) -> Option<MessageStatus> {
    Some(match report.status.as_str() {
        "sent" | "queued" | "accepted" | "sending" => MessageStatus::Sent,
        "delivered" => MessageStatus::Delivered,
        "undelivered" => MessageStatus::Undelivered,
        "failed" => MessageStatus::Failed,
        _ => return None,
    })
}

/// Errors a carrier reports after the fact that change more than one message: 30034
/// (unregistered 10DLC traffic) stops the tenant's sends until the registration is fixed;
/// 21610 (the handset blocked the sender) opts that thread out.
async fn carrier_errors(app: &AppState, tenant_id: &str, report: &StatusReport) -> Result<()> {
    let Some(code @ (30034 | 21610)) = report.error_code else {
        return Ok(());
    };
    let Some(m) = app
        .store
        .message_by_provider_id(tenant_id, &report.provider_id)
        .await?
    else {
        return Ok(());
    };
    if code == 21610 {
        return provider_stop_list(app, &m).await;
    }
    let mut regs = app.store.registrations(&m.tenant_id).await?;
    let Some(mut texting) = regs.texting.take() else {
        return Ok(());
    };
    if texting.status != assent_core::gate::RegistrationStatus::Rejected {
        tracing::warn!(tenant = %m.tenant_id, "carrier reported 30034: texting registration set to rejected");
        texting.status = assent_core::gate::RegistrationStatus::Rejected;
        texting.reason = Some("carrier_30034".into());
        texting.updated_at = app.clock.now();
        app.store.save_registration(&m.tenant_id, &texting).await?;
    }
    Ok(())
}

/// Applies a delivery report (from the status webhook or the simulator).
pub async fn apply_status(app: &AppState, report: &StatusReport) -> Result<bool> {
    apply_statuses(app, std::slice::from_ref(report))
        .await
        .map(|n| n > 0)
}

/// Applies delivery reports in one transaction; returns how many matched a message.
pub async fn apply_statuses(app: &AppState, reports: &[StatusReport]) -> Result<usize> {
    // A burst often holds `sent` and `delivered` for one message: keep only the furthest.
    let mut furthest: Vec<(&StatusReport, MessageStatus)> = Vec::with_capacity(reports.len());
    for report in reports {
        let Some(status) = status_of(report) else {
            continue;
        };
        match furthest
            .iter_mut()
            .find(|(r, _)| r.provider_id == report.provider_id && r.from == report.from)
        {
            Some(slot) if slot.1.rank() < status.rank() => *slot = (report, status),
            Some(_) => {}
            None => furthest.push((report, status)),
        }
    }
    let mut updates = Vec::with_capacity(furthest.len());
    // The tenant of each sender, looked up once per burst.
    let mut tenants: HashMap<String, Option<String>> = HashMap::new();
    // (provider id, sender) of each report matched to a (tenant, message), and of each not.
    let mut found: Vec<Matched> = Vec::with_capacity(furthest.len());
    let mut unknown: Vec<(&str, &str)> = Vec::new();
    for (report, status) in furthest {
        let from = report.from.as_str();
        let tenant_id = match tenants.get(from) {
            Some(t) => t.clone(),
            None => {
                let t = app
                    .store
                    .tenant_by_sender(&report.from)
                    .await?
                    .map(|t| t.id);
                tenants.insert(from.to_string(), t.clone());
                t
            }
        };
        let Some(tenant_id) = tenant_id else {
            tracing::info!(from = %report.from.masked(), "status report from a number that is no tenant's sender ignored");
            continue;
        };
        carrier_errors(app, &tenant_id, report).await?;
        let Some(m) = app
            .store
            .message_by_provider_id(&tenant_id, &report.provider_id)
            .await?
        else {
            unknown.push((&report.provider_id, from));
            continue;
        };
        found.push(Matched {
            provider_id: report.provider_id.clone(),
            from: from.to_string(),
            tenant_id: m.tenant_id.clone(),
            message_id: m.id.clone(),
        });
        updates.push((
            m.tenant_id,
            m.id,
            MessageUpdate {
                status: Some(status),
                reason: report
                    .error_code
                    .map(|c| MessageReason::Provider(format!("carrier_error_{c}"))),
                at: Some(app.clock.now()),
                ..Default::default()
            },
        ));
    }
    app.store.update_messages(&updates).await?;
    record_history(app, reports, found, &unknown).await?;
    Ok(updates.len())
}

/// A status report matched to its tenant's message.
struct Matched {
    provider_id: String,
    from: String,
    tenant_id: String,
    message_id: String,
}

/// Keeps every report as received (the message keeps only the furthest status): the
/// proof of consent shows a message's whole callback history.
async fn record_history(
    app: &AppState,
    reports: &[StatusReport],
    mut found: Vec<Matched>,
    unknown: &[(&str, &str)],
) -> Result<()> {
    let now = app.clock.now();
    let mut events = Vec::with_capacity(reports.len());
    for r in reports {
        let (pid, from) = (r.provider_id.as_str(), r.from.as_str());
        if unknown.contains(&(pid, from)) {
            continue;
        }
        let known = found
            .iter()
            .find(|k| k.provider_id == pid && k.from == from)
            .map(|k| (k.tenant_id.clone(), k.message_id.clone()));
        let (tenant_id, message_id) = match known {
            Some(k) => k,
            // A word Assent does not map (so not among the furthest): its message still
            // gets the callback in its history.
            None => {
                let Some(t) = app.store.tenant_by_sender(&r.from).await? else {
                    continue;
                };
                match app.store.message_by_provider_id(&t.id, pid).await? {
                    Some(m) => {
                        found.push(Matched {
                            provider_id: pid.to_string(),
                            from: from.to_string(),
                            tenant_id: m.tenant_id.clone(),
                            message_id: m.id.clone(),
                        });
                        (m.tenant_id, m.id)
                    }
                    None => continue,
                }
            }
        };
        events.push(StatusEvent {
            tenant_id,
            message_id,
            provider_id: r.provider_id.clone(),
            status: r.status.clone(),
            error_code: r.error_code.map(i64::from),
            received_at: now,
        });
    }
    app.store.record_status_events(&events).await
}

/// Several batches in flight, each claimed as soon as the one before it on its lane is
/// written back: while some wait on the provider, others are claimed and re-gated (claims
/// never overlap: each takes the one writer and marks its messages `sending`). Returns when
/// nothing is due, with how many messages were handed off.
///
/// An empty claim ends its lane only when no other lane is handing a batch off. On
/// PostgreSQL a claim leaves the rows of a sender whose pace another claim holds (it never
/// waits on that lock), so with one sending number a claim that meets another comes back
/// empty while plenty is due: that lane tries again after [`LANE_RETRY`] rather than
/// leaving the other lanes' work to one.
pub async fn dispatch_pipelined(app: &AppState, batch: u32) -> Result<usize> {
    let busy = Arc::new(AtomicUsize::new(0));
    // Once a lane fails the others finish the batch they hold and claim no more.
    let failing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (writers, written): (Vec<Writer>, Vec<_>) = (0..LANES.div_ceil(LANES_PER_WRITER))
        .map(|_| Writer::start(app))
        .unzip();
    let mut set = tokio::task::JoinSet::new();
    for lane in 0..LANES {
        let (app, busy, failing) = (app.clone(), busy.clone(), failing.clone());
        let writer = writers[lane / LANES_PER_WRITER].clone();
        set.spawn(async move {
            let mut total = 0;
            loop {
                if app.shutdown.is_set() || failing.load(Ordering::SeqCst) {
                    return Ok(total);
                }
                busy.fetch_add(1, Ordering::SeqCst);
                let claimed = claim_and_hand_off(&app, batch, &writer).await;
                let others = busy.fetch_sub(1, Ordering::SeqCst) - 1;
                if claimed.is_err() {
                    failing.store(true, Ordering::SeqCst);
                }
                match claimed? {
                    0 if others == 0 => return Ok::<usize, StoreError>(total),
                    0 => tokio::time::sleep(LANE_RETRY).await,
                    n => total += n,
                }
            }
        });
    }
    let mut total = 0;
    let mut failed = None;
    while let Some(done) = set.join_next().await {
        match done.map_err(|e| StoreError::Database(format!("dispatch lane: {e}"))) {
            Ok(Ok(n)) => total += n,
            // A lane that panicked stops the others' claims too.
            Ok(Err(e)) | Err(e) => {
                failing.store(true, Ordering::SeqCst);
                failed.get_or_insert(e);
            }
        }
    }
    // Every lane has ended: the last clones go, and the writers' tasks with them.
    drop(writers);
    for task in written {
        let _ = task.await;
    }
    failed.map_or(Ok(total), Err)
}

/// Sends everything due now, then applies the simulator's reports: what tests call instead
/// of waiting for the background worker.
pub async fn drain(app: &AppState) -> Result<usize> {
    let mut total = 0;
    loop {
        let n = dispatch_once(app, 100).await?;
        total += n;
        apply_pending_reports(app).await?;
        if n == 0 {
            return Ok(total);
        }
    }
}

pub async fn apply_pending_reports(app: &AppState) -> Result<()> {
    let Some(rx) = &app.reports else {
        return Ok(());
    };
    let mut pending = Vec::new();
    if let Ok(mut rx) = rx.try_lock() {
        while let Ok(r) = rx.try_recv() {
            pending.push(r);
        }
    }
    apply_statuses(app, &pending).await?;
    Ok(())
}

/// How long a claimed message may wait for its call to start before a sweep, taking its
/// claimer for dead, queues it again.
const UNSTARTED_CLAIM_LIFETIME: chrono::Duration = chrono::Duration::seconds(60);
/// How long after its call started a message still `sending` is taken for one whose
/// process died (the Twilio client gives up after 15 s, and the outcome is written at once).
const STARTED_CALL_LIFETIME: chrono::Duration = chrono::Duration::seconds(60);

async fn recover(app: &AppState, claimed_before: DateTime<Utc>, started_before: DateTime<Utc>) {
    match app
        .store
        .recover_orphaned_sends(claimed_before, started_before, app.clock.now())
        .await
    {
        Ok((0, 0)) => {}
        Ok((requeued, unknown)) => tracing::warn!(
            requeued,
            unknown,
            "hand-offs interrupted by a crash: those never started queued again, those started marked unknown"
        ),
        Err(e) => tracing::error!(error = %e, "could not check interrupted hand-offs"),
    }
}

/// The background worker: dispatches whenever woken or every 250 ms.
pub async fn run(app: AppState) {
    if app.store.single_process() {
        // Nobody else can be handing these off: whatever is `sending` now was interrupted.
        let after = app.clock.now() + chrono::Duration::seconds(1);
        recover(&app, after, after).await;
    }
    // Campaign steps are queued within a second or two of falling due, on their own task:
    // a large fan-out takes seconds, and its first pages are sent while it goes on.
    let runner = app.clone();
    let campaigns = tokio::spawn(async move {
        let mut campaigns = crate::campaigns::Runner::default();
        while !runner.shutdown.is_set() {
            if let Err(e) = campaigns.tick(&runner).await {
                tracing::error!(error = %e, "campaign runner failed");
            }
            tokio::select! {
                _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                _ = runner.shutdown.wait() => {}
            }
        }
    });
    let mut last_sweep = None;
    while !app.shutdown.is_set() {
        // A process that died mid-hand-off left messages `sending`: those it never
        // started go back to the queue once older than a claim takes to start (a live
        // claimer that is merely slow then finds them gone and skips them); those it
        // started are `unknown` once older than any provider call could take.
        let now = app.clock.now();
        if last_sweep.is_none_or(|t| now - t > chrono::Duration::seconds(10)) {
            last_sweep = Some(now);
            recover(
                &app,
                now - UNSTARTED_CLAIM_LIFETIME,
                now - STARTED_CALL_LIFETIME,
            )
            .await;
            // The opt-in form's hits outlive no window (the longest is a day).
            if let Err(e) = app.store.forget_hits(now - chrono::Duration::days(2)).await {
                tracing::error!(error = %e, "could not forget old form hits");
            }
        }
        match dispatch_pipelined(&app, 200).await {
            Ok(n) if n > 0 => {
                let _ = apply_pending_reports(&app).await;
                continue;
            }
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "dispatch failed"),
        }
        let _ = apply_pending_reports(&app).await;
        tokio::select! {
            _ = app.wake.notified() => {
                // Let a burst of replies gather so one claim and one write cover them all.
                tokio::time::sleep(std::time::Duration::from_millis(5)).await;
            }
            _ = tokio::time::sleep(std::time::Duration::from_millis(250)) => {}
            _ = app.shutdown.wait() => {}
        }
    }
    // The hand-offs under way were finished above (dispatch returns only once its claims
    // are written back); a campaign step in progress gets a few seconds to commit, and
    // anything it did not write is queued by the runner on the next start.
    if tokio::time::timeout(std::time::Duration::from_secs(10), campaigns)
        .await
        .is_err()
    {
        tracing::warn!("campaign runner still busy at shutdown; it resumes on the next start");
    }
    let _ = apply_pending_reports(&app).await;
    tracing::info!("send worker stopped");
}
