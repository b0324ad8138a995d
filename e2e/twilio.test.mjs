// Twilio's official Node library (`twilio` from npm), unmodified, against Assent's
// Twilio-compatible API (CONTRACT.md "Twilio-compatible sending"; README "Point your Twilio
// code at Assent"). No browser: this file does not use harness.mjs, whose hooks open one.
//
// Starts the assent binary (ASSENT_BIN, see `bin`) on a temporary SQLite file (or
// ASSENT_DATABASE_URL) and a free port, makes a tenant through the API, then through the
// library: sends a message, gets Twilio error 21610 for an opted-out number and 20003 for a
// wrong key, receives the status callbacks on a local HTTP server and checks each with the
// library's own `validateRequest`, reads the message back and lists messages (paging through
// `next_page_uri`). The snippet between the README markers below must appear in README.md
// word for word, after the `import` line.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import twilio from "twilio";

const here = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(here), "..");
// ASSENT_BIN, else the release build, else the debug build (what scripts/test passes).
const bin = process.env.ASSENT_BIN
  ? path.resolve(process.env.ASSENT_BIN)
  : ["target/release/assent", "target/debug/assent"]
      .map((p) => path.join(root, p))
      .find((p) => fs.existsSync(p)) ?? path.join(root, "target/release/assent");
const ADMIN = "twilio-node-admin";
const TX = "+15125550100";
const MK = "+15125550101";
const PHONE = "+15125550142";
const OPTED_OUT = "+15125550143";

let server, dir, hooks, base, hookPort;
const serverLog = [];
/** Every status callback received: { path, form, signature }. */
const received = [];

function freePort() {
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

/** Polls until `check` returns a truthy value; the bound is against a hang. */
async function eventually(check, what, ms = 120000) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    const v = await check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`timed out waiting for ${what}\n${serverLog.join("").slice(-3000)}`);
}

