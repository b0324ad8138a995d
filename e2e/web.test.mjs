// The web app in a real browser: Debian's headless Chromium driven by playwright-core
// (which never downloads a browser here). Starts target/release/assent on a temporary
// SQLite file and a free port, makes a tenant through the API and a user with
// `assent user create`, then goes through the seed's workflows as a marketing manager
// would. Screenshots land in artifacts/screenshots/ (not committed).
//
// ASSENT_BIN overrides the binary; CHROMIUM the browser (default /usr/bin/chromium).

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import {
  base, context, page, tenant, customerId,
  bin, ADMIN, EMAIL, PASSWORD, PHONE, FORM_PHONE, MK,
  env, api, eventually, checkAccessibility, shot,
} from "./harness.mjs";

async function marketingStatus() {
  return (await page.getByTestId("marketing-status").first().textContent()).trim();
}

test("sign in with a wrong password is refused, with the right one opens Customers", async () => {
  await page.goto(`${base}/customers`);
  assert.match(page.url(), /\/login\?next=/);
  await checkAccessibility(page, "login");
  await shot("01-login");
  await page.getByLabel("Email").fill(EMAIL);
  await page.getByLabel("Password").fill("not my password");
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByText("Wrong email or password.").waitFor();

  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/customers`);
  await page.getByRole("heading", { level: 1, name: "Customers" }).waitFor();
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "assent_session");
  assert.ok(session?.httpOnly, "the session cookie is HTTP-only");
  assert.equal(session.sameSite, "Lax");
  await checkAccessibility(page, "customers");
  await shot("02-customers");
});

test("search, then toggle Job Notifications and Marketing updates and see them saved", async () => {
  await page.getByLabel("Search by name or phone").fill("555-0142");
  await page.getByRole("button", { name: "Search" }).click();
  await page.getByRole("link", { name: "Dana Whitfield" }).click();
  await page.getByRole("heading", { level: 1, name: "Dana Whitfield" }).waitFor();
  assert.equal(await marketingStatus(), "None");

  await page.getByRole("button", { name: "Notifications" }).click();
  const job = page.getByLabel("Job Notifications");
  const marketing = page.getByLabel("Marketing updates");
  assert.equal(await job.isChecked(), true, "a new number starts with Job Notifications on");
  assert.equal(await marketing.isChecked(), false);
  await shot("03-notifications-open");
  await job.uncheck();
  await marketing.check();
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Notification preferences saved.").waitFor();

  await page.getByRole("button", { name: "Notifications" }).click();
  assert.equal(await page.getByLabel("Job Notifications").isChecked(), false);
  assert.equal(await page.getByLabel("Marketing updates").isChecked(), true);
  let saved = await api("GET", `/customers/${customerId}`, tenant.api_key);
  assert.deepEqual(
    [saved.phones[0].job_notifications, saved.phones[0].marketing_updates],
    [false, true],
  );

  await page.getByLabel("Job Notifications").check();
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Notification preferences saved.").waitFor();
  saved = await api("GET", `/customers/${customerId}`, tenant.api_key);
  assert.deepEqual(
    [saved.phones[0].job_notifications, saved.phones[0].marketing_updates],
    [true, true],
  );
  // The history names the customer record as the source.
  await page.getByRole("cell", { name: "Customer record" }).first().waitFor();
});

test("send an opt-in request: Pending, then Opted in after the customer's YES", async () => {
  await page.getByRole("button", { name: "Send opt-in request" }).click();
  // Outside the customer's sending hours the request is accepted and held; either way
  // the number is Pending from now on.
  await page.getByText(/^Opt-in request (sent|accepted)/).waitFor();
  assert.equal(await marketingStatus(), "Pending");
  // The status word appears once on the page, so a test can find it by its text.
  assert.equal(await page.getByText("Pending").count(), 1);
  // A second request now would be throttled, and the button says why.
  assert.equal(await page.getByRole("button", { name: "Send opt-in request" }).isDisabled(), true);
  await page.getByText("an opt-in request was sent recently").waitFor();
  await checkAccessibility(page, "customer record");
  await shot("04-customer-pending");

  // The worker hands the request to the simulated carrier.
  await eventually(async () => {
    const { messages } = await api(
      "GET",
      `/messages?phone=${encodeURIComponent(PHONE)}`,
      tenant.api_key,
    );
    return messages.some((m) => m.kind === "opt_in_request" && m.status !== "queued");
  }, "the opt-in request to leave");

  await api("POST", "/simulator/inbound", tenant.api_key, {
    from: "5125550142",
    to: MK,
    body: "YES",
  });
  // Outside sending hours the request was still held: that YES sent it at once, and only
  // a YES after the disclosure reached the phone is consent.
  const consent = await api("GET", `/consent/${encodeURIComponent(PHONE)}`, tenant.api_key);
  if (consent.marketing.status === "pending") {
    await eventually(async () => {
      const { messages } = await api(
        "GET",
        `/messages?phone=${encodeURIComponent(PHONE)}`,
        tenant.api_key,
      );
      return messages.some((m) => m.kind === "opt_in_request" && ["sent", "delivered"].includes(m.status));
    }, "the held request to go once the customer texted");
    await api("POST", "/simulator/inbound", tenant.api_key, {
      from: "5125550142",
      to: MK,
      body: "YES",
    });
  }
  await page.reload();
  assert.equal(await marketingStatus(), "Opted in");
  assert.equal(await page.getByText("Opted in").count(), 1);
  await page.getByText("already gave written consent").waitFor();
  await shot("05-customer-opted-in");
  await page.setViewportSize({ width: 390, height: 844 });
  await shot("05b-customer-on-a-phone");
  await page.setViewportSize({ width: 1280, height: 900 });
});

test("the opt-in tools: link with a copy button, QR code, snippet, embed code, preview", async () => {
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  await page.getByRole("link", { name: "Opt-in tools" }).click();
  await page.getByRole("heading", { level: 1, name: "Opt-in tools" }).waitFor();
  const link = await page.getByRole("textbox", { name: "Opt-in link" }).inputValue();
  assert.equal(
    link,
    `sms:${MK}?&body=I%20would%20like%20to%20sign%20up%20for%20marketing%20text%20messages%21`,
  );
  await page.getByRole("button", { name: "Copy opt-in link" }).click();
  await page.getByText("Copied").first().waitFor();
  assert.match(await page.getByLabel("HTML snippet").inputValue(), /Msg &amp; data rates may apply/);
  assert.match(await page.getByLabel("Embed code").inputValue(), /<iframe/);
  await page.getByRole("img", { name: /QR code/ }).waitFor();
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Download QR code (SVG)" }).click(),
  ]);
  const svg = fs.readFileSync(await download.path(), "utf8");
  assert.match(svg, /<svg/);
  const preview = page.frameLocator("iframe[title^='Preview of your opt-in form']");
  await preview.getByRole("heading", { name: /Get text messages from/ }).waitFor();
  await checkAccessibility(page, "opt-in tools");
  await shot("06-opt-in-tools");
});

test("the hosted opt-in form starts a double opt-in and tells the customer to check their phone", async () => {
  const customer = await context.newPage();
  await customer.goto(`${base}/optin/${tenant.slug}?page=https://acme.example/offers`);
  await checkAccessibility(customer, "opt-in form");
  await customer.getByRole("button", { name: "Sign up" }).click();
  await customer.getByText("Tick the box to agree").waitFor();
  await customer.getByLabel("Mobile phone number").fill("(512) 555-0177");
  await customer.getByRole("checkbox").check();
  await shot("07-opt-in-form", customer);
  await customer.getByRole("button", { name: "Sign up" }).click();
  await customer.getByRole("heading", { name: "Check your phone" }).waitFor();
  await customer.close();
  const consent = await api("GET", `/consent/${encodeURIComponent(FORM_PHONE)}`, tenant.api_key);
  assert.equal(consent.marketing.status, "pending");
  const ev = consent.events.at(-1);
  assert.equal(ev.source, "web_form");
  assert.equal(ev.evidence.page, "https://acme.example/offers");
});

