//! The Assertion Consumer Service: the pre-filtered Response is verified (signature, issuer,
//! audience, destination, times, the request it answers, replays), then the login is handed to
//! `service::login::establish`.

use chrono::{DateTime, Utc};
use samael::schema::Assertion;
use samael::service_provider::Error as SamlError;
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, SqlErr};
use serde_json::json;
use sha2::{Digest, Sha256};

use super::metadata::hex;
use super::prefilter;
use super::providers::find;
use super::provision::{resolve_user, set_roles};
use super::sp::acs_url;
use super::start::{idp_descriptor, service_provider};
use super::step_up::step_up;
use crate::clock::span;
use crate::context::AppContext;
use crate::domain::{Email, Name};
use crate::entity::{saml_provider, saml_replay, saml_request, user};
use crate::error::{Error, Result};
use crate::service::sessions::{AuthMethod, NewSession};
use crate::service::{Actor, ClientInfo, audit, login};
use crate::tokens;

/// Attribute names tried, in order, when a provider does not name its own.
const EMAIL_ATTRIBUTES: &[&str] = &[
    "email",
    "mail",
    "emailAddress",
    "urn:oid:0.9.2342.19200300.100.1.3",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
];

const NAME_ATTRIBUTES: &[&str] = &[
    "name",
    "displayName",
    "cn",
    "urn:oid:2.16.840.1.113730.3.1.241",
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
];

const GROUP_ATTRIBUTES: &[&str] = &[
    "groups",
    "memberOf",
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
];

/// Bounds how many Responses are verified at once (parsing and canonicalization are CPU-bound).
static VERIFICATIONS: std::sync::LazyLock<tokio::sync::Semaphore> =
    std::sync::LazyLock::new(|| {
        tokio::sync::Semaphore::new(
            std::thread::available_parallelism()
                .map(std::num::NonZero::get)
                .unwrap_or(2),
        )
    });

/// A finished login.
pub struct Completed {
    pub user: user::Model,
    pub session: NewSession,
    /// The path the browser goes to now (stored at `start`, never taken from the IdP).
    pub target: String,
    /// The session only waits for the account's second factor (`POST /login/2fa`).
    pub two_factor_required: bool,
}

/// Why a Response was refused: audited, never shown.
pub(super) enum Fail {
    Refused {
        reason: &'static str,
        user_id: Option<String>,
    },
    Error(Error),
}

impl From<Error> for Fail {
    fn from(e: Error) -> Self {
        Self::Error(e)
    }
}

impl From<sea_orm::DbErr> for Fail {
    fn from(e: sea_orm::DbErr) -> Self {
        Self::Error(e.into())
    }
}

pub(super) fn refuse(reason: &'static str) -> Fail {
    Fail::Refused {
        reason,
        user_id: None,
    }
}

/// A provider name from the URL as it may be logged: only what a provider name can be.
fn shown_provider(raw: &str) -> &str {
    if super::check_name(raw).is_ok() {
        raw
    } else {
        "(invalid)"
    }
}

/// The generic answer to every refused Response.
fn failed() -> Error {
    Error::Rejected {
        code: "sso_failed",
        message: "single sign-on did not succeed; start again from your login page".into(),
    }
}

