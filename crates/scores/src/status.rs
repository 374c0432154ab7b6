//! A beatmap's ranked status, and the numberings (and names) osu! uses for it.
//!
//! Each numbering lives in exactly one function pair below, so a reply can never mix them:
//!
//! | status | osu!api v1 `approved` | osu!api v2 `status` | getscores header | getbeatmapinfo | osu!direct `r` |
//! |---|---|---|---|---|---|
//! | not submitted | — | — | −1 | — | — |
//! | pending (incl. WIP, graveyard) | 0 (−1 WIP, −2 graveyard) | `pending` (`wip`, `graveyard`) | 0 | 0 | 2 (5 graveyard) |
//! | update available | — | — | 1 | — | — |
//! | ranked | 1 | `ranked` | 2 | 1 | 0 (7 "ranked, played") |
//! | approved | 2 | `approved` | 3 | 2 | — |
//! | qualified | 3 | `qualified` | 4 | 3 | 3 |
//! | loved | 4 | `loved` | 5 | 4 | 8 |
//!
//! Sources: bancho.py's `RankedStatus` (getscores numbering, `from_osuapi`,
//! `from_osudirect`) and its getbeatmapinfo handler, which converts to the osu!api
//! numbering before answering; the api v1 numbering also as documented by osu_ex; the
//! v2 names are osu-web's `Beatmapset::STATES` (the same numbers as v1, named).

/// A beatmap's ranked status as the server keeps it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RankedStatus {
    /// The server does not know the map.
    NotSubmitted,
    /// Pending, WIP or graveyard: no leaderboard.
    Pending,
    /// The server knows a newer version of the map than the client has.
    UpdateAvailable,
    /// Ranked.
    Ranked,
    /// Approved.
    Approved,
    /// Qualified.
    Qualified,
    /// Loved.
    Loved,
}

/// The osu!direct search's `r` filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DirectFilter {
    /// `r=0`: ranked.
    Ranked,
    /// `r=2`: pending.
    Pending,
    /// `r=3`: qualified.
    Qualified,
    /// `r=4`: every status.
    All,
    /// `r=5`: graveyard.
    Graveyard,
    /// `r=7`: ranked maps the player has played.
    RankedPlayed,
    /// `r=8`: loved.
    Loved,
}

impl RankedStatus {
    /// From osu!api v1's `approved`; graveyard (−2) and WIP (−1) are pending here. `None`
    /// for a number the api does not use.
    pub fn from_api_v1(approved: i32) -> Option<RankedStatus> {
        Some(match approved {
            -2..=0 => RankedStatus::Pending,
            1 => RankedStatus::Ranked,
            2 => RankedStatus::Approved,
            3 => RankedStatus::Qualified,
            4 => RankedStatus::Loved,
            _ => return None,
        })
    }

    /// To osu!api v1's `approved`. `None` for the two statuses only this server has.
    pub fn to_api_v1(self) -> Option<i32> {
        Some(match self {
            RankedStatus::Pending => 0,
            RankedStatus::Ranked => 1,
            RankedStatus::Approved => 2,
            RankedStatus::Qualified => 3,
            RankedStatus::Loved => 4,
            RankedStatus::NotSubmitted | RankedStatus::UpdateAvailable => return None,
        })
    }

    /// From osu!api v2's `status` name; graveyard and WIP are pending here, as in v1.
    /// `None` for a name the api does not use.
    pub fn from_api_v2(status: &str) -> Option<RankedStatus> {
        Some(match status {
            "graveyard" | "wip" | "pending" => RankedStatus::Pending,
            "ranked" => RankedStatus::Ranked,
            "approved" => RankedStatus::Approved,
            "qualified" => RankedStatus::Qualified,
            "loved" => RankedStatus::Loved,
            _ => return None,
        })
    }

    /// Whether a source may still change the status: pending (with WIP and graveyard,
    /// which a mapper can revive) and qualified maps, which are re-asked from the
    /// sources now and then. Ranked, approved and loved maps are settled.
    pub fn may_change(self) -> bool {
        matches!(self, RankedStatus::Pending | RankedStatus::Qualified)
    }

    /// The number in the first field of the `/web/osu-osz2-getscores.php` header.
    pub fn to_getscores(self) -> i32 {
        match self {
            RankedStatus::NotSubmitted => -1,
            RankedStatus::Pending => 0,
            RankedStatus::UpdateAvailable => 1,
            RankedStatus::Ranked => 2,
            RankedStatus::Approved => 3,
            RankedStatus::Qualified => 4,
            RankedStatus::Loved => 5,
        }
    }

    /// The inverse of [`RankedStatus::to_getscores`].
    pub fn from_getscores(n: i32) -> Option<RankedStatus> {
        Some(match n {
            -1 => RankedStatus::NotSubmitted,
            0 => RankedStatus::Pending,
            1 => RankedStatus::UpdateAvailable,
            2 => RankedStatus::Ranked,
            3 => RankedStatus::Approved,
            4 => RankedStatus::Qualified,
            5 => RankedStatus::Loved,
            _ => return None,
        })
    }

