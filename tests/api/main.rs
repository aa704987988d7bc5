//! The HTTP tests: one binary, the real app per test on port 0, each on SQLite and on PostgreSQL
//! when `AUTHCTL_TEST_POSTGRES_URL` is set.
mod helpers;
#[path = "../saml/idp.rs"]
mod idp;

mod account;
mod api_keys;
mod deletion;
mod device_sessions;
mod hardening;
mod http;
mod login;
mod magic_link;
mod pages;
mod passkeys;
mod saml;
mod scim;
mod sessions;
mod signup;
mod smtp;
mod step_up;
mod two_factor;
mod verification;