/// `POST /saml/{provider}/acs`.
#[tracing::instrument(skip_all, err(level = "debug"), fields(provider = shown_provider(provider_name)))]
pub async fn complete(
    ctx: &AppContext,
    provider_name: &str,
    saml_response: &str,
    binding: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Completed> {
    match verify_and_sign_in(ctx, provider_name, saml_response, binding, client, now).await {
        Ok(done) => Ok(done),
        Err(Fail::Error(e)) => Err(e),
        Err(Fail::Refused { reason, user_id }) => {
            Err(refused(ctx, provider_name, reason, user_id.as_deref(), client, now).await?)
        }
    }
}

/// Audits a refused Response (`sso_rejected`, with the reason) and returns the generic answer.
pub async fn refused(
    ctx: &AppContext,
    provider_name: &str,
    reason: &str,
    user_id: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Error> {
    let provider_name = shown_provider(provider_name);
    tracing::info!(provider = provider_name, reason, "SAML response refused");
    audit::Event::new(&Actor::Anonymous, "sso_rejected")
        .maybe_user(user_id)
        .client(client)
        .detail(json!({ "provider": provider_name, "reason": reason }))
        .record(&ctx.db, now)
        .await?;
    Ok(failed())
}

fn samael_reason(e: &SamlError) -> &'static str {
    match e {
        SamlError::FailedToValidateSignature => "invalid_signature",
        SamlError::DestinationValidationError { .. } => "destination",
        SamlError::AssertionRecipientMismatch { .. } => "recipient",
        SamlError::AssertionConditionAudienceRestrictionFailed { .. } => "audience",
        SamlError::ResponseInResponseToInvalid { .. }
        | SamlError::AssertionInResponseToInvalid { .. } => "in_response_to",
        SamlError::AssertionExpired { .. }
        | SamlError::ResponseExpired { .. }
        | SamlError::AssertionConditionExpired { .. }
        | SamlError::AssertionSubjectConfirmationExpired { .. } => "expired",
        SamlError::AssertionConditionExpiredBefore { .. }
        | SamlError::AssertionSubjectConfirmationExpiredBefore { .. } => "not_yet_valid",
        SamlError::AssertionIssuerMismatch { .. } | SamlError::ResponseIssuerMismatch { .. } => {
            "issuer"
        }
        SamlError::ResponseBadStatusCode { .. } => "idp_status",
        SamlError::AssertionBearerSubjectConfirmationMissing
        | SamlError::AssertionSubjectConfirmationMissing => "subject_confirmation",
        _ => "invalid_response",
    }
}

fn decode(ctx: &AppContext, raw: &str) -> std::result::Result<String, Fail> {
    let max = ctx.config.saml.max_response_bytes;
    if raw.len() > max / 3 * 4 + 8 + raw.len() / 64 * 2 {
        return Err(refuse("too_large"));
    }
    let compact: String = raw.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| refuse("bad_encoding"))?;
    if bytes.len() > max {
        return Err(refuse("too_large"));
    }
    String::from_utf8(bytes).map_err(|_| refuse("bad_encoding"))
}

