//! sea-orm entities, one file per table (the schema itself lives in the `migration` crate).
pub mod audit_log;
pub mod login_event;
pub mod login_throttle;
pub mod prelude;
pub mod session;
pub mod user;
pub mod verification_token;
