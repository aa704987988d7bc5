//! Passwordless sign-in: `passkeys` (WebAuthn credentials), `webauthn_ceremonies` (a started
//! registration, login or step-up, kept server-side so any replica can finish it) and
//! `verification_tokens.binding_hash` (a magic link works only in the browser that asked for it).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum Passkeys {
    Table,
    Id,
    UserId,
    CredentialId,
    Name,
    Passkey,
    SignCount,
    Transports,
    BackupEligible,
    BackupState,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum WebauthnCeremonies {
    Table,
    Id,
    Kind,
    UserId,
    SessionId,
    BindingHash,
    State,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum VerificationTokens {
    Table,
    BindingHash,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(Passkeys::Table)
                    .col(
                        ColumnDef::new(Passkeys::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(Passkeys::UserId).string_len(36).not_null())
                    .col(
                        ColumnDef::new(Passkeys::CredentialId)
                            .string_len(1400)
                            .not_null(),
                    )
                    .col(ColumnDef::new(Passkeys::Name).string_len(64).not_null())
                    .col(ColumnDef::new(Passkeys::Passkey).text().not_null())
                    .col(
                        ColumnDef::new(Passkeys::SignCount)
                            .big_integer()
                            .not_null()
                            .default(0),
                    )
                    .col(
                        ColumnDef::new(Passkeys::Transports)
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .col(
                        ColumnDef::new(Passkeys::BackupEligible)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Passkeys::BackupState)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(
                        ColumnDef::new(Passkeys::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Passkeys::LastUsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(Passkeys::Table, Passkeys::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_passkeys_user_id")
                    .table(Passkeys::Table)
                    .col(Passkeys::UserId)
                    .to_owned(),
            )
            .await?;
        // A credential belongs to one account, whoever registers it second.
        manager
            .create_index(
                Index::create()
                    .name("idx_passkeys_credential_id")
                    .table(Passkeys::Table)
                    .col(Passkeys::CredentialId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(WebauthnCeremonies::Table)
                    .col(
                        ColumnDef::new(WebauthnCeremonies::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(WebauthnCeremonies::Kind)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebauthnCeremonies::UserId)
                            .string_len(36)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(WebauthnCeremonies::SessionId)
                            .string_len(36)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(WebauthnCeremonies::BindingHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(WebauthnCeremonies::State).text().not_null())
                    .col(
                        ColumnDef::new(WebauthnCeremonies::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(WebauthnCeremonies::ExpiresAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(WebauthnCeremonies::Table, WebauthnCeremonies::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        for (name, col) in [
            (
                "idx_webauthn_ceremonies_expires_at",
                WebauthnCeremonies::ExpiresAt,
            ),
            (
                "idx_webauthn_ceremonies_user_id",
                WebauthnCeremonies::UserId,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(WebauthnCeremonies::Table)
                        .col(col)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table(VerificationTokens::Table)
                    .add_column(
                        ColumnDef::new(VerificationTokens::BindingHash)
                            .string_len(64)
                            .null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(VerificationTokens::Table)
                    .drop_column(VerificationTokens::BindingHash)
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table(WebauthnCeremonies::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Passkeys::Table).to_owned())
            .await
    }
}
