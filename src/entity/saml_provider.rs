//! The `saml_providers` table: one registered SAML identity provider.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "saml_providers")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub name: String,
    /// The IdP's entity ID from its metadata.
    #[sea_orm(unique)]
    pub entity_id: String,
    /// The IdP's SingleSignOnService location for the HTTP-Redirect binding.
    pub sso_url: String,
    /// JSON array of base64 DER signing certificates: every one is accepted (rollover).
    pub certificates: String,
    /// JSON array of SHA-256 fingerprints removed with `--remove-certificate`: later metadata
    /// does not bring them back.
    pub removed_certificates: String,
    /// The metadata document last imported.
    pub metadata_xml: String,
    pub email_attribute: Option<String>,
    pub name_attribute: Option<String>,
    pub groups_attribute: Option<String>,
    /// JSON array of `[group, role]` pairs.
    pub group_roles: String,
    pub default_role: Option<String>,
    /// `none` or `verified-email`.
    pub link_policy: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub last_login_at: Option<DateTimeUtc>,
    /// JSON array of AuthnContextClassRef values trusted as multi-factor (`--trust-idp-mfa`).
    pub mfa_contexts: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
