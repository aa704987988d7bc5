//! The `users` table.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    #[sea_orm(unique)]
    pub email: String,
    pub name: String,
    /// An argon2id PHC string; `None` for accounts that cannot sign in with a password.
    pub password_hash: Option<String>,
    pub email_verified_at: Option<DateTimeUtc>,
    pub verification_sent_at: Option<DateTimeUtc>,
    pub disabled_at: Option<DateTimeUtc>,
    /// The active TOTP secret, encrypted with the server key (`crypto::seal`).
    pub totp_secret: Option<String>,
    /// A secret from `POST /me/2fa/totp/setup` waiting for its first correct code.
    pub totp_pending_secret: Option<String>,
    pub totp_enabled_at: Option<DateTimeUtc>,
    /// The last accepted TOTP time-step: each step is accepted once.
    pub totp_last_step: Option<i64>,
    /// When deletion was requested; `None` unless the account is pending deletion.
    pub deletion_requested_at: Option<DateTimeUtc>,
    /// When the sweep may hard-delete the account (end of the grace period).
    pub deletion_due_at: Option<DateTimeUtc>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {
    #[sea_orm(has_many = "super::session::Entity")]
    Session,
    #[sea_orm(has_many = "super::verification_token::Entity")]
    VerificationToken,
}

impl Related<super::session::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::Session.def()
    }
}

impl Related<super::verification_token::Entity> for Entity {
    fn to() -> RelationDef {
        Relation::VerificationToken.def()
    }
}

impl ActiveModelBehavior for ActiveModel {}
