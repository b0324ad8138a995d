//! The web app's second pass over real HTTP: Add customer, Edit next to Contact Methods,
//! the customer list's filters and labelled badges, `/imports` (upload, progress, the
//! per-line report, templates), conversations (names, last message, Reply through the
//! gate) and one vocabulary on the Compliance page and in its CSV. Runs on PostgreSQL too
//! when ASSENT_TEST_POSTGRES_URL is set.

use crate::common::*;
use crate::web::{Browser, EMAIL, PASSWORD, csrf, with_user};
use reqwest::StatusCode;

async fn signed_in(app: &TestApp, t: &Tenant) -> (Browser, String) {
    let user = with_user(app, t).await;
    let mut b = Browser::new(app);
    assert_eq!(
        b.sign_in(EMAIL, PASSWORD).await.status,
        StatusCode::SEE_OTHER
    );
    (b, user)
}

async fn customer_total(app: &TestApp, t: &Tenant) -> usize {
    let (s, v) = app.get("/customers?limit=100", &t.key).await;
    assert_eq!(s, StatusCode::OK, "{v}");
    v["customers"].as_array().unwrap().len()
}

#[tokio::test]
async fn add_customer_saves_name_phone_address_and_tags_and_refuses_a_bad_phone() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (mut b, user) = signed_in(&app, &t).await;
    let list = b.get("/customers").await;
    assert!(
        list.body
            .contains("href=\"/customers/new\">Add customer</a>")
    );
    let form = b.get("/customers/new").await;
    assert_eq!(form.status, StatusCode::OK);
    for label in ["Name", "Phone", "Address", "Tags"] {
        assert!(form.body.contains(&format!(">{label}</label>")), "{label}");
    }
    let token = csrf(&form.body);

    // A phone that cannot be read: the form again, naming the field; nothing saved.
    let r = b
        .post(
            "/customers",
            &[
                ("csrf", &token),
                ("name", "Luis Ortega"),
                ("phone", "12"),
                ("address", ""),
                ("tags", ""),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("role=\"alert\""), "{}", r.body);
    assert!(r.body.contains("Phone "), "{}", r.body);
    assert!(
        r.body.contains("value=\"Luis Ortega\""),
        "kept what was typed"
    );
    assert_eq!(customer_total(&app, &t).await, 1);
    // No name: refused too.
    let r = b
        .post(
            "/customers",
            &[("csrf", &token), ("name", "  "), ("phone", "")],
        )
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Name is required."), "{}", r.body);
    assert_eq!(customer_total(&app, &t).await, 1);

    let r = b
        .post(
            "/customers",
            &[
                ("csrf", &token),
                ("name", "Luis Ortega"),
                ("phone", "(512) 555-0178"),
                ("address", "12 Oak St, Austin"),
                ("tags", "hvac, vip,hvac"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let id = r
        .location()
        .strip_prefix("/customers/")
        .and_then(|l| l.strip_suffix("?notice=customer_added"))
        .unwrap()
        .to_string();
    let (_, c) = app.get(&format!("/customers/{id}"), &t.key).await;
    assert_eq!(c["name"], "Luis Ortega");
    assert_eq!(c["address"], "12 Oak St, Austin");
    assert_eq!(c["tags"], serde_json::json!(["hvac", "vip"]));
    assert_eq!(c["phones"][0]["number"], "+15125550178");
    assert_eq!(c["phones"][0]["job_notifications"], true);
    assert_eq!(c["phones"][0]["marketing_updates"], false);
    // The initial switches are in the ledger, with the person who added the customer.
    let consent = app.consent(&t, "+15125550178").await;
    let events = consent["events"].as_array().unwrap();
    assert!(!events.is_empty());
    assert!(events.iter().all(|e| e["actor"] == user.as_str()));
    let page = b
        .get(&format!("/customers/{id}?notice=customer_added"))
        .await;
    assert!(page.body.contains("Customer added."));

    // Without the session's token nothing is saved.
    let r = b
        .post("/customers", &[("csrf", "forged"), ("name", "Mallory")])
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(customer_total(&app, &t).await, 2);
}

#[tokio::test]
async fn edit_contact_methods_adds_and_removes_a_phone_and_removing_keeps_the_ledger() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    let (mut b, _) = signed_in(&app, &t).await;
    let record = b.get(&format!("/customers/{customer}")).await;
    assert!(record.body.contains(">Contact Methods</h2>"));
    let edit = format!("/customers/{customer}/contact-methods");
    assert!(record.body.contains(&format!("href=\"{edit}\"")));
    let page = b.get(&edit).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("<legend>Add phone</legend>"));
    assert!(page.body.contains(">Remove</button>"));
    let token = csrf(&page.body);

    let add = format!("/customers/{customer}/phones");
    let r = b
        .post(&add, &[("csrf", &token), ("phone", "not a phone")])
        .await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("Phone "), "{}", r.body);
    // The phone it already has: refused, nothing added.
    let r = b.post(&add, &[("csrf", &token), ("phone", PHONE)]).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.body.contains("already on this customer"), "{}", r.body);
    let r = b
        .post(&add, &[("csrf", &token), ("phone", "512-555-0199")])
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("{edit}?notice=phone_added"));
    let (_, c) = app.get(&format!("/customers/{customer}"), &t.key).await;
    let numbers: Vec<&str> = c["phones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["number"].as_str().unwrap())
        .collect();
    assert_eq!(numbers, vec![PHONE, "+15125550199"]);

    // The first phone has history; removing it keeps every entry.
    app.inbound(PHONE, MK, "STOP").await;
    let before = app.consent(&t, PHONE).await["events"]
        .as_array()
        .unwrap()
        .len();
    let r = b
        .post(
            &format!("/customers/{customer}/phones/%2B15125550142/remove"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert_eq!(r.location(), format!("{edit}?notice=phone_removed"));
    let (_, c) = app.get(&format!("/customers/{customer}"), &t.key).await;
    assert_eq!(c["phones"].as_array().unwrap().len(), 1);
    assert_eq!(c["phones"][0]["number"], "+15125550199");
    let after = app.consent(&t, PHONE).await;
    assert_eq!(after["events"].as_array().unwrap().len(), before);
    assert_eq!(after["marketing"]["status"], "opted_out");
    // Removing it again: not found, nothing changed.
    let r = b
        .post(
            &format!("/customers/{customer}/phones/%2B15125550142/remove"),
            &[("csrf", &token)],
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // The API does the same through the same service.
    let (s, v) = app
        .post(
            &format!("/customers/{customer}/phones"),
            &t.key,
            serde_json::json!({"number": "12"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("number"),
        "{v}"
    );
}

#[tokio::test]
async fn the_customer_list_filters_by_marketing_status_and_tag_with_labelled_badges() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (s, v) = app
        .post(
            "/customers",
            &t.key,
            serde_json::json!({"name": "Eli Vance", "tags": ["vip"], "phones": [{"number": "(512) 555-0143"}]}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    app.inbound(PHONE, MK, "STOP").await;
    let (mut b, _) = signed_in(&app, &t).await;

    let all = b.get("/customers").await;
    assert!(all.body.contains("Dana") && all.body.contains("Eli Vance"));
    assert!(
        all.body.contains(">Marketing: Opted out</span>"),
        "{}",
        all.body
    );
    assert!(all.body.contains(">Marketing: None</span>"));
    assert!(all.body.contains(">Job texts: Receiving</span>"));
    assert!(!all.body.contains("Receiving texts"));

    let out = b.get("/customers?marketing=opted_out").await;
    assert!(out.body.contains("Dana") && !out.body.contains("Eli Vance"));
    assert!(
        out.body
            .contains("<option value=\"opted_out\" selected>Opted out</option>")
    );
    let none = b.get("/customers?marketing=none").await;
    assert!(!none.body.contains(">Dana<") && none.body.contains("Eli Vance"));
    let vip = b.get("/customers?tag=vip").await;
    assert!(!vip.body.contains(">Dana<") && vip.body.contains("Eli Vance"));
    let both = b.get("/customers?tag=vip&marketing=opted_out").await;
    assert!(both.body.contains("No customers found."));
    // An unknown status is no filter.
    let any = b.get("/customers?marketing=whatever").await;
    assert!(any.body.contains(">Dana<") && any.body.contains("Eli Vance"));
}

/// A `multipart/form-data` body as a browser sends the import form.
fn upload_body(token: &str, kind: &str, csv: &str) -> (String, String) {
    let boundary = "----AssentTestBoundary7MA4YWxkTrZu0gW";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{token}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"kind\"\r\n\r\n{kind}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"csv\"; filename=\"people.csv\"\r\n\
         Content-Type: text/csv\r\n\r\n{csv}\r\n--{boundary}--\r\n"
    );
    (format!("multipart/form-data; boundary={boundary}"), body)
}

async fn upload(b: &mut Browser, token: &str, kind: &str, csv: &str) -> crate::web::Answer {
    let (ct, body) = upload_body(token, kind, csv);
    let req = b
        .client
        .post(format!("{}/imports", b.base))
        .header("Content-Type", ct)
        .body(body);
    b.send(req).await
}

/// The job's page once the import ended (polled; the bound only guards against a hang).
async fn finished(b: &mut Browser, job: &str) -> String {
    for _ in 0..1200 {
        let page = b.get(job).await;
        assert_eq!(page.status, StatusCode::OK, "{}", page.body);
        if !page.body.contains("<progress") {
            return page.body;
        }
        assert_eq!(
            page.headers["refresh"], "2",
            "a running import reloads itself"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("the import did not finish");
}

#[tokio::test]
async fn an_upload_imports_in_the_background_and_reports_each_rejected_line() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (mut b, _) = signed_in(&app, &t).await;
    let page = b.get("/imports").await;
    assert_eq!(page.status, StatusCode::OK);
    for label in [
        "Customers",
        "Estimates",
        "Recurring services",
        "Calls",
        "Opt-outs",
        "CSV file",
    ] {
        assert!(page.body.contains(&format!(">{label}</label>")), "{label}");
    }
    assert!(page.body.contains(">Upload</button>"));
    let token = csrf(&page.body);

    // A forged form stores and imports nothing.
    let csv = "name,phone,tags\nRosa Diaz,(512) 555-0160,vip\nNo Phone,,\nSam Lee,512-555-0161,\n";
    let r = upload(&mut b, "forged", "customers", csv).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(customer_total(&app, &t).await, 1);
    // No kind: the form again.
    let r = upload(&mut b, &token, "", csv).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(customer_total(&app, &t).await, 1);

    let r = upload(&mut b, &token, "customers", csv).await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let job = r.location().to_string();
    assert!(job.starts_with("/imports/"), "{job}");
    let done = finished(&mut b, &job).await;
    assert!(done.contains("data-testid=\"import-done\""), "{done}");
    assert!(done.contains("<dt>Added</dt><dd>2</dd>"), "{done}");
    assert!(done.contains("data-testid=\"rejected-count\">1<"), "{done}");
    assert_eq!(customer_total(&app, &t).await, 3);

    // The per-line report downloads as CSV.
    let report = b.get(&format!("{job}/report.csv")).await;
    assert_eq!(report.status, StatusCode::OK);
    assert!(
        report.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let mut lines = report.body.lines();
    assert_eq!(lines.next(), Some("line,error"));
    let first = lines.next().unwrap();
    assert!(first.starts_with("3,"), "{}", report.body);
    assert_eq!(lines.next(), None);

    // The same file again adds nobody twice.
    let r = upload(&mut b, &token, "customers", csv).await;
    let again = finished(&mut b, r.location()).await;
    assert!(again.contains("<dt>Added</dt><dd>0</dd>"), "{again}");
    assert_eq!(customer_total(&app, &t).await, 3);

    // Earlier opt-outs: the ledger records them.
    let optouts = "phone,opted_out_at,scope,source\n(512) 555-0160,2026-01-05,all,Old tool\n";
    let r = upload(&mut b, &token, "opt-outs", optouts).await;
    let done = finished(&mut b, r.location()).await;
    assert!(
        done.contains("<dt>Opt-outs applied</dt><dd>1</dd>"),
        "{done}"
    );
    let c = app.consent(&t, "+15125550160").await;
    assert_eq!(c["marketing"]["status"], "opted_out", "{c}");

    // Each kind has a template whose header the import reads.
    for kind in [
        "customers",
        "estimates",
        "recurring-services",
        "calls",
        "opt-outs",
    ] {
        let r = b.get(&format!("/imports/templates/{kind}.csv")).await;
        assert_eq!(r.status, StatusCode::OK, "{kind}");
        assert!(
            r.headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        assert_eq!(r.body.lines().count(), 2, "{kind}: header and an example");
    }
    assert_eq!(
        b.get("/imports/templates/nothing.csv").await.status,
        StatusCode::NOT_FOUND
    );
}

#[tokio::test]
async fn conversations_name_the_customer_and_a_reply_goes_through_the_gate() {
    let app = TestApp::spawn().await;
    let (t, _) = app.tenant().await;
    let (mut b, _) = signed_in(&app, &t).await;
    assert_eq!(
        app.inbound(PHONE, TX, "Can you come Tuesday?").await,
        StatusCode::OK
    );
    let list = b.get("/conversations").await;
    assert!(list.body.contains(">Dana</a>"), "{}", list.body);
    assert!(
        list.body
            .contains("From the customer:</span> Can you come Tuesday?")
    );
    assert!(list.body.contains(">Job texts: Receiving</span>"));
    assert!(list.body.contains(">Marketing: None</span>"));

    let thread = b.get("/conversations/%2B15125550142").await;
    assert!(thread.body.contains(">Reply</label>"));
    assert!(thread.body.contains(">Send</button>"));
    let token = csrf(&thread.body);
    let key = "k1";
    let reply = "/conversations/%2B15125550142/reply";
    let r = b
        .post(
            reply,
            &[
                ("csrf", &token),
                ("thread", TX),
                ("key", key),
                ("body", "Yes, Tuesday at 9 works."),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.location().ends_with("?notice=reply_sent"),
        "{}",
        r.location()
    );
    // The same form twice is one reply.
    b.post(
        reply,
        &[
            ("csrf", &token),
            ("thread", TX),
            ("key", key),
            ("body", "Yes, Tuesday at 9 works."),
        ],
    )
    .await;
    app.drain().await;
    let sent = app.sent_to(PHONE);
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (sent[0].1.as_str(), sent[0].2.as_str()),
        (TX, "Yes, Tuesday at 9 works.")
    );
    let thread = b
        .get("/conversations/%2B15125550142?notice=reply_sent")
        .await;
    assert!(thread.body.contains("Reply sent."));
    assert!(
        thread.body.contains(&format!("Reply by {EMAIL}")),
        "{}",
        thread.body
    );
    let list = b.get("/conversations").await;
    assert!(
        list.body
            .contains("To the customer:</span> Yes, Tuesday at 9 works.")
    );

    // On the marketing number a reply goes only to an opted-in phone: refused in words.
    app.inbound(PHONE, MK, "Do you have a spring deal?").await;
    let r = b
        .post(
            reply,
            &[
                ("csrf", &token),
                ("thread", MK),
                ("key", "k2"),
                ("body", "20% off this week!"),
            ],
        )
        .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER);
    assert!(
        r.location()
            .ends_with("?notice=reply_refused_no_marketing_consent"),
        "{}",
        r.location()
    );
    let page = b
        .get(&format!(
            "/conversations/%2B15125550142?{}",
            r.location().split('?').nth(1).unwrap()
        ))
        .await;
    assert!(
        page.body.contains("Not sent: on the marketing number"),
        "{}",
        page.body
    );
    app.drain().await;
    assert_eq!(app.sent_to(PHONE).len(), 1, "nothing more sent");

    // A number that is not one of the tenant's is no thread to reply on.
    let r = b
        .post(
            reply,
            &[("csrf", &token), ("thread", "+15125550999"), ("body", "hi")],
        )
        .await;
    assert!(r.location().ends_with("?notice=reply_no_sender"));
}

#[tokio::test]
async fn the_ledger_reads_the_same_words_filtered_or_not_and_the_csv_names_people_by_email() {
    let app = TestApp::spawn().await;
    let (t, customer) = app.tenant().await;
    let (mut b, _) = signed_in(&app, &t).await;
    // A change made by the signed-in person.
    let record = b.get(&format!("/customers/{customer}")).await;
    b.post(
        &format!("/customers/{customer}/phones/%2B15125550142/notifications"),
        &[("csrf", &csrf(&record.body)), ("job_notifications", "on")],
    )
    .await;
    app.inbound(PHONE, TX, "STOP").await;
    let all = b.get("/compliance").await;
    let one = b.get("/compliance?phone=%2B15125550142").await;
    for page in [&all.body, &one.body] {
        assert!(page.contains(">All texts stopped</td>"), "{page}");
        assert!(page.contains(">Turned off</td>"), "{page}");
        assert!(page.contains(&format!("{EMAIL} (you)")), "{page}");
        assert!(!page.contains('→'), "no codes with arrows");
        assert!(!page.contains(">opted out<") && !page.contains(">active<"));
    }
    let csv = b.get("/compliance/export.csv").await;
    let header = csv.body.lines().next().unwrap();
    assert!(header.ends_with(",about,change,how"), "{header}");
    assert!(csv.body.contains(&format!(",{EMAIL},")), "{}", csv.body);
    assert!(
        csv.body.contains(",All texts,All texts stopped,Keyword"),
        "{}",
        csv.body
    );
}
