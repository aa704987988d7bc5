//! `authctl scim …`: the bearer tokens of a SAML provider's SCIM client.
use std::io::Write;
use std::path::PathBuf;

use clap::Subcommand;

use crate::context::AppContext;
use crate::error::Error;
use crate::service::Actor;
use crate::service::scim::tokens;

use super::GlobalArgs;
use super::shapes::{Change, ScimToken, ScimTokenCreated};

#[derive(Debug, Subcommand)]
pub enum ScimCommand {
    /// Make, list and revoke the bearer tokens a provider's IdP provisions users with.
    #[command(subcommand)]
    Tokens(TokensCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokensCommand {
    /// Make a token for a provider's SCIM client. The token is written to a new file (mode
    /// 600), never to stdout: paste it into the IdP, then delete the file.
    ///
    /// Example: authctl scim tokens create --provider okta --token-file okta-scim.token
    Create {
        /// The SAML provider whose users and groups the token may change.
        #[arg(long, value_name = "NAME")]
        provider: String,
        /// A label for the token.
        #[arg(long, value_name = "LABEL", default_value = "scim")]
        name: String,
        /// Where to write the token (the file must not exist yet).
        #[arg(long, value_name = "FILE")]
        token_file: PathBuf,
    },
    /// List SCIM tokens (never the secrets), newest first.
    ///
    /// Example: authctl scim tokens list --provider okta
    List {
        /// Only this provider's tokens.
        #[arg(long, value_name = "NAME")]
        provider: Option<String>,
    },
    /// Revoke a SCIM token by id; its next request gets 401.
    ///
    /// Example: authctl scim tokens revoke 0193b3f0-aaaa-7bbb-8ccc-123456789abc
    Revoke {
        #[arg(value_name = "ID")]
        id: String,
    },
}

fn no_provider(name: &str) -> anyhow::Error {
    super::not_found(format!(
        "no SAML provider is named {name}; `authctl saml list` shows them"
    ))
}

/// Creates `path` for the owner alone and writes `secret` to it; an existing file is refused.
fn write_secret(path: &PathBuf, secret: &str) -> anyhow::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| {
        super::usage(format!(
            "cannot create the token file {}: {e} (it must not exist yet)",
            path.display()
        ))
    })?;
    file.write_all(format!("{secret}\n").as_bytes())?;
    Ok(())
}

impl ScimCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        let Self::Tokens(cmd) = self;
        match cmd {
            TokensCommand::Create {
                provider,
                name,
                token_file,
            } => {
                if token_file.exists() {
                    return Err(super::usage(format!(
                        "the token file {} exists already; name a new file",
                        token_file.display()
                    )));
                }
                let (view, secret) =
                    tokens::create(ctx, &Actor::cli(), &provider, &name, ctx.now())
                        .await
                        .map_err(|e| match e {
                            Error::NotFound(_) => no_provider(&provider),
                            other => other.into(),
                        })?;
                if let Err(e) = write_secret(&token_file, &secret) {
                    // The token would be unusable: it is revoked before anyone can have it.
                    let _ = tokens::revoke(ctx, &Actor::cli(), &view.id, ctx.now()).await;
                    return Err(e);
                }
                let shown = ScimTokenCreated {
                    token: ScimToken::from(view),
                    token_file: std::path::absolute(&token_file).unwrap_or(token_file),
                };
                eprintln!(
                    "Give the token in {} to the IdP as the bearer token for {}/scim/v2, then delete the file.",
                    shown.token_file.display(),
                    ctx.config.public_url.as_str().trim_end_matches('/'),
                );
                global.printer().show(
                    &shown,
                    vec![
                        ("id", shown.token.id.clone()),
                        ("provider", shown.token.provider.clone()),
                        ("name", shown.token.name.clone()),
                        ("prefix", shown.token.prefix.clone()),
                        ("token file", shown.token_file.display().to_string()),
                    ],
                )
            }
            TokensCommand::List { provider } => {
                let listed = tokens::list(ctx, provider.as_deref())
                    .await
                    .map_err(|e| match e {
                        Error::NotFound(_) => no_provider(provider.as_deref().unwrap_or_default()),
                        other => other.into(),
                    })?;
                let shown: Vec<ScimToken> = listed.into_iter().map(ScimToken::from).collect();
                global.printer().list(&shown)
            }
            TokensCommand::Revoke { id } => {
                let id = super::normal_id(&id);
                let revoked = tokens::revoke(ctx, &Actor::cli(), &id, ctx.now())
                    .await
                    .map_err(|e| match e {
                        Error::NotFound(_) => super::not_found(format!(
                            "no SCIM token has the id {id}; `authctl scim tokens list` shows them"
                        )),
                        other => other.into(),
                    })?;
                let change =
                    Change::new("scim.tokens.revoke", "scimToken", vec![revoked.id.clone()]);
                global.printer().changed(
                    &change,
                    &format!(
                        "SCIM token {} of the provider {} is revoked.",
                        revoked.prefix, revoked.provider
                    ),
                )
            }
        }
    }
}
