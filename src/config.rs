//! `cluster.toml`: the node's configuration. Every key has a default, so an empty file
//! (or none at all) runs a single-node server on SQLite.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    pub http: HttpSection,
    pub database: DatabaseSection,
    pub sessions: SessionsSection,
    pub login: LoginSection,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    pub name: String,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            name: "node-1".into(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    pub addr: String,
    pub domain: String,
    pub trust_proxy_headers: bool,
}

impl Default for HttpSection {
    fn default() -> Self {
        Self {
            addr: "127.0.0.1:8080".into(),
            domain: "peace.local".into(),
            trust_proxy_headers: false,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSection {
    pub url: String,
    pub pool_size: usize,
    pub query_timeout_secs: u64,
    pub migrate_on_start: bool,
}

impl Default for DatabaseSection {
    fn default() -> Self {
        Self {
            url: "sqlite://data/peace.db".into(),
            pool_size: 8,
            query_timeout_secs: 5,
            migrate_on_start: true,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionsSection {
    pub idle_timeout_secs: u64,
    pub call_timeout_ms: u64,
    /// Signs session tokens; every node of a cluster needs the same. Empty: random.
    pub secret: String,
}

impl Default for SessionsSection {
    fn default() -> Self {
        Self {
            idle_timeout_secs: 120,
            call_timeout_ms: 5000,
            secret: String::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginSection {
    pub bcrypt_cost: u32,
    pub min_client_date: u32,
    pub welcome_message: String,
    pub menu_icon: String,
}

impl Default for LoginSection {
    fn default() -> Self {
        let world = peace_actors::WorldConfig::default();
        Self {
            bcrypt_cost: world.bcrypt_cost,
            min_client_date: world.min_client_date,
            welcome_message: world.welcome_message,
            menu_icon: world.menu_icon,
        }
    }
}

impl Config {
    /// Reads `path`; a missing file means all defaults.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::default()),
            Err(e) => Err(anyhow::anyhow!("reading {}: {e}", path.display())),
        }
    }

    pub fn db_config(&self) -> peace_db::DbConfig {
        peace_db::DbConfig {
            url: self.database.url.clone(),
            pool_size: self.database.pool_size,
            query_timeout: Duration::from_secs(self.database.query_timeout_secs.max(1)),
        }
    }

    pub fn world_config(&self) -> peace_actors::WorldConfig {
        peace_actors::WorldConfig {
            idle_timeout: Duration::from_secs(self.sessions.idle_timeout_secs.max(1)),
            call_timeout: Duration::from_millis(self.sessions.call_timeout_ms.max(100)),
            bcrypt_cost: self.login.bcrypt_cost.clamp(4, 31),
            min_client_date: self.login.min_client_date,
            welcome_message: self.login.welcome_message.clone(),
            menu_icon: self.login.menu_icon.clone(),
            secret: self.sessions.secret.as_bytes().to_vec(),
        }
    }

    pub fn gateway_config(&self) -> peace_gateway::GatewayConfig {
        peace_gateway::GatewayConfig {
            domain: self.http.domain.clone(),
            trust_proxy_headers: self.http.trust_proxy_headers,
        }
    }
}
