#!/usr/bin/env python3
"""Twilio's official Python library, unmodified, against Assent's Twilio-compatible API
(CONTRACT.md "Twilio-compatible sending"; README "Point your Twilio code at Assent").

Starts the assent binary (ASSENT_BIN, default target/release/assent, else target/debug/assent)
on a fresh SQLite file (or ASSENT_DATABASE_URL when given), then through `twilio.rest.Client`:
sends a message, gets Twilio error 21610 for an opted-out number, reads the message and the
list, and receives a status callback that the library's own RequestValidator accepts.
The snippet between the README markers below must appear in README.md word for word.
Needs `pip install twilio requests`. Exits non-zero on the first failure.
"""
import http.server, os, socket, subprocess, sys, tempfile, threading, time, urllib.parse

import requests
from twilio.base.exceptions import TwilioRestException
from twilio.request_validator import RequestValidator
from twilio.rest import Client

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ADMIN = "library-test-admin"
TX, MK, PHONE, OPTED_OUT = "+15125550100", "+15125550101", "+15125550142", "+15125550143"


def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); port = s.getsockname()[1]; s.close()
    return port


class Callbacks(http.server.BaseHTTPRequestHandler):
    """Records every status callback: (path, form, X-Twilio-Signature)."""
    received = []

    def do_POST(self):
        n = int(self.headers.get("Content-Length", 0))
        form = dict(urllib.parse.parse_qsl(self.rfile.read(n).decode()))
        Callbacks.received.append((self.path, form, self.headers.get("X-Twilio-Signature", "")))
        self.send_response(204); self.end_headers()

    def log_message(self, *a):
        pass


def main():
    binary = os.environ.get("ASSENT_BIN") or next(
        (p for p in ("target/release/assent", "target/debug/assent") if os.path.exists(os.path.join(ROOT, p))), None)
    if not binary:
        sys.exit("build assent first (cargo build --release)")
    port, hook_port = free_port(), free_port()
    base = f"http://127.0.0.1:{port}"
    tmp = tempfile.mkdtemp()
    env = dict(os.environ, ASSENT_DATABASE_URL=os.environ.get("ASSENT_DATABASE_URL", f"sqlite://{tmp}/lib.db"),
               ASSENT_BIND=f"127.0.0.1:{port}", ASSENT_PUBLIC_URL=base, ASSENT_ADMIN_TOKEN=ADMIN,
               ASSENT_PROVIDER="simulator", ASSENT_WEBHOOK_ALLOW_PRIVATE="1")
    env.pop("ASSENT_TWILIO_AUTH_TOKEN", None)
    hooks = http.server.ThreadingHTTPServer(("127.0.0.1", hook_port), Callbacks)
    threading.Thread(target=hooks.serve_forever, daemon=True).start()
    proc = subprocess.Popen([os.path.join(ROOT, binary), "serve"], env=env, cwd=tmp,
                            stdout=open(f"{tmp}/log", "w"), stderr=subprocess.STDOUT)
    try:
        run(base, hook_port)
        print("twilio library test: ok")
    except Exception:
        print(open(f"{tmp}/log").read()[-3000:], file=sys.stderr)
        raise
    finally:
        proc.terminate(); proc.wait(timeout=60); hooks.shutdown()


