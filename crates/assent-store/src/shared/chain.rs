//! The ledger chain's SQL, the same for both backends: the head a new entry follows, and
//! the stored chain read back a page at a time (for `assent ledger verify`, the backfill
//! of entries written before the chain and the proof bundle). The hashing itself is
//! [`crate::decide::chain`].

use assent_core::phone::E164;

use crate::codec::time;
use crate::decide::chain::{GENESIS, StoredLink};
use crate::{Actor, Evidence, NewLedgerEntry};

/// Takes the tenant's head row (created at chain seq 0 the first time) and returns its
/// (seq, hash). The `DO UPDATE` makes the statement lock the row on PostgreSQL until the
/// transaction ends, so concurrent writers of one tenant chain one after the other.
pub const HEAD_TAKE_SQL: &str = "INSERT INTO ledger_heads (tenant_id, seq, hash) VALUES ($1, 0, $2) \
     ON CONFLICT (tenant_id) DO UPDATE SET seq = ledger_heads.seq RETURNING seq, hash";

/// Moves the tenant's head to (seq, hash).
pub const HEAD_SET_SQL: &str = "UPDATE ledger_heads SET seq = $2, hash = $3 WHERE tenant_id = $1";

/// The tenant's head, read without a lock.
pub const HEAD_SQL: &str = "SELECT seq, hash FROM ledger_heads WHERE tenant_id = $1";

/// A page of a tenant's chained entries in chain order, after chain seq `$2`.
pub const PAGE_SQL: &str = "SELECT seq, tenant_id, chain_seq, hash, phone, channel, old_state, new_state, source, \
     actor, occurred_at, message_sid, body, rule, ip, user_agent, page, disclosure, request_id \
     FROM consent_ledger WHERE tenant_id = $1 AND chain_seq > $2 ORDER BY chain_seq LIMIT $3";

/// The first entry of a tenant that has no place in the chain (written before the chain
/// and not yet backfilled, or its chain seq removed), from the index of such entries. The
/// order is by `+seq`: ordered by plain `seq`, SQLite (3.51, no statistics) walked the
/// tenant's whole ledger in rowid order instead, and this runs on every proof.
pub const UNCHAINED_SQL: &str = "SELECT seq FROM consent_ledger WHERE tenant_id = $1 AND (chain_seq IS NULL OR hash IS NULL) \
     ORDER BY +seq LIMIT 1";

/// Tenants with entries written before the chain.
pub const BACKFILL_TENANTS_SQL: &str =
    "SELECT DISTINCT tenant_id FROM consent_ledger WHERE chain_seq IS NULL ORDER BY tenant_id";

/// A page of a tenant's entries written before the chain, in `seq` order, after seq `$2`.
pub const BACKFILL_PAGE_SQL: &str = "SELECT seq, tenant_id, chain_seq, hash, phone, channel, old_state, new_state, source, \
     actor, occurred_at, message_sid, body, rule, ip, user_agent, page, disclosure, request_id \
     FROM consent_ledger WHERE tenant_id = $1 AND chain_seq IS NULL AND seq > $2 ORDER BY seq LIMIT $3";

/// Gives one entry its place: (`$1` chain seq, `$2` hash) for row seq `$3`.
pub const BACKFILL_SET_SQL: &str =
    "UPDATE consent_ledger SET chain_seq = $1, hash = $2 WHERE seq = $3 AND tenant_id = $4";

/// How many entries one backfill or verify read takes.
pub const PAGE_SIZE: i64 = 1000;

/// A `consent_ledger` row with its place in the chain, every column read as stored text, so
/// that a value Assent would never write still reads (and fails to verify) rather than
/// failing the read.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ChainRow {
    pub seq: i64,
    pub tenant_id: String,
    pub chain_seq: Option<i64>,
    pub hash: Option<String>,
    pub phone: String,
    pub channel: String,
    pub old_state: String,
    pub new_state: String,
    pub source: String,
    pub actor: String,
    pub occurred_at: i64,
    pub message_sid: Option<String>,
    pub body: Option<String>,
    pub rule: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub page: Option<String>,
    pub disclosure: Option<String>,
    pub request_id: Option<String>,
}

impl ChainRow {
    /// The entry as Assent wrote it, or `None` when a column does not decode.
    pub fn entry(&self) -> Option<NewLedgerEntry> {
        Some(NewLedgerEntry {
            phone: E164::parse(&self.phone).ok()?,
            channel: self.channel.parse().ok()?,
            old_state: self.old_state.parse().ok()?,
            new_state: self.new_state.parse().ok()?,
            source: self.source.parse().ok()?,
            actor: Actor::from_text(&self.actor),
            occurred_at: time(self.occurred_at),
            evidence: Evidence {
                message_sid: self.message_sid.clone(),
                text: self.body.clone(),
                rule: self.rule.clone(),
                ip: self.ip.clone(),
                user_agent: self.user_agent.clone(),
                page: self.page.clone(),
                disclosure: self.disclosure.clone(),
                request: self.request_id.clone(),
            },
        })
        // A phone stored in another form than E.164 would re-encode differently.
        .filter(|e| e.phone.as_str() == self.phone)
    }

