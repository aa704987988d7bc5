//! Every command's `-o json` answer has exactly the keys its shape has in docs/cli-json.md: a
//! shape cannot change without its document.
use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::helpers::Env;
use crate::idp::Idp;
use crate::sessions::{context, user_with_sessions};

const DOC: &str = include_str!("../../docs/cli-json.md");

/// The documented examples: `<!-- shape: Name -->` followed by a ```json block.
fn documented_shapes() -> BTreeMap<String, Value> {
    let mut shapes = BTreeMap::new();
    for part in DOC.split("<!-- shape: ").skip(1) {
        let name = part.split(" -->").next().expect("shape name").to_owned();
        let body = part
            .split("```json\n")
            .nth(1)
            .and_then(|b| b.split("\n```").next())
            .expect("a json block after the marker");
        let value: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("the {name} example is not JSON: {e}"));
        shapes.insert(name, value);
    }
    shapes
}

/// The documented `details` keys per `Change` action (the "`details` by command" paragraph).
fn documented_details() -> BTreeMap<String, BTreeSet<String>> {
    let paragraph = DOC
        .split("`details` by command:")
        .nth(1)
        .and_then(|p| p.split("\n\n").next())
        .expect("the details paragraph");
    let mut out = BTreeMap::new();
    for entry in paragraph.replace('\n', " ").split(';') {
        let ticks: Vec<&str> = entry.split('`').skip(1).step_by(2).collect();
        let keys = ticks
            .iter()
            .find(|t| t.starts_with('{'))
            .expect("a `{...}` in each entry");
        let keys = top_level_keys(keys);
        for action in ticks
            .iter()
            .filter(|t| t.contains('.') && !t.starts_with('{'))
        {
            out.insert((*action).to_owned(), keys.clone());
        }
    }
    out
}

/// `{a, b: {x: y}, c}` → {a, b, c}.
fn top_level_keys(spec: &str) -> BTreeSet<String> {
    let inner = &spec[1..spec.len() - 1];
    let mut depth = 0;
    let mut flat = String::new();
    for c in inner.chars() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ if depth == 0 => flat.push(c),
            _ => {}
        }
    }
    flat.split(',')
        .map(|k| k.split(':').next().unwrap_or_default().trim().to_owned())
        .filter(|k| !k.is_empty())
        .collect()
}

/// Keys and nested keys of `value` as paths; free-form objects (`detail`, `details`) and empty
/// arrays stop the descent.
fn paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    match value {
        Value::Object(map) => {
            for (key, v) in map {
                let path = format!("{prefix}{key}");
                out.insert(path.clone());
                if key != "detail" && key != "details" {
                    paths(v, &format!("{path}."), out);
                }
            }
        }
        Value::Array(items) => {
            if let Some(first) = items.first() {
                paths(first, &format!("{prefix}[]."), out);
            }
        }
        _ => {}
    }
}

fn key_paths(value: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    paths(value, "", &mut out);
    out
}

/// Runs `authctl ARGS -o json` with extra environment, and parses stdout.
fn json(env: &Env, args: &[&str], vars: &[(&str, &str)]) -> Value {
    let mut cmd = env.std_cmd();
    cmd.args(args).args(["-o", "json"]);
    for (k, v) in vars {
        cmd.env(k, v);
    }
    let out = cmd.output().expect("run");
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{args:?}: not JSON: {e}"))
}

struct Checker {
    shapes: BTreeMap<String, Value>,
    details: BTreeMap<String, BTreeSet<String>>,
    seen_shapes: BTreeSet<String>,
    seen_actions: BTreeSet<String>,
}

