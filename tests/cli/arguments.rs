//! Arguments scripts get wrong: ids in any spelling, `--after` and `--since` that mean nothing,
//! database URLs that cannot serve an operator's command, and passwords in URLs that do not
//! parse. Each is a usage error (exit 2) or one sentence, never a panic, a loop or a secret.
use crate::helpers::Env;

fn run(cmd: &mut std::process::Command) -> (Option<i32>, String, String) {
    let out = cmd.output().expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn meaningless_paging_and_since_arguments_are_usage_errors() {
    let env = Env::migrated();
    for args in [
        &["users", "list", "--after", "null"][..],
        &["users", "list", "--after", ""][..],
        &["users", "list", "--after", "12"][..],
        &["deletion", "events", "--after", "abc"][..],
        &["audit", "list", "--after", "abc"][..],
        &[
            "audit",
            "list",
            "--after",
            "0193b3f0-aaaa-7bbb-8ccc-123456789abc",
        ][..],
        &["audit", "list", "--since", "bogus"][..],
        &["audit", "list", "--since", "100000000000d"][..],
    ] {
        let (code, stdout, stderr) = run(env.std_cmd().args(args));
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
        assert!(stdout.is_empty(), "{args:?}: {stdout}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn ids_are_found_in_upper_case_too() {
    let env = Env::migrated();
    let mut ids = Vec::new();
    for email in ["a@example.com", "b@example.com"] {
        let created = env.json(&["users", "create", email, "--no-password", "--verified"]);
        ids.push(created["id"].as_str().expect("id").to_owned());
    }
    ids.sort();
    let upper = ids[0].to_uppercase();
    assert_eq!(env.json(&["users", "show", &upper])["id"], ids[0].as_str());
    // Paging with an id in another spelling continues where the lower-case id would.
    let next = env.json(&["users", "list", "--after", &upper]);
    assert_eq!(next.as_array().map(Vec::len), Some(1));
    assert_eq!(next[0]["id"], ids[1].as_str());
}

#[test]
fn an_in_memory_database_is_refused_by_operator_commands() {
    let env = Env::new();
    for url in ["sqlite::memory:", "sqlite://", "sqlite://x.db?mode=memory"] {
        let (code, _, stderr) = run(env
            .std_cmd()
            .env("AUTHCTL_DATABASE_URL", url)
            .args(["users", "list"]));
        assert_eq!(code, Some(1), "{url}: {stderr}");
        assert!(
            stderr.contains("in-memory SQLite database"),
            "{url}: {stderr}"
        );
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
}

#[test]
fn passwords_stay_hidden_in_urls_that_do_not_parse() {
    let env = Env::new();
    for url in [
        "postgres://app:s3cret@/authctl?host=/nonexistent-socket-folder",
        "postgres://app@127.0.0.1:1/authctl?password=s3cret",
        "mysql://app:s3cret@db/authctl",
    ] {
        let (code, stdout, stderr) = run(env
            .std_cmd()
            .env("AUTHCTL_DATABASE_URL", url)
            .args(["status", "-o", "json"]));
        assert_eq!(code, Some(1), "{url}: {stderr}");
        assert!(!stderr.contains("s3cret"), "{url}: {stderr}");
        assert!(!stdout.contains("s3cret"), "{url}: {stdout}");
        assert!(stdout.contains("***"), "{url}: {stdout}");
        let (_, _, stderr) = run(env
            .std_cmd()
            .env("AUTHCTL_DATABASE_URL", url)
            .env("AUTHCTL_LOG", "trace")
            .args(["users", "list"]));
        assert!(!stderr.contains("s3cret"), "{url}: {stderr}");
    }
}
