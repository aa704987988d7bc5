//! `authctl apikeys …`
use clap::Subcommand;
use serde_json::json;

use crate::context::AppContext;
use crate::error::Error;
use crate::service::Actor;
use crate::service::api_keys;

use super::output::{self, Output};
use super::{GlobalArgs, find_user};

#[derive(Debug, Subcommand)]
pub enum ApiKeysCommand {
    /// List a user's API keys (never the secrets).
    List {
        #[arg(long, value_name = "EMAIL")]
        user: String,
    },
    /// Revoke an API key by id.
    Revoke { id: String },
}

impl ApiKeysCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        match self {
            Self::List { user } => {
                let user = find_user(ctx, &user).await?;
                let keys = api_keys::list(ctx, &user.id).await?;
                match global.output {
                    Output::Json => output::json(&keys),
                    Output::Table => output::table(
                        &["id", "name", "prefix", "created", "last used", "expires"],
                        keys.iter()
                            .map(|k| {
                                vec![
                                    k.id.clone(),
                                    k.name.clone(),
                                    k.prefix.clone(),
                                    output::time(k.created_at),
                                    output::opt_time(k.last_used_at),
                                    output::opt_time(k.expires_at),
                                ]
                            })
                            .collect(),
                    ),
                }
            }
            Self::Revoke { id } => {
                let key = api_keys::revoke(ctx, &Actor::cli(), None, &id, ctx.now()).await.map_err(|e| match e {
                    Error::NotFound(_) => super::not_found(format!("no API key has the id {id}; `authctl apikeys list --user EMAIL` shows them")),
                    other => other.into(),
                })?;
                match global.output {
                    Output::Json => output::json(&json!({ "revoked": 1, "id": key.id })),
                    Output::Table => {
                        output::say(&format!(
                            "API key {} ({}) is revoked.",
                            key.prefix, key.name
                        ))?;
                        Ok(())
                    }
                }
            }
        }
    }
}
