//! Creating accounts: the validation rules shared by in-game registration (`POST /users`)
//! and `peace user add`, and the creation itself.

use std::collections::BTreeMap;

use peace_db::{Database, DbError, NewUser, Privileges};

use crate::auth::{hash_password, md5_hex};

pub const MIN_USERNAME_LEN: usize = 2;
/// osu!'s own limit; longer names do not fit the client's UI.
pub const MAX_USERNAME_LEN: usize = 15;
pub const MIN_PASSWORD_LEN: usize = 8;
pub const MAX_PASSWORD_LEN: usize = 32;
/// RFC 5321's limit, in bytes of the stored (lower-cased) form.
pub const MAX_EMAIL_LEN: usize = 254;
/// Longest value read from any sign-up form field, in characters; anything longer fails
/// validation anyway, and cutting it bounds the work validation does.
pub const MAX_FORM_FIELD_CHARS: usize = 1024;

/// Names no player may take (the bot and staff-looking names).
const RESERVED_NAMES: &[&str] = &[
    "peace",
    "banchobot",
    "bancho",
    "admin",
    "administrator",
    "moderator",
    "system",
];

/// A registration request.
#[derive(Debug, Clone)]
pub struct Registration {
    pub username: String,
    pub email: String,
    pub password: String,
}

/// The osu! client's sign-up form: `user[username]`, `user[user_email]`,
/// `user[password]` and `check` (`0` creates the account; anything else, or no `check` at
/// all, only validates it).
#[derive(Debug, Clone)]
pub struct SignUpForm {
    pub registration: Registration,
    pub check_only: bool,
}

impl SignUpForm {
    /// Reads the form from its decoded fields. Unknown fields are ignored, a repeated
    /// field keeps its last value, and each value is cut to [`MAX_FORM_FIELD_CHARS`].
    pub fn from_fields<K, V>(fields: impl IntoIterator<Item = (K, V)>) -> Self
    where
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut reg = Registration {
            username: String::new(),
            email: String::new(),
            password: String::new(),
        };
        let mut check = None;
        for (name, value) in fields {
            let slot = match name.as_ref() {
                "user[username]" => &mut reg.username,
                "user[user_email]" => &mut reg.email,
                "user[password]" => &mut reg.password,
                "check" => check.get_or_insert_with(String::new),
                _ => continue,
            };
            *slot = value.as_ref().chars().take(MAX_FORM_FIELD_CHARS).collect();
        }
        Self {
            registration: reg,
            check_only: check.as_deref() != Some("0"),
        }
    }
}

/// Validation errors by form field (`username`, `user_email`, `password`), in the shape
/// the osu! client displays under each field.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct FieldErrors(pub BTreeMap<&'static str, Vec<String>>);

