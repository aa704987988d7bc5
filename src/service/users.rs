//! Store: accounts. Operator-created users, lookup, listing, verification by hand, disable/enable,
//! counts. Signing up is a flow of its own (`signup`).
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, SqlErr, TransactionTrait,
};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use crate::context::AppContext;
use crate::domain::{Email, Name, NewPassword};
use crate::entity::user;
use crate::error::{Error, Result};

use super::sessions;
use super::{Actor, ClientInfo, audit};

/// A user as shown over HTTP and by the CLI's `-o json`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct UserView {
    pub id: String,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
    pub email_verified_at: Option<DateTime<Utc>>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    /// The user's roles (from SSO group mappings); present where they were looked up.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

impl UserView {
    /// The view with the user's roles filled in.
    pub async fn with_roles(u: &user::Model, db: &impl ConnectionTrait) -> Result<Self> {
        Ok(Self {
            roles: Some(super::roles::roles_of(db, &u.id).await?),
            ..Self::from(u)
        })
    }

    /// The view with `known` roles (read with the session), or read now where none are known.
    pub async fn with_roles_known(
        u: &user::Model,
        known: Option<Vec<String>>,
        db: &impl ConnectionTrait,
    ) -> Result<Self> {
        match known {
            Some(roles) => Ok(Self {
                roles: Some(roles),
                ..Self::from(u)
            }),
            None => Self::with_roles(u, db).await,
        }
    }
}

impl From<&user::Model> for UserView {
    fn from(u: &user::Model) -> Self {
        Self {
            id: u.id.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            email_verified: u.email_verified_at.is_some(),
            email_verified_at: u.email_verified_at,
            disabled: u.disabled_at.is_some(),
            created_at: u.created_at,
            roles: None,
        }
    }
}

/// What a new account is made of.
pub struct NewUser {
    pub email: String,
    pub name: String,
    /// `None` makes an account that cannot sign in with a password (yet).
    pub password: Option<SecretString>,
    pub verified: bool,
}

/// A new account that passed validation, its password already hashed.
pub(crate) struct Prepared {
    email: Email,
    name: Name,
    password_hash: Option<String>,
    pub(crate) verified: bool,
}

/// Validates and hashes. This is the slow part (argon2), so it runs before any transaction:
/// no request holds the database while it hashes.
pub(crate) async fn prepare(ctx: &AppContext, new: NewUser) -> Result<Prepared> {
    let email = Email::parse(&new.email)?;
    let name = Name::parse(&new.name)?;
    let password_hash = match &new.password {
        Some(raw) => {
            let password = NewPassword::parse(raw, &ctx.config.password, &email)?;
            Some(ctx.hasher.hash(password.secret()).await?)
        }
        None => None,
    };
    Ok(Prepared {
        email,
        name,
        password_hash,
        verified: new.verified,
    })
}

/// Inserts a prepared account; a taken address (in any case) is a `Conflict`.
pub(crate) async fn insert(
    db: &impl ConnectionTrait,
    new: Prepared,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let Prepared {
        email,
        name,
        password_hash,
        verified,
    } = new;
    let model = user::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        email: Set(email.as_str().to_owned()),
        name: Set(name.into_inner()),
        password_hash: Set(password_hash),
        email_verified_at: Set(verified.then_some(now)),
        verification_sent_at: Set(None),
        disabled_at: Set(None),
        totp_secret: Set(None),
        totp_pending_secret: Set(None),
        totp_enabled_at: Set(None),
        totp_last_step: Set(None),
        deletion_requested_at: Set(None),
        deletion_due_at: Set(None),
        created_at: Set(now),
        updated_at: Set(now),
    };
    match user::Entity::insert(model).exec_with_returning(db).await {
        Ok(user) => Ok(user),
        Err(e) if matches!(e.sql_err(), Some(SqlErr::UniqueConstraintViolation(_))) => {
            Err(Error::conflict(
                "email_taken",
                format!("an account with the address {email} already exists"),
            ))
        }
        Err(e) => Err(e.into()),
    }
}

/// `authctl users create`: an operator adds an account (optionally already verified).
pub async fn create(
    ctx: &AppContext,
    actor: &Actor,
    new: NewUser,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let prepared = prepare(ctx, new).await?;
    let txn = ctx.db.begin().await?;
    let user = insert_audited(&txn, actor, prepared, now).await?;
    txn.commit().await?;
    Ok(user)
}

