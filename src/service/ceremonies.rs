//! Store: started WebAuthn ceremonies (`webauthn_ceremonies`). A ceremony's state never leaves
//! the server; the browser holds its id and a binding cookie, and finishing takes the row in one
//! statement, so any replica can finish what another started and only once.
use chrono::{DateTime, Utc};
use sea_orm::{ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::clock::span;
use crate::entity::webauthn_ceremony;
use crate::error::{Error, Result};
use crate::tokens;

/// What a ceremony is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Register,
    Login,
    StepUp,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Register => "register",
            Self::Login => "login",
            Self::StepUp => "step_up",
        }
    }
}

/// A ceremony to store.
pub struct NewCeremony<'a> {
    pub kind: Kind,
    pub user_id: Option<&'a str>,
    pub session_id: Option<&'a str>,
    /// The browser's binding cookie, when it sent a well-formed one.
    pub binding: Option<&'a str>,
    pub state: String,
    pub ttl: std::time::Duration,
}

/// A stored ceremony: its id (sent beside the options) and the binding cookie's value.
pub struct Started {
    pub id: String,
    pub binding: String,
}

/// A binding cookie value as this service makes them (43 base64url characters).
pub fn well_formed(binding: &str) -> bool {
    binding.len() == 43
        && binding
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
}

/// Stores a ceremony. One binding per browser: ceremonies in two tabs both stay finishable.
pub async fn begin(
    db: &impl ConnectionTrait,
    new: NewCeremony<'_>,
    now: DateTime<Utc>,
) -> Result<Started> {
    let binding = new
        .binding
        .filter(|b| well_formed(b))
        .map_or_else(tokens::generate, str::to_owned);
    let id = uuid::Uuid::new_v4().to_string();
    webauthn_ceremony::Entity::insert(webauthn_ceremony::ActiveModel {
        id: Set(id.clone()),
        kind: Set(new.kind.as_str().to_owned()),
        user_id: Set(new.user_id.map(str::to_owned)),
        session_id: Set(new.session_id.map(str::to_owned)),
        binding_hash: Set(tokens::hash(&binding)),
        state: Set(new.state),
        created_at: Set(now),
        expires_at: Set(now + span(new.ttl)),
    })
    .exec_without_returning(db)
    .await?;
    Ok(Started { id, binding })
}

/// Takes the ceremony `id` of `kind` started by this browser (and, for registration and
/// step-up, by this session): of two concurrent finishes one gets it. Unknown, used, expired,
/// another browser's or another session's: refused, and a ceremony of another browser stays
/// where it is (a forged request cancels nothing).
pub async fn take(
    db: &impl ConnectionTrait,
    kind: Kind,
    id: &str,
    binding: Option<&str>,
    session_id: Option<&str>,
    now: DateTime<Utc>,
) -> Result<webauthn_ceremony::Model> {
    let refused = || Error::Rejected {
        code: "ceremony_invalid",
        message: "this passkey request has expired or was already used; start again".into(),
    };
    let binding = binding.filter(|b| well_formed(b)).ok_or_else(refused)?;
    // Ids are UUIDs; anything else (a NUL byte, which PostgreSQL refuses in text) is unknown.
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(refused());
    }
    let found = webauthn_ceremony::Entity::find_by_id(id.to_owned())
        .filter(webauthn_ceremony::Column::Kind.eq(kind.as_str()))
        .filter(webauthn_ceremony::Column::BindingHash.eq(tokens::hash(binding)))
        .one(db)
        .await?
        .ok_or_else(refused)?;
    if found.session_id.as_deref() != session_id || found.expires_at <= now {
        return Err(refused());
    }
    let taken = webauthn_ceremony::Entity::delete_many()
        .filter(webauthn_ceremony::Column::Id.eq(id))
        .exec(db)
        .await?;
    if taken.rows_affected != 1 {
        return Err(refused());
    }
    Ok(found)
}

/// Deletes ceremonies that expired before `now`.
pub async fn prune(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    Ok(webauthn_ceremony::Entity::delete_many()
        .filter(webauthn_ceremony::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected)
}
