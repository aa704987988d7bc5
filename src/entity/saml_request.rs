//! The `saml_requests` table: AuthnRequests waiting for their Response, consumed on first use.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "saml_requests")]
pub struct Model {
    /// The AuthnRequest ID (`_` and 40 hex digits: 160 random bits).
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub provider_id: String,
    /// SHA-256 (hex) of the browser-binding cookie's value.
    pub binding_hash: String,
    /// Where the browser goes after the login: a path on this site.
    pub target: String,
    /// Set when the login re-authenticates this session for step-up (ForceAuthn).
    pub step_up_session_id: Option<String>,
    pub created_at: DateTimeUtc,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
