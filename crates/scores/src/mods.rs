//! The stable mod bits, which leaderboard a play belongs on, and which combinations count.
//!
//! The bit values are the ones the stable client sends (submission text, getscores `mods`,
//! .osr header) and osu!api v1 returns. Note the odd order at the top: Key3 is bit 27 and
//! Key2 bit 28, and KeyCoop (bit 25) was once called Key10.

use crate::mode::Mode;

bitflags::bitflags! {
    /// A set of stable mods, as the 32-bit number the client sends.
    #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
    pub struct Mods: u32 {
        const NO_FAIL = 1 << 0;
        const EASY = 1 << 1;
        /// Touch device; once "NoVideo".
        const TOUCH_DEVICE = 1 << 2;
        const HIDDEN = 1 << 3;
        const HARD_ROCK = 1 << 4;
        const SUDDEN_DEATH = 1 << 5;
        const DOUBLE_TIME = 1 << 6;
        const RELAX = 1 << 7;
        const HALF_TIME = 1 << 8;
        /// Always sent together with DOUBLE_TIME (576 for NC alone).
        const NIGHTCORE = 1 << 9;
        const FLASHLIGHT = 1 << 10;
        const AUTOPLAY = 1 << 11;
        const SPUN_OUT = 1 << 12;
        /// Autopilot; once "Relax2".
        const AUTOPILOT = 1 << 13;
        /// Always sent together with SUDDEN_DEATH (16416 for PF alone).
        const PERFECT = 1 << 14;
        const KEY4 = 1 << 15;
        const KEY5 = 1 << 16;
        const KEY6 = 1 << 17;
        const KEY7 = 1 << 18;
        const KEY8 = 1 << 19;
        const FADE_IN = 1 << 20;
        const RANDOM = 1 << 21;
        /// Cinema; "LastMod" in osu!api v1's list.
        const CINEMA = 1 << 22;
        /// Target practice (osu! only).
        const TARGET = 1 << 23;
        const KEY9 = 1 << 24;
        /// Mania co-op; once "Key10".
        const KEY_COOP = 1 << 25;
        const KEY1 = 1 << 26;
        const KEY3 = 1 << 27;
        const KEY2 = 1 << 28;
        const SCORE_V2 = 1 << 29;
        const MIRROR = 1 << 30;
    }
}

/// The mods whose plays go on no leaderboard and give no pp, whatever the server.
const UNRANKED: Mods = Mods::SCORE_V2
    .union(Mods::AUTOPLAY)
    .union(Mods::CINEMA)
    .union(Mods::TARGET)
    .union(Mods::RANDOM)
    .union(Mods::KEY_COOP)
    .union(Mods::KEY1)
    .union(Mods::KEY2)
    .union(Mods::KEY3);

/// Two-letter acronyms in bit order, as players write them.
const ACRONYMS: [(Mods, &str); 31] = [
    (Mods::NO_FAIL, "NF"),
    (Mods::EASY, "EZ"),
    (Mods::TOUCH_DEVICE, "TD"),
    (Mods::HIDDEN, "HD"),
    (Mods::HARD_ROCK, "HR"),
    (Mods::SUDDEN_DEATH, "SD"),
    (Mods::DOUBLE_TIME, "DT"),
    (Mods::RELAX, "RX"),
    (Mods::HALF_TIME, "HT"),
    (Mods::NIGHTCORE, "NC"),
    (Mods::FLASHLIGHT, "FL"),
    (Mods::AUTOPLAY, "AU"),
    (Mods::SPUN_OUT, "SO"),
    (Mods::AUTOPILOT, "AP"),
    (Mods::PERFECT, "PF"),
    (Mods::KEY4, "4K"),
    (Mods::KEY5, "5K"),
    (Mods::KEY6, "6K"),
    (Mods::KEY7, "7K"),
    (Mods::KEY8, "8K"),
    (Mods::FADE_IN, "FI"),
    (Mods::RANDOM, "RD"),
    (Mods::CINEMA, "CN"),
    (Mods::TARGET, "TP"),
    (Mods::KEY9, "9K"),
    (Mods::KEY_COOP, "CO"),
    (Mods::KEY1, "1K"),
    (Mods::KEY3, "3K"),
    (Mods::KEY2, "2K"),
    (Mods::SCORE_V2, "V2"),
    (Mods::MIRROR, "MR"),
];

