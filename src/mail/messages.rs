//! One constructor per kind of mail, with its wording. A mail that mentions a duration reads it
//! from the configuration, so the text and the setting cannot disagree.
use chrono::{DateTime, Utc};

use super::{Mail, greeting, html_escape, human, session_facts};
use crate::config::Config;
use crate::entity::{session, user};

impl Mail {
    /// The e-mail verification message with its single-use link.
    pub fn verification(config: &Config, user: &user::Model, link: &str) -> Self {
        let ttl = human(config.verification.token_ttl);
        let greeting = greeting(&user.name);
        let text = format!(
            "{greeting}\n\nPlease confirm your email address by opening this link:\n\n{link}\n\n\
             The link works once and expires in {ttl}. If you did not sign up, ignore this message.\n"
        );
        let html = format!(
            "<p>{}</p><p>Please confirm your email address:</p><p><a href=\"{link}\">Verify my email address</a></p>\
             <p>Or paste this link into your browser:<br>{link}</p>\
             <p>The link works once and expires in {ttl}. If you did not sign up, ignore this message.</p>",
            html_escape(&greeting)
        );
        Self::new(
            "verification",
            &user.email,
            "Verify your email address",
            text,
            html,
        )
    }

    /// To the new address: the link that makes it the account's address.
    pub fn email_change_confirm(
        config: &Config,
        user: &user::Model,
        new_address: &str,
        link: &str,
    ) -> Self {
        let ttl = human(config.email_change.token_ttl);
        Self::link(
            "email_change",
            new_address,
            &user.name,
            "Confirm your new email address",
            &format!(
                "Open this link to make this your account's address. It works once and expires in {ttl}."
            ),
            link,
        )
    }

    /// To the current address: a change was asked for, with the link that cancels it.
    pub fn email_change_notice(user: &user::Model, new_address: &str, cancel_link: &str) -> Self {
        Self::link(
            "email_change_notice",
            &user.email,
            &user.name,
            "Your email address is about to change",
            &format!(
                "Someone asked to change your account's address to {new_address}. Nothing changes until the link sent there is opened. If this was not you, open this link to cancel the change, then change your password and sign out everywhere else."
            ),
            cancel_link,
        )
    }

    /// To the old address (`user` as it was before the change): the address was changed.
    pub fn email_changed(user: &user::Model, new_address: &str) -> Self {
        Self::notice(
            "email_changed",
            &user.email,
            &user.name,
            "Your email address was changed",
            &format!(
                "Your account's address was changed to {new_address}. If this was not you, contact support at once."
            ),
        )
    }

    /// The password was changed by its owner; the other sessions were signed out.
    pub fn password_changed(user: &user::Model) -> Self {
        Self::notice(
            "password_changed",
            &user.email,
            &user.name,
            "Your password was changed",
            "Your password was just changed and your other sessions were signed out. If this was not you, reset your password at once.",
        )
    }

    /// The password-reset link.
    pub fn password_reset(config: &Config, user: &user::Model, link: &str) -> Self {
        let ttl = human(config.password_reset.token_ttl);
        Self::link(
            "password_reset",
            &user.email,
            &user.name,
            "Reset your password",
            &format!(
                "Someone asked to reset your password. Open this link to choose a new one; it works once and expires in {ttl}. If this was not you, ignore this mail."
            ),
            link,
        )
    }

    /// The password was reset: every session ended, and `api_keys_revoked` keys with them.
    pub fn password_reset_done(user: &user::Model, api_keys_revoked: u64) -> Self {
        let keys = if api_keys_revoked > 0 {
            format!(
                " Your {api_keys_revoked} API key(s) were revoked too; create new ones where you need them."
            )
        } else {
            String::new()
        };
        Self::notice(
            "password_reset_done",
            &user.email,
            &user.name,
            "Your password was reset",
            &format!(
                "Your password was just reset and every session was signed out.{keys} If this was not you, reset it again and contact support."
            ),
        )
    }

    /// The account will be deleted at `due`, `days` days from now, unless cancelled.
    pub fn deletion_scheduled(user: &user::Model, due: DateTime<Utc>, days: i64) -> Self {
        Self::notice(
            "deletion_scheduled",
            &user.email,
            &user.name,
            "Your account is scheduled for deletion",
            &format!(
                "Your account is scheduled for deletion on {} ({days} days from now). Until then you can sign in and cancel: POST /me/delete/cancel. After that date it is deleted for good.",
                due.format("%Y-%m-%d %H:%M UTC")
            ),
        )
    }

    /// A scheduled deletion was cancelled.
    pub fn deletion_cancelled(user: &user::Model) -> Self {
        Self::notice(
            "deletion_cancelled",
            &user.email,
            &user.name,
            "Your account will not be deleted",
            "The deletion of your account was cancelled; everything stays as it was.",
        )
    }

    /// Two-factor authentication was turned on.
    pub fn two_factor_enabled(user: &user::Model) -> Self {
        Self::notice(
            "two_factor_enabled",
            &user.email,
            &user.name,
            "Two-factor authentication is on",
            "Two-factor authentication was turned on for your account. Keep your recovery codes somewhere safe.",
        )
    }

