//! The metadata of a `.osu` beatmap file: who made what, which ids it claims, its mode,
//! the md5 the client names it by, and the file name stable gives it.
//!
//! Only the `[General]` and `[Metadata]` sections are read, by hand: `rosu-map` 0.2.1 cuts
//! a value at its second `:` (a title `Re:Zero` would read `Re`), while the game splits a
//! line at its first `:` only and trims both sides, as done here. Lengths and max combo need
//! the hit objects (and, for sliders, the timing points and curves), so they come from
//! [`crate::pp`] when a map is calculated.
//!
//! Invariant: parsing never panics, whatever the bytes; a file over [`MAX_OSU_FILE_LEN`] is
//! refused before anything is decoded.

use md5::{Digest, Md5};

/// The largest `.osu` file we accept. Ranked marathon maps with storyboards inlined stay
/// well under 4 MiB; 16 MiB leaves room while keeping a hostile upload from costing much.
pub const MAX_OSU_FILE_LEN: usize = 16 * 1024 * 1024;

/// What every `.osu` file begins with (after an optional BOM and blank lines).
const FORMAT_HEADER: &[u8] = b"osu file format v";

/// Why bytes could not be read as a `.osu` file.
#[derive(Debug, thiserror::Error)]
pub enum OsuFileError {
    #[error("the file is {len} bytes, over the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("the file does not begin with `osu file format v`")]
    NotAnOsuFile,
}

/// The metadata of one `.osu` file (one difficulty).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OsuFile {
    pub artist: String,
    pub title: String,
    pub creator: String,
    /// The difficulty name (`Version:` in the file).
    pub version: String,
    /// `BeatmapID:`; `None` when absent or not positive (unsubmitted maps carry 0 or -1).
    pub beatmap_id: Option<u32>,
    /// `BeatmapSetID:`; `None` when absent or not positive (unsubmitted sets carry -1).
    pub beatmap_set_id: Option<u32>,
    /// 0 osu!, 1 taiko, 2 catch, 3 mania. An absent or unknown `Mode:` reads as 0.
    pub mode: u8,
    /// The md5 of the file's bytes, lower-case hex: the checksum the client sends.
    pub md5: String,
}

impl OsuFile {
    /// Reads the metadata of a `.osu` file.
    pub fn parse(bytes: &[u8]) -> Result<OsuFile, OsuFileError> {
        if bytes.len() > MAX_OSU_FILE_LEN {
            return Err(OsuFileError::TooLarge {
                len: bytes.len(),
                max: MAX_OSU_FILE_LEN,
            });
        }
        if !has_format_header(bytes) {
            return Err(OsuFileError::NotAnOsuFile);
        }
        let text = String::from_utf8_lossy(bytes);
        let mut file = OsuFile {
            artist: String::new(),
            title: String::new(),
            creator: String::new(),
            version: String::new(),
            beatmap_id: None,
            beatmap_set_id: None,
            mode: 0,
            md5: md5_hex(bytes),
        };
        let mut section = "";
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with("//") {
                continue;
            }
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = name;
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let (key, value) = (key.trim(), value.trim());
            match (section, key) {
                ("General", "Mode") => {
                    file.mode = value.parse().ok().filter(|m| *m <= 3).unwrap_or(0)
                }
                ("Metadata", "Artist") => value.clone_into(&mut file.artist),
                ("Metadata", "Title") => value.clone_into(&mut file.title),
                ("Metadata", "Creator") => value.clone_into(&mut file.creator),
                ("Metadata", "Version") => value.clone_into(&mut file.version),
                ("Metadata", "BeatmapID") => file.beatmap_id = positive(value),
                ("Metadata", "BeatmapSetID") => file.beatmap_set_id = positive(value),
                _ => {}
            }
        }
        Ok(file)
    }

    /// The name stable gives this file: `Artist - Title (Creator) [Version].osu`, with the
    /// characters Windows forbids in file names removed (not replaced), as the client's
    /// file-name strip does: control characters U+0000–U+001F and `" < > | : * ? \ /`.
    pub fn file_name(&self) -> String {
        file_name(&self.artist, &self.title, &self.creator, &self.version)
    }
}

/// The name stable gives a map's `.osu` file (see [`OsuFile::file_name`]), for maps known
/// only by their metadata (the osu!api names no files).
pub fn file_name(artist: &str, title: &str, creator: &str, version: &str) -> String {
    strip_invalid_file_name_chars(&format!("{artist} - {title} ({creator}) [{version}].osu"))
}

/// The lower-case hex md5 of some bytes.
pub fn md5_hex(bytes: &[u8]) -> String {
    hex::encode(Md5::digest(bytes))
}

/// Removes the characters .NET's `Path.GetInvalidFileNameChars()` lists on Windows.
fn strip_invalid_file_name_chars(name: &str) -> String {
    name.chars()
        .filter(|&c| {
            !(c < '\u{20}' || matches!(c, '"' | '<' | '>' | '|' | ':' | '*' | '?' | '\\' | '/'))
        })
        .collect()
}

