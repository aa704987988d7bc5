//! Scheduled jobs inside `serve`, with tokio-cron-scheduler. The scheduler only schedules; the
//! service does the work (the CLI runs the same functions on demand).
use anyhow::Context as _;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::context::AppContext;
use crate::service::janitor;

/// Rows deleted per statement by the janitor: short transactions, never a long lock.
pub const PRUNE_BATCH: u64 = 500;

/// Starts every job whose cron expression is set; `None` when there is nothing to schedule.
pub async fn start(ctx: AppContext) -> anyhow::Result<Option<JobScheduler>> {
    let cron = ctx.config.session.prune_cron.trim().to_owned();
    if cron.is_empty() {
        return Ok(None);
    }
    let scheduler = JobScheduler::new()
        .await
        .context("while creating the scheduler")?;
    // Ended sessions and spent tokens would otherwise pile up; nothing else depends on it.
    let job = Job::new_async(cron.as_str(), move |_id, _scheduler| {
        let ctx = ctx.clone();
        Box::pin(async move {
            match janitor::prune(&ctx, ctx.now(), PRUNE_BATCH).await {
                Ok(report) => tracing::info!(?report, "pruned ended sessions and spent tokens"),
                Err(e) => {
                    tracing::warn!(error = %e, "pruning failed; it runs again at the next tick")
                }
            }
        })
    })
    .map_err(|e| {
        anyhow::anyhow!("session.prune_cron `{cron}` is not a valid six-field cron expression: {e}")
    })?;
    scheduler
        .add(job)
        .await
        .context("while scheduling the janitor")?;
    scheduler
        .start()
        .await
        .context("while starting the scheduler")?;
    Ok(Some(scheduler))
}
