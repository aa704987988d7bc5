use predicates::prelude::*;

use crate::helpers::Env;

#[test]
fn schedule_list_cancel_and_sweep_from_the_cli() {
    let env = Env::migrated();
    for email in ["keep@example.com", "drop@example.com"] {
        env.cmd()
            .args(["users", "create", email, "--no-password", "--verified"])
            .assert()
            .success();
    }
    env.cmd()
        .args(["deletion", "sweep"])
        .assert()
        .success()
        .stdout(predicate::str::contains("No account was due"));
    env.cmd()
        .args(["deletion", "schedule", "drop@example.com", "--grace", "0s"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--yes"));
    // The table answer is the record alone; the sentence about it goes to stderr.
    env.cmd()
        .args([
            "deletion",
            "schedule",
            "keep@example.com",
            "--grace",
            "5d",
            "--yes",
        ])
        .assert()
        .success()
        .stdout(predicate::str::starts_with("email"))
        .stderr(predicate::str::contains("is scheduled for deletion"));
    env.cmd()
        .args(["deletion", "cancel", "keep@example.com"])
        .assert()
        .success();

    let scheduled = env.json(&[
        "deletion",
        "schedule",
        "drop@example.com",
        "--grace",
        "0s",
        "--yes",
    ]);
    assert_eq!(scheduled["email"], "drop@example.com");
    let drop_id = scheduled["userId"].as_str().expect("id").to_owned();
    let scheduled = env.json(&["deletion", "schedule", "keep@example.com", "--yes"]);
    assert_eq!(scheduled["daysRemaining"], 30);
    let pending = env.json(&["deletion", "list"]);
    assert_eq!(pending.as_array().expect("list").len(), 2);
    assert_eq!(
        env.json(&["deletion", "cancel", "keep@example.com"])["action"],
        "deletion.cancel"
    );
    env.cmd()
        .args(["deletion", "cancel", "keep@example.com"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("not scheduled"));

    let dry = env.json(&["deletion", "sweep", "--dry-run"]);
    assert_eq!(
        (dry["changed"].as_u64(), dry["dryRun"].as_bool()),
        (Some(1), Some(true))
    );
    assert_eq!(dry["items"], serde_json::json!([drop_id]));
    env.cmd()
        .args(["deletion", "sweep", "--dry-run"])
        .assert()
        .success()
        .stdout(predicate::str::contains("would delete 1 account"));
    assert_eq!(
        env.json(&["users", "list"]).as_array().expect("list").len(),
        2,
        "a dry run changes nothing"
    );

    let swept = env.json(&["deletion", "sweep", "--batch-size", "1"]);
    assert_eq!(swept["changed"], 1);
    assert_eq!(swept["items"], serde_json::json!([drop_id]));
    let users = env.json(&["users", "list"]);
    assert_eq!(users.as_array().expect("list").len(), 1);
    assert_eq!(users[0]["email"], "keep@example.com");
    let events = env.json(&["deletion", "events"]);
    assert_eq!(events[0]["event"], "user.deleted");
    env.cmd()
        .args(["deletion", "sweep"])
        .assert()
        .success()
        .stdout(predicate::str::contains("nothing changed"));
}
