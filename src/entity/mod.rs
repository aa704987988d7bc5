//! sea-orm entities, one file per table (the schema itself lives in the `migration` crate).
pub mod api_key;
pub mod audit_log;
pub mod deletion_event;
pub mod login_event;
pub mod login_throttle;
pub mod mail_outbox;
pub mod recovery_code;
pub mod saml_domain;
pub mod saml_provider;
pub mod saml_replay;
pub mod saml_request;
pub mod saml_sp_key;
pub mod session;
pub mod sso_identity;
pub mod user;
pub mod user_role;
pub mod verification_token;