    pub fn link(&self) -> StoredLink {
        StoredLink {
            row: self.seq,
            chain_seq: self.chain_seq,
            hash: self.hash.clone(),
            entry: self.entry(),
        }
    }
}

/// The head of a tenant that has no entries yet.
pub fn empty_head() -> (i64, String) {
    (0, GENESIS.to_string())
}

/// What checking one tenant's chain found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainCheck {
    /// Entries that verified, from the first.
    pub verified: i64,
    /// The hash of the last entry that verified ([`GENESIS`] before any).
    pub head: String,
    /// The first entry that does not hold, if any.
    pub broken: Option<BrokenEntry>,
}

impl ChainCheck {
    pub fn holds(&self) -> bool {
        self.broken.is_none()
    }
}

/// The first entry of a chain that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenEntry {
    /// The row's storage id (`seq` in `consent_ledger`), when there is a row to name (a
    /// chain cut short at its end has none).
    pub row: Option<i64>,
    /// Its place in the chain (the place that was expected).
    pub chain_seq: i64,
    pub why: String,
}

impl std::fmt::Display for BrokenEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.row {
            Some(row) => write!(
                f,
                "ledger entry seq {row} (chain position {}): {}",
                self.chain_seq, self.why
            ),
            None => write!(f, "chain position {}: {}", self.chain_seq, self.why),
        }
    }
}

/// Recomputes a tenant's chain a page ([`PAGE_SIZE`] entries) at a time, so memory stays
/// bounded whatever the ledger's size, and compares its end with the stored head.
pub async fn verify(store: &dyn crate::ChainStore, tenant_id: &str) -> crate::Result<ChainCheck> {
    use crate::decide::chain::Verifier;
    let mut v = Verifier::new(tenant_id);
    let mut after = 0;
    loop {
        let rows = store.ledger_chain_page(tenant_id, after, PAGE_SIZE).await?;
        let Some(last) = rows.last() else { break };
        after = last.chain_seq.unwrap_or(after);
        for r in &rows {
            if let Err(why) = v.check(&r.link()) {
                return Ok(ChainCheck {
                    verified: v.head().0,
                    head: v.head().1.to_string(),
                    broken: Some(BrokenEntry {
                        row: Some(r.seq),
                        chain_seq: v.head().0 + 1,
                        why: why.to_string(),
                    }),
                });
            }
        }
    }
    let (seq, hash) = (v.head().0, v.head().1.to_string());
    finish(store, tenant_id, seq, hash).await
}

/// A chain checked to entry `seq` (hash `hash`) without a break: does the tenant have no
/// unchained entry, and does its stored head agree?
async fn finish(
    store: &dyn crate::ChainStore,
    tenant_id: &str,
    seq: i64,
    hash: String,
) -> crate::Result<ChainCheck> {
    let broken = if let Some(row) = store.ledger_unchained(tenant_id).await? {
        Some(BrokenEntry {
            row: Some(row),
            chain_seq: seq + 1,
            why: "it has no place in the chain (no chain seq or hash)".into(),
        })
    } else {
        head_disagrees(store.ledger_head(tenant_id).await?.as_ref(), seq, &hash)
    };
    Ok(ChainCheck {
        verified: seq,
        head: hash,
        broken,
    })
}

/// Why the stored head `head` does not end a chain checked to entry `seq` (hash `hash`).
fn head_disagrees(head: Option<&(i64, String)>, seq: i64, hash: &str) -> Option<BrokenEntry> {
    match head {
        Some((head_seq, head_hash)) if (*head_seq, head_hash.as_str()) != (seq, hash) => {
            Some(BrokenEntry {
                row: None,
                chain_seq: seq + 1,
                why: format!(
                    "the stored head is entry {head_seq} with hash {head_hash}, but the chain ends at entry {seq} with hash {hash} (entries removed from its end?)"
                ),
            })
        }
        None if seq > 0 => Some(BrokenEntry {
            row: None,
            chain_seq: seq + 1,
            why: "the tenant has entries but no stored head".into(),
        }),
        _ => None,
    }
}

/// Every how many entries a [`Verified`] keeps the hash it computed.
pub const MARK: i64 = 1000;

