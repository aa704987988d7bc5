//! The one domain layer: every operation exists once here, called by `http/` and `cli/` alike.
use std::net::IpAddr;

pub mod account;
pub mod api_keys;
pub mod audit;
pub mod ceremonies;
pub mod deletion;
pub mod devices;
pub mod fingerprint;
pub mod history;
pub mod identities;
pub mod janitor;
pub mod login;
pub mod magic_link;
pub mod mailed_tokens;
pub mod outbox;
pub mod passkeys;
pub mod roles;
pub mod saml;
pub mod scim;
pub mod service_state;
pub mod sessions;
pub mod signup;
pub mod step_up;
pub mod throttle;
pub mod two_factor;
pub mod users;
pub mod verification;
pub mod webauthn;

pub use audit::Actor;

/// Where a request came from: the client IP (already resolved through trusted proxies), the user
/// agent and the hash of the browser fingerprint the client sent, if any.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub fingerprint: Option<String>,
}

/// One page of a listing: at most `limit` rows (all when `None`), starting after the row whose
/// id is `after`, in the listing's own order (ids are time-ordered).
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub limit: Option<u64>,
    pub after: Option<String>,
}

/// The rows of a page, and the id to continue after when more rows follow.
#[derive(Debug, Clone)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub next: Option<String>,
}

impl Page {
    /// How many rows to fetch: one more than the page, to know whether another follows.
    pub fn fetch(&self) -> Option<u64> {
        self.limit.map(|l| l.saturating_add(1))
    }

    /// Pages a short list already in memory (one account's sessions or keys): newest first by
    /// id, which stays put while the rows are used.
    pub fn of_newest<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> &str) -> Paged<T> {
        rows.sort_by(|a, b| id(b).cmp(id(a)));
        if let Some(after) = &self.after {
            rows.retain(|r| id(r) < after.as_str());
        }
        self.cut(rows, |r| id(r).to_owned())
    }

    /// Cuts `rows` (fetched with `fetch()`) to the page and names the next page's start.
    pub fn cut<T>(&self, mut rows: Vec<T>, id: impl Fn(&T) -> String) -> Paged<T> {
        let next = match self.limit {
            Some(limit) if rows.len() as u64 > limit => {
                rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
                rows.last().map(&id)
            }
            _ => None,
        };
        Paged { items: rows, next }
    }
}

impl ClientInfo {
    pub fn ip_string(&self) -> Option<String> {
        self.ip.map(|ip| ip.to_string())
    }
}
