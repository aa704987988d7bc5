//! The security settings page (`/account/security`) and its forms. A sensitive action whose
//! step-up window is closed answers a confirmation form in place (password, code or passkey)
//! that carries the action's fields; once confirmed, the browser is sent back to the action
//! with them (a 307 repeats the POST), so it carries on.
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::BTreeMap;

use crate::context::AppContext;
use crate::error::Error;
use crate::service::sessions::Authenticated;
use crate::service::step_up::{self, Proof};
use crate::service::{
    Actor, account, api_keys, deletion, history, passkeys, sessions, two_factor, verification,
    webauthn,
};

use super::super::cookies;
use super::super::error::ApiError;
use super::super::extract::{AnySession, ApiQuery, Client, MaybeSession};
use super::{Layout, PageForm, capitalised, message, render, see_other, see_other_with};

pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/account/security", get(page).post(back_to_page))
        .route("/account/confirm", get(confirm_page).post(confirm))
        .route(
            "/account/sessions/revoke",
            post(revoke_session).get(back_to_page_get),
        )
        .route(
            "/account/sessions/revoke-others",
            post(revoke_others).get(back_to_page_get),
        )
        .route("/account/2fa/setup", post(totp_setup).get(back_to_page_get))
        .route(
            "/account/2fa/enable",
            post(totp_enable).get(back_to_page_get),
        )
        .route(
            "/account/2fa/disable",
            post(totp_disable).get(back_to_page_get),
        )
        .route(
            "/account/2fa/recovery-codes",
            post(recovery_codes).get(back_to_page_get),
        )
        .route(
            "/account/passkeys/rename",
            post(rename_passkey).get(back_to_page_get),
        )
        .route(
            "/account/passkeys/remove",
            post(remove_passkey).get(back_to_page_get),
        )
        .route("/account/api-keys", post(create_key).get(back_to_page_get))
        .route(
            "/account/api-keys/revoke",
            post(revoke_key).get(back_to_page_get),
        )
        .route("/account/email", post(change_email).get(back_to_page_get))
        .route(
            "/account/email/cancel",
            post(cancel_email_change).get(back_to_page_get),
        )
        .route(
            "/account/password",
            post(change_password).get(back_to_page_get),
        )
        .route("/account/delete", post(delete).get(back_to_page_get))
        .route(
            "/account/delete/cancel",
            post(cancel_delete).get(back_to_page_get),
        )
        .route(
            "/account/verify/resend",
            post(resend_verification).get(back_to_page_get),
        )
        .route("/account/sign-out", post(sign_out).get(back_to_page_get))
}

/// The account actions that land back on the page say what they did with `?done=`: a fixed
/// word, never reflected text.
const DONE: &[(&str, &str)] = &[
    ("session_revoked", "That session is signed out."),
    ("others_revoked", "Every other session is signed out."),
    ("totp_disabled", "Two-factor authentication is off."),
    ("passkey_renamed", "The passkey was renamed."),
    ("passkey_removed", "The passkey was removed."),
    ("passkey_added", "The passkey was added."),
    ("key_revoked", "The API key was revoked."),
    (
        "email_pending",
        "Open the link we mailed to the new address to finish the change.",
    ),
    (
        "email_change_cancelled",
        "The address change was cancelled.",
    ),
    (
        "password_changed",
        "Your password was changed; every other session was signed out.",
    ),
    (
        "deletion_scheduled",
        "Your account is scheduled for deletion.",
    ),
    ("deletion_cancelled", "Your account will not be deleted."),
    (
        "verification_sent",
        "A new verification link is on its way.",
    ),
];

fn done(word: &str) -> String {
    format!("/account/security?done={word}")
}

struct SessionRow {
    id: String,
    device: String,
    ip: String,
    last_active: String,
    last_active_iso: String,
    current: bool,
}

struct LoginRow {
    at: String,
    at_iso: String,
    ip: String,
    device: String,
    method: String,
    result: String,
}

struct PasskeyRow {
    id: String,
    name: String,
    created: String,
    last_used: String,
}

struct KeyRow {
    id: String,
    prefix: String,
    name: String,
    expires: String,
    last_used: String,
}

