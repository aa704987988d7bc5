//! SAML 2.0 single sign-on. The identity providers and the domains they own (`providers`), their
//! metadata (`metadata`), this service provider's key and metadata (`sp`), the start-up
//! self-test (`self_test`); the flow itself: starting a login (`start`), the Assertion Consumer
//! Service (`acs`) with the Response pre-filter (`prefilter`), SSO step-up (`step_up`) and
//! just-in-time provisioning with roles (`provision`).
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter};

use crate::error::Result;

mod acs;
mod metadata;
pub mod prefilter;
mod providers;
mod provision;
mod self_test;
mod sp;
mod start;
mod step_up;

pub use acs::*;
pub use metadata::*;
pub use providers::*;
pub use self_test::*;
pub use sp::*;
pub use start::*;

/// Deletes expired pending requests and replay-cache entries; returns how many rows went.
pub async fn prune(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    use crate::entity::{saml_replay, saml_request};
    let requests = saml_request::Entity::delete_many()
        .filter(saml_request::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected;
    let replays = saml_replay::Entity::delete_many()
        .filter(saml_replay::Column::ExpiresAt.lte(now))
        .exec(db)
        .await?
        .rows_affected;
    Ok(requests + replays)
}
