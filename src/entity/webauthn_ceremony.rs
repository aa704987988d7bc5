//! The `webauthn_ceremonies` table: a started passkey registration, login or step-up.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "webauthn_ceremonies")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    /// `register`, `login` or `step_up`.
    pub kind: String,
    /// The account it is for (`None`: a login by a discoverable credential).
    pub user_id: Option<String>,
    /// The session that started it (registration and step-up).
    pub session_id: Option<String>,
    /// SHA-256 of the browser's binding cookie.
    pub binding_hash: String,
    /// webauthn-rs's ceremony state (JSON): never leaves the server.
    pub state: String,
    pub created_at: DateTimeUtc,
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