/// Inserts a prepared account on `db` (the caller's transaction) and audits `user_created`.
pub(crate) async fn insert_audited(
    db: &impl ConnectionTrait,
    actor: &Actor,
    prepared: Prepared,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let verified = prepared.verified;
    let user = insert(db, prepared, now).await?;
    audit::Event::new(actor, "user_created")
        .user(&user.id)
        .detail(json!({ "verified": verified, "email": user.email }))
        .record(db, now)
        .await?;
    Ok(user)
}

/// Looks an account up by address (in any case).
pub async fn find_by_email(
    db: &impl ConnectionTrait,
    email: &Email,
) -> Result<Option<user::Model>> {
    Ok(user::Entity::find()
        .filter(user::Column::Email.eq(email.as_str()))
        .one(db)
        .await?)
}

/// Like `find_by_email`, but an unknown address is `NotFound`.
pub async fn get_by_email(ctx: &AppContext, raw_email: &str) -> Result<user::Model> {
    let email = Email::parse(raw_email)?;
    find_by_email(&ctx.db, &email)
        .await?
        .ok_or(Error::NotFound("user"))
}

/// Looks an account up by id; an unknown id is `NotFound`.
pub async fn get(ctx: &AppContext, id: &str) -> Result<user::Model> {
    user::Entity::find_by_id(id.to_owned())
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("user"))
}

/// Every account, oldest first; only the unverified ones when asked.
pub async fn list(ctx: &AppContext, unverified_only: bool) -> Result<Vec<user::Model>> {
    Ok(list_page(ctx, unverified_only, &super::Page::default())
        .await?
        .items)
}

/// The addresses of the accounts among `ids` that exist, by id.
pub async fn emails_of(
    ctx: &AppContext,
    ids: &[String],
) -> Result<std::collections::HashMap<String, String>> {
    let mut out = std::collections::HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String)> = user::Entity::find()
            .select_only()
            .column(user::Column::Id)
            .column(user::Column::Email)
            .filter(user::Column::Id.is_in(chunk.iter().cloned()))
            .into_tuple()
            .all(&ctx.db)
            .await?;
        out.extend(rows);
    }
    Ok(out)
}

/// One page of accounts, oldest first (ids are time-ordered, so `after` is a keyset: the cost
/// of a page does not grow with the table).
pub async fn list_page(
    ctx: &AppContext,
    unverified_only: bool,
    page: &super::Page,
) -> Result<super::Paged<user::Model>> {
    let mut query = user::Entity::find();
    if unverified_only {
        query = query.filter(user::Column::EmailVerifiedAt.is_null());
    }
    if let Some(after) = &page.after {
        query = query.filter(user::Column::Id.gt(after.as_str()));
    }
    let rows = query
        .order_by_asc(user::Column::Id)
        .limit(page.fetch())
        .all(&ctx.db)
        .await?;
    Ok(page.cut(rows, |u| u.id.clone()))
}

/// Marks the address verified without a link (operator action). Idempotent.
pub async fn mark_verified(
    ctx: &AppContext,
    actor: &Actor,
    raw_email: &str,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let user = get_by_email(ctx, raw_email).await?;
    if user.email_verified_at.is_some() {
        return Ok(user);
    }
    user::Entity::update_many()
        .col_expr(user::Column::EmailVerifiedAt, Expr::value(now))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .exec(&ctx.db)
        .await?;
    audit::Event::new(actor, "email_verified")
        .user(&user.id)
        .detail(json!({ "email": user.email, "via": "operator" }))
        .record(&ctx.db, now)
        .await?;
    get_by_email(ctx, raw_email).await
}

