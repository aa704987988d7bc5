#!/usr/bin/env python3
"""A person's walk through authctl's server-rendered pages, in a real browser.

    python tests/browser/walkthrough.py BASE_URL MAIL_DIR

BASE_URL is the service's public URL (e.g. http://localhost:18610: WebAuthn needs a domain name,
and localhost is a secure context). MAIL_DIR is the folder the `file` mail transport writes its
.eml files to (AUTHCTL_MAIL__TRANSPORT=file, AUTHCTL_MAIL__DIR).

Debian's Chromium (/usr/bin/chromium) runs headless through Playwright. Unlike passkeys.py the
browser does NOT bypass CSP: the pages carry their own policy, and everything here goes through
them the way a person would: typing, clicking, submitting forms, following mailed links. The only
fetch() calls are the ones the page's own script (assets/web/webauthn.js) makes.

Every run signs up a fresh address (walk-<random>@example.com) and walks:
  1 sign-up            /sign-up lands on /account/security
  2 verify-email       the mailed /verify-email link, its button, "Your address is verified"
  3 sign-in            sign out, then /sign-in: address, Continue, password, Sign in
  4 sessions           a second browser signs in; the first lists both, revokes the other
  5 passkey            a CDP virtual authenticator; "Add a passkey" (data-confirmed="false": its
                       script goes to /account/confirm first, confirmed with the password as the
                       account has no TOTP yet; back on the page data-confirmed="true", pressed
                       again), then sign out, "Use a passkey" on the methods page, and the
                       sign-in page's autofill (mediation "conditional")
  6 totp-enable        "Set up an authenticator app", confirmed in place with "Confirm with a
                       passkey" (the passkey session has not confirmed), the key, a code computed
                       here (RFC 6238), ten recovery codes shown once
  7 totp-sign-in       sign out, password; the code that turned TOTP on is refused (used), then a
                       fresh code
  8 forgot-password    the mailed /reset-password link, a new password (the old one refused), the
                       code step with a recovery code ("Lost your phone?"); again: that recovery
                       code is refused, the next one signs in
  9 delete             "Delete my account", confirmed in place with "Confirm with a passkey", then
                       "Keep my account"

A used TOTP code is refused, so a second code needs a new 30-s step: the walk uses an app code
twice only (turning TOTP on, the sign-in of step 7), so it waits at most once, under 30 s, and only
when step 7 comes within the step of "Turn on". Every other confirmation is the password, a passkey
or a recovery code.

Throughout, console errors, uncaught page errors and CSP violations (console messages and a
`securitypolicyviolation` listener added by an init script) fail the run, as does a page
answering 4xx/5xx where the walk does not expect it. One `ok <step>` line per step; at the first
failure a screenshot goes to target/walkthrough-<step>.png and the run exits 1; at the end a
full-page screenshot of the security page goes to target/security-page.png and it exits 0.
Usage errors exit 2. Needs playwright: scripts/browser-setup.sh, then <venv>/bin/python.
"""

import base64
import email
import email.policy
import hashlib
import hmac
import html
import os
import re
import secrets
import struct
import sys
import time
from pathlib import Path

try:
    from playwright.sync_api import Error as PlaywrightError
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright
except ImportError:  # pragma: no cover - environment problem
    sys.stderr.write(
        "walkthrough.py: cannot import playwright: run scripts/browser-setup.sh and use the venv's "
        "python (target/browser-venv/bin/python by default)\n"
    )
    sys.exit(1)

CHROMIUM = "/usr/bin/chromium"
TARGET = Path(__file__).resolve().parents[2] / "target"
MAIL_WAIT = 10.0  # seconds: the outbox worker delivers within about one
TIMEOUT_MS = 15_000

# Reports CSP violations to Python through a binding (bindings and init scripts are CDP-level,
# not subject to the page's policy). Capture phase on the document: the event bubbles from the
# element that was refused.
CSP_LISTENER = """
document.addEventListener("securitypolicyviolation", (e) => {
  const where = e.sourceFile ? ` at ${e.sourceFile}:${e.lineNumber}` : "";
  const what = `${e.effectiveDirective || e.violatedDirective} refused ${e.blockedURI || "(inline)"}${where}`;
  if (window.__walkCsp) { window.__walkCsp(location.pathname + ": " + what); }
}, true);
"""


class Failure(Exception):
    pass


# --- TOTP (RFC 6238: HMAC-SHA1, 6 digits, 30-second steps) ------------------------------------


def b32_secret(text):
    text = re.sub(r"[\s-]", "", text).upper()
    return base64.b32decode(text + "=" * (-len(text) % 8))


def totp_at(secret, step):
    digest = hmac.new(secret, struct.pack(">Q", step), hashlib.sha1).digest()
    offset = digest[-1] & 0x0F
    value = struct.unpack(">I", digest[offset : offset + 4])[0] & 0x7FFFFFFF
    return f"{value % 1_000_000:06d}"


