//! The committed shell completions are what the current CLI generates.
use authctl::cli::completions::{SHELLS, file_name, render};

#[test]
fn committed_completions_are_up_to_date() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("completions");
    for shell in SHELLS {
        let path = dir.join(file_name(shell));
        let committed = std::fs::read(&path).unwrap_or_default();
        assert!(
            committed == render(shell),
            "{} is outdated or missing: run `authctl completions --dir completions` (or `make completions`) and commit it",
            path.display()
        );
    }
}

#[test]
fn completions_say_where_they_go_and_dir_creates_no_folders() {
    let env = crate::helpers::Env::new();
    let out = env
        .cmd()
        .args(["completions", "bash"])
        .output()
        .expect("run");
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("complete"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("bash-completion/completions/authctl"),
        "{stderr}"
    );

    let missing = env.dir.path().join("no").join("such");
    let out = env
        .cmd()
        .args(["completions", "--dir", missing.to_str().expect("path")])
        .output()
        .expect("run");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    assert!(!env.dir.path().join("no").exists(), "no parent was created");

    let out = env
        .cmd()
        .args([
            "completions",
            "--dir",
            env.dir.path().to_str().expect("path"),
        ])
        .output()
        .expect("run");
    assert!(out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("fpath") && stderr.contains("fish/completions"),
        "{stderr}"
    );
    assert!(env.dir.path().join("_authctl").is_file());
}
