//! `authctl verification …`
use clap::Subcommand;
use serde_json::json;

use crate::context::AppContext;
use crate::service::Actor;
use crate::service::verification::{self, Resent};

use super::output::{self, Output};
use super::{GlobalArgs, find_user};

#[derive(Debug, Subcommand)]
pub enum VerificationCommand {
    /// Send a new verification link to an unverified account.
    Resend { email: String },
}

impl VerificationCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        match self {
            Self::Resend { email } => {
                let user = find_user(ctx, &email).await?;
                match verification::resend(ctx, &Actor::cli(), &user, ctx.now()).await? {
                    Resent::Sent => {
                        if global.output == Output::Json {
                            output::json(&json!({ "email": user.email, "sent": true }))?;
                        } else {
                            output::say(&format!(
                                "A new verification link was sent to {}.",
                                user.email
                            ))?;
                        }
                        Ok(())
                    }
                    Resent::AlreadyVerified => {
                        anyhow::bail!("{} is already verified; nothing was sent", user.email)
                    }
                    Resent::TooSoon => anyhow::bail!(
                        "a verification mail went to {} less than {} ago; wait and try again",
                        user.email,
                        humantime::format_duration(ctx.config.verification.resend_interval)
                    ),
                }
            }
        }
    }
}
