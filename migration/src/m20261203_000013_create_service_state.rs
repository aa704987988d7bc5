//! `service_state`: facts a running `authctl serve` records for the operator's CLI on the same
//! database, one row per name (today `public_url`: the URL users reach the service at, so
//! the CLI's mailed links, ACS URL and SP metadata agree with the service's).
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ServiceState {
    Table,
    Name,
    Value,
    UpdatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(ServiceState::Table)
                    .col(
                        ColumnDef::new(ServiceState::Name)
                            .string()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ServiceState::Value).text().not_null())
                    .col(
                        ColumnDef::new(ServiceState::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ServiceState::Table).to_owned())
            .await
    }
}
