//! Tables for people and `awk`: ids never wrap or shorten, free text shortens with an ellipsis
//! on a narrow terminal (not through a pipe), a terminal that reports 0 columns prints everything,
//! `--no-headers` and `-o wide`, and listings page by `--limit` and `--after`.
use std::process::Command;

use crate::helpers::Env;
use crate::sessions::context;

const LONG_NAME: &str =
    "Maximiliane Alexandra von Habsburg-Lothringen, Head of Platform Reliability";

/// `n` accounts, the first with a long display name.
async fn seed(env: &Env, n: usize) -> Vec<String> {
    let ctx = context(env).await;
    let mut ids = Vec::new();
    for i in 0..n {
        let new = authctl::service::users::NewUser {
            email: format!("user{i:03}@example.com"),
            name: if i == 0 {
                LONG_NAME.into()
            } else {
                format!("User {i}")
            },
            password: None,
            verified: true,
        };
        let user = authctl::service::users::create(
            &ctx,
            &authctl::service::Actor::Cli("setup".into()),
            new,
            ctx.now(),
        )
        .await
        .expect("create");
        ids.push(user.id);
    }
    ctx.db.close_by_ref().await.expect("close");
    ids
}

/// Runs `authctl ARGS` under a pseudo-terminal `cols` wide (stdout and stderr both land on it).
fn on_terminal(env: &Env, cols: u16, args: &str) -> String {
    let base = env.std_cmd();
    let bin = base.get_program().to_str().expect("path").to_owned();
    let mut cmd = Command::new("script");
    cmd.args([
        "-qec",
        &format!("stty cols {cols} rows 50; {bin} {args}"),
        "/dev/null",
    ]);
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.current_dir(env.dir.path());
    let out = cmd.output().expect("script(1) runs");
    assert!(out.status.success(), "{args}: {out:?}");
    String::from_utf8(out.stdout)
        .expect("utf-8")
        .replace("\r\n", "\n")
}

fn piped(env: &Env, args: &[&str]) -> String {
    let out = env.cmd().args(args).output().expect("run");
    assert!(out.status.success(), "{args:?}: {out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test]
async fn an_80_column_terminal_keeps_ids_whole_and_shortens_names() {
    let env = Env::migrated();
    let ids = seed(&env, 3).await;
    let screen = on_terminal(&env, 80, "users list");
    let lines: Vec<&str> = screen.lines().filter(|l| !l.is_empty()).collect();
    assert!(lines[0].starts_with("ID  "), "{screen}");
    assert_eq!(
        lines.len(),
        4,
        "a header and one line per account: {screen}"
    );
    for (line, id) in lines[1..].iter().zip(&ids) {
        assert_eq!(
            line.split_whitespace().next(),
            Some(id.as_str()),
            "{screen}"
        );
        assert!(
            line.chars().count() <= 80,
            "wider than the terminal: {line}"
        );
    }
    assert!(lines[1].ends_with('…'), "the long name is cut: {screen}");
    assert!(!screen.contains(LONG_NAME));
    // What was pasted from the table works as the next command's argument.
    let pasted = lines[1].split_whitespace().next().expect("id");
    let shown = env.json(&["users", "show", pasted]);
    assert_eq!(shown["email"], "user000@example.com");
}

#[tokio::test]
async fn a_terminal_reporting_0_columns_and_a_pipe_print_everything() {
    let env = Env::migrated();
    seed(&env, 2).await;
    let screen = on_terminal(&env, 0, "users list");
    assert!(screen.contains(LONG_NAME), "{screen}");
    let out = piped(&env, &["users", "list"]);
    assert!(out.contains(LONG_NAME), "{out}");
    // Plain columns that awk reads: the email is the second field of every row.
    let emails: Vec<&str> = out
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().nth(1).expect("email"))
        .collect();
    assert_eq!(emails, ["user000@example.com", "user001@example.com"]);
    assert!(
        !out.contains('│') && !out.contains('─'),
        "no borders: {out}"
    );
}

#[tokio::test]
async fn no_headers_and_wide() {
    let env = Env::migrated();
    seed(&env, 1).await;
    let plain = piped(&env, &["users", "list"]);
    assert!(
        plain.starts_with("ID ") && !plain.contains("ROLES"),
        "{plain}"
    );
    assert!(plain.contains(" active "), "{plain}");
    let bare = piped(&env, &["users", "list", "--no-headers"]);
    assert_eq!(bare.lines().count(), 1);
    assert!(bare.starts_with(&plain.lines().nth(1).expect("row")[..36]));
    let wide = piped(&env, &["users", "list", "-o", "wide"]);
    assert!(
        wide.lines().next().expect("header").contains("ROLES"),
        "{wide}"
    );
}

#[tokio::test]
async fn listings_page_by_limit_and_after() {
    let env = Env::migrated();
    let ids = seed(&env, 105).await;

    // On a terminal: the first 100, and a hint naming where the next page starts.
    let screen = on_terminal(&env, 200, "users list");
    let rows: Vec<&str> = screen
        .lines()
        .filter(|l| l.contains("@example.com"))
        .collect();
    assert_eq!(rows.len(), 100, "{screen}");
    assert!(
        screen.contains(&format!("--after {}", ids[99])),
        "the hint names the last id shown: {screen}"
    );

    // Through a pipe: everything, unless asked.
    assert_eq!(
        env.json(&["users", "list"]).as_array().map(Vec::len),
        Some(105)
    );
    let first = env.json(&["users", "list", "--limit", "2"]);
    assert_eq!(first[0]["id"], ids[0].as_str());
    assert_eq!(first[1]["id"], ids[1].as_str());
    let next = env.json(&["users", "list", "--limit", "2", "--after", &ids[1]]);
    assert_eq!(next[0]["id"], ids[2].as_str());
    let last = env.json(&["users", "list", "--after", &ids[103]]);
    assert_eq!(last.as_array().map(Vec::len), Some(1));

    // audit list pages too, newest first, by its numeric id.
    let audit = env.json(&["audit", "list", "--limit", "3"]);
    let third = audit[2]["id"].as_i64().expect("id");
    let older = env.json(&[
        "audit",
        "list",
        "--limit",
        "1",
        "--after",
        &third.to_string(),
    ]);
    assert!(older[0]["id"].as_i64().expect("id") < third);
    let out = env
        .cmd()
        .args(["audit", "list", "--after", "yesterday"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a row id"));
    // --limit 0 is a usage error.
    let out = env
        .cmd()
        .args(["users", "list", "--limit", "0"])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(2));
}
