//! The `deletion_events` table: the outbox of `user.deleted` events.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "deletion_events")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// Always `user.deleted` for now.
    pub event: String,
    /// The id of the deleted account: what downstream systems know the user by.
    pub user_id: String,
    pub occurred_at: DateTimeUtc,
    /// Webhook deliveries tried so far.
    pub attempts: i32,
    /// When the next webhook delivery may be tried (a claim also pushes it forward).
    pub next_attempt_at: Option<DateTimeUtc>,
    pub delivered_at: Option<DateTimeUtc>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