async fn verify_and_sign_in(
    ctx: &AppContext,
    provider_name: &str,
    saml_response: &str,
    binding: Option<&str>,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> std::result::Result<Completed, Fail> {
    let binding = binding.ok_or_else(|| refuse("unsolicited"))?;
    let provider = match find(&ctx.db, provider_name).await {
        Ok(p) => p,
        Err(Error::NotFound(_)) => return Err(refuse("unknown_provider")),
        Err(e) => return Err(e.into()),
    };
    let xml = decode(ctx, saml_response)?;

    // The pre-filter, libxml2, xmlsec and samael run on a blocking thread: a panic there ends
    // this login, not the server. At most one verification per CPU core runs at a time.
    let permit = VERIFICATIONS
        .acquire()
        .await
        .map_err(|_| Error::Internal(anyhow::anyhow!("the SAML verifier is shut down")))?;
    let (shell, xml) = blocking(move || {
        let shell = prefilter::check(&xml).map_err(|r| r.0)?;
        Ok((shell, xml))
    })
    .await?;

    // The request this browser started and this Response answers: consumed now, whatever
    // happens next. (A Response for no request of this browser consumes nothing, so a forged
    // POST cannot cancel a login in progress.)
    let answers = shell
        .in_response_to
        .as_deref()
        .ok_or_else(|| refuse("unsolicited"))?;
    let request = take_request(&ctx.db, binding, answers)
        .await?
        .ok_or_else(|| refuse("no_pending_request"))?;
    if request.provider_id != provider.id {
        return Err(refuse("request_for_another_provider"));
    }
    if request.expires_at <= now {
        return Err(refuse("request_expired"));
    }

    let descriptor = idp_descriptor(&provider).ok_or_else(|| refuse("provider_unusable"))?;
    let sp = service_provider(ctx, &provider, descriptor);
    let request_id = request.id.clone();
    let assertion = blocking(move || {
        sp.parse_xml_response(&xml, Some(&[request_id.as_str()]))
            .map_err(|e| samael_reason(&e))
    })
    .await?;
    drop(permit);
    // samael checks these only when the Response itself is signed.
    if shell
        .destination
        .is_some_and(|d| d != acs_url(&ctx.config, &provider.name))
    {
        return Err(refuse("destination"));
    }
    if shell.status.as_deref() != Some("urn:oasis:names:tc:SAML:2.0:status:Success") {
        return Err(refuse("idp_status"));
    }
    let checked = check_assertion(ctx, &provider, &request, &assertion, now)?;

    // Replay cache: the first use of an assertion ID inserts it; any later one fails.
    let replay_key = hex(&Sha256::digest(
        format!("{}\n{}", provider.entity_id, assertion.id).as_bytes(),
    ));
    let inserted = saml_replay::Entity::insert(saml_replay::ActiveModel {
        key: Set(replay_key),
        expires_at: Set(checked.expires_at + span(ctx.config.saml.clock_skew)),
    })
    .exec_without_returning(&ctx.db)
    .await;
    match inserted {
        Ok(_) => {}
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            return Err(refuse("replayed"));
        }
        Err(e) => return Err(e.into()),
    }

    if let Some(session_id) = &request.step_up_session_id {
        return step_up(
            ctx, &provider, &request, session_id, &assertion, &checked, client, now,
        )
        .await;
    }

    let attributes = Attributes::of(&assertion);
    let email = match &provider.email_attribute {
        Some(name) => attributes.first(name),
        None => EMAIL_ATTRIBUTES
            .iter()
            .find_map(|name| attributes.first(name))
            .or_else(|| Some(checked.name_id.clone())),
    };
    let email = email
        .and_then(|e| Email::parse(&e).ok())
        .ok_or_else(|| refuse("email_missing"))?;
    let domain = email.domain().to_ascii_lowercase();
    match crate::service::identities::provider_for_domain(&ctx.db, &domain).await? {
        Some(owner) if owner.id == provider.id => {}
        _ => return Err(refuse("domain_not_owned")),
    }
    let name = match &provider.name_attribute {
        Some(attr) => attributes.first(attr),
        None => NAME_ATTRIBUTES.iter().find_map(|n| attributes.first(n)),
    };
    let name = name
        .and_then(|n| Name::parse(&n).ok())
        .or_else(|| Name::parse(email.as_str().split('@').next().unwrap_or("user")).ok())
        .map(Name::into_inner)
        .unwrap_or_else(|| "SSO user".into());
    let groups = match &provider.groups_attribute {
        Some(attr) => attributes.all(attr),
        None => GROUP_ATTRIBUTES
            .iter()
            .map(|n| attributes.all(n))
            .find(|g| !g.is_empty())
            .unwrap_or_default(),
    };

    let user = resolve_user(ctx, &provider, &checked.name_id, &email, &name, client, now).await?;
    let roles = set_roles(ctx, &provider, &user.id, &groups, now).await?;

    let context = authn_context(&assertion);
    // An account with an authenticator app gives its code after SSO too, unless this IdP is
    // trusted to have used a second factor for the context it asserts.
    let trusted = context
        .as_deref()
        .is_some_and(|c| super::mfa_contexts_of(&provider).iter().any(|t| t == c));
    let mfa_trusted = user.totp_enabled_at.is_some() && trusted;
    let (session, two_factor_required) = login::establish(
        ctx,
        login::Proven {
            user: &user,
            method: AuthMethod::Sso,
            second_factor_trusted: trusted,
            pending_detail: json!({ "provider": provider.name, "authnContext": context }),
            detail: json!({
                "method": AuthMethod::Sso.as_str(),
                "provider": provider.name,
                "roles": roles,
                // How the IdP authenticated the user: absent means assume one factor.
                "authnContext": context,
                // The account has an authenticator app and the IdP's context was trusted instead.
                "idpMfaTrusted": mfa_trusted,
            }),
        },
        client,
        now,
    )
    .await?;
    if two_factor_required {
        return Ok(Completed {
            user,
            session,
            target: request.target,
            two_factor_required: true,
        });
    }
    saml_provider::Entity::update_many()
        .col_expr(saml_provider::Column::LastLoginAt, Expr::value(now))
        .filter(saml_provider::Column::Id.eq(provider.id.as_str()))
        .exec(&ctx.db)
        .await?;
    Ok(Completed {
        user,
        session,
        target: request.target,
        two_factor_required: false,
    })
}

/// Runs `work` on the blocking pool; a panic there is a refusal, not a crash.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::result::Result<T, &'static str> + Send + 'static,
) -> std::result::Result<T, Fail> {
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(reason)) => Err(refuse(reason)),
        Err(_) => Err(refuse("parser_failure")),
    }
}

