//! Repositories: one module per table, each adding methods to [`crate::Database`].
//! Queries are written once and run on any backend through [`crate::pool::run`].

pub mod audit;
pub mod beatmaps;
pub mod channels;
pub mod client_web;
pub mod logins;
pub mod mail;
pub mod match_games;
pub mod overrides;
pub mod recalc;
pub mod relationships;
pub mod score_moderation;
pub mod scores;
pub mod screenshots;
pub mod sessions;
pub mod stats;
pub mod users;

/// `text` cut to at most `max_chars` characters (never inside a character).
///
/// SQLite does not enforce `VARCHAR(n)`; PostgreSQL and MySQL (in the strict mode every
/// connection sets) refuse a longer value. Records of text the client chose (its version
/// string, a beatmap's name) are cut to their column's width, so that every backend
/// stores the same thing and none refuses the whole record.
pub(crate) fn fit(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        Some((end, _)) => text[..end].to_owned(),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn fit_cuts_at_characters_not_bytes() {
        assert_eq!(fit("abc", 5), "abc");
        assert_eq!(fit("abcdef", 3), "abc");
        assert_eq!(fit("ééé", 2), "éé");
        assert_eq!(fit("", 0), "");
    }
}