test("a STOP shows in the conversation view", async () => {
  await api("POST", "/simulator/inbound", tenant.api_key, {
    from: "5125550142",
    to: MK,
    body: "STOP",
  });
  await page.getByRole("link", { name: "Conversations" }).click();
  await page.getByLabel("Open a phone's conversation").fill("(512) 555-0142");
  await page.getByRole("button", { name: "Open" }).click();
  await page.getByRole("heading", { level: 1, name: /Conversation with/ }).waitFor();
  await page.getByText("Marketing: Opted out by STOP").waitFor();
  await page.getByText("Marketing: Opted in by YES").waitFor();
  await checkAccessibility(page, "conversation");
  await shot("08-conversation");
});

test("the compliance page filters the ledger and exports it as CSV", async () => {
  await page.getByRole("link", { name: "Compliance" }).click();
  await page.getByRole("heading", { level: 1, name: "Compliance" }).waitFor();
  await checkAccessibility(page, "compliance");
  await shot("09-compliance");
  await page.getByLabel("Phone").fill("(512) 555-0177");
  await page.getByRole("button", { name: "Apply filters" }).click();
  await page.getByRole("cell", { name: "Web form" }).first().waitFor();
  await page.getByRole("link", { name: "Clear" }).click();
  const [download] = await Promise.all([
    page.waitForEvent("download"),
    page.getByRole("link", { name: "Export CSV" }).click(),
  ]);
  assert.match(download.suggestedFilename(), /consent-ledger\.csv$/);
  const csv = fs.readFileSync(await download.path(), "utf8");
  const lines = csv.trim().split("\n");
  assert.match(lines[0], /^seq,occurred_at,phone,channel,old_state,new_state,source,actor/);
  assert.ok(lines.some((l) => l.includes(",keyword,") && l.includes(",STOP,")), csv);
  assert.ok(lines.some((l) => l.includes(",web_form,")), csv);
});

