//! Flow: passkeys (WebAuthn, by webauthn-rs). Three ceremonies, each a `start` that stores its
//! state server-side ([`ceremonies`]) and answers the options, and a `finish` that takes the
//! state once and verifies the browser's credential:
//! - registration, behind step-up, stores a credential ([`passkeys`]) and mails the user;
//! - login, with an address (its credentials are offered) or without (a discoverable credential
//!   names its account), hands over to [`login::establish`] as a multi-factor proof: user
//!   verification is required, so no TOTP code is asked;
//! - step-up opens the window as a password or a code does.
//!
//! A signature counter that does not move forward means a cloned authenticator: refused,
//! audited, and the user is mailed.
use chrono::{DateTime, Utc};
use secrecy::SecretString;
use serde_json::{Value, json};
use webauthn_rs::prelude::{
    DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Uuid, Webauthn, WebauthnBuilder,
    WebauthnError,
};

use crate::config::Config;
use crate::context::AppContext;
use crate::domain::Email;
use crate::entity::{passkey, user};
use crate::error::{Error, Result};
use crate::mail::Mail;

use super::ceremonies::{self, Kind, NewCeremony};
use super::login::{self, Proven};
use super::passkeys::{self, NewPasskey, PasskeyView};
use super::sessions::{AuthMethod, Authenticated, NewSession};
use super::{Actor, ClientInfo, audit, identities, outbox, step_up, throttle, users};

/// The relying party from the configuration: `webauthn.rp_id` (else `public_url`'s host),
/// `public_url`'s origin and `webauthn.extra_origins`. `None` when `public_url` is an IP address
/// and no `rp_id` is set (WebAuthn needs a domain): passkey routes then say so.
pub fn relying_party(config: &Config) -> anyhow::Result<Option<Webauthn>> {
    let origin = config.public_url.clone();
    let rp_id = match (&config.webauthn.rp_id, origin.domain()) {
        (Some(id), _) => id.clone(),
        (None, Some(domain)) => domain.to_owned(),
        (None, None) => return Ok(None),
    };
    let mut builder = WebauthnBuilder::new(&rp_id, &origin).map_err(|e| {
        anyhow::anyhow!("webauthn: rp_id `{rp_id}` does not fit public_url `{origin}`: {e}")
    })?;
    let name = config
        .webauthn
        .rp_name
        .clone()
        .unwrap_or_else(|| rp_id.clone());
    builder = builder.rp_name(&name).timeout(config.webauthn.ceremony_ttl);
    for extra in &config.webauthn.extra_origins {
        builder = builder.append_allowed_origin(extra);
    }
    Ok(Some(builder.build().map_err(|e| {
        anyhow::anyhow!("webauthn: the relying party cannot be built: {e}")
    })?))
}

fn webauthn(ctx: &AppContext) -> Result<&Webauthn> {
    ctx.webauthn.as_deref().ok_or_else(|| {
        Error::conflict(
            "passkeys_unavailable",
            "passkeys need public_url on a domain name, not an IP address: set public_url or webauthn.rp_id",
        )
    })
}

/// A started ceremony: the options for the browser (`{"publicKey": …}`, maybe `mediation`),
/// the id it sends back, and the binding cookie to set.
pub struct Started {
    pub options: Value,
    pub ceremony_id: String,
    pub binding: String,
}

fn rejected(message: &str) -> Error {
    Error::Rejected {
        code: "passkey_rejected",
        message: message.to_owned(),
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| anyhow::anyhow!("cannot store a ceremony: {e}").into())
}

fn from_json<T: serde::de::DeserializeOwned>(raw: &str) -> Result<T> {
    serde_json::from_str(raw)
        .map_err(|e| anyhow::anyhow!("a stored ceremony is unreadable: {e}").into())
}

fn options(value: &impl serde::Serialize) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| anyhow::anyhow!("cannot write the options: {e}").into())
}

/// The WebAuthn user handle of an account: its id (a UUID; never an address).
fn user_handle(user: &user::Model) -> Result<Uuid> {
    Uuid::parse_str(&user.id)
        .map_err(|_| anyhow::anyhow!("user id {} is not a UUID", user.id).into())
}

