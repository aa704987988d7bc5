//! `TestApp`: the real router on 127.0.0.1:0 over a fresh database (SQLite file, or a PostgreSQL
//! database of its own), the `file` mail transport in a temp folder, and an injected clock.
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use authctl::clock::ManualClock;
use authctl::config::{Config, DatabaseUrl, MailTransportKind};
use authctl::context::AppContext;
use reqwest::{Response, StatusCode};
use serde_json::{Value, json};
use tokio::sync::oneshot;

pub const PASSWORD: &str = "pass12345";

/// Which database a test runs on.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// The admin URL from `AUTHCTL_TEST_POSTGRES_URL`.
    Postgres(String),
}

impl Backend {
    /// PostgreSQL when `AUTHCTL_TEST_POSTGRES_URL` is set.
    pub fn postgres() -> Option<Self> {
        std::env::var("AUTHCTL_TEST_POSTGRES_URL")
            .ok()
            .filter(|u| !u.is_empty())
            .map(Self::Postgres)
    }
}

/// Runs each named `async fn(Backend)` once on SQLite and once on PostgreSQL (when configured).
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                match $crate::helpers::Backend::postgres() {
                    Some(backend) => super::$name(backend).await,
                    None => eprintln!("AUTHCTL_TEST_POSTGRES_URL is not set: the PostgreSQL run is skipped"),
                }
            }
        }
    )*};
}

/// A PostgreSQL database created for one test and dropped after it.
struct PgDatabase {
    admin_url: String,
    name: String,
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Drop runs inside the test's runtime: use a thread with a runtime of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(admin) = sea_orm::Database::connect(&admin_url).await {
                    let _ = sea_orm::ConnectionTrait::execute_unprepared(
                        &admin,
                        &format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
                    )
                    .await;
                    let _ = admin.close().await;
                }
            });
        })
        .join();
    }
}

pub struct TestApp {
    pub base: String,
    pub ctx: AppContext,
    pub clock: Arc<ManualClock>,
    /// A client with its own cookie jar: one "browser".
    pub client: reqwest::Client,
    pub mail_dir: PathBuf,
    shutdown: Option<oneshot::Sender<()>>,
    _dir: tempfile::TempDir,
    _pg: Option<PgDatabase>,
}

/// `AUTHCTL_TEST_LOG=debug` (any `EnvFilter` directive) prints the service's tracing output,
/// spans included, beside the failing test's output.
fn init_test_log() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Ok(directives) = std::env::var("AUTHCTL_TEST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(directives))
                .with_test_writer()
                .try_init();
        }
    });
}

