//! What the bench knows of the score endpoints (`osu.<domain>/web/*`): the map the score
//! scenarios play, the leaderboard request, and score submissions. The submission form
//! comes from `peace_scores::client_form`, the same writer the end-to-end tests use;
//! only its `multipart/form-data` encoding is here.

use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use bytes::Bytes;
use md5::{Digest, Md5};
use peace_scores::client_form::{ClientPlay, PartValue};
use peace_scores::grade::{self, Counts};
use peace_scores::mode::Mode;
use peace_scores::mods::Mods;
use peace_scores::submission::ScoreText;

use crate::client::Accounts;
use crate::http::{Conn, Target};
use crate::scenario::{CheckReply, Prepared};

/// The map the score scenarios play by default: the test suite's osu!standard map, run
/// from the repository's root.
pub const DEFAULT_MAP: &str = "crates/scores/tests/maps/std.osu";
pub const GETSCORES_PATH: &str = "/web/osu-osz2-getscores.php";
pub const SUBMIT_PATH: &str = "/web/osu-submit-modular-selector.php";
/// The client build the submissions claim (the cipher's key ends in it).
const OSU_VERSION: &str = "20231030";
/// The client hash the submissions carry (encrypted into `s`, part of the checksum).
const CLIENT_HASH: &str = "peace-bench:";
/// Separates the parts of a submission; the replay is checked not to contain it.
const BOUNDARY: &str = "----peace-bench-7f3c9a51d2e84b06";
/// The submissions' content type.
const CONTENT_TYPE: &str = "multipart/form-data; boundary=----peace-bench-7f3c9a51d2e84b06";
/// The ranked statuses in getscores' numbering (ranked 2, approved 3).
const RANKED_GETSCORES: [&str; 2] = ["2", "3"];

/// The map both scores scenarios use: a `.osu` file the server was given with
/// `peace beatmaps import FILE --status ranked` (docs/benchmarks.md).
#[derive(Debug, Clone)]
pub struct BenchMap {
    pub md5: String,
}

impl BenchMap {
    pub fn read(path: &Path) -> anyhow::Result<BenchMap> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("reading the map {} (--map)", path.display()))?;
        Ok(BenchMap {
            md5: hex::encode(Md5::digest(&bytes)),
        })
    }
}

/// The path of a getscores request for the global board, as account `index` asks it.
pub fn getscores_path(accounts: &Accounts, index: usize, map: &BenchMap) -> String {
    format!(
        "{GETSCORES_PATH}?s=0&vv=4&v=1&c={}&f=bench.osu&m=0&i=0&mods=0&h=&a=0&us={}&ha={}",
        map.md5,
        accounts.name(index),
        accounts.password_md5()
    )
}

/// The header of a getscores reply: `status|false|id|set|count|…`.
#[derive(Debug, Clone)]
pub struct BoardHeader {
    /// The status in getscores' numbering (`-1` unknown map).
    pub status: String,
    /// Scores on the board (absent for a map without one).
    pub count: Option<usize>,
}

impl BoardHeader {
    pub fn read(body: &[u8]) -> Option<BoardHeader> {
        let first = body.split(|&b| b == b'\n').next()?;
        let first = std::str::from_utf8(first).ok()?;
        let mut fields = first.split('|');
        let status = fields.next()?.to_owned();
        let count = fields.nth(3).and_then(|c| c.parse().ok());
        Some(BoardHeader { status, count })
    }

    pub fn is_ranked(&self) -> bool {
        RANKED_GETSCORES.contains(&self.status.as_str()) && self.count.is_some()
    }
}

/// Asks for the map's board as account `index`; fails with the command that makes the
/// map known if the server does not show it as ranked.
pub async fn ranked_board(
    target: &Arc<Target>,
    accounts: &Accounts,
    index: usize,
    map: &BenchMap,
) -> anyhow::Result<(BoardHeader, Bytes)> {
    let mut conn = Conn::open(target).await?;
    let reply = conn.get(&getscores_path(accounts, index, map)).await?;
    let header = BoardHeader::read(&reply.body);
    match header {
        Some(header) if reply.status == 200 && header.is_ranked() => Ok((header, reply.body)),
        _ => bail!(
            "the server does not show map {} as ranked (HTTP {}: {:?}); import it before \
             starting the server: peace --config CONFIG beatmaps import FILE --status ranked",
            map.md5,
            reply.status,
            String::from_utf8_lossy(&reply.body[..reply.body.len().min(80)])
        ),
    }
}