#[derive(Template)]
#[template(path = "security.html")]
struct SecurityPage {
    layout: Layout,
    email: String,
    verified: bool,
    sessions: Vec<SessionRow>,
    logins: Vec<LoginRow>,
    totp_enabled: bool,
    passkeys: Vec<PasskeyRow>,
    passkeys_available: bool,
    api_keys: Vec<KeyRow>,
    pending_email: Option<String>,
    has_password: bool,
    min_length: usize,
    deletion_due: Option<String>,
    grace: String,
    /// The step-up window is open (adding a passkey may start at once).
    confirmed: bool,
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M UTC").to_string()
}

fn method_words(method: &str) -> String {
    match method {
        "password" => "Password",
        "magic_link" => "Email link",
        "passkey" => "Passkey",
        "sso" => "Single sign-on",
        other => other,
    }
    .to_owned()
}

fn result_words(success: bool, reason: Option<&str>) -> String {
    if success {
        return "Signed in".into();
    }
    match reason {
        Some("wrong_password") => "Wrong password",
        Some("wrong_second_factor") => "Wrong code",
        Some("account_disabled") => "Account disabled",
        Some(_) | None => "Refused",
    }
    .into()
}

#[derive(Deserialize, Default)]
struct DoneQuery {
    done: Option<String>,
}

/// The browser's signed-in session, or the answer that sends it to sign in.
#[allow(clippy::result_large_err)]
fn signed_in(session: Option<Authenticated>) -> Result<Authenticated, Response> {
    session.ok_or_else(|| see_other("/sign-in?next=/account/security"))
}