/// The most acronyms one mods text may hold (more is not a real mod combination).
pub const MAX_ACRONYMS: usize = 16;

impl Mods {
    /// Mods from acronyms as players write them, in any case, with or without a `+` and
    /// spaces ("HDDT", "+hd dt", "NM" for none). `None` for an unknown acronym.
    pub fn from_acronyms(text: &str) -> Option<Mods> {
        let letters: Vec<char> = text
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '+' && *c != ',')
            .map(|c| c.to_ascii_uppercase())
            .collect();
        if !letters.len().is_multiple_of(2) || letters.len() > 2 * MAX_ACRONYMS {
            return None;
        }
        let mut mods = Mods::empty();
        for pair in letters.chunks(2) {
            let acronym: String = pair.iter().collect();
            if acronym == "NM" {
                continue;
            }
            let (m, _) = ACRONYMS.iter().find(|(_, a)| *a == acronym)?;
            mods |= *m;
        }
        // The client always sends DT with NC and SD with PF: so does this.
        if mods.contains(Mods::NIGHTCORE) {
            mods |= Mods::DOUBLE_TIME;
        }
        if mods.contains(Mods::PERFECT) {
            mods |= Mods::SUDDEN_DEATH;
        }
        Some(mods)
    }

    /// The mods from the client's number; unknown high bits are dropped, not refused,
    /// because newer clients may set bits this server does not know.
    pub fn from_wire(bits: u32) -> Mods {
        Mods::from_bits_truncate(bits)
    }

    /// Whether a play with these mods may go on a leaderboard and give pp: false for
    /// ScoreV2, Autoplay, Cinema, Target practice, Random, co-op and 1K/2K/3K.
    ///
    /// Relax and Autopilot are not refused here: they are ranked on their own boards
    /// ([`BoardKind`]) on servers that keep those.
    pub fn is_ranked_combination(self) -> bool {
        !self.intersects(UNRANKED)
    }

    /// The acronyms, for logs and chat ("HDDT"; "NM" for none). Nightcore and Perfect
    /// hide the DT and SD bits the client always sends with them.
    pub fn acronyms(self) -> String {
        if self.is_empty() {
            return "NM".to_owned();
        }
        let mut shown = self;
        if shown.contains(Mods::NIGHTCORE) {
            shown.remove(Mods::DOUBLE_TIME);
        }
        if shown.contains(Mods::PERFECT) {
            shown.remove(Mods::SUDDEN_DEATH);
        }
        ACRONYMS
            .iter()
            .filter(|(m, _)| shown.contains(*m))
            .map(|(_, a)| *a)
            .collect()
    }
}

/// Whether a play with these mods may be ranked; the free-function form of
/// [`Mods::is_ranked_combination`].
pub fn is_ranked_combination(mods: Mods) -> bool {
    mods.is_ranked_combination()
}

/// Which leaderboard (and pp table) a play goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum BoardKind {
    /// No Relax or Autopilot.
    Vanilla,
    /// Relax.
    Relax,
    /// Autopilot.
    Autopilot,
}

impl BoardKind {
    /// The board from the mods alone: Relax wins over Autopilot, since the client does not
    /// allow both and a forged play with both must still land on one board.
    pub fn from_mods(mods: Mods) -> BoardKind {
        if mods.contains(Mods::RELAX) {
            BoardKind::Relax
        } else if mods.contains(Mods::AUTOPILOT) {
            BoardKind::Autopilot
        } else {
            BoardKind::Vanilla
        }
    }