/// An account in an SSO domain signs in at its IdP only (it decides who may enter).
async fn refuse_sso_domain(ctx: &AppContext, email: &str) -> Result<()> {
    match Email::parse(email) {
        Ok(email) => identities::refuse_password_for(&ctx.db, &email).await,
        Err(_) => Ok(()),
    }
}

fn credentials(rows: &[passkey::Model]) -> Result<Vec<Passkey>> {
    rows.iter().map(passkeys::credential).collect()
}

// ----- registration ---------------------------------------------------------------------------

/// `POST /me/passkeys/register/start` (the caller checked step-up).
pub async fn register_start(
    ctx: &AppContext,
    auth: &Authenticated,
    binding: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Started> {
    let webauthn = webauthn(ctx)?;
    let user = &auth.user;
    refuse_sso_domain(ctx, &user.email).await?;
    let existing = passkeys::of_user(&ctx.db, &user.id).await?;
    let exclude = credentials(&existing)?
        .iter()
        .map(|p| p.cred_id().clone())
        .collect::<Vec<_>>();
    let display = if user.name.trim().is_empty() {
        user.email.as_str()
    } else {
        user.name.as_str()
    };
    let (ccr, state) = webauthn
        .start_passkey_registration(
            user_handle(user)?,
            &user.email,
            display,
            (!exclude.is_empty()).then_some(exclude),
        )
        .map_err(|e| anyhow::anyhow!("cannot start a passkey registration: {e}"))?;
    let started = ceremonies::begin(
        &ctx.db,
        NewCeremony {
            kind: Kind::Register,
            user_id: Some(&user.id),
            session_id: Some(&auth.session.id),
            binding,
            state: to_json(&state)?,
            ttl: ctx.config.webauthn.ceremony_ttl,
        },
        now,
    )
    .await?;
    let mut options = options(&ccr)?;
    // Ask for a discoverable credential (sign-in without typing an address), without failing
    // on security keys that cannot store one.
    if let Some(selection) = options.pointer_mut("/publicKey/authenticatorSelection") {
        selection["residentKey"] = json!("preferred");
        selection["requireResidentKey"] = json!(false);
    }
    Ok(Started {
        options,
        ceremony_id: started.id,
        binding: started.binding,
    })
}

/// What `POST /me/passkeys/register/finish` sends.
pub struct Registration<'a> {
    pub ceremony_id: &'a str,
    pub binding: Option<&'a str>,
    pub name: &'a str,
    pub credential: &'a RegisterPublicKeyCredential,
}