    /// The status field of a `/web/osu-getbeatmapinfo.php` line: the osu!api numbering
    /// (bancho.py converts to it there). `None` for a map that should get no line.
    pub fn to_getbeatmapinfo(self) -> Option<i32> {
        self.to_api_v1()
    }

    /// Whether scores on the map give pp (and ranked score): ranked and approved only.
    /// Loved maps keep a leaderboard but give no pp, as on bancho.py.
    pub fn awards_pp(self) -> bool {
        matches!(self, RankedStatus::Ranked | RankedStatus::Approved)
    }

    /// Whether the map keeps a leaderboard whose bests count: ranked, approved and loved.
    pub fn has_leaderboard(self) -> bool {
        matches!(
            self,
            RankedStatus::Ranked | RankedStatus::Approved | RankedStatus::Loved
        )
    }

    /// Whether getscores lists scores: every leaderboard status and qualified (bancho.py
    /// answers only `status|false` below ranked).
    pub fn shows_scores(self) -> bool {
        self.has_leaderboard() || self == RankedStatus::Qualified
    }
}

impl DirectFilter {
    /// The filter for an `r` value.
    pub fn from_r(r: i32) -> Option<DirectFilter> {
        Some(match r {
            0 => DirectFilter::Ranked,
            2 => DirectFilter::Pending,
            3 => DirectFilter::Qualified,
            4 => DirectFilter::All,
            5 => DirectFilter::Graveyard,
            7 => DirectFilter::RankedPlayed,
            8 => DirectFilter::Loved,
            _ => return None,
        })
    }

    /// The `r` value of the filter.
    pub fn to_r(self) -> i32 {
        match self {
            DirectFilter::Ranked => 0,
            DirectFilter::Pending => 2,
            DirectFilter::Qualified => 3,
            DirectFilter::All => 4,
            DirectFilter::Graveyard => 5,
            DirectFilter::RankedPlayed => 7,
            DirectFilter::Loved => 8,
        }
    }

    /// The one status the filter asks for; `None` for [`DirectFilter::All`]. Graveyard is
    /// pending here; "ranked, played" is ranked (the played part is the caller's).
    pub fn status(self) -> Option<RankedStatus> {
        Some(match self {
            DirectFilter::Ranked | DirectFilter::RankedPlayed => RankedStatus::Ranked,
            DirectFilter::Pending | DirectFilter::Graveyard => RankedStatus::Pending,
            DirectFilter::Qualified => RankedStatus::Qualified,
            DirectFilter::Loved => RankedStatus::Loved,
            DirectFilter::All => return None,
        })
    }

    /// The `status` a cheesegull mirror is asked for (its `RankedStatus`, the osu!api v1
    /// number); `None` asks for every status. Unlike this server's own table, a mirror
    /// keeps graveyard (−2) apart from pending.
    pub fn mirror_status(self) -> Option<i32> {
        Some(match self {
            DirectFilter::Ranked | DirectFilter::RankedPlayed => 1,
            DirectFilter::Pending => 0,
            DirectFilter::Qualified => 3,
            DirectFilter::Graveyard => -2,
            DirectFilter::Loved => 4,
            DirectFilter::All => return None,
        })
    }

