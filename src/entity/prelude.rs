//! `use crate::entity::prelude::*` brings every entity in under its table's name.
pub use super::api_key::Entity as ApiKey;
pub use super::audit_log::Entity as AuditLog;
pub use super::deletion_event::Entity as DeletionEvent;
pub use super::login_event::Entity as LoginEvent;
pub use super::login_throttle::Entity as LoginThrottle;
pub use super::recovery_code::Entity as RecoveryCode;
pub use super::session::Entity as Session;
pub use super::user::Entity as User;
pub use super::verification_token::Entity as VerificationToken;
