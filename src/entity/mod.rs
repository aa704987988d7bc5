//! sea-orm entities, one file per table (the schema itself lives in the `migration` crate).
pub mod api_key;
pub mod audit_log;
pub mod deletion_event;
pub mod login_event;
pub mod login_throttle;
pub mod prelude;
pub mod recovery_code;
pub mod session;
pub mod user;
pub mod verification_token;
