//! Operator commands that talk to a running node's JSON API (`peace cluster …`,
//! `peace pp recalc`).

use std::io::{IsTerminal, Write};
use std::time::Duration;

use anyhow::Context;
use serde_json::Value;

/// How often `peace pp recalc` asks for the job's progress.
pub const RECALC_POLL: Duration = Duration::from_millis(500);
/// Without a terminal (a log, a pipe), a progress line this often instead of a bar.
const RECALC_LOG_EVERY: Duration = Duration::from_secs(10);
/// Width of the progress bar, in characters.
const BAR_WIDTH: usize = 30;
/// Consecutive failed progress reads after which the CLI gives up following (the job
/// goes on in the cluster either way).
const MAX_FAILED_POLLS: u32 = 20;

/// Fetches `GET {url}/api/v1/cluster`.
pub async fn fetch_cluster(url: &str) -> anyhow::Result<Value> {
    let url = format!("{}/api/v1/cluster", url.trim_end_matches('/'));
    let response = reqwest::get(&url)
        .await
        .with_context(|| format!("asking {url}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    response.json().await.context("reading the cluster view")
}

/// Sends an admin call with the bearer token: the answer's status and JSON body (null
/// when it has none).
async fn admin_call(
    request: reqwest::RequestBuilder,
    url: &str,
    token: &str,
) -> anyhow::Result<(reqwest::StatusCode, Value)> {
    let response = request
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("asking {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    Ok((status, body))
}

/// The error of an admin call that did not succeed, with the server's message.
fn refused(url: &str, status: reqwest::StatusCode, body: &Value) -> anyhow::Error {
    anyhow::anyhow!(
        "{url} answered {status}: {}",
        body["error"].as_str().unwrap_or("no detail")
    )
}

/// An admin call: `POST {url}{path}` with the bearer token; fails with the server's
/// message unless it succeeded.
pub async fn admin_post(url: &str, path: &str, token: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", url.trim_end_matches('/'));
    let (status, body) = admin_call(reqwest::Client::new().post(&url), &url, token).await?;
    if !status.is_success() {
        return Err(refused(&url, status, &body));
    }
    Ok(body)
}

/// Starts a pp recalculation (`POST /api/v1/admin/recalc`); the job it started, or the
/// one that runs already (then `started` is false).
pub async fn start_recalc(url: &str, token: &str, filters: &Value) -> anyhow::Result<Value> {
    let url = format!("{}/api/v1/admin/recalc", url.trim_end_matches('/'));
    let request = reqwest::Client::new().post(&url).json(filters);
    let (status, body) = admin_call(request, &url, token).await?;
    // 409: a job runs already; it is followed like a new one.
    if status.is_success() || (status.as_u16() == 409 && body["job"].is_object()) {
        return Ok(body);
    }
    Err(refused(&url, status, &body))
}

/// The running (or last) recalculation job (`GET /api/v1/admin/recalc`), `null` if none.
pub async fn recalc_status(url: &str, token: &str) -> anyhow::Result<Value> {
    let url = format!("{}/api/v1/admin/recalc", url.trim_end_matches('/'));
    let (status, body) = admin_call(reqwest::Client::new().get(&url), &url, token).await?;
    if !status.is_success() {
        return Err(refused(&url, status, &body));
    }
    Ok(body["job"].clone())
}

/// Follows job `id` until it is finished, drawing a progress bar on a terminal (a line
/// every few seconds otherwise). A node that stops answering for a while ends the
/// following, not the job.
pub async fn follow_recalc(url: &str, token: &str, id: i64) -> anyhow::Result<Value> {
    let terminal = std::io::stderr().is_terminal();
    let mut last_line = tokio::time::Instant::now();
    let mut failures = 0;
    loop {
        let job = match recalc_status(url, token).await {
            Ok(job) => {
                failures = 0;
                job
            }
            Err(e) if failures < MAX_FAILED_POLLS => {
                failures += 1;
                tracing::debug!("reading the progress: {e}");
                tokio::time::sleep(RECALC_POLL).await;
                continue;
            }
            Err(e) => return Err(e.context("the job goes on in the cluster; stopped following")),
        };
        anyhow::ensure!(
            job["id"].as_i64() == Some(id),
            "job {id} is no longer the current one"
        );
        let finished = job["state"] == "finished";
        let line = progress_line(&job);
        if terminal {
            let mut err = std::io::stderr();
            let _ = write!(err, "\r{line}\x1b[K");
            let _ = err.flush();
        } else if finished || last_line.elapsed() >= RECALC_LOG_EVERY {
            last_line = tokio::time::Instant::now();
            eprintln!("{line}");
        }
        if finished {
            if terminal {
                eprintln!();
            }
            return Ok(job);
        }
        tokio::time::sleep(RECALC_POLL).await;
    }
}

/// `[#####-----]  12,345/20,000  61.7%  1,234/s  ETA 6s`: one line of a job's progress.
pub fn progress_line(job: &Value) -> String {
    let done = job["done"].as_i64().unwrap_or(0).max(0);
    let total = job["total"].as_i64().unwrap_or(0).max(0);
    let fraction = if total == 0 {
        1.0
    } else {
        (done as f64 / total as f64).clamp(0.0, 1.0)
    };
    let filled = (fraction * BAR_WIDTH as f64).round() as usize;
    let bar = format!("{}{}", "#".repeat(filled), "-".repeat(BAR_WIDTH - filled));
    let rate = job["rate"].as_f64().unwrap_or(0.0);
    let eta = match job["eta_secs"].as_f64() {
        _ if job["state"] == "finished" => "done".to_owned(),
        Some(secs) => format!("ETA {}", duration_text(secs)),
        None => "ETA -".to_owned(),
    };
    format!(
        "[{bar}] {}/{} {:5.1}% {}/s {eta}",
        thousands(done),
        thousands(total),
        fraction * 100.0,
        thousands(rate.round() as i64),
    )
}

fn thousands(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 { format!("-{out}") } else { out }
}

fn duration_text(secs: f64) -> String {
    let secs = secs.max(0.0).round() as u64;
    match secs {
        0..60 => format!("{secs}s"),
        60..3600 => format!("{}m{:02}s", secs / 60, secs % 60),
        _ => format!("{}h{:02}m", secs / 3600, secs / 60 % 60),
    }
}

/// The cluster view as a table, one node a line.
pub fn cluster_table(view: &Value) -> String {
    let mut rows = vec![
        [
            "NODE", "STATUS", "ROLES", "SHARDS", "USERS", "CHANNELS", "SPECTATE", "MATCHES", "HTTP",
        ]
        .map(str::to_owned),
    ];
    for node in view["nodes"].as_array().into_iter().flatten() {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".to_owned(),
            other => other.to_string(),
        };
        let roles = node["roles"]
            .as_array()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "-".into());
        let e = &node["entities"];
        rows.push([
            text(&node["name"]),
            text(&node["status"]),
            roles,
            text(&node["shards"]),
            text(&e["user"]),
            text(&e["channel"]),
            text(&e["spectate"]),
            text(&e["match"]),
            text(&node["http_addr"]),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "cluster seen from {} (coordinator {}, table epoch {}, {} online)\n",
        view["node"].as_str().unwrap_or("?"),
        view["coordinator"].as_str().unwrap_or("-"),
        view["table_epoch"],
        view["online"],
    );
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_node() {
        let view = serde_json::json!({
            "node": "a", "coordinator": "a", "table_epoch": 3, "online": 12,
            "nodes": [
                {"name": "a", "status": "up", "roles": ["gateway", "actors"], "shards": 128,
                 "entities": {"user": 7, "channel": 4, "spectate": 0, "match": 1},
                 "http_addr": "127.0.0.1:8080"},
                {"name": "b", "status": "down"}
            ]
        });
        let table = cluster_table(&view);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].contains("coordinator a, table epoch 3, 12 online"));
        assert!(lines[1].starts_with("NODE"));
        assert!(
            lines[2].starts_with("a ")
                && lines[2].contains("gateway,actors")
                && lines[2].contains("128")
        );
        assert!(lines[3].starts_with("b ") && lines[3].contains("down"));
    }

    #[test]
    fn a_progress_line_has_the_bar_the_counts_the_rate_and_the_eta() {
        let job = serde_json::json!({
            "state": "running", "done": 12_345, "total": 20_000, "rate": 1234.4,
            "eta_secs": 6.2
        });
        let line = progress_line(&job);
        assert!(
            line.starts_with("[###################-----------]"),
            "{line}"
        );
        assert!(line.contains("12,345/20,000"), "{line}");
        assert!(line.contains("61.7%"), "{line}");
        assert!(line.contains("1,234/s"), "{line}");
        assert!(line.ends_with("ETA 6s"), "{line}");
        let finished = serde_json::json!({"state": "finished", "done": 0, "total": 0});
        assert!(progress_line(&finished).ends_with("done"));
        assert_eq!(duration_text(3725.0), "1h02m");
        assert_eq!(thousands(1_000_000), "1,000,000");
    }
}
