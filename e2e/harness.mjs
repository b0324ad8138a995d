// Shared set-up of the browser tests: importing this module registers hooks that start
// the assent binary (ASSENT_BIN, see `bin`) on a temporary SQLite file and a free port, make a
// tenant "Acme Plumbing & Air" through the API (senders, both registrations approved, one
// customer "Dana Whitfield") and a user with `assent user create`, and open headless
// Chromium (or CHROMIUM) at 1280 px. `signIn()` signs that user in; `mobilePage()` opens a
// 375 px page in the same session. Each *.test.mjs file runs in its own process with its
// own server.

import { before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
// ASSENT_BIN (relative to the directory npm runs in), else the release build, else the
// debug build (what scripts/test passes).
export const bin = process.env.ASSENT_BIN
  ? path.resolve(process.env.ASSENT_BIN)
  : ["target/release/assent", "target/debug/assent"]
      .map((p) => path.join(root, p))
      .find((p) => fs.existsSync(p)) ?? path.join(root, "target/release/assent");
export const shots = path.join(root, "artifacts/screenshots");
export const ADMIN = "e2e-admin-token";
export const EMAIL = "manager@acme.example";
export const PASSWORD = "e2e correct horse";
export const TX = "+15125550100";
export const MK = "+15125550101";
export const PHONE = "+15125550142";
export const FORM_PHONE = "+15125550177";

let server, dir, browser;
export let base, context, page, tenant, customerId;
export const serverLog = [];

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.unref();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

export function env(extra = {}) {
  return {
    ...process.env,
    ASSENT_DATABASE_URL: `sqlite://${path.join(dir, "e2e.db")}`,
    ASSENT_ADMIN_TOKEN: ADMIN,
    ASSENT_PROVIDER: "simulator",
    RUST_LOG: "warn",
    ...extra,
  };
}

export async function api(method, route, key, body) {
  const res = await fetch(`${base}/api/v1${route}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  let json;
  try {
    json = JSON.parse(text);
  } catch {
    json = text;
  }
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
  return json;
}

/** Polls until `check` returns a truthy value (the send worker runs on its own). */
export async function eventually(check, what, ms = 60000) {
  const end = Date.now() + ms;
  let last;
  while (Date.now() < end) {
    last = await check();
    if (last) return last;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Every visible form control has a label, text is readable (WCAG AA contrast), the page has
 *  exactly one h1, a lang and a title. */
const axeSource = fs.readFileSync(
  createRequire(import.meta.url).resolve("axe-core"),
  "utf8",
);

/** Runs axe-core on the page and fails on any violation, naming each. Evaluated through
 *  the DevTools protocol, which the pages' CSP (no inline scripts) rightly does not let a
 *  <script> tag do. */
export async function axe(p, name) {
  await p.evaluate(axeSource);
  const violations = await p.evaluate(async () => {
    const r = await window.axe.run(document);
    return r.violations.map(
      (v) => `${v.id}: ${v.help} (${v.nodes.map((n) => n.target.join(" ")).join(", ")})`,
    );
  });
  assert.deepEqual(violations, [], `axe-core violations on ${name}`);
}

export async function checkAccessibility(p, name) {
  await axe(p, name);
  const problems = await p.evaluate(() => {
    const out = [];
    const controls = document.querySelectorAll(
      "input:not([type=hidden]), select, textarea, button",
    );
    for (const el of controls) {
      const labelled =
        (el.id && document.querySelector(`label[for="${CSS.escape(el.id)}"]`)) ||
        el.closest("label") ||
        el.getAttribute("aria-label") ||
        el.getAttribute("aria-labelledby") ||
        (el.tagName === "BUTTON" && el.textContent.trim());
      if (!labelled) out.push(`unlabelled ${el.outerHTML.slice(0, 80)}`);
    }
    for (const s of document.querySelectorAll("summary")) {
      if (!s.textContent.trim()) out.push("empty summary");
    }
    for (const f of document.querySelectorAll("iframe")) {
      if (!f.getAttribute("title")) out.push("iframe without title");
    }
    // Text contrast (WCAG AA): 4.5:1, or 3:1 for large text, against the first opaque
    // background behind the text.
    const rgb = (c) => (c.match(/[\d.]+/g) || []).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => {
        v /= 255;
        return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const background = (el) => {
      for (let e = el; e; e = e.parentElement) {
        const c = rgb(getComputedStyle(e).backgroundColor);
        if (c.length === 3 || (c.length === 4 && c[3] === 1)) return c.slice(0, 3);
      }
      return [255, 255, 255];
    };
    for (const el of document.querySelectorAll("body *")) {
      const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
      const style = getComputedStyle(el);
      if (!own || style.visibility === "hidden" || style.display === "none") continue;
      if (!el.getClientRects().length || el.closest("[aria-hidden=true]")) continue;
      if (el.closest(":disabled")) continue; // WCAG exempts inactive controls
      const fg = rgb(style.color).slice(0, 3);
      const [a, b] = [lum(fg), lum(background(el))].sort((x, y) => y - x);
      const ratio = (a + 0.05) / (b + 0.05);
      const size = parseFloat(style.fontSize);
      const large = size >= 24 || (size >= 18.66 && Number(style.fontWeight) >= 700);
      if (ratio < (large ? 3 : 4.5)) {
        out.push(`low contrast ${ratio.toFixed(2)}: ${el.tagName} "${el.textContent.trim().slice(0, 40)}"`);
      }
    }
    const h1 = document.querySelectorAll("h1").length;
    if (h1 !== 1) out.push(`${h1} h1 elements`);
    if (!document.documentElement.lang) out.push("no lang");
    if (!document.title) out.push("no title");
    return out;
  });
  assert.deepEqual(problems, [], `accessibility problems on ${name}`);
}

export async function shot(name, p = page) {
  await p.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

before(async () => {
  assert.ok(fs.existsSync(bin), `${bin} is missing: run cargo build --release first`);
  fs.mkdirSync(shots, { recursive: true });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "assent-e2e-"));
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = spawn(bin, ["serve"], {
    env: env({ ASSENT_BIND: `127.0.0.1:${port}` }),
    stdio: ["ignore", "pipe", "pipe"],
  });
  server.stdout.on("data", (d) => serverLog.push(String(d)));
  server.stderr.on("data", (d) => serverLog.push(String(d)));
  await eventually(
    async () => {
      try {
        return (await fetch(`${base}/healthz`)).ok;
      } catch {
        return false;
      }
    },
    "the server to answer",
    20000,
  );

  // A tenant set up through the API, as an operator and the tenant's integration would.
  tenant = await api("POST", "/tenants", ADMIN, {
    name: "Acme Plumbing & Air",
    time_zone: "America/Chicago",
  });
  const key = tenant.api_key;
  await api("PUT", "/senders", key, { transactional: TX, marketing: MK });
  await api("PUT", "/registrations/texting", key, {
    legal_name: "Acme Plumbing LLC",
    ein: "12-3456789",
    address: "1 Main St, Austin, TX",
    website: "https://acme.example",
    contact_email: "owner@acme.example",
    use_case: "job notifications and offers",
    sample_messages: ["Acme Plumbing: your plumber is on the way"],
  });
  await api("PUT", "/registrations/marketing", key, {
    brand: "Acme Plumbing",
    campaign_description: "seasonal offers",
    opt_in_flow: "double opt-in",
    sample_messages: ["Acme Plumbing: 10% off AC tune-ups this week"],
  });
  for (const kind of ["texting", "marketing"]) {
    await api("POST", `/tenants/${tenant.id}/registrations/${kind}/decision`, ADMIN, {
      status: "approved",
    });
  }
  const c = await api("POST", "/customers", key, {
    name: "Dana Whitfield",
    phones: [{ number: "(512) 555-0142" }],
    address: "1 Main St, Austin, TX",
    tags: ["hvac"],
  });
  customerId = c.id;

  const made = spawnSync(
    bin,
    ["user", "create", "--tenant", tenant.slug, "--email", EMAIL],
    { env: env({ ASSENT_PASSWORD: PASSWORD }), encoding: "utf8" },
  );
  assert.equal(made.status, 0, `assent user create: ${made.stderr}`);
  assert.equal(JSON.parse(made.stdout).email, EMAIL);

  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
  context = await browser.newContext({
    viewport: { width: 1280, height: 900 },
    acceptDownloads: true,
  });
  page = await context.newPage();
  page.setDefaultTimeout(30000);
});

after(async () => {
  await browser?.close();
  if (server) {
    server.kill("SIGTERM");
    await new Promise((r) => {
      const t = setTimeout(() => {
        server.kill("SIGKILL");
        r();
      }, 5000);
      server.on("exit", () => {
        clearTimeout(t);
        r();
      });
    });
  }
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** Signs the tenant's user in on `p` (the shared page by default). */
export async function signIn(p = page) {
  await p.goto(`${base}/login`);
  await p.getByLabel("Email").fill(EMAIL);
  await p.getByLabel("Password").fill(PASSWORD);
  await p.getByRole("button", { name: "Sign in" }).click();
  await p.waitForURL((u) => !u.pathname.startsWith("/login"));
}

/** A 375 px wide page sharing the signed-in session's cookies. */
export async function mobilePage() {
  const p = await context.newPage();
  await p.setViewportSize({ width: 375, height: 800 });
  p.setDefaultTimeout(30000);
  return p;
}
