// Proof of consent in a real browser: the customer record's "Proof of consent" button opens
// the printable bundle, and Chromium prints it to PDF (page.pdf(), the browser's own
// print-to-PDF) without error. Uses the shared set-up in harness.mjs.

import { test } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";
import {
  base, page, tenant, customerId, PHONE, shots,
  api, signIn, checkAccessibility, shot,
} from "./harness.mjs";

test("the customer record opens the proof of consent, which prints to PDF", async () => {
  // Something to prove: an opt-out recorded through the API.
  await api("POST", `/consent/${encodeURIComponent(PHONE)}/opt-out`, tenant.api_key, {
    scope: "marketing",
    method: "phone_call",
    note: "Asked on the phone not to get offers",
  });
  const proof = await api("GET", `/consent/${encodeURIComponent(PHONE)}/proof`, tenant.api_key);
  assert.equal(proof.chain.verified, true);

  await signIn();
  await page.goto(`${base}/customers/${customerId}`);
  await page.getByRole("link", { name: "Proof of consent" }).click();
  await page.getByRole("heading", { level: 1, name: "Proof of consent" }).waitFor();
  assert.match(page.url(), /\/proof$/);
  assert.equal((await page.getByTestId("proof-head").textContent()).trim(), proof.chain.head);
  assert.match(await page.getByTestId("proof-chain").textContent(), /verified/);
  assert.match(await page.getByTestId("proof-entries").textContent(), /Asked on the phone/);
  await checkAccessibility(page, "proof of consent");
  await shot("proof-of-consent");

  // Printed, the page's on-screen hint is hidden and the file is a PDF.
  assert.equal(await page.locator(".actions").isVisible(), true);
  await page.emulateMedia({ media: "print" });
  assert.equal(await page.locator(".actions").isVisible(), false, "the print stylesheet applies");
  const file = path.join(shots, "proof-of-consent.pdf");
  const pdf = await page.pdf({ path: file, format: "A4", printBackground: true });
  await page.emulateMedia({ media: "screen" });
  assert.ok(pdf.length > 2000, `a PDF of ${pdf.length} bytes`);
  assert.equal(pdf.subarray(0, 5).toString("latin1"), "%PDF-");
  assert.ok(fs.statSync(file).size === pdf.length);
});
