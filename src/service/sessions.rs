//! Sessions: password login, the per-request session check (with rotation and fingerprint
//! drift), listing and revoking, logout.
//!
//! The cookie holds a 32-byte random token; the database holds only its SHA-256. Checking a
//! session is one indexed read (the session joined with its user, by current or just-rotated
//! token); it writes only when last-active is older than `session.touch_interval`, when the token
//! is due for rotation, or when a fingerprint is first seen or changes.
use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, EntityTrait, PaginatorTrait,
    QueryFilter, QueryOrder, QuerySelect, TransactionTrait,
};
use secrecy::SecretString;
use serde::Serialize;
use serde_json::json;

use crate::clock::span;
use crate::config::{Config, FingerprintPolicy, SessionConfig};
use crate::context::AppContext;
use crate::entity::{session, user};
use crate::error::{Error, Result};
use crate::mail::Mail;
use crate::tokens;

use super::{Actor, ClientInfo, audit, devices};

/// The one rule for "is this session still alive": before its absolute expiry and used within
/// `session.idle_timeout`. [`alive`] applies it to a row, [`alive_rows`] and [`ended_rows`] to a
/// query. (Whether its user may still sign in is the user's rule, checked beside it.)
pub fn alive(config: &SessionConfig, session: &session::Model, now: DateTime<Utc>) -> bool {
    session.expires_at > now && session.last_active_at > idle_cutoff(config, now)
}

/// The sessions [`alive`] at `now`, as a query condition.
pub fn alive_rows(config: &SessionConfig, now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(session::Column::ExpiresAt.gt(now))
        .add(session::Column::LastActiveAt.gt(idle_cutoff(config, now)))
}

/// The sessions no longer [`alive`] at `now`, as a query condition.
pub fn ended_rows(config: &SessionConfig, now: DateTime<Utc>) -> Condition {
    Condition::any()
        .add(session::Column::ExpiresAt.lte(now))
        .add(session::Column::LastActiveAt.lte(idle_cutoff(config, now)))
}

fn idle_cutoff(config: &SessionConfig, now: DateTime<Utc>) -> DateTime<Utc> {
    now - span(config.idle_timeout)
}

/// How a session was authenticated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMethod {
    Password,
    /// SAML single sign-on.
    Sso,
    /// A mailed sign-in link.
    MagicLink,
    /// A WebAuthn credential with user verification.
    Passkey,
}

impl AuthMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Password => "password",
            Self::Sso => "sso",
            Self::MagicLink => "magic_link",
            Self::Passkey => "passkey",
        }
    }
}

/// `sessions.state` of a usable session.
pub const ACTIVE: &str = "active";
/// `sessions.state` while a login waits for its second factor: only `POST /login/2fa` accepts it.
pub const PENDING_2FA: &str = "pending_2fa";

/// A session that was just created: the token goes into the cookie and nowhere else.
pub struct NewSession {
    pub token: SecretString,
    pub session: session::Model,
}

/// A valid session with its user. `rotated` holds a new token the client must be given (the
/// HTTP layer sets it as the cookie).
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub session: session::Model,
    pub user: user::Model,
    pub rotated: Option<SecretString>,
    /// The request presented the token this session replaced moments ago (within the grace).
    pub via_previous: bool,
    /// The user's roles, sorted, read with the session; `None` where the check did not read
    /// them (a session made or found by another flow).
    pub roles: Option<Vec<String>>,
}

impl Authenticated {
    /// The hash of the token the request presented.
    pub fn presented_hash(&self) -> &str {
        match (&self.session.previous_token_hash, self.via_previous) {
            (Some(previous), true) => previous,
            _ => &self.session.token_hash,
        }
    }
}

