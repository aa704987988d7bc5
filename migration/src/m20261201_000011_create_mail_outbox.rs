//! The mail outbox: every mail the service sends is written here (in the transaction of the
//! change that caused it) and delivered by a worker, so no answer waits for SMTP and nothing is
//! lost while the SMTP server is down. The message itself is sealed with the server key: the
//! links in it are live credentials.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Id,
    UserId,
    Kind,
    Sealed,
    CreatedAt,
    Attempts,
    NextAttemptAt,
    LastError,
    FailedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(MailOutbox::Table)
                    .col(
                        ColumnDef::new(MailOutbox::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(MailOutbox::UserId).string_len(36).null())
                    .col(ColumnDef::new(MailOutbox::Kind).string_len(64).not_null())
                    .col(ColumnDef::new(MailOutbox::Sealed).text().not_null())
                    .col(
                        ColumnDef::new(MailOutbox::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(MailOutbox::Attempts)
                            .integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(MailOutbox::NextAttemptAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(MailOutbox::LastError).string_len(400).null())
                    .col(
                        ColumnDef::new(MailOutbox::FailedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            ("idx_mail_outbox_next_attempt_at", MailOutbox::NextAttemptAt),
            ("idx_mail_outbox_user_id", MailOutbox::UserId),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(MailOutbox::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(MailOutbox::Table).to_owned())
            .await
    }
}
