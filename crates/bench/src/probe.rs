//! What the bench reads from outside the protocol: the server process's resident memory
//! (`/proc/PID/status`), its `/metrics` histograms, and bcrypt's speed on this machine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::http::{Conn, Target};

/// Resident memory of process `pid`, in KiB (`VmRSS`).
pub fn rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no VmRSS in /proc/{pid}/status"))
}

/// A scrape of `/metrics`, if the server has one (other implementations may not).
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    text: String,
}

impl Scrape {
    pub async fn take(target: &Arc<Target>) -> Option<Scrape> {
        let mut conn = Conn::open(target).await.ok()?;
        let reply = conn.get("/metrics").await.ok()?;
        (reply.status == 200).then(|| Scrape {
            text: String::from_utf8_lossy(&reply.body).into_owned(),
        })
    }

    /// The value of a sample line `name` (with its labels exactly as rendered, if any).
    pub fn value(&self, series: &str) -> Option<f64> {
        self.text.lines().find_map(|l| {
            let rest = l.strip_prefix(series)?;
            rest.strip_prefix(' ')?.trim().parse().ok()
        })
    }

    /// Cumulative `(le, count)` buckets of histogram `name`, `+Inf` last.
    fn buckets(&self, name: &str) -> Vec<(f64, f64)> {
        let prefix = format!("{name}_bucket{{le=\"");
        self.text
            .lines()
            .filter_map(|l| {
                let rest = l.strip_prefix(&prefix)?;
                let (le, count) = rest.split_once("\"} ")?;
                let le = if le == "+Inf" {
                    f64::INFINITY
                } else {
                    le.parse().ok()?
                };
                Some((le, count.trim().parse().ok()?))
            })
            .collect()
    }
}

/// What a histogram recorded between two scrapes.
#[derive(Debug, Clone)]
pub struct HistogramDelta {
    /// Cumulative `(le, count)`.
    buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

impl HistogramDelta {
    pub fn between(before: &Scrape, after: &Scrape, name: &str) -> Option<HistogramDelta> {
        let a = after.buckets(name);
        if a.is_empty() {
            return None;
        }
        let b = before.buckets(name);
        let buckets = a
            .iter()
            .map(|&(le, n)| {
                let old = b.iter().find(|(l, _)| *l == le).map_or(0.0, |(_, n)| *n);
                (le, n - old)
            })
            .collect();
        let delta =
            |series: &str| after.value(series).unwrap_or(0.0) - before.value(series).unwrap_or(0.0);
        Some(HistogramDelta {
            buckets,
            count: delta(&format!("{name}_count")),
            sum: delta(&format!("{name}_sum")),
        })
    }

    /// The upper bound of the bucket holding quantile `q`, in milliseconds: the
    /// honest reading of a bucketed histogram ("at most this").
    pub fn quantile_upper_ms(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last()?.1;
        if total <= 0.0 {
            return None;
        }
        let rank = q * total;
        self.buckets
            .iter()
            .find(|(_, n)| *n >= rank)
            .map(|(le, _)| le * 1000.0)
    }
}

/// The server's database work between two scrapes, per request sent in between:
/// `{prefix}_db_queries_per_request`, the mean and the p99 bucket of one query (each
/// includes the wait for a pooled connection; `peace_db_query_duration_seconds`).
pub fn db_fields(
    report: &mut crate::report::Report,
    prefix: &str,
    before: Option<&Scrape>,
    after: Option<&Scrape>,
    requests: u64,
) {
    let Some(delta) = before
        .zip(after)
        .and_then(|(b, a)| HistogramDelta::between(b, a, DB_QUERY_METRIC))
    else {
        return;
    };
    report.num(
        &format!("{prefix}_db_queries_per_request"),
        delta.count / (requests.max(1) as f64),
    );
    if delta.count > 0.0 {
        report.num(
            &format!("{prefix}_db_query_mean_ms"),
            delta.sum / delta.count * 1000.0,
        );
    }
    if let Some(p99) = delta.quantile_upper_ms(0.99) {
        report.num(&format!("{prefix}_db_query_p99_ms_at_most"), p99);
    }
}

/// Every database operation of the server, as `/metrics` names it.
const DB_QUERY_METRIC: &str = "peace_db_query_duration_seconds";

/// bcrypt verifications per second at `cost` on all cores, for `duration`: the ceiling
/// for cold logins.
pub fn bcrypt_rate(cost: u32, duration: Duration) -> anyhow::Result<f64> {
    let hash = bcrypt::hash("bench-password-md5", cost)?;
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
    let started = Instant::now();
    let counts: Vec<u64> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut n = 0u64;
                    while started.elapsed() < duration {
                        // Verified like a login: the result matters, not only the time.
                        if bcrypt::verify("bench-password-md5", &hash).unwrap_or(false) {
                            n += 1;
                        }
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap_or(0)).collect()
    });
    Ok(counts.iter().sum::<u64>() as f64 / started.elapsed().as_secs_f64())
}