/// Creates a session row for `user_id` and returns the token. Beyond `session.max_per_user`
/// live sessions, the oldest are evicted. A `pending` session only lives `two_factor.pending_ttl`
/// and can do nothing but finish the login.
pub async fn create(
    db: &impl ConnectionTrait,
    config: &Config,
    user_id: &str,
    method: AuthMethod,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<NewSession> {
    create_in_state(db, config, user_id, method, client, now, false).await
}

pub(crate) async fn create_in_state(
    db: &impl ConnectionTrait,
    config: &Config,
    user_id: &str,
    method: AuthMethod,
    client: &ClientInfo,
    now: DateTime<Utc>,
    pending: bool,
) -> Result<NewSession> {
    let token = tokens::generate();
    let lifetime = if pending {
        config.two_factor.pending_ttl
    } else {
        config.session.absolute_timeout
    };
    let model = session::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        token_hash: Set(tokens::hash(&token)),
        previous_token_hash: Set(None),
        token_issued_at: Set(now),
        user_id: Set(user_id.to_owned()),
        auth_method: Set(method.as_str().to_owned()),
        state: Set(if pending { PENDING_2FA } else { ACTIVE }.to_owned()),
        stepped_up_at: Set(None),
        ip: Set(client.ip_string()),
        user_agent: Set(client.user_agent.clone()),
        device_name: Set(devices::device_name(client.user_agent.as_deref())),
        fingerprint_hash: Set(client.fingerprint.clone()),
        fingerprint_changed_at: Set(None),
        created_at: Set(now),
        authenticated_at: Set(now),
        last_active_at: Set(now),
        expires_at: Set(now + span(lifetime)),
    };
    let session = session::Entity::insert(model)
        .exec_with_returning(db)
        .await?;
    enforce_cap(db, config, user_id, &session.id, pending, client, now).await?;
    Ok(NewSession {
        token: SecretString::from(token),
        session,
    })
}

/// Evicts a user's oldest sessions beyond the cap. Real sessions and logins still waiting for
/// their second factor are capped apart: a pending login never counts toward
/// `session.max_per_user` nor evicts a real session (`two_factor.max_pending_logins` caps them).
pub(crate) async fn enforce_cap(
    db: &impl ConnectionTrait,
    config: &Config,
    user_id: &str,
    keep: &str,
    pending: bool,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    let (state, cap) = if pending {
        (PENDING_2FA, config.two_factor.max_pending_logins)
    } else {
        (ACTIVE, config.session.max_per_user)
    };
    // The session being signed in (`keep`) always stays; of the others, those that signed in
    // most recently (a finished second factor counts from when it finished).
    let evicted: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::State.eq(state))
        .filter(session::Column::Id.ne(keep))
        .order_by_desc(session::Column::AuthenticatedAt)
        .order_by_desc(session::Column::CreatedAt)
        .order_by_desc(session::Column::Id)
        .into_tuple::<String>()
        .all(db)
        .await?
        .into_iter()
        .skip((cap as usize).saturating_sub(1))
        .collect();
    if !evicted.is_empty() {
        session::Entity::delete_many()
            .filter(session::Column::Id.is_in(evicted.clone()))
            .exec(db)
            .await?;
        audit::Event::new(&Actor::System, "sessions_evicted")
            .user(user_id)
            .client(client)
            .detail(json!({ "sessionIds": evicted, "limit": cap, "state": state }))
            .record(db, now)
            .await?;
    }
    Ok(())
}

