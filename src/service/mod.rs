//! The one domain layer: every operation exists once here, called by `http/` and `cli/` alike.
use std::net::IpAddr;

pub mod account;
pub mod api_keys;
pub mod audit;
pub mod deletion;
pub mod devices;
pub mod fingerprint;
pub mod history;
pub mod identities;
pub mod janitor;
pub mod login;
pub mod mailed_tokens;
pub mod outbox;
pub mod roles;
pub mod saml;
pub mod sessions;
pub mod signup;
pub mod step_up;
pub mod throttle;
pub mod two_factor;
pub mod users;
pub mod verification;

pub use audit::Actor;

/// Where a request came from: the client IP (already resolved through trusted proxies), the user
/// agent and the hash of the browser fingerprint the client sent, if any.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub fingerprint: Option<String>,
}

impl ClientInfo {
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }
}