/// Finds and deletes the pending request `id` if this browser's binding cookie started it
/// (consumed at first use).
async fn take_request(
    db: &impl ConnectionTrait,
    binding: &str,
    id: &str,
) -> Result<Option<saml_request::Model>> {
    let Some(request) = saml_request::Entity::find_by_id(id)
        .filter(saml_request::Column::BindingHash.eq(tokens::hash(binding)))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let consumed = saml_request::Entity::delete_by_id(request.id.as_str())
        .exec(db)
        .await?
        .rows_affected;
    Ok((consumed == 1).then_some(request))
}

/// The first `AuthnContextClassRef` of the assertion's AuthnStatements.
fn authn_context(assertion: &Assertion) -> Option<String> {
    assertion
        .authn_statements
        .iter()
        .flatten()
        .filter_map(|s| s.authn_context.as_ref()?.value.as_ref()?.value.clone())
        .next()
}

pub(super) struct Checked {
    pub(super) name_id: String,
    expires_at: DateTime<Utc>,
}

/// What samael leaves optional or checks with its own clock, checked again with ours.
fn check_assertion(
    ctx: &AppContext,
    provider: &saml_provider::Model,
    request: &saml_request::Model,
    assertion: &Assertion,
    now: DateTime<Utc>,
) -> std::result::Result<Checked, Fail> {
    let skew = span(ctx.config.saml.clock_skew);
    if assertion.issuer.value.as_deref() != Some(provider.entity_id.as_str()) {
        return Err(refuse("issuer"));
    }
    if assertion.issue_instant > now + skew {
        return Err(refuse("not_yet_valid"));
    }
    let conditions = assertion
        .conditions
        .as_ref()
        .ok_or_else(|| refuse("no_conditions"))?;
    let audience = super::sp_entity_id(&ctx.config);
    let restricted = conditions
        .audience_restrictions
        .as_ref()
        .is_some_and(|rs| !rs.is_empty() && rs.iter().all(|r| r.audience.contains(&audience)));
    if !restricted {
        return Err(refuse("audience"));
    }
    let expires_at = conditions
        .not_on_or_after
        .ok_or_else(|| refuse("no_expiry"))?;
    if now >= expires_at + skew {
        return Err(refuse("expired"));
    }
    if conditions.not_before.is_some_and(|nb| now + skew < nb) {
        return Err(refuse("not_yet_valid"));
    }
    let subject = assertion
        .subject
        .as_ref()
        .ok_or_else(|| refuse("no_name_id"))?;
    let name_id = subject
        .name_id
        .as_ref()
        .map(|n| n.value.trim().to_owned())
        .filter(|n| !n.is_empty())
        .ok_or_else(|| refuse("no_name_id"))?;
    let acs = acs_url(&ctx.config, &provider.name);
    let confirmed = subject
        .subject_confirmations
        .iter()
        .flatten()
        .filter(|c| c.method.as_deref() == Some("urn:oasis:names:tc:SAML:2.0:cm:bearer"))
        .filter_map(|c| c.subject_confirmation_data.as_ref())
        .any(|d| {
            d.recipient.as_deref() == Some(acs.as_str())
                && d.in_response_to.as_deref() == Some(request.id.as_str())
                && d.not_on_or_after.is_some_and(|t| now < t + skew)
                && d.not_before.is_none_or(|t| now + skew >= t)
        });
    if !confirmed {
        return Err(refuse("subject_confirmation"));
    }
    Ok(Checked {
        name_id,
        expires_at,
    })
}

/// The attribute values of an assertion, by attribute Name (or FriendlyName).
struct Attributes(Vec<(Option<String>, Option<String>, Vec<String>)>);

impl Attributes {
    fn of(assertion: &Assertion) -> Self {
        Self(
            assertion
                .attribute_statements
                .iter()
                .flatten()
                .flat_map(|s| s.attributes.iter())
                .map(|a| {
                    (
                        a.name.clone(),
                        a.friendly_name.clone(),
                        a.values
                            .iter()
                            .filter_map(|v| v.value.as_deref())
                            .map(|v| v.trim().to_owned())
                            .filter(|v| !v.is_empty())
                            .collect(),
                    )
                })
                .collect(),
        )
    }

    fn all(&self, wanted: &str) -> Vec<String> {
        self.0
            .iter()
            .filter(|(name, friendly, _)| {
                name.as_deref() == Some(wanted) || friendly.as_deref() == Some(wanted)
            })
            .flat_map(|(_, _, values)| values.iter().cloned())
            .collect()
    }

    fn first(&self, wanted: &str) -> Option<String> {
        self.all(wanted).into_iter().next()
    }
}
