//! The `saml_sp_keys` table: this service provider's signing key (sealed with the server key)
//! and its self-signed certificate, generated on first use.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "saml_sp_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// PKCS#8 DER of the private key, sealed (`crypto::ServerKey::seal`).
    pub private_key: String,
    pub certificate_pem: String,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
