//! The login request: the body of the first `POST /` of a session (no `osu-token`).
//!
//! ```text
//! username\n
//! password_md5\n
//! osu_version|utc_offset|display_city|client_hashes|block_nonfriend_dms\n
//! ```

use serde::{Deserialize, Serialize};

use crate::LoginParseError;

/// The largest login body accepted. Real ones are about 300 bytes.
pub const MAX_LOGIN_BODY: usize = 4096;
/// The longest username accepted at login (registration is stricter).
pub const MAX_USERNAME_LEN: usize = 32;
const MAX_HASHES_LEN: usize = 1024;

/// A parsed, validated login request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginRequest {
    pub username: String,
    /// Lower-case hex MD5 of the password, as the client sends it.
    pub password_md5: String,
    pub version: ClientVersion,
    pub utc_offset: i8,
    pub display_city: bool,
    pub hashes: ClientHashes,
    pub block_nonfriend_dms: bool,
}

/// `bYYYYMMDD[.N][stream]`, e.g. `b20231030.2` or `b20240123cuttingedge`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientVersion {
    /// The build date as the number `YYYYMMDD`, comparable directly.
    pub date: u32,
    pub revision: u32,
    /// Release stream suffix (`cuttingedge`, `beta`, `tourney`, ...); empty for stable.
    pub stream: String,
    /// The string as the client sent it.
    pub raw: String,
}

/// The client's machine fingerprints, `a:b:c:d:e:`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientHashes {
    pub osu_path_md5: String,
    pub adapters: String,
    pub adapters_md5: String,
    pub uninstall_md5: String,
    pub disk_signature_md5: String,
    /// The field as the client sent it.
    pub raw: String,
}

impl LoginRequest {
    /// Parses and validates a login body. Any deviation is an error naming the problem.
    pub fn parse(body: &[u8]) -> Result<Self, LoginParseError> {
        if body.len() > MAX_LOGIN_BODY {
            return Err(LoginParseError::TooLarge(MAX_LOGIN_BODY));
        }
        let text = std::str::from_utf8(body).map_err(|_| LoginParseError::NotUtf8)?;
        let mut lines = text.split('\n').map(|l| l.trim_end_matches('\r'));
        let username = lines.next().filter(|l| !l.is_empty());
        let username = username
            .ok_or(LoginParseError::MissingLine("username"))?
            .trim();
        if username.is_empty() || username.chars().count() > MAX_USERNAME_LEN {
            return Err(LoginParseError::BadUsername(MAX_USERNAME_LEN));
        }
        let password_md5 = lines
            .next()
            .ok_or(LoginParseError::MissingLine("password"))?;
        if password_md5.len() != 32 || !password_md5.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(LoginParseError::BadPasswordHash);
        }
        let info = lines
            .next()
            .ok_or(LoginParseError::MissingLine("client info"))?;
        let mut fields = info.split('|');
        let mut field = |name| fields.next().ok_or(LoginParseError::MissingField(name));
        let version = ClientVersion::parse(field("version")?)?;
        let offset = field("utc offset")?;
        let utc_offset = offset
            .parse::<i8>()
            .ok()
            .filter(|o| (-12..=14).contains(o))
            .ok_or_else(|| LoginParseError::BadUtcOffset(offset.chars().take(16).collect()))?;
        let display_city = field("display city")? == "1";
        let hashes = ClientHashes::parse(field("client hashes")?)?;
        let block_nonfriend_dms = field("block non-friend dms")? == "1";
        Ok(Self {
            username: username.to_owned(),
            password_md5: password_md5.to_ascii_lowercase(),
            version,
            utc_offset,
            display_city,
            hashes,
            block_nonfriend_dms,
        })
    }
}

