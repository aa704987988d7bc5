//! Sign in (email first, then what the account can do), its second step, sign up and the
//! forgotten password.
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use secrecy::SecretString;
use serde::Deserialize;

use crate::context::AppContext;
use crate::domain::Email;
use crate::error::Error;
use crate::service::login::{self, SecondFactor};
use crate::service::users::NewUser;
use crate::service::{account, identities, magic_link, signup};

use super::super::cookies::{self, MAGIC_LINK};
use super::super::extract::{AnySession, ApiQuery, Client, MaybeSession};
use super::{
    Layout, PageForm, capitalised, message, next_target, render, see_other, see_other_with,
};

pub fn routes() -> Router<AppContext> {
    Router::new()
        .route("/sign-in", get(email_page).post(email_step))
        .route("/sign-in/password", post(password).get(to_sign_in))
        .route("/sign-in/code", get(code_page).post(code))
        .route("/sign-in/link", post(link).get(to_sign_in))
        .route("/sign-up", get(sign_up_page).post(sign_up))
        .route("/forgot-password", get(forgot_page).post(forgot))
}

/// A GET of a sign-in step's address (a reload after its POST): back to the first step.
async fn to_sign_in() -> Response {
    see_other("/sign-in")
}

#[derive(Deserialize, Default)]
pub struct NextQuery {
    next: Option<String>,
    rd: Option<String>,
}

#[derive(Template)]
#[template(path = "sign_in.html")]
struct EmailPage {
    layout: Layout,
    next: String,
    email: String,
}

#[derive(Template)]
#[template(path = "sign_in_methods.html")]
struct MethodsPage {
    layout: Layout,
    next: String,
    email: String,
}

#[derive(Template)]
#[template(path = "second_factor.html")]
struct CodePage {
    layout: Layout,
    next: String,
}

#[derive(Template)]
#[template(path = "sign_up.html")]
struct SignUpPage {
    layout: Layout,
    name: String,
    email: String,
    min_length: usize,
}

#[derive(Template)]
#[template(path = "forgot.html")]
struct ForgotPage {
    layout: Layout,
}

/// `GET /sign-in?next=`: the address first. A signed-in browser goes straight on.
async fn email_page(
    State(ctx): State<AppContext>,
    MaybeSession(session): MaybeSession,
    ApiQuery(query): ApiQuery<NextQuery>,
) -> Response {
    // Only a vetted target reaches the page (its script sends the browser there after a
    // passkey sign-in).
    let next = next_target(&ctx.config, query.next.or(query.rd).as_deref());
    if session.is_some() {
        return see_other(&next);
    }
    render(
        StatusCode::OK,
        &EmailPage {
            layout: Layout::new(&ctx.config).with_script(),
            next,
            email: String::new(),
        },
    )
}

#[derive(Deserialize)]
struct EmailForm {
    email: String,
    #[serde(default)]
    next: String,
}

/// `POST /sign-in`: an address in an SSO domain goes to its IdP; any other gets the methods
/// page (the same for every address, so it tells nothing about accounts).
async fn email_step(
    State(ctx): State<AppContext>,
    PageForm(form): PageForm<EmailForm>,
) -> Response {
    let email = match Email::parse(&form.email) {
        Ok(email) => email,
        Err(e) => {
            let api = super::super::error::ApiError::from(e);
            return render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &EmailPage {
                    layout: Layout::new(&ctx.config)
                        .with_script()
                        .error(capitalised(&api.message)),
                    next: next_target(&ctx.config, Some(&form.next)),
                    email: form.email,
                },
            );
        }
    };
    match identities::provider_for_domain(&ctx.db, email.domain()).await {
        Ok(Some(_)) => return to_idp(&ctx, &email, &form.next),
        Ok(None) => {}
        Err(e) => return super::refusal(&ctx, e, Some(("/sign-in", "Try again"))),
    }
    methods(&ctx, StatusCode::OK, email.as_str(), &form.next, None)
}

#[derive(Template)]
#[template(path = "to_idp.html")]
struct ToIdp {
    layout: Layout,
    url: String,
    domain: String,
}

