//! The `mail_outbox` table: mails waiting for delivery.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// The account the mail is about, when there is one (the deletion sweep removes its mails).
    pub user_id: Option<String>,
    /// What kind of mail it is (`verification`, `password_reset`, ...): never personal.
    pub kind: String,
    /// The message (recipient, subject, text and HTML), sealed with the server key.
    pub sealed: String,
    pub created_at: DateTimeUtc,
    /// Deliveries tried so far.
    pub attempts: i32,
    /// When the next delivery may be tried; a worker's claim pushes it forward.
    pub next_attempt_at: DateTimeUtc,
    /// Why the last delivery failed (never the message or the SMTP URL).
    pub last_error: Option<String>,
    /// Set when delivery was given up after `mail.max_attempts`.
    pub failed_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