impl Checker {
    /// The answer is `shape` (or, with `list`, a non-empty array of it).
    fn check(&mut self, args: &[&str], answer: &Value, shape: &str, list: bool) {
        let item = if list {
            let items = answer
                .as_array()
                .unwrap_or_else(|| panic!("{args:?}: an array"));
            assert!(
                !items.is_empty(),
                "{args:?}: seed a row so its keys can be compared"
            );
            &items[0]
        } else {
            answer
        };
        let documented = self
            .shapes
            .get(shape)
            .unwrap_or_else(|| panic!("docs/cli-json.md has no {shape} shape"));
        let (want, got) = (key_paths(documented), key_paths(item));
        // Nested arrays left empty by the seed data are compared only where both have items.
        let comparable = |p: &String, other: &BTreeSet<String>| {
            !p.contains("[].")
                || other
                    .iter()
                    .any(|o| o.contains("[].") && o.split("[].").next() == p.split("[].").next())
        };
        let missing: Vec<&String> = want
            .difference(&got)
            .filter(|p| comparable(p, &got))
            .collect();
        let extra: Vec<&String> = got
            .difference(&want)
            .filter(|p| comparable(p, &want))
            .collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{args:?} answers a {shape} that differs from docs/cli-json.md: missing {missing:?}, undocumented {extra:?}"
        );
        self.seen_shapes.insert(shape.to_owned());
        if shape == "Change" {
            let action = item["action"].as_str().expect("action").to_owned();
            let want = self
                .details
                .get(&action)
                .unwrap_or_else(|| panic!("docs/cli-json.md lists no details for {action}"));
            let got: BTreeSet<String> = item["details"]
                .as_object()
                .expect("details is an object")
                .keys()
                .cloned()
                .collect();
            assert_eq!(&got, want, "{args:?}: the details of {action}");
            self.seen_actions.insert(action);
        }
    }

    fn run(&mut self, env: &Env, args: &[&str], shape: &str, list: bool) -> Value {
        self.run_with(env, args, &[], shape, list)
    }

    fn run_with(
        &mut self,
        env: &Env,
        args: &[&str],
        vars: &[(&str, &str)],
        shape: &str,
        list: bool,
    ) -> Value {
        let answer = json(env, args, vars);
        self.check(args, &answer, shape, list);
        answer
    }
}

