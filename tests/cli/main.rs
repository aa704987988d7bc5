//! The CLI tests: the built `authctl` binary on a temporary SQLite database.
mod arguments;
mod browser;
mod completions;
mod deletion;
mod helpers;
#[path = "../saml/idp.rs"]
mod idp;
mod json_shapes;
mod migrate;
mod passkeys;
mod saml;
mod schedule;
mod scim;
mod scripting;
mod serve;
mod sessions;
mod state;
mod tables;
mod users;
