// The one script of the pages: the WebAuthn ceremonies, through the JSON API
// (docs/passwordless.md). Everything else works without JavaScript.
"use strict";
(function () {
  if (!window.PublicKeyCredential || !PublicKeyCredential.parseRequestOptionsFromJSON) {
    return; // no passkeys in this browser: the passkey buttons stay hidden
  }
  document.querySelectorAll(".passkey-only").forEach((el) => { el.hidden = false; });

  async function call(path, body) {
    const response = await fetch(path, {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body || {}),
    });
    const answer = await response.json().catch(() => ({}));
    if (!response.ok) {
      const error = new Error(answer.message || "the request failed (" + response.status + ")");
      error.code = answer.error;
      throw error;
    }
    return answer;
  }

  function showError(button, error) {
    const box = button.parentElement.querySelector("[data-passkey-error]");
    if (box) {
      box.textContent = error.name === "NotAllowedError"
        ? "The passkey request was cancelled or timed out."
        : error.message;
      box.hidden = false;
    }
  }

  async function assertion(startPath, finishPath, body) {
    const start = await call(startPath, body);
    const credential = await navigator.credentials.get({
      publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(start.publicKey),
    });
    return call(finishPath, { ceremonyId: start.ceremonyId, credential: credential.toJSON() });
  }

  // Where to go after signing in: the page holds a target the server vetted; this refuses
  // anything that is not a plain http(s) URL even so (no backslashes, spaces or controls, which
  // browsers fold into other origins).
  function safeNext(next) {
    const fallback = "/account/security";
    if (!next || /[\\\s\u0000-\u001f]/.test(next)) {
      return fallback;
    }
    try {
      const url = new URL(next, window.location.origin);
      if (url.protocol !== "https:" && url.protocol !== "http:") {
        return fallback;
      }
      return url.origin === window.location.origin ? url.pathname + url.search + url.hash : url.href;
    } catch (error) {
      return fallback;
    }
  }

  // The browser's autofill: on the sign-in page the address field offers this site's passkeys
  // (mediation "conditional"); the buttons below abort it before a request of their own.
  let autofill = null;
  const field = document.querySelector('input[autocomplete~="webauthn"]');
  if (field && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then(async (available) => {
      if (!available) {
        return;
      }
      try {
        const start = await call("/login/passkey/start", { conditional: true });
        autofill = new AbortController();
        const credential = await navigator.credentials.get({
          mediation: "conditional",
          signal: autofill.signal,
          publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(start.publicKey),
        });
        autofill = null;
        await call("/login/passkey/finish", { ceremonyId: start.ceremonyId, credential: credential.toJSON() });
        const button = document.querySelector("[data-passkey-login]");
        window.location.assign(safeNext(button ? button.dataset.next : ""));
      } catch (error) {
        // Aborted for a button's request, or refused: the form still works.
      }
    });
  }

  document.querySelectorAll("[data-passkey-login]").forEach((button) => {
    button.addEventListener("click", async () => {
      if (autofill) {
        autofill.abort();
        autofill = null;
      }
      try {
        const email = button.dataset.email;
        await assertion("/login/passkey/start", "/login/passkey/finish", email ? { email } : {});
        window.location.assign(safeNext(button.dataset.next));
      } catch (error) {
        showError(button, error);
      }
    });
  });

  document.querySelectorAll("[data-passkey-register]").forEach((button) => {
    button.addEventListener("click", async () => {
      // Adding a factor needs a fresh confirmation: the page says whether the window is open.
      if (button.dataset.confirmed !== "true") {
        window.location.assign("/account/confirm?then=/account/security");
        return;
      }
      try {
        const start = await call("/me/passkeys/register/start");
        const credential = await navigator.credentials.create({
          publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(start.publicKey),
        });
        const name = document.getElementById("passkey-name");
        await call("/me/passkeys/register/finish", {
          ceremonyId: start.ceremonyId,
          name: name && name.value ? name.value : "Passkey",
          credential: credential.toJSON(),
        });
        window.location.reload();
      } catch (error) {
        if (error.code === "reauthentication_required") {
          window.location.assign("/account/confirm?then=/account/security");
          return;
        }
        showError(button, error);
      }
    });
  });

  document.querySelectorAll("[data-passkey-confirm]").forEach((button) => {
    button.addEventListener("click", async () => {
      try {
        await assertion("/auth/confirm/passkey/start", "/auth/confirm/passkey/finish");
        document.getElementById("replay").submit();
      } catch (error) {
        showError(button, error);
      }
    });
  });
})();
