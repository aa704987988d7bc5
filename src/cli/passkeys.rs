//! `authctl passkeys …`
use clap::Subcommand;

use crate::context::AppContext;
use crate::error::Error;
use crate::service::{Actor, webauthn};

use super::output;
use super::shapes::{Change, Passkey};
use super::{GlobalArgs, PageArgs, find_user, hint_next};

#[derive(Debug, Subcommand)]
pub enum PasskeysCommand {
    /// List an account's passkeys, newest first (never the public keys).
    ///
    /// Example: authctl passkeys list --user alice@example.com
    List {
        /// The account, by address or id.
        #[arg(long, value_name = "EMAIL|ID")]
        user: String,
        #[command(flatten)]
        page: PageArgs,
    },
    /// Remove a passkey by id: it fails at its very next use, and its owner is mailed.
    ///
    /// Example: authctl passkeys remove 0193b3f0-aaaa-7bbb-8ccc-123456789abc
    Remove {
        #[arg(value_name = "ID")]
        id: String,
    },
}

impl PasskeysCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        match self {
            Self::List { user, page } => {
                let user = find_user(ctx, &user).await?;
                let page = page.page()?;
                let keys = webauthn::list(ctx, &user.id).await?;
                let listed = page.of_newest(keys, |k| &k.id);
                let shown: Vec<Passkey> = listed
                    .items
                    .into_iter()
                    .map(|k| Passkey::new(&user.id, k))
                    .collect();
                global.printer().list(&shown)?;
                hint_next(listed.next.as_deref(), &page);
                Ok(())
            }
            Self::Remove { id } => {
                let id = super::normal_id(&id);
                let missing = || {
                    super::not_found(format!(
                        "no passkey has the id {id}; `authctl passkeys list --user EMAIL` shows them"
                    ))
                };
                let found = crate::service::passkeys::get_of_user(&ctx.db, None, &id)
                    .await
                    .map_err(|e| match e {
                        Error::NotFound(_) => missing(),
                        other => other.into(),
                    })?;
                let owner = crate::service::users::get(ctx, &found.user_id).await?;
                output::confirm(
                    &format!(
                        "Remove the passkey \"{}\" of {}? It stops signing them in at once.",
                        found.name, owner.email
                    ),
                    global.yes,
                )?;
                let key = webauthn::remove(ctx, &Actor::cli(), None, &id, None, ctx.now())
                    .await
                    .map_err(|e| match e {
                        Error::NotFound(_) => missing(),
                        other => other.into(),
                    })?;
                let change = Change::new("passkeys.remove", "passkey", vec![key.id.clone()]);
                global.printer().changed(
                    &change,
                    &format!(
                        "Passkey \"{}\" of {} is removed; they were mailed.",
                        key.name, owner.email
                    ),
                )
            }
        }
    }
}
