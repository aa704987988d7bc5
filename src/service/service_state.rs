//! Store: what a running `authctl serve` records for the operator's CLI on the same database,
//! so both build the same links. Today one fact: the public URL the service runs with.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait};

use crate::entity::service_state;
use crate::error::Result;

const PUBLIC_URL: &str = "public_url";

/// `serve` at start: the URL users reach it at (the last replica to start wins; replicas share
/// one configuration).
pub async fn record_public_url(
    db: &impl ConnectionTrait,
    url: &str,
    now: DateTime<Utc>,
) -> Result<()> {
    service_state::Entity::insert(service_state::ActiveModel {
        name: Set(PUBLIC_URL.into()),
        value: Set(url.to_owned()),
        updated_at: Set(now),
    })
    .on_conflict(
        OnConflict::column(service_state::Column::Name)
            .update_columns([
                service_state::Column::Value,
                service_state::Column::UpdatedAt,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// The public URL `serve` last started with, and when.
pub async fn public_url(db: &impl ConnectionTrait) -> Result<Option<(String, DateTime<Utc>)>> {
    Ok(service_state::Entity::find_by_id(PUBLIC_URL)
        .one(db)
        .await?
        .map(|row| (row.value, row.updated_at)))
}