class Authenticator:
    """The authenticator app: a code for a step the service has not seen used yet.

    A code typed just before its step ends still counts: the service accepts the step before the
    current one too (totp-rs's default skew of 1), so there is no waiting at a step's end, only
    when the current step's code was used already (waits/waited count those)."""

    def __init__(self, secret_text):
        self.secret = b32_secret(secret_text)
        self.last_step = None
        self.waits = 0
        self.waited = 0.0

    def fresh_code(self):
        step = int(time.time()) // 30
        if self.last_step is not None and step <= self.last_step:
            wait = (self.last_step + 1) * 30 - time.time() + 0.5
            print(f"     (waiting {wait:.1f}s for the next 30-s TOTP step: a used code is refused)", flush=True)
            time.sleep(max(wait, 0))
            self.waits += 1
            self.waited += max(wait, 0)
            step = int(time.time()) // 30
        self.last_step = step
        return totp_at(self.secret, step)


# --- mail -------------------------------------------------------------------------------------


class Mailbox:
    def __init__(self, folder):
        self.folder = Path(folder)
        self.seen = set()

    def link(self, address, path, what):
        """The first link to `path` (e.g. /verify-email) in a new mail to `address`; polls."""
        pattern = re.compile(r"https?://[^\s\"'<>]+" + re.escape(path) + r"\?token=[^\s\"'<>]+")
        deadline = time.monotonic() + MAIL_WAIT
        while True:
            for file in sorted(self.folder.glob("*.eml")) if self.folder.is_dir() else []:
                if file.name in self.seen:
                    continue
                try:
                    message = email.message_from_bytes(file.read_bytes(), policy=email.policy.default)
                except OSError:
                    continue
                if address.lower() not in str(message.get("To", "")).lower():
                    continue
                for part in message.walk():
                    if part.get_content_type() not in ("text/plain", "text/html"):
                        continue
                    found = pattern.search(html.unescape(part.get_content()))
                    if found:
                        self.seen.add(file.name)
                        return found.group(0), str(message.get("Subject", ""))
            if time.monotonic() > deadline:
                names = sorted(f.name for f in self.folder.glob("*.eml")) if self.folder.is_dir() else []
                raise Failure(
                    f"no {what} mail to {address} with a {path}?token= link in {self.folder} after "
                    f"{MAIL_WAIT:.0f}s ({len(names)} .eml files there)"
                )
            time.sleep(0.2)


# --- the browser ------------------------------------------------------------------------------


