use assent_core::consent::{LedgerState, Source, Topic};
use assent_core::phone::E164;
use chrono::{TimeZone, Utc};
use proptest::prelude::*;

use super::*;
use crate::{Actor, Evidence, NewLedgerEntry};

fn opt() -> impl Strategy<Value = Option<String>> {
    proptest::option::of("[a-zA-Z0-9 .:/]{0,12}")
}

fn entry() -> impl Strategy<Value = NewLedgerEntry> {
    (
        (0u32..10_000, 0usize..4, 0usize..7, 0usize..7, 0usize..10),
        ("[a-z0-9-]{1,8}", 0i64..4_000_000_000_000),
        (opt(), opt(), opt(), opt()),
        (opt(), opt(), opt(), opt()),
    )
        .prop_map(
            |((n, topic, old, new, source), (actor, at), a, b)| NewLedgerEntry {
                phone: E164::parse(&format!("+1737555{n:04}")).expect("a valid number"),
                channel: Topic::TEXTS[topic].parse::<Topic>().expect("known"),
                old_state: LedgerState::TEXTS[old]
                    .parse::<LedgerState>()
                    .expect("known"),
                new_state: LedgerState::TEXTS[new]
                    .parse::<LedgerState>()
                    .expect("known"),
                source: Source::TEXTS[source].parse::<Source>().expect("known"),
                actor: Actor::from_text(&actor),
                occurred_at: Utc.timestamp_millis_opt(at).single().expect("in range"),
                evidence: Evidence {
                    message_sid: a.0,
                    text: a.1,
                    rule: a.2,
                    ip: a.3,
                    user_agent: b.0,
                    page: b.1,
                    disclosure: b.2,
                    request: b.3,
                },
            },
        )
}

/// A stored chain, as a backend would have written it.
fn store(tenant: &str, entries: &[NewLedgerEntry]) -> Vec<StoredLink> {
    extend((0, GENESIS), tenant, entries)
        .into_iter()
        .zip(entries)
        .enumerate()
        .map(|(i, ((seq, hash), e))| StoredLink {
            row: i as i64 + 100,
            chain_seq: Some(seq),
            hash: Some(hash),
            entry: Some(e.clone()),
        })
        .collect()
}

/// The index of the first entry that does not verify, if any.
fn first_break(tenant: &str, links: &[StoredLink]) -> Option<usize> {
    let mut v = Verifier::new(tenant);
    links.iter().position(|l| v.check(l).is_err())
}

/// A different value of an optional text.
fn other(v: &Option<String>) -> Option<String> {
    match v {
        None => Some(String::new()),
        Some(s) if s.is_empty() => None,
        Some(s) => Some(format!("{s}x")),
    }
}

/// Changes field `f` (0..=18) of a stored link so that it differs from before.
fn tamper(l: &mut StoredLink, f: usize) {
    let e = l.entry.as_mut().expect("decoded");
    let ev = &mut e.evidence;
    match f {
        0 => {
            let n = e.phone.as_str()[8..].parse::<u32>().expect("digits");
            e.phone = E164::parse(&format!("+1737555{:04}", (n + 1) % 10_000)).expect("valid");
        }
        1 => {
            let i = Topic::TEXTS.iter().position(|t| *t == e.channel.as_str());
            e.channel = Topic::TEXTS[(i.expect("known") + 1) % 4]
                .parse::<Topic>()
                .expect("known");
        }
        2 => {
            let i = LedgerState::TEXTS
                .iter()
                .position(|t| *t == e.old_state.as_str());
            e.old_state = LedgerState::TEXTS[(i.expect("known") + 1) % 7]
                .parse::<LedgerState>()
                .expect("known");
        }
        3 => {
            let i = LedgerState::TEXTS
                .iter()
                .position(|t| *t == e.new_state.as_str());
            e.new_state = LedgerState::TEXTS[(i.expect("known") + 1) % 7]
                .parse::<LedgerState>()
                .expect("known");
        }
        4 => {
            let i = Source::TEXTS.iter().position(|t| *t == e.source.as_str());
            e.source = Source::TEXTS[(i.expect("known") + 1) % 10]
                .parse::<Source>()
                .expect("known");
        }
        5 => e.actor = Actor::from_text(&format!("{}x", e.actor)),
        6 => e.occurred_at += chrono::Duration::milliseconds(1),
        7 => ev.message_sid = other(&ev.message_sid),
        8 => ev.text = other(&ev.text),
        9 => ev.rule = other(&ev.rule),
        10 => ev.ip = other(&ev.ip),
        11 => ev.user_agent = other(&ev.user_agent),
        12 => ev.page = other(&ev.page),
        13 => ev.disclosure = other(&ev.disclosure),
        14 => ev.request = other(&ev.request),
        15 => l.chain_seq = l.chain_seq.map(|s| s + 1),
        16 => l.hash = other(&l.hash),
        17 => l.hash = None,
        _ => l.chain_seq = None,
    }
}

proptest! {
    #[test]
    fn an_untouched_chain_verifies(entries in proptest::collection::vec(entry(), 1..12)) {
        let links = store("t1", &entries);
        prop_assert_eq!(first_break("t1", &links), None);
    }

    #[test]
    fn any_single_field_change_to_any_entry_is_detected_at_that_entry(
        entries in proptest::collection::vec(entry(), 1..12),
        pick in any::<prop::sample::Index>(),
        field in 0usize..19,
    ) {
        let mut links = store("t1", &entries);
        let i = pick.index(links.len());
        tamper(&mut links[i], field);
        prop_assert_eq!(first_break("t1", &links), Some(i));
    }

    #[test]
    fn a_removed_entry_is_detected_at_the_next(
        entries in proptest::collection::vec(entry(), 2..12),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut links = store("t1", &entries);
        let i = pick.index(links.len() - 1);
        links.remove(i);
        prop_assert_eq!(first_break("t1", &links), Some(i));
    }

    #[test]
    fn an_entry_moved_to_another_tenant_does_not_verify_there(
        entries in proptest::collection::vec(entry(), 1..6),
    ) {
        let links = store("t1", &entries);
        prop_assert_eq!(first_break("t2", &links), Some(0));
    }
}

#[test]
fn the_encoding_is_stable() {
    // Pinned so that a change to the encoding (which would break every stored chain) is
    // noticed: a new encoding needs a new tag and a migration.
    let e = NewLedgerEntry {
        phone: E164::parse("+17375550100").expect("valid"),
        channel: Topic::Marketing,
        old_state: LedgerState::Pending,
        new_state: LedgerState::OptedIn,
        source: Source::Keyword,
        actor: Actor::Customer,
        occurred_at: Utc
            .timestamp_millis_opt(1_700_000_000_000)
            .single()
            .expect("valid"),
        evidence: Evidence {
            message_sid: Some("SM1".into()),
            text: Some("YES".into()),
            ..Default::default()
        },
    };
    let bytes = encode("t1", 1, &e);
    let mut want = b"assent-ledger-v1".to_vec();
    for f in [
        "t1",
        "1",
        "+17375550100",
        "marketing",
        "pending",
        "opted_in",
        "keyword",
        "customer",
        "1700000000000",
        "SM1",
        "YES",
    ] {
        want.push(1);
        want.extend_from_slice(&(f.len() as u32).to_be_bytes());
        want.extend_from_slice(f.as_bytes());
    }
    want.extend_from_slice(&[0; 6]);
    assert_eq!(bytes, want);
    let mut h = Sha256::new();
    h.update([0u8; 32]);
    h.update(&want);
    assert_eq!(hash(GENESIS, "t1", 1, &e), to_hex(h.finalize().as_slice()));
}
