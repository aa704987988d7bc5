//! The session cookie: its name, reading it, setting and clearing it, and re-setting it when the
//! session check rotated the token.
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use secrecy::{ExposeSecret, SecretString};

use crate::config::Config;

use super::extract::RotatedToken;

/// The cookie's name: `__Host-` prefixed when the service is served over https.
pub fn cookie_name(config: &Config) -> &'static str {
    if config.is_https() {
        "__Host-authctl_session"
    } else {
        "authctl_session"
    }
}

/// The session token from the `Cookie` header, if any.
pub fn session_token<'h>(headers: &'h HeaderMap, config: &Config) -> Option<&'h str> {
    named(headers, cookie_name(config))
}

/// The value of the cookie `name` from the `Cookie` header, if any.
pub fn named<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim_matches('"'))
}

fn cookie(config: &Config, value: &str, max_age: u64) -> HeaderValue {
    let secure = if config.is_https() { "; Secure" } else { "" };
    let cookie = format!(
        "{}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={max_age}{secure}",
        cookie_name(config)
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// `Set-Cookie` for a session token: HttpOnly, SameSite=Lax, Path=/, and Secure under https.
pub fn set_session(config: &Config, token: &SecretString) -> HeaderValue {
    cookie(
        config,
        token.expose_secret(),
        config.session.absolute_timeout.as_secs(),
    )
}

/// The SAML request-binding cookie's name (`__Host-` prefixed under https).
pub fn saml_cookie_name(config: &Config) -> &'static str {
    if config.is_https() {
        "__Host-authctl_saml"
    } else {
        "authctl_saml"
    }
}

/// `Set-Cookie` binding a started SSO login to this browser. The IdP posts the Response back
/// cross-site, so under https it is `SameSite=None; Secure`; over plain http it carries no
/// SameSite attribute (browsers still send a fresh cookie on a top-level cross-site POST).
pub fn set_saml_binding(config: &Config, value: &str, max_age: u64) -> HeaderValue {
    let same_site = if config.is_https() {
        "; SameSite=None; Secure"
    } else {
        ""
    };
    let cookie = format!(
        "{}={value}; HttpOnly; Path=/; Max-Age={max_age}{same_site}",
        saml_cookie_name(config)
    );
    HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
}

/// A cookie that binds something started in a browser to that browser: a magic link asked for
/// there, a passkey ceremony begun there. HttpOnly, SameSite=Lax (sent on the same-site
/// requests that finish them, not on other sites' posts), `__Host-` prefixed and Secure under
/// https.
pub struct Binding {
    plain: &'static str,
    host: &'static str,
}

/// The browser that asked for a magic link.
pub const MAGIC_LINK: Binding = Binding {
    plain: "authctl_magic",
    host: "__Host-authctl_magic",
};

/// The browser that started a passkey ceremony.
pub const WEBAUTHN: Binding = Binding {
    plain: "authctl_webauthn",
    host: "__Host-authctl_webauthn",
};

impl Binding {
    pub fn name(&self, config: &Config) -> &'static str {
        if config.is_https() {
            self.host
        } else {
            self.plain
        }
    }

    /// The cookie's value in the request, if any.
    pub fn read<'h>(&self, headers: &'h HeaderMap, config: &Config) -> Option<&'h str> {
        named(headers, self.name(config))
    }

    /// `Set-Cookie` for `value`, kept `max_age`.
    pub fn set(&self, config: &Config, value: &str, max_age: std::time::Duration) -> HeaderValue {
        let secure = if config.is_https() { "; Secure" } else { "" };
        let cookie = format!(
            "{}={value}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}",
            self.name(config),
            max_age.as_secs().max(1)
        );
        HeaderValue::from_str(&cookie).unwrap_or_else(|_| HeaderValue::from_static(""))
    }
}

/// `Set-Cookie` that removes the session cookie.
pub fn clear_session(config: &Config) -> HeaderValue {
    cookie(config, "", 0)
}

/// After a request: when the session check rotated the token (it left it in `slot`), the
/// response carries the new cookie, unless the handler set the session cookie itself (logout).
pub fn send_rotated(config: &Config, slot: &RotatedToken, response: &mut Response) {
    let Some(token) = slot.take() else {
        return;
    };
    let name = cookie_name(config).as_bytes();
    let sets_session = response
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .any(|v| v.as_bytes().starts_with(name) && v.as_bytes().get(name.len()) == Some(&b'='));
    if !sets_session {
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_session(config, &token));
    }
}
