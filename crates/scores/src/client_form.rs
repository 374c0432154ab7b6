//! The score submission form as the stable client fills it, for the programs that play
//! the client's part: the end-to-end tests and the load generator (`peace-bench`). The
//! server only ever reads these fields (the gateway's `scores.rs`); this is their one
//! writer, so a test and a benchmark cannot drift apart in what they send.
//!
//! The parts are listed in the client's order. Turning them into a
//! `multipart/form-data` body is left to the caller's HTTP client: this crate knows
//! nothing of HTTP.

use crate::crypto::{self, BLOCK_SIZE, CryptoError};
use crate::submission::ScoreText;

/// The value of one form part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartValue {
    /// A text field.
    Text(String),
    /// A file upload (the replay), with the file name the client gives it.
    File {
        /// The part's `filename`.
        file_name: &'static str,
        /// The file's bytes.
        bytes: Vec<u8>,
    },
}

/// One part of the form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormPart {
    /// The part's `name`. Two parts are called `score`: the encrypted text, then the replay.
    pub name: &'static str,
    /// What it holds.
    pub value: PartValue,
}

/// A play, as the client is about to submit it.
#[derive(Debug, Clone)]
pub struct ClientPlay<'a> {
    /// The score text, its online checksum already set (see
    /// [`ScoreText::expected_online_checksum`]). Its `osu_version` is the cipher's key.
    pub text: &'a ScoreText,
    /// `pass`: the md5 (hex) of the player's password.
    pub password_md5: &'a str,
    /// The client hash, encrypted into `s` (the checksum was computed with it).
    pub client_hash: &'a str,
    /// The cipher's initialisation vector, sent base64-encoded as `iv`.
    pub iv: [u8; BLOCK_SIZE],
    /// The replay's frames, uploaded as the second `score` part.
    pub replay: &'a [u8],
    /// `ft`: when a failed play failed, in ms (0 for a pass).
    pub fail_time_ms: i64,
    /// `st`: how long the play took, in ms.
    pub play_time_ms: i64,
}

impl ClientPlay<'_> {
    /// The form's parts, the score text and client hash encrypted as the client does.
    /// A play that did not pass is sent as quit (`x=1`), as the client does on a fail.
    pub fn parts(&self) -> Result<Vec<FormPart>, CryptoError> {
        let version = self.text.osu_version.as_str();
        let iv = crypto::encode_base64(&self.iv);
        let score = crypto::encrypt_field(version, &iv, &self.text.to_wire())?;
        let client_hash = crypto::encrypt_field(version, &iv, self.client_hash)?;
        let text = |name: &'static str, value: String| FormPart {
            name,
            value: PartValue::Text(value),
        };
        let flag = |b: bool| if b { "1" } else { "0" }.to_owned();
        Ok(vec![
            text("x", flag(!self.text.passed)),
            text("ft", self.fail_time_ms.to_string()),
            text("fs", String::new()),
            text("bmk", self.text.beatmap_md5.clone()),
            text("iv", iv),
            text("c1", "aa|bb".to_owned()),
            text("st", self.play_time_ms.to_string()),
            text("pass", self.password_md5.to_owned()),
            text("osuver", version.to_owned()),
            text("s", client_hash),
            text("score", score),
            FormPart {
                name: "score",
                value: PartValue::File {
                    file_name: "score",
                    bytes: self.replay.to_vec(),
                },
            },
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::grade::{Counts, Grade};
    use crate::mode::Mode;
    use crate::mods::Mods;

    #[test]
    fn the_encrypted_parts_decrypt_to_what_was_played() {
        let mut text = ScoreText {
            beatmap_md5: "0123456789abcdef0123456789abcdef".to_owned(),
            player_name: "Alice".to_owned(),
            supporter: false,
            online_checksum: String::new(),
            counts: Counts {
                n300: 10,
                n100: 1,
                n50: 0,
                ngeki: 2,
                nkatu: 1,
                nmiss: 0,
            },
            score: 50_000,
            max_combo: 20,
            perfect: false,
            grade: Grade::A,
            mods: Mods::HIDDEN,
            passed: true,
            mode: Mode::Osu,
            client_time: "261203120001".to_owned(),
            osu_version: "20231030".to_owned(),
            client_flags: 0,
        };
        text.online_checksum = text.expected_online_checksum("Alice", "20231030", "hash:", "");
        let play = ClientPlay {
            text: &text,
            password_md5: "5f4dcc3b5aa765d61d8327deb882cf99",
            client_hash: "hash:",
            iv: [7; BLOCK_SIZE],
            replay: b"frames",
            fail_time_ms: 0,
            play_time_ms: 30_000,
        };
        let parts = play.parts().unwrap();
        let field = |name: &str| {
            parts
                .iter()
                .find_map(|p| match (&p.value, p.name == name) {
                    (PartValue::Text(t), true) => Some(t.clone()),
                    _ => None,
                })
                .unwrap()
        };
        let iv = field("iv");
        let decrypted = crypto::decrypt_field("20231030", &iv, &field("score")).unwrap();
        let parsed = ScoreText::parse(&decrypted).unwrap();
        assert_eq!(parsed, text);
        assert!(parsed.online_checksum_matches("Alice", "20231030", "hash:", ""));
        assert_eq!(
            crypto::decrypt_field("20231030", &iv, &field("s")).unwrap(),
            "hash:"
        );
        assert_eq!(field("x"), "0");
        assert_eq!(field("bmk"), text.beatmap_md5);
        // The replay comes last, after the text part of the same name.
        assert_eq!(
            parts.last().map(|p| (p.name, &p.value)),
            Some((
                "score",
                &PartValue::File {
                    file_name: "score",
                    bytes: b"frames".to_vec()
                }
            ))
        );
    }
}
