//! The schema of authctl, as append-only migrations applied by `authctl serve` and `authctl migrate up`.
//!
//! Never edit a migration once it has been released: add a new one and list it last.

pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_users;
mod m20261127_000002_create_sessions;
mod m20261127_000003_create_verification_tokens;
mod m20261127_000004_create_audit_log;
mod m20261127_000005_create_login_throttles;
mod m20261127_000006_create_login_events;
mod m20261127_000007_create_recovery_codes;
mod m20261127_000008_create_api_keys;
mod m20261127_000009_create_deletion_events;
mod m20261127_000010_create_saml;
mod m20261201_000011_create_mail_outbox;
mod m20261201_000012_saml_trust_idp_mfa;
mod m20261203_000013_create_service_state;
mod m20261203_000014_index_audit_actor;
mod m20261203_000015_create_passkeys;
mod m20261204_000016_create_scim;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_users::Migration),
            Box::new(m20261127_000002_create_sessions::Migration),
            Box::new(m20261127_000003_create_verification_tokens::Migration),
            Box::new(m20261127_000004_create_audit_log::Migration),
            Box::new(m20261127_000005_create_login_throttles::Migration),
            Box::new(m20261127_000006_create_login_events::Migration),
            Box::new(m20261127_000007_create_recovery_codes::Migration),
            Box::new(m20261127_000008_create_api_keys::Migration),
            Box::new(m20261127_000009_create_deletion_events::Migration),
            Box::new(m20261127_000010_create_saml::Migration),
            Box::new(m20261201_000011_create_mail_outbox::Migration),
            Box::new(m20261201_000012_saml_trust_idp_mfa::Migration),
            Box::new(m20261203_000013_create_service_state::Migration),
            Box::new(m20261203_000014_index_audit_actor::Migration),
            Box::new(m20261203_000015_create_passkeys::Migration),
            Box::new(m20261204_000016_create_scim::Migration),
        ]
    }
}
pub use sea_orm_migration::MigrationStatus;
