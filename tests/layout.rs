//! The layout the code keeps (docs/architecture.md): no dependency cycle between the modules of
//! `src/service`, stores never call flows, and time is read only by the clock and the front
//! doors. Reads the sources with `std` only, so it runs with the rest of the tests.
use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

/// The modules of `src/service` that keep one table or a close family of tables. They may call
/// each other (without cycles) but never a flow.
const STORES: &[&str] = &[
    "api_keys",
    "audit",
    "ceremonies",
    "devices",
    "fingerprint",
    "history",
    "identities",
    "mailed_tokens",
    "outbox",
    "passkeys",
    "service_state",
    "roles",
    "sessions",
    "throttle",
    "users",
];

/// The modules of `src/service` that are flows: they call stores (and other flows).
const FLOWS: &[&str] = &[
    "account",
    "deletion",
    "janitor",
    "login",
    "magic_link",
    "saml",
    "scim",
    "signup",
    "step_up",
    "two_factor",
    "verification",
    "webauthn",
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in fs::read_dir(dir).expect("a source folder") {
        let path = entry.expect("a folder entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The source without `//` comments (doc comments name other modules freely).
fn code_of(path: &Path) -> String {
    fs::read_to_string(path)
        .expect("a source file")
        .lines()
        .map(|line| match line.find("//") {
            Some(i) if !line[..i].contains('"') => &line[..i],
            _ => line,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The names directly inside the first `{ … }` of `s` (which starts at the `{`), or the first
/// path segment when `s` is not a group.
fn top_names(s: &str) -> Vec<String> {
    let s = s.trim_start();
    if !s.starts_with('{') {
        let end = s
            .find(|c: char| !(c.is_alphanumeric() || c == '_'))
            .unwrap_or(s.len());
        return vec![s[..end].to_owned()];
    }
    let (mut depth, mut names, mut current) = (0, Vec::new(), String::new());
    for c in s[1..].chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => {
                names.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        if depth == 0 {
            current.push(c);
        }
    }
    names.push(current);
    names
        .iter()
        .map(|n| {
            let n = n.trim();
            let end = n
                .find(|c: char| !(c.is_alphanumeric() || c == '_'))
                .unwrap_or(n.len());
            n[..end].to_owned()
        })
        .filter(|n| !n.is_empty())
        .collect()
}

/// Which service modules each service module uses (`saml/` counts as one module).
fn service_graph() -> BTreeMap<String, BTreeSet<String>> {
    let service = root().join("src/service");
    let mut modules = BTreeSet::new();
    for entry in fs::read_dir(&service).expect("src/service") {
        let path = entry.expect("a folder entry").path();
        let name = path
            .file_stem()
            .expect("a file name")
            .to_string_lossy()
            .into_owned();
        if name != "mod" {
            modules.insert(name);
        }
    }
    let mut files = Vec::new();
    rust_files(&service, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&service).expect("under src/service");
        let parts: Vec<String> = rel
            .iter()
            .map(|p| p.to_string_lossy().trim_end_matches(".rs").to_owned())
            .collect();
        if parts == ["mod"] {
            continue;
        }
        let module = parts[0].clone();
        // In `saml/acs.rs`, `super::` is `saml`; `super::super::` is the service layer.
        let nested = parts.len() > 1;
        let prefixes: &[&str] = if nested {
            &["crate::service::", "super::super::"]
        } else {
            &["crate::service::", "super::"]
        };
        let code = code_of(&file);
        let uses = graph.entry(module.clone()).or_default();
        for prefix in prefixes {
            for (at, _) in code.match_indices(prefix) {
                let before = code[..at].chars().next_back();
                if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':') {
                    continue;
                }
                for name in top_names(&code[at + prefix.len()..]) {
                    if modules.contains(&name) && name != module {
                        uses.insert(name);
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn every_service_module_is_a_store_or_a_flow() {
    let graph = service_graph();
    for module in graph.keys() {
        assert!(
            STORES.contains(&module.as_str()) || FLOWS.contains(&module.as_str()),
            "src/service/{module} is neither in STORES nor in FLOWS of tests/layout.rs; \
             say which it is (and in docs/architecture.md)"
        );
    }
}

#[test]
fn stores_never_call_flows() {
    let graph = service_graph();
    let mut wrong = Vec::new();
    for store in STORES {
        for used in graph.get(*store).into_iter().flatten() {
            if FLOWS.contains(&used.as_str()) {
                wrong.push(format!("{store} -> {used}"));
            }
        }
    }
    assert!(wrong.is_empty(), "stores that call flows: {wrong:?}");
}

#[test]
fn service_modules_have_no_cycles() {
    let graph = service_graph();
    // Depth-first search; a module met again while still on the path closes a cycle.
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        cycles: &mut Vec<String>,
    ) {
        if let Some(i) = path.iter().position(|p| p == node) {
            let mut cycle = path[i..].to_vec();
            cycle.push(node.to_owned());
            cycles.push(cycle.join(" -> "));
            return;
        }
        if done.contains(node) {
            return;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            visit(next, graph, path, done, cycles);
        }
        path.pop();
        done.insert(node.to_owned());
    }
    let (mut done, mut cycles) = (BTreeSet::new(), Vec::new());
    for node in graph.keys() {
        visit(node, &graph, &mut Vec::new(), &mut done, &mut cycles);
    }
    assert!(
        cycles.is_empty(),
        "cycles between service modules: {cycles:?}"
    );
    // The check sees real edges (a parser that finds nothing would pass the test above).
    assert!(graph["login"].contains("sessions"), "{graph:?}");
    assert!(graph["saml"].contains("login"), "{graph:?}");
}

#[test]
fn time_is_read_only_by_the_clock_and_the_front_doors() {
    let src = root().join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let allowed = |rel: &Path| {
        rel == Path::new("clock.rs") || rel.starts_with("http") || rel.starts_with("cli")
    };
    let mut wrong = Vec::new();
    for file in &files {
        let rel = file.strip_prefix(&src).expect("under src");
        if allowed(rel) {
            continue;
        }
        for (n, line) in code_of(file).lines().enumerate() {
            if line.contains("Utc::now()") || line.contains("SystemTime::now()") {
                wrong.push(format!("src/{}:{}", rel.display(), n + 1));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "the time is a parameter (AppContext::now, or a `now` argument): {wrong:?}"
    );
    assert!(files.iter().any(|f| f.ends_with("clock.rs")));
}