/// What this process has verified of one tenant's chain by recomputing it: the last entry
/// reached and its hash, the hash it computed at every [`MARK`]th entry, and for each
/// stretch of [`MARK`] entries a Bloom filter of the phones it held. Kept in the server's
/// memory, out of reach of whoever can write to the database: an entry edited, moved to
/// another phone or deleted after it was verified no longer recomputes to the marks, even
/// with every stored hash rewritten to match, and the filters say which stretches a phone
/// had entries in (about 2 KB a stretch).
#[derive(Debug, Clone)]
pub struct Verified {
    seq: i64,
    hash: String,
    /// `marks[i]`: the hash of entry `i * MARK` (`marks[0]` the genesis).
    marks: Vec<String>,
    /// `phones[i]`: the phones of entries `i * MARK + 1 ..= (i + 1) * MARK`.
    phones: Vec<Bloom>,
}

impl Default for Verified {
    fn default() -> Self {
        Verified {
            seq: 0,
            hash: GENESIS.to_string(),
            marks: vec![GENESIS.to_string()],
            phones: Vec::new(),
        }
    }
}

impl Verified {
    /// The last entry verified.
    pub fn seq(&self) -> i64 {
        self.seq
    }

    /// The stretch holding entry `k` (at most `seq`), from a mark to the next mark or to
    /// `seq`, with the hashes this process computed at both ends.
    fn stretch(&self, k: i64) -> (i64, &str, i64, &str) {
        let i = (k - 1) / MARK;
        let from = i * MARK;
        let to = ((i + 1) * MARK).min(self.seq);
        let at = |n: i64| -> &str {
            if n == self.seq {
                &self.hash
            } else {
                &self.marks[(n / MARK) as usize]
            }
        };
        (from, at(from), to, at(to))
    }
}

/// A Bloom filter of 16,384 bits with 8 probes: about 0.05% false positives at 1,000
/// phones, each of which costs one stretch read again.
#[derive(Debug, Clone)]
struct Bloom(Box<[u64; 256]>);

impl Bloom {
    fn new() -> Self {
        Bloom(Box::new([0; 256]))
    }

    fn probes(phone: &str) -> impl Iterator<Item = usize> {
        use std::hash::{Hash, Hasher};
        // A fixed key: the filters never leave this process.
        let mut h = std::hash::DefaultHasher::new();
        phone.hash(&mut h);
        let x = h.finish();
        let (a, b) = (x & 0xffff_ffff, (x >> 32) | 1);
        (0..8u64).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % 16_384) as usize)
    }

    fn add(&mut self, phone: &str) {
        for p in Self::probes(phone) {
            self.0[p / 64] |= 1 << (p % 64);
        }
    }

    fn may_hold(&self, phone: &str) -> bool {
        Self::probes(phone).all(|p| self.0[p / 64] & (1 << (p % 64)) != 0)
    }
}

