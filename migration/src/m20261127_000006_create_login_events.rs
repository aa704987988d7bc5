//! Login history: every sign-in attempt on a known account, successful or not (challenge 2).
//! Attempts on unknown addresses are not stored here (the audit log has them), so nothing in this
//! table can tell a caller which addresses exist.
use sea_orm_migration::prelude::*;

use crate::m20261127_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginEvents {
    Table,
    Id,
    UserId,
    At,
    Kind,
    Method,
    Success,
    Reason,
    Ip,
    UserAgent,
    DeviceName,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginEvents::Table)
                    .col(
                        ColumnDef::new(LoginEvents::Id)
                            .big_integer()
                            .not_null()
                            .auto_increment()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(LoginEvents::UserId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(LoginEvents::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(LoginEvents::Kind).string_len(16).not_null())
                    .col(
                        ColumnDef::new(LoginEvents::Method)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(ColumnDef::new(LoginEvents::Success).boolean().not_null())
                    .col(ColumnDef::new(LoginEvents::Reason).string_len(64).null())
                    .col(ColumnDef::new(LoginEvents::Ip).string_len(64).null())
                    .col(
                        ColumnDef::new(LoginEvents::UserAgent)
                            .string_len(512)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(LoginEvents::DeviceName)
                            .string_len(100)
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(LoginEvents::Table, LoginEvents::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_events_user_id_at")
                    .table(LoginEvents::Table)
                    .col(LoginEvents::UserId)
                    .col(LoginEvents::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(LoginEvents::Table).to_owned())
            .await
    }
}
