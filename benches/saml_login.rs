//! The cost of one SSO login at the ACS: decoding, the pre-filter with its libxml2 agreement
//! check, xmlsec signature verification, the checks, the replay cache, JIT provisioning and the
//! session, on a SQLite file. Responses are signed beforehand by the test IdP (signxml), so they
//! must be used within samael's 90-second window: the run is short on purpose.
//!
//! `cargo bench --bench saml_login` (figures in README.md; `AUTHCTL_BENCH_LOGINS` sets how many).
use std::time::{Duration, Instant};

use authctl::service::saml::{self, GroupRole, LinkPolicy, NewProvider, prefilter};
use authctl::service::{Actor, ClientInfo};
use base64::Engine;
use serde_json::json;

#[path = "support.rs"]
mod support;

#[path = "../tests/saml/idp.rs"]
mod idp;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let index = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[index]
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    println!(
        "{what}: n={} median={:?} p95={:?} max={:?}",
        times.len(),
        percentile(&times, 0.5),
        percentile(&times, 0.95),
        times[times.len() - 1]
    );
}

fn main() {
    let logins: usize = std::env::var("AUTHCTL_BENCH_LOGINS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let idp = idp::Idp::new("https://idp.acme.test");

    let ctx = runtime.block_on(async {
        let ctx = support::context(support::sqlite_url(dir.path()), dir.path(), |c| {
            c.saml.logins_per_ip_per_hour = 0
        })
        .await;
        let provider = NewProvider {
            name: "acme".into(),
            metadata: saml::parse_metadata(&idp.metadata()).expect("metadata"),
            domains: vec!["acme.test".into()],
            email_attribute: None,
            name_attribute: None,
            groups_attribute: None,
            group_roles: vec![GroupRole {
                group: "engineering".into(),
                role: "developer".into(),
            }],
            default_role: None,
            link_policy: LinkPolicy::None,
            mfa_contexts: Vec::new(),
        };
        saml::add(&ctx, &Actor::cli(), provider, ctx.now())
            .await
            .expect("register");
        ctx
    });

    let acs = format!("{}/saml/acme/acs", ctx.config.public_base());
    let audience = format!("{}/saml/metadata", ctx.config.public_base());
    // Requests from one browser, each answered by a signed Response (one user per login, so
    // every login provisions an account).
    let client = ClientInfo::default();
    let mut binding = None::<String>;
    let mut responses = Vec::with_capacity(logins);
    for n in 0..logins {
        let started = runtime
            .block_on(saml::start(
                &ctx,
                None,
                Some("acme"),
                None,
                binding.as_deref(),
                &client,
                ctx.now(),
            ))
            .expect("start");
        binding = Some(started.binding.clone());
        let (request, _) = idp::authn_request(started.redirect.as_str());
        let who = format!("user{n}@acme.test");
        responses.push(idp.sign(json!({
            "destination": acs,
            "recipient": acs,
            "audience": audience,
            "in_response_to": idp::attribute(&request, "ID"),
            "name_id": who,
            "attributes": { "email": [who], "name": [format!("User {n}")], "groups": ["engineering"] },
        })));
    }

    let mut prefilter_times = Vec::with_capacity(logins);
    for response in &responses {
        let xml = String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(response)
                .expect("base64"),
        )
        .expect("utf-8");
        let started = Instant::now();
        prefilter::check(&xml).expect("a clean response");
        prefilter_times.push(started.elapsed());
    }
    println!("response size: {} bytes", responses[0].len() * 3 / 4);
    report(
        "pre-filter (quick-xml scan + strict libxml2 parse)",
        prefilter_times,
    );

    let binding = binding.expect("a binding");
    let mut login_times = Vec::with_capacity(logins);
    for response in &responses {
        let started = Instant::now();
        runtime
            .block_on(saml::complete(
                &ctx,
                "acme",
                response,
                Some(&binding),
                &client,
                ctx.now(),
            ))
            .expect("login");
        login_times.push(started.elapsed());
    }
    report(
        "whole ACS login (verify, JIT user, roles, session)",
        login_times,
    );
}
