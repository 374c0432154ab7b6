//! osu!direct's text replies (`/web/osu-search.php`, `/web/osu-search-set.php`) and the
//! search request's special values, as the stable client reads them.
//!
//! A set is one line of `|`-separated fields:
//!
//! ```text
//! file.osz|artist|title|creator|status|rating|last update|set id|thread id|video|storyboard|size|size without video|diff@mode,diff@mode,…
//! ```
//!
//! `status` is the osu!api v1 number (`approved`: −2 graveyard … 4 loved). The
//! difficulties are `text@mode`, comma-separated: the client shows the text and files the
//! difficulty under the mode, so the text carries the star rating as well. The search
//! reply starts with a line holding the number of sets; 101 (more than a page) makes the
//! client offer the next page. `-1` and a message on the next line is an error the client
//! shows. The set reply is the one line, without a count.
//!
//! Checked against the servers that answer these from cheesegull mirrors (bancho.py's
//! `osuSearchHandler` and `osuSearchSetHandler`, Ripple's `cheesegull.toDirect`): the same
//! fourteen fields in the same order, the mirror's `RankedStatus` (the osu!api numbering)
//! passed as the status, and 101 for a full page.

use std::fmt::Write as _;

/// Sets on one page of a search (the client asks page `p` as `p * 100`).
pub const PAGE_SIZE: usize = 100;

/// The count line that makes the client offer another page.
pub const MORE_PAGES: usize = PAGE_SIZE + 1;

/// What the client searches for (`q`). The three sort words are the client's own
/// buttons; anything else is text to match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DirectQuery {
    /// `Newest`: the latest sets first.
    Newest,
    /// `Top Rated`.
    TopRated,
    /// `Most Played`.
    MostPlayed,
    /// Words to match against artist, title, creator and difficulty names.
    Text(String),
}

impl DirectQuery {
    /// The query for a decoded `q`. The client writes the space of the two-word values as
    /// `+`, which a decoder may or may not have turned back into a space already.
    pub fn from_q(q: &str) -> DirectQuery {
        let q = q.trim();
        match q.replace('+', " ").as_str() {
            "Newest" => DirectQuery::Newest,
            "Top Rated" => DirectQuery::TopRated,
            "Most Played" => DirectQuery::MostPlayed,
            _ => DirectQuery::Text(q.to_owned()),
        }
    }

    /// The text to match, if the query is not one of the sort words (and not empty).
    pub fn text(&self) -> Option<&str> {
        match self {
            DirectQuery::Text(text) if !text.is_empty() => Some(text),
            _ => None,
        }
    }
}

/// One difficulty of a set, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectMap {
    /// The difficulty name.
    pub version: String,
    /// Star rating without mods.
    pub stars: f64,
    /// 0 osu!, 1 taiko, 2 catch, 3 mania.
    pub mode: u8,
}

/// One set, as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectSet {
    pub set_id: i32,
    pub artist: String,
    pub title: String,
    pub creator: String,
    /// The osu!api v1 number (−2 graveyard, −1 WIP, 0 pending, 1 ranked, 2 approved,
    /// 3 qualified, 4 loved).
    pub status: i32,
    /// The players' rating (0 to 10); 0 when unknown.
    pub rating: f64,
    /// `YYYY-MM-DD HH:MM:SS` (UTC).
    pub last_update: String,
    pub has_video: bool,
    /// Listed easiest first.
    pub maps: Vec<DirectMap>,
}

impl DirectSet {
    /// The set's line, without a line break.
    pub fn render(&self) -> String {
        let mut maps: Vec<&DirectMap> = self.maps.iter().collect();
        maps.sort_by(|a, b| a.stars.total_cmp(&b.stars));
        let diffs = maps
            .iter()
            .map(|m| {
                let stars = if m.stars.is_finite() { m.stars } else { 0.0 };
                format!("[{stars:.2}★] {}@{}", diff_text(&m.version), m.mode)
            })
            .collect::<Vec<_>>()
            .join(",");
        let rating = if self.rating.is_finite() {
            self.rating.clamp(0.0, 10.0)
        } else {
            0.0
        };
        let mut line = String::new();
        // Thread id, storyboard and both file sizes are unknown here: 0, as the client
        // takes a 0 for "none".
        let _ = write!(
            line,
            "{id}.osz|{artist}|{title}|{creator}|{status}|{rating:.1}|{updated}|{id}|0|{video}|0|0|0|{diffs}",
            id = self.set_id,
            artist = field(&self.artist),
            title = field(&self.title),
            creator = field(&self.creator),
            status = self.status.clamp(-2, 4),
            updated = field(&self.last_update),
            video = u8::from(self.has_video),
        );
        line
    }
}

