//! `authctl passkeys list|remove` and the factors `users show` names, on a passkey registered
//! by a real ceremony (webauthn-rs with a software authenticator).
use authctl::service::passkeys::{self, NewPasskey};
use authctl::service::users;
use predicates::prelude::*;
use webauthn_authenticator_rs::WebauthnAuthenticator;
use webauthn_authenticator_rs::softpasskey::SoftPasskey;

use crate::helpers::Env;
use crate::sessions::{context, user_with_sessions};

/// A passkey for `user`, registered by a real ceremony: the default public URL
/// (http://localhost:3000) is the relying party, a software authenticator the device.
pub(crate) async fn registered_passkey(
    ctx: &authctl::context::AppContext,
    user: &authctl::entity::user::Model,
) -> authctl::entity::passkey::Model {
    let webauthn = ctx.webauthn.clone().expect("a relying party");
    let (options, state) = webauthn
        .start_passkey_registration(
            uuid::Uuid::parse_str(&user.id).expect("uuid"),
            &user.email,
            &user.name,
            None,
        )
        .expect("start");
    let mut device = SoftPasskey::new(true);
    let response = device
        .do_registration(ctx.config.public_url.clone(), options)
        .expect("register");
    let credential = webauthn
        .finish_passkey_registration(&response, &state)
        .expect("finish");
    passkeys::insert(
        &ctx.db,
        NewPasskey {
            user_id: &user.id,
            name: "Desk key".into(),
            credential: &credential,
            transports: vec!["usb".into()],
            backup_eligible: false,
            backup_state: false,
        },
        ctx.now(),
    )
    .await
    .expect("insert")
}

#[tokio::test]
async fn passkeys_list_and_remove_with_confirmation() {
    let env = Env::migrated();
    user_with_sessions(&env, "pat@example.com", &[]).await;
    let ctx = context(&env).await;
    let user = users::get_by_email(&ctx, "pat@example.com")
        .await
        .expect("user");
    let row = registered_passkey(&ctx, &user).await;
    ctx.db.close_by_ref().await.expect("close");

    let listed = env.json(&["passkeys", "list", "--user", "pat@example.com"]);
    assert_eq!(listed[0]["id"], row.id.as_str());
    assert_eq!(listed[0]["name"], "Desk key");
    assert_eq!(listed[0]["transports"][0], "usb");
    assert!(!listed.to_string().contains("EC_EC2"), "never the key");
    env.cmd()
        .args(["passkeys", "list", "--user", "pat@example.com"])
        .assert()
        .success()
        .stdout(predicate::str::contains("Desk key"));
    let shown = env.json(&["users", "show", "pat@example.com"]);
    assert_eq!(shown["factors"], serde_json::json!(["password", "passkey"]));

    // Without a terminal and without --yes, nothing is removed.
    env.cmd()
        .args(["passkeys", "remove", &row.id])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--yes"));
    assert_eq!(
        env.json(&["passkeys", "list", "--user", "pat@example.com"])
            .as_array()
            .expect("list")
            .len(),
        1
    );
    let removed = env.json(&["passkeys", "remove", &row.id, "--yes"]);
    assert_eq!(removed["items"][0], row.id.as_str());
    assert!(
        env.json(&["passkeys", "list", "--user", "pat@example.com"])
            .as_array()
            .expect("list")
            .is_empty()
    );
    let audit = env.json(&["audit", "list", "--user", "pat@example.com"]);
    assert!(
        audit
            .as_array()
            .expect("list")
            .iter()
            .any(|e| e["action"] == "passkey_removed" && e["actor"] == crate::helpers::operator()),
        "{audit}"
    );
    env.cmd()
        .args(["passkeys", "remove", &row.id, "--yes"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("no passkey has the id"));
    let shown = env.json(&["users", "show", "pat@example.com"]);
    assert_eq!(shown["factors"], serde_json::json!(["password"]));
}

#[tokio::test]
async fn a_magic_link_login_shows_in_history_and_sessions() {
    let env = Env::migrated();
    user_with_sessions(&env, "lin@example.com", &[]).await;
    let ctx = context(&env).await;
    let client = authctl::service::ClientInfo {
        ip: Some("198.51.100.20".parse().expect("ip")),
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/130.0".into()),
        fingerprint: None,
    };
    let binding =
        authctl::service::magic_link::request(&ctx, "lin@example.com", None, &client, ctx.now())
            .await
            .expect("request");
    authctl::service::outbox::drain(&ctx, 10)
        .await
        .expect("deliver");
    let mail = std::fs::read_dir(env.mail_dir())
        .expect("mail dir")
        .filter_map(Result::ok)
        .map(|e| std::fs::read_to_string(e.path()).expect("mail"))
        .find(|m| m.contains("Your sign-in link"))
        .expect("the sign-in mail");
    let start = mail.find("token=").expect("token") + "token=".len();
    let token: String = mail[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect();
    authctl::service::magic_link::confirm(&ctx, &token, Some(&binding), &client, ctx.now())
        .await
        .expect("sign in");
    ctx.db.close_by_ref().await.expect("close");

    let history = env.json(&["users", "history", "lin@example.com"]);
    assert_eq!(history[0]["method"], "magic_link", "{history}");
    let sessions = env.json(&["sessions", "list", "--user", "lin@example.com"]);
    assert_eq!(sessions[0]["authMethod"], "magic_link", "{sessions}");
}