/// The per-request check. One indexed read finds the session by its current token or by the
/// token it replaced less than `session.rotation_grace` ago. A replaced token used after the
/// grace ends the whole session: someone kept a token they should not have.
pub async fn authenticate(
    ctx: &AppContext,
    token: &str,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<Authenticated> {
    if !tokens::looks_valid(token) {
        return Err(Error::Unauthenticated);
    }
    let hash = tokens::hash(token);
    let Some((mut session, user, roles)) = find_by_token(ctx, &hash).await? else {
        return Err(Error::Unauthenticated);
    };
    let config = &ctx.config.session;
    if !alive(config, &session, now) || user.disabled_at.is_some() {
        // Ended: clean it up now rather than waiting for the janitor.
        session::Entity::delete_by_id(session.id.clone())
            .exec(&ctx.db)
            .await?;
        return Err(Error::Unauthenticated);
    }
    let via_previous = session.token_hash != hash;
    if via_previous && session.token_issued_at + span(config.rotation_grace) <= now {
        session::Entity::delete_by_id(session.id.clone())
            .exec(&ctx.db)
            .await?;
        audit::Event::new(&Actor::System, "session_token_reused")
            .user(&user.id)
            .client(client)
            .detail(json!({ "sessionId": session.id }))
            .record(&ctx.db, now)
            .await?;
        return Err(Error::Unauthenticated);
    }
    check_fingerprint(ctx, &mut session, &user, client, now).await?;

    let mut rotated = None;
    if !via_previous && now - session.token_issued_at >= span(config.rotation_interval) {
        rotated = rotate(&ctx.db, &mut session, &hash, now).await?;
    }
    if rotated.is_none() && now - session.last_active_at >= span(config.touch_interval) {
        session::Entity::update_many()
            .col_expr(session::Column::LastActiveAt, Expr::value(now))
            .filter(session::Column::Id.eq(session.id.as_str()))
            .exec(&ctx.db)
            .await?;
        session.last_active_at = now;
    }
    Ok(Authenticated {
        session,
        user,
        rotated,
        via_previous,
        roles: Some(roles),
    })
}

/// The session whose current or previous token has `hash`, with its user and the user's roles,
/// in one statement on the read connections (the roles as a JSON array from a subquery).
async fn find_by_token(
    ctx: &AppContext,
    hash: &str,
) -> Result<Option<(session::Model, user::Model, Vec<String>)>> {
    use sea_orm::{DatabaseBackend, FromQueryResult, QueryTrait, Statement};
    const ROLES: &str = "authctl_roles";
    // The statement's text is the same on every request: built once per backend, then bound.
    static SQL: [std::sync::OnceLock<String>; 3] = [
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
        std::sync::OnceLock::new(),
    ];
    let backend = ctx.read.get_database_backend();
    let slot = match backend {
        DatabaseBackend::Sqlite => 0,
        DatabaseBackend::Postgres => 1,
        _ => 2,
    };
    let sql = SQL[slot].get_or_init(|| {
        session::Entity::find()
            .filter(
                Condition::any()
                    .add(session::Column::TokenHash.eq(""))
                    .add(session::Column::PreviousTokenHash.eq("")),
            )
            .find_also_related(user::Entity)
            .expr_as(
                Expr::cust(crate::db::roles_json_subquery(backend, "sessions.user_id")),
                ROLES,
            )
            .build(backend)
            .sql
    });
    let query = Statement::from_sql_and_values(backend, sql.as_str(), [hash.into(), hash.into()]);
    // `all` with no LIMIT: SQLite re-prepares a statement whose LIMIT is a bound parameter on
    // every run (its planner reads the value), and this one runs on every request.
    let rows = ctx.read.query_all_raw(query).await?;
    let Some(row) = rows.first() else {
        return Ok(None);
    };
    let session = session::Model::from_query_result(row, "A_")?;
    let Some(user) = user::Model::from_query_result_optional(row, "B_")? else {
        return Ok(None);
    };
    let roles: Option<String> = row.try_get("", ROLES)?;
    let mut roles: Vec<String> = roles
        .as_deref()
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| Error::Internal(anyhow::anyhow!("the roles of a user do not read: {e}")))?
        .unwrap_or_default();
    roles.sort();
    Ok(Some((session, user, roles)))
}

/// Gives the session a new token; the token the client presented (`presented`, the current one
/// or, within the grace, the one before it) keeps working for `session.rotation_grace`. Keeping the
/// presented token rather than the current one matters for clients that never store a rotated
/// cookie (a curl script re-sending its login cookie): their token survives a second rotation.
/// Returns `None` when a parallel request rotated it first (its token is then the one to use).
pub async fn rotate(
    db: &impl ConnectionTrait,
    session: &mut session::Model,
    presented: &str,
    now: DateTime<Utc>,
) -> Result<Option<SecretString>> {
    let token = tokens::generate();
    let new_hash = tokens::hash(&token);
    let presented = presented.to_owned();
    let result = session::Entity::update_many()
        .col_expr(session::Column::TokenHash, Expr::value(new_hash.as_str()))
        .col_expr(
            session::Column::PreviousTokenHash,
            Expr::value(presented.as_str()),
        )
        .col_expr(session::Column::TokenIssuedAt, Expr::value(now))
        .col_expr(session::Column::LastActiveAt, Expr::value(now))
        .filter(session::Column::Id.eq(session.id.as_str()))
        .filter(session::Column::TokenHash.eq(session.token_hash.as_str()))
        .exec(db)
        .await?;
    if result.rows_affected == 0 {
        return Ok(None);
    }
    session.token_hash = new_hash;
    session.previous_token_hash = Some(presented);
    session.token_issued_at = now;
    session.last_active_at = now;
    Ok(Some(SecretString::from(token)))
}

