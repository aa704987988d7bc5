//! SAML single sign-on: identity providers and the e-mail domains they own, pending
//! AuthnRequests (bound to a browser), the assertion replay cache, SSO identities keyed on
//! (IdP entity ID, NameID), user roles, and the service provider's own signing key.
use sea_orm_migration::prelude::*;

use crate::m20261127_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SamlProviders {
    Table,
    Id,
    Name,
    EntityId,
    SsoUrl,
    Certificates,
    RemovedCertificates,
    MetadataXml,
    EmailAttribute,
    NameAttribute,
    GroupsAttribute,
    GroupRoles,
    DefaultRole,
    LinkPolicy,
    CreatedAt,
    UpdatedAt,
    LastLoginAt,
}

#[derive(DeriveIden)]
enum SamlDomains {
    Table,
    Domain,
    ProviderId,
}

#[derive(DeriveIden)]
enum SamlRequests {
    Table,
    Id,
    ProviderId,
    BindingHash,
    Target,
    StepUpSessionId,
    CreatedAt,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum SamlReplays {
    Table,
    Key,
    ExpiresAt,
}

#[derive(DeriveIden)]
enum SsoIdentities {
    Table,
    Id,
    UserId,
    IdpEntityId,
    NameId,
    ProviderId,
    CreatedAt,
    LastLoginAt,
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
enum SamlSpKeys {
    Table,
    Id,
    PrivateKey,
    CertificatePem,
    CreatedAt,
}

/// A plain index on one column.
fn index(name: &str, table: impl IntoIden, col: impl IntoIden) -> IndexCreateStatement {
    Index::create().name(name).table(table).col(col).to_owned()
}

fn at(col: impl IntoIden) -> ColumnDef {
    ColumnDef::new(col)
        .timestamp_with_time_zone()
        .not_null()
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SamlProviders::Table)
                    .col(
                        ColumnDef::new(SamlProviders::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SamlProviders::Name)
                            .string_len(64)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(SamlProviders::EntityId)
                            .string_len(1024)
                            .not_null()
                            .unique_key(),
                    )
                    .col(ColumnDef::new(SamlProviders::SsoUrl).text().not_null())
                    .col(
                        ColumnDef::new(SamlProviders::Certificates)
                            .text()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SamlProviders::RemovedCertificates)
                            .text()
                            .not_null(),
                    )
                    .col(ColumnDef::new(SamlProviders::MetadataXml).text().not_null())
                    .col(
                        ColumnDef::new(SamlProviders::EmailAttribute)
                            .string_len(512)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(SamlProviders::NameAttribute)
                            .string_len(512)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(SamlProviders::GroupsAttribute)
                            .string_len(512)
                            .null(),
                    )
                    .col(ColumnDef::new(SamlProviders::GroupRoles).text().not_null())
                    .col(
                        ColumnDef::new(SamlProviders::DefaultRole)
                            .string_len(100)
                            .null(),
                    )
                    .col(
                        ColumnDef::new(SamlProviders::LinkPolicy)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(at(SamlProviders::CreatedAt))
                    .col(at(SamlProviders::UpdatedAt))
                    .col(
                        ColumnDef::new(SamlProviders::LastLoginAt)
                            .timestamp_with_time_zone()
                            .null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SamlDomains::Table)
                    .col(
                        ColumnDef::new(SamlDomains::Domain)
                            .string_len(255)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SamlDomains::ProviderId)
                            .string_len(36)
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from(SamlDomains::Table, SamlDomains::ProviderId)
                            .to(SamlProviders::Table, SamlProviders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_saml_domains_provider_id",
                SamlDomains::Table,
                SamlDomains::ProviderId,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SamlRequests::Table)
                    .col(
                        ColumnDef::new(SamlRequests::Id)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SamlRequests::ProviderId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SamlRequests::BindingHash)
                            .string_len(64)
                            .not_null(),
                    )
                    .col(ColumnDef::new(SamlRequests::Target).text().not_null())
                    .col(
                        ColumnDef::new(SamlRequests::StepUpSessionId)
                            .string_len(36)
                            .null(),
                    )
                    .col(at(SamlRequests::CreatedAt))
                    .col(at(SamlRequests::ExpiresAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SamlRequests::Table, SamlRequests::ProviderId)
                            .to(SamlProviders::Table, SamlProviders::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_saml_requests_binding_hash",
                SamlRequests::Table,
                SamlRequests::BindingHash,
            ))
            .await?;
        manager
            .create_index(index(
                "idx_saml_requests_expires_at",
                SamlRequests::Table,
                SamlRequests::ExpiresAt,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SamlReplays::Table)
                    .col(
                        ColumnDef::new(SamlReplays::Key)
                            .string_len(64)
                            .not_null()
                            .primary_key(),
                    )
                    .col(at(SamlReplays::ExpiresAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_saml_replays_expires_at",
                SamlReplays::Table,
                SamlReplays::ExpiresAt,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SsoIdentities::Table)
                    .col(
                        ColumnDef::new(SsoIdentities::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(SsoIdentities::UserId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SsoIdentities::IdpEntityId)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SsoIdentities::NameId)
                            .string_len(1024)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SsoIdentities::ProviderId)
                            .string_len(36)
                            .not_null(),
                    )
                    .col(at(SsoIdentities::CreatedAt))
                    .col(at(SsoIdentities::LastLoginAt))
                    .foreign_key(
                        ForeignKey::create()
                            .from(SsoIdentities::Table, SsoIdentities::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_sso_identities_subject")
                    .table(SsoIdentities::Table)
                    .col(SsoIdentities::IdpEntityId)
                    .col(SsoIdentities::NameId)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(index(
                "idx_sso_identities_user_id",
                SsoIdentities::Table,
                SsoIdentities::UserId,
            ))
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(UserRoles::Table)
                    .col(ColumnDef::new(UserRoles::UserId).string_len(36).not_null())
                    .col(ColumnDef::new(UserRoles::Role).string_len(100).not_null())
                    .col(ColumnDef::new(UserRoles::Source).string_len(100).not_null())
                    .col(at(UserRoles::CreatedAt))
                    .primary_key(Index::create().col(UserRoles::UserId).col(UserRoles::Role))
                    .foreign_key(
                        ForeignKey::create()
                            .from(UserRoles::Table, UserRoles::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(SamlSpKeys::Table)
                    .col(
                        ColumnDef::new(SamlSpKeys::Id)
                            .string_len(36)
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SamlSpKeys::PrivateKey).text().not_null())
                    .col(ColumnDef::new(SamlSpKeys::CertificatePem).text().not_null())
                    .col(at(SamlSpKeys::CreatedAt))
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SamlSpKeys::Table.into_iden(),
            UserRoles::Table.into_iden(),
            SsoIdentities::Table.into_iden(),
            SamlReplays::Table.into_iden(),
            SamlRequests::Table.into_iden(),
            SamlDomains::Table.into_iden(),
            SamlProviders::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