test("switch Marketing updates off, then record an opt-out that came by phone", async () => {
  const key = tenant.api_key;
  const c = await api("POST", "/customers", key, {
    name: "Robin Ortiz",
    phones: [{ number: "(512) 555-0188", marketing_updates: false }],
  });
  // The customer texts the link phrase: written consent turns Marketing updates on.
  await api("POST", "/simulator/inbound", key, {
    from: "5125550188",
    to: MK,
    body: "I would like to sign up for marketing text messages!",
  });
  await page.goto(`${base}/customers/${c.id}`);
  assert.equal(await marketingStatus(), "Opted in");
  await page.getByRole("button", { name: "Notifications" }).click();
  const marketing = page.getByLabel("Marketing updates");
  assert.equal(await marketing.isChecked(), true, "written consent turned the switch on");
  await page.getByText("only the customer's own YES is").waitFor();
  // A person who turns the switch off passes on the customer's "no more marketing".
  await marketing.uncheck();
  await page.getByRole("button", { name: "Save" }).click();
  await page.getByText("Notification preferences saved.").waitFor();
  assert.equal(await marketingStatus(), "Opted out");
  await page.getByRole("cell", { name: "Consent withdrawn" }).first().waitFor();
  await shot("15-marketing-updates-off");

  // The customer then called to stop every text.
  await page.getByRole("button", { name: "Record opt-out" }).click();
  const form = page.locator('form[action$="/opt-out"]');
  await form.getByLabel("All texts").check();
  await form.getByLabel("How it came in").selectOption("phone_call");
  await form.getByLabel("Note").fill("Called the office on Monday");
  await shot("16-record-opt-out");
  await form.getByRole("button", { name: "Record opt-out" }).click();
  await page.getByText("Opt-out recorded in the consent history").waitFor();
  await page.getByRole("cell", { name: "All texts stopped" }).first().waitFor();
  const consent = await api("GET", `/consent/${encodeURIComponent("+15125550188")}`, key);
  assert.equal(consent.transactional.opted_out, true);
  const last = consent.events.at(-1);
  assert.equal(last.source, "customer_record");
  assert.equal(last.evidence.rule, "phone_call");
  assert.equal(last.evidence.text, "Called the office on Monday");
  assert.notEqual(last.actor, "api", "the person who recorded it is the actor");
  await checkAccessibility(page, "customer record after an opt-out");
  await shot("17-consent-history-after-opt-out");
});

