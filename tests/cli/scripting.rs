//! What scripts rely on: stdout holds the answer alone, a closed pipe ends a command quietly,
//! exit codes tell "not found" from other failures, stray environment variables only warn,
//! configuration errors name the key and where it came from, repeated changes write nothing.
use std::io::Write;
use std::process::Stdio;

use predicates::prelude::*;

use crate::helpers::Env;

fn stderr_of(output: &std::process::Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[test]
fn a_closed_pipe_ends_the_command_quietly() {
    let env = Env::migrated();
    for args in [&["users", "list"][..], &["completions", "bash"][..]] {
        let mut child = env
            .std_cmd()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start");
        // The reader goes away before the command writes (as `| head -1` does after its line).
        drop(child.stdout.take());
        let output = child.wait_with_output().expect("wait");
        let stderr = stderr_of(&output);
        assert!(
            output.status.success(),
            "{args:?}: {:?} {stderr}",
            output.status
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn with_the_log_transport_stdout_is_json_and_no_mail_is_printed() {
    let env = Env::migrated();
    let run = |args: &[&str]| {
        env.cmd()
            .env("AUTHCTL_MAIL__TRANSPORT", "log")
            .args(args)
            .args(["-o", "json", "--yes"])
            .output()
            .expect("run")
    };
    for args in [
        &["users", "create", "log@example.com", "--no-password"][..],
        &["deletion", "schedule", "log@example.com"][..],
        &["deletion", "cancel", "log@example.com"][..],
    ] {
        let output = run(args);
        let stderr = stderr_of(&output);
        assert!(output.status.success(), "{args:?}: {stderr}");
        serde_json::from_slice::<serde_json::Value>(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?}: stdout is not JSON ({e})"));
        let stdout = String::from_utf8_lossy(&output.stdout);
        for text in [&*stdout, &*stderr] {
            assert!(!text.contains("token="), "{args:?} printed a link: {text}");
            assert!(
                !text.contains("----- mail"),
                "{args:?} printed a mail: {text}"
            );
        }
    }
    // The mails wait for `serve`, which prints them to its own log.
    assert_eq!(env.json(&["mail", "status"])["pending"], 3);
    env.cmd()
        .env("AUTHCTL_MAIL__TRANSPORT", "log")
        .args(["mail", "deliver"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("authctl serve"));
}

#[test]
fn users_create_mails_the_link_unless_verified() {
    let env = Env::migrated();
    env.cmd()
        .args([
            "users",
            "create",
            "sure@example.com",
            "--no-password",
            "--verified",
        ])
        .assert()
        .success();
    assert_eq!(env.json(&["mail", "status"])["pending"], 0);
    assert!(env.links().is_empty(), "{:?}", env.links());
    env.cmd()
        .args(["users", "create", "new@example.com", "--no-password"])
        .assert()
        .success();
    let links = env.links();
    assert_eq!(links.len(), 1, "{links:?}");
    assert!(links[0].contains("/verify-email?token="), "{links:?}");
}

#[test]
fn users_show_takes_an_id_and_not_found_has_its_own_exit_code() {
    let env = Env::migrated();
    let created = env.json(&["users", "create", "who@example.com", "--no-password"]);
    let id = created["id"].as_str().expect("id");
    assert_eq!(env.json(&["users", "show", id])["email"], "who@example.com");

    for args in [
        &["users", "show", "ghost@example.com"][..],
        &["users", "show", "0190c0de-0000-7000-8000-000000000000"][..],
        &["sessions", "revoke", "no-such-session"][..],
        &["apikeys", "revoke", "no-such-key"][..],
        &["passkeys", "remove", "no-such-passkey", "--yes"][..],
        &["passkeys", "list", "--user", "ghost@example.com"][..],
        &["saml", "show", "nobody"][..],
    ] {
        let output = env.cmd().args(args).output().expect("run");
        assert_eq!(
            output.status.code(),
            Some(3),
            "{args:?}: {}",
            stderr_of(&output)
        );
        assert!(stderr_of(&output).contains("no "), "{args:?}");
    }
    // A usage error is 2, another failure 1.
    env.cmd().args(["users", "shw"]).assert().code(2);
    env.cmd()
        .args(["users", "create", "who@example.com", "--no-password"])
        .assert()
        .code(1);
}

#[test]
fn disabling_or_enabling_twice_changes_and_writes_nothing_the_second_time() {
    let env = Env::migrated();
    env.cmd()
        .args([
            "users",
            "create",
            "twice@example.com",
            "--no-password",
            "--verified",
        ])
        .assert()
        .success();
    for _ in 0..2 {
        env.cmd()
            .args(["users", "disable", "twice@example.com", "--yes"])
            .assert()
            .success();
    }
    // Already disabled: no confirmation is needed, and nothing changes.
    env.cmd()
        .args(["users", "disable", "twice@example.com"])
        .assert()
        .success()
        .stderr(predicate::str::contains("already disabled"));
    for _ in 0..2 {
        env.cmd()
            .args(["users", "enable", "twice@example.com"])
            .assert()
            .success();
    }
    let audit = env.json(&["audit", "list", "--user", "twice@example.com"]);
    let count = |action: &str| {
        audit
            .as_array()
            .expect("list")
            .iter()
            .filter(|e| e["action"] == action)
            .count()
    };
    assert_eq!(
        (count("user_disabled"), count("user_enabled")),
        (1, 1),
        "{audit}"
    );
}

#[test]
fn a_stray_environment_variable_warns_and_a_stray_key_in_a_file_fails() {
    let env = Env::migrated();
    env.cmd()
        .env("AUTHCTL_NOT_A_KEY", "1")
        .env("AUTHCTL_MAIL__NOR_THIS", "1")
        .args(["users", "list"])
        .assert()
        .success()
        .stderr(
            predicate::str::contains("AUTHCTL_NOT_A_KEY")
                .and(predicate::str::contains("AUTHCTL_MAIL__NOR_THIS")),
        );

    // Every bad variable at once, each with its key; no Rust in sight.
    let output = env
        .cmd()
        .args(["users", "list"])
        .env("AUTHCTL_BIND", "not-an-address")
        .env("AUTHCTL_PASSWORD__MIN_LENGTH", "short")
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(1));
    let stderr = stderr_of(&output);
    for needle in [
        "AUTHCTL_BIND",
        "AUTHCTL_PASSWORD__MIN_LENGTH",
        "a whole number",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from: {stderr}");
    }
    for banned in [
        "invalid configuration: invalid configuration",
        ".rs:",
        "u32",
        "usize",
    ] {
        assert!(!stderr.contains(banned), "{banned} in: {stderr}");
    }
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    // A key the file should not have: named, with the file.
    let path = env.dir.path().join("authctl.toml");
    let mut file = std::fs::File::create(&path).expect("create");
    writeln!(file, "bogus = 1").expect("write");
    env.cmd()
        .args(["--config", path.to_str().expect("utf-8"), "users", "list"])
        .assert()
        .code(1)
        .stderr(
            predicate::str::contains("unknown key `bogus`")
                .and(predicate::str::contains(path.to_str().expect("utf-8"))),
        );
}