    /// Two-factor authentication was turned off.
    pub fn two_factor_disabled(user: &user::Model) -> Self {
        Self::notice(
            "two_factor_disabled",
            &user.email,
            &user.name,
            "Two-factor authentication is off",
            "Two-factor authentication was turned off for your account. If this was not you, reset your password at once.",
        )
    }

    /// The recovery codes were replaced by a new set.
    pub fn recovery_codes_replaced(user: &user::Model) -> Self {
        Self::notice(
            "recovery_codes_replaced",
            &user.email,
            &user.name,
            "New recovery codes",
            "New recovery codes were made for your account; the old ones no longer work.",
        )
    }

    /// A recovery code was used to finish a sign-in.
    pub fn recovery_code_used(user: &user::Model) -> Self {
        Self::notice(
            "recovery_code_used",
            &user.email,
            &user.name,
            "A recovery code was used",
            "One of your recovery codes was just used to sign in. If this was not you, change your password and make new recovery codes.",
        )
    }

    /// The sign-in link (magic link).
    pub fn magic_link(config: &Config, user: &user::Model, link: &str) -> Self {
        let ttl = human(config.magic_link.ttl);
        Self::link(
            "magic_link",
            &user.email,
            &user.name,
            "Your sign-in link",
            &format!(
                "Open this link in the browser where you asked for it to sign in. It works once and expires in {ttl}. If you did not ask for it, ignore this mail: nobody can use it without that browser."
            ),
            link,
        )
    }

    /// A passkey was added to the account.
    pub fn passkey_added(user: &user::Model, name: &str) -> Self {
        Self::notice(
            "passkey_added",
            &user.email,
            &user.name,
            "A passkey was added to your account",
            &format!(
                "The passkey \"{name}\" was just added to your account; it can sign you in without a password. If this was not you, remove it in your security settings and change your password."
            ),
        )
    }

    /// A passkey was removed from the account.
    pub fn passkey_removed(user: &user::Model, name: &str) -> Self {
        Self::notice(
            "passkey_removed",
            &user.email,
            &user.name,
            "A passkey was removed from your account",
            &format!(
                "The passkey \"{name}\" was removed from your account and no longer signs you in. If this was not you, change your password and check your security settings."
            ),
        )
    }

    /// A passkey's signature counter did not move forward: its key may have been copied.
    pub fn passkey_clone_suspected(user: &user::Model, name: &str) -> Self {
        Self::notice(
            "passkey_clone_suspected",
            &user.email,
            &user.name,
            "A copy of your passkey may exist",
            &format!(
                "A sign-in with your passkey \"{name}\" was refused: the authenticator's counter went backwards, which happens when its key was copied to another device. If you did not just restore or clone that authenticator, remove the passkey and register a new one."
            ),
        )
    }

    /// A successful sign-in from an IP this account never signed in from.
    pub fn new_sign_in(config: &Config, user: &user::Model, session: &session::Model) -> Self {
        let base_url = config.public_base();
        let name = &user.name;
        let facts = session_facts(session);
        let text = format!(
            "{}\n\nYour account was just signed in to from a new IP address:\n\n{facts}\n\n\
             If this was you, there is nothing to do. If it was not, sign in at {base_url}, sign out \
             everywhere else (POST /me/sessions/revoke-others, or remove the session from your list \
             of sessions) and change your password.\n",
            greeting(name)
        );
        let html = format!(
            "<p>{}</p><p>Your account was just signed in to from a new IP address:</p><pre>{}</pre>\
             <p>If this was you, there is nothing to do. If it was not, sign in at {base_url}, sign out \
             everywhere else (<code>POST /me/sessions/revoke-others</code>) and change your password.</p>",
            html_escape(&greeting(name)),
            html_escape(&facts)
        );
        Self::new(
            "new_sign_in",
            &user.email,
            "New sign-in to your account",
            text,
            html,
        )
    }

    /// A session's browser fingerprint changed mid-session (possible session hijacking).
    pub fn fingerprint_alert(user: &user::Model, session: &session::Model, revoked: bool) -> Self {
        let name = &user.name;
        let facts = session_facts(session);
        let outcome = if revoked {
            "We signed that session out to be safe."
        } else {
            "The session is flagged in your list of sessions; if you do not recognise it, revoke it and change your password."
        };
        let text = format!(
            "{}\n\nA signed-in session on your account started to look like a different browser:\n\n{facts}\n\n{outcome}\n",
            greeting(name)
        );
        let html = format!(
            "<p>{}</p><p>A signed-in session on your account started to look like a different browser:</p><pre>{}</pre><p>{}</p>",
            html_escape(&greeting(name)),
            html_escape(&facts),
            html_escape(outcome)
        );
        Self::new(
            "fingerprint_alert",
            &user.email,
            "Unusual activity on one of your sessions",
            text,
            html,
        )
    }
}