test("registrations, campaigns, and signing out", async () => {
  await page.getByRole("link", { name: "Registrations" }).click();
  assert.equal((await page.getByTestId("texting-status").textContent()).trim(), "Approved");
  assert.equal((await page.getByTestId("marketing-status").textContent()).trim(), "Approved");
  assert.equal(await page.getByText("Sending is blocked").count(), 0);
  await checkAccessibility(page, "registrations");
  await shot("10-registrations");

  // The composer shows the final body with the STOP footer and its segments as you type.
  await page.getByRole("link", { name: "Campaigns" }).click();
  await page.getByRole("link", { name: "New campaign", exact: true }).click();
  await page.getByLabel("Campaign name").fill("Spring tune-up");
  await page.getByLabel("Message").fill("Hi {first_name|there}, 10% off AC tune-ups this week.");
  await page
    .locator("#preview-body")
    .getByText("Hi Dana, 10% off AC tune-ups this week. Reply STOP to opt out")
    .waitFor();
  await page.locator("#preview-segments").getByText("1 segment").waitFor();
  await page.getByLabel("Message").fill("Hi {first_name|there} ☀️ ".repeat(8));
  await page.locator("#preview-segments").getByText(/^[2-9] segments .* UCS-2$/).waitFor();
  await page.getByLabel("Message").fill("Hi {first_name|there}, 10% off AC tune-ups this week.");
  await page.locator("#preview-segments").getByText(/^1 segment .* GSM-7$/).waitFor();
  await checkAccessibility(page, "campaign composer");
  await shot("11-campaign-composer");
  await page.getByRole("button", { name: "Create campaign" }).click();
  await page.getByRole("heading", { level: 1, name: "Spring tune-up" }).waitFor();
  const { campaigns } = await api("GET", "/campaigns", tenant.api_key);
  assert.ok(page.url().endsWith(campaigns[0].id));
  await checkAccessibility(page, "campaign report");
  await shot("12-campaign");

  await page.getByRole("link", { name: "Settings" }).click();
  await page.getByRole("heading", { level: 1, name: "Settings" }).waitFor();
  await page.getByLabel("Help contact").fill("512-555-0100");
  await page.getByRole("button", { name: "Save settings" }).click();
  await page.getByText("Settings saved.").waitFor();
  await checkAccessibility(page, "settings");
  await shot("13-settings");

  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login$/);
  await page.goto(`${base}/customers`);
  assert.match(page.url(), /\/login\?next=/);
});

test("a business not yet registered sees the banner and fills in the registration forms", async () => {
  const other = await api("POST", "/tenants", ADMIN, {
    name: "Newco Pest Control",
    time_zone: "America/Denver",
  });
  const made = spawnSync(
    bin,
    ["user", "create", "--tenant", other.slug, "--email", "owner@newco.example"],
    { env: env({ ASSENT_PASSWORD: PASSWORD }), encoding: "utf8" },
  );
  assert.equal(made.status, 0, made.stderr);
  await page.goto(`${base}/login`);
  await page.getByLabel("Email").fill("owner@newco.example");
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.waitForURL(`${base}/customers`);
  const banner = page.getByRole("alert").filter({ hasText: "Sending is blocked" });
  await banner.getByText("Texting is blocked").waitFor();
  await banner.getByText("Marketing is blocked").waitFor();
  await banner.getByRole("link", { name: "Go to Registrations" }).click();
  await checkAccessibility(page, "registrations (not submitted)");
  await shot("14-registrations-not-submitted");

  await page.getByLabel("Legal business name").fill("Newco Pest Control LLC");
  await page.getByLabel("EIN (employer identification number)").fill("98-7654321");
  await page.getByLabel("Business address").fill("5 Elm St, Denver, CO");
  await page.getByLabel("Website").fill("https://newco.example");
  await page.getByLabel("Contact email").fill("owner@newco.example");
  await page.getByLabel("How you text customers").fill("service reminders");
  await page.locator("#texting-sample_messages").fill("Newco: your technician arrives at 9");
  await page.getByRole("button", { name: "Submit Register for Texting" }).click();
  await page.getByText("Submitted.").waitFor();
  assert.equal((await page.getByTestId("texting-status").textContent()).trim(), "Pending review");
  await page.getByText("waiting for approval").first().waitFor();
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.waitForURL(/\/login$/);
});
