//! The `scim_users` table: what a provider's SCIM client keeps about one account.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scim_users")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub provider_id: String,
    pub user_id: String,
    pub user_name: String,
    /// `user_name` lower-cased: userName is unique per provider without regard to case.
    pub user_name_key: String,
    pub external_id: Option<String>,
    /// The attributes the client sent (JSON), cleaned to our schemas.
    pub attributes: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    /// When the client deleted the resource: it is gone for SCIM, the account stays (disabled
    /// or scheduled for deletion, per `scim.on_delete`).
    pub deleted_at: Option<DateTimeUtc>,
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
