//! Where the CLI looks and what it may create: configuration discovery, `state_dir`, no
//! database or key file created by anything but `serve` and `migrate up`, `authctl status`,
//! the public URL `serve` records, and database errors that say what to do.
use serde_json::Value;

use crate::helpers::Env;

fn run(cmd: &mut std::process::Command) -> (Option<i32>, String, String) {
    let out = cmd.output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `authctl` in `env` without its database URL: what a command run elsewhere sees.
fn bare(env: &Env) -> std::process::Command {
    let mut cmd = env.std_cmd();
    cmd.env_remove("AUTHCTL_DATABASE_URL");
    cmd
}

#[test]
fn commands_other_than_serve_and_migrate_create_nothing() {
    let env = Env::new();
    for args in [
        &["users", "list"][..],
        &["deletion", "sweep"][..],
        &["migrate", "status"][..],
    ] {
        let (code, stdout, stderr) = run(bare(&env).args(args));
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert!(stdout.is_empty());
        let expected = format!(
            "there is no database at {}",
            env.dir.path().join("authctl.db").display()
        );
        assert!(stderr.contains(&expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "one sentence: {stderr}");
    }
    assert!(!env.dir.path().join("authctl.db").exists());
    assert!(!env.dir.path().join("authctl.key").exists());

    // migrate up creates the database and the key, where the configuration says.
    let (code, _, stderr) = run(bare(&env).args(["migrate", "up"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(env.dir.path().join("authctl.db").exists());
    assert!(env.dir.path().join("authctl.key").exists());

    // A missing key file is not made up by the CLI (its sealed mail could never be opened by
    // the service's key): the command fails, and the account it would have created is not there.
    std::fs::remove_file(env.dir.path().join("authctl.key")).expect("remove");
    let (code, _, stderr) =
        run(bare(&env).args(["users", "create", "k@example.com", "--no-password"]));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("the server key file"), "{stderr}");
    assert!(!env.dir.path().join("authctl.key").exists());
    let (_, stdout, _) = run(bare(&env).args(["users", "list", "-o", "json"]));
    assert_eq!(stdout.trim(), "[]");
}

#[test]
fn the_configuration_is_found_and_state_lives_in_state_dir() {
    let env = Env::new();
    let state = env.dir.path().join("state");
    std::fs::create_dir(&state).expect("state dir");
    let xdg = env.dir.path().join("xdg").join("authctl");
    std::fs::create_dir_all(&xdg).expect("config dir");
    std::fs::write(
        xdg.join("authctl.toml"),
        format!(
            "state_dir = \"{}\"\npublic_url = \"https://login.example.com\"\n",
            state.display()
        ),
    )
    .expect("config");
    let elsewhere = env.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("cwd");

    let (code, _, stderr) = run(bare(&env).current_dir(&elsewhere).args(["migrate", "up"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(state.join("authctl.db").exists() && state.join("authctl.key").exists());
    assert!(
        std::fs::read_dir(&elsewhere).expect("dir").next().is_none(),
        "nothing in the cwd"
    );

    let (code, stdout, stderr) = run(bare(&env)
        .current_dir(&elsewhere)
        .args(["status", "-o", "json"]));
    assert_eq!(code, Some(0), "{stderr}");
    let status: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        status["configFile"],
        xdg.join("authctl.toml").display().to_string()
    );
    assert_eq!(
        status["database"]["file"],
        state.join("authctl.db").display().to_string()
    );
    assert_eq!(status["database"]["schema"], "current");
    assert_eq!(status["serverKey"]["exists"], true);
    assert_eq!(status["publicUrl"], "https://login.example.com/");

    // --config (and AUTHCTL_CONFIG) win over the discovered file.
    let other = env.dir.path().join("other.toml");
    std::fs::write(
        &other,
        "database_url = \"sqlite:///nonexistent/authctl.db\"\n",
    )
    .expect("other");
    let (code, stdout, _) = run(bare(&env)
        .env("AUTHCTL_CONFIG", &other)
        .args(["status", "-o", "json"]));
    assert_eq!(code, Some(1), "the database is not there");
    let status: Value = serde_json::from_str(&stdout).expect("status still prints");
    assert_eq!(status["configFile"], other.display().to_string());
    assert_eq!(status["database"]["reachable"], false);
}

#[tokio::test]
async fn the_cli_uses_the_public_url_serve_runs_with() {
    let env = Env::migrated();
    // `serve` runs with --public-url http://127.0.0.1:PORT; the CLI here sets none.
    let (server, base) = env.serve().await;
    drop(server);
    env.cmd()
        .args(["users", "create", "link@example.com", "--no-password"])
        .assert()
        .success();
    let links = env.wait_for_links(1).await;
    assert!(
        links[0].starts_with(&format!("{base}/")),
        "the CLI's mail links to the service's URL: {links:?}"
    );
    let status = env.json(&["status"]);
    assert_eq!(status["servicePublicUrl"], format!("{base}/"));

    // A configuration that says otherwise is warned about, and wins for this command.
    let (code, _, stderr) = run(env
        .std_cmd()
        .env("AUTHCTL_PUBLIC_URL", "https://other.example.com")
        .args(["users", "create", "other@example.com", "--no-password"]));
    assert_eq!(code, Some(0));
    assert!(
        stderr.contains(&format!("but `authctl serve` runs with {base}/")),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_database_from_a_newer_authctl_is_named_and_migrate_status_still_works() {
    let env = Env::migrated();
    let db = authctl::db::connect(&authctl::config::DatabaseUrl::new(env.database_url()))
        .await
        .expect("connect");
    sea_orm::ConnectionTrait::execute_unprepared(
        &db,
        "INSERT INTO seaql_migrations (version, applied_at) VALUES ('m20991231_000001_from_the_future', 0)",
    )
    .await
    .expect("insert");
    db.close().await.expect("close");

    let (code, _, stderr) = run(env.std_cmd().args(["users", "list"]));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("migrated by a newer authctl"), "{stderr}");
    assert!(
        stderr.contains("m20991231_000001_from_the_future"),
        "{stderr}"
    );
    let (code, _, stderr) = run(env.std_cmd().args(["migrate", "up"]));
    assert_eq!(code, Some(1));
    assert!(stderr.contains("migrated by a newer authctl"), "{stderr}");
    let (code, stdout, stderr) = run(env.std_cmd().args(["migrate", "status", "-o", "json"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("from_the_future"), "{stderr}");
    let states: Value = serde_json::from_str(&stdout).expect("json");
    assert!(
        states
            .as_array()
            .expect("list")
            .iter()
            .all(|m| m["applied"] == true)
    );
}

#[test]
fn database_errors_say_what_to_do() {
    let env = Env::new();
    let (code, _, stderr) = run(env.std_cmd().args([
        "--database-url",
        "postgres://app:pw@127.0.0.1:1/auth",
        "users",
        "list",
    ]));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("connection refused at 127.0.0.1:1"),
        "{stderr}"
    );
    let (code, _, stderr) = run(env.std_cmd().args([
        "--database-url",
        "sqlite:///nonexistent-dir/authctl.db",
        "migrate",
        "up",
    ]));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("its folder /nonexistent-dir does not exist"),
        "{stderr}"
    );

    // A PostgreSQL server that is there but has no such database or role, when one runs here.
    let Ok(pg) = std::env::var("AUTHCTL_TEST_POSTGRES_URL") else {
        return;
    };
    let mut url = url::Url::parse(&pg).expect("url");
    url.set_path("authctl_no_such_database");
    let (code, _, stderr) =
        run(env
            .std_cmd()
            .args(["--database-url", url.as_str(), "users", "list"]));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("database \"authctl_no_such_database\" does not exist")
            && stderr.contains("createdb"),
        "{stderr}"
    );
    let mut url = url::Url::parse(&pg).expect("url");
    url.set_username("authctl_no_such_role").expect("user");
    let (code, _, stderr) =
        run(env
            .std_cmd()
            .args(["--database-url", url.as_str(), "users", "list"]));
    assert_eq!(code, Some(1));
    assert!(
        stderr.contains("role \"authctl_no_such_role\" does not exist"),
        "{stderr}"
    );
}

#[test]
fn migrate_up_makes_a_key_file_for_a_new_database_only() {
    let env = Env::migrated();
    let key = env.dir.path().join("authctl.key");
    assert!(key.exists());
    // A database that holds data already: a new key would leave what was sealed unreadable.
    std::fs::remove_file(&key).expect("remove");
    let (code, _, stderr) = run(env.std_cmd().args(["migrate", "up"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(!key.exists(), "no key was made up for an existing database");
}

#[test]
fn state_paths_with_url_characters_and_relative_state_dir_in_a_file() {
    let env = Env::new();
    // A state folder whose name a URL would misread, given relative to the configuration file.
    let etc = env.dir.path().join("etc");
    let state = etc.join("state 50%?#");
    std::fs::create_dir_all(&state).expect("state dir");
    std::fs::write(etc.join("authctl.toml"), "state_dir = \"state 50%?#\"\n").expect("config");
    let elsewhere = env.dir.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).expect("cwd");
    let config = etc.join("authctl.toml");
    let (code, _, stderr) = run(bare(&env)
        .current_dir(&elsewhere)
        .args(["--config"])
        .arg(&config)
        .args(["migrate", "up"]));
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        state.join("authctl.db").is_file(),
        "the database is in the state folder"
    );
    assert!(state.join("authctl.key").is_file());
    assert!(std::fs::read_dir(&elsewhere).expect("dir").next().is_none());
    let (code, stdout, stderr) = run(bare(&env)
        .current_dir(&elsewhere)
        .args(["--config"])
        .arg(&config)
        .args(["status", "-o", "json"]));
    assert_eq!(code, Some(0), "{stderr}");
    let status: Value = serde_json::from_str(&stdout).expect("json");
    assert_eq!(
        status["database"]["file"],
        state.join("authctl.db").display().to_string()
    );
    assert_eq!(status["configFile"], config.display().to_string());
}
