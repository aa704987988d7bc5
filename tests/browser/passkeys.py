#!/usr/bin/env python3
"""Real-browser end-to-end check of authctl's passkey (WebAuthn) API.

    python tests/browser/passkeys.py BASE_URL EMAIL PASSWORD

BASE_URL is the service's public URL, e.g. http://localhost:8080 (WebAuthn needs a domain name;
localhost is a secure context). EMAIL/PASSWORD is an existing, verified account without passkeys.

Debian's Chromium (/usr/bin/chromium) runs headless through Playwright; a CDP virtual authenticator
(CTAP2, internal, resident keys, user verification) stands in for the device. Every request is a
fetch() in a page of BASE_URL, so the cookies, Origin and Sec-Fetch-* headers are the browser's,
and the credentials are what Chromium really sends: PublicKeyCredential.toJSON() of what
navigator.credentials.create/get returned for the options parsed by
PublicKeyCredential.parseCreationOptionsFromJSON/parseRequestOptionsFromJSON.

The page is /healthz, which like every API answer carries `Content-Security-Policy: default-src
'none'`: that would block the page's own fetch() (connect-src), so the browser context bypasses
CSP. A real deployment runs these calls from its own sign-in page, with its own policy; bypassing
changes nothing the service sees (the requests, cookies and headers are Chromium's).

Steps: password login, step-up, passkey registration, the passkey list (and a resident credential
in the authenticator), a discoverable login, a login with the address, a passkey step-up and its
replay. One line per step; exit 0 when all pass, 1 with a message at the first failure, 2 for bad
usage. Needs playwright: run scripts/browser-setup.sh and use <venv>/bin/python.
"""

import base64
import json
import os
import sys
import time
import uuid

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write(
        "passkeys.py: cannot import playwright: run scripts/browser-setup.sh and use the venv's "
        "python (target/browser-venv/bin/python by default)\n"
    )
    sys.exit(1)

CHROMIUM = "/usr/bin/chromium"

# fetch() in the page: the browser's cookies and headers. Returns the status and the body's text.
FETCH_JS = """async ([method, path, body]) => {
  const init = {method, credentials: "same-origin"};
  if (body !== null) {
    init.headers = {"content-type": "application/json"};
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  return {status: response.status, text: await response.text()};
}"""

# The browser's side of a ceremony: parse the JSON options, run the authenticator, serialise.
CREATE_JS = """async (publicKey) => {
  const credential = await navigator.credentials.create({
    publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(publicKey)});
  return credential.toJSON();
}"""

GET_JS = """async (publicKey) => {
  const credential = await navigator.credentials.get({
    publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(publicKey)});
  return credential.toJSON();
}"""


class Failure(Exception):
    pass


def b64_bytes(text):
    """Bytes of a base64 or base64url string, padded or not (CDP uses base64, WebAuthn base64url)."""
    text = text.replace("-", "+").replace("_", "/")
    return base64.b64decode(text + "=" * (-len(text) % 4))


class Check:
    def __init__(self, page, cdp, authenticator_id, console):
        self.page = page
        self.console = console  # the page's console messages, for failures inside the page
        self.cdp = cdp
        self.authenticator_id = authenticator_id
        self.step = "setup"

    def fetch(self, method, path, body=None, expect=200):
        """One request from the page; fails unless the status is `expect`. Returns the parsed body."""
        self.console.clear()
        try:
            result = self.page.evaluate(FETCH_JS, [method, path, body])
        except PlaywrightError as exc:
            raise Failure(f"{method} {path}: fetch() failed in the page: {exc.message}{self.recent()}") from None
        status, text = result["status"], result["text"]
        if status != expect:
            sent = "no body" if body is None else json.dumps(body)
            raise Failure(
                f"{method} {path} answered {status}, expected {expect}\n"
                f"  request body: {sent}\n  response body: {text or '(empty)'}"
            )
        if not text:
            return None
        try:
            return json.loads(text)
        except ValueError:
            raise Failure(f"{method} {path} answered {status} with a body that is not JSON: {text}") from None

    def ceremony(self, script, start, what):
        """Runs navigator.credentials.create/get on a start answer's options; the credential JSON."""
        if not isinstance(start, dict) or "publicKey" not in start or "ceremonyId" not in start:
            raise Failure(f"{what}: the start answer lacks publicKey or ceremonyId: {json.dumps(start)}")
        self.console.clear()
        try:
            return self.page.evaluate(script, start["publicKey"])
        except PlaywrightError as exc:
            raise Failure(
                f"{what}: the browser refused the options: {exc.message}\n"
                f"  options: {json.dumps(start['publicKey'])}{self.recent()}"
            ) from None

    def recent(self):
        """The page's last console messages, for a failure's message; empty when there are none."""
        lines = self.console[-5:]
        return "".join(f"\n  console {line}" for line in lines)

    def credentials(self):
        return self.cdp.send("WebAuthn.getCredentials", {"authenticatorId": self.authenticator_id})[
            "credentials"
        ]

    def expect(self, condition, message):
        if not condition:
            raise Failure(message)