/// Disables an account and ends its sessions at once. Returns the user and the number of
/// sessions ended, or `None` when the account was already disabled (then nothing is written).
pub async fn disable(
    ctx: &AppContext,
    actor: &Actor,
    raw_email: &str,
    now: DateTime<Utc>,
) -> Result<(user::Model, Option<u64>)> {
    let user = get_by_email(ctx, raw_email).await?;
    let txn = ctx.db.begin().await?;
    let changed = user::Entity::update_many()
        .col_expr(user::Column::DisabledAt, Expr::value(now))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .filter(user::Column::DisabledAt.is_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if changed == 0 {
        // Already disabled (its sessions ended then): nothing changes, nothing is written.
        txn.rollback().await?;
        return Ok((user, None));
    }
    let ended = sessions::revoke_all_for_user(&txn, &user.id).await?;
    audit::Event::new(actor, "user_disabled")
        .user(&user.id)
        .detail(json!({ "sessionsEnded": ended }))
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    Ok((get_by_email(ctx, raw_email).await?, Some(ended)))
}

/// Re-enables a disabled account. Returns the user and whether it changed (an account that was
/// not disabled is left alone and nothing is written).
pub async fn enable(
    ctx: &AppContext,
    actor: &Actor,
    raw_email: &str,
    now: DateTime<Utc>,
) -> Result<(user::Model, bool)> {
    let user = get_by_email(ctx, raw_email).await?;
    let txn = ctx.db.begin().await?;
    let changed = user::Entity::update_many()
        .col_expr(
            user::Column::DisabledAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user.id.as_str()))
        .filter(user::Column::DisabledAt.is_not_null())
        .exec(&txn)
        .await?
        .rows_affected;
    if changed == 0 {
        // Not disabled: nothing changes, nothing is written.
        txn.rollback().await?;
        return Ok((user, false));
    }
    audit::Event::new(actor, "user_enabled")
        .user(&user.id)
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    Ok((get_by_email(ctx, raw_email).await?, true))
}

/// Changes the display name of the signed-in user.
pub async fn rename(
    ctx: &AppContext,
    user_id: &str,
    raw_name: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<user::Model> {
    let name = Name::parse(raw_name)?;
    user::Entity::update_many()
        .col_expr(user::Column::Name, Expr::value(name.as_str()))
        .col_expr(user::Column::UpdatedAt, Expr::value(now))
        .filter(user::Column::Id.eq(user_id))
        .exec(&ctx.db)
        .await?;
    audit::Event::new(&Actor::User(user_id.to_owned()), "profile_updated")
        .user(user_id)
        .client(client)
        .detail(json!({ "fields": ["name"] }))
        .record(&ctx.db, now)
        .await?;
    user::Entity::find_by_id(user_id.to_owned())
        .one(&ctx.db)
        .await?
        .ok_or(Error::NotFound("user"))
}

/// How many accounts there are (for `/metrics`).
pub async fn count(db: &impl ConnectionTrait) -> Result<u64> {
    Ok(user::Entity::find().count(db).await?)
}

/// How many accounts are scheduled for deletion (for `/metrics`).
pub async fn count_pending_deletion(db: &impl ConnectionTrait) -> Result<u64> {
    Ok(user::Entity::find()
        .filter(user::Column::DeletionDueAt.is_not_null())
        .count(db)
        .await?)
}

/// Replaces a password hash made with older argon2 parameters (the password is unchanged).
pub async fn upgrade_password_hash(
    db: &impl ConnectionTrait,
    user_id: &str,
    hash: String,
) -> Result<()> {
    user::Entity::update_many()
        .col_expr(user::Column::PasswordHash, Expr::value(hash))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The ways an account can prove who it is, in a fixed order: `password`, `totp`, `passkey`,
/// `sso` (an identity at an IdP). One statement reads the passkey and SSO counts.
pub async fn factors(db: &impl ConnectionTrait, u: &user::Model) -> Result<Vec<&'static str>> {
    let backend = db.get_database_backend();
    let sql = match backend {
        sea_orm::DatabaseBackend::Postgres => {
            "SELECT (SELECT COUNT(*) FROM passkeys WHERE user_id = $1) AS passkeys, \
             (SELECT COUNT(*) FROM sso_identities WHERE user_id = $1) AS sso"
        }
        _ => {
            "SELECT (SELECT COUNT(*) FROM passkeys WHERE user_id = ?1) AS passkeys, \
             (SELECT COUNT(*) FROM sso_identities WHERE user_id = ?1) AS sso"
        }
    };
    let row = db
        .query_one_raw(sea_orm::Statement::from_sql_and_values(
            backend,
            sql,
            [u.id.clone().into()],
        ))
        .await?;
    let (passkeys, sso) = match row {
        Some(row) => (
            row.try_get::<i64>("", "passkeys")?,
            row.try_get::<i64>("", "sso")?,
        ),
        None => (0, 0),
    };
    let mut out = Vec::with_capacity(4);
    if u.password_hash.is_some() {
        out.push("password");
    }
    if u.totp_enabled_at.is_some() {
        out.push("totp");
    }
    if passkeys > 0 {
        out.push("passkey");
    }
    if sso > 0 {
        out.push("sso");
    }
    Ok(out)
}
