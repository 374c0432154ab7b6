//! `submit`: score submissions (`POST /web/osu-submit-modular-selector.php`), each a
//! valid pass of the ranked map with an online checksum of its own, so that every one is
//! stored (a resent play would be answered from the first without being stored again).
//!
//! * By default, a closed loop over `--connections`: each submission is by the next of
//!   `--players` accounts. The players are logged in first, as a player who has just
//!   finished a map is, so the server also tells their sessions about their new stats.
//! * `--burst N`: `--rounds` times, N players submit at the same moment, each on a
//!   connection of its own (the end of an N-player multiplayer match); every submission
//!   must be answered 2xx with its chart.
//!
//! The map must be known to the server and ranked (see `getscores`). There is no
//! baseline: the target is a latency, not a share of the machine.

use std::path::PathBuf;
use std::sync::Arc;

use clap::Args;

use crate::Common;
use crate::http::Target;
use crate::probe::{self, Scrape};
use crate::report::Report;
use crate::scenario::MakeRequest;
use crate::scores::{self, BenchMap};

/// The slowest submission (p99) allowed on SQLite with the map known (the scores issue).
const TARGET_P99_MS: f64 = 50.0;

#[derive(Debug, Clone, Args)]
pub struct SubmitArgs {
    /// The `.osu` file the server imported as ranked.
    #[arg(long, default_value = scores::DEFAULT_MAP)]
    pub map: PathBuf,
    /// Players submitting in turn (logged in first).
    #[arg(long, default_value_t = 64)]
    pub players: usize,
    /// Random bytes of each replay (a real one is tens to hundreds of KB of LZMA).
    #[arg(long, default_value_t = 65536)]
    pub replay_bytes: usize,
    /// Instead of the closed loop: bursts of this many submissions released together.
    #[arg(long, default_value_t = 0)]
    pub burst: usize,
    /// Bursts sent with `--burst`.
    #[arg(long, default_value_t = 20)]
    pub rounds: u32,
}

pub async fn run(common: &Common, args: &SubmitArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&common.url).await?;
    let accounts = common.accounts()?;
    let map = BenchMap::read(&args.map)?;
    let players = args.players.max(args.burst).max(1);
    let mut report = Report::new("submit");
    report.text("url", common.url.clone());
    report.text("map_md5", map.md5.clone());
    report.int("players", players as u64);
    report.int("replay_bytes", args.replay_bytes as u64);

    accounts
        .ensure(&target, players, common.setup_connections)
        .await?;
    scores::ranked_board(&target, &accounts, 0, &map).await?;
    let sessions = accounts
        .login_all(&target, 0..players, common.setup_connections)
        .await?;
    super::drain_all(&target, &sessions, common.setup_connections).await?;

    let submissions = Arc::new(scores::Submissions::new(
        &accounts,
        players,
        &map,
        args.replay_bytes,
    )?);
    let make: MakeRequest = Arc::new(move |seq| submissions.request(seq));
    let check = scores::check_chart();
    let before = Scrape::take(&target).await;
    if args.burst > 0 {
        let result = super::bursts(&target, args.burst, args.rounds, make, check).await?;
        let after = Scrape::take(&target).await;
        let sent = result.answered + result.errors;
        probe::db_fields(&mut report, "server", before.as_ref(), after.as_ref(), sent);
        report.int("burst", args.burst as u64);
        report.int("rounds", u64::from(args.rounds));
        report.int("submissions", result.answered);
        report.int("errors", result.errors);
        report.int("non_2xx", result.non_2xx);
        result.latency.fields("submit", &mut report);
        result.burst_latency.fields("burst", &mut report);
        if let Some(e) = &result.first_error {
            report.text("first_error", e.clone());
        }
        report.flag(
            "target_met",
            result.errors == 0 && result.latency.ms(0.99) <= TARGET_P99_MS,
        );
    } else {
        report.int("connections", common.connections as u64);
        report.num("duration_s", common.duration);
        let result = super::request_loop(
            &target,
            common.connections,
            common.warmup(),
            common.duration(),
            make,
            check,
        )
        .await?;
        let after = Scrape::take(&target).await;
        probe::db_fields(
            &mut report,
            "server",
            before.as_ref(),
            after.as_ref(),
            result.sent,
        );
        report.int("submissions", result.answered);
        report.int("errors", result.errors);
        report.int("non_2xx", result.non_2xx);
        report.num("submissions_per_sec", result.rate());
        result.latency.fields("submit", &mut report);
        if let Some(e) = &result.first_error {
            report.text("first_error", e.clone());
        }
        report.flag(
            "target_met",
            result.errors == 0 && result.latency.ms(0.99) <= TARGET_P99_MS,
        );
    }
    if !common.keep_online {
        super::logout_all(&target, &sessions, common.setup_connections).await;
    }
    Ok(report)
}