/// On to the domain's IdP. Not a redirect of the form post: the page's `form-action 'self'`
/// would stop the redirect to the IdP's origin, so a page sends the browser on by itself (and
/// offers the link).
fn to_idp(ctx: &AppContext, email: &Email, next: &str) -> Response {
    render(
        StatusCode::OK,
        &ToIdp {
            layout: Layout::new(&ctx.config),
            url: sso_start(email, next),
            domain: email.domain().to_owned(),
        },
    )
}

fn sso_start(email: &Email, next: &str) -> String {
    let mut url = format!(
        "/sso/login?email={}",
        url::form_urlencoded::byte_serialize(email.as_str().as_bytes()).collect::<String>()
    );
    if next.starts_with('/') && !next.starts_with("//") {
        url.push_str("&redirect=");
        url.push_str(&url::form_urlencoded::byte_serialize(next.as_bytes()).collect::<String>());
    }
    url
}

fn methods(
    ctx: &AppContext,
    status: StatusCode,
    email: &str,
    next: &str,
    error: Option<String>,
) -> Response {
    let mut layout = Layout::new(&ctx.config).with_script();
    layout.error = error;
    render(
        status,
        &MethodsPage {
            layout,
            next: next_target(&ctx.config, Some(next)),
            email: email.to_owned(),
        },
    )
}

#[derive(Deserialize)]
struct PasswordForm {
    email: String,
    password: SecretString,
    #[serde(default)]
    next: String,
}

/// `POST /sign-in/password`: the password step, then the code step when the account has one.
async fn password(
    State(ctx): State<AppContext>,
    Client(client): Client,
    PageForm(form): PageForm<PasswordForm>,
) -> Response {
    match login::password(&ctx, &form.email, &form.password, &client, ctx.now()).await {
        Ok(outcome) => {
            let cookie = cookies::set_session(&ctx.config, &outcome.session.token);
            if outcome.two_factor_required {
                let next =
                    url::form_urlencoded::byte_serialize(form.next.as_bytes()).collect::<String>();
                see_other_with(&format!("/sign-in/code?next={next}"), cookie)
            } else {
                see_other_with(&next_target(&ctx.config, Some(&form.next)), cookie)
            }
        }
        Err(Error::Forbidden {
            code: "sso_required",
            ..
        }) => match Email::parse(&form.email) {
            Ok(email) => to_idp(&ctx, &email, &form.next),
            Err(_) => see_other("/sign-in"),
        },
        Err(e) => {
            let api = super::super::error::ApiError::from(e);
            let words = match api.code {
                "invalid_credentials" => "Wrong email or password.".to_owned(),
                _ => capitalised(&api.message),
            };
            methods(&ctx, api.status, &form.email, &form.next, Some(words))
        }
    }
}

/// `GET /sign-in/code`: the second step of a login waiting for it.
async fn code_page(
    State(ctx): State<AppContext>,
    AnySession(session): AnySession,
    ApiQuery(query): ApiQuery<NextQuery>,
) -> Response {
    let next = query.next.unwrap_or_default();
    match session {
        Some(auth) if auth.session.state == crate::service::sessions::PENDING_2FA => render(
            StatusCode::OK,
            &CodePage {
                layout: Layout::new(&ctx.config),
                next,
            },
        ),
        Some(_) => see_other(&next_target(&ctx.config, Some(&next))),
        None => see_other("/sign-in"),
    }
}

#[derive(Deserialize)]
struct CodeForm {
    code: Option<String>,
    recovery_code: Option<String>,
    #[serde(default)]
    next: String,
}