/// An id as the file writes it; 0, -1, garbage and absence all mean "none".
fn positive(value: &str) -> Option<u32> {
    value.parse::<u32>().ok().filter(|&id| id > 0)
}

/// Whether the first non-blank line (after a UTF-8 BOM) starts the way every `.osu` file
/// does. UTF-16 files, which no client writes, are refused here too.
pub(crate) fn has_format_header(bytes: &[u8]) -> bool {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let start = bytes
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(bytes.len());
    bytes[start..].starts_with(FORMAT_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SAMPLE: &str = "\u{feff}osu file format v14

[General]
AudioFilename: audio.mp3
Mode: 1

[Metadata]
Title:Song: Remix?
TitleUnicode:Song
Artist:Some/Artist
ArtistUnicode:Some Artist
Creator:mapper
Version:Oni \"Hard\"
Source:
Tags:a b c
BeatmapID:123456
BeatmapSetID:-1

[HitObjects]
256,192,1000,1,0,0:0:0:0:
";

    #[test]
    fn reads_the_metadata() {
        let file = OsuFile::parse(SAMPLE.as_bytes()).expect("a valid file");
        assert_eq!(file.artist, "Some/Artist");
        assert_eq!(file.title, "Song: Remix?");
        assert_eq!(file.creator, "mapper");
        assert_eq!(file.version, "Oni \"Hard\"");
        assert_eq!(file.beatmap_id, Some(123_456));
        assert_eq!(file.beatmap_set_id, None);
        assert_eq!(file.mode, 1);
        assert_eq!(file.md5, md5_hex(SAMPLE.as_bytes()));
        assert_eq!(file.md5.len(), 32);
        assert!(
            file.md5
                .chars()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
    }

    #[test]
    fn file_name_strips_what_windows_forbids() {
        let file = OsuFile::parse(SAMPLE.as_bytes()).expect("a valid file");
        assert_eq!(
            file.file_name(),
            "SomeArtist - Song Remix (mapper) [Oni Hard].osu"
        );
    }

    #[test]
    fn absent_ids_and_mode_default() {
        let file = OsuFile::parse(b"osu file format v5\n[Metadata]\nTitle:x\n").expect("valid");
        assert_eq!(file.beatmap_id, None);
        assert_eq!(file.beatmap_set_id, None);
        assert_eq!(file.mode, 0);
        assert_eq!(file.file_name(), " - x () [].osu");
    }

    #[test]
    fn reads_crlf_files_and_ignores_unknown_modes() {
        let text = "osu file format v14\r\n\r\n[General]\r\nMode: 7\r\n[Metadata]\r\nTitle:Re:Zero \r\nBeatmapID:0\r\nBeatmapSetID:99\r\n";
        let file = OsuFile::parse(text.as_bytes()).expect("valid");
        assert_eq!(file.title, "Re:Zero");
        assert_eq!(file.mode, 0);
        assert_eq!(file.beatmap_id, None);
        assert_eq!(file.beatmap_set_id, Some(99));
    }

    #[test]
    fn md5_of_empty_input_is_the_known_value() {
        assert_eq!(md5_hex(b""), "d41d8cd98f00b204e9800998ecf8427e");
    }

    #[test]
    fn refuses_what_is_not_an_osu_file() {
        assert!(matches!(
            OsuFile::parse(b""),
            Err(OsuFileError::NotAnOsuFile)
        ));
        assert!(matches!(
            OsuFile::parse(b"<html>"),
            Err(OsuFileError::NotAnOsuFile)
        ));
    }

    #[test]
    fn refuses_oversized_input_before_decoding() {
        let mut big = b"osu file format v14\n".to_vec();
        big.resize(MAX_OSU_FILE_LEN + 1, b' ');
        assert!(matches!(
            OsuFile::parse(&big),
            Err(OsuFileError::TooLarge { .. })
        ));
    }

    proptest! {
        #[test]
        fn never_panics_on_random_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = OsuFile::parse(&bytes);
        }

        #[test]
        fn never_panics_on_random_text_after_a_header(text in "[\\PC\\n\\[\\]:]{0,512}") {
            let input = format!("osu file format v14\n{text}");
            let _ = OsuFile::parse(input.as_bytes());
        }

        #[test]
        fn file_name_never_holds_a_forbidden_char(artist in "\\PC{0,20}", title in "[ -~]{0,20}") {
            let file = OsuFile {
                artist, title, creator: "c".into(), version: "v".into(),
                beatmap_id: None, beatmap_set_id: None, mode: 0, md5: String::new(),
            };
            let name = file.file_name();
            prop_assert!(!name.chars().any(|c| c < ' ' || "\"<>|:*?\\/".contains(c)));
        }
    }
}
