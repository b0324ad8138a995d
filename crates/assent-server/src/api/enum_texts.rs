//! Every typed state, reason and kind the API shows has the texts `openapi.json` lists for
//! it, no more and no fewer: the enums' text tables (`text_enum!`) and the document are
//! two lists of one thing.

use std::collections::BTreeSet;

use assent_core::consent::{Channel, MarketingStatus, ReplyKind, Scope, Source, Thread, Topic};
use assent_core::gate::{Reason, RegistrationStatus};
use assent_core::keyword::Lang;
use assent_core::quiet_hours::QuietPolicy;
use assent_store::{
    CampaignKind, CampaignStatus, Direction, EstimateStatus, KeywordReplies, MessageKind,
    MessageStatus, RatePreset, RegistrationKind, SendStatus, SkipReason,
};

use crate::service::OptOutMethod;

/// The string values of the enum at `pointer` (a `null` for an optional field is left out).
fn documented(doc: &serde_json::Value, pointer: &str) -> BTreeSet<String> {
    doc.pointer(pointer)
        .and_then(|v| v.as_array())
        .unwrap_or_else(|| panic!("openapi.json has no enum at {pointer}"))
        .iter()
        .filter_map(|v| v.as_str().map(str::to_string))
        .collect()
}

fn texts(t: &[&str]) -> BTreeSet<String> {
    t.iter().map(|s| s.to_string()).collect()
}

#[test]
fn every_enum_has_the_texts_openapi_json_lists() {
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../openapi.json")).expect("openapi.json parses");
    let s = "/components/schemas";
    let cases: Vec<(String, &[&str])> = vec![
        (
            "/paths/~1tenants~1{id}~1registrations~1{kind}~1decision/post/parameters/1/schema/enum"
                .into(),
            &RegistrationKind::TEXTS,
        ),
        (format!("{s}/RegistrationStatus/enum"), &RegistrationStatus::TEXTS),
        (format!("{s}/GateReason/enum"), &Reason::TEXTS),
        (format!("{s}/Settings/properties/keyword_replies/enum"), &KeywordReplies::TEXTS),
        (format!("{s}/Settings/properties/quiet_hours/enum"), &QuietPolicy::TEXTS),
        (
            format!("{s}/Settings/properties/rate_limits/properties/preset/enum"),
            &RatePreset::TEXTS,
        ),
        (format!("{s}/ConsentEvent/properties/channel/enum"), &Topic::TEXTS),
        (format!("{s}/ConsentEvent/properties/source/enum"), &Source::TEXTS),
        (
            format!("{s}/Consent/properties/marketing/properties/status/enum"),
            &MarketingStatus::TEXTS,
        ),
        (format!("{s}/Consent/properties/language/enum"), &Lang::TEXTS),
        (format!("{s}/Message/properties/direction/enum"), &Direction::TEXTS),
        (format!("{s}/Message/properties/channel/enum"), &Channel::TEXTS),
        (format!("{s}/Message/properties/kind/enum"), &MessageKind::TEXTS),
        (format!("{s}/Message/properties/status/enum"), &MessageStatus::TEXTS),
        (format!("{s}/Review/properties/thread/enum"), &Thread::TEXTS),
        (format!("{s}/CampaignType/enum"), &CampaignKind::TEXTS),
        (format!("{s}/CampaignStatus/enum"), &CampaignStatus::TEXTS),
        (format!("{s}/EstimateStatus/enum"), &EstimateStatus::TEXTS),
        (format!("{s}/SendLogRow/properties/status/enum"), &SendStatus::TEXTS),
        (
            "/paths/~1consent~1{phone}~1opt-out/post/requestBody/content/application~1json/schema/properties/scope/enum".into(),
            &Scope::TEXTS,
        ),
        (
            "/paths/~1consent~1{phone}~1opt-out/post/requestBody/content/application~1json/schema/properties/method/enum".into(),
            &OptOutMethod::TEXTS,
        ),
        (
            "/paths/~1simulator~1inbound/post/responses/200/content/application~1json/schema/properties/reply/enum".into(),
            &ReplyKind::TEXTS,
        ),
    ];
    for (pointer, ours) in cases {
        assert_eq!(documented(&doc, &pointer), texts(ours), "{pointer}");
    }

    // A skip reason is a gate reason or one of the campaign's own; `superseded` is only
    // read from rows earlier versions wrote, so the document no longer lists it.
    let mut skip = documented(&doc, &format!("{s}/GateReason/enum"));
    skip.extend(documented(&doc, &format!("{s}/SkipReason/anyOf/1/enum")));
    let mut ours = texts(&SkipReason::TEXTS);
    ours.remove(SkipReason::Superseded.as_str());
    assert_eq!(skip, ours);
}