/// A getscores reply is taken if it is a board with the expected status and count of
/// scores (the bench checks the header only, to spend its share of the cores on load).
pub fn check_board(expected: &BoardHeader) -> CheckReply {
    let prefix = format!("{}|false|", expected.status);
    let count = expected.count;
    Arc::new(move |body: &[u8]| {
        let header = BoardHeader::read(body);
        match header {
            Some(h) if body.starts_with(prefix.as_bytes()) && h.count == count => Ok(()),
            _ => Err(anyhow::anyhow!(
                "not the board: {:?}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            )),
        }
    })
}

/// A submission is taken if it is answered with the chart of a stored pass.
pub fn check_chart() -> CheckReply {
    Arc::new(|body: &[u8]| {
        if body.starts_with(b"beatmapId:") {
            Ok(())
        } else {
            Err(anyhow::anyhow!(
                "not a chart: {:?}",
                String::from_utf8_lossy(&body[..body.len().min(80)])
            ))
        }
    })
}

/// Builds distinct passes of the map by the bench's accounts.
#[derive(Debug, Clone)]
pub struct Submissions {
    accounts: Accounts,
    players: usize,
    map: BenchMap,
    replay: Vec<u8>,
    /// Part of every play's client time: distinct per run, so a run never resends an
    /// earlier run's play (the server would answer it as a resend, without storing it).
    run: u64,
}

impl Submissions {
    /// Passes by accounts `0..players`, each with a replay of `replay_bytes` random bytes
    /// (a real replay is LZMA, so random bytes are the right kind of incompressible).
    pub fn new(
        accounts: &Accounts,
        players: usize,
        map: &BenchMap,
        replay_bytes: usize,
    ) -> anyhow::Result<Submissions> {
        let mut replay = vec![0u8; replay_bytes.max(1)];
        rand::Rng::fill(&mut rand::rng(), replay.as_mut_slice());
        if replay
            .windows(BOUNDARY.len())
            .any(|w| w == BOUNDARY.as_bytes())
        {
            bail!("the random replay happens to contain the form's boundary; run again");
        }
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_secs();
        Ok(Submissions {
            accounts: accounts.clone(),
            players: players.max(1),
            map: map.clone(),
            replay,
            run,
        })
    }

    /// Submission `seq` as a request of a closed loop.
    pub fn request(&self, seq: u64) -> anyhow::Result<Prepared> {
        Ok(Prepared::Post {
            path: SUBMIT_PATH.to_owned(),
            content_type: CONTENT_TYPE.to_owned(),
            body: self.body(seq)?,
        })
    }

    /// The body of submission `seq`: a pass by account `seq % players`, its score and so
    /// its online checksum distinct from every other of this run.
    pub fn body(&self, seq: u64) -> anyhow::Result<Bytes> {
        let index = (seq % self.players as u64) as usize;
        let name = self.accounts.name(index);
        let counts = Counts {
            n300: 10 + (seq % 3) as u32,
            n100: 1,
            n50: 0,
            ngeki: 2,
            nkatu: 1,
            nmiss: 0,
        };
        let mods = Mods::empty();
        let mut text = ScoreText {
            beatmap_md5: self.map.md5.clone(),
            player_name: name.clone(),
            supporter: false,
            online_checksum: String::new(),
            counts,
            score: 100_000 + seq,
            max_combo: 20 + (seq % 7) as u32,
            perfect: false,
            grade: grade::grade(Mode::Osu, &counts, mods),
            mods,
            passed: true,
            mode: Mode::Osu,
            client_time: format!("{:012}", self.run % 1_000_000_000_000),
            osu_version: OSU_VERSION.to_owned(),
            client_flags: 0,
        };
        text.online_checksum = text.expected_online_checksum(&name, OSU_VERSION, CLIENT_HASH, "");
        let mut iv = [0u8; peace_scores::crypto::BLOCK_SIZE];
        rand::Rng::fill(&mut rand::rng(), &mut iv);
        let play = ClientPlay {
            text: &text,
            password_md5: self.accounts.password_md5(),
            client_hash: CLIENT_HASH,
            iv,
            replay: &self.replay,
            fail_time_ms: 0,
            play_time_ms: 30_000,
        };
        multipart(&play)
    }
}

/// Sends submissions `0..count` over `connections` connections; every one must be
/// answered with a chart.
pub async fn submit_each(
    target: &Arc<Target>,
    submissions: &Submissions,
    count: usize,
    connections: usize,
) -> anyhow::Result<()> {
    let next = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let check = check_chart();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..connections.clamp(1, count.max(1)) {
        let (target, submissions, next, check) = (
            Arc::clone(target),
            submissions.clone(),
            Arc::clone(&next),
            Arc::clone(&check),
        );
        workers.spawn(async move {
            let mut conn = Conn::open(&target).await?;
            loop {
                let seq = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if seq >= count as u64 {
                    return Ok::<_, anyhow::Error>(());
                }
                let body = submissions.body(seq)?;
                let reply = conn.post(SUBMIT_PATH, CONTENT_TYPE, body).await?;
                if reply.status != 200 {
                    bail!("a setup submission was answered HTTP {}", reply.status);
                }
                check(&reply.body)?;
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done??;
    }
    Ok(())
}

/// The play's form as a `multipart/form-data` body with [`BOUNDARY`].
fn multipart(play: &ClientPlay<'_>) -> anyhow::Result<Bytes> {
    let parts = play.parts()?;
    let mut out = Vec::with_capacity(play.replay.len() + 2048);
    for part in &parts {
        out.extend_from_slice(format!("--{BOUNDARY}\r\n").as_bytes());
        match &part.value {
            PartValue::Text(text) => {
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"\r\n\r\n{text}\r\n",
                        part.name
                    )
                    .as_bytes(),
                );
            }
            PartValue::File { file_name, bytes } => {
                out.extend_from_slice(
                    format!(
                        "Content-Disposition: form-data; name=\"{}\"; filename=\"{file_name}\"\r\n\
                         Content-Type: application/octet-stream\r\n\r\n",
                        part.name
                    )
                    .as_bytes(),
                );
                out.extend_from_slice(bytes);
                out.extend_from_slice(b"\r\n");
            }
        }
    }
    out.extend_from_slice(format!("--{BOUNDARY}--\r\n").as_bytes());
    Ok(out.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_board_header_is_read() {
        let h = BoardHeader::read(b"2|false|0|0|50|0|\n0\ntitle\n").unwrap();
        assert_eq!((h.status.as_str(), h.count), ("2", Some(50)));
        assert!(h.is_ranked());
        let unknown = BoardHeader::read(b"-1|false").unwrap();
        assert!(!unknown.is_ranked());
        let pending = BoardHeader::read(b"0|false").unwrap();
        assert!(!pending.is_ranked());
    }

    #[test]
    fn submissions_differ_and_decrypt() {
        let accounts = Accounts::new("t", "pw").unwrap();
        let map = BenchMap {
            md5: "0123456789abcdef0123456789abcdef".into(),
        };
        let subs = Submissions::new(&accounts, 4, &map, 64).unwrap();
        let body = |seq| subs.body(seq).unwrap();
        let (a, b) = (body(0), body(1));
        assert_ne!(a, b);
        let text = String::from_utf8_lossy(&a);
        assert!(text.starts_with(&format!("--{BOUNDARY}\r\n")));
        assert!(text.ends_with(&format!("--{BOUNDARY}--\r\n")));
        assert_eq!(text.matches("form-data; name=\"score\"").count(), 2);
        assert_eq!(
            CONTENT_TYPE,
            format!("multipart/form-data; boundary={BOUNDARY}")
        );
    }
}
