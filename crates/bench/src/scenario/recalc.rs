//! `recalc`: how fast a Peace cluster recalculates pp (`peace pp recalc`). Starts a job
//! over every score through the admin API and follows it to its end; reports scores per
//! second in all and per node, from the job's own per-node counts.
//!
//! This is Peace's admin API, not the Bancho protocol: the scores must be there already
//! (the `submit` scenario stores them; docs/benchmarks.md has the commands), and the
//! server needs `[api] admin_token`. A node that did not receive the start call finds the
//! job within its `recalc_poll_ms`, which the elapsed time includes.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::Value;

use crate::Common;
use crate::http::{Conn, Target};
use crate::report::Report;

/// Between two reads of the job's progress.
const POLL: Duration = Duration::from_millis(100);
/// The longest a job may run before the bench gives up.
const MAX_JOB: Duration = Duration::from_secs(3600);
const PATH: &str = "/api/v1/admin/recalc";

#[derive(Debug, Clone, Args)]
pub struct RecalcArgs {
    /// The admin token (`[api] admin_token`).
    #[arg(long, env = "PEACE_ADMIN_TOKEN", hide_env_values = true)]
    pub token: String,
    /// Only this mode (osu, taiko, catch, mania); every mode without it.
    #[arg(long)]
    pub mode: Option<String>,
}

pub async fn run(common: &Common, args: &RecalcArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&common.url).await?;
    let mut conn = Conn::open(&target).await?;
    let body = serde_json::json!({ "mode": args.mode }).to_string();
    let started = Instant::now();
    let reply = conn.post_json_bearer(PATH, &args.token, body).await?;
    let answer: Value = serde_json::from_slice(&reply.body).context("the start answer")?;
    if reply.status != 202 {
        bail!("POST {PATH}: HTTP {}: {answer}", reply.status);
    }
    let id = answer["job"]["id"].as_i64().context("no job id")?;
    let job = loop {
        tokio::time::sleep(POLL).await;
        let reply = conn.get_bearer(PATH, &args.token).await?;
        let status: Value = serde_json::from_slice(&reply.body).context("the progress")?;
        let job = status["job"].clone();
        if job["id"].as_i64() != Some(id) {
            bail!("job {id} is no longer the current one: {job}");
        }
        if job["state"] == "finished" {
            break job;
        }
        if started.elapsed() > MAX_JOB {
            bail!("job {id} still runs after {MAX_JOB:?}: {job}");
        }
    };
    let elapsed = started.elapsed().as_secs_f64();
    let done = job["done"].as_i64().unwrap_or(0);
    let mut report = Report::new("recalc");
    report.text("url", common.url.clone());
    report.int("job", id as u64);
    report.int("scores", done.max(0) as u64);
    report.num("elapsed_s", elapsed);
    report.num("scores_per_s", done as f64 / elapsed.max(f64::EPSILON));
    for node in job["nodes"].as_array().into_iter().flatten() {
        let name = node["node"].as_str().unwrap_or("?");
        let done = node["done"].as_i64().unwrap_or(0);
        report.int(&format!("{name}_scores"), done.max(0) as u64);
        report.num(
            &format!("{name}_scores_per_s"),
            done as f64 / elapsed.max(f64::EPSILON),
        );
    }
    Ok(report)
}
