use predicates::prelude::*;

use crate::helpers::{Env, operator};

#[test]
fn create_list_show_verify_disable_enable() {
    let env = Env::migrated();
    env.cmd()
        .args([
            "users",
            "create",
            "Ops@Example.com",
            "--name",
            "Ops",
            "--password-stdin",
        ])
        .write_stdin("pass12345\n")
        .assert()
        .success()
        .stdout(predicate::str::contains("ops@example.com"));

    let list = env.json(&["users", "list"]);
    assert_eq!(list.as_array().expect("list").len(), 1);
    assert_eq!(list[0]["email"], "ops@example.com");
    assert_eq!(list[0]["emailVerified"], false);
    assert_eq!(
        env.json(&["users", "list", "--unverified"])
            .as_array()
            .expect("list")
            .len(),
        1
    );

    let shown = env.json(&["users", "verify", "ops@example.com"]);
    assert_eq!(shown["emailVerified"], true);
    assert!(
        env.json(&["users", "list", "--unverified"])
            .as_array()
            .expect("list")
            .is_empty()
    );

    let disabled = env.json(&["users", "disable", "ops@example.com", "--yes"]);
    assert_eq!(disabled["disabled"], true);
    let enabled = env.json(&["users", "enable", "ops@example.com"]);
    assert_eq!(enabled["disabled"], false);

    // The table is for people.
    env.cmd()
        .args(["users", "list"])
        .assert()
        .success()
        .stdout(predicate::str::contains("ops@example.com"));
    env.cmd()
        .args(["users", "show", "OPS@example.com"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Ops"));

    // Every action is audited with the operator as actor.
    let audit = env.json(&["audit", "list", "--user", "ops@example.com"]);
    let actions: Vec<&str> = audit
        .as_array()
        .expect("list")
        .iter()
        .map(|e| e["action"].as_str().expect("action"))
        .collect();
    for action in [
        "user_created",
        "email_verified",
        "user_disabled",
        "user_enabled",
    ] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    assert!(
        audit
            .as_array()
            .expect("list")
            .iter()
            .all(|e| e["actor"] == operator())
    );
}

#[test]
fn destructive_commands_refuse_without_yes_when_not_on_a_terminal() {
    let env = Env::migrated();
    env.cmd()
        .args(["users", "create", "bob@example.com", "--no-password"])
        .assert()
        .success();
    env.cmd()
        .args(["users", "disable", "bob@example.com"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--yes"));
    assert_eq!(
        env.json(&["users", "show", "bob@example.com"])["disabled"],
        false,
        "nothing changed"
    );
}

#[test]
fn errors_are_one_actionable_sentence() {
    let env = Env::migrated();
    env.cmd()
        .args(["users", "show", "ghost@example.com"])
        .assert()
        .failure()
        .stderr(predicate::str::contains(
            "no account has the address ghost@example.com",
        ));
    env.cmd()
        .args(["users", "create", "dup@example.com", "--no-password"])
        .assert()
        .success();
    env.cmd()
        .args(["users", "create", "DUP@example.com", "--no-password"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already exists"));
    env.cmd()
        .args(["users", "create", "weak@example.com", "--password-stdin"])
        .write_stdin("password\n")
        .assert()
        .failure()
        .stderr(predicate::str::contains("commonly used"));
    env.cmd()
        .args(["users", "create", "nopass@example.com"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--password-stdin"));
    env.cmd()
        .args(["audit", "list", "--since", "yesterday-ish"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--since"));
}

#[test]
fn verification_resend_mails_a_new_link_and_refuses_verified_accounts() {
    let env = Env::migrated();
    env.cmd()
        .args(["users", "create", "new@example.com", "--no-password"])
        .assert()
        .success();
    // Created without --verified: the address was mailed its link.
    let links = env.links();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(links[0].contains("/verify-email?token="));

    let output = env
        .cmd()
        .env("AUTHCTL_VERIFICATION__RESEND_INTERVAL", "0s")
        .args(["verification", "resend", "new@example.com", "-o", "json"])
        .output()
        .expect("run");
    assert!(output.status.success());
    let sent: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(sent["action"], "verification.resend");
    let links = env.links();
    assert_eq!(links.len(), 2);
    assert!(links.iter().all(|l| l.contains("/verify-email?token=")));

    env.cmd()
        .args(["verification", "resend", "new@example.com"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("less than 1 minute ago"));

    env.cmd()
        .args(["users", "verify", "new@example.com"])
        .assert()
        .success();
    env.cmd()
        .args(["verification", "resend", "new@example.com"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("already verified"));
}