/// Checks a tenant's chain as [`verify`] does, reading only what `v` has not verified yet
/// and, again, each stretch of [`MARK`] entries that holds one of `again` (chain seqs; a
/// proof's entries) or held an entry of `phone` when it was verified. The first call for a
/// tenant reads the whole chain; later ones the entries added since and those stretches.
/// The check ends at the head read first, so an entry appended meanwhile is not taken for
/// one past the head. `v` moves on only when everything held.
pub async fn verify_since(
    store: &dyn crate::ChainStore,
    tenant_id: &str,
    v: &mut Verified,
    phone: Option<&str>,
    again: &[i64],
) -> crate::Result<ChainCheck> {
    use crate::decide::chain::Verifier;
    let head = store.ledger_head(tenant_id).await?;
    let end = head.as_ref().map_or(0, |h| h.0);

    let mut stretches = std::collections::BTreeSet::new();
    for &k in again.iter().filter(|&&k| k >= 1 && k <= v.seq) {
        stretches.insert((k - 1) / MARK);
    }
    if let Some(phone) = phone {
        for (i, f) in v.phones.iter().enumerate() {
            if f.may_hold(phone) {
                stretches.insert(i as i64);
            }
        }
    }
    for i in stretches {
        let (from, trusted_from, to, trusted_to) = v.stretch(i * MARK + 1);
        let mut check = Verifier::resume(tenant_id, from, trusted_from);
        for r in store.ledger_chain_page(tenant_id, from, to - from).await? {
            if let Err(why) = check.check(&r.link()) {
                return Ok(broken_at(&check, Some(r.seq), why.to_string()));
            }
        }
        if check.head() != (to, trusted_to) {
            return Ok(broken_at(
                &check,
                None,
                format!(
                    "entries {} to {to} no longer hash to what this server verified (entries removed, or edited with their hashes rewritten)",
                    from + 1
                ),
            ));
        }
    }

    // What was added since, up to the head.
    let mut check = Verifier::resume(tenant_id, v.seq, &v.hash);
    let mut marks = Vec::new();
    while check.head().0 < end {
        let at = check.head().0;
        let rows = store
            .ledger_chain_page(tenant_id, at, PAGE_SIZE.min(end - at))
            .await?;
        if rows.is_empty() {
            break;
        }
        for r in &rows {
            if let Err(why) = check.check(&r.link()) {
                return Ok(broken_at(&check, Some(r.seq), why.to_string()));
            }
            let (k, hash) = check.head();
            let i = ((k - 1) / MARK) as usize;
            if v.phones.len() <= i {
                v.phones.resize_with(i + 1, Bloom::new);
            }
            // Before the whole check holds: a filter that says too much costs a read.
            v.phones[i].add(&r.phone);
            if k % MARK == 0 {
                marks.push(hash.to_string());
            }
        }
    }
    let (seq, hash) = (check.head().0, check.head().1.to_string());
    let broken = if let Some(row) = store.ledger_unchained(tenant_id).await? {
        Some(BrokenEntry {
            row: Some(row),
            chain_seq: seq + 1,
            why: "it has no place in the chain (no chain seq or hash)".into(),
        })
    } else if let Some(past) = store
        .ledger_chain_page(tenant_id, end, 1)
        .await?
        .first()
        .filter(|r| r.chain_seq.is_some())
        .cloned()
    {
        // An entry past the head read first: appended since (its head came with it), or
        // the stored head was moved back.
        let now = store.ledger_head(tenant_id).await?;
        (now.is_none_or(|h| Some(h.0) < past.chain_seq)).then(|| BrokenEntry {
            row: Some(past.seq),
            chain_seq: end + 1,
            why: format!("it is past the stored head (entry {end})"),
        })
    } else {
        None
    };
    let broken = broken.or_else(|| head_disagrees(head.as_ref(), seq, &hash));
    if broken.is_none() {
        v.marks.extend(marks);
        v.seq = seq;
        v.hash = hash.clone();
    }
    Ok(ChainCheck {
        verified: seq,
        head: hash,
        broken,
    })
}

fn broken_at(check: &crate::decide::chain::Verifier, row: Option<i64>, why: String) -> ChainCheck {
    ChainCheck {
        verified: check.head().0,
        head: check.head().1.to_string(),
        broken: Some(BrokenEntry {
            row,
            chain_seq: check.head().0 + 1,
            why,
        }),
    }
}

/// [`crate::ChainStore`] for a backend's store: `shared_chain_impl!(crate::PostgresStore,
/// pool)`, `pool` being its pool for reads. A backend that reads the chain's pages its own
/// way names the function that does: `shared_chain_impl!(crate::SqliteStore, reader,
/// page = crate::chain_page)`, an `async fn(&Store, tenant_id, after, limit)`.
#[macro_export]
macro_rules! shared_chain_impl {
    ($store:ty, $read:ident) => {
        $crate::shared_chain_impl!(@impl $store, $read, (this, tenant_id, after, limit) {
            Ok($crate::__sqlx::query_as($crate::shared::chain::PAGE_SQL)
                .bind(tenant_id)
                .bind(after)
                .bind(limit)
                .fetch_all(&this.$read)
                .await?)
        });
    };
    ($store:ty, $read:ident, page = $page:path) => {
        $crate::shared_chain_impl!(@impl $store, $read, (this, tenant_id, after, limit) {
            $page(this, tenant_id, after, limit).await
        });
    };
    (@impl $store:ty, $read:ident, ($this:ident, $t:ident, $after:ident, $limit:ident) $page:block) => {
        #[async_trait::async_trait]
        impl $crate::ChainStore for $store {
            async fn ledger_head(&self, tenant_id: &str) -> $crate::Result<Option<(i64, String)>> {
                Ok($crate::__sqlx::query_as($crate::shared::chain::HEAD_SQL)
                    .bind(tenant_id)
                    .fetch_optional(&self.$read)
                    .await?)
            }

            async fn ledger_chain_page(
                &self,
                $t: &str,
                $after: i64,
                $limit: i64,
            ) -> $crate::Result<Vec<$crate::shared::chain::ChainRow>> {
                let $this = self;
                $page
            }

            async fn ledger_unchained(&self, tenant_id: &str) -> $crate::Result<Option<i64>> {
                Ok(
                    $crate::__sqlx::query_scalar($crate::shared::chain::UNCHAINED_SQL)
                        .bind(tenant_id)
                        .fetch_optional(&self.$read)
                        .await?,
                )
            }
        }
    };
}