impl ClientVersion {
    pub fn parse(s: &str) -> Result<Self, LoginParseError> {
        let bad = || LoginParseError::BadVersion(s.chars().take(32).collect());
        let rest = s.strip_prefix('b').ok_or_else(bad)?;
        let date_str = rest.get(..8).ok_or_else(bad)?;
        if !date_str.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        let date = date_str.parse().map_err(|_| bad())?;
        let mut rest = &rest[8..];
        let mut revision = 0;
        if let Some(after_dot) = rest.strip_prefix('.') {
            let digits = after_dot.bytes().take_while(u8::is_ascii_digit).count();
            revision = after_dot[..digits].parse().map_err(|_| bad())?;
            rest = &after_dot[digits..];
        }
        if rest.len() > 16 || !rest.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(bad());
        }
        Ok(Self {
            date,
            revision,
            stream: rest.to_owned(),
            raw: s.to_owned(),
        })
    }
}

impl ClientHashes {
    pub fn parse(s: &str) -> Result<Self, LoginParseError> {
        if s.len() > MAX_HASHES_LEN {
            return Err(LoginParseError::BadClientHashes);
        }
        let parts: Vec<&str> = s.split(':').collect();
        let [
            osu_path_md5,
            adapters,
            adapters_md5,
            uninstall_md5,
            disk_signature_md5,
            ..,
        ] = parts[..]
        else {
            return Err(LoginParseError::BadClientHashes);
        };
        Ok(Self {
            osu_path_md5: osu_path_md5.to_owned(),
            adapters: adapters.to_owned(),
            adapters_md5: adapters_md5.to_owned(),
            uninstall_md5: uninstall_md5.to_owned(),
            disk_signature_md5: disk_signature_md5.to_owned(),
            raw: s.to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const BODY: &str = "Cookiezi\n5f4dcc3b5aa765d61d8327deb882cf99\nb20231030.2|2|0|a1:runningunderwine:b2:c3:d4:|1\n";

    #[test]
    fn parses_a_stable_login() {
        let req = LoginRequest::parse(BODY.as_bytes()).expect("valid login");
        assert_eq!(req.username, "Cookiezi");
        assert_eq!(req.version.date, 20231030);
        assert_eq!(req.version.revision, 2);
        assert_eq!(req.utc_offset, 2);
        assert!(!req.display_city);
        assert_eq!(req.hashes.adapters, "runningunderwine");
        assert_eq!(req.hashes.disk_signature_md5, "d4");
        assert!(req.block_nonfriend_dms);
    }

    #[test]
    fn version_streams() {
        let v = ClientVersion::parse("b20240123cuttingedge").expect("valid version");
        assert_eq!(
            (v.date, v.revision, v.stream.as_str()),
            (20240123, 0, "cuttingedge")
        );
        assert!(ClientVersion::parse("20240123").is_err());
        assert!(ClientVersion::parse("b2024").is_err());
        assert!(ClientVersion::parse("b20240123.x").is_err());
    }

    #[test]
    fn rejects_malformed_bodies() {
        assert_eq!(
            LoginRequest::parse(b""),
            Err(LoginParseError::MissingLine("username"))
        );
        assert_eq!(
            LoginRequest::parse(b"a\nzz\n"),
            Err(LoginParseError::BadPasswordHash)
        );
        let no_info = "a\n5f4dcc3b5aa765d61d8327deb882cf99\n";
        assert!(matches!(
            LoginRequest::parse(no_info.as_bytes()),
            Err(LoginParseError::BadVersion(_))
        ));
        let bad_offset = BODY.replace("|2|", "|99|");
        assert!(matches!(
            LoginRequest::parse(bad_offset.as_bytes()),
            Err(LoginParseError::BadUtcOffset(_))
        ));
        assert_eq!(
            LoginRequest::parse(&[0xff, b'\n']),
            Err(LoginParseError::NotUtf8)
        );
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = LoginRequest::parse(&bytes);
        }

        #[test]
        fn never_panics_on_near_valid_text(s in "[a-z]{1,5}\n[0-9a-f]{32}\n[b0-9.|:a-z-]{0,60}\n?") {
            let _ = LoginRequest::parse(s.as_bytes());
        }
    }
}
