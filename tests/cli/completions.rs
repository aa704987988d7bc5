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