/// Fingerprint drift: the first fingerprint a session sees is kept; a different one later flags
/// the session (audited, one mail) or, with `session.fingerprint_policy = "revoke"`, ends it.
async fn check_fingerprint(
    ctx: &AppContext,
    session: &mut session::Model,
    user: &user::Model,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    let Some(seen) = &client.fingerprint else {
        return Ok(());
    };
    let Some(known) = &session.fingerprint_hash else {
        session::Entity::update_many()
            .col_expr(session::Column::FingerprintHash, Expr::value(seen.as_str()))
            .filter(session::Column::Id.eq(session.id.as_str()))
            .filter(session::Column::FingerprintHash.is_null())
            .exec(&ctx.db)
            .await?;
        session.fingerprint_hash = Some(seen.clone());
        return Ok(());
    };
    if known == seen {
        return Ok(());
    }
    let revoke = ctx.config.session.fingerprint_policy == FingerprintPolicy::Revoke;
    let first_time = if revoke {
        session::Entity::delete_by_id(session.id.clone())
            .exec(&ctx.db)
            .await?
            .rows_affected
            == 1
    } else {
        session::Entity::update_many()
            .col_expr(session::Column::FingerprintChangedAt, Expr::value(now))
            .filter(session::Column::Id.eq(session.id.as_str()))
            .filter(session::Column::FingerprintChangedAt.is_null())
            .exec(&ctx.db)
            .await?
            .rows_affected
            == 1
    };
    if session.fingerprint_changed_at.is_none() {
        session.fingerprint_changed_at = Some(now);
    }
    if first_time {
        let action = if revoke {
            "session_revoked_fingerprint_changed"
        } else {
            "session_fingerprint_changed"
        };
        audit::Event::new(&Actor::System, action)
            .user(&user.id)
            .client(client)
            .detail(json!({ "sessionId": session.id, "device": session.device_name }))
            .record(&ctx.db, now)
            .await?;
        let mail = Mail::fingerprint_alert(user, session, revoke);
        super::outbox::queue(ctx, &ctx.db, Some(&user.id), &mail, now).await?;
    }
    if revoke {
        Err(Error::Unauthenticated)
    } else {
        Ok(())
    }
}

/// A session as shown to its user (`GET /me/sessions`) and to operators.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct SessionView {
    pub id: String,
    /// Whether this is the session making the request.
    pub current: bool,
    pub device_name: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: DateTime<Utc>,
    pub last_active_at: DateTime<Utc>,
    /// `password`, `magic_link`, `passkey` or `sso`.
    pub auth_method: String,
    pub expires_at: DateTime<Utc>,
    /// Warnings about the session, e.g. `fingerprint_changed`.
    pub flags: Vec<String>,
}

impl SessionView {
    fn new(s: session::Model, current: Option<&str>) -> Self {
        let mut flags = Vec::new();
        if s.fingerprint_changed_at.is_some() {
            flags.push("fingerprint_changed".to_owned());
        }
        Self {
            current: current == Some(s.id.as_str()),
            id: s.id,
            device_name: s.device_name,
            ip: s.ip,
            user_agent: s.user_agent,
            created_at: s.created_at,
            last_active_at: s.last_active_at,
            auth_method: s.auth_method,
            expires_at: s.expires_at,
            flags,
        }
    }
}

/// Every live session of a user, most recently active first.
pub async fn list_for_user(
    ctx: &AppContext,
    user_id: &str,
    current: Option<&str>,
    now: DateTime<Utc>,
) -> Result<Vec<SessionView>> {
    let rows = session::Entity::find()
        .filter(session::Column::UserId.eq(user_id))
        .filter(alive_rows(&ctx.config.session, now))
        .order_by_desc(session::Column::LastActiveAt)
        .order_by_desc(session::Column::Id)
        .all(&ctx.db)
        .await?;
    Ok(rows
        .into_iter()
        .map(|s| SessionView::new(s, current))
        .collect())
}

/// Revokes one session. With `owner`, a session of anybody else is `NotFound` (and lives on).
pub async fn revoke(
    ctx: &AppContext,
    actor: &Actor,
    owner: Option<&str>,
    session_id: &str,
    client: Option<&ClientInfo>,
    now: DateTime<Utc>,
) -> Result<session::Model> {
    // Ids are UUIDs; anything else (a NUL byte, which PostgreSQL refuses in text) is unknown.
    if uuid::Uuid::parse_str(session_id).is_err() {
        return Err(Error::NotFound("session"));
    }
    let found = session::Entity::find_by_id(session_id.to_owned())
        .one(&ctx.db)
        .await?;
    let session = found
        .filter(|s| owner.is_none_or(|o| o == s.user_id))
        .ok_or(Error::NotFound("session"))?;
    session::Entity::delete_by_id(session.id.clone())
        .exec(&ctx.db)
        .await?;
    audit::Event::new(actor, "session_revoked")
        .user(&session.user_id)
        .maybe_client(client)
        .detail(json!({ "sessionId": session.id, "device": session.device_name }))
        .record(&ctx.db, now)
        .await?;
    Ok(session)
}