impl TestApp {
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, |_| {}).await
    }

    /// Starts the app with the test defaults, changed by `tweak`.
    pub async fn spawn_with(backend: Backend, tweak: impl FnOnce(&mut Config)) -> Self {
        init_test_log();
        let dir = tempfile::tempdir().expect("temp dir");
        let mail_dir = dir.path().join("mail");
        let mut config = Config::default();
        config.mail.transport = MailTransportKind::File;
        config.mail.dir = mail_dir.clone();
        config.secret_key_file = dir.path().join("authctl.key");
        let (url, pg) = match &backend {
            Backend::Sqlite => (
                format!(
                    "sqlite://{}?mode=rwc",
                    dir.path().join("authctl.db").display()
                ),
                None,
            ),
            Backend::Postgres(admin_url) => {
                let name = format!("authctl_test_{}", uuid::Uuid::new_v4().simple());
                let admin = sea_orm::Database::connect(admin_url.as_str()).await.expect(
                    "AUTHCTL_TEST_POSTGRES_URL is set but PostgreSQL cannot be reached; start it or unset the variable",
                );
                sea_orm::ConnectionTrait::execute_unprepared(
                    &admin,
                    &format!("CREATE DATABASE \"{name}\""),
                )
                .await
                .expect("create the test database");
                admin.close().await.expect("close admin connection");
                let mut url =
                    url::Url::parse(admin_url).expect("AUTHCTL_TEST_POSTGRES_URL is a URL");
                url.set_path(&name);
                (
                    url.to_string(),
                    Some(PgDatabase {
                        admin_url: admin_url.clone(),
                        name,
                    }),
                )
            }
        };
        config.database_url = DatabaseUrl::new(url);
        // Bound before anything else, so mailed links point at this server.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        config.public_url = base.parse().expect("url");
        tweak(&mut config);

        let db = authctl::db::connect(&config.database_url)
            .await
            .expect("connect");
        authctl::db::migrate(&db, &config.database_url)
            .await
            .expect("migrate");
        // Whole microseconds: PostgreSQL stores no finer, so times read back compare equal.
        let clock = Arc::new(ManualClock::new(chrono::SubsecRound::trunc_subsecs(
            chrono::Utc::now(),
            6,
        )));
        // The read connections `serve` uses, so every test goes through them.
        let readers = authctl::db::connect_readers(&config.database_url)
            .await
            .expect("read connections");
        let ctx = AppContext::with_clock(config, db, clock.clone())
            .expect("context")
            .with_readers(readers);

        let (tx, rx) = oneshot::channel::<()>();
        let server_ctx = ctx.clone();
        tokio::spawn(async move {
            authctl::http::serve(listener, server_ctx, async {
                let _ = rx.await;
            })
            .await
            .expect("server");
        });
        Self {
            base,
            ctx,
            clock,
            client: Self::browser(),
            mail_dir,
            shutdown: Some(tx),
            _dir: dir,
            _pg: pg,
        }
    }

    /// A new client with an empty cookie jar (another device).
    pub fn browser() -> reqwest::Client {
        reqwest::Client::builder()
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("client")
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .await
            .expect("request")
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request")
    }

    pub async fn signup(&self, email: &str) -> Response {
        self.post(
            "/signup",
            &json!({ "email": email, "password": PASSWORD, "name": "Test User" }),
        )
        .await
    }

    pub async fn login(&self, client: &reqwest::Client, email: &str, password: &str) -> Response {
        client
            .post(self.url("/login"))
            .json(&json!({ "email": email, "password": password }))
            .send()
            .await
            .expect("request")
    }

    /// Signs up and verifies `email` through the mailed link; the app's client is signed in.
    pub async fn verified_user(&self, email: &str) {
        assert_eq!(self.signup(email).await.status(), StatusCode::CREATED);
        let link = self
            .wait_for_links(1)
            .await
            .pop()
            .expect("a verification link");
        let response = self.client.get(link).send().await.expect("request");
        assert_eq!(response.status(), StatusCode::OK);
    }

    /// Delivers every queued mail now, as `serve`'s worker would: after it the mail folder
    /// holds every mail the requests so far caused, and nothing more is on its way.
    pub async fn deliver_mail(&self) -> authctl::service::outbox::Delivery {
        authctl::service::outbox::drain(&self.ctx, 100)
            .await
            .expect("deliver the outbox")
    }

    /// The bodies of every mail sent so far, oldest first (the outbox is delivered first).
    pub async fn mails(&self) -> Vec<String> {
        self.deliver_mail().await;
        self.mail_files()
    }

    /// The bodies of every mail in the mail folder, oldest first.
    pub fn mail_files(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.mail_dir) else {
            return Vec::new();
        };
        let mut files: Vec<(std::time::SystemTime, String)> = entries
            .filter_map(Result::ok)
            .filter(|e| e.path().extension().is_some_and(|x| x == "eml"))
            .filter_map(|e| {
                let modified = e.metadata().ok()?.modified().ok()?;
                Some((modified, std::fs::read_to_string(e.path()).ok()?))
            })
            .collect();
        files.sort_by_key(|(t, _)| *t);
        files.into_iter().map(|(_, body)| body).collect()
    }

    /// Every link in the mails sent so far, oldest first (each mail counted once).
    pub async fn links(&self) -> Vec<String> {
        self.mails()
            .await
            .iter()
            .filter_map(|m| {
                let start = m.find("http://").or_else(|| m.find("https://"))?;
                let end =
                    m[start..].find(|c: char| c.is_whitespace() || c == '"' || c == '<')? + start;
                Some(m[start..end].to_owned())
            })
            .collect()
    }

    /// The links mailed so far; at least `n` of them.
    pub async fn wait_for_links(&self, n: usize) -> Vec<String> {
        let links = self.links().await;
        assert!(
            links.len() >= n,
            "expected {n} mailed link(s), found {}",
            links.len()
        );
        links
    }

    /// The token of a mailed link.
    pub fn token_of(link: &str) -> String {
        link.split("token=")
            .nth(1)
            .expect("token in link")
            .to_owned()
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// The code an authenticator app shows for `secret` (base32) at `at`.
pub fn totp_code(secret: &str, at: chrono::DateTime<chrono::Utc>) -> String {
    let secret = totp_rs::Secret::try_from_base32(secret).expect("base32 secret");
    let totp = totp_rs::Builder::new()
        .with_secret(secret)
        .build()
        .expect("totp");
    totp.generate(u64::try_from(at.timestamp()).expect("time"))
        .to_string()
}

/// Every mail with this subject sent so far.
pub async fn mails_with_subject(app: &TestApp, subject: &str) -> Vec<String> {
    app.mails()
        .await
        .into_iter()
        .filter(|m| m.contains(&format!("Subject: {subject}")))
        .collect()
}

/// The mails with this subject sent so far; at least `n` of them.
pub async fn wait_for_subject(app: &TestApp, subject: &str, n: usize) -> Vec<String> {
    let found = mails_with_subject(app, subject).await;
    assert!(
        found.len() >= n,
        "expected {n} mail(s) with subject {subject:?}, found {}",
        found.len()
    );
    found
}

/// The first URL in a mail that contains `path`.
pub fn link_in(mail: &str, path: &str) -> String {
    let start = mail
        .find(path)
        .and_then(|i| mail[..i].rfind("http"))
        .expect("a link");
    let end = mail[start..]
        .find(|c: char| c.is_whitespace() || c == '"' || c == '<')
        .expect("end")
        + start;
    mail[start..end].to_owned()
}

/// The JSON body of a response.
pub async fn body(response: Response) -> Value {
    response.json().await.expect("a JSON body")
}

/// Asserts the status and the `error` code of an error response, and returns the body.
pub async fn assert_error(response: Response, status: StatusCode, code: &str) -> Value {
    assert_eq!(response.status(), status, "unexpected status");
    let body = body(response).await;
    assert_eq!(body["error"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}

impl TestApp {
    /// The injected clock's time.
    pub fn clock_now(&self) -> chrono::DateTime<chrono::Utc> {
        authctl::clock::Clock::now(self.clock.as_ref())
    }
}

/// A verified, signed-in, stepped-up user with TOTP on; returns the secret and recovery codes.
pub async fn enrolled(app: &TestApp, email: &str) -> (String, Vec<String>) {
    app.verified_user(email).await;
    app.post("/auth/confirm", &json!({ "password": PASSWORD }))
        .await;
    let setup = app.post("/me/2fa/totp/setup", &json!({})).await;
    assert_eq!(setup.status(), StatusCode::OK);
    let setup = body(setup).await;
    let secret = setup["secret"].as_str().expect("secret").to_owned();
    let enable = app
        .post(
            "/me/2fa/totp/enable",
            &json!({ "code": totp_code(&secret, app.clock_now()) }),
        )
        .await;
    assert_eq!(enable.status(), StatusCode::OK);
    let codes = body(enable).await["recoveryCodes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c.as_str().expect("code").to_owned())
        .collect();
    // The next code must come from a later time-step.
    app.clock.advance(Duration::from_secs(30));
    (secret, codes)
}
