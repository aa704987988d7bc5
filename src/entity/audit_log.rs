//! The `audit_log` table: who did what to which account, and from where.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: DateTimeUtc,
    /// `user:<id>`, `cli:<os user>@<host>`, `anonymous` or `system`.
    pub actor: String,
    pub action: String,
    pub user_id: Option<String>,
    pub ip: Option<String>,
    /// A small JSON object with details; never a secret.
    pub detail: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
