//! `authctl verification …`
use clap::Subcommand;

use crate::context::AppContext;
use crate::service::Actor;
use crate::service::verification::{self, Resent};

use super::shapes::Change;
use super::{GlobalArgs, find_user};

#[derive(Debug, Subcommand)]
pub enum VerificationCommand {
    /// Send a new verification link to an unverified account.
    ///
    /// The mail goes out over mail.transport; with the `log` transport `authctl serve` prints
    /// it to its own log. A link sent less than verification.resend_interval ago is not sent
    /// again.
    ///
    /// Example: authctl verification resend alice@example.com
    Resend {
        #[arg(value_name = "EMAIL|ID")]
        email: String,
    },
}

impl VerificationCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        match self {
            Self::Resend { email } => {
                let user = find_user(ctx, &email).await?;
                match verification::resend(ctx, &Actor::cli(), &user, ctx.now()).await? {
                    Resent::Sent => global.printer().changed(
                        &Change::new("verification.resend", "user", vec![user.id.clone()])
                            .detail("email", &user.email),
                        &format!("A new verification link was sent to {}.", user.email),
                    ),
                    Resent::AlreadyVerified => {
                        anyhow::bail!("{} is already verified; nothing was sent", user.email)
                    }
                    Resent::TooSoon => anyhow::bail!(
                        "a verification mail went to {} less than {} ago; wait and try again",
                        user.email,
                        super::output::duration(ctx.config.verification.resend_interval)
                    ),
                }
            }
        }
    }
}