class Walk:
    def __init__(self, browser, base_url, mailbox):
        self.browser = browser
        self.base = base_url
        self.mail = mailbox
        self.problems = []  # console errors, page errors, CSP violations, unexpected statuses
        self.allowed = []  # (predicate, why): console errors a step expects, see allow()
        self.allowed_status = set()
        self.notes = []
        self.last_post = {}  # page → what its last form post sent
        self.page = None  # the page a failure's screenshot shows
        self.app = None  # the Authenticator, once TOTP is set up
        self.step = "setup"

    # Every context gets the CSP listener and the problem collectors.
    def new_context(self, label):
        context = self.browser.new_context()  # no bypass_csp: the pages' own policy applies
        context.set_default_timeout(TIMEOUT_MS)
        context.expose_function("__walkCsp", lambda text: self.problem(label, f"CSP violation: {text}"))
        context.add_init_script(CSP_LISTENER)
        page = context.new_page()

        def on_console(message):
            text = message.text
            csp = "content security policy" in text.lower()
            if message.type != "error" and not csp:
                return
            url = (message.location or {}).get("url", "")
            for predicate, why in self.allowed:
                if predicate(text, url):
                    self.notes.append(f"{self.step}: expected console error ({why}): {text} [{url}]")
                    return
            kind = "CSP violation (console)" if csp else "console error"
            self.problem(label, f"{kind}: {text}" + (f" [{url}]" if url else ""))

        def on_response(response):
            if response.request.resource_type != "document" or response.frame != page.main_frame:
                return
            if response.status >= 400 and response.status not in self.allowed_status:
                self.problem(label, f"{response.request.method} {response.url} answered {response.status}")

        def on_request(request):
            # What a form post carried: evidence when the service refuses it.
            if request.method == "POST" and request.resource_type == "document":
                headers = request.headers
                self.last_post[page] = (
                    f"POST {request.url} sent Origin: {headers.get('origin', '(none)')}, "
                    f"Referer: {headers.get('referer', '(none)')}"
                )

        page.on("request", on_request)
        page.on("console", on_console)
        page.on("pageerror", lambda error: self.problem(label, f"uncaught page error: {error}"))
        page.on("response", on_response)
        return context, page

    def problem(self, label, text):
        self.problems.append(f"[{label}] {text}")

    def check_clean(self):
        if self.problems:
            raise Failure("the browser reported:\n  " + "\n  ".join(self.problems))

    def allow(self, predicate, why):
        self.allowed.append((predicate, why))

    def disallow_all(self):
        self.allowed.clear()
        self.allowed_status.clear()

    # --- page helpers ---------------------------------------------------------------------------

    def goto(self, page, path):
        self.page = page
        url = path if path.startswith("http") else self.base + path
        response = page.goto(url)
        if response is None:
            raise Failure(f"GET {url}: no response")
        return response

    def describe(self, page):
        """What the page shows, for a failure's message."""
        try:
            h1 = page.locator("h1").first.inner_text(timeout=1000)
        except PlaywrightError:
            h1 = "(no h1)"
        bits = [f"url {page.url}", f"h1 {h1!r}"]
        if page in self.last_post:
            bits.append(f"last form post: {self.last_post[page]}")
        for selector in (".error", ".notice", "main p"):
            try:
                texts = [t.strip() for t in page.locator(selector).all_inner_texts() if t.strip()]
            except PlaywrightError:
                texts = []
            if texts:
                bits.append(f"{selector} {texts[:3]!r}")
        try:
            main = page.locator("main").inner_html(timeout=1000)
            bits.append("main html: " + re.sub(r"\s+", " ", main)[:600])
        except PlaywrightError:
            pass
        return "\n  ".join(bits)

    def expect_heading(self, page, text, what):
        self.page = page
        heading = page.locator("h1", has_text=text)
        try:
            heading.wait_for(timeout=TIMEOUT_MS)
        except PlaywrightTimeout:
            raise Failure(f"{what}: expected a page headed {text!r}\n  {self.describe(page)}") from None

    def expect_path(self, page, path, what):
        self.page = page
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while True:
            try:
                page.wait_for_url(lambda url: url_path(url) == path, timeout=250)
                break
            except PlaywrightTimeout:
                # a refused page (4xx/5xx) will not turn into the expected one: fail at once
                if time.monotonic() > deadline or any(" answered " in p for p in self.problems):
                    raise Failure(f"{what}: expected to land on {path}\n  {self.describe(page)}") from None
        page.wait_for_load_state("load")

    def click(self, page, selector_or_locator, what):
        self.page = page
        locator = page.locator(selector_or_locator) if isinstance(selector_or_locator, str) else selector_or_locator
        try:
            locator.click(timeout=TIMEOUT_MS)
        except PlaywrightTimeout:
            raise Failure(f"{what}: nothing to click ({selector_or_locator})\n  {self.describe(page)}") from None

    def fill(self, page, selector, value, what):
        self.page = page
        try:
            page.locator(selector).fill(value, timeout=TIMEOUT_MS)
        except PlaywrightTimeout:
            raise Failure(f"{what}: no field {selector}\n  {self.describe(page)}") from None

    def button(self, page, name):
        return page.get_by_role("button", name=name, exact=True)

    def notice(self, page):
        texts = page.locator("p.notice[role=status]").all_inner_texts()
        return " ".join(t.strip() for t in texts)

    # --- the paths a person takes ----------------------------------------------------------------

    def sign_out(self, page):
        self.goto(page, "/account/security")
        self.expect_path(page, "/account/security", "the security page before signing out")
        self.click(page, page.locator('form[action="/account/sign-out"] button'), "the Sign out button")
        self.expect_path(page, "/sign-in", "signing out")

    def sign_in_password(self, page, address, password):
        """/sign-in → address → Continue → password → Sign in. Returns where it landed."""
        self.goto(page, "/sign-in")
        self.expect_heading(page, "Sign in", "the sign-in page")
        self.fill(page, "#email", address, "the sign-in page")
        self.click(page, self.button(page, "Continue"), "Continue on the sign-in page")
        self.expect_heading(page, "Sign in", "the methods page")
        shown = page.locator("main p strong").first.inner_text()
        if shown.strip() != address:
            raise Failure(f"the methods page says 'as {shown}', not {address}")
        self.fill(page, "#password", password, "the methods page")
        try:
            with page.expect_navigation(timeout=TIMEOUT_MS):
                self.click(page, self.button(page, "Sign in"), "Sign in on the methods page")
        except PlaywrightTimeout:
            raise Failure(f"the password step went nowhere\n  {self.describe(page)}") from None
        page.wait_for_load_state("load")
        return url_path(page.url)

    def submit(self, page, locator, what):
        """Clicks a form's button and waits for the page it answers (which may be at the same
        path, as a refused code is)."""
        self.page = page
        try:
            with page.expect_navigation(timeout=TIMEOUT_MS):
                self.click(page, locator, what)
        except PlaywrightTimeout:
            raise Failure(f"{what} went nowhere\n  {self.describe(page)}") from None
        page.wait_for_load_state("load")

    def enter_code(self, page, code, what="the code step"):
        """The code page: a code from the app (a string, or the Authenticator for a fresh one).
        Returns where it landed."""
        self.expect_path(page, "/sign-in/code", "the password step of an account with 2FA")
        self.expect_heading(page, "Enter your code", "the code page")
        self.fill(page, "#code", code if isinstance(code, str) else code.fresh_code(), "the code page")
        self.submit(page, self.button(page, "Verify"), f"Verify on the code page ({what})")
        return url_path(page.url)

    def enter_recovery_code(self, page, code, what="the recovery code"):
        """The code page's "Lost your phone? Use a recovery code". Returns where it landed."""
        self.expect_path(page, "/sign-in/code", "the password step of an account with 2FA")
        self.expect_heading(page, "Enter your code", "the code page")
        details = page.locator("details", has=page.locator("#recovery"))
        if details.locator("summary").inner_text().strip() != "Lost your phone? Use a recovery code":
            raise Failure(f"the code page has no 'Lost your phone?' section\n  {self.describe(page)}")
        if not page.locator("#recovery").is_visible():
            self.click(page, details.locator("summary"), "Lost your phone? Use a recovery code")
        if page.locator("#recovery").get_attribute("name") != "recovery_code":
            raise Failure(f"the recovery field is not named recovery_code\n  {self.describe(page)}")
        self.fill(page, "#recovery", code, "the recovery code field")
        self.submit(page, self.button(page, "Use the recovery code"), f"Use the recovery code ({what})")
        return url_path(page.url)

    def confirm_with_passkey(self, page, field, what):
        """The step-up confirmation shown in place of an action, answered with "Confirm with a
        passkey" (the page's script runs the ceremony, then re-submits the action). `field` is
        the form the page must offer as well (#confirm-password or #confirm-code)."""
        page.wait_for_load_state("load")
        self.expect_heading(page, "Confirm it's you", what)
        if page.locator(field).count() == 0:
            raise Failure(f"{what}: the confirmation page has no {field}\n  {self.describe(page)}")
        button = page.locator("[data-passkey-confirm]")
        if button.count() != 1 or not button.is_visible():
            raise Failure(f"{what}: no visible 'Confirm with a passkey'\n  {self.describe(page)}")
        before = self.navigations[page]
        self.touch_passkey()
        self.click(page, button, f"{what}: Confirm with a passkey")
        self.wait_navigation_or_error(page, before, f"{what}: Confirm with a passkey")
        self.untouch_passkey()

    # The person's touch on the authenticator. Presence is simulated only while they act, so
    # the sign-in page's autofill request (mediation "conditional") waits, as it does until a
    # person picks a passkey from the address field's suggestions.
    presence = None

    def touch_passkey(self):
        if self.presence:
            self.presence(True)

    def untouch_passkey(self):
        if self.presence:
            self.presence(False)

    def confirm_if_asked(self, page, field, value, what):
        """The step-up confirmation page, if the action showed it. Returns whether it did."""
        page.wait_for_load_state("load")
        if page.locator("h1", has_text="Confirm it's you").count() == 0:
            return False
        other = "#confirm-password" if field == "#confirm-code" else "#confirm-code"
        if page.locator(field).count() == 0:
            raise Failure(
                f"{what}: the confirmation page asks for {other}, expected {field}\n  {self.describe(page)}"
            )
        self.fill(page, field, value() if callable(value) else value, what)
        self.click(page, self.button(page, "Confirm and continue"), f"{what}: Confirm and continue")
        page.wait_for_load_state("load")
        return True

    def wait_navigation_or_error(self, page, before, what):
        """After a button whose script navigates: waits for the navigation, or fails with the
        message the script showed."""
        deadline = time.monotonic() + TIMEOUT_MS / 1000
        while time.monotonic() < deadline:
            if self.navigations[page] > before:
                page.wait_for_load_state("load")
                return
            try:
                box = page.locator("[data-passkey-error]:not([hidden])")
                if box.count():
                    raise Failure(f"{what}: the page's script says {box.first.inner_text()!r}")
            except PlaywrightError:
                pass  # the page is navigating
            self.check_clean()
            time.sleep(0.1)
        raise Failure(f"{what}: nothing happened within {TIMEOUT_MS / 1000:.0f}s\n  {self.describe(page)}")

    def count_navigations(self, page):
        if not hasattr(self, "navigations"):
            self.navigations = {}
        self.navigations[page] = 0

        def on_nav(frame):
            if frame == page.main_frame:
                self.navigations[page] += 1

        page.on("framenavigated", on_nav)