/// Verifies the new credential and stores it; the user is mailed.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id))]
pub async fn register_finish(
    ctx: &AppContext,
    auth: &Authenticated,
    reg: Registration<'_>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<PasskeyView> {
    let webauthn = webauthn(ctx)?;
    let name = passkeys::check_name(reg.name)?;
    let user = &auth.user;
    let ceremony = ceremonies::take(
        &ctx.db,
        Kind::Register,
        reg.ceremony_id,
        reg.binding,
        Some(&auth.session.id),
        now,
    )
    .await
    .map_err(registration_refused)?;
    let state: PasskeyRegistration = from_json(&ceremony.state)?;
    let credential = webauthn
        .finish_passkey_registration(reg.credential, &state)
        .map_err(|e| {
            tracing::info!(error = %e, "passkey registration refused");
            Error::invalid(
                "passkey_rejected",
                "the authenticator's answer was not accepted; try again",
            )
        })?;
    let flags = serde_json::to_value(&credential).unwrap_or_default();
    let flag = |name: &str| {
        flags
            .pointer(&format!("/cred/{name}"))
            .and_then(Value::as_bool)
            .unwrap_or(false)
    };
    let transports = reg
        .credential
        .response
        .transports
        .iter()
        .flatten()
        .filter_map(|t| serde_json::to_value(t).ok())
        .filter_map(|v| v.as_str().map(str::to_owned))
        .collect();
    let txn = sea_orm::TransactionTrait::begin(&ctx.db).await?;
    let row = passkeys::insert(
        &txn,
        NewPasskey {
            user_id: &user.id,
            name,
            credential: &credential,
            transports,
            backup_eligible: flag("backup_eligible"),
            backup_state: flag("backup_state"),
        },
        now,
    )
    .await?;
    audit::Event::new(&Actor::User(user.id.clone()), "passkey_added")
        .user(&user.id)
        .client(client)
        .detail(json!({ "passkeyId": row.id, "name": row.name }))
        .record(&txn, now)
        .await?;
    outbox::queue(
        ctx,
        &txn,
        Some(&user.id),
        &Mail::passkey_added(user, &row.name),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(row.into())
}

/// A refused registration ceremony is the caller's mistake (422), not a failed sign-in.
fn registration_refused(e: Error) -> Error {
    match e {
        Error::Rejected { code, message } => Error::InvalidInput { code, message },
        other => other,
    }
}

// ----- login ----------------------------------------------------------------------------------

/// `POST /login/passkey/start`. With an address whose account has passkeys, its credentials are
/// offered; otherwise (no address, an unknown one, or one without passkeys) the options ask for
/// a discoverable credential, so the answer's shape does not tell whether an address has an
/// account. `conditional`: the browser's autofill (mediation "conditional") runs it.
pub async fn login_start(
    ctx: &AppContext,
    raw_email: Option<&str>,
    conditional: bool,
    binding: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Started> {
    let webauthn = webauthn(ctx)?;
    throttle::per_ip_per_hour(
        &ctx.db,
        "passkey-ip",
        client.ip,
        ctx.config.webauthn.logins_per_ip_per_hour,
        now,
    )
    .await?;
    let mut found = None;
    if let Some(raw) = raw_email.map(str::trim).filter(|r| !r.is_empty()) {
        let email = Email::parse(raw)?;
        identities::refuse_password_for(&ctx.db, &email).await?;
        if let Some(user) = users::find_by_email(&ctx.db, &email).await? {
            let rows = passkeys::of_user(&ctx.db, &user.id).await?;
            if !rows.is_empty() && user.disabled_at.is_none() {
                found = Some((user, rows));
            }
        }
    }
    let (options, state, user_id) = match found {
        Some((user, rows)) => {
            let (rcr, state) = webauthn
                .start_passkey_authentication(&credentials(&rows)?)
                .map_err(|e| anyhow::anyhow!("cannot start a passkey login: {e}"))?;
            let mut options = options(&rcr)?;
            if conditional {
                options["mediation"] = json!("conditional");
            }
            (options, to_json(&LoginState::Known(state))?, Some(user.id))
        }
        None => {
            let (rcr, state) = webauthn
                .start_discoverable_authentication()
                .map_err(|e| anyhow::anyhow!("cannot start a passkey login: {e}"))?;
            let mut options = options(&rcr)?;
            // webauthn-rs marks every discoverable request for autofill; a button press is a
            // plain (modal) request.
            if !conditional && let Some(map) = options.as_object_mut() {
                map.remove("mediation");
            }
            (options, to_json(&LoginState::Discoverable(state))?, None)
        }
    };
    let started = ceremonies::begin(
        &ctx.db,
        NewCeremony {
            kind: Kind::Login,
            user_id: user_id.as_deref(),
            session_id: None,
            binding,
            state,
            ttl: ctx.config.webauthn.ceremony_ttl,
        },
        now,
    )
    .await?;
    Ok(Started {
        options,
        ceremony_id: started.id,
        binding: started.binding,
    })
}

#[derive(serde::Serialize, serde::Deserialize)]
enum LoginState {
    Known(PasskeyAuthentication),
    Discoverable(DiscoverableAuthentication),
}

/// `POST /login/passkey/finish`: the credential proves the account; a full session follows.
#[tracing::instrument(skip_all, err(level = "debug"))]
pub async fn login_finish(
    ctx: &AppContext,
    ceremony_id: &str,
    binding: Option<&str>,
    credential: &PublicKeyCredential,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<(user::Model, NewSession)> {
    let webauthn = webauthn(ctx)?;
    // Failed assertions count against the client's IP, as failed passwords do; the account's
    // own password throttle does not block a passkey.
    let buckets = throttle::buckets(&ctx.config.throttle, None, client.ip);
    let reservation = throttle::reserve(&ctx.db, &ctx.config.throttle, buckets, now).await?;
    let checked = verify_login(ctx, webauthn, ceremony_id, binding, credential, client, now);
    let (verdict, reservation) = reservation.check(&ctx.db, checked).await?;
    let (user, row) = match verdict {
        Ok(found) => found,
        Err(e) => {
            reservation.failed();
            return Err(e);
        }
    };
    reservation.succeeded(&ctx.db, None).await?;
    refuse_sso_domain(ctx, &user.email).await?;
    let (session, _) = login::establish(
        ctx,
        Proven {
            user: &user,
            method: AuthMethod::Passkey,
            // User verification was required: the passkey is both factors.
            second_factor_trusted: true,
            pending_detail: json!({}),
            detail: json!({ "method": "passkey", "passkeyId": row.id }),
        },
        client,
        now,
    )
    .await?;
    Ok((user, session))
}

/// Takes the ceremony and verifies the assertion: `Ok(Err(..))` is a refused credential (a
/// failed attempt), `Err(..)` a fault.
async fn verify_login(
    ctx: &AppContext,
    webauthn: &Webauthn,
    ceremony_id: &str,
    binding: Option<&str>,
    credential: &PublicKeyCredential,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Result<(user::Model, passkey::Model)>> {
    let ceremony =
        match ceremonies::take(&ctx.db, Kind::Login, ceremony_id, binding, None, now).await {
            Ok(c) => c,
            Err(e @ Error::Rejected { .. }) => {
                login_refused(ctx, None, "ceremony_invalid", client, now).await?;
                return Ok(Err(e));
            }
            Err(e) => return Err(e),
        };
    let credential_id = passkeys::encode_id(credential.get_credential_id());
    let Some(row) = passkeys::by_credential_id(&ctx.db, &credential_id).await? else {
        login_refused(ctx, None, "unknown_credential", client, now).await?;
        return Ok(Err(rejected("this passkey is not registered here")));
    };
    let state: LoginState = from_json(&ceremony.state)?;
    let stored = passkeys::credential(&row)?;
    let outcome = match state {
        LoginState::Known(state) => {
            if ceremony.user_id.as_deref() != Some(row.user_id.as_str()) {
                login_refused(
                    ctx,
                    Some(&row),
                    "credential_of_another_account",
                    client,
                    now,
                )
                .await?;
                return Ok(Err(rejected("this passkey is not one of this account's")));
            }
            webauthn.finish_passkey_authentication(credential, &state)
        }
        LoginState::Discoverable(state) => {
            // The authenticator names the account (the user handle); it must own the credential.
            let named = webauthn
                .identify_discoverable_authentication(credential)
                .ok()
                .map(|(handle, _)| handle.to_string());
            if named.as_deref() != Some(row.user_id.as_str()) {
                login_refused(
                    ctx,
                    Some(&row),
                    "credential_of_another_account",
                    client,
                    now,
                )
                .await?;
                return Ok(Err(rejected(
                    "this passkey does not belong to the account it names",
                )));
            }
            webauthn.finish_discoverable_authentication_v2(credential, state, &stored)
        }
    };
    // A disabled account is refused before its passkey counts as used (and on the record).
    let user = users::get(ctx, &row.user_id).await?;
    if user.disabled_at.is_some() {
        login_refused(ctx, Some(&row), "account_disabled", client, now).await?;
        return Ok(Err(Error::forbidden(
            "account_disabled",
            "this account has been disabled; contact an administrator",
        )));
    }
    match check_assertion(ctx, &row, stored, outcome, client, now).await? {
        Ok(()) => {}
        Err((reason, e)) => {
            login_refused(ctx, Some(&row), reason, client, now).await?;
            return Ok(Err(e));
        }
    }
    Ok(Ok((user, row)))
}

/// The verification's result: records the use, or names why it was refused (a counter that did
/// not move forward is audited and mailed as a possible clone).
async fn check_assertion(
    ctx: &AppContext,
    row: &passkey::Model,
    mut stored: Passkey,
    outcome: std::result::Result<webauthn_rs::prelude::AuthenticationResult, WebauthnError>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<std::result::Result<(), (&'static str, Error)>> {
    let result = match outcome {
        Ok(result) => result,
        Err(WebauthnError::CredentialPossibleCompromise) => {
            clone_suspected(ctx, row, client, now).await?;
            return Ok(Err((
                "counter_not_increased",
                rejected(
                    "this passkey's signature counter went backwards (a copied authenticator?); it was refused",
                ),
            )));
        }
        Err(e) => {
            tracing::info!(error = %e, passkey_id = %row.id, "passkey assertion refused");
            return Ok(Err((
                "verification_failed",
                rejected("the passkey's answer was not accepted"),
            )));
        }
    };
    stored.update_credential(&result);
    let moved = passkeys::record_use(
        &ctx.db,
        row,
        &stored,
        result.counter(),
        result.backup_state(),
        result.backup_eligible(),
        now,
    )
    .await?;
    if !moved {
        // Another assertion with this counter or a higher one won meanwhile.
        clone_suspected(ctx, row, client, now).await?;
        return Ok(Err((
            "counter_not_increased",
            rejected(
                "this passkey's signature counter went backwards (a copied authenticator?); it was refused",
            ),
        )));
    }
    Ok(Ok(()))
}

async fn clone_suspected(
    ctx: &AppContext,
    row: &passkey::Model,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    let user = users::get(ctx, &row.user_id).await?;
    audit::Event::new(&Actor::System, "passkey_clone_suspected")
        .user(&row.user_id)
        .client(client)
        .detail(json!({ "passkeyId": row.id, "name": row.name, "storedCount": row.sign_count }))
        .record(&ctx.db, now)
        .await?;
    // One mail an hour per passkey: a double submit (two assertions with one counter) is not
    // a flood of alarms.
    let key = format!("clone-mail:{}", row.id);
    if !throttle::once_per(&ctx.db, key, std::time::Duration::from_secs(3600), now).await? {
        return Ok(());
    }
    outbox::queue(
        ctx,
        &ctx.db,
        Some(&user.id),
        &Mail::passkey_clone_suspected(&user, &row.name),
        now,
    )
    .await
}

async fn login_refused(
    ctx: &AppContext,
    row: Option<&passkey::Model>,
    reason: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    let user_id = row.map(|r| r.user_id.as_str());
    let detail =
        json!({ "method": "passkey", "reason": reason, "passkeyId": row.map(|r| r.id.as_str()) });
    login::record_failure(ctx, user_id, "passkey", reason, detail, client, now).await
}

// ----- step-up --------------------------------------------------------------------------------

/// `POST /auth/confirm/passkey/start`: a challenge for this account's passkeys.
pub async fn step_up_start(
    ctx: &AppContext,
    auth: &Authenticated,
    binding: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Started> {
    let webauthn = webauthn(ctx)?;
    let rows = passkeys::of_user(&ctx.db, &auth.user.id).await?;
    if rows.is_empty() {
        return Err(Error::invalid(
            "no_passkeys",
            "this account has no passkey; confirm with {\"password\"} or {\"code\"} at POST /auth/confirm",
        ));
    }
    let (rcr, state) = webauthn
        .start_passkey_authentication(&credentials(&rows)?)
        .map_err(|e| anyhow::anyhow!("cannot start a passkey confirmation: {e}"))?;
    let started = ceremonies::begin(
        &ctx.db,
        NewCeremony {
            kind: Kind::StepUp,
            user_id: Some(&auth.user.id),
            session_id: Some(&auth.session.id),
            binding,
            state: to_json(&state)?,
            ttl: ctx.config.webauthn.ceremony_ttl,
        },
        now,
    )
    .await?;
    Ok(Started {
        options: options(&rcr)?,
        ceremony_id: started.id,
        binding: started.binding,
    })
}

/// `POST /auth/confirm/passkey/finish`: opens the step-up window. Returns the session's new
/// token and the window's end.
#[tracing::instrument(skip_all, err(level = "debug"), fields(user_id = %auth.user.id))]
pub async fn step_up_finish(
    ctx: &AppContext,
    auth: &Authenticated,
    ceremony_id: &str,
    binding: Option<&str>,
    credential: &PublicKeyCredential,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<(SecretString, DateTime<Utc>)> {
    let webauthn = webauthn(ctx)?;
    let user = &auth.user;
    let buckets = throttle::buckets(&ctx.config.throttle, None, client.ip);
    let reservation = throttle::reserve(&ctx.db, &ctx.config.throttle, buckets, now).await?;
    let checked = async {
        let ceremony = match ceremonies::take(
            &ctx.db,
            Kind::StepUp,
            ceremony_id,
            binding,
            Some(&auth.session.id),
            now,
        )
        .await
        {
            Ok(c) => c,
            Err(e @ Error::Rejected { .. }) => return Ok(Err(("ceremony_invalid", e))),
            Err(e) => return Err(e),
        };
        let credential_id = passkeys::encode_id(credential.get_credential_id());
        let row = match passkeys::by_credential_id(&ctx.db, &credential_id).await? {
            Some(row)
                if row.user_id == user.id && ceremony.user_id.as_deref() == Some(&user.id) =>
            {
                row
            }
            _ => {
                return Ok(Err((
                    "credential_of_another_account",
                    rejected("this passkey is not one of this account's"),
                )));
            }
        };
        let state: PasskeyAuthentication = from_json(&ceremony.state)?;
        let stored = passkeys::credential(&row)?;
        let outcome = webauthn.finish_passkey_authentication(credential, &state);
        check_assertion(ctx, &row, stored, outcome, client, now).await
    };
    let (verdict, reservation) = reservation.check(&ctx.db, checked).await?;
    if let Err((reason, e)) = verdict {
        reservation.failed();
        audit::Event::new(&Actor::User(user.id.clone()), "step_up_failed")
            .user(&user.id)
            .client(client)
            .detail(json!({ "factor": "passkey", "reason": reason }))
            .record(&ctx.db, now)
            .await?;
        return Err(e);
    }
    reservation.succeeded(&ctx.db, None).await?;
    step_up::open_window(ctx, auth, "passkey", client, now).await
}

// ----- management -----------------------------------------------------------------------------

/// An account's passkeys, oldest first.
pub async fn list(ctx: &AppContext, user_id: &str) -> Result<Vec<PasskeyView>> {
    Ok(passkeys::of_user(&ctx.db, user_id)
        .await?
        .into_iter()
        .map(PasskeyView::from)
        .collect())
}

/// Renames one of `user_id`'s passkeys.
pub async fn rename(
    ctx: &AppContext,
    user_id: &str,
    id: &str,
    name: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<PasskeyView> {
    let name = passkeys::check_name(name)?;
    let row = passkeys::rename(&ctx.db, user_id, id, name).await?;
    audit::Event::new(&Actor::User(user_id.to_owned()), "passkey_renamed")
        .user(user_id)
        .client(client)
        .detail(json!({ "passkeyId": row.id, "name": row.name }))
        .record(&ctx.db, now)
        .await?;
    Ok(row.into())
}

/// Removes a passkey: `owner` is the signed-in user (another account's id is not found), `None`
/// for an operator. Audited; the user is mailed. It fails at its very next use.
pub async fn remove(
    ctx: &AppContext,
    actor: &Actor,
    owner: Option<&str>,
    id: &str,
    client: Option<&ClientInfo>,
    now: DateTime<Utc>,
) -> Result<PasskeyView> {
    let row = passkeys::get_of_user(&ctx.db, owner, id).await?;
    let user = users::get(ctx, &row.user_id).await?;
    let txn = sea_orm::TransactionTrait::begin(&ctx.db).await?;
    if !passkeys::delete(&txn, &row.id).await? {
        return Err(Error::NotFound("passkey"));
    }
    audit::Event::new(actor, "passkey_removed")
        .user(&row.user_id)
        .maybe_client(client)
        .detail(json!({ "passkeyId": row.id, "name": row.name }))
        .record(&txn, now)
        .await?;
    outbox::queue(
        ctx,
        &txn,
        Some(&user.id),
        &Mail::passkey_removed(&user, &row.name),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(row.into())
}