impl FieldErrors {
    fn add(&mut self, field: &'static str, message: impl Into<String>) {
        self.0.entry(field).or_default().push(message.into());
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// Why a registration failed.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("invalid registration")]
    Invalid(FieldErrors),
    #[error(transparent)]
    Database(#[from] DbError),
    #[error("password hashing failed: {0}")]
    Hashing(#[from] crate::auth::HashError),
}

fn check_username(name: &str, errors: &mut FieldErrors) {
    let len = name.chars().count();
    if !(MIN_USERNAME_LEN..=MAX_USERNAME_LEN).contains(&len) {
        errors.add(
            "username",
            format!("Must be {MIN_USERNAME_LEN} to {MAX_USERNAME_LEN} characters long."),
        );
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || " _-[]".contains(c))
    {
        errors.add(
            "username",
            "May contain only letters, digits, spaces and _-[].",
        );
    }
    if name.starts_with(' ') || name.ends_with(' ') || name.contains("  ") {
        errors.add(
            "username",
            "May not start or end with a space or contain two in a row.",
        );
    }
    // "a b" and "a_b" share one safe name, so mixing them only confuses.
    if name.contains(' ') && name.contains('_') {
        errors.add(
            "username",
            "May contain spaces or underscores, but not both.",
        );
    }
    if RESERVED_NAMES.contains(&peace_db::safe_name(name).as_str()) {
        errors.add("username", "This name is reserved.");
    }
}

fn check_email(email: &str, errors: &mut FieldErrors) {
    // The limit applies to what is stored: lower-casing can lengthen non-ASCII text.
    let valid = peace_db::normalize_email(email).len() <= MAX_EMAIL_LEN
        && email.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        });
    if !valid {
        errors.add("user_email", "Not a valid email address.");
    }
}

fn check_password(password: &str, username: &str, errors: &mut FieldErrors) {
    let len = password.chars().count();
    if !(MIN_PASSWORD_LEN..=MAX_PASSWORD_LEN).contains(&len) {
        errors.add(
            "password",
            format!("Must be {MIN_PASSWORD_LEN} to {MAX_PASSWORD_LEN} characters long."),
        );
    }
    let mut distinct: Vec<char> = password.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() <= 3 {
        errors.add("password", "Must have more than 3 distinct characters.");
    }
    if password.eq_ignore_ascii_case(username) {
        errors.add("password", "May not be your username.");
    }
}

/// Checks a registration against the rules that need no database: the pure part of
/// [`validate`], fuzzed on its own (`fuzz/fuzz_targets/registration_form.rs`).
pub fn check(reg: &Registration) -> FieldErrors {
    let mut errors = FieldErrors::default();
    check_username(&reg.username, &mut errors);
    check_email(&reg.email, &mut errors);
    check_password(&reg.password, &reg.username, &mut errors);
    errors
}

/// Checks a registration against the rules and the database (names and emails taken).
pub async fn validate(db: &Database, reg: &Registration) -> Result<(), RegisterError> {
    let mut errors = check(reg);
    if !errors.0.contains_key("username") && db.name_taken(&reg.username).await? {
        errors.add("username", "This name is already taken.");
    }
    if !errors.0.contains_key("user_email") && db.email_taken(&reg.email).await? {
        errors.add("user_email", "This email is already in use.");
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(RegisterError::Invalid(errors))
    }
}

/// Validates and creates an account; returns its id.
pub async fn register(
    db: &Database,
    reg: &Registration,
    privileges: Privileges,
    bcrypt_cost: u32,
) -> Result<i32, RegisterError> {
    validate(db, reg).await?;
    let hash = hash_password(md5_hex(&reg.password), bcrypt_cost).await?;
    let new = NewUser {
        name: &reg.username,
        email: &reg.email,
        password_bcrypt: &hash,
        privileges,
        country: "XX",
    };
    match db.create_user(&new).await {
        Ok(user) => Ok(user.id),
        // Two registrations raced past validation; the database kept exactly one.
        Err(DbError::Conflict) => {
            let mut errors = FieldErrors::default();
            errors.add("username", "This name or email is already taken.");
            Err(RegisterError::Invalid(errors))
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errors_for(name: &str, email: &str, password: &str) -> FieldErrors {
        check(&Registration {
            username: name.into(),
            email: email.into(),
            password: password.into(),
        })
    }

    #[test]
    fn accepts_ordinary_accounts() {
        assert!(errors_for("Cookiezi", "c@osu.ppy", "correct horse").is_empty());
        assert!(errors_for("[Rei]-x", "c@a.b", "p4ssw0rd!").is_empty());
    }

    #[test]
    fn rejects_hostile_forms() {
        let e = errors_for("x'; DROP TABLE users;--", "not-an-email", "aaaa");
        assert!(e.0.contains_key("username") && e.0.contains_key("user_email"));
        assert_eq!(e.0["password"].len(), 2);
        assert!(
            errors_for(&"a".repeat(10_000), "a@b.c", "abcdefgh")
                .0
                .contains_key("username")
        );
        assert!(
            errors_for("a b_c", "a@b.c", "abcdefgh")
                .0
                .contains_key("username")
        );
        assert!(
            errors_for("Peace", "a@b.c", "abcdefgh")
                .0
                .contains_key("username")
        );
        assert!(errors_for("abc", "a@b.c", "ABCdefgh").is_empty());
        assert!(
            errors_for("abcdefgh", "a@b.c", "ABCDEFGH")
                .0
                .contains_key("password")
        );
    }

    #[test]
    fn the_email_limit_holds_for_the_stored_form() {
        // 'İ' is two bytes but lower-cases to three: 245 bytes as typed, 365 as stored
        // (fuzz/regressions/registration_form/email_longer_once_lowercased).
        let email = format!("{}@a.bc", "İ".repeat(120));
        assert!(email.len() <= MAX_EMAIL_LEN);
        let e = errors_for("abc", &email, "correct horse");
        assert!(e.0.contains_key("user_email"), "{e:?}");
    }

    #[test]
    fn sign_up_forms_are_read_like_the_client_sends_them() {
        let form = SignUpForm::from_fields([
            ("user[username]", "first"),
            ("user[username]", "Cookiezi"),
            ("user[user_email]", "c@osu.ppy"),
            ("user[password]", "correct horse"),
            ("other", "ignored"),
        ]);
        assert_eq!(
            form.registration.username, "Cookiezi",
            "the last value wins"
        );
        assert!(form.check_only, "no `check` only validates");
        assert!(SignUpForm::from_fields([("check", "1")]).check_only);
        assert!(!SignUpForm::from_fields([("check", "0")]).check_only);
        let long = "x".repeat(10 * MAX_FORM_FIELD_CHARS);
        let form = SignUpForm::from_fields([("user[password]", long.as_str())]);
        assert_eq!(form.registration.password.len(), MAX_FORM_FIELD_CHARS);
    }

    /// Forms biased towards the edges of the rules: names from the allowed alphabet and
    /// around the length limits, emails with non-ASCII text that changes length when
    /// lower-cased, passwords of any text.
    fn form() -> impl proptest::strategy::Strategy<Value = (String, String, String)> {
        use proptest::string::string_regex;
        let name = string_regex("[a-zA-Z0-9 _\\-\\[\\]]{0,18}").expect("valid regex");
        let email = string_regex("[a-zA-Z0-9._İ\\u{80}-\\u{10ffff}]{0,140}@[a-zİ0-9.]{0,130}")
            .expect("valid regex");
        let password = string_regex(".{0,40}").expect("valid regex");
        (name, email, password)
    }

    proptest::proptest! {
        // The same property as `fuzz/fuzz_targets/registration_form.rs`, under plain
        // `cargo test`: an accepted form fits the database's columns on every backend and
        // its name reads back through the login parser.
        #[test]
        fn accepted_forms_fit_the_database((name, email, password) in form()) {
            let form = SignUpForm::from_fields([
                ("user[username]", name),
                ("user[user_email]", email),
                ("user[password]", password),
            ]);
            let reg = &form.registration;
            if check(reg).is_empty() {
                let safe_name = peace_db::safe_name(&reg.username);
                proptest::prop_assert!(!safe_name.is_empty() && safe_name.len() <= 32);
                proptest::prop_assert!(peace_db::normalize_email(&reg.email).len() <= MAX_EMAIL_LEN);
                let login = format!("{}\n{}\nb20240101|0|0|a:b:c:d:e:|0\n", reg.username, "0".repeat(32));
                let parsed = peace_bancho::LoginRequest::parse(login.as_bytes()).map(|p| p.username);
                proptest::prop_assert_eq!(parsed, Ok(reg.username.clone()));
            }
        }
    }
}
