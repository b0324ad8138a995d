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
/// and not yet backfilled, or its chain seq removed).
pub const UNCHAINED_SQL: &str = "SELECT seq FROM consent_ledger WHERE tenant_id = $1 AND (chain_seq IS NULL OR hash IS NULL) \
     ORDER BY seq LIMIT 1";

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
    let broken = if let Some(row) = store.ledger_unchained(tenant_id).await? {
        Some(BrokenEntry {
            row: Some(row),
            chain_seq: seq + 1,
            why: "it has no place in the chain (no chain seq or hash)".into(),
        })
    } else {
        match store.ledger_head(tenant_id).await? {
            Some((head_seq, head_hash)) if (head_seq, head_hash.as_str()) != (seq, &hash) => {
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
    };
    Ok(ChainCheck {
        verified: seq,
        head: hash,
        broken,
    })
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
