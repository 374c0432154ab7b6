//! The body of a login request (the first `POST /` of a session): any bytes at all.
//!
//! Besides "never panics": whatever is accepted has the shape the login code relies on.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peace_bancho::LoginRequest;
use peace_bancho::login::{MAX_LOGIN_BODY, MAX_USERNAME_LEN};

fuzz_target!(|body: &[u8]| {
    let Ok(req) = LoginRequest::parse(body) else {
        return;
    };
    assert!(body.len() <= MAX_LOGIN_BODY);
    assert!(!req.username.is_empty() && req.username.chars().count() <= MAX_USERNAME_LEN);
    assert_eq!(req.username.trim(), req.username, "names are trimmed");
    assert_eq!(req.password_md5.len(), 32);
    assert!(
        req.password_md5
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "the md5 is lower-case hex, as stored hashes were made from"
    );
    assert!((-12..=14).contains(&req.utc_offset));
    assert!(req.version.date <= 99_999_999);
    assert!(req.version.stream.len() <= 16);
    assert!(req.version.stream.bytes().all(|b| b.is_ascii_alphabetic()));
});
