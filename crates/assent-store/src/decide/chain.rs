//! The ledger's hash chain: each tenant's entries are numbered 1, 2, 3, … (`chain_seq`) and
//! each carries `hash` = SHA-256(previous entry's hash ‖ canonical encoding of the entry).
//! The first entry's previous hash is 32 zero bytes. Backends only store what these
//! functions return; `assent ledger verify` recomputes them from what is stored.
//!
//! The canonical encoding (version 1) is the ASCII tag `assent-ledger-v1`, then these
//! fields in this order, each as one byte `0x00` when absent, or `0x01`, its UTF-8 length as
//! a 4-byte big-endian integer and its UTF-8 bytes when present:
//!
//! tenant id, chain seq (decimal), phone (E.164), channel, old state, new state, source,
//! actor, occurred at (milliseconds since 1970-01-01 UTC, decimal), message sid, body,
//! rule, ip, user agent, page, disclosure, request id.
//!
//! Every value is the text stored in the row's column of the same name, so the encoding
//! can be recomputed from the database alone (docs/PROOF.md).

use sha2::{Digest, Sha256};

use crate::NewLedgerEntry;
use crate::codec::ms;

/// The tag that starts every encoding; a new encoding gets a new tag.
pub const ENCODING_TAG: &[u8] = b"assent-ledger-v1";

/// The "previous hash" of a tenant's first entry: 32 zero bytes, in hex.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The canonical bytes of one entry of `tenant_id` at position `chain_seq` of its chain.
pub fn encode(tenant_id: &str, chain_seq: i64, e: &NewLedgerEntry) -> Vec<u8> {
    let seq = chain_seq.to_string();
    let at = ms(e.occurred_at).to_string();
    let actor = e.actor.to_string();
    let ev = &e.evidence;
    let fields: [Option<&str>; 17] = [
        Some(tenant_id),
        Some(&seq),
        Some(e.phone.as_str()),
        Some(e.channel.as_str()),
        Some(e.old_state.as_str()),
        Some(e.new_state.as_str()),
        Some(e.source.as_str()),
        Some(&actor),
        Some(&at),
        ev.message_sid.as_deref(),
        ev.text.as_deref(),
        ev.rule.as_deref(),
        ev.ip.as_deref(),
        ev.user_agent.as_deref(),
        ev.page.as_deref(),
        ev.disclosure.as_deref(),
        ev.request.as_deref(),
    ];
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(ENCODING_TAG);
    for f in fields {
        match f {
            None => out.push(0),
            Some(s) => {
                out.push(1);
                out.extend_from_slice(&(s.len() as u32).to_be_bytes());
                out.extend_from_slice(s.as_bytes());
            }
        }
    }
    out
}

/// The entry's hash, in lowercase hex, given the previous entry's (hex; [`GENESIS`] for the
/// first). A previous hash that is not 64 hex digits is hashed as its text, so a damaged
/// one still yields a (wrong) hash rather than an error.
pub fn hash(prev: &str, tenant_id: &str, chain_seq: i64, e: &NewLedgerEntry) -> String {
    let mut h = Sha256::new();
    match from_hex(prev) {
        Some(bytes) => h.update(bytes),
        None => h.update(prev.as_bytes()),
    }
    h.update(encode(tenant_id, chain_seq, e));
    to_hex(h.finalize().as_slice())
}

/// Chains `entries` after a head at (`seq`, `hash`): each entry's (chain seq, hash), in order.
pub fn extend(
    head: (i64, &str),
    tenant_id: &str,
    entries: &[NewLedgerEntry],
) -> Vec<(i64, String)> {
    let (mut seq, mut prev) = (head.0, head.1.to_string());
    entries
        .iter()
        .map(|e| {
            seq += 1;
            prev = hash(&prev, tenant_id, seq, e);
            (seq, prev.clone())
        })
        .collect()
}

/// A stored entry as the verifier reads it.
#[derive(Debug, Clone)]
pub struct StoredLink {
    /// The row's storage id (`seq`), to name it.
    pub row: i64,
    pub chain_seq: Option<i64>,
    pub hash: Option<String>,
    /// `None` when a column no longer decodes (someone wrote a value Assent never would).
    pub entry: Option<NewLedgerEntry>,
}

/// Why a chain does not hold at an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Break {
    /// Its chain seq is missing or not the next number (an entry removed or inserted).
    Sequence { expected: i64, found: Option<i64> },
    /// Its stored hash is not the hash of its fields and the previous hash.
    Hash {
        expected: String,
        found: Option<String>,
    },
    /// A column does not decode.
    Unreadable,
}

impl std::fmt::Display for Break {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Break::Sequence { expected, found } => match found {
                Some(n) => write!(f, "chain seq {n} where {expected} was expected"),
                None => write!(f, "no chain seq where {expected} was expected"),
            },
            Break::Hash { expected, found } => write!(
                f,
                "stored hash {} but its fields hash to {expected}",
                found.as_deref().unwrap_or("(none)")
            ),
            Break::Unreadable => write!(f, "a column does not decode"),
        }
    }
}

/// Checks a tenant's chain a page at a time: feed it the stored entries in chain order,
/// then compare its head with the stored head.
#[derive(Debug, Clone)]
pub struct Verifier {
    tenant_id: String,
    seq: i64,
    prev: String,
}

impl Verifier {
    pub fn new(tenant_id: &str) -> Self {
        Verifier {
            tenant_id: tenant_id.to_string(),
            seq: 0,
            prev: GENESIS.to_string(),
        }
    }

    /// Goes on from entry `seq` whose hash is `prev`, as known from an earlier check.
    pub fn resume(tenant_id: &str, seq: i64, prev: &str) -> Self {
        Verifier {
            tenant_id: tenant_id.to_string(),
            seq,
            prev: prev.to_string(),
        }
    }

    /// Checks the next entry; on a break, names why (and the verifier stops being useful).
    pub fn check(&mut self, link: &StoredLink) -> Result<(), Break> {
        let expected = self.seq + 1;
        if link.chain_seq != Some(expected) {
            return Err(Break::Sequence {
                expected,
                found: link.chain_seq,
            });
        }
        let Some(entry) = &link.entry else {
            return Err(Break::Unreadable);
        };
        let want = hash(&self.prev, &self.tenant_id, expected, entry);
        if link.hash.as_deref() != Some(want.as_str()) {
            return Err(Break::Hash {
                expected: want,
                found: link.hash.clone(),
            });
        }
        self.seq = expected;
        self.prev = want;
        Ok(())
    }

    /// The chain seq and hash of the last entry checked (0 and [`GENESIS`] before any).
    pub fn head(&self) -> (i64, &str) {
        (self.seq, &self.prev)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

fn from_hex(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks(2).enumerate() {
        let d = |c: u8| (c as char).to_digit(16);
        out[i] = (d(pair[0])? * 16 + d(pair[1])?) as u8;
    }
    Some(out)
}

#[cfg(test)]
mod tests;
