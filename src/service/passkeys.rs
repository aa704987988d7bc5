//! Store: the `passkeys` table, an account's WebAuthn credentials. The credential itself is
//! webauthn-rs's `Passkey` as JSON; the sign counter lives in its own column, which is the one
//! that counts (it only moves forward, in one conditional statement).
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder,
};
use serde::Serialize;
use webauthn_rs::prelude::Passkey;

use crate::entity::passkey;
use crate::error::{Error, Result};

/// The longest name a passkey may have, in characters.
pub const MAX_NAME: usize = 64;

/// A passkey as listed: never the public key.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct PasskeyView {
    pub id: String,
    pub name: String,
    /// The credential ID (base64url), as the authenticator knows it.
    pub credential_id: String,
    /// The authenticator's signature counter (0 for most synced passkeys, which keep none).
    pub sign_count: i64,
    /// How the browser can reach the authenticator (`internal`, `hybrid`, `usb`, …).
    pub transports: Vec<String>,
    /// The credential may be synced to other devices (a "multi-device" passkey).
    pub backup_eligible: bool,
    /// The credential is synced right now.
    pub backed_up: bool,
    pub created_at: DateTime<Utc>,
    pub last_used_at: Option<DateTime<Utc>>,
}

impl From<passkey::Model> for PasskeyView {
    fn from(p: passkey::Model) -> Self {
        Self {
            transports: serde_json::from_str(&p.transports).unwrap_or_default(),
            id: p.id,
            name: p.name,
            credential_id: p.credential_id,
            sign_count: p.sign_count,
            backup_eligible: p.backup_eligible,
            backed_up: p.backup_state,
            created_at: p.created_at,
            last_used_at: p.last_used_at,
        }
    }
}

/// Checks and trims a passkey's name.
pub fn check_name(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > MAX_NAME || name.chars().any(char::is_control) {
        return Err(Error::invalid(
            "invalid_name",
            format!("give the passkey a name of 1 to {MAX_NAME} characters"),
        ));
    }
    Ok(name.to_owned())
}

/// The credential of a row, with the row's counter (the JSON copy may lag behind it).
pub fn credential(row: &passkey::Model) -> Result<Passkey> {
    let mut value: serde_json::Value = serde_json::from_str(&row.passkey)
        .map_err(|e| anyhow::anyhow!("passkey {} is unreadable: {e}", row.id))?;
    if let Some(counter) = value.pointer_mut("/cred/counter") {
        *counter = serde_json::json!(u32::try_from(row.sign_count).unwrap_or(u32::MAX));
    }
    serde_json::from_value(value)
        .map_err(|e| anyhow::anyhow!("passkey {} is unreadable: {e}", row.id).into())
}

/// An account's passkeys, oldest first.
pub async fn of_user(db: &impl ConnectionTrait, user_id: &str) -> Result<Vec<passkey::Model>> {
    Ok(passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(user_id))
        .order_by_asc(passkey::Column::Id)
        .all(db)
        .await?)
}

/// How many passkeys an account has.
pub async fn count_of(db: &impl ConnectionTrait, user_id: &str) -> Result<u64> {
    Ok(passkey::Entity::find()
        .filter(passkey::Column::UserId.eq(user_id))
        .count(db)
        .await?)
}

/// Which of `user_ids` have at least one passkey.
pub async fn users_with_passkeys(
    db: &impl ConnectionTrait,
    user_ids: &[String],
) -> Result<std::collections::HashSet<String>> {
    use sea_orm::QuerySelect;
    let mut out = std::collections::HashSet::new();
    for chunk in user_ids.chunks(500) {
        let owners: Vec<String> = passkey::Entity::find()
            .select_only()
            .column(passkey::Column::UserId)
            .distinct()
            .filter(passkey::Column::UserId.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(db)
            .await?;
        out.extend(owners);
    }
    Ok(out)
}

/// The passkey with this credential ID, whoever owns it.
pub async fn by_credential_id(
    db: &impl ConnectionTrait,
    credential_id: &str,
) -> Result<Option<passkey::Model>> {
    Ok(passkey::Entity::find()
        .filter(passkey::Column::CredentialId.eq(credential_id))
        .one(db)
        .await?)
}

/// The passkey `id`, if it is `user_id`'s (another account's id is not found either).
pub async fn get_of_user(
    db: &impl ConnectionTrait,
    user_id: Option<&str>,
    id: &str,
) -> Result<passkey::Model> {
    if uuid::Uuid::parse_str(id).is_err() {
        return Err(Error::NotFound("passkey"));
    }
    let mut query = passkey::Entity::find_by_id(id.to_owned());
    if let Some(user_id) = user_id {
        query = query.filter(passkey::Column::UserId.eq(user_id));
    }
    query.one(db).await?.ok_or(Error::NotFound("passkey"))
}

/// What a registration stores.
pub struct NewPasskey<'a> {
    pub user_id: &'a str,
    pub name: String,
    pub credential: &'a Passkey,
    pub transports: Vec<String>,
    pub backup_eligible: bool,
    pub backup_state: bool,
}

