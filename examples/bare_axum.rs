//! A bare axum server answering a constant on `/`: the ceiling `scripts/bench-me.sh` measures
//! `authctl serve` against, built with the same axum, tokio and profile.
//!
//! Usage: bare_axum 127.0.0.1:PORT
#[tokio::main]
async fn main() {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:3999".into());
    let app = axum::Router::new().route("/", axum::routing::get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(&addr)
        .await
        .expect("bind the bench address");
    axum::serve(listener, app).await.expect("serve");
}
