//! `saml_providers.mfa_contexts`: the AuthnContextClassRef values this IdP is trusted to have
//! used a second factor for (`saml … --trust-idp-mfa`). Empty (`[]`): an SSO login of an
//! account with an authenticator app still asks for its code.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SamlProviders {
    Table,
    MfaContexts,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SamlProviders::Table)
                    .add_column(
                        ColumnDef::new(SamlProviders::MfaContexts)
                            .text()
                            .not_null()
                            .default("[]"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table(SamlProviders::Table)
                    .drop_column(SamlProviders::MfaContexts)
                    .to_owned(),
            )
            .await
    }
}
