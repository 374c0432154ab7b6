//! The osu! client's sign-up form (`POST /users`), urlencoded, with any bytes at all.
//!
//! The form goes through the same field reading ([`SignUpForm::from_fields`]) and rules
//! ([`accounts::check`]) as the HTTP handler; only the database checks (name or email
//! taken) are left out. Besides "never panics": an accepted form fits the database's
//! columns on every backend, and its name logs in as itself.

#![no_main]

use libfuzzer_sys::fuzz_target;
use peace_actors::accounts::{self, MAX_EMAIL_LEN, MAX_USERNAME_LEN, SignUpForm};
use peace_bancho::LoginRequest;

/// `users.safe_name VARCHAR(32)` in the migrations.
const SAFE_NAME_COLUMN_LEN: usize = 32;

fuzz_target!(|body: &[u8]| {
    let form = SignUpForm::from_fields(form_urlencoded::parse(body));
    let reg = &form.registration;
    if !accounts::check(reg).is_empty() {
        return;
    }
    assert!(reg.username.len() <= MAX_USERNAME_LEN);
    let safe_name = peace_db::safe_name(&reg.username);
    assert!(!safe_name.is_empty() && safe_name.len() <= SAFE_NAME_COLUMN_LEN);
    assert!(peace_db::normalize_email(&reg.email).len() <= MAX_EMAIL_LEN);
    // The client sends the name as typed at sign-up; the login parser must read it back.
    let login = format!(
        "{}\n{}\nb20240101|0|0|a:b:c:d:e:|0\n",
        reg.username,
        "0".repeat(32)
    );
    let parsed = LoginRequest::parse(login.as_bytes()).expect("an accepted name logs in");
    assert_eq!(parsed.username, reg.username);
    assert_eq!(peace_db::safe_name(&parsed.username), safe_name);
});
