//! Settings of the actor system that an operator may change (`cluster.toml`).

use std::time::Duration;

/// How the node's actors behave.
#[derive(Debug, Clone)]
pub struct WorldConfig {
    /// A session with no poll for this long is logged out.
    pub idle_timeout: Duration,
    /// Upper bound for one call to an actor (a poll, a channel join).
    pub call_timeout: Duration,
    /// bcrypt cost for new passwords (12 in production; tests use 4).
    pub bcrypt_cost: u32,
    /// Oldest client build accepted, as `YYYYMMDD`; 0 accepts any.
    pub min_client_date: u32,
    /// Shown to every player at login.
    pub welcome_message: String,
    /// `image_url|click_url` for the main-menu icon; empty for none.
    pub menu_icon: String,
    /// Every session gets the supporter privilege (the client shows osu!direct only to
    /// supporters); off: only accounts that have it in the database.
    pub supporter_for_everyone: bool,
    /// Key that signs session tokens. Every node of a cluster needs the same one.
    pub secret: Vec<u8>,
    pub limits: crate::limits::LimitsConfig,
    /// The node's name, roles and peers.
    pub cluster: crate::cluster::ClusterConfig,
    /// Scores, boards and beatmap sources.
    pub scores: crate::scores::ScoresConfig,
    /// Where replays and `.osu` files are kept; `None` keeps them in memory (tests).
    pub storage: Option<crate::scores::storage::Storage>,
}

impl Default for WorldConfig {
    fn default() -> Self {
        Self {
            idle_timeout: Duration::from_secs(120),
            call_timeout: Duration::from_secs(5),
            bcrypt_cost: 12,
            min_client_date: 0,
            welcome_message: "Welcome to Peace!".to_owned(),
            menu_icon: String::new(),
            supporter_for_everyone: true,
            secret: Vec::new(),
            limits: crate::limits::LimitsConfig::default(),
            cluster: crate::cluster::ClusterConfig::default(),
            scores: crate::scores::ScoresConfig::default(),
            storage: None,
        }
    }
}
