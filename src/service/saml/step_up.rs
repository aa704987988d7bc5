//! SSO step-up: an SSO account re-proves itself at its IdP; the Response refreshes the
//! session it was started from.

use chrono::{DateTime, Utc};
use samael::schema::Assertion;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

use super::acs::{Checked, Completed, Fail, refuse};
use crate::clock::span;
use crate::context::AppContext;
use crate::entity::{saml_provider, saml_request, session, sso_identity, user};
use crate::service::ClientInfo;
use crate::service::sessions::{self, NewSession};

/// The Response to a step-up request: the same person (same IdP identity as the session's
/// user) authenticated again after the request was made; the session's window opens.
#[allow(clippy::too_many_arguments)]
pub(super) async fn step_up(
    ctx: &AppContext,
    provider: &saml_provider::Model,
    request: &saml_request::Model,
    session_id: &str,
    assertion: &Assertion,
    checked: &Checked,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> std::result::Result<Completed, Fail> {
    let Some((session, Some(user))) = session::Entity::find_by_id(session_id)
        .find_also_related(user::Entity)
        .one(&ctx.db)
        .await?
    else {
        return Err(refuse("session_ended"));
    };
    if session.state != sessions::ACTIVE
        || !sessions::alive(&ctx.config.session, &session, now)
        || user.disabled_at.is_some()
    {
        return Err(refuse("session_ended"));
    }
    if user.totp_enabled_at.is_some() {
        return Err(Fail::Refused {
            reason: "second_factor_required",
            user_id: Some(user.id),
        });
    }
    let same_person = sso_identity::Entity::find()
        .filter(sso_identity::Column::IdpEntityId.eq(provider.entity_id.as_str()))
        .filter(sso_identity::Column::NameId.eq(checked.name_id.as_str()))
        .filter(sso_identity::Column::UserId.eq(user.id.as_str()))
        .one(&ctx.db)
        .await?
        .is_some();
    if !same_person {
        return Err(Fail::Refused {
            reason: "step_up_other_user",
            user_id: Some(user.id),
        });
    }
    // ForceAuthn was asked for: the IdP must say the user authenticated after the request.
    let skew = span(ctx.config.saml.clock_skew);
    let fresh = assertion
        .authn_statements
        .iter()
        .flatten()
        .filter_map(|s| s.authn_instant)
        .any(|t| t + skew >= request.created_at);
    if !fresh {
        return Err(Fail::Refused {
            reason: "not_reauthenticated",
            user_id: Some(user.id),
        });
    }
    let auth = sessions::Authenticated {
        session,
        user,
        rotated: None,
        via_previous: false,
        roles: None,
    };
    let (token, _) = crate::service::step_up::open_window(ctx, &auth, "sso", client, now).await?;
    Ok(Completed {
        user: auth.user,
        session: NewSession {
            token,
            session: auth.session,
        },
        target: request.target.clone(),
        two_factor_required: false,
    })
}