/// Signs a user out everywhere except `keep`; returns how many sessions ended.
pub async fn revoke_others(
    ctx: &AppContext,
    actor: &Actor,
    user_id: &str,
    keep: &str,
    client: Option<&ClientInfo>,
    now: DateTime<Utc>,
) -> Result<u64> {
    let ended = session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .filter(session::Column::Id.ne(keep))
        .exec(&ctx.db)
        .await?
        .rows_affected;
    audit::Event::new(actor, "sessions_revoked_others")
        .user(user_id)
        .maybe_client(client)
        .detail(json!({ "kept": keep, "ended": ended }))
        .record(&ctx.db, now)
        .await?;
    Ok(ended)
}

/// Ends every session of a user (operator action); returns how many there were.
pub async fn revoke_all(
    ctx: &AppContext,
    actor: &Actor,
    user_id: &str,
    now: DateTime<Utc>,
) -> Result<Vec<String>> {
    let txn = ctx.db.begin().await?;
    let ids: Vec<String> = session::Entity::find()
        .select_only()
        .column(session::Column::Id)
        .filter(session::Column::UserId.eq(user_id))
        .into_tuple()
        .all(&txn)
        .await?;
    let ended = revoke_all_for_user(&txn, user_id).await?;
    audit::Event::new(actor, "sessions_revoked_all")
        .user(user_id)
        .detail(json!({ "ended": ended }))
        .record(&txn, now)
        .await?;
    txn.commit().await?;
    Ok(ids)
}

/// Ends one session (logout).
pub async fn logout(
    ctx: &AppContext,
    auth: &Authenticated,
    client: &ClientInfo,
    now: DateTime<Utc>,
) -> Result<()> {
    session::Entity::delete_by_id(auth.session.id.clone())
        .exec(&ctx.db)
        .await?;
    audit::Event::new(&Actor::User(auth.user.id.clone()), "logout")
        .user(&auth.user.id)
        .client(client)
        .detail(json!({ "sessionId": auth.session.id }))
        .record(&ctx.db, now)
        .await
}

/// Ends every session of a user but `keep`, without auditing (the caller audits its action).
pub async fn revoke_all_for_user_except(
    db: &impl ConnectionTrait,
    user_id: &str,
    keep: Option<&str>,
) -> Result<u64> {
    let mut query = session::Entity::delete_many().filter(session::Column::UserId.eq(user_id));
    if let Some(keep) = keep {
        query = query.filter(session::Column::Id.ne(keep));
    }
    Ok(query.exec(db).await?.rows_affected)
}

/// Ends every session of a user without auditing (the caller audits its own action).
pub async fn revoke_all_for_user(db: &impl ConnectionTrait, user_id: &str) -> Result<u64> {
    let result = session::Entity::delete_many()
        .filter(session::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Rotates the token after a privilege change; a concurrent rotation is a conflict to retry.
pub async fn rotate_or_fail(
    ctx: &AppContext,
    auth: &Authenticated,
    now: DateTime<Utc>,
) -> Result<SecretString> {
    let mut session = auth.session.clone();
    rotate(&ctx.db, &mut session, auth.presented_hash(), now)
        .await?
        .ok_or_else(|| {
            Error::conflict(
                "session_busy",
                "the session changed during this request; try again",
            )
        })
}

/// How many sessions are not past their absolute expiry at `now` (for `/metrics`).
pub async fn count_unexpired(db: &impl ConnectionTrait, now: DateTime<Utc>) -> Result<u64> {
    Ok(session::Entity::find()
        .filter(session::Column::ExpiresAt.gt(now))
        .count(db)
        .await?)
}

/// A session waiting for its second factor becomes a full one, from `now` for the whole
/// `session.absolute_timeout`. False when it was no longer waiting (a parallel request won).
pub async fn finish_second_factor(
    db: &impl ConnectionTrait,
    config: &Config,
    session_id: &str,
    now: DateTime<Utc>,
) -> Result<bool> {
    let upgraded = session::Entity::update_many()
        .col_expr(session::Column::State, Expr::value(ACTIVE))
        .col_expr(session::Column::AuthenticatedAt, Expr::value(now))
        .col_expr(
            session::Column::ExpiresAt,
            Expr::value(now + span(config.session.absolute_timeout)),
        )
        .filter(session::Column::Id.eq(session_id))
        .filter(session::Column::State.eq(PENDING_2FA))
        .exec(db)
        .await?;
    Ok(upgraded.rows_affected > 0)
}
