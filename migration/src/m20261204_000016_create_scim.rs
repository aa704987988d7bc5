//! SCIM 2.0 provisioning: `scim_tokens` (a provider's bearer tokens, hashed), `scim_users` (what
//! a provider's SCIM client keeps about an account: its userName, externalId and the attributes
//! it sent; `deleted_at` once the client deleted it), `scim_groups` (with its members as the client sent them) and `scim_group_members` (who is
//! in which group, for roles and a user's `groups`).
//! `user_roles` gets the key (user, role, source), so a role granted by SCIM groups and by SAML
//! assertions is kept until both sources take it away.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum Users {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum SamlProviders {
    Table,
    Id,
}

#[derive(DeriveIden)]
enum ScimTokens {
    Table,
    Id,
    ProviderId,
    Name,
    Prefix,
    TokenHash,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum ScimUsers {
    Table,
    Id,
    ProviderId,
    UserId,
    UserName,
    UserNameKey,
    ExternalId,
    Attributes,
    CreatedAt,
    UpdatedAt,
    DeletedAt,
}

#[derive(DeriveIden)]
enum ScimGroups {
    Table,
    Id,
    ProviderId,
    DisplayName,
    DisplayKey,
    ExternalId,
    Attributes,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ScimGroupMembers {
    Table,
    GroupId,
    UserId,
}

#[derive(DeriveIden)]
enum UserRoles {
    Table,
    UserId,
    Role,
    Source,
    CreatedAt,
}

#[derive(DeriveIden)]
enum UserRolesNew {
    Table,
}

fn at(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

fn id(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col).string_len(36).not_null().to_owned()
}

fn to_provider(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(SamlProviders::Table, SamlProviders::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

fn to_user(table: impl IntoIden, col: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .from(table, col)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ScimTokens::Table)
                    .col(id(ScimTokens::Id).primary_key())
                    .col(id(ScimTokens::ProviderId))
                    .col(ColumnDef::new(ScimTokens::Name).string_len(100).not_null())
                    .col(ColumnDef::new(ScimTokens::Prefix).string_len(32).not_null())
                    .col(
                        ColumnDef::new(ScimTokens::TokenHash)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(at(ScimTokens::CreatedAt))
                    .col(
                        ColumnDef::new(ScimTokens::LastUsedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(&mut to_provider(ScimTokens::Table, ScimTokens::ProviderId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scim_tokens_provider_id")
                    .table(ScimTokens::Table)
                    .col(ScimTokens::ProviderId)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScimUsers::Table)
                    .col(id(ScimUsers::Id).primary_key())
                    .col(id(ScimUsers::ProviderId))
                    .col(id(ScimUsers::UserId))
                    .col(
                        ColumnDef::new(ScimUsers::UserName)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScimUsers::UserNameKey)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScimUsers::ExternalId)
                            .string_len(1024)
                            .null(),
                    )
                    .col(ColumnDef::new(ScimUsers::Attributes).text().not_null())
                    .col(at(ScimUsers::CreatedAt))
                    .col(at(ScimUsers::UpdatedAt))
                    .col(
                        ColumnDef::new(ScimUsers::DeletedAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .foreign_key(&mut to_provider(ScimUsers::Table, ScimUsers::ProviderId))
                    .foreign_key(&mut to_user(ScimUsers::Table, ScimUsers::UserId))
                    .to_owned(),
            )
            .await?;
        for (name, cols, unique) in [
            (
                "idx_scim_users_account",
                vec![ScimUsers::ProviderId, ScimUsers::UserId],
                true,
            ),
            (
                "idx_scim_users_user_name",
                vec![ScimUsers::ProviderId, ScimUsers::UserNameKey],
                true,
            ),
            ("idx_scim_users_user_id", vec![ScimUsers::UserId], false),
        ] {
            let mut index = Index::create()
                .name(name)
                .table(ScimUsers::Table)
                .to_owned();
            for col in cols {
                index.col(col);
            }
            if unique {
                index.unique();
            }
            manager.create_index(index).await?;
        }
        manager
            .create_table(
                Table::create()
                    .table(ScimGroups::Table)
                    .col(id(ScimGroups::Id).primary_key())
                    .col(id(ScimGroups::ProviderId))
                    .col(
                        ColumnDef::new(ScimGroups::DisplayName)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScimGroups::DisplayKey)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ScimGroups::ExternalId)
                            .string_len(1024)
                            .null(),
                    )
                    .col(ColumnDef::new(ScimGroups::Attributes).text().not_null())
                    .col(at(ScimGroups::CreatedAt))
                    .col(at(ScimGroups::UpdatedAt))
                    .foreign_key(&mut to_provider(ScimGroups::Table, ScimGroups::ProviderId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scim_groups_display_name")
                    .table(ScimGroups::Table)
                    .col(ScimGroups::ProviderId)
                    .col(ScimGroups::DisplayKey)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ScimGroupMembers::Table)
                    .col(id(ScimGroupMembers::GroupId))
                    .col(id(ScimGroupMembers::UserId))
                    .primary_key(
                        Index::create()
                            .col(ScimGroupMembers::GroupId)
                            .col(ScimGroupMembers::UserId),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(ScimGroupMembers::Table, ScimGroupMembers::GroupId)
                            .to(ScimGroups::Table, ScimGroups::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .foreign_key(&mut to_user(
                        ScimGroupMembers::Table,
                        ScimGroupMembers::UserId,
                    ))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_scim_group_members_user_id")
                    .table(ScimGroupMembers::Table)
                    .col(ScimGroupMembers::UserId)
                    .to_owned(),
            )
            .await?;
        // user_roles with the key (user_id, role, source): built anew and filled from the old
        // table, which works the same on SQLite (that cannot change a primary key) and PostgreSQL.
        manager
            .create_table(
                Table::create()
                    .table(UserRolesNew::Table)
                    .col(id(UserRoles::UserId))
                    .col(ColumnDef::new(UserRoles::Role).string_len(100).not_null())
                    .col(ColumnDef::new(UserRoles::Source).string_len(100).not_null())
                    .col(at(UserRoles::CreatedAt))
                    .primary_key(
                        Index::create()
                            .col(UserRoles::UserId)
                            .col(UserRoles::Role)
                            .col(UserRoles::Source),
                    )
                    .foreign_key(&mut to_user(UserRolesNew::Table, UserRoles::UserId))
                    .to_owned(),
            )
            .await?;
        let copy = Query::insert()
            .into_table(UserRolesNew::Table)
            .columns([
                UserRoles::UserId,
                UserRoles::Role,
                UserRoles::Source,
                UserRoles::CreatedAt,
            ])
            .select_from(
                Query::select()
                    .columns([
                        UserRoles::UserId,
                        UserRoles::Role,
                        UserRoles::Source,
                        UserRoles::CreatedAt,
                    ])
                    .from(UserRoles::Table)
                    .to_owned(),
            )
            .map_err(|e| DbErr::Migration(e.to_string()))?
            .to_owned();
        manager.exec_stmt(copy).await?;
        manager
            .drop_table(Table::drop().table(UserRoles::Table).to_owned())
            .await?;
        manager
            .rename_table(
                Table::rename()
                    .table(UserRolesNew::Table, UserRoles::Table)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            ScimGroupMembers::Table.into_iden(),
            ScimGroups::Table.into_iden(),
            ScimUsers::Table.into_iden(),
            ScimTokens::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