    /// The board for a play in a mode: there is no Relax board for mania (the client has no
    /// relax there) and Autopilot exists only in osu!, so those plays go on the vanilla board.
    pub fn for_play(mode: Mode, mods: Mods) -> BoardKind {
        match (BoardKind::from_mods(mods), mode) {
            (BoardKind::Relax, Mode::Mania) => BoardKind::Vanilla,
            (BoardKind::Autopilot, Mode::Taiko | Mode::Catch | Mode::Mania) => BoardKind::Vanilla,
            (kind, _) => kind,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acronyms_read_back() {
        assert_eq!(
            Mods::from_acronyms("HDDT"),
            Some(Mods::HIDDEN | Mods::DOUBLE_TIME)
        );
        assert_eq!(
            Mods::from_acronyms("+hd hr"),
            Some(Mods::HIDDEN | Mods::HARD_ROCK)
        );
        assert_eq!(Mods::from_acronyms("NM"), Some(Mods::empty()));
        assert_eq!(Mods::from_acronyms(""), Some(Mods::empty()));
        assert_eq!(
            Mods::from_acronyms("NC"),
            Some(Mods::NIGHTCORE | Mods::DOUBLE_TIME)
        );
        for bad in ["H", "XX", "HDD", &"HD".repeat(MAX_ACRONYMS + 1), "ÉÉ"] {
            assert_eq!(Mods::from_acronyms(bad), None, "{bad}");
        }
        for mods in [
            Mods::HIDDEN | Mods::HARD_ROCK,
            Mods::FLASHLIGHT | Mods::EASY,
        ] {
            assert_eq!(Mods::from_acronyms(&mods.acronyms()), Some(mods));
        }
    }

    #[test]
    fn bit_values_match_the_client() {
        assert_eq!(Mods::HIDDEN.bits(), 8);
        assert_eq!(Mods::RELAX.bits(), 128);
        assert_eq!((Mods::NIGHTCORE | Mods::DOUBLE_TIME).bits(), 576);
        assert_eq!((Mods::PERFECT | Mods::SUDDEN_DEATH).bits(), 16416);
        assert_eq!(Mods::AUTOPILOT.bits(), 8192);
        assert_eq!(Mods::KEY_COOP.bits(), 33_554_432);
        assert_eq!(Mods::KEY1.bits(), 67_108_864);
        assert_eq!(Mods::KEY3.bits(), 134_217_728);
        assert_eq!(Mods::KEY2.bits(), 268_435_456);
        assert_eq!(Mods::SCORE_V2.bits(), 536_870_912);
        assert_eq!(Mods::MIRROR.bits(), 1_073_741_824);
        assert_eq!(Mods::all().bits(), (1 << 31) - 1);
    }

    #[test]
    fn unknown_bits_are_dropped() {
        assert_eq!(Mods::from_wire(1 << 31 | 8), Mods::HIDDEN);
    }

    #[test]
    fn ranked_combinations() {
        assert!(Mods::empty().is_ranked_combination());
        assert!((Mods::HIDDEN | Mods::DOUBLE_TIME | Mods::NIGHTCORE).is_ranked_combination());
        assert!(Mods::RELAX.is_ranked_combination());
        assert!(Mods::KEY4.is_ranked_combination());
        for bad in [
            Mods::SCORE_V2,
            Mods::AUTOPLAY,
            Mods::CINEMA,
            Mods::TARGET,
            Mods::RANDOM,
            Mods::KEY_COOP,
            Mods::KEY1,
            Mods::KEY2,
            Mods::KEY3,
        ] {
            assert!(!(bad | Mods::HIDDEN).is_ranked_combination(), "{bad:?}");
            assert!(!is_ranked_combination(bad));
        }
    }

    #[test]
    fn boards() {
        assert_eq!(BoardKind::from_mods(Mods::HIDDEN), BoardKind::Vanilla);
        assert_eq!(
            BoardKind::from_mods(Mods::RELAX | Mods::HIDDEN),
            BoardKind::Relax
        );
        assert_eq!(BoardKind::from_mods(Mods::AUTOPILOT), BoardKind::Autopilot);
        assert_eq!(
            BoardKind::from_mods(Mods::AUTOPILOT | Mods::RELAX),
            BoardKind::Relax
        );
        assert_eq!(
            BoardKind::for_play(Mode::Taiko, Mods::RELAX),
            BoardKind::Relax
        );
        assert_eq!(
            BoardKind::for_play(Mode::Mania, Mods::RELAX),
            BoardKind::Vanilla
        );
        assert_eq!(
            BoardKind::for_play(Mode::Osu, Mods::AUTOPILOT),
            BoardKind::Autopilot
        );
        assert_eq!(
            BoardKind::for_play(Mode::Catch, Mods::AUTOPILOT),
            BoardKind::Vanilla
        );
    }

    #[test]
    fn acronyms() {
        assert_eq!(Mods::empty().acronyms(), "NM");
        assert_eq!((Mods::HIDDEN | Mods::DOUBLE_TIME).acronyms(), "HDDT");
        assert_eq!(
            (Mods::HIDDEN | Mods::DOUBLE_TIME | Mods::NIGHTCORE).acronyms(),
            "HDNC"
        );
        assert_eq!((Mods::SUDDEN_DEATH | Mods::PERFECT).acronyms(), "PF");
    }
}
