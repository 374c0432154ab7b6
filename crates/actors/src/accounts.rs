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
pub const MAX_EMAIL_LEN: usize = 254;

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
    Hashing(String),
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
    let valid = email.len() <= MAX_EMAIL_LEN
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

/// Checks a registration against the rules and the database (names and emails taken).
pub async fn validate(db: &Database, reg: &Registration) -> Result<(), RegisterError> {
    let mut errors = FieldErrors::default();
    check_username(&reg.username, &mut errors);
    check_email(&reg.email, &mut errors);
    check_password(&reg.password, &reg.username, &mut errors);
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
    let hash = hash_password(md5_hex(&reg.password), bcrypt_cost)
        .await
        .map_err(RegisterError::Hashing)?;
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
        let mut e = FieldErrors::default();
        check_username(name, &mut e);
        check_email(email, &mut e);
        check_password(password, name, &mut e);
        e
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
}
