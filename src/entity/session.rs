//! The `sessions` table: the token itself is never stored, only its SHA-256 (hex).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "sessions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub token_hash: String,
    /// The token this one replaced; it keeps working for `session.rotation_grace`.
    pub previous_token_hash: Option<String>,
    /// When the current token was issued (creation or the last rotation).
    pub token_issued_at: DateTimeUtc,
    pub user_id: String,
    pub auth_method: String,
    /// `active`, or `pending_2fa` while the second factor of a login is due.
    pub state: String,
    /// The last step-up (`POST /auth/confirm`); sensitive routes need it within `step_up.window`.
    pub stepped_up_at: Option<DateTimeUtc>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// A readable name derived from the user agent ("Chrome on macOS").
    pub device_name: String,
    /// SHA-256 of the first browser fingerprint the session saw (`X-Client-Fingerprint`).
    pub fingerprint_hash: Option<String>,
    /// When a different fingerprint was first seen on this session.
    pub fingerprint_changed_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub authenticated_at: DateTimeUtc,
    pub last_active_at: DateTimeUtc,
    /// The absolute expiry; the idle timeout is enforced against `last_active_at`.
    pub expires_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(
        belongs_to = "super::user::Entity",
        from = "Column::UserId",
        to = "super::user::Column::Id",
        on_delete = "Cascade"
    )]
    User,
}

impl Related<super::user::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::User.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