async function api(method, route, key, body) {
  const res = await fetch(`${base}/api/v1${route}`, {
    method,
    headers: {
      authorization: `Bearer ${key}`,
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${text}`);
  return text ? JSON.parse(text) : null;
}

before(async () => {
  assert.ok(fs.existsSync(bin), `${bin} is missing: run cargo build first`);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "assent-twilio-node-"));
  hooks = http.createServer((req, res) => {
    let body = "";
    req.on("data", (d) => (body += d));
    req.on("end", () => {
      received.push({
        path: req.url,
        form: Object.fromEntries(new URLSearchParams(body)),
        signature: req.headers["x-twilio-signature"] || "",
      });
      res.writeHead(204).end();
    });
  });
  await new Promise((r) => hooks.listen(0, "127.0.0.1", r));
  hookPort = hooks.address().port;

  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  const env = {
    ...process.env,
    ASSENT_DATABASE_URL:
      process.env.ASSENT_DATABASE_URL || `sqlite://${path.join(dir, "twilio.db")}`,
    ASSENT_BIND: `127.0.0.1:${port}`,
    ASSENT_PUBLIC_URL: base,
    ASSENT_ADMIN_TOKEN: ADMIN,
    ASSENT_PROVIDER: "simulator",
    ASSENT_WEBHOOK_ALLOW_PRIVATE: "1",
    RUST_LOG: "warn",
  };
  delete env.ASSENT_TWILIO_AUTH_TOKEN;
  // The library reads these from the environment; none may move its requests elsewhere.
  for (const k of ["TWILIO_EDGE", "TWILIO_REGION", "TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"]) {
    delete process.env[k];
  }
  server = spawn(bin, ["serve"], { env, cwd: dir, stdio: ["ignore", "pipe", "pipe"] });
  server.stdout.on("data", (d) => serverLog.push(String(d)));
  server.stderr.on("data", (d) => serverLog.push(String(d)));
  await eventually(async () => {
    try {
      return (await fetch(`${base}/healthz`)).ok;
    } catch {
      return false;
    }
  }, "the server to answer");
});

after(async () => {
  if (server) {
    server.kill("SIGTERM");
    await new Promise((r) => {
      const t = setTimeout(() => {
        server.kill("SIGKILL");
        r();
      }, 10000);
      server.on("exit", () => {
        clearTimeout(t);
        r();
      });
    });
  }
  hooks?.close();
  if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

test("Twilio's Node library sends, is refused, validates the callbacks and lists", async () => {
  const t = await api("POST", "/tenants", ADMIN, { name: "Node Plumbing" });
  const key = t.api_key;
  await api("PUT", "/senders", key, { transactional: TX, marketing: MK });
  await api("PUT", "/registrations/texting", key, {
    legal_name: "Node Plumbing LLC",
    ein: "12-3456789",
    address: "1 Main St, Austin, TX",
    website: "https://node.example",
    contact_email: "a@node.example",
    use_case: "job notifications",
    sample_messages: ["Node Plumbing: your plumber is on the way"],
  });
  await api("POST", `/tenants/${t.id}/registrations/texting/decision`, ADMIN, {
    status: "approved",
  });
  for (const number of [PHONE, OPTED_OUT]) {
    await api("POST", "/customers", key, {
      name: "Dana",
      phones: [{ number, job_notifications: true }],
    });
  }
  await api("POST", `/consent/${encodeURIComponent(OPTED_OUT)}/opt-out`, key, {
    scope: "all",
    method: "phone_call",
  });
  const accountSid = (await api("GET", "/settings", key)).account_sid;
  const [assentUrl, apiKey] = [base, key];
  const callbackUrl = `http://127.0.0.1:${hookPort}/twilio/status?job=42`;

  // README snippet start
  const client = twilio(accountSid, apiKey); // Assent's account SID; the tenant API key
  client.api.baseUrl = assentUrl; // e.g. https://assent.example.com

  const message = await client.messages.create({
    to: "+15125550142",
    from: "+15125550100",
    body: "Your plumber is on the way",
    statusCallback: callbackUrl,
  });
  console.log(message.sid, message.status); // SM…, queued
  // README snippet end

  const readme = fs.readFileSync(path.join(root, "README.md"), "utf8");
  const snippet = fs
    .readFileSync(here, "utf8")
    .split("  // README snippet start\n")[1]
    .split("  // README snippet end")[0]
    .split("\n")
    .map((line) => line.slice(2))
    .join("\n")
    .trim();
  assert.ok(
    readme.includes(`import twilio from "twilio";\n\n${snippet}\n`),
    "README.md's Node snippet differs from the one this test runs",
  );

  assert.match(message.sid, /^SM[0-9a-f]{32}$/);
  assert.equal(message.status, "queued");
  assert.equal(message.accountSid, accountSid);

  // An opted-out number: Twilio's 21610, raised by the library as Twilio raises it.
  await assert.rejects(
    client.messages.create({ to: OPTED_OUT, from: TX, body: "Hello again" }),
    (e) => {
      assert.equal(e.code, 21610, e.message);
      assert.equal(e.status, 400);
      return true;
    },
  );

  // A wrong key: Twilio's 20003.
  const wrong = twilio(accountSid, "not-the-key");
  wrong.api.baseUrl = assentUrl;
  await assert.rejects(wrong.messages.create({ to: PHONE, from: TX, body: "x" }), (e) => {
    assert.equal(e.code, 20003, e.message);
    assert.equal(e.status, 401);
    return true;
  });

  // The status callbacks, signed with the API key as the auth token.
  await eventually(
    () => received.some((r) => ["sent", "delivered"].includes(r.form.MessageStatus)),
    "a sent or delivered status callback",
  );
  for (const { path: p, form, signature } of received) {
    const url = `http://127.0.0.1:${hookPort}${p}`;
    assert.ok(twilio.validateRequest(apiKey, signature, url, form), `signature refused: ${url}`);
    assert.ok(
      !twilio.validateRequest("another-token", signature, url, form),
      "another token's check fails",
    );
    assert.equal(form.MessageSid, message.sid);
    assert.equal(form.AccountSid, accountSid);
    assert.equal(form.To, PHONE);
  }

  // Reading it back, and the list, through the library.
  const fetched = await client.messages(message.sid).fetch();
  assert.ok(["sent", "delivered"].includes(fetched.status), fetched.status);
  const listed = await client.messages.list({ to: PHONE, limit: 20 });
  assert.deepEqual(
    listed.map((m) => m.sid),
    [message.sid],
  );
  assert.deepEqual(await client.messages.list({ to: OPTED_OUT, limit: 20 }), []);
  for (let i = 0; i < 3; i++) {
    await client.messages.create({ to: PHONE, from: TX, body: `Update ${i}` });
  }
  const paged = await client.messages.list({ to: PHONE, pageSize: 2 }); // follows next_page_uri
  assert.equal(paged.length, 4);
  assert.equal(new Set(paged.map((m) => m.sid)).size, 4);
  const midnight = new Date(new Date().toISOString().slice(0, 10));
  const since = await client.messages.list({ to: PHONE, dateSentAfter: midnight });
  assert.equal(since.length, 4, "DateSent> (on or after this UTC midnight) keeps today's");
  const before = await client.messages.list({ to: PHONE, dateSentBefore: midnight });
  assert.deepEqual(before, [], "DateSent< (on or before this UTC midnight) keeps none");
});
