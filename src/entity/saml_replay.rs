//! The `saml_replays` table: assertion IDs already used, kept until they could no longer be valid.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "saml_replays")]
pub struct Model {
    /// SHA-256 (hex) of the IdP entity ID and the Assertion ID.
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
