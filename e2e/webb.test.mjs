// Browser tests of issue 18's second part: transactional campaigns in the composer, the
// estimates list, the Overview, the Team page, the API reference and the mobile layout —
// at 1280 px and 375 px, with screenshots, and axe-core on every page (any violation fails).

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  api,
  axe,
  base,
  customerId,
  mobilePage,
  page,
  shot,
  signIn,
  tenant,
} from "./harness.mjs";

let reportUrl;

test("the composer activates, pauses and resumes an unsold-estimates follow-up", async () => {
  await signIn();
  await page.goto(`${base}/campaigns/new`);
  for (const kind of ["Marketing", "Unsold estimates", "Recurring services", "Missed calls"]) {
    await page.getByRole("link", { name: kind, exact: true }).waitFor();
  }
  await axe(page, "/campaigns/new");
  await page.getByRole("link", { name: "Unsold estimates", exact: true }).click();
  await page.getByRole("heading", { name: "New unsold estimates campaign" }).waitFor();
  await page.getByLabel("Campaign name").fill("Estimate follow-up");
  await page.getByLabel("Message").fill("Hi {first_name|there}, any questions about your estimate?");
  await page.getByLabel("Days after").fill("2, 7, 14");
  // The live preview fills the sample customer in, without the marketing footer.
  await page.locator("#preview-body", { hasText: "Hi Dana, any questions" }).waitFor();
  assert.ok(!(await page.locator("#preview-body").textContent()).includes("STOP"));
  await axe(page, "/campaigns/new?type=unsold_estimates");
  await shot("webb-composer-estimates-1280");
  await page.getByRole("button", { name: "Activate" }).click();
  await page.getByRole("heading", { name: "Estimate follow-up" }).waitFor();
  reportUrl = page.url();
  await page.getByText("Unsold estimates").first().waitFor();
  await page.getByRole("button", { name: "Pause" }).click();
  await page.getByRole("button", { name: "Resume" }).click();
  await page.getByRole("button", { name: "Pause" }).waitFor();
  await axe(page, "campaign report");
  await shot("webb-report-1280");
});

test("an estimate is marked sold on its list", async () => {
  await api("POST", "/estimates", tenant.api_key, {
    customer_id: customerId,
    number: "E-1001",
    amount_cents: 480000,
    status: "unsold",
  });
  await page.goto(`${base}/estimates`);
  await page.getByRole("cell", { name: "E-1001" }).waitFor();
  await axe(page, "/estimates");
  await page.getByRole("button", { name: "Mark sold" }).click();
  await page.getByText("Marked sold").waitFor();
  await page.getByRole("cell", { name: "Sold", exact: true }).waitFor();
  await shot("webb-estimates-1280");
  for (const path of ["/recurring-services", "/calls"]) {
    await page.goto(`${base}${path}`);
    await axe(page, path);
  }
});

test("the overview shows what needs attention and two SVG charts with their tables", async () => {
  await page.goto(`${base}/`);
  await page.getByRole("heading", { name: "Overview" }).waitFor();
  await page.getByRole("heading", { name: "Needs attention" }).waitFor();
  assert.equal(await page.locator("svg.chart[role=img]").count(), 2);
  assert.equal(await page.locator(".chart-table table").count(), 2);
  await axe(page, "/");
  await shot("webb-overview-1280");
});

test("an owner adds a marketer on the Team page", async () => {
  await page.goto(`${base}/team`);
  await page.getByLabel("Email").fill("mia@acme.example");
  await page.getByLabel("Password", { exact: true }).fill("marketer password");
  await page.getByLabel(/^Marketer/).check();
  await page.getByRole("button", { name: "Add user" }).click();
  await page.getByText("User added.").waitFor();
  await page.getByRole("cell", { name: "mia@acme.example", exact: true }).waitFor();
  await axe(page, "/team");
  await shot("webb-team-1280");
});

test("the API reference is rendered by the server", async () => {
  await page.goto(`${base}/docs`);
  await page.getByRole("heading", { name: "POST /api/v1/campaigns", exact: true }).waitFor();
  await axe(page, "/docs");
  const icon = await fetch(`${base}/favicon.svg`);
  assert.equal(icon.headers.get("content-type"), "image/svg+xml");
});

test("at 375 px the menu folds, tables stack and the preview sits above the buttons", async () => {
  const m = await mobilePage();
  await m.goto(`${base}/`);
  const nav = m.getByRole("navigation", { name: "Main" });
  assert.equal(await nav.isVisible(), false, "the navigation is folded");
  await m.locator("label.nav-button").click();
  await nav.getByRole("link", { name: "Campaigns" }).waitFor({ state: "visible" });
  await shot("webb-menu-375", m);
  await axe(m, "/ at 375 px");

  await m.goto(reportUrl);
  await axe(m, "report at 375 px");
  await shot("webb-report-375", m);
  const width = await m.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 375, `the report fits the screen (${width} px)`);

  await m.goto(`${base}/campaigns/new?type=recurring_services`);
  const preview = await m.locator("#preview-title").boundingBox();
  const buttons = await m.getByRole("button", { name: "Activate" }).boundingBox();
  assert.ok(preview.y < buttons.y, "the preview is above the buttons");
  await axe(m, "composer at 375 px");
  await shot("webb-composer-375", m);

  for (const path of ["/team", "/estimates", "/docs"]) {
    await m.goto(`${base}${path}`);
    await axe(m, `${path} at 375 px`);
  }
  await shot("webb-team-375", m);
  await m.close();
});
