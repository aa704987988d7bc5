//! The `passkeys` table: one WebAuthn credential of an account.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "passkeys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub user_id: String,
    /// The credential ID, base64url without padding (unique).
    pub credential_id: String,
    pub name: String,
    /// The credential as webauthn-rs serialises it (public key, algorithm, flags); its counter
    /// is `sign_count`, which this column's copy may lag behind.
    pub passkey: String,
    pub sign_count: i64,
    /// JSON array of the transports the browser reported at registration.
    pub transports: String,
    pub backup_eligible: bool,
    pub backup_state: bool,
    pub created_at: DateTimeUtc,
    pub last_used_at: Option<DateTimeUtc>,
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
