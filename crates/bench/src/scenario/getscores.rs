//! `getscores`: players asking for a ranked map's leaderboard
//! (`GET /web/osu-osz2-getscores.php`), as every client does when a map is selected in
//! song select. A closed loop over `--connections`; each request is by the next of
//! `--players` accounts, each of which has a pass on the board, so every reply carries
//! the full board (50 scores) and the asker's personal best.
//!
//! Setup: the map must be known to the server and ranked (imported with `peace beatmaps
//! import FILE --status ranked` before the server starts); the players are registered,
//! and each submits one pass unless the board is full already. The baseline then answers
//! the same requests with the server's own reply (the same bytes), in alternating slices
//! as in `poll`.

use std::path::PathBuf;

use clap::Args;

use crate::Common;
use crate::baseline::Baseline;
use crate::http::Target;
use crate::probe::{self, Scrape};
use crate::report::Report;
use crate::scenario::{ClosedLoop, MakeRequest, Prepared};
use crate::scores::{self, BenchMap};

/// Share of the baseline's request rate the server must keep (the scores issue).
const TARGET_RATIO: f64 = 0.5;
/// Scores a board shows.
const BOARD_SIZE: usize = 50;

#[derive(Debug, Clone, Args)]
pub struct GetScoresArgs {
    /// The `.osu` file the server imported as ranked.
    #[arg(long, default_value = scores::DEFAULT_MAP)]
    pub map: PathBuf,
    /// Players asking in turn, each with a pass on the board.
    #[arg(long, default_value_t = 64)]
    pub players: usize,
    /// Random bytes of each setup pass's replay.
    #[arg(long, default_value_t = 4096)]
    pub replay_bytes: usize,
}

pub fn add(report: &mut Report, prefix: &str, r: &ClosedLoop) {
    report.int(&format!("{prefix}_requests"), r.answered);
    report.int(&format!("{prefix}_errors"), r.errors);
    report.int(&format!("{prefix}_non_2xx"), r.non_2xx);
    report.num(&format!("{prefix}_per_sec"), r.rate());
    r.latency.fields(prefix, report);
    if let Some(e) = &r.first_error {
        report.text(&format!("{prefix}_first_error"), e.clone());
    }
}

pub async fn run(common: &Common, args: &GetScoresArgs) -> anyhow::Result<Report> {
    let target = Target::parse(&common.url).await?;
    let accounts = common.accounts()?;
    let map = BenchMap::read(&args.map)?;
    let players = args.players.max(1);
    let mut report = Report::new("getscores");
    report.text("url", common.url.clone());
    report.text("map_md5", map.md5.clone());
    report.int("players", players as u64);
    report.int("connections", common.connections as u64);
    report.num("duration_s", common.duration);

    accounts
        .ensure(&target, players, common.setup_connections)
        .await?;
    let (header, _) = scores::ranked_board(&target, &accounts, 0, &map).await?;
    let wanted = players.min(BOARD_SIZE);
    let mut submitted = 0;
    if header.count.unwrap_or(0) < wanted {
        let submissions = scores::Submissions::new(&accounts, players, &map, args.replay_bytes)?;
        scores::submit_each(&target, &submissions, players, common.setup_connections).await?;
        submitted = players;
    }
    report.int("setup_submissions", submitted as u64);
    let (header, board) = scores::ranked_board(&target, &accounts, 0, &map).await?;
    let count = header.count.unwrap_or(0);
    anyhow::ensure!(
        count >= wanted,
        "the board shows {count} scores after the setup, expected {wanted}"
    );
    report.int("board_scores", count as u64);
    report.int("reply_bytes", board.len() as u64);

    let paths: std::sync::Arc<Vec<String>> = std::sync::Arc::new(
        (0..players)
            .map(|i| scores::getscores_path(&accounts, i, &map))
            .collect(),
    );
    let make: MakeRequest = std::sync::Arc::new(move |seq| {
        Ok(Prepared::Get(
            paths[(seq % paths.len() as u64) as usize].clone(),
        ))
    });
    // Replies differ in the asker's personal best, so only the header is compared.
    let check = scores::check_board(&header);
    let baseline = if common.no_baseline {
        None
    } else {
        let baseline = Baseline::start_with_board(board)?;
        let base_target = Target::parse(&baseline.url).await?;
        Some((baseline, base_target))
    };

    // Server and baseline take turns, slice by slice (see INTERLEAVED_SLICES).
    let slices = if baseline.is_some() {
        super::INTERLEAVED_SLICES
    } else {
        1
    };
    let slice = common.duration() / slices;
    let (mut server, mut base) = (ClosedLoop::default(), ClosedLoop::default());
    let before = Scrape::take(&target).await;
    for i in 0..slices {
        let warmup = if i == 0 {
            common.warmup()
        } else {
            super::SLICE_WARMUP
        };
        let c = common.connections;
        server.merge(
            super::request_loop(&target, c, warmup, slice, make.clone(), check.clone()).await?,
        );
        if let Some((_, base_target)) = &baseline {
            base.merge(
                super::request_loop(base_target, c, warmup, slice, make.clone(), check.clone())
                    .await?,
            );
        }
    }
    let after = Scrape::take(&target).await;
    add(&mut report, "server", &server);
    probe::db_fields(
        &mut report,
        "server",
        before.as_ref(),
        after.as_ref(),
        server.sent,
    );
    if baseline.is_some() {
        add(&mut report, "baseline", &base);
        let ratio = server.rate() / base.rate().max(f64::EPSILON);
        report.num("server_vs_baseline", ratio);
        report.flag("target_met", server.errors == 0 && ratio >= TARGET_RATIO);
    }
    Ok(report)
}
