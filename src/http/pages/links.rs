//! The pages behind mailed links: each `GET` shows one button and changes nothing (mail
//! scanners and link previews open links); the button's `POST` does the action. A `GET` without
//! `Accept: text/html` (curl, scripts) keeps the JSON behaviour of the API routes, which stay
//! where they are.
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::Deserialize;

use crate::context::AppContext;
use crate::service::{account, verification};

use super::super::extract::Client;
use super::{Layout, PageForm, capitalised, message, refusal, render};

pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/verify-email/confirm", post(verify).get(to_security))
        .route(
            "/confirm-email-change/confirm",
            post(confirm_change).get(to_security),
        )
        .route("/reset-password", get(reset_page).post(reset))
}

/// A GET of a button's address (a reload after its POST): the settings page.
async fn to_security() -> Response {
    super::see_other("/account/security")
}

#[derive(Template)]
#[template(path = "link_action.html")]
pub struct LinkAction {
    pub layout: Layout,
    pub title: String,
    pub text: String,
    pub action: String,
    pub token: String,
    pub button: String,
}

/// The one-button page of a link that still works.
pub fn action_page(
    ctx: &AppContext,
    title: &str,
    text: &str,
    action: &str,
    token: &str,
    button: &str,
) -> Response {
    render(
        StatusCode::OK,
        &LinkAction {
            layout: Layout::new(&ctx.config),
            title: title.to_owned(),
            text: text.to_owned(),
            action: action.to_owned(),
            token: token.to_owned(),
            button: button.to_owned(),
        },
    )
}

/// `GET /verify-email?token=` for a browser.
pub async fn verify_page(ctx: &AppContext, token: Option<&str>) -> Response {
    let Some(token) = token else {
        return missing_token(ctx);
    };
    match verification::check_link(ctx, token, ctx.now()).await {
        Ok(email) => action_page(
            ctx,
            "Verify your email address",
            &format!("Press the button to confirm that {email} is yours."),
            "/verify-email/confirm",
            token,
            "Verify my address",
        ),
        Err(e) => refusal(ctx, e, Some(("/account/security", "Ask for a new link"))),
    }
}

fn missing_token(ctx: &AppContext) -> Response {
    message(
        ctx,
        StatusCode::UNPROCESSABLE_ENTITY,
        "This link is incomplete",
        &["Copy the whole link from the mail into the address bar."],
        None,
    )
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

/// `POST /verify-email/confirm`: the verification page's button.
async fn verify(
    State(ctx): State<AppContext>,
    Client(client): Client,
    PageForm(form): PageForm<TokenForm>,
) -> Response {
    match verification::confirm(&ctx, &form.token, &client, ctx.now()).await {
        Ok(user) => message(
            &ctx,
            StatusCode::OK,
            "Your address is verified",
            &[&format!("{} is confirmed. Thank you.", user.email)],
            Some(("/account/security", "Go to your security settings")),
        ),
        Err(e) => refusal(
            &ctx,
            e,
            Some(("/account/security", "Go to your security settings")),
        ),
    }
}

/// `GET /confirm-email-change?token=` for a browser.
pub async fn confirm_change_page(ctx: &AppContext, token: Option<&str>) -> Response {
    let Some(token) = token else {
        return missing_token(ctx);
    };
    match account::check_email_change_link(ctx, token, ctx.now()).await {
        Ok(email) => action_page(
            ctx,
            "Confirm your new email address",
            &format!("Press the button to make {email} your account's address."),
            "/confirm-email-change/confirm",
            token,
            "Use this address",
        ),
        Err(e) => refusal(
            ctx,
            e,
            Some(("/account/security", "Go to your security settings")),
        ),
    }
}

/// `POST /confirm-email-change/confirm`: that page's button.
async fn confirm_change(
    State(ctx): State<AppContext>,
    Client(client): Client,
    PageForm(form): PageForm<TokenForm>,
) -> Response {
    match account::confirm_email_change(&ctx, &form.token, &client, ctx.now()).await {
        Ok(user) => message(
            &ctx,
            StatusCode::OK,
            "Your address has changed",
            &[&format!("Your account now uses {}.", user.email)],
            Some(("/account/security", "Go to your security settings")),
        ),
        Err(e) => refusal(
            &ctx,
            e,
            Some(("/account/security", "Go to your security settings")),
        ),
    }
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    layout: Layout,
    token: String,
    min_length: usize,
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// `GET /reset-password?token=`: the form for the new password (the link is not used yet).
async fn reset_page(
    State(ctx): State<AppContext>,
    super::super::extract::ApiQuery(query): super::super::extract::ApiQuery<TokenQuery>,
) -> Response {
    let Some(token) = query.token else {
        return missing_token(&ctx);
    };
    match account::check_reset_link(&ctx, &token, ctx.now()).await {
        Ok(()) => render(
            StatusCode::OK,
            &ResetPage {
                layout: Layout::new(&ctx.config),
                token,
                min_length: ctx.config.password.min_length,
            },
        ),
        Err(e) => refusal(&ctx, e, Some(("/forgot-password", "Ask for a new link"))),
    }
}

#[derive(Deserialize)]
struct ResetForm {
    token: String,
    new_password: SecretString,
}

/// `POST /reset-password`: sets the password; every session ends, nobody is signed in.
async fn reset(
    State(ctx): State<AppContext>,
    Client(client): Client,
    PageForm(form): PageForm<ResetForm>,
) -> Response {
    match account::confirm_reset(&ctx, &form.token, &form.new_password, &client, ctx.now()).await {
        Ok(()) => message(
            &ctx,
            StatusCode::OK,
            "Your password is set",
            &["Every session of your account was signed out. Sign in with the new password."],
            Some(("/sign-in", "Sign in")),
        ),
        Err(e @ crate::error::Error::InvalidInput { .. }) => {
            let api = super::super::error::ApiError::from(e);
            render(
                api.status,
                &ResetPage {
                    layout: Layout::new(&ctx.config).error(capitalised(&api.message)),
                    token: form.token,
                    min_length: ctx.config.password.min_length,
                },
            )
        }
        Err(e) => refusal(&ctx, e, Some(("/forgot-password", "Ask for a new link"))),
    }
}