#[tokio::test]
async fn every_json_answer_matches_its_documented_shape() {
    let env = Env::migrated();
    let mut c = Checker {
        shapes: documented_shapes(),
        details: documented_details(),
        seen_shapes: BTreeSet::new(),
        seen_actions: BTreeSet::new(),
    };
    user_with_sessions(
        &env,
        "shape@example.com",
        &["Chrome/120 macOS", "Safari/17 iPhone"],
    )
    .await;
    let ctx = context(&env).await;
    let user = authctl::service::users::get_by_email(&ctx, "shape@example.com")
        .await
        .expect("user");
    let (key, _secret) = authctl::service::api_keys::create(
        &ctx,
        &user.id,
        "deploy",
        Some("7d"),
        &authctl::service::ClientInfo::default(),
        ctx.now(),
    )
    .await
    .expect("key");
    let passkey = crate::passkeys::registered_passkey(&ctx, &user).await;
    ctx.db.close_by_ref().await.expect("close");

    // Accounts.
    c.run(
        &env,
        &["users", "create", "new@example.com", "--no-password"],
        "User",
        false,
    );
    c.run(&env, &["users", "list"], "User", true);
    c.run(&env, &["users", "show", "shape@example.com"], "User", false);
    c.run(&env, &["users", "show", &user.id], "User", false);
    c.run(&env, &["users", "verify", "new@example.com"], "User", false);
    c.run(
        &env,
        &["users", "disable", "new@example.com", "--yes"],
        "User",
        false,
    );
    c.run(&env, &["users", "enable", "new@example.com"], "User", false);
    c.run(
        &env,
        &["users", "history", "shape@example.com"],
        "LoginAttempt",
        true,
    );

    // Sessions and keys.
    let sessions = c.run(
        &env,
        &["sessions", "list", "--user", "shape@example.com"],
        "Session",
        true,
    );
    let first = sessions[0]["id"].as_str().expect("id").to_owned();
    let one = c.run(&env, &["sessions", "revoke", &first], "Change", false);
    assert_eq!(
        (one["changed"].as_u64(), one["items"][0].as_str()),
        (Some(1), Some(first.as_str()))
    );
    let all = c.run(
        &env,
        &[
            "sessions",
            "revoke",
            "--user",
            "shape@example.com",
            "--all",
            "--yes",
        ],
        "Change",
        false,
    );
    assert_eq!(all["changed"], 1);
    c.run(&env, &["sessions", "prune"], "Change", false);
    c.run(
        &env,
        &["apikeys", "list", "--user", "shape@example.com"],
        "ApiKey",
        true,
    );
    c.run(&env, &["apikeys", "revoke", &key.id], "Change", false);
    c.run(
        &env,
        &["passkeys", "list", "--user", "shape@example.com"],
        "Passkey",
        true,
    );
    c.run(
        &env,
        &["passkeys", "remove", &passkey.id, "--yes"],
        "Change",
        false,
    );

    // Verification and mail.
    c.run(
        &env,
        &["users", "create", "unverified@example.com", "--no-password"],
        "User",
        false,
    );
    c.run_with(
        &env,
        &["verification", "resend", "unverified@example.com"],
        &[("AUTHCTL_VERIFICATION__RESEND_INTERVAL", "0s")],
        "Change",
        false,
    );
    c.run(&env, &["mail", "deliver"], "Change", false);
    c.run(&env, &["mail", "status"], "MailBacklog", false);

    // Deletion.
    c.run(
        &env,
        &["deletion", "schedule", "new@example.com", "--yes"],
        "Deletion",
        false,
    );
    c.run(&env, &["deletion", "list"], "Deletion", true);
    c.run(
        &env,
        &["deletion", "cancel", "new@example.com"],
        "Change",
        false,
    );
    c.run(
        &env,
        &[
            "deletion",
            "schedule",
            "new@example.com",
            "--grace",
            "0s",
            "--yes",
        ],
        "Deletion",
        false,
    );
    let dry = c.run(&env, &["deletion", "sweep", "--dry-run"], "Change", false);
    let real = c.run(&env, &["deletion", "sweep"], "Change", false);
    assert_eq!(dry["dryRun"], true);
    assert_eq!(real["dryRun"], false);
    assert_eq!(
        dry["changed"], real["changed"],
        "a dry run predicts the sweep"
    );
    assert_eq!(dry["details"], real["details"], "per table, too");
    c.run(&env, &["deletion", "events"], "DeletionEvent", true);
    c.run(&env, &["audit", "list"], "AuditEvent", true);

    // Migrations.
    c.run(&env, &["migrate", "status"], "Migration", true);
    c.run(&env, &["migrate", "up"], "Migration", true);

    c.run(&env, &["status"], "Status", false);

    // SAML.
    let idp = Idp::new("https://idp.shapes.test/metadata");
    let metadata = env.dir.path().join("idp.xml");
    std::fs::write(&metadata, idp.metadata()).expect("metadata");
    let metadata = metadata.to_str().expect("path");
    c.run(
        &env,
        &[
            "saml",
            "add",
            "shapes",
            "--metadata-file",
            metadata,
            "--domain",
            "shapes.test",
            "--map-group",
            "admins=admin",
        ],
        "Provider",
        false,
    );
    c.run(&env, &["saml", "list"], "Provider", true);
    c.run(&env, &["saml", "show", "shapes"], "Provider", false);
    c.run(
        &env,
        &["saml", "update", "shapes", "--default-role", "employee"],
        "Provider",
        false,
    );
    let sp = c.run(&env, &["saml", "metadata", "shapes"], "SpMetadata", false);
    assert!(
        sp["xml"]
            .as_str()
            .expect("xml")
            .contains("EntityDescriptor")
    );
    // SCIM tokens of the provider.
    let token_file = env.dir.path().join("shapes.token");
    let created = c.run(
        &env,
        &[
            "scim",
            "tokens",
            "create",
            "--provider",
            "shapes",
            "--token-file",
            token_file.to_str().expect("path"),
        ],
        "ScimTokenCreated",
        false,
    );
    c.run(&env, &["scim", "tokens", "list"], "ScimToken", true);
    let token_id = created["token"]["id"].as_str().expect("id").to_owned();
    c.run(
        &env,
        &["scim", "tokens", "revoke", &token_id],
        "Change",
        false,
    );
    c.run(
        &env,
        &["saml", "remove", "shapes", "--yes"],
        "Change",
        false,
    );

    let documented: BTreeSet<String> = c.shapes.keys().cloned().collect();
    assert_eq!(
        c.seen_shapes, documented,
        "every documented shape is checked"
    );
    let actions: BTreeSet<String> = c.details.keys().cloned().collect();
    assert_eq!(
        c.seen_actions, actions,
        "every documented action is checked"
    );
}
