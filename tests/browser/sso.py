#!/usr/bin/env python3
"""SSO sign-in through the pages in a real browser (Debian's Chromium, through Playwright).

    python tests/browser/sso.py BASE_URL IDP_JSON

BASE_URL is the service's public URL. IDP_JSON names a file with the test IdP, registered for
the domain beforehand: {"sso_url", "port", "domain", "provider", "python", "idp_py", "key",
"cert", "issuer", "algorithm"}. The IdP itself is this script: a small HTTP server on 127.0.0.1
at `port` answers the browser's visit to `sso_url` with the IdP's page, a form that posts a SAML
Response signed by tests/saml/idp.py (signxml, from the SAML venv) back to the service's ACS, as
a real IdP's page does.

The path: the sign-in page, an address in the SSO domain, "Continue" → the service sends the
browser to the IdP with a signed AuthnRequest → the IdP's page posts the Response → the account is
made just in time and the browser lands on the security settings page, with "Single sign-on" in its
last sign-ins. A console error or a CSP violation on the service's pages fails the run. Exit 0 when
all pass, 1 with a message (and a screenshot under target/) at the first failure.
"""

import base64
import http.server
import json
import threading
import os
import subprocess
import sys
import time
import urllib.parse
import uuid
import zlib

try:
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write("sso.py: cannot import playwright: run scripts/browser-setup.sh and use the venv's python\n")
    sys.exit(1)

CHROMIUM = "/usr/bin/chromium"
TARGET = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "target")


def fail(page, step, message):
    path = os.path.abspath(os.path.join(TARGET, f"sso-{step}.png"))
    try:
        page.screenshot(path=path, full_page=True)
    except Exception:  # pragma: no cover - best effort
        path = "(no screenshot)"
    print(f"FAIL {step}: {message} (screenshot: {path})")
    sys.exit(1)


def request_id(url):
    """The ID of the AuthnRequest in an HTTP-Redirect binding URL."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15).decode()
    start = xml.index(' ID="') + len(' ID="')
    return xml[start:xml.index('"', start)]


def main():
    if len(sys.argv) != 3:
        sys.stderr.write(__doc__)
        sys.exit(2)
    base = sys.argv[1].rstrip("/")
    with open(sys.argv[2], encoding="utf-8") as f:
        idp = json.load(f)
    email = f"sso-{uuid.uuid4().hex[:8]}@{idp['domain']}"
    acs = f"{base}/saml/{idp['provider']}/acs"
    problems = []

    def sign(in_response_to):
        fields = {
            "key": idp["key"], "cert": idp["cert"], "issuer": idp["issuer"], "algorithm": idp["algorithm"],
            "destination": acs, "recipient": acs, "audience": f"{base}/saml/metadata",
            "in_response_to": in_response_to, "name_id": email,
            "attributes": {"email": [email]},
        }
        out = subprocess.run([idp["python"], idp["idp_py"]], input=json.dumps(fields), capture_output=True,
                             text=True, check=False)
        if out.returncode != 0:
            raise RuntimeError(f"idp.py failed: {out.stderr}")
        return out.stdout.strip()

    started = time.monotonic()
    with sync_playwright() as p:
        args = ["--no-sandbox"] if os.geteuid() == 0 else []
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        context = browser.new_context()
        page = context.new_page()
        def on_console(message):
            # The service's pages must be clean; the test IdP's page is not ours.
            if message.type == "error" and page.url.startswith(base):
                problems.append(f"console {message.type}: {message.text}")

        page.on("console", on_console)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))

        class IdpPage(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server API
                try:
                    response = sign(request_id(self.path))
                except Exception as e:  # noqa: BLE001 - report it on the page and in the run
                    problems.append(f"the test IdP failed: {e}")
                    self.send_error(500)
                    return
                html = (
                    "<!doctype html><html><body><p>Test IdP: signing you in…</p>"
                    f"<form method='post' action='{acs}'><input type='hidden' name='SAMLResponse' value='{response}'>"
                    "<button type='submit'>Continue</button></form>"
                    "<script>document.forms[0].submit()</script></body></html>"
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(html)))
                self.end_headers()
                self.wfile.write(html)

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", int(idp["port"])), IdpPage)
        threading.Thread(target=server.serve_forever, daemon=True).start()

        page.goto(f"{base}/sign-in")
        page.fill("#email", email)
        page.click("button[type=submit]")
        try:
            page.wait_for_url(f"{base}/account/security**", timeout=15000)
        except Exception as e:  # noqa: BLE001 - report what the browser shows
            fail(page, "sso-login", f"did not land on the security page: {page.url}: {e}")
        print(f"ok sso-login: {email} signed in through the IdP and landed on the security page")
        if email not in page.content():
            fail(page, "sso-account", "the security page does not name the SSO account")
        if "Single sign-on" not in page.inner_text("body"):
            fail(page, "sso-history", "the last sign-ins do not show the SSO sign-in")
        print("ok sso-history: 'Single sign-on' in the last sign-ins")
        # Signing in again goes through the IdP again (no password here).
        page.click("form[action='/account/sign-out'] button")
        page.wait_for_url(f"{base}/sign-in**")
        page.fill("#email", email)
        page.click("button[type=submit]")
        try:
            page.wait_for_url(f"{base}/account/security**", timeout=15000)
        except Exception as e:  # noqa: BLE001
            fail(page, "sso-again", f"the second SSO sign-in did not land: {page.url}: {e}")
        print("ok sso-again: signed out and in again through the IdP")
        if problems:
            fail(page, "console", "; ".join(problems))
        browser.close()
    print(f"all steps passed in {time.monotonic() - started:.1f}s")


if __name__ == "__main__":
    main()
