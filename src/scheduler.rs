//! Scheduled jobs inside `serve`, with tokio-cron-scheduler. The scheduler only schedules; the
//! service does the work (the CLI runs the same functions on demand). An empty cron expression
//! disables its job.
use std::future::Future;
use std::pin::Pin;

use anyhow::Context as _;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::context::AppContext;
use crate::service::{deletion, janitor};

type Work = fn(AppContext) -> Pin<Box<dyn Future<Output = ()> + Send>>;

/// Ended sessions and spent tokens would otherwise pile up; nothing else depends on it.
fn prune(ctx: AppContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        match janitor::prune(&ctx, ctx.now(), None).await {
            Ok(report) => tracing::info!(?report, "pruned ended sessions and spent tokens"),
            Err(e) => tracing::warn!(error = %e, "pruning failed; it runs again at the next tick"),
        }
    })
}

/// Accounts past their grace period must go. Every replica may run this at the same tick: the
/// sweep claims its accounts in each batch's transaction first, so each is deleted once.
fn sweep(ctx: AppContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        match deletion::sweep(&ctx, ctx.now(), None, |_| {}).await {
            Ok(report) if report.accounts > 0 => {
                tracing::info!(accounts = report.accounts, "deletion sweep finished")
            }
            Ok(_) => tracing::debug!("deletion sweep: nothing due"),
            Err(e) => {
                tracing::warn!(error = %e, "deletion sweep failed; it runs again at the next tick")
            }
        }
    })
}

/// Undelivered `user.deleted` events go to `deletion.webhook_url`, retried with their backoff.
/// Replicas may run it at the same tick: each event is claimed before it is sent.
fn webhooks(ctx: AppContext) -> Pin<Box<dyn Future<Output = ()> + Send>> {
    Box::pin(async move {
        match deletion::deliver_events(&ctx, ctx.now()).await {
            Ok(d) if d.delivered + d.failed > 0 => {
                tracing::info!(
                    delivered = d.delivered,
                    failed = d.failed,
                    "deletion webhooks"
                )
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "deletion webhook delivery failed; it runs again at the next tick")
            }
        }
    })
}

/// Starts every job whose cron expression is set; `None` when there is nothing to schedule.
pub async fn start(ctx: AppContext) -> anyhow::Result<Option<JobScheduler>> {
    let jobs: [(&str, String, Work); 3] = [
        (
            "session.prune_cron",
            ctx.config.session.prune_cron.trim().to_owned(),
            prune,
        ),
        (
            "deletion.sweep_cron",
            ctx.config.deletion.sweep_cron.trim().to_owned(),
            sweep,
        ),
        (
            "deletion.webhook_cron",
            ctx.config.deletion.webhook_cron.trim().to_owned(),
            webhooks,
        ),
    ];
    if jobs.iter().all(|(_, cron, _)| cron.is_empty()) {
        return Ok(None);
    }
    let scheduler = JobScheduler::new()
        .await
        .context("while creating the scheduler")?;
    for (key, cron, work) in jobs {
        if cron.is_empty() {
            continue;
        }
        let ctx = ctx.clone();
        let job = Job::new_async(cron.as_str(), move |_id, _scheduler| work(ctx.clone())).map_err(
            |e| anyhow::anyhow!("{key} `{cron}` is not a valid six-field cron expression: {e}"),
        )?;
        scheduler
            .add(job)
            .await
            .with_context(|| format!("while scheduling the job of {key}"))?;
    }
    scheduler
        .start()
        .await
        .context("while starting the scheduler")?;
    Ok(Some(scheduler))
}