/// Stores a registered credential. A credential ID already stored (on this or another account)
/// is refused.
pub async fn insert(
    db: &impl ConnectionTrait,
    new: NewPasskey<'_>,
    now: DateTime<Utc>,
) -> Result<passkey::Model> {
    let credential_id = encode_id(new.credential.cred_id());
    if by_credential_id(db, &credential_id).await?.is_some() {
        return Err(Error::conflict(
            "passkey_exists",
            "this passkey is already registered",
        ));
    }
    let json = serde_json::to_string(new.credential)
        .map_err(|e| anyhow::anyhow!("cannot store the passkey: {e}"))?;
    let counter = serde_json::to_value(new.credential)
        .ok()
        .and_then(|v| v.pointer("/cred/counter").and_then(|c| c.as_i64()))
        .unwrap_or(0);
    let row = passkey::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        user_id: Set(new.user_id.to_owned()),
        credential_id: Set(credential_id),
        name: Set(new.name),
        passkey: Set(json),
        sign_count: Set(counter),
        transports: Set(serde_json::to_string(&new.transports).unwrap_or_else(|_| "[]".into())),
        backup_eligible: Set(new.backup_eligible),
        backup_state: Set(new.backup_state),
        created_at: Set(now),
        last_used_at: Set(None),
    };
    match passkey::Entity::insert(row.clone()).exec(db).await {
        Ok(_) => {}
        // Two registrations of one credential at the same moment: the unique index decides.
        Err(e)
            if matches!(
                e.sql_err(),
                Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
            ) =>
        {
            return Err(Error::conflict(
                "passkey_exists",
                "this passkey is already registered",
            ));
        }
        Err(e) => return Err(e.into()),
    }
    get_of_user(db, None, row.id.as_ref()).await
}

/// Records a use: the counter moves to `counter` only forward (one statement, so of two
/// assertions with the same counter one loses), flags and last use are updated. Returns whether
/// the row was updated.
pub async fn record_use(
    db: &impl ConnectionTrait,
    row: &passkey::Model,
    updated: &Passkey,
    counter: u32,
    backup_state: bool,
    backup_eligible: bool,
    now: DateTime<Utc>,
) -> Result<bool> {
    let json = serde_json::to_string(updated)
        .map_err(|e| anyhow::anyhow!("cannot store the passkey: {e}"))?;
    let mut update = passkey::Entity::update_many()
        .col_expr(passkey::Column::LastUsedAt, Expr::value(now))
        .col_expr(passkey::Column::BackupState, Expr::value(backup_state))
        .col_expr(
            passkey::Column::BackupEligible,
            Expr::value(backup_eligible || row.backup_eligible),
        )
        .col_expr(passkey::Column::Passkey, Expr::value(json))
        .filter(passkey::Column::Id.eq(row.id.as_str()));
    if counter > 0 || row.sign_count > 0 {
        update = update
            .col_expr(passkey::Column::SignCount, Expr::value(i64::from(counter)))
            .filter(passkey::Column::SignCount.lt(i64::from(counter)));
    }
    Ok(update.exec(db).await?.rows_affected == 1)
}

/// Renames a passkey of `user_id`.
pub async fn rename(
    db: &impl ConnectionTrait,
    user_id: &str,
    id: &str,
    name: String,
) -> Result<passkey::Model> {
    let row = get_of_user(db, Some(user_id), id).await?;
    passkey::Entity::update_many()
        .col_expr(passkey::Column::Name, Expr::value(name.clone()))
        .filter(passkey::Column::Id.eq(row.id.as_str()))
        .exec(db)
        .await?;
    Ok(passkey::Model { name, ..row })
}

/// Deletes a passkey. Returns whether this call deleted it.
pub async fn delete(db: &impl ConnectionTrait, id: &str) -> Result<bool> {
    Ok(passkey::Entity::delete_by_id(id.to_owned())
        .exec(db)
        .await?
        .rows_affected
        == 1)
}

/// A credential ID as stored and shown: base64url without padding.
pub fn encode_id(raw: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw)
}
