//! `authctl saml …`: register SAML identity providers for e-mail domains.
use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::context::AppContext;
use crate::error::Error;
use crate::service::Actor;
use crate::service::saml::{
    self, GroupRole, IdpMetadata, LinkPolicy, ProviderChanges, ProviderView,
};

use super::GlobalArgs;
use super::output;
use super::shapes::{Change, SpMetadata};

#[derive(Debug, Subcommand)]
pub enum SamlCommand {
    /// Register an identity provider from its metadata for one or more e-mail domains.
    ///
    /// Accounts at those domains then sign in through the IdP only (password login is off
    /// there). `saml show` prints what the IdP administrator needs from us.
    ///
    /// Example: authctl saml add okta --metadata-url https://acme.okta.com/app/x/sso/saml/metadata --domain acme.com
    Add(Box<AddArgs>),
    /// List providers: entity ID, domains, certificate expiry, last login.
    ///
    /// Example: authctl saml list -o wide
    List,
    /// Show one provider, with what the IdP admin needs (our entity ID and ACS URL).
    ///
    /// Example: authctl saml show okta
    Show {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Change a provider: new metadata (certificate rollover), domains, attributes, mapping.
    ///
    /// --domain replaces the domain list; dropping a domain asks first (or pass --yes), since
    /// its accounts sign in with a password again.
    ///
    /// Example: authctl saml update okta --metadata-file new-idp.xml
    Update(Box<UpdateArgs>),
    /// Remove a provider and its domains (users and their roles stay). Asks first.
    ///
    /// Example: authctl saml remove okta --yes
    Remove {
        #[arg(value_name = "NAME")]
        name: String,
    },
    /// Print our SP metadata for a provider, for the IdP administrator.
    ///
    /// Example: authctl saml metadata okta > authctl-sp.xml
    Metadata {
        #[arg(value_name = "NAME")]
        name: String,
    },
}

/// Where the IdP metadata comes from.
#[derive(Debug, Args)]
#[group(required = false, multiple = false)]
pub struct MetadataSource {
    /// The IdP's metadata XML file.
    #[arg(long, value_name = "FILE")]
    metadata_file: Option<PathBuf>,
    /// The IdP's metadata URL (fetched once, now).
    #[arg(long, value_name = "URL")]
    metadata_url: Option<String>,
}

impl MetadataSource {
    async fn load(&self) -> anyhow::Result<Option<IdpMetadata>> {
        let xml = match (&self.metadata_file, &self.metadata_url) {
            (Some(path), _) => std::fs::read_to_string(path).map_err(|e| {
                anyhow::anyhow!("cannot read the metadata file {}: {e}", path.display())
            })?,
            (None, Some(url)) => saml::fetch_metadata(url).await?,
            (None, None) => return Ok(None),
        };
        Ok(Some(saml::parse_metadata(&xml)?))
    }
}

/// Which assertion attributes hold what.
#[derive(Debug, Args)]
pub struct AttributeArgs {
    /// The attribute holding the e-mail address (default: email, mail, the OID or the
    /// claims URI; else the NameID).
    #[arg(long, value_name = "NAME")]
    email_attribute: Option<String>,
    /// The attribute holding the display name (default: name, displayName, cn, ...).
    #[arg(long, value_name = "NAME")]
    name_attribute: Option<String>,
    /// The multi-valued attribute holding group names (default: groups, memberOf, ...).
    #[arg(long, value_name = "NAME")]
    groups_attribute: Option<String>,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// A short name (lower-case letters, digits, - and _): it appears in the ACS URL.
    #[arg(value_name = "NAME")]
    name: String,
    #[command(flatten)]
    source: MetadataSource,
    /// An e-mail domain this provider serves (repeat for several).
    #[arg(long = "domain", value_name = "DOMAIN", required = true)]
    domains: Vec<String>,
    #[command(flatten)]
    attributes: AttributeArgs,
    /// Give members of GROUP the role ROLE (repeat for several).
    #[arg(long = "map-group", value_name = "GROUP=ROLE")]
    map_group: Vec<String>,
    /// A role every user of this provider gets.
    #[arg(long, value_name = "ROLE")]
    default_role: Option<String>,
    /// Whether an existing account with the same, verified address may be linked.
    #[arg(long, value_name = "POLICY", default_value = "none", value_parser = ["none", "verified-email"])]
    link_policy: String,
    /// Trust this IdP's multi-factor sign-in when the assertion's AuthnContextClassRef is
    /// CLASSREF (repeat for several): accounts with an authenticator app then skip its code.
    /// Without it they are asked for their code after SSO.
    #[arg(long = "trust-idp-mfa", value_name = "CLASSREF")]
    trust_idp_mfa: Vec<String>,
}

#[derive(Debug, Args)]
pub struct UpdateArgs {
    #[arg(value_name = "NAME")]
    name: String,
    /// New metadata: its certificates are accepted alongside the old ones until removed.
    #[command(flatten)]
    source: MetadataSource,
    /// Replace the domain list (repeat for several).
    #[arg(long = "domain", value_name = "DOMAIN")]
    domains: Vec<String>,
    #[command(flatten)]
    attributes: AttributeArgs,
    /// Replace the group mapping (repeat for several).
    #[arg(long = "map-group", value_name = "GROUP=ROLE")]
    map_group: Vec<String>,
    /// Remove every group mapping.
    #[arg(long, conflicts_with = "map_group")]
    clear_group_map: bool,
    #[arg(long, value_name = "ROLE")]
    default_role: Option<String>,
    /// Stop giving a default role.
    #[arg(long, conflicts_with = "default_role")]
    no_default_role: bool,
    #[arg(long, value_name = "POLICY", value_parser = ["none", "verified-email"])]
    link_policy: Option<String>,
    /// Stop accepting the signing certificate with this SHA-256 fingerprint (8+ hex digits).
    #[arg(long = "remove-certificate", value_name = "FINGERPRINT")]
    remove_certificates: Vec<String>,
    /// Replace the AuthnContextClassRef values trusted as multi-factor (repeat for several).
    #[arg(long = "trust-idp-mfa", value_name = "CLASSREF")]
    trust_idp_mfa: Vec<String>,
    /// Trust no multi-factor claim of this IdP: authenticator-app accounts give their code.
    #[arg(long, conflicts_with = "trust_idp_mfa")]
    no_trust_idp_mfa: bool,
}

fn group_roles(raw: &[String]) -> anyhow::Result<Vec<GroupRole>> {
    Ok(raw
        .iter()
        .map(|r| GroupRole::parse(r))
        .collect::<Result<Vec<_>, _>>()?)
}

fn not_found(name: &str) -> impl Fn(Error) -> anyhow::Error + '_ {
    move |e| match e {
        Error::NotFound("SAML provider") => super::not_found(format!(
            "no SAML provider is named `{name}`; `authctl saml list` shows them"
        )),
        other => other.into(),
    }
}