    /// The osu!api v1 numbers of the maps this server lists for the filter from its own
    /// table; `None` for every status. Ranked includes approved (the client has no
    /// filter of its own for them); graveyard is pending here, as the table keeps it.
    pub fn library_statuses(self) -> Option<&'static [i16]> {
        Some(match self {
            DirectFilter::Ranked | DirectFilter::RankedPlayed => &[1, 2],
            DirectFilter::Pending | DirectFilter::Graveyard => &[0],
            DirectFilter::Qualified => &[3],
            DirectFilter::Loved => &[4],
            DirectFilter::All => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use RankedStatus::*;

    const ALL: [RankedStatus; 7] = [
        NotSubmitted,
        Pending,
        UpdateAvailable,
        Ranked,
        Approved,
        Qualified,
        Loved,
    ];

    #[test]
    fn api_v1_numbering() {
        assert_eq!(RankedStatus::from_api_v1(-2), Some(Pending));
        assert_eq!(RankedStatus::from_api_v1(-1), Some(Pending));
        assert_eq!(RankedStatus::from_api_v1(0), Some(Pending));
        assert_eq!(RankedStatus::from_api_v1(1), Some(Ranked));
        assert_eq!(RankedStatus::from_api_v1(2), Some(Approved));
        assert_eq!(RankedStatus::from_api_v1(3), Some(Qualified));
        assert_eq!(RankedStatus::from_api_v1(4), Some(Loved));
        assert_eq!(RankedStatus::from_api_v1(5), None);
        assert_eq!(RankedStatus::from_api_v1(-3), None);
        for s in ALL {
            if let Some(n) = s.to_api_v1() {
                assert_eq!(RankedStatus::from_api_v1(n), Some(s));
            }
        }
        assert_eq!(NotSubmitted.to_api_v1(), None);
        assert_eq!(UpdateAvailable.to_api_v1(), None);
    }

    #[test]
    fn api_v2_names() {
        assert_eq!(RankedStatus::from_api_v2("graveyard"), Some(Pending));
        assert_eq!(RankedStatus::from_api_v2("wip"), Some(Pending));
        assert_eq!(RankedStatus::from_api_v2("pending"), Some(Pending));
        assert_eq!(RankedStatus::from_api_v2("ranked"), Some(Ranked));
        assert_eq!(RankedStatus::from_api_v2("approved"), Some(Approved));
        assert_eq!(RankedStatus::from_api_v2("qualified"), Some(Qualified));
        assert_eq!(RankedStatus::from_api_v2("loved"), Some(Loved));
        assert_eq!(RankedStatus::from_api_v2("Ranked"), None);
        assert_eq!(RankedStatus::from_api_v2("4"), None);
        assert_eq!(RankedStatus::from_api_v2(""), None);
        // The same status as the v1 number osu-web stores next to each name.
        let v1 = [
            ("graveyard", -2),
            ("wip", -1),
            ("pending", 0),
            ("ranked", 1),
            ("approved", 2),
            ("qualified", 3),
            ("loved", 4),
        ];
        for (name, number) in v1 {
            assert_eq!(
                RankedStatus::from_api_v2(name),
                RankedStatus::from_api_v1(number),
                "{name}"
            );
        }
    }

    #[test]
    fn only_pending_and_qualified_may_change() {
        let open: Vec<_> = ALL.into_iter().filter(|s| s.may_change()).collect();
        assert_eq!(open, [Pending, Qualified]);
    }

    #[test]
    fn getscores_numbering() {
        let expected = [-1, 0, 1, 2, 3, 4, 5];
        for (s, n) in ALL.into_iter().zip(expected) {
            assert_eq!(s.to_getscores(), n);
            assert_eq!(RankedStatus::from_getscores(n), Some(s));
        }
        assert_eq!(RankedStatus::from_getscores(6), None);
    }

    #[test]
    fn getbeatmapinfo_numbering() {
        assert_eq!(Pending.to_getbeatmapinfo(), Some(0));
        assert_eq!(Ranked.to_getbeatmapinfo(), Some(1));
        assert_eq!(Approved.to_getbeatmapinfo(), Some(2));
        assert_eq!(Qualified.to_getbeatmapinfo(), Some(3));
        assert_eq!(Loved.to_getbeatmapinfo(), Some(4));
        assert_eq!(NotSubmitted.to_getbeatmapinfo(), None);
    }

    #[test]
    fn direct_numbering() {
        for r in -1..=9 {
            if let Some(f) = DirectFilter::from_r(r) {
                assert_eq!(f.to_r(), r);
            }
        }
        assert_eq!(
            DirectFilter::from_r(0).and_then(DirectFilter::status),
            Some(Ranked)
        );
        assert_eq!(
            DirectFilter::from_r(2).and_then(DirectFilter::status),
            Some(Pending)
        );
        assert_eq!(
            DirectFilter::from_r(3).and_then(DirectFilter::status),
            Some(Qualified)
        );
        assert_eq!(DirectFilter::from_r(4), Some(DirectFilter::All));
        assert_eq!(DirectFilter::All.status(), None);
        assert_eq!(
            DirectFilter::from_r(5).and_then(DirectFilter::status),
            Some(Pending)
        );
        assert_eq!(
            DirectFilter::from_r(7).and_then(DirectFilter::status),
            Some(Ranked)
        );
        assert_eq!(
            DirectFilter::from_r(8).and_then(DirectFilter::status),
            Some(Loved)
        );
        assert_eq!(DirectFilter::from_r(1), None);
        assert_eq!(DirectFilter::from_r(6), None);
    }

    #[test]
    fn direct_filters_ask_mirrors_and_the_table_in_the_api_numbering() {
        let mirror: Vec<_> = [0, 2, 3, 4, 5, 7, 8]
            .into_iter()
            .map(|r| DirectFilter::from_r(r).and_then(DirectFilter::mirror_status))
            .collect();
        assert_eq!(
            mirror,
            [Some(1), Some(0), Some(3), None, Some(-2), Some(1), Some(4)]
        );
        // The table's numbers agree with `from_api_v1` on what each filter means.
        for r in [0, 2, 3, 5, 7, 8] {
            let filter = DirectFilter::from_r(r).unwrap();
            for &n in filter.library_statuses().unwrap() {
                let status = RankedStatus::from_api_v1(i32::from(n)).unwrap();
                let wanted = filter.status().unwrap();
                assert!(status == wanted || (wanted, status) == (Ranked, Approved));
            }
        }
        assert_eq!(DirectFilter::All.library_statuses(), None);
    }

    #[test]
    fn pp_and_leaderboards() {
        let pp: Vec<_> = ALL.into_iter().filter(|s| s.awards_pp()).collect();
        assert_eq!(pp, [Ranked, Approved]);
        let board: Vec<_> = ALL.into_iter().filter(|s| s.has_leaderboard()).collect();
        assert_eq!(board, [Ranked, Approved, Loved]);
        let shown: Vec<_> = ALL.into_iter().filter(|s| s.shows_scores()).collect();
        assert_eq!(shown, [Ranked, Approved, Qualified, Loved]);
    }
}