def run(base, hook_port):
    for _ in range(1200):
        try:
            if requests.get(base + "/healthz", timeout=1).status_code == 200:
                break
        except requests.RequestException:
            pass
        time.sleep(0.1)

    def api(method, path, body=None, token=None):
        r = requests.request(method, base + "/api/v1" + path, json=body, timeout=30,
                             headers={"Authorization": "Bearer " + token})
        assert r.status_code < 300, (path, r.status_code, r.text)
        return r.json()

    t = api("POST", "/tenants", {"name": "Library Plumbing"}, ADMIN)
    key = t["api_key"]
    api("PUT", "/senders", {"transactional": TX, "marketing": MK}, key)
    api("PUT", "/registrations/texting", {"legal_name": "Library Plumbing LLC", "ein": "12-3456789",
        "address": "1 Main St, Austin, TX", "website": "https://library.example", "contact_email": "a@library.example",
        "use_case": "job notifications", "sample_messages": ["Library Plumbing: your plumber is on the way"]}, key)
    api("POST", f"/tenants/{t['id']}/registrations/texting/decision", {"status": "approved"}, ADMIN)
    for phone in (PHONE, OPTED_OUT):
        api("POST", "/customers", {"name": "Dana", "phones": [{"number": phone, "job_notifications": True}]}, key)
    api("POST", f"/consent/{OPTED_OUT}/opt-out", {"scope": "all", "method": "phone_call"}, key)
    account_sid = api("GET", "/settings", None, key)["account_sid"]
    assent_url, api_key = base, key
    callback_url = f"http://127.0.0.1:{hook_port}/twilio/status?job=42"

    # README snippet start
    from twilio.rest import Client

    client = Client(account_sid, api_key)  # Assent's account SID; the tenant API key
    client.api.base_url = assent_url       # e.g. https://assent.example.com

    message = client.messages.create(
        to="+15125550142",
        from_="+15125550100",
        body="Your plumber is on the way",
        status_callback=callback_url,
    )
    print(message.sid, message.status)  # SM…, queued
    # README snippet end
    readme = open(os.path.join(ROOT, "README.md")).read()
    snippet = open(__file__).read().split("# README snippet start\n")[1].split("    # README snippet end")[0]
    snippet = "\n".join(line[4:] for line in snippet.splitlines())
    assert snippet.strip() in readme, "README.md's Python snippet differs from the one this test runs"

    assert message.sid.startswith("SM") and len(message.sid) == 34, message.sid
    assert message.status == "queued", message.status
    assert message.account_sid == account_sid

    # An opted-out number: Twilio's 21610, raised by the library as Twilio raises it.
    try:
        client.messages.create(to=OPTED_OUT, from_=TX, body="Hello again")
        raise AssertionError("an opted-out number was accepted")
    except TwilioRestException as e:
        assert e.code == 21610 and e.status == 400, (e.code, e.status, e.msg)

    # Bad credentials: Twilio's 20003.
    try:
        bad = Client(account_sid, "not-the-key"); bad.api.base_url = assent_url
        bad.messages.create(to=PHONE, from_=TX, body="x")
        raise AssertionError("a wrong key was accepted")
    except TwilioRestException as e:
        assert e.code == 20003 and e.status == 401, (e.code, e.status)

    # The status callback, signed with the API key as the auth token.
    deadline = time.time() + 300
    while time.time() < deadline and not any(
            f.get("MessageStatus") in ("sent", "delivered") for _, f, _ in Callbacks.received):
        time.sleep(0.2)
    assert Callbacks.received, "no status callback arrived"
    validator = RequestValidator(api_key)
    for path, form, signature in Callbacks.received:
        url = f"http://127.0.0.1:{hook_port}{path}"
        assert validator.validate(url, form, signature), ("signature refused", form)
        assert form["MessageSid"] == message.sid and form["AccountSid"] == account_sid, form
    assert any(f["MessageStatus"] in ("sent", "delivered") for _, f, _ in Callbacks.received)

    # Reading it back, and the list, through the library.
    fetched = client.messages(message.sid).fetch()
    assert fetched.status in ("sent", "delivered"), fetched.status
    listed = client.messages.list(to=PHONE, limit=20)
    assert [m.sid for m in listed] == [message.sid], [m.sid for m in listed]
    assert client.messages.list(to=OPTED_OUT, limit=20) == []
    for i in range(3):
        client.messages.create(to=PHONE, from_=TX, body=f"Update {i}")
    paged = client.messages.list(to=PHONE, page_size=2)  # follows next_page_uri
    assert len(paged) == 4 and len({m.sid for m in paged}) == 4, [m.sid for m in paged]


if __name__ == "__main__":
    main()