/// `POST /sign-in/code`: a code from the app or a recovery code finishes the login.
async fn code(
    State(ctx): State<AppContext>,
    Client(client): Client,
    AnySession(session): AnySession,
    PageForm(form): PageForm<CodeForm>,
) -> Response {
    let Some(auth) = session else {
        return message(
            &ctx,
            StatusCode::UNAUTHORIZED,
            "Sign in again",
            &["This sign-in took too long or ended. Start again."],
            Some(("/sign-in", "Sign in")),
        );
    };
    let factor = match (form.code, form.recovery_code) {
        (Some(code), _) if !code.trim().is_empty() => SecondFactor::Code(code),
        (_, Some(code)) => SecondFactor::RecoveryCode(code),
        _ => SecondFactor::Code(String::new()),
    };
    match login::second_factor(&ctx, &auth, factor, &client, ctx.now()).await {
        Ok(token) => see_other_with(
            &next_target(&ctx.config, Some(&form.next)),
            cookies::set_session(&ctx.config, &token),
        ),
        Err(e) => {
            let api = super::super::error::ApiError::from(e);
            let words = match api.code {
                "invalid_code" => "That code is not right. Check the app and try again.".to_owned(),
                _ => capitalised(&api.message),
            };
            render(
                api.status,
                &CodePage {
                    layout: Layout::new(&ctx.config).error(words),
                    next: form.next,
                },
            )
        }
    }
}

#[derive(Deserialize)]
struct LinkForm {
    email: String,
}

/// `POST /sign-in/link`: mails a sign-in link that works in this browser.
async fn link(
    State(ctx): State<AppContext>,
    Client(client): Client,
    headers: HeaderMap,
    PageForm(form): PageForm<LinkForm>,
) -> Response {
    let binding = MAGIC_LINK.read(&headers, &ctx.config);
    match magic_link::request(&ctx, &form.email, binding, &client, ctx.now()).await {
        Ok(binding) => {
            let mut page = message(
                &ctx,
                StatusCode::OK,
                "Check your inbox",
                &[&format!(
                    "If {} has an account, a sign-in link is on its way. It works once, for a few minutes, and only in this browser.",
                    form.email.trim()
                )],
                Some(("/sign-in", "Back to sign in")),
            );
            page.headers_mut().append(
                axum::http::header::SET_COOKIE,
                MAGIC_LINK.set(&ctx.config, &binding, ctx.config.magic_link.ttl),
            );
            page
        }
        Err(e) => super::refusal(&ctx, e, Some(("/sign-in", "Back to sign in"))),
    }
}

async fn sign_up_page(State(ctx): State<AppContext>) -> Response {
    render(
        StatusCode::OK,
        &SignUpPage {
            layout: Layout::new(&ctx.config),
            name: String::new(),
            email: String::new(),
            min_length: ctx.config.password.min_length,
        },
    )
}

#[derive(Deserialize)]
struct SignUpForm {
    email: String,
    password: SecretString,
    #[serde(default)]
    name: String,
}

/// `POST /sign-up`: the account is made and signed in; the verification mail goes out.
async fn sign_up(
    State(ctx): State<AppContext>,
    Client(client): Client,
    PageForm(form): PageForm<SignUpForm>,
) -> Response {
    let new = NewUser {
        email: form.email.clone(),
        name: form.name.clone(),
        password: Some(form.password),
        verified: false,
    };
    match signup::signup(&ctx, new, &client, ctx.now()).await {
        Ok((_, session)) => see_other_with(
            "/account/security",
            cookies::set_session(&ctx.config, &session.token),
        ),
        Err(e) => {
            let api = super::super::error::ApiError::from(e);
            render(
                api.status,
                &SignUpPage {
                    layout: Layout::new(&ctx.config).error(capitalised(&api.message)),
                    name: form.name,
                    email: form.email,
                    min_length: ctx.config.password.min_length,
                },
            )
        }
    }
}

async fn forgot_page(State(ctx): State<AppContext>) -> Response {
    render(
        StatusCode::OK,
        &ForgotPage {
            layout: Layout::new(&ctx.config),
        },
    )
}

#[derive(Deserialize)]
struct ForgotForm {
    email: String,
}

/// `POST /forgot-password`: the same answer whether or not the address has an account.
async fn forgot(
    State(ctx): State<AppContext>,
    Client(client): Client,
    PageForm(form): PageForm<ForgotForm>,
) -> Response {
    match account::request_reset(&ctx, &form.email, &client, ctx.now()).await {
        Ok(()) => message(
            &ctx,
            StatusCode::OK,
            "Check your inbox",
            &["If the address has an account, a link to choose a new password is on its way."],
            Some(("/sign-in", "Back to sign in")),
        ),
        Err(e) => super::refusal(&ctx, e, Some(("/sign-in", "Back to sign in"))),
    }
}