def run(check, email, password):
    def step(name):
        check.step = name
        return time.monotonic()

    def done(name, started, detail=""):
        suffix = f": {detail}" if detail else ""
        print(f"ok   {name} ({time.monotonic() - started:.2f}s){suffix}", flush=True)

    # a. password login
    t = step("a. password login")
    login = check.fetch("POST", "/login", {"email": email, "password": password})
    check.expect(login.get("twoFactorRequired") is False, f"POST /login asks for a second factor: {login}")
    me = check.fetch("GET", "/me")
    check.expect(me.get("email") == email, f"GET /me after login is {me}, not {email}")
    account_id = me["id"]
    existing = check.fetch("GET", "/me/passkeys")
    check.expect(
        existing == [],
        f"{email} already has {len(existing)} passkey(s): this check needs an account without any",
    )
    done(check.step, t, f"POST /login 200, GET /me {email}, no passkeys yet")

    # b. step-up with the password
    t = step("b. step-up with the password")
    confirm = check.fetch("POST", "/auth/confirm", {"password": password})
    check.expect(confirm.get("confirmed") is True, f"POST /auth/confirm answered {confirm}")
    done(check.step, t, "POST /auth/confirm 200")

    # c. registration
    t = step("c. passkey registration")
    start = check.fetch("POST", "/me/passkeys/register/start", {})
    options = start.get("publicKey", {}) if isinstance(start, dict) else {}
    credential = check.ceremony(CREATE_JS, start, "navigator.credentials.create")
    registered = check.fetch(
        "POST",
        "/me/passkeys/register/finish",
        {"ceremonyId": start["ceremonyId"], "name": "Chromium", "credential": credential},
        expect=201,
    )
    check.expect(registered.get("name") == "Chromium", f"the registered passkey is {registered}")
    check.expect(
        b64_bytes(registered.get("credentialId", "")) == b64_bytes(credential["rawId"]),
        f"the registered passkey's credentialId {registered.get('credentialId')} is not the browser's "
        f"rawId {credential['rawId']}",
    )
    selection = options.get("authenticatorSelection", {})
    done(
        check.step,
        t,
        f"201, residentKey {selection.get('residentKey')!r}, userVerification "
        f"{selection.get('userVerification')!r}, transports {credential['response'].get('transports')}",
    )

    # d. the list, and a resident credential in the authenticator
    t = step("d. passkey list and resident credential")
    passkeys = check.fetch("GET", "/me/passkeys")
    check.expect(isinstance(passkeys, list) and len(passkeys) == 1, f"GET /me/passkeys is {passkeys}, not one entry")
    check.expect(passkeys[0].get("name") == "Chromium", f"GET /me/passkeys is {passkeys}")
    stored = check.credentials()
    check.expect(len(stored) == 1, f"the virtual authenticator holds {len(stored)} credentials, not 1: {stored}")
    held = stored[0]
    check.expect(
        held.get("isResidentCredential") is True,
        f"the authenticator's credential is not resident (discoverable): {held}",
    )
    check.expect(
        b64_bytes(held["credentialId"]) == b64_bytes(passkeys[0]["credentialId"]),
        f"the authenticator's credential {held['credentialId']} is not the listed one "
        f"{passkeys[0]['credentialId']}",
    )
    handle = b64_bytes(held.get("userHandle", ""))
    check.expect(
        handle in (uuid.UUID(account_id).bytes, account_id.encode()),
        f"the credential's user handle {handle!r} is not the account id {account_id}",
    )
    done(check.step, t, f"1 passkey, resident, rpId {held.get('rpId')!r}, user handle = account id")

    # e. discoverable login
    t = step("e. discoverable passkey login")
    check.fetch("POST", "/logout", None, expect=204)
    check.fetch("GET", "/me", expect=401)
    start = check.fetch("POST", "/login/passkey/start")
    allowed = start.get("publicKey", {}).get("allowCredentials") if isinstance(start, dict) else None
    check.expect(not allowed, f"a login started without an address offers credentials: {allowed}")
    credential = check.ceremony(GET_JS, start, "navigator.credentials.get (discoverable)")
    login = check.fetch(
        "POST", "/login/passkey/finish", {"ceremonyId": start["ceremonyId"], "credential": credential}
    )
    check.expect(login.get("twoFactorRequired") is False, f"POST /login/passkey/finish answered {login}")
    me = check.fetch("GET", "/me")
    check.expect(me.get("email") == email, f"GET /me after the passkey login is {me}, not {email}")
    done(check.step, t, f"logout 204, /me 401, start without a body, finish 200, GET /me {email}")

    # f. login with the address
    t = step("f. passkey login with the address")
    check.fetch("POST", "/logout", None, expect=204)
    check.fetch("GET", "/me", expect=401)
    start = check.fetch("POST", "/login/passkey/start", {"email": email})
    allowed = start.get("publicKey", {}).get("allowCredentials") if isinstance(start, dict) else None
    check.expect(bool(allowed), f"a login started with {email} offers no credentials: {start}")
    check.expect(
        [b64_bytes(c["id"]) for c in allowed] == [b64_bytes(held["credentialId"])],
        f"allowCredentials {allowed} is not the registered passkey {held['credentialId']}",
    )
    credential = check.ceremony(GET_JS, start, "navigator.credentials.get (with allowCredentials)")
    check.fetch("POST", "/login/passkey/finish", {"ceremonyId": start["ceremonyId"], "credential": credential})
    me = check.fetch("GET", "/me")
    check.expect(me.get("email") == email, f"GET /me after the passkey login is {me}, not {email}")
    done(check.step, t, f"allowCredentials has {len(allowed)}, finish 200, GET /me {email}")

    # g. step-up with the passkey
    t = step("g. step-up with the passkey")
    start = check.fetch("POST", "/auth/confirm/passkey/start", {})
    credential = check.ceremony(GET_JS, start, "navigator.credentials.get (step-up)")
    finish = {"ceremonyId": start["ceremonyId"], "credential": credential}
    confirm = check.fetch("POST", "/auth/confirm/passkey/finish", finish)
    check.expect(confirm.get("confirmed") is True, f"POST /auth/confirm/passkey/finish answered {confirm}")
    done(check.step, t, f"200, stepUpUntil {confirm.get('stepUpUntil')}")

    # h. the same assertion again
    t = step("h. replayed step-up assertion")
    refused = check.fetch("POST", "/auth/confirm/passkey/finish", finish, expect=401)
    done(check.step, t, f"401 {json.dumps(refused)}")


