//! `authctl serve`: migrate, bind, serve until SIGTERM or Ctrl-C, then drain.
use std::net::SocketAddr;

use anyhow::Context as _;
use clap::Args;

use crate::config::{MailTransportKind, Overrides};
use crate::context::AppContext;
use crate::{db, http};

use super::GlobalArgs;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:3000).
    #[arg(long, env = "AUTHCTL_BIND", value_name = "ADDR")]
    pub bind: Option<SocketAddr>,
    /// The URL users reach the service at; used in mailed links (default http://localhost:3000).
    #[arg(long, env = "AUTHCTL_PUBLIC_URL", value_name = "URL")]
    pub public_url: Option<String>,
}

impl ServeArgs {
    pub async fn run(self, global: &GlobalArgs) -> anyhow::Result<()> {
        let config = global.load_config(Overrides {
            bind: self.bind,
            public_url: self.public_url,
            ..Overrides::default()
        })?;
        crate::service::saml::self_test(chrono::Utc::now())?;
        let db = db::connect(&config.database_url).await?;
        db::migrate(&db, &config.database_url).await?;
        // The operator's CLI on this database builds its links from the same URL.
        crate::service::service_state::record_public_url(
            &db,
            config.public_url.as_str(),
            chrono::Utc::now(),
        )
        .await
        .context("while recording the public URL")?;
        let bind = config.bind;
        if config.mail.transport == MailTransportKind::Log {
            tracing::warn!(
                "mail.transport is `log`: mails (with their links) are printed to the console, not delivered"
            );
        }
        let readers = db::connect_readers(&config.database_url).await?;
        let ctx = AppContext::new(config, db)?.with_readers(readers);
        let listener = tokio::net::TcpListener::bind(bind).await.with_context(|| {
            format!(
                "cannot listen on {bind} (is another process using it? set --bind or AUTHCTL_BIND)"
            )
        })?;
        let scheduler = crate::scheduler::start(ctx.clone()).await?;
        let mail_worker = tokio::spawn(crate::service::outbox::run_worker(ctx.clone()));
        tracing::info!(address = %bind, public_url = %ctx.config.public_url, database = %ctx.config.database_url, "authctl is serving");
        http::serve(listener, ctx, shutdown_signal())
            .await
            .context("while serving HTTP")?;
        mail_worker.abort();
        if let Some(mut scheduler) = scheduler {
            let _ = scheduler.shutdown().await;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Completes on SIGTERM (systemd, Kubernetes) or Ctrl-C.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down: finishing open requests");
}