def url_path(url):
    from urllib.parse import urlsplit

    return urlsplit(url).path


def rows(page, section):
    """The body rows of a section's table, as lists of cell texts."""
    table = page.locator(f'section[aria-labelledby="{section}"] table tbody tr')
    return [row.locator("td").all_inner_texts() for row in table.all()]


def run(walk, mailbox):
    tag = secrets.token_hex(5)
    address = f"walk-{tag}@example.com"
    password = f"correct horse {secrets.token_urlsafe(9)} battery"
    new_password = f"new staple {secrets.token_urlsafe(9)} lantern"
    name = f"Walker {tag}"

    def step(label):
        walk.step = label
        walk.disallow_all()
        return time.monotonic()

    def done(started, detail=""):
        walk.check_clean()
        suffix = f": {detail}" if detail else ""
        print(f"ok {walk.step} ({time.monotonic() - started:.1f}s){suffix}", flush=True)

    context, page = walk.new_context("browser 1")
    walk.count_navigations(page)
    walk.page = page

    # 0. the policy is enforced and the listener hears violations: an inline script is refused
    t = step("0-csp-check")
    header = (walk.goto(page, "/sign-in").headers or {}).get("content-security-policy", "")
    if "script-src 'self'" not in header:
        raise Failure(f"/sign-in's Content-Security-Policy is {header!r}: no script-src 'self'")
    page.evaluate(
        "() => { const s = document.createElement('script'); s.textContent = 'window.__inline = 1';"
        " document.head.appendChild(s); }"
    )
    deadline = time.monotonic() + 3
    while not any("CSP violation:" in p for p in walk.problems) and time.monotonic() < deadline:
        page.wait_for_timeout(50)
    ran = page.evaluate("() => window.__inline === 1")
    heard = [p for p in walk.problems if "CSP" in p]
    if ran or not heard:
        raise Failure(f"an injected inline script ran={ran}, violations heard={heard}: CSP is not enforced/seen")
    walk.problems.clear()
    done(t, f"inline script refused and reported ({len(heard)} reports)")

    # 1. sign up
    t = step("1-sign-up")
    walk.goto(page, "/sign-up")
    walk.expect_heading(page, "Create an account", "/sign-up")
    walk.fill(page, "#name", name, "the sign-up form")
    walk.fill(page, "#email", address, "the sign-up form")
    walk.fill(page, "#password", password, "the sign-up form")
    walk.click(page, walk.button(page, "Create the account"), "the sign-up button")
    walk.expect_path(page, "/account/security", "signing up")
    walk.expect_heading(page, "Security settings", "the page after signing up")
    if page.locator("header.site .who").inner_text().strip() != address:
        raise Failure(f"the header does not show {address}\n  {walk.describe(page)}")
    unverified = page.get_by_text("is not verified yet").count()
    done(t, f"{address}, unverified notice shown: {bool(unverified)}")

    # 2. verify the address from the mail
    t = step("2-verify-email")
    link, subject = mailbox.link(address, "/verify-email", "verification")
    walk.goto(page, link)
    walk.expect_heading(page, "Verify your email address", "the mailed verification link")
    walk.click(page, walk.button(page, "Verify my address"), "the verification button")
    walk.expect_heading(page, "Your address is verified", "the verification button")
    walk.goto(page, "/account/security")
    if page.get_by_text("is not verified yet").count():
        raise Failure(f"the security page still says the address is not verified\n  {walk.describe(page)}")
    done(t, f"mail {subject!r}")

    # 3. sign out and in with the password
    t = step("3-sign-in")
    walk.sign_out(page)
    landed = walk.sign_in_password(page, address, password)
    if landed != "/account/security":
        raise Failure(f"the password sign-in landed on {landed}\n  {walk.describe(page)}")
    walk.expect_heading(page, "Security settings", "the password sign-in")
    done(t)

    # 4. a second browser; list, revoke
    t = step("4-sessions")
    context2, page2 = walk.new_context("browser 2")
    landed = walk.sign_in_password(page2, address, password)
    if landed != "/account/security":
        raise Failure(f"the second browser's sign-in landed on {landed}\n  {walk.describe(page2)}")
    walk.goto(page, "/account/security")
    sessions = rows(page, "sessions-h")
    if len(sessions) != 2:
        raise Failure(f"'Where you're signed in' lists {len(sessions)} sessions, not 2: {sessions}")
    current = page.locator('section[aria-labelledby="sessions-h"] tbody tr.current')
    if current.count() != 1 or "(this device)" not in current.inner_text():
        raise Failure(f"not exactly one row marked '(this device)': {sessions}")
    logins = rows(page, "logins-h")
    password_rows = [r for r in logins if len(r) >= 5 and r[3].strip() == "Password"]
    if not password_rows:
        raise Failure(f"'Recent sign-ins' has no row with method 'Password': {logins}")
    revoke = page.locator('form[action="/account/sessions/revoke"] button')
    if revoke.count() != 1:
        raise Failure(f"{revoke.count()} session 'Sign out' buttons, expected 1 (the other session)")
    walk.click(page, revoke, "the other session's Sign out button")
    walk.expect_path(page, "/account/security", "revoking the other session")
    if "That session is signed out." not in walk.notice(page):
        raise Failure(f"no 'That session is signed out.' notice\n  {walk.describe(page)}")
    if len(rows(page, "sessions-h")) != 1:
        raise Failure(f"after revoking, the list is {rows(page, 'sessions-h')}")
    walk.goto(page2, "/account/security")
    walk.expect_path(page2, "/sign-in", "the revoked browser opening /account/security")
    walk.page = page
    context2.close()
    done(t, f"2 sessions listed, {len(password_rows)} 'Password' sign-ins, the other revoked")

    # 5. a passkey (before TOTP: the step-up confirmation is then the password), then sign in
    #    with it
    t = step("5-passkey")
    cdp = context.new_cdp_session(page)
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
    )["authenticatorId"]
    walk.goto(page, "/account/security")
    add = page.locator("[data-passkey-register]")
    if not add.is_visible():
        raise Failure(f"'Add a passkey' is not visible (the script did not unhide it)\n  {walk.describe(page)}")
    # Signing in does not open the step-up window: the button says so, and its script sends the
    # browser to the confirmation page before any ceremony (no refused fetch, no console error).
    if add.get_attribute("data-confirmed") != "false":
        raise Failure(f"'Add a passkey' has data-confirmed={add.get_attribute('data-confirmed')!r} "
                      f"on a session that never confirmed\n  {walk.describe(page)}")
    before = walk.navigations[page]
    walk.click(page, add, "Add a passkey")
    walk.wait_navigation_or_error(page, before, "Add a passkey")
    walk.expect_path(page, "/account/confirm", "Add a passkey with the step-up window closed")
    walk.expect_heading(page, "Confirm it's you", "the passkey's confirmation")
    if page.locator("[data-passkey-confirm]").count():
        raise Failure(f"the confirmation page offers a passkey before the account has one\n  {walk.describe(page)}")
    if not walk.confirm_if_asked(page, "#confirm-password", password, "the passkey's confirmation"):
        raise Failure("the passkey's confirmation page has no form")
    walk.expect_path(page, "/account/security", "confirming for the passkey")
    add = page.locator("[data-passkey-register]")
    if add.get_attribute("data-confirmed") != "true":
        raise Failure(f"after confirming, 'Add a passkey' has data-confirmed="
                      f"{add.get_attribute('data-confirmed')!r}\n  {walk.describe(page)}")
    before = walk.navigations[page]
    walk.click(page, add, "Add a passkey (after confirming)")
    walk.wait_navigation_or_error(page, before, "Add a passkey (after confirming)")
    walk.expect_path(page, "/account/security", "adding the passkey")
    listed = page.locator('section[aria-labelledby="passkeys-h"] ul.items li')
    if listed.count() != 1:
        raise Failure(f"{listed.count()} passkeys listed after adding one\n  {walk.describe(page)}")
    held = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    if len(held) != 1 or not held[0].get("isResidentCredential"):
        raise Failure(f"the virtual authenticator holds {held}")
    walk.presence = lambda on: cdp.send(
        "WebAuthn.setAutomaticPresenceSimulation", {"authenticatorId": authenticator, "enabled": on}
    )
    walk.untouch_passkey()
    walk.sign_out(page)
    # The button on the methods page (which runs no autofill request of its own).
    walk.fill(page, "#email", address, "the sign-in page")
    walk.click(page, walk.button(page, "Continue"), "Continue on the sign-in page")
    walk.expect_heading(page, "Sign in", "the methods page")
    login = page.locator("[data-passkey-login]")
    if not login.is_visible():
        raise Failure(f"'Use a passkey' is not visible\n  {walk.describe(page)}")
    before = walk.navigations[page]
    walk.touch_passkey()
    walk.click(page, login, "Use a passkey")
    walk.wait_navigation_or_error(page, before, "Use a passkey")
    walk.untouch_passkey()
    walk.expect_path(page, "/account/security", "the passkey sign-in")
    # The autofill: on the sign-in page the address field offers the passkey; picking it
    # (the touch) signs in without a button.
    walk.sign_out(page)
    before = walk.navigations[page]
    walk.touch_passkey()
    page.reload()
    walk.wait_navigation_or_error(page, before + 1, "the passkey from the address field's autofill")
    walk.untouch_passkey()
    walk.expect_path(page, "/account/security", "the autofill passkey sign-in")
    walk.expect_heading(page, "Security settings", "the passkey sign-in")
    methods = [r[3].strip() for r in rows(page, "logins-h") if len(r) >= 5]
    if "Passkey" not in methods:
        raise Failure(f"'Recent sign-ins' has no 'Passkey' row: {methods}")
    last_used = page.locator('section[aria-labelledby="passkeys-h"] ul.items li .quiet').first.inner_text()
    done(t, f"confirmed with the password first; listed ({last_used.strip()}); passkey sign-in")

    # 6. turn on TOTP, confirming with the passkey (the passkey's session has not confirmed)
    t = step("6-totp-enable")
    walk.goto(page, "/account/security")
    walk.click(page, walk.button(page, "Set up an authenticator app"), "Set up an authenticator app")
    walk.confirm_with_passkey(page, "#confirm-password", "TOTP setup's confirmation")
    walk.expect_heading(page, "Set up an authenticator app", "the TOTP setup after the passkey confirmation")
    secret_text = page.locator("[data-totp-secret]").inner_text().strip()
    if not re.fullmatch(r"[A-Z2-7 =-]{16,}", secret_text):
        raise Failure(f"the key on the page is {secret_text!r}, not base32")
    qr_ok = page.locator("main img").first.evaluate("(img) => img.complete && img.naturalWidth > 0")
    app = walk.app = Authenticator(secret_text)
    enable_code = app.fresh_code()
    walk.fill(page, "#code", enable_code, "the TOTP setup")
    walk.click(page, walk.button(page, "Turn on"), "Turn on")
    walk.expect_heading(page, "Two-factor authentication is on", "turning TOTP on")
    codes = [c.strip() for c in page.locator("[data-shown-once] li").all_inner_texts()]
    if len(codes) != 10 or len(set(codes)) != 10:
        raise Failure(f"{len(codes)} recovery codes shown ({codes}), expected 10 distinct ones")
    if not qr_ok:
        raise Failure("the QR code image on the setup page did not render")
    done(t, "confirmed with the passkey, QR image rendered, 10 recovery codes")

    # 7. sign in with the password and a code; the code that turned TOTP on is refused first
    t = step("7-totp-sign-in")
    walk.sign_out(page)
    landed = walk.sign_in_password(page, address, password)
    walk.allowed_status.add(401)
    walk.allow(lambda text, url: "status of 401" in text and url_path(url) == "/sign-in/code",
               "the used code is refused")
    if walk.enter_code(page, enable_code, "the code that turned TOTP on") != "/sign-in/code":
        raise Failure(f"the code that turned TOTP on was accepted again\n  {walk.describe(page)}")
    if "That code is not right" not in " ".join(page.locator(".error").all_inner_texts()):
        raise Failure(f"the used code was not refused with 'That code is not right'\n  {walk.describe(page)}")
    walk.disallow_all()
    # the walk's one wait for a new 30-s step, if the step has not changed since "Turn on"
    if walk.enter_code(page, app, "a fresh code") != "/account/security":
        raise Failure(f"a fresh code did not sign in\n  {walk.describe(page)}")
    walk.expect_heading(page, "Security settings", "signing in with a code")
    if page.get_by_text("On: signing in with a password").count() == 0:
        raise Failure(f"the security page does not say two-factor is on\n  {walk.describe(page)}")
    done(t, f"password step → {landed}, the used code refused, a fresh code accepted")

    # 8. forgotten password; the code step with a recovery code (once only)
    t = step("8-forgot-password")
    walk.sign_out(page)
    walk.goto(page, "/forgot-password")
    walk.expect_heading(page, "Forgot your password?", "/forgot-password")
    walk.fill(page, "#email", address, "the forgot-password form")
    walk.click(page, walk.button(page, "Send the link"), "Send the link")
    walk.expect_heading(page, "Check your inbox", "asking for the reset link")
    link, subject = mailbox.link(address, "/reset-password", "password reset")
    walk.goto(page, link)
    walk.expect_heading(page, "Choose a new password", "the mailed reset link")
    walk.fill(page, "#new_password", new_password, "the reset form")
    walk.click(page, walk.button(page, "Set the password"), "Set the password")
    walk.expect_heading(page, "Your password is set", "setting the new password")
    # the old password no longer works (the methods page answers 401 with the words)
    walk.allowed_status.add(401)
    walk.allow(lambda text, url: "status of 401" in text and url_path(url) == "/sign-in/password",
               "the old password is refused")
    landed = walk.sign_in_password(page, address, password)
    if landed != "/sign-in/password" or "Wrong email or password." not in " ".join(page.locator(".error").all_inner_texts()):
        raise Failure(f"the old password was not refused with 'Wrong email or password.'\n  {walk.describe(page)}")
    walk.disallow_all()
    walk.sign_in_password(page, address, new_password)
    if walk.enter_recovery_code(page, codes[0]) != "/account/security":
        raise Failure(f"the recovery code did not sign in\n  {walk.describe(page)}")
    walk.expect_heading(page, "Security settings", "signing in with the new password and a recovery code")
    # a recovery code works once: the same one again is refused, the next one is not
    walk.sign_out(page)
    walk.sign_in_password(page, address, new_password)
    walk.allowed_status.add(401)
    walk.allow(lambda text, url: "status of 401" in text and url_path(url) == "/sign-in/code",
               "the used recovery code is refused")
    if walk.enter_recovery_code(page, codes[0], "the used recovery code") != "/sign-in/code":
        raise Failure(f"the used recovery code was accepted again\n  {walk.describe(page)}")
    if "That code is not right" not in " ".join(page.locator(".error").all_inner_texts()):
        raise Failure(f"the used recovery code was not refused\n  {walk.describe(page)}")
    walk.disallow_all()
    if walk.enter_recovery_code(page, codes[1], "the next recovery code") != "/account/security":
        raise Failure(f"the next recovery code did not sign in\n  {walk.describe(page)}")
    walk.expect_heading(page, "Security settings", "signing in with the second recovery code")
    done(t, f"mail {subject!r}; old password refused; new password + recovery code accepted, "
            "the used recovery code refused, the next one accepted")

    # 9. delete (confirming with the passkey), then keep
    t = step("9-delete")
    walk.goto(page, "/account/security")
    walk.click(page, walk.button(page, "Delete my account"), "Delete my account")
    walk.confirm_with_passkey(page, "#confirm-code", "the deletion's confirmation")
    walk.expect_path(page, "/account/security", "scheduling the deletion")
    if "Your account is scheduled for deletion." not in walk.notice(page):
        raise Failure(f"no 'scheduled for deletion' notice\n  {walk.describe(page)}")
    due = page.locator('section[aria-labelledby="delete-h"] p.notice')
    if due.count() != 1 or "will be deleted on" not in due.inner_text():
        raise Failure(f"the page does not show when the account will be deleted\n  {walk.describe(page)}")
    due_text = due.inner_text().strip()
    walk.click(page, walk.button(page, "Keep my account"), "Keep my account")
    walk.expect_path(page, "/account/security", "keeping the account")
    if "Your account will not be deleted." not in walk.notice(page):
        raise Failure(f"no 'will not be deleted' notice\n  {walk.describe(page)}")
    if walk.button(page, "Delete my account").count() != 1:
        raise Failure(f"'Delete my account' is not back\n  {walk.describe(page)}")
    done(t, f"confirmed with the passkey; {due_text!r}; kept")

    # the final picture
    walk.step = "final"
    walk.goto(page, "/account/security")
    walk.expect_heading(page, "Security settings", "the final security page")
    if page.get_by_text("On: signing in with a password").count() == 0:
        raise Failure(f"the final security page does not say two-factor is on\n  {walk.describe(page)}")
    if page.locator('section[aria-labelledby="passkeys-h"] ul.items li').count() != 1:
        raise Failure(f"the final security page does not list the passkey\n  {walk.describe(page)}")
    page.screenshot(path=str(TARGET / "security-page.png"), full_page=True)
    # Readable on a small phone: at 360 px nothing makes the page scroll sideways (wide tables
    # scroll inside their own box).
    size = page.viewport_size
    page.set_viewport_size({"width": 360, "height": 800})
    for path in ("/account/security", "/account/confirm?then=/account/security"):
        walk.goto(page, path)
        wide = page.evaluate("document.documentElement.scrollWidth")
        if wide > 360:
            raise Failure(f"{path} is {wide} px wide in a 360 px window\n  {walk.describe(page)}")
    page.set_viewport_size(size)
    walk.check_clean()
    context.close()


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: python tests/browser/walkthrough.py BASE_URL MAIL_DIR\n")
        return 2
    base_url, mail_dir = sys.argv[1].rstrip("/"), sys.argv[2]
    if not os.access(CHROMIUM, os.X_OK):
        sys.stderr.write(f"walkthrough.py: {CHROMIUM} is missing: apt-get install chromium\n")
        return 1
    TARGET.mkdir(parents=True, exist_ok=True)
    began = time.monotonic()
    walk = None
    try:
        with sync_playwright() as playwright:
            args = ["--no-sandbox"] if os.geteuid() == 0 else []
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
            try:
                print(f"ok setup: Chromium {browser.version}", flush=True)
                walk = Walk(browser, base_url, Mailbox(mail_dir))
                try:
                    run(walk, walk.mail)
                except (Failure, PlaywrightError) as exc:
                    shot = TARGET / f"walkthrough-{walk.step}.png"
                    try:
                        if walk.page is not None:
                            walk.page.screenshot(path=str(shot), full_page=True)
                    except PlaywrightError:
                        shot = None
                    message = exc.message if isinstance(exc, PlaywrightError) else str(exc)
                    if isinstance(exc, PlaywrightError) and walk.page is not None:
                        message += "\n  " + walk.describe(walk.page)
                    if walk.problems and "the browser reported" not in message:
                        message += "\n  the browser also reported:\n  " + "\n  ".join(walk.problems)
                    print(f"FAIL {walk.step}: {message}", flush=True)
                    if shot:
                        print(f"     screenshot: {shot}", flush=True)
                    for note in walk.notes:
                        print(f"note {note}", flush=True)
                    return 1
            finally:
                browser.close()
    except PlaywrightError as exc:
        print(f"FAIL setup: Playwright: {exc.message}", flush=True)
        return 1
    for note in walk.notes:
        print(f"note {note}", flush=True)
    waited = f"{walk.app.waits} wait(s) for a new TOTP step ({walk.app.waited:.1f}s)" if walk.app else "no TOTP"
    print(f"all steps passed in {time.monotonic() - began:.1f}s, {waited}; screenshot: {TARGET / 'security-page.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