def main():
    if len(sys.argv) != 4:
        sys.stderr.write("usage: python tests/browser/passkeys.py BASE_URL EMAIL PASSWORD\n")
        return 2
    base_url, email, password = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    if not os.access(CHROMIUM, os.X_OK):
        sys.stderr.write(f"passkeys.py: {CHROMIUM} is missing: apt-get install chromium\n")
        return 1

    began = time.monotonic()
    check = None
    try:
        with sync_playwright() as playwright:
            args = ["--no-sandbox"] if os.geteuid() == 0 else []
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                # /healthz's CSP (default-src 'none') would block fetch() from it: see the top.
                page = browser.new_context(bypass_csp=True).new_page()
                console = []
                page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
                page.set_default_timeout(30_000)
                response = page.goto(base_url + "/healthz")
                if response is None or not response.ok:
                    status = response.status if response else "no response"
                    raise Failure(f"GET {base_url}/healthz answered {status}")
                if not page.evaluate("window.isSecureContext"):
                    raise Failure(f"{base_url} is not a secure context: WebAuthn will not run there")
                cdp = page.context.new_cdp_session(page)
                cdp.send("WebAuthn.enable")
                authenticator = cdp.send(
                    "WebAuthn.addVirtualAuthenticator",
                    {
                        "options": {
                            "protocol": "ctap2",
                            "transport": "internal",
                            "hasResidentKey": True,
                            "hasUserVerification": True,
                            "isUserVerified": True,
                            "automaticPresenceSimulation": True,
                        }
                    },
                )
                print(f"ok   setup: {browser.version}, virtual authenticator {authenticator['authenticatorId']}")
                check = Check(page, cdp, authenticator["authenticatorId"], console)
                run(check, email, password)
            finally:
                browser.close()
    except Failure as exc:
        where = check.step if check else "setup"
        print(f"FAIL {where}: {exc}", flush=True)
        return 1
    except PlaywrightError as exc:
        where = check.step if check else "setup"
        print(f"FAIL {where}: Playwright: {exc.message}", flush=True)
        return 1
    print(f"all steps passed in {time.monotonic() - began:.1f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