/// A page of search results: the count line (101 for a full page), then one line per set.
pub fn render_search(sets: &[DirectSet]) -> String {
    let count = if sets.len() >= PAGE_SIZE {
        MORE_PAGES
    } else {
        sets.len()
    };
    let mut reply = count.to_string();
    for set in sets.iter().take(PAGE_SIZE) {
        reply.push('\n');
        reply.push_str(&set.render());
    }
    reply
}

/// An error the client shows in its osu!direct panel.
pub fn render_error(message: &str) -> String {
    format!("-1\n{}", message.replace(['\n', '\r'], " "))
}

/// A set field: a `|` would shift every field after it, and a line break would end the
/// set (osu! itself lets `|` through, and the client then misreads the line).
fn field(text: &str) -> String {
    text.replace('|', "I").replace(['\n', '\r'], " ")
}

/// A difficulty's text: besides the set's separators, `,` would split the difficulty and
/// `@` would end its text early.
fn diff_text(text: &str) -> String {
    field(text).replace(',', ".").replace('@', "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(maps: usize) -> DirectSet {
        DirectSet {
            set_id: 1,
            artist: "Kenji Ninuma".into(),
            title: "DISCO PRINCE".into(),
            creator: "peppy".into(),
            status: 1,
            rating: 0.0,
            last_update: "2014-03-10 16:31:10".into(),
            has_video: false,
            maps: (0..maps)
                .map(|i| DirectMap {
                    version: format!("Diff {i}"),
                    stars: 5.0 - i as f64,
                    mode: 0,
                })
                .collect(),
        }
    }

    #[test]
    fn a_set_is_fourteen_fields_with_its_difficulties_easiest_first() {
        let mut s = set(2);
        s.maps[0].mode = 3;
        s.has_video = true;
        assert_eq!(
            s.render(),
            "1.osz|Kenji Ninuma|DISCO PRINCE|peppy|1|0.0|2014-03-10 16:31:10|1|0|1|0|0|0|\
             [4.00★] Diff 1@0,[5.00★] Diff 0@3"
        );
        assert_eq!(s.render().split('|').count(), 14);
    }

    #[test]
    fn separators_in_names_cannot_shift_fields() {
        let mut s = set(1);
        s.title = "A|B\nC".into();
        s.maps[0].version = "x@y, z|".into();
        s.maps[0].stars = f64::NAN;
        let line = s.render();
        assert_eq!(line.split('|').count(), 14, "{line}");
        assert!(!line.contains('\n'));
        assert!(line.ends_with("|[0.00★] xy. zI@0"), "{line}");
    }

    #[test]
    fn a_full_page_answers_101() {
        assert_eq!(render_search(&[]), "0");
        let two = render_search(&[set(1), set(1)]);
        assert_eq!(two.lines().count(), 3);
        assert!(two.starts_with("2\n1.osz|"));
        let full = vec![set(1); PAGE_SIZE];
        let reply = render_search(&full);
        assert!(reply.starts_with("101\n"));
        assert_eq!(reply.lines().count(), PAGE_SIZE + 1);
        assert_eq!(
            render_search(&vec![set(1); PAGE_SIZE + 5]).lines().count(),
            101
        );
    }

    #[test]
    fn errors_are_minus_one_and_one_line() {
        assert_eq!(render_error("mirror\ndown"), "-1\nmirror down");
    }

    #[test]
    fn the_sort_words_and_text() {
        assert_eq!(DirectQuery::from_q("Newest"), DirectQuery::Newest);
        assert_eq!(DirectQuery::from_q("Top Rated"), DirectQuery::TopRated);
        assert_eq!(DirectQuery::from_q("Top+Rated"), DirectQuery::TopRated);
        assert_eq!(DirectQuery::from_q("Most+Played"), DirectQuery::MostPlayed);
        assert_eq!(
            DirectQuery::from_q(" disco prince "),
            DirectQuery::Text("disco prince".into())
        );
        assert_eq!(DirectQuery::from_q("").text(), None);
        assert_eq!(DirectQuery::Newest.text(), None);
    }
}
