use std::path::PathBuf;

use assert_cmd::Command;

/// A temporary SQLite database and mail folder for one test.
pub struct Env {
    pub dir: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn database_url(&self) -> String {
        format!(
            "sqlite://{}?mode=rwc",
            self.dir.path().join("authctl.db").display()
        )
    }

    pub fn mail_dir(&self) -> PathBuf {
        self.dir.path().join("mail")
    }

    /// `authctl` with this environment and nothing inherited from the caller's `AUTHCTL_*`.
    pub fn std_cmd(&self) -> std::process::Command {
        let mut cmd = std::process::Command::new(assert_cmd::cargo::cargo_bin("authctl"));
        for (key, _) in std::env::vars() {
            if key.starts_with("AUTHCTL_") {
                cmd.env_remove(key);
            }
        }
        cmd.current_dir(self.dir.path())
            .env("AUTHCTL_DATABASE_URL", self.database_url())
            .env("AUTHCTL_MAIL__TRANSPORT", "file")
            .env("AUTHCTL_MAIL__DIR", self.mail_dir())
            .env("USER", "alice")
            // No configuration file from the machine running the tests.
            .env("XDG_CONFIG_HOME", self.dir.path().join("xdg"));
        cmd
    }

    pub fn cmd(&self) -> Command {
        Command::from_std(self.std_cmd())
    }

    /// A migrated database.
    pub fn migrated() -> Self {
        let env = Self::new();
        env.cmd().args(["migrate", "up"]).assert().success();
        env
    }

    /// Runs `authctl ARGS -o json` and parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let output = self
            .cmd()
            .args(args)
            .args(["-o", "json"])
            .output()
            .expect("run");
        assert!(
            output.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("JSON on stdout")
    }

    /// Waits for `serve`'s mail worker to deliver at least `n` mails with links (it delivers
    /// within moments of the request); returns every link.
    pub async fn wait_for_links(&self, n: usize) -> Vec<String> {
        for _ in 0..200 {
            let links = self.links();
            if links.len() >= n {
                return links;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
        panic!("expected {n} mailed link(s), found {}", self.links().len());
    }

    /// Every link in the mail folder.
    pub fn links(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(self.mail_dir()) else {
            return Vec::new();
        };
        entries
            .filter_map(Result::ok)
            .filter_map(|e| std::fs::read_to_string(e.path()).ok())
            .filter_map(|m| {
                let start = m.find("http://")?;
                let end = m[start..].find(char::is_whitespace)? + start;
                Some(m[start..end].to_owned())
            })
            .collect()
    }
}

/// The audit actor the CLI records for this process: `cli:<os user>@<host>`, read here from
/// `id -un` and the kernel's host name (the tests set `USER=alice`, which must not be believed).
pub fn operator() -> String {
    let user = std::process::Command::new("id")
        .arg("-un")
        .output()
        .expect("id -un");
    let user = String::from_utf8(user.stdout).expect("utf-8");
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").expect("host name");
    format!("cli:{}@{}", user.trim(), host.trim())
}

/// A running `authctl serve`; killed when dropped.
pub struct Server(pub std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
    }
}

impl Env {
    /// Starts `authctl serve` on a free port and waits until it is ready; returns its base URL.
    pub async fn serve(&self) -> (Server, String) {
        self.serve_with(&[]).await
    }

    /// `authctl serve` with extra `AUTHCTL_*` settings.
    pub async fn serve_with(&self, settings: &[(&str, &str)]) -> (Server, String) {
        self.serve_as(settings, "127.0.0.1").await
    }

    /// `authctl serve` whose public URL names `host` (`localhost` for WebAuthn, which needs a
    /// domain name); it listens on 127.0.0.1.
    pub async fn serve_as(&self, settings: &[(&str, &str)], host: &str) -> (Server, String) {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .expect("bind")
            .local_addr()
            .expect("addr")
            .port();
        let base = format!("http://{host}:{port}");
        let child = self
            .std_cmd()
            .args([
                "serve",
                "--bind",
                &format!("127.0.0.1:{port}"),
                "--public-url",
                &base,
            ])
            .envs(settings.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("start authctl serve");
        let server = Server(child);
        let client = reqwest::Client::new();
        let local = format!("http://127.0.0.1:{port}");
        for _ in 0..400 {
            if client
                .get(format!("{local}/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return (server, base);
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("authctl serve did not become ready");
    }
}
