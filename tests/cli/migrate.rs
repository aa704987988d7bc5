use predicates::prelude::*;

use crate::helpers::Env;

#[test]
fn migrate_up_applies_everything_and_status_shows_it() {
    let env = Env::new();
    // `migrate status` on no database names the file, and creates nothing.
    let out = env.cmd().args(["migrate", "status"]).output().expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no database at"));
    assert!(!env.dir.path().join("authctl.db").exists());

    // On an empty file every migration is pending.
    std::fs::write(env.dir.path().join("authctl.db"), b"").expect("empty file");
    let before = env.json(&["migrate", "status"]);
    assert!(
        before
            .as_array()
            .expect("list")
            .iter()
            .all(|m| m["applied"] == false)
    );

    env.cmd()
        .args(["migrate", "up"])
        .assert()
        .success()
        .stderr(predicate::str::contains("applied"));

    let after = env.json(&["migrate", "status"]);
    let list = after.as_array().expect("list");
    assert!(!list.is_empty());
    assert!(list.iter().all(|m| m["applied"] == true), "{after}");
    // Running it again changes nothing and succeeds.
    env.cmd()
        .args(["migrate", "up"])
        .assert()
        .success()
        .stderr(predicate::str::contains("0 migration(s) applied"));
}

#[test]
fn commands_on_an_unmigrated_database_say_what_to_run() {
    let env = Env::new();
    std::fs::write(env.dir.path().join("authctl.db"), b"").expect("empty file");
    env.cmd()
        .args(["users", "list"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("run `authctl migrate up`"));
}

#[test]
fn unknown_configuration_keys_are_rejected() {
    let env = Env::migrated();
    let file = env.dir.path().join("authctl.toml");
    std::fs::write(
        &file,
        "bind = \"127.0.0.1:4000\"\n[session]\nidle_timout = \"1h\"\n",
    )
    .expect("write");
    env.cmd()
        .args(["--config", file.to_str().expect("utf8"), "users", "list"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("idle_timout"));
    env.cmd()
        .env("AUTHCTL_SESION__IDLE_TIMEOUT", "1h")
        .args(["users", "list"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("sesion"));
    env.cmd()
        .env("AUTHCTL_SESSION__IDLE_TIMEOUT", "soon")
        .args(["users", "list"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("IDLE_TIMEOUT"));
}

#[test]
fn a_missing_config_file_is_an_error() {
    let env = Env::migrated();
    env.cmd()
        .args(["--config", "/nonexistent/authctl.toml", "users", "list"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("does not exist"));
}

#[test]
fn the_database_password_is_never_printed() {
    let env = Env::new();
    let url = "postgres://app:hunter2@127.0.0.1:1/auth";
    env.cmd()
        .args(["--database-url", url, "users", "list"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("hunter2").not());
    // `status` names the database it tried, without the password.
    env.cmd()
        .args(["--database-url", url, "status"])
        .assert()
        .failure()
        .stdout(predicate::str::contains("app:***@127.0.0.1:1/auth"))
        .stdout(predicate::str::contains("hunter2").not())
        .stderr(predicate::str::contains("hunter2").not());
}
