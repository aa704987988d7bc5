//! `authctl apikeys …`
use clap::Subcommand;

use crate::context::AppContext;
use crate::error::Error;
use crate::service::Actor;
use crate::service::api_keys;

use super::shapes::{ApiKey, Change};
use super::{GlobalArgs, PageArgs, find_user, hint_next};

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// List an account's API keys, newest first (never the secrets).
    ///
    /// Example: authctl apikeys list --user alice@example.com
    List {
        /// The account, by address or id.
        #[arg(long, value_name = "EMAIL|ID")]
        user: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Revoke an API key by id; it fails on its very next request.
    ///
    /// Example: authctl apikeys revoke 0193b3f0-aaaa-7bbb-8ccc-123456789abc
    Revoke {
        #[arg(value_name = "ID")]
        id: String,
    },
}

impl ApiKeysCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        match self {
            Self::List { user, page } => {
                let user = find_user(ctx, &user).await?;
                let page = page.page()?;
                let keys = api_keys::list(ctx, &user.id).await?;
                let listed = page.of_newest(keys, |k| &k.id);
                let shown: Vec<ApiKey> = listed
                    .items
                    .into_iter()
                    .map(|k| ApiKey::new(&user.id, k))
                    .collect();
                global.printer().list(&shown)?;
                hint_next(listed.next.as_deref(), &page);
                Ok(())
            }
            Self::Revoke { id } => {
                let key = api_keys::revoke(
                    ctx,
                    &Actor::cli(),
                    None,
                    &super::normal_id(&id),
                    ctx.now(),
                )
                .await
                .map_err(|e| match e {
                    Error::NotFound(_) => super::not_found(format!(
                        "no API key has the id {id}; `authctl apikeys list --user EMAIL` shows them"
                    )),
                    other => other.into(),
                })?;
                let change = Change::new("apikeys.revoke", "apiKey", vec![key.id.clone()]);
                global.printer().changed(
                    &change,
                    &format!("API key {} ({}) is revoked.", key.prefix, key.name),
                )
            }
        }
    }
}
