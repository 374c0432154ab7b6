//! The four stable game modes, numbered as the client numbers them everywhere
//! (submission text, .osr header, getscores `m`, osu!api v1 `m`).

/// A stable game mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// osu! (standard).
    Osu = 0,
    /// osu!taiko.
    Taiko = 1,
    /// osu!catch.
    Catch = 2,
    /// osu!mania.
    Mania = 3,
}

/// A mode number outside 0..=3.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("game mode {0} is not 0..=3")]
pub struct BadMode(pub i64);

impl Mode {
    /// All modes, in number order.
    pub const ALL: [Mode; 4] = [Mode::Osu, Mode::Taiko, Mode::Catch, Mode::Mania];

    /// The mode's number on the wire.
    pub fn number(self) -> u8 {
        self as u8
    }

    /// The mode for a wire number.
    pub fn from_number(n: i64) -> Result<Mode, BadMode> {
        match n {
            0 => Ok(Mode::Osu),
            1 => Ok(Mode::Taiko),
            2 => Ok(Mode::Catch),
            3 => Ok(Mode::Mania),
            _ => Err(BadMode(n)),
        }
    }

    /// The mode for an osu!api v2 ruleset name (`osu`, `taiko`, `fruits`, `mania`).
    pub fn from_ruleset_name(name: &str) -> Option<Mode> {
        Some(match name {
            "osu" => Mode::Osu,
            "taiko" => Mode::Taiko,
            "fruits" => Mode::Catch,
            "mania" => Mode::Mania,
            _ => return None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_round_trip() {
        for mode in Mode::ALL {
            assert_eq!(Mode::from_number(i64::from(mode.number())), Ok(mode));
        }
        assert_eq!(Mode::from_number(4), Err(BadMode(4)));
        assert_eq!(Mode::from_number(-1), Err(BadMode(-1)));
    }

    #[test]
    fn ruleset_names() {
        let names = ["osu", "taiko", "fruits", "mania"];
        for (mode, name) in Mode::ALL.into_iter().zip(names) {
            assert_eq!(Mode::from_ruleset_name(name), Some(mode));
        }
        assert_eq!(Mode::from_ruleset_name("catch"), None);
        assert_eq!(Mode::from_ruleset_name("Osu"), None);
    }
}