fn print(global: &GlobalArgs, p: &ProviderView) -> anyhow::Result<()> {
    let certificates = p
        .certificates
        .iter()
        .map(|c| {
            format!(
                "{} (expires {}, {})",
                &c.fingerprint[..16.min(c.fingerprint.len())],
                output::opt_time(c.not_after),
                c.subject
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    let mapping = p
        .group_roles
        .iter()
        .map(|m| format!("{} -> {}", m.group, m.role))
        .collect::<Vec<_>>()
        .join(", ");
    let or_default = |v: &Option<String>| v.clone().unwrap_or_else(|| "(default)".into());
    global.printer().show(
        p,
        vec![
            ("name", p.name.clone()),
            ("entity id", p.entity_id.clone()),
            ("sso url", p.sso_url.clone()),
            ("domains", p.domains.join(", ")),
            ("certificates", certificates),
            (
                "removed certificates",
                if p.removed_certificates.is_empty() {
                    "-".into()
                } else {
                    p.removed_certificates.join("\n")
                },
            ),
            ("email attribute", or_default(&p.email_attribute)),
            ("name attribute", or_default(&p.name_attribute)),
            ("groups attribute", or_default(&p.groups_attribute)),
            (
                "group roles",
                if mapping.is_empty() {
                    "-".into()
                } else {
                    mapping
                },
            ),
            (
                "default role",
                p.default_role.clone().unwrap_or_else(|| "-".into()),
            ),
            ("link policy", p.link_policy.clone()),
            (
                "trusted mfa",
                if p.trusted_mfa_contexts.is_empty() {
                    "-".into()
                } else {
                    p.trusted_mfa_contexts.join(", ")
                },
            ),
            ("our entity id", p.sp_entity_id.clone()),
            ("our acs url", p.acs_url.clone()),
            ("last login", output::opt_time(p.last_login_at)),
        ],
    )
}

impl SamlCommand {
    pub async fn run(self, ctx: &AppContext, global: &GlobalArgs) -> anyhow::Result<()> {
        let actor = Actor::cli();
        let now = ctx.now();
        match self {
            Self::Add(args) => {
                let metadata = args.source.load().await?.ok_or_else(|| {
                    anyhow::anyhow!("give the IdP metadata with --metadata-file or --metadata-url")
                })?;
                let new = saml::NewProvider {
                    name: args.name,
                    metadata,
                    domains: args.domains,
                    email_attribute: args.attributes.email_attribute,
                    name_attribute: args.attributes.name_attribute,
                    groups_attribute: args.attributes.groups_attribute,
                    group_roles: group_roles(&args.map_group)?,
                    default_role: args.default_role,
                    link_policy: LinkPolicy::parse(&args.link_policy)?,
                    mfa_contexts: args.trust_idp_mfa,
                };
                let view = saml::add(ctx, &actor, new, now).await?;
                if !global.printer().is_json() {
                    eprintln!("Registered the SAML provider `{}`.", view.name);
                }
                print(global, &view)
            }
            Self::List => global.printer().list(&saml::list(ctx).await?),
            Self::Show { name } => {
                let view = saml::show(ctx, &name).await.map_err(not_found(&name))?;
                print(global, &view)
            }
            Self::Update(args) => {
                let name = args.name.clone();
                if !args.domains.is_empty() {
                    let current = saml::show(ctx, &name).await.map_err(not_found(&name))?;
                    let kept: Vec<String> = args
                        .domains
                        .iter()
                        .map(|d| d.trim().to_lowercase())
                        .collect();
                    let dropped: Vec<&str> = current
                        .domains
                        .iter()
                        .filter(|d| !kept.contains(d))
                        .map(String::as_str)
                        .collect();
                    if !dropped.is_empty() {
                        output::confirm(
                            &format!(
                                "Stop using `{name}` for {}? Accounts there sign in with a password again.",
                                dropped.join(", ")
                            ),
                            global.yes,
                        )?;
                    }
                }
                let changes = ProviderChanges {
                    metadata: args.source.load().await?,
                    domains: (!args.domains.is_empty()).then_some(args.domains),
                    email_attribute: args.attributes.email_attribute.map(Some),
                    name_attribute: args.attributes.name_attribute.map(Some),
                    groups_attribute: args.attributes.groups_attribute.map(Some),
                    group_roles: if args.clear_group_map {
                        Some(Vec::new())
                    } else if args.map_group.is_empty() {
                        None
                    } else {
                        Some(group_roles(&args.map_group)?)
                    },
                    default_role: if args.no_default_role {
                        Some(None)
                    } else {
                        args.default_role.map(Some)
                    },
                    link_policy: args
                        .link_policy
                        .as_deref()
                        .map(LinkPolicy::parse)
                        .transpose()?,
                    mfa_contexts: if args.no_trust_idp_mfa {
                        Some(Vec::new())
                    } else {
                        (!args.trust_idp_mfa.is_empty()).then_some(args.trust_idp_mfa)
                    },
                    remove_certificates: args.remove_certificates,
                };
                let view = saml::update(ctx, &actor, &name, changes, now)
                    .await
                    .map_err(not_found(&name))?;
                if !global.printer().is_json() {
                    eprintln!("Updated the SAML provider `{name}`.");
                }
                print(global, &view)
            }
            Self::Remove { name } => {
                saml::show(ctx, &name).await.map_err(not_found(&name))?;
                output::confirm(
                    &format!(
                        "Remove the SAML provider `{name}` and its domains? Its users can no longer sign in through it."
                    ),
                    global.yes,
                )?;
                saml::remove(ctx, &actor, &name, now)
                    .await
                    .map_err(not_found(&name))?;
                global.printer().changed(
                    &Change::new("saml.remove", "provider", vec![name.clone()]),
                    &format!("Removed the SAML provider `{name}`."),
                )
            }
            Self::Metadata { name } => {
                let xml = saml::sp_metadata(ctx, &name)
                    .await
                    .map_err(not_found(&name))?;
                if global.printer().is_json() {
                    let view = saml::show(ctx, &name).await.map_err(not_found(&name))?;
                    output::json(&SpMetadata {
                        provider: view.name,
                        entity_id: view.sp_entity_id,
                        acs_url: view.acs_url,
                        xml,
                    })
                } else {
                    output::say(xml.trim_end())
                }
            }
        }
    }
}
