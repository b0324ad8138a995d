//! The web app's second pass over real HTTP, on SQLite or PostgreSQL: transactional
//! campaigns built in the composer, the team page and what a marketer may not change, the
//! overview, and the small pages (favicon, API reference, the hosted form when quiet hours
//! hold its text).

use crate::common::*;
use crate::web::{Browser, EMAIL, PASSWORD, csrf, with_user};
use reqwest::StatusCode;

async fn signed_in(app: &TestApp, t: &Tenant) -> (Browser, String) {
    with_user(app, t).await;
    let mut b = Browser::new(app);
    let r = b.sign_in(EMAIL, PASSWORD).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = b.get("/campaigns/new").await;
    let token = csrf(&page.body);
    (b, token)
}

/// A second tenant (without sending numbers: the first one has them) and its owner,
/// signed in.
async fn other_owner(app: &TestApp) -> (Browser, String) {
    let (s, v) = app
        .post(
            "/tenants",
            ADMIN,
            serde_json::json!({"name": "Other Co", "time_zone": "America/Chicago"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let slug = v["slug"].as_str().unwrap();
    assent_server::web::create_user(&app.app, slug, "boss@other.example", PASSWORD)
        .await
        .unwrap();
    let mut boss = Browser::new(app);
    boss.sign_in("boss@other.example", PASSWORD).await;
    let token = csrf(&boss.get("/customers").await.body);
    (boss, token)
}

fn id_from(location: &str) -> String {
    location
        .strip_prefix("/campaigns/")
        .expect("a campaign's page")
        .to_string()
}

#[tokio::test]
async fn the_composer_offers_every_kind_and_activates_follow_ups_with_their_days() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (mut b, token) = signed_in(&app, &t).await;

    let page = b.get("/campaigns/new").await;
    for (kind, label) in [
        ("marketing", "Marketing"),
        ("unsold_estimates", "Unsold estimates"),
        ("recurring_services", "Recurring services"),
        ("missed_calls", "Missed calls"),
    ] {
        assert!(
            page.body
                .contains(&format!("href=\"/campaigns/new?type={kind}\"")),
            "{kind}"
        );
        assert!(page.body.contains(&format!(">{label}</a>")), "{label}");
    }
    let page = b.get("/campaigns/new?type=unsold_estimates").await;
    assert!(page.body.contains(">Days after</label>"), "{}", page.body);
    assert!(page.body.contains(">Activate</button>"));
    assert!(!page.body.contains("Only customers tagged"));
    let page = b.get("/campaigns/new?type=recurring_services").await;
    assert!(page.body.contains(">Days before</label>"));
    let page = b.get("/campaigns/new?type=missed_calls").await;
    assert!(!page.body.contains("Days after") && !page.body.contains("Days before"));
    assert!(page.body.contains(">Activate</button>"));

    // A job text's preview carries no marketing footer, live and on Preview.
    let body = "Hi {first_name|there}, any questions about your estimate?";
    let live = b
        .post(
            "/campaigns/preview",
            &[
                ("csrf", &token),
                ("type", "unsold_estimates"),
                ("body", body),
            ],
        )
        .await;
    assert_eq!(live.status, StatusCode::OK);
    assert!(
        live.body.contains("Hi Dana, any questions"),
        "{}",
        live.body
    );
    assert!(!live.body.contains("STOP"), "{}", live.body);
    let live = b
        .post("/campaigns/preview", &[("csrf", &token), ("body", body)])
        .await;
    assert!(live.body.contains("STOP"), "marketing keeps its footer");

    // Days that are not whole numbers, or none, are refused beside the form; nothing made.
    let create = |days: &'static str| {
        [
            ("type", "unsold_estimates"),
            ("name", "Estimate follow-up"),
            ("body", body),
            ("days", days),
            ("action", "create"),
        ]
    };
    for (days, says) in [
        ("2, soon", "Days after must be whole numbers"),
        ("", "Give the days after the estimate"),
        ("2, 9999", "days must be at most 3650"),
    ] {
        let mut form = vec![("csrf", token.as_str())];
        form.extend(create(days));
        let r = b.post("/campaigns/new", &form).await;
        assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "{days}");
        assert!(r.body.contains(says), "{days}: {}", r.body);
        assert!(
            r.body.contains("value=\"unsold_estimates\""),
            "the kind is kept"
        );
    }
    let (_, list) = app.get("/campaigns", &t.key).await;
    assert_eq!(list["campaigns"].as_array().unwrap().len(), 0);

    let mut form = vec![("csrf", token.as_str())];
    form.extend(create("2, 7 14"));
    let r = b.post("/campaigns/new", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let estimates = id_from(r.location());
    let c = app
        .app
        .store
        .campaign(&t.id, &estimates)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.days, vec![2, 7, 14]);
    let (_, report) = app.get(&format!("/campaigns/{estimates}"), &t.key).await;
    assert_eq!(report["type"], "unsold_estimates");
    assert_eq!(report["status"], "active");

    // Activate, pause, resume: the same report page as marketing.
    let page = b.get(&format!("/campaigns/{estimates}")).await;
    assert!(page.body.contains("Unsold estimates"));
    assert!(page.body.contains(">Pause</button>"));
    let r = b
        .post(
            &format!("/campaigns/{estimates}/pause"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let (_, report) = app.get(&format!("/campaigns/{estimates}"), &t.key).await;
    assert_eq!(report["status"], "paused");
    assert!(
        b.get(&format!("/campaigns/{estimates}"))
            .await
            .body
            .contains(">Resume</button>")
    );
    b.post(
        &format!("/campaigns/{estimates}/resume"),
        &[("csrf", &token)],
    )
    .await;
    let (_, report) = app.get(&format!("/campaigns/{estimates}"), &t.key).await;
    assert_eq!(report["status"], "active");

    // Recurring services take days before; missed calls take none (days sent are ignored).
    let r = b
        .post(
            "/campaigns/new",
            &[
                ("csrf", &token),
                ("type", "recurring_services"),
                ("name", "Tune-up reminder"),
                ("body", "Your tune-up is due, {first_name|there}."),
                ("days", "7,1"),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let c = app
        .app
        .store
        .campaign(&t.id, &id_from(r.location()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(c.days, vec![7, 1]);
    assert_eq!(c.kind.as_str(), "recurring_services");
    let r = b
        .post(
            "/campaigns/new",
            &[
                ("csrf", &token),
                ("type", "missed_calls"),
                ("name", "Missed call"),
                ("body", "Sorry we missed your call."),
                ("action", "create"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let (_, report) = app
        .get(&format!("/campaigns/{}", id_from(r.location())), &t.key)
        .await;
    assert_eq!(report["type"], "missed_calls");
    assert_eq!(report["status"], "active");
    let list = b.get("/campaigns").await;
    assert!(list.body.contains("Recurring services") && list.body.contains("Missed calls"));
}

async fn user_id(app: &TestApp, email: &str) -> String {
    app.app
        .store
        .user_by_email(email)
        .await
        .unwrap()
        .expect("the user")
        .id
}

const MARKETER: &str = "mia@acme.example";

#[tokio::test]
async fn an_owner_adds_disables_enables_resets_and_removes_a_marketer() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (mut owner, token) = signed_in(&app, &t).await;
    let page = owner.get("/team").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains(">Add user</button>"));
    assert!(page.body.contains("manager@acme.example (you)"));

    let add = |email: &'static str, password: &'static str| {
        [
            ("email", email),
            ("password", password),
            ("role", "marketer"),
        ]
    };
    let mut form = vec![("csrf", token.as_str())];
    form.extend(add(MARKETER, "short"));
    let r = owner.post("/team", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        r.body
            .contains("The password must have at least 8 characters."),
        "{}",
        r.body
    );
    assert!(
        app.app
            .store
            .user_by_email(MARKETER)
            .await
            .unwrap()
            .is_none()
    );

    let mut form = vec![("csrf", token.as_str())];
    form.extend(add(MARKETER, "marketer password"));
    let r = owner.post("/team", &form).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let page = owner.get("/team?notice=added").await;
    assert!(page.body.contains(MARKETER) && page.body.contains("Marketer"));
    let r = owner.post("/team", &form).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("That email already has an account."));
    let id = user_id(&app, MARKETER).await;

    // The marketer signs in, works with campaigns, and sees no Team.
    let mut mia = Browser::new(&app);
    assert_eq!(
        mia.sign_in(MARKETER, "marketer password").await.status,
        StatusCode::SEE_OTHER
    );
    let page = mia.get("/customers").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("href=\"/team\""));
    assert!(
        owner
            .get("/customers")
            .await
            .body
            .contains("href=\"/team\"")
    );
    assert_eq!(mia.get("/team").await.status, StatusCode::FORBIDDEN);

    // The owner can demote nobody but others, and cannot disable or remove themselves.
    let me = user_id(&app, EMAIL).await;
    for (path, action) in [
        (format!("/team/{me}/access"), "disable"),
        (format!("/team/{me}/access"), "role"),
        (format!("/team/{me}/remove"), ""),
    ] {
        let r = owner
            .post(
                &path,
                &[("csrf", &token), ("action", action), ("role", "marketer")],
            )
            .await;
        assert_eq!(
            r.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{path} {action}"
        );
        assert!(r.body.contains("your own account"), "{}", r.body);
    }

    // Disabled: signed out at once, and the right password only learns it is disabled.
    let r = owner
        .post(
            &format!("/team/{id}/access"),
            &[("csrf", &token), ("action", "disable")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let r = mia.get("/customers").await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(r.location().starts_with("/login"));
    let r = mia.sign_in(MARKETER, "marketer password").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert!(r.body.contains("disabled"));
    let r = mia.sign_in(MARKETER, "wrong password").await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(!r.body.contains("disabled"));

    owner
        .post(
            &format!("/team/{id}/access"),
            &[("csrf", &token), ("action", "enable")],
        )
        .await;
    assert_eq!(
        mia.sign_in(MARKETER, "marketer password").await.status,
        StatusCode::SEE_OTHER
    );

    // A new password ends the marketer's sessions; the old one no longer works.
    let r = owner
        .post(
            &format!("/team/{id}/password"),
            &[("csrf", &token), ("password", "a brand new one")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert_eq!(mia.get("/customers").await.status, StatusCode::SEE_OTHER);
    assert_eq!(
        mia.sign_in(MARKETER, "marketer password").await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        mia.sign_in(MARKETER, "a brand new one").await.status,
        StatusCode::SEE_OTHER
    );

    // Made an owner, then a marketer again.
    owner
        .post(
            &format!("/team/{id}/access"),
            &[("csrf", &token), ("action", "role"), ("role", "owner")],
        )
        .await;
    assert!(mia.get("/customers").await.body.contains("href=\"/team\""));
    owner
        .post(
            &format!("/team/{id}/access"),
            &[("csrf", &token), ("action", "role"), ("role", "marketer")],
        )
        .await;
    assert_eq!(mia.get("/team").await.status, StatusCode::FORBIDDEN);

    // Another tenant's owner cannot touch this tenant's users.
    let (mut boss, boss_token) = other_owner(&app).await;
    let r = boss
        .post(&format!("/team/{id}/remove"), &[("csrf", &boss_token)])
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // Removed: the account is gone.
    let r = owner
        .post(&format!("/team/{id}/remove"), &[("csrf", &token)])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    assert!(
        app.app
            .store
            .user_by_email(MARKETER)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        mia.sign_in(MARKETER, "a brand new one").await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_marketer_cannot_change_registrations_senders_settings_or_the_team() {
    let app = TestApp::spawn().await;
    let t = app.bare_tenant("Acme Plumbing").await;
    with_user(&app, &t).await;
    assent_server::web::create_user_as(
        &app.app,
        &t.slug,
        MARKETER,
        "marketer password",
        assent_store::Role::Marketer,
    )
    .await
    .unwrap();
    let mut mia = Browser::new(&app);
    mia.sign_in(MARKETER, "marketer password").await;
    let token = csrf(&mia.get("/registrations").await.body);
    // The pages show a marketer what an owner set, with every form of theirs disabled and
    // a note saying why; an owner's are enabled.
    let mut owner = Browser::new(&app);
    owner.sign_in(EMAIL, PASSWORD).await;
    // The sign-out form in the layout is everyone's.
    let forms = |body: &str| body.matches("<form method=\"post\"").count() - 1;
    for page in ["/settings", "/registrations"] {
        let seen = mia.get(page).await;
        assert_eq!(seen.status, StatusCode::OK, "{page}");
        assert!(seen.body.contains("id=\"owners-only\""), "{page}");
        let n = forms(&seen.body);
        let disabled = seen
            .body
            .matches("<fieldset class=\"whole\" disabled>")
            .count();
        assert!(n >= 1, "{page}: {n} forms");
        assert_eq!(disabled, n, "{page}: every form disabled");
        let theirs = owner.get(page).await.body;
        assert!(!theirs.contains("owners-only"), "{page}");
        assert!(
            !theirs.contains("<fieldset class=\"whole\" disabled>"),
            "{page}"
        );
        assert_eq!(
            theirs.matches("<fieldset class=\"whole\">").count(),
            forms(&theirs),
            "{page}: the owner's forms are whole and enabled"
        );
    }
    let (_, settings_before) = app.get("/settings", &t.key).await;
    let (_, senders_before) = app.get("/senders", &t.key).await;
    let (_, regs_before) = app.get("/registrations", &t.key).await;

    for (path, form) in [
        (
            "/registrations/texting",
            vec![
                ("legal_name", "Mia's Plumbing"),
                ("ein", "12-3456789"),
                ("address", "1 Main St, Austin, TX"),
                ("website", "https://acme.example"),
                ("contact_email", "mia@acme.example"),
                ("use_case", "jobs"),
                ("sample_messages", "Your plumber is on the way"),
            ],
        ),
        ("/registrations/texting/check", vec![("legal_name", "x")]),
        ("/registrations/marketing", vec![("brand", "Mia")]),
        (
            "/senders",
            vec![
                ("transactional", "+15125550190"),
                ("marketing", "+15125550191"),
            ],
        ),
        (
            "/settings",
            vec![("review_deadline_days", "5"), ("stop_revokes_all", "on")],
        ),
        ("/settings/twilio-check", vec![]),
        (
            "/team",
            vec![
                ("email", "friend@acme.example"),
                ("password", "friend password"),
                ("role", "owner"),
            ],
        ),
    ] {
        let mut fields = vec![("csrf", token.as_str())];
        fields.extend(form);
        let r = mia.post(path, &fields).await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
        assert!(r.body.contains("Only an owner"), "{path}");
    }
    let owner_id = user_id(&app, EMAIL).await;
    for path in [
        format!("/team/{owner_id}/access"),
        format!("/team/{owner_id}/password"),
        format!("/team/{owner_id}/remove"),
    ] {
        let r = mia
            .post(
                &path,
                &[
                    ("csrf", token.as_str()),
                    ("action", "disable"),
                    ("password", "taken over!"),
                ],
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}");
    }
    assert_eq!(app.get("/settings", &t.key).await.1, settings_before);
    assert_eq!(app.get("/senders", &t.key).await.1, senders_before);
    assert_eq!(app.get("/registrations", &t.key).await.1, regs_before);
    assert!(
        app.app
            .store
            .user_by_email("friend@acme.example")
            .await
            .unwrap()
            .is_none()
    );
    let owner = app.app.store.user_by_email(EMAIL).await.unwrap().unwrap();
    assert!(!owner.disabled);

    // What a marketer is for still works.
    let r = mia
        .post(
            "/campaigns/new",
            &[
                ("csrf", token.as_str()),
                ("name", "Spring"),
                ("body", "Hi {first_name|there}"),
                ("action", "preview"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
}

#[tokio::test]
async fn the_overview_lists_what_needs_attention_and_charts_the_last_90_days() {
    let app = TestApp::spawn().await;
    let (mut b, _) = other_owner(&app).await;
    let page = b.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("Registrations not approved"));
    assert!(
        page.body
            .contains("Register for Texting: <strong>Not submitted</strong>")
    );
    assert!(page.body.contains("None in the last 90 days."));

    let (t, _) = app.tenant().await;
    let (mut b, _) = signed_in(&app, &t).await;
    let page = b.get("/").await;
    assert!(
        page.body.contains("Nothing needs attention"),
        "{}",
        page.body
    );

    // A failed send, a delivered one, an opt-out, then a text held by quiet hours.
    app.customer(&t, "Landline", "5125550111", true, false)
        .await;
    app.put(
        "/simulator/numbers/+15125550111",
        &t.key,
        serde_json::json!({"behavior": "fail"}),
    )
    .await;
    for to in [PHONE, "+15125550111"] {
        let (s, v) = app
            .post(
                "/messages",
                &t.key,
                serde_json::json!({"to": to, "purpose": "job_notification", "body": "On our way"}),
            )
            .await;
        assert_eq!(s, StatusCode::ACCEPTED, "{v}");
    }
    app.drain().await;
    app.inbound(PHONE, TX, "STOP").await;
    app.drain().await;
    app.customer(&t, "Night Owl", "5125550123", true, true)
        .await;
    // 3 AM the next day in Austin: inside quiet hours.
    app.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 5, 9, 0, 0).unwrap());
    let (_, v) = app
        .post(
            "/messages",
            &t.key,
            serde_json::json!({"to": "+15125550123", "purpose": "transactional_campaign", "body": "Your tune-up is due"}),
        )
        .await;
    assert!(v["id"].is_string(), "{v}");
    app.drain().await;

    // The session from yesterday noon has run out: sign in again.
    b.sign_in(EMAIL, PASSWORD).await;
    let page = b.get("/").await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(!body.contains("Nothing needs attention"));
    assert!(body.contains("Messages held now, and why"), "{body}");
    assert!(
        body.contains("Held until the recipient&#39;s local sending hours"),
        "the reason in words: {body}"
    );
    assert!(
        body.contains("Failed sends in the last 7 days: 1"),
        "{body}"
    );
    assert!(body.contains("(512) 555-0111</a>: Failed"));
    assert!(body.contains("Opt-outs in the last 7 days:"));
    assert!(body.contains("(512) 555-0142</a>: All texts"), "{body}");
    // The charts: SVG with a name, and the numbers in tables beside them.
    assert_eq!(body.matches("<svg class=\"chart\"").count(), 2);
    assert!(body.contains("role=\"img\""));
    assert!(body.contains("opted out</title></rect>"));
    assert!(body.contains("% delivered ("));
    assert!(
        body.contains("<tr><td>Mar 4</td>"),
        "a row for the day: {body}"
    );
    assert!(!body.contains("<script src=\"http"));
}

#[tokio::test]
async fn estimates_recurring_services_and_calls_are_listed_a_page_at_a_time() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    let (mut b, token) = signed_in(&app, &t).await;
    let mut ids = Vec::new();
    for i in 0..51 {
        app.clock.advance(chrono::Duration::seconds(1));
        let (s, v) = app
            .post(
                "/estimates",
                &t.key,
                serde_json::json!({"customer_id": customer, "number": format!("E-{i}"), "amount_cents": 125_050, "status": "unsold"}),
            )
            .await;
        assert_eq!(s, StatusCode::CREATED, "{v}");
        ids.push(v["id"].as_str().unwrap().to_string());
    }
    let page = b.get("/estimates").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("1–50 of 51"), "{}", page.body);
    assert!(page.body.contains(">E-50<") && !page.body.contains(">E-0<"));
    assert!(page.body.contains("$1,250.50"));
    assert!(page.body.contains(">Dana</a>"));
    let next = page
        .body
        .split("href=\"")
        .find(|s| s.starts_with("/estimates?after="))
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let page2 = b.get(&next).await;
    assert!(page2.body.contains(">E-0<") && !page2.body.contains(">E-50<"));

    // Sold: marked, and the follow-ups stop; a status that is none is refused.
    let first = &ids[0];
    let r = b
        .post(
            &format!("/estimates/{first}/status"),
            &[("csrf", token.as_str()), ("status", "sold")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let e = app.app.store.estimate(&t.id, first).await.unwrap().unwrap();
    assert_eq!(e.status.as_str(), "sold");
    let r = b
        .post(
            &format!("/estimates/{}/status", ids[1]),
            &[("csrf", token.as_str()), ("status", "dismissed")],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    let r = b
        .post(
            &format!("/estimates/{}/status", ids[2]),
            &[("csrf", token.as_str()), ("status", "lost")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    let e = app
        .app
        .store
        .estimate(&t.id, &ids[2])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(e.status.as_str(), "unsold");
    let r = b
        .post(
            "/estimates/nope/status",
            &[("csrf", token.as_str()), ("status", "sold")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The API's PATCH keeps its answers.
    let (s, v) = app
        .call(
            "PATCH",
            &format!("/estimates/{}", ids[3]),
            &t.key,
            Some(serde_json::json!({"status": "lost"})),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(v["error"]["code"], "invalid_field");

    let (s, v) = app
        .post(
            "/recurring-services",
            &t.key,
            serde_json::json!({"customer_id": customer, "name": "AC tune-up", "due_on": "2026-03-20"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let page = b.get("/recurring-services").await;
    assert!(page.body.contains("AC tune-up") && page.body.contains("Mar 20, 2026"));
    let (s, v) = app
        .post(
            "/calls",
            &t.key,
            serde_json::json!({"from": PHONE, "to": TX, "status": "missed"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    let page = b.get("/calls").await;
    assert!(page.body.contains("(512) 555-0142") && page.body.contains("Missed"));

    // Another tenant sees none of them.
    let (mut boss, boss_token) = other_owner(&app).await;
    assert!(
        boss.get("/estimates")
            .await
            .body
            .contains("No estimates yet.")
    );
    assert!(boss.get("/calls").await.body.contains("No calls yet."));
    let r = boss
        .post(
            &format!("/estimates/{}/status", ids[4]),
            &[("csrf", boss_token.as_str()), ("status", "sold")],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_favicon_the_api_reference_and_the_folding_menu_need_no_script() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let r = app
        .client
        .get(format!("{}/favicon.svg", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.headers()["content-type"], "image/svg+xml");
    assert!(r.text().await.unwrap().starts_with("<svg"));

    let r = app
        .client
        .get(format!("{}/docs", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<code>PATCH /api/v1/estimates/{id}</code>"));
    assert!(html.contains("<code>POST /api/v1/campaigns</code>"));
    assert!(html.contains("id=\"schema-Error\""));
    assert!(!html.contains("<script src=\"http") && !html.contains("cdn"));

    let (mut b, _) = signed_in(&app, &t).await;
    let page = b.get("/customers").await;
    assert!(
        page.body
            .contains("<input type=\"checkbox\" id=\"nav-toggle\"")
    );
    assert!(
        page.body
            .contains("<label for=\"nav-toggle\" class=\"nav-button\">Menu</label>")
    );
    assert!(page.body.contains("rel=\"icon\" href=\"/favicon.svg\""));
}

async fn form_post(app: &TestApp, slug: &str, phone: &str) -> (StatusCode, String) {
    let r = app
        .client
        .post(format!("{}/optin/{slug}", app.base))
        .form(&[("phone", phone), ("consent", "yes")])
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_hosted_form_is_centred_and_answers_at_night_as_it_will_text() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, html) = form_post(&app, &t.slug, "(512) 555-0177").await;
    assert_eq!(s, StatusCode::OK);
    assert!(html.contains("we have sent it a message"), "{html}");
    assert!(html.contains("margin:0 auto"), "centred");

    // 11 PM in Austin: a request the customer asked for is not held by quiet hours, so
    // the page promises no later hour than the text keeps.
    app.clock
        .set(chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2026, 3, 5, 5, 0, 0).unwrap());
    let (s, html) = form_post(&app, &t.slug, "(512) 555-0178").await;
    assert_eq!(s, StatusCode::OK);
    app.drain().await;
    let (_, v) = app.get("/messages?phone=%2B15125550178", &t.key).await;
    let m = &v["messages"][0];
    if m["status"] == "deferred" {
        assert!(html.contains("we&#39;ll text you after"), "{html}");
    } else {
        assert!(html.contains("we have sent it a message"), "{html}");
    }
}