async fn page(
    State(ctx): State<AppContext>,
    MaybeSession(session): MaybeSession,
    ApiQuery(query): ApiQuery<DoneQuery>,
) -> Response {
    let auth = match signed_in(session) {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let notice = query
        .done
        .as_deref()
        .and_then(|d| DONE.iter().find(|(k, _)| *k == d))
        .map(|(_, words)| *words);
    match security_page(&ctx, &auth, notice).await {
        Ok(response) => response,
        Err(e) => super::refusal(&ctx, e, Some(("/account/security", "Try again"))),
    }
}

async fn security_page(
    ctx: &AppContext,
    auth: &Authenticated,
    notice: Option<&str>,
) -> Result<Response, Error> {
    let now = ctx.now();
    let user = &auth.user;
    let sessions = sessions::list_for_user(ctx, &user.id, Some(&auth.session.id), now)
        .await?
        .into_iter()
        .map(|s| SessionRow {
            id: s.id,
            device: s.device_name,
            ip: s.ip.unwrap_or_else(|| "unknown".into()),
            last_active: when(s.last_active_at),
            last_active_iso: s.last_active_at.to_rfc3339(),
            current: s.current,
        })
        .collect();
    let logins = history::list(&ctx.db, &user.id, 10)
        .await?
        .into_iter()
        .map(|l| LoginRow {
            at: when(l.at),
            at_iso: l.at.to_rfc3339(),
            ip: l.ip.unwrap_or_else(|| "unknown".into()),
            device: l.device_name,
            method: method_words(&l.method),
            result: result_words(l.success, l.reason.as_deref()),
        })
        .collect();
    let passkeys = webauthn::list(ctx, &user.id)
        .await?
        .into_iter()
        .map(|p| PasskeyRow {
            id: p.id,
            name: p.name,
            created: when(p.created_at),
            last_used: p.last_used_at.map_or_else(|| "never".into(), when),
        })
        .collect();
    let api_keys = api_keys::list(ctx, &user.id)
        .await?
        .into_iter()
        .map(|k| KeyRow {
            id: k.id,
            prefix: k.prefix,
            name: k.name,
            expires: k.expires_at.map_or_else(|| "never".into(), when),
            last_used: k.last_used_at.map_or_else(|| "never".into(), when),
        })
        .collect();
    let mut layout = Layout::new(&ctx.config).user(&user.email).with_script();
    if let Some(notice) = notice {
        layout = layout.notice(notice);
    }
    Ok(render(
        StatusCode::OK,
        &SecurityPage {
            layout,
            email: user.email.clone(),
            verified: user.email_verified_at.is_some(),
            sessions,
            logins,
            totp_enabled: user.totp_enabled_at.is_some(),
            passkeys,
            passkeys_available: ctx.webauthn.is_some(),
            api_keys,
            pending_email: account::pending_email(&ctx.db, &user.id, now).await?,
            has_password: user.password_hash.is_some(),
            min_length: ctx.config.password.min_length,
            deletion_due: user.deletion_due_at.map(when),
            grace: crate::mail::human(ctx.config.deletion.grace_period),
            confirmed: confirmed(ctx, auth),
        },
    ))
}

/// A POST to the page itself (a confirmation that carried on to it): show it.
async fn back_to_page() -> Response {
    see_other("/account/security")
}

/// A GET of an action's address (a reload or a bookmark after its POST): the page, not an
/// error.
async fn back_to_page_get() -> Response {
    see_other("/account/security")
}

#[derive(Template)]
#[template(path = "confirm.html")]
struct ConfirmPage {
    layout: Layout,
    reason: String,
    then: String,
    fields: Vec<(String, String)>,
    with_code: bool,
    with_passkey: bool,
}

/// The confirmation form in place of a sensitive action whose step-up window is closed.
async fn confirm_first(
    ctx: &AppContext,
    auth: &Authenticated,
    then: &str,
    fields: Vec<(String, String)>,
    error: Option<String>,
) -> Response {
    let with_passkey = ctx.webauthn.is_some()
        && passkeys::count_of(&ctx.db, &auth.user.id)
            .await
            .is_ok_and(|n| n > 0);
    let mut layout = Layout::new(&ctx.config)
        .user(&auth.user.email)
        .with_script();
    layout.error = error;
    let with_code = auth.user.totp_enabled_at.is_some();
    render(
        if layout.error.is_some() {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        },
        &ConfirmPage {
            layout,
            reason: if with_code {
                "This change needs a fresh confirmation: enter a code from your authenticator app."
                    .into()
            } else {
                "This change needs a fresh confirmation: enter your password.".into()
            },
            then: then.to_owned(),
            fields,
            with_code,
            with_passkey,
        },
    )
}

/// Whether the step-up window is open now.
fn confirmed(ctx: &AppContext, auth: &Authenticated) -> bool {
    step_up::window_until(&auth.session, &ctx.config, ctx.now()).is_some()
}

/// The paths a confirmation may carry on to.
fn confirmable(path: &str) -> bool {
    path == "/account/security"
        || [
            "/account/2fa/setup",
            "/account/2fa/enable",
            "/account/2fa/disable",
            "/account/2fa/recovery-codes",
            "/account/passkeys/remove",
            "/account/api-keys",
            "/account/email",
            "/account/password",
            "/account/delete",
        ]
        .contains(&path)
}

#[derive(Deserialize)]
struct ThenQuery {
    then: Option<String>,
}

/// `GET /account/confirm?then=`: the confirmation form on its own (the passkey button of the
/// page sends here when registering needs a fresh confirmation).
async fn confirm_page(
    State(ctx): State<AppContext>,
    MaybeSession(session): MaybeSession,
    ApiQuery(query): ApiQuery<ThenQuery>,
) -> Response {
    let auth = match settled(&ctx, session) {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let then = query
        .then
        .filter(|t| confirmable(t))
        .unwrap_or_else(|| "/account/security".into());
    confirm_first(&ctx, &auth, &then, Vec::new(), None).await
}

/// `POST /account/confirm`: checks the password or code, opens the window, and sends the
/// browser on to the action with its fields (307: the same POST again), or to the page.
async fn confirm(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    PageForm(form): PageForm<BTreeMap<String, String>>,
) -> Response {
    let auth = match settled(&ctx, session) {
        Ok(auth) => auth,
        Err(response) => return response,
    };
    let then = form
        .get("then")
        .filter(|t| confirmable(t))
        .cloned()
        .unwrap_or_else(|| "/account/security".into());
    let proof = match (form.get("confirm_code"), form.get("confirm_password")) {
        (Some(code), _) => Proof::Code(code.clone()),
        (None, Some(password)) => Proof::Password(password.clone().into()),
        (None, None) => Proof::Password(String::new().into()),
    };
    let carried: Vec<(String, String)> = form
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "then" | "confirm_code" | "confirm_password"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match step_up::confirm(&ctx, &auth, proof, &client, ctx.now()).await {
        Ok((token, _)) => {
            let cookie = cookies::set_session(&ctx.config, &token);
            if then == "/account/security" {
                return see_other_with(&then, cookie);
            }
            let location = HeaderValue::from_str(&then).unwrap_or(HeaderValue::from_static("/"));
            (
                StatusCode::TEMPORARY_REDIRECT,
                [(header::LOCATION, location), (header::SET_COOKIE, cookie)],
            )
                .into_response()
        }
        Err(e) => {
            let api = ApiError::from(e);
            let words = match api.code {
                "invalid_credentials" => "That password is not right.".to_owned(),
                "invalid_code" => "That code is not right. Check the app and try again.".to_owned(),
                _ => capitalised(&api.message),
            };
            confirm_first(&ctx, &auth, &then, carried, Some(words)).await
        }
    }
}

/// What each action needs before it runs: a signed-in browser, an account not waiting for
/// deletion, a verified address (for sensitive actions) and an open step-up window.
async fn gate(
    ctx: &AppContext,
    session: Option<Authenticated>,
    sensitive: Option<(&str, Vec<(String, String)>)>,
) -> Result<Authenticated, Response> {
    let auth = settled(ctx, session)?;
    if let Some((then, fields)) = sensitive
        && !confirmed(ctx, &auth)
    {
        return Err(confirm_first(ctx, &auth, then, fields, None).await);
    }
    Ok(auth)
}

/// A signed-in browser whose account may change its settings: not waiting for deletion (keep
/// it first), address verified (as the API's routes require).
#[allow(clippy::result_large_err)]
fn settled(ctx: &AppContext, session: Option<Authenticated>) -> Result<Authenticated, Response> {
    let auth = signed_in(session)?;
    if auth.user.deletion_due_at.is_some() {
        return Err(message(
            ctx,
            StatusCode::FORBIDDEN,
            "Your account is scheduled for deletion",
            &["Keep your account first; then you can change its settings again."],
            Some(("/account/security", "Back to your security settings")),
        ));
    }
    if auth.user.email_verified_at.is_none() {
        return Err(message(
            ctx,
            StatusCode::FORBIDDEN,
            "Verify your address first",
            &["Open the link we mailed you; then you can change your security settings."],
            Some(("/account/security", "Back to your security settings")),
        ));
    }
    Ok(auth)
}

fn back(ctx: &AppContext, e: Error) -> Response {
    super::refusal(
        ctx,
        e,
        Some(("/account/security", "Back to your security settings")),
    )
}

#[derive(Deserialize)]
struct IdForm {
    id: String,
}

async fn revoke_session(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    PageForm(form): PageForm<IdForm>,
) -> Response {
    let auth = match gate(&ctx, session, None).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    let actor = Actor::User(auth.user.id.clone());
    match sessions::revoke(
        &ctx,
        &actor,
        Some(&auth.user.id),
        &form.id,
        Some(&client),
        ctx.now(),
    )
    .await
    {
        Ok(_) => see_other(&done("session_revoked")),
        Err(e) => back(&ctx, e),
    }
}

async fn revoke_others(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
) -> Response {
    let auth = match gate(&ctx, session, None).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    match account::sign_out_everywhere_else(&ctx, &auth, &client, ctx.now()).await {
        Ok(_) => see_other(&done("others_revoked")),
        Err(e) => back(&ctx, e),
    }
}

#[derive(Template)]
#[template(path = "totp_setup.html")]
struct TotpSetupPage {
    layout: Layout,
    secret: String,
    qr_data_uri: String,
}

async fn totp_setup(
    State(ctx): State<AppContext>,
    MaybeSession(session): MaybeSession,
) -> Response {
    let auth = match gate(&ctx, session, Some(("/account/2fa/setup", Vec::new()))).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    match two_factor::setup(&ctx, &auth, ctx.now()).await {
        Ok(setup) => {
            use base64::Engine;
            let svg = base64::engine::general_purpose::STANDARD.encode(setup.qr_svg.as_bytes());
            render(
                StatusCode::OK,
                &TotpSetupPage {
                    layout: Layout::new(&ctx.config).user(&auth.user.email),
                    secret: setup.secret,
                    qr_data_uri: format!("data:image/svg+xml;base64,{svg}"),
                },
            )
        }
        Err(e) => back(&ctx, e),
    }
}

#[derive(Template)]
#[template(path = "shown_once.html")]
struct ShownOnce {
    layout: Layout,
    title: String,
    text: String,
    them: String,
    items: Vec<String>,
}

fn shown_once(
    ctx: &AppContext,
    auth: &Authenticated,
    title: &str,
    text: &str,
    them: &str,
    items: Vec<String>,
) -> Response {
    render(
        StatusCode::OK,
        &ShownOnce {
            layout: Layout::new(&ctx.config).user(&auth.user.email),
            title: title.to_owned(),
            text: text.to_owned(),
            them: them.to_owned(),
            items,
        },
    )
}

#[derive(Deserialize)]
struct CodeForm {
    code: String,
}

async fn totp_enable(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    let fields = vec![("code".to_owned(), form.code.clone())];
    let auth = match gate(&ctx, session, Some(("/account/2fa/enable", fields))).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    match two_factor::enable(&ctx, &auth, &form.code, &client, ctx.now()).await {
        Ok(codes) => shown_once(
            &ctx,
            &auth,
            "Two-factor authentication is on",
            "Keep these recovery codes somewhere safe: each signs you in once if you lose your phone.",
            "them",
            codes,
        ),
        Err(e) => back(&ctx, e),
    }
}

async fn totp_disable(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
) -> Response {
    let auth = match gate(&ctx, session, Some(("/account/2fa/disable", Vec::new()))).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    match two_factor::disable(&ctx, &auth, &client, ctx.now()).await {
        Ok(()) => see_other(&done("totp_disabled")),
        Err(e) => back(&ctx, e),
    }
}

async fn recovery_codes(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
) -> Response {
    let auth = match gate(
        &ctx,
        session,
        Some(("/account/2fa/recovery-codes", Vec::new())),
    )
    .await
    {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    match two_factor::regenerate_recovery_codes(&ctx, &auth, &client, ctx.now()).await {
        Ok(codes) => shown_once(
            &ctx,
            &auth,
            "New recovery codes",
            "The old codes no longer work. Keep these somewhere safe.",
            "them",
            codes,
        ),
        Err(e) => back(&ctx, e),
    }
}

#[derive(Deserialize)]
struct RenameForm {
    id: String,
    name: String,
}

async fn rename_passkey(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    PageForm(form): PageForm<RenameForm>,
) -> Response {
    let auth = match gate(&ctx, session, None).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    match webauthn::rename(
        &ctx,
        &auth.user.id,
        &form.id,
        &form.name,
        &client,
        ctx.now(),
    )
    .await
    {
        Ok(_) => see_other(&done("passkey_renamed")),
        Err(e) => back(&ctx, e),
    }
}

async fn remove_passkey(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    PageForm(form): PageForm<IdForm>,
) -> Response {
    let fields = vec![("id".to_owned(), form.id.clone())];
    let auth = match gate(&ctx, session, Some(("/account/passkeys/remove", fields))).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    let actor = Actor::User(auth.user.id.clone());
    match webauthn::remove(
        &ctx,
        &actor,
        Some(&auth.user.id),
        &form.id,
        Some(&client),
        ctx.now(),
    )
    .await
    {
        Ok(_) => see_other(&done("passkey_removed")),
        Err(e) => back(&ctx, e),
    }
}

#[derive(Deserialize)]
struct KeyForm {
    name: String,
    #[serde(default)]
    expires_in: String,
}

async fn create_key(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    PageForm(form): PageForm<KeyForm>,
) -> Response {
    let fields = vec![
        ("name".to_owned(), form.name.clone()),
        ("expires_in".to_owned(), form.expires_in.clone()),
    ];
    let auth = match gate(&ctx, session, Some(("/account/api-keys", fields))).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    let expires = Some(form.expires_in.trim()).filter(|e| !e.is_empty());
    match api_keys::create(&ctx, &auth.user.id, &form.name, expires, &client, ctx.now()).await {
        Ok((key, secret)) => shown_once(
            &ctx,
            &auth,
            "Your new API key",
            &format!("Copy the key \"{}\" now and keep it secret.", key.name),
            "it",
            vec![secret],
        ),
        Err(e) => back(&ctx, e),
    }
}

async fn revoke_key(
    State(ctx): State<AppContext>,
    MaybeSession(session): MaybeSession,
    PageForm(form): PageForm<IdForm>,
) -> Response {
    let auth = match gate(&ctx, session, None).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    let actor = Actor::User(auth.user.id.clone());
    match api_keys::revoke(&ctx, &actor, Some(&auth.user.id), &form.id, ctx.now()).await {
        Ok(_) => see_other(&done("key_revoked")),
        Err(e) => back(&ctx, e),
    }
}

#[derive(Deserialize)]
struct EmailForm {
    email: String,
}

async fn change_email(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    PageForm(form): PageForm<EmailForm>,
) -> Response {
    let fields = vec![("email".to_owned(), form.email.clone())];
    let auth = match gate(&ctx, session, Some(("/account/email", fields))).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    match account::request_email_change(&ctx, &auth, &form.email, &client, ctx.now()).await {
        Ok(_) => see_other(&done("email_pending")),
        Err(e) => back(&ctx, e),
    }
}

async fn cancel_email_change(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
) -> Response {
    let auth = match gate(&ctx, session, None).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    match account::cancel_email_change(&ctx, &auth, &client, ctx.now()).await {
        Ok(()) => see_other(&done("email_change_cancelled")),
        Err(e) => back(&ctx, e),
    }
}

#[derive(Deserialize)]
struct PasswordForm {
    current_password: String,
    new_password: String,
}

async fn change_password(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
    PageForm(form): PageForm<PasswordForm>,
) -> Response {
    let fields = vec![
        ("current_password".to_owned(), form.current_password.clone()),
        ("new_password".to_owned(), form.new_password.clone()),
    ];
    let auth = match gate(&ctx, session, Some(("/account/password", fields))).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    let current = form.current_password.into();
    let new = form.new_password.into();
    match account::change_password(&ctx, &auth, &current, &new, &client, ctx.now()).await {
        Ok(token) => see_other_with(
            &done("password_changed"),
            cookies::set_session(&ctx.config, &token),
        ),
        Err(e) => back(&ctx, e),
    }
}

async fn delete(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
) -> Response {
    let auth = match gate(&ctx, session, Some(("/account/delete", Vec::new()))).await {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    let actor = Actor::User(auth.user.id.clone());
    match deletion::schedule(
        &ctx,
        &actor,
        &auth.user,
        Some(&auth.session.id),
        None,
        Some(&client),
        ctx.now(),
    )
    .await
    {
        Ok(_) => see_other(&done("deletion_scheduled")),
        Err(e) => back(&ctx, e),
    }
}

async fn cancel_delete(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
) -> Response {
    let auth = match signed_in(session) {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    let actor = Actor::User(auth.user.id.clone());
    match deletion::cancel(&ctx, &actor, &auth.user.id, Some(&client), ctx.now()).await {
        Ok(_) => see_other(&done("deletion_cancelled")),
        Err(e) => back(&ctx, e),
    }
}

async fn resend_verification(
    State(ctx): State<AppContext>,
    Client(client): Client,
    MaybeSession(session): MaybeSession,
) -> Response {
    let auth = match signed_in(session) {
        Ok(auth) => auth,
        Err(r) => return r,
    };
    if let Err(e) = verification::limit_resend(&ctx, &client, ctx.now()).await {
        return back(&ctx, e);
    }
    let actor = Actor::User(auth.user.id.clone());
    match verification::resend(&ctx, &actor, &auth.user, ctx.now()).await {
        Ok(_) => see_other(&done("verification_sent")),
        Err(e) => back(&ctx, e),
    }
}

async fn sign_out(
    State(ctx): State<AppContext>,
    Client(client): Client,
    AnySession(session): AnySession,
) -> Response {
    if let Some(auth) = session
        && let Err(e) = sessions::logout(&ctx, &auth, &client, ctx.now()).await
    {
        return back(&ctx, e);
    }
    see_other_with("/sign-in", cookies::clear_session(&ctx.config))
}
