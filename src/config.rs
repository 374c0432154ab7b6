//! `cluster.toml`: the node's configuration. Every key has a default, so an empty file
//! (or none at all) runs a single-node server on SQLite.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub node: NodeSection,
    pub cluster: ClusterSection,
    pub api: ApiSection,
    pub http: HttpSection,
    pub database: DatabaseSection,
    pub sessions: SessionsSection,
    pub login: LoginSection,
    pub limits: LimitsSection,
    pub scores: ScoresSection,
    pub beatmaps: BeatmapsSection,
    pub storage: StorageSection,
    pub tls: TlsSection,
    pub web: WebSection,
}

/// `[web]`: what the client's web calls answer beyond the database.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct WebSection {
    /// Main-menu background images (`osu-getseasonal.php`): http(s) urls of images the
    /// client downloads and shows in turn; empty for the client's own.
    pub seasonal_backgrounds: Vec<String>,
    /// Where osu!direct's thumbnails and song previews (`b.<domain>/thumb/…`,
    /// `/preview/…`) are sent: a mirror of b.ppy.sh's paths; empty answers 404.
    pub beatmap_media_url: String,
}

impl WebSection {
    /// The most backgrounds listed, and the longest url.
    const MAX_BACKGROUNDS: usize = 32;
    const MAX_URL_LEN: usize = 512;

    fn validate(&self) -> anyhow::Result<()> {
        if self.seasonal_backgrounds.len() > Self::MAX_BACKGROUNDS {
            anyhow::bail!(
                "[web] seasonal_backgrounds: at most {} urls",
                Self::MAX_BACKGROUNDS
            );
        }
        let media = &self.beatmap_media_url;
        if !media.is_empty()
            && (!(media.starts_with("http://") || media.starts_with("https://"))
                || reqwest::Url::parse(media).is_err()
                || media.len() > Self::MAX_URL_LEN)
        {
            anyhow::bail!(
                "[web] beatmap_media_url {media:?}: an http:// or https:// url of at most {} \
                 characters (https://b.ppy.sh), or \"\" for none",
                Self::MAX_URL_LEN
            );
        }
        for url in &self.seasonal_backgrounds {
            let parsed = reqwest::Url::parse(url)
                .map_err(|e| anyhow::anyhow!("[web] seasonal_backgrounds {url:?}: {e}"))?;
            if !matches!(parsed.scheme(), "http" | "https") || url.len() > Self::MAX_URL_LEN {
                anyhow::bail!(
                    "[web] seasonal_backgrounds {url:?}: an http:// or https:// url of at most \
                     {} characters",
                    Self::MAX_URL_LEN
                );
            }
        }
        Ok(())
    }
}

/// `[tls]`: HTTPS for the osu! client, on a listener of its own (docs/tls.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TlsSection {
    pub mode: TlsMode,
    /// The HTTPS listener; `[http] addr` stays as it is.
    pub addr: String,
    /// Where certificates, keys and the ACME account are kept.
    pub dir: String,
    /// `files`: the PEM certificate chain and its private key.
    pub cert: String,
    pub key: String,
    /// `acme`: the account's e-mail, the directory URL, and optionally a PEM CA to trust
    /// for the directory's own HTTPS (a private or test ACME server).
    pub email: String,
    pub directory: String,
    pub directory_ca: String,
}

/// `[tls] mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TlsMode {
    /// No HTTPS listener (behind a reverse proxy that terminates TLS).
    Off,
    /// The operator's certificate files, reloaded when they change.
    Files,
    /// Certificates from an ACME directory (Let's Encrypt) over HTTP-01.
    Acme,
    /// A CA of this server's own, which players trust once.
    LocalCa,
}

impl Default for TlsSection {
    fn default() -> Self {
        Self {
            mode: TlsMode::Off,
            addr: "0.0.0.0:443".into(),
            dir: "data/tls".into(),
            cert: String::new(),
            key: String::new(),
            email: String::new(),
            directory: peace_tls::DEFAULT_DIRECTORY.into(),
            directory_ca: String::new(),
        }
    }
}

/// `[scores]`: how plays are kept.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScoresSection {
    /// Relax and autopilot plays get leaderboards of their own (off: they are refused).
    pub relax_boards: bool,
    /// `pp_cap = { osu = 1500, taiko = 1200 }`: a pass worth more pp than its mode's cap
    /// is held for staff to review instead of ranked. A mode left out has no cap.
    pub pp_cap: PpCapSection,
    /// Scores a pp recalculation (`peace pp recalc`) writes per transaction.
    pub recalc_batch: usize,
    /// A pause after every recalculation batch, in ms, to leave the database to live
    /// traffic (0: none).
    pub recalc_pause_ms: u64,
    /// How often an idle node looks for a recalculation job started elsewhere, in ms.
    pub recalc_poll_ms: u64,
}

impl Default for ScoresSection {
    fn default() -> Self {
        Self {
            relax_boards: true,
            pp_cap: PpCapSection::default(),
            recalc_batch: peace_actors::scores::recalc::DEFAULT_BATCH,
            recalc_pause_ms: 0,
            recalc_poll_ms: peace_actors::scores::recalc::DEFAULT_POLL.as_millis() as u64,
        }
    }
}

/// `[scores] pp_cap`: the most pp a pass may be worth per mode before it is held for
/// review; unset is no cap.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PpCapSection {
    pub osu: Option<f32>,
    pub taiko: Option<f32>,
    pub catch: Option<f32>,
    pub mania: Option<f32>,
}

impl PpCapSection {
    /// A cap is a positive number of pp: a cap of 0 or less would hold every pass.
    fn validate(&self) -> anyhow::Result<()> {
        let modes = [
            ("osu", self.osu),
            ("taiko", self.taiko),
            ("catch", self.catch),
            ("mania", self.mania),
        ];
        for (mode, cap) in modes {
            if let Some(cap) = cap
                && !(cap.is_finite() && cap > 0.0)
            {
                anyhow::bail!("[scores] pp_cap.{mode} = {cap}: use a positive number of pp");
            }
        }
        Ok(())
    }

    fn to_caps(&self) -> peace_actors::scores::PpCaps {
        peace_actors::scores::PpCaps([self.osu, self.taiko, self.catch, self.mania])
    }
}

/// `[beatmaps]`: where the server learns about maps (see docs/scores.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeatmapsSection {
    /// HTTP sources (osu!api v1 or v2), asked in order after the database.
    pub sources: Vec<BeatmapSourceSection>,
    /// The most one source may take to answer, in milliseconds.
    pub source_timeout_ms: u64,
    /// How long "no source knows this map" is believed, in seconds.
    pub miss_ttl_secs: u64,
    /// How old a cached pending or qualified map may get before the sources are asked
    /// about it again, in seconds; 0 never asks again.
    pub refresh_after_secs: u64,
}

impl Default for BeatmapsSection {
    fn default() -> Self {
        Self {
            sources: Vec::new(),
            source_timeout_ms: 3000,
            miss_ttl_secs: 3600,
            refresh_after_secs: 3600,
        }
    }
}

/// One `[[beatmaps.sources]]` entry as written. Which keys it may have depends on its
/// `kind`; [`BeatmapSourceSection::to_source`] checks them and builds the source.
#[derive(Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BeatmapSourceSection {
    /// `osu-api-v1`, `osu-api-v2` or `cheesegull`.
    pub kind: String,
    /// v1: the api's base (`GET {api_url}/get_beatmaps`).
    pub api_url: String,
    /// v1: the api key, if the source wants one.
    pub key: String,
    /// v2: the site (`{base_url}/oauth/token`, `{base_url}/api/v2/...`); empty for
    /// osu! itself.
    pub base_url: String,
    /// v2: the OAuth client's id (a number on osu!; written as a number or a string).
    #[serde(deserialize_with = "string_or_number")]
    pub client_id: String,
    /// v2: the OAuth client's secret, or else
    pub client_secret: String,
    /// v2: the name of the environment variable that holds it.
    pub client_secret_env: String,
    /// The raw `.osu` file, `{id}` replaced by the beatmap id; "" for none. Unset: none
    /// for v1, `{base_url}/osu/{id}` for v2.
    pub osu_file_url: Option<String>,
    /// cheesegull: the mirror's base (`{url}/api/search`, `/api/s/<id>`, ...).
    pub url: String,
    /// cheesegull: where `/d/<set id>` sends the client, `{id}` replaced by the set id;
    /// unset: `{url}/d/{id}`.
    pub download_url: Option<String>,
}

// By hand, so that the key and the secret never reach a log.
impl std::fmt::Debug for BeatmapSourceSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = |secret: &str| if secret.is_empty() { "" } else { "<hidden>" };
        f.debug_struct("BeatmapSourceSection")
            .field("kind", &self.kind)
            .field("api_url", &self.api_url)
            .field("key", &hidden(&self.key))
            .field("base_url", &self.base_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &hidden(&self.client_secret))
            .field("client_secret_env", &self.client_secret_env)
            .field("osu_file_url", &self.osu_file_url)
            .field("url", &self.url)
            .field("download_url", &self.download_url)
            .finish()
    }
}

fn string_or_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Either {
        Text(String),
        Number(u64),
    }
    Ok(match Either::deserialize(d)? {
        Either::Text(text) => text,
        Either::Number(n) => n.to_string(),
    })
}

impl BeatmapSourceSection {
    /// The source this entry describes, or why it is wrong (each error names the entry
    /// by its place, 1-based, and the key). A `client_secret_env` is read here.
    pub fn to_source(
        &self,
        place: usize,
    ) -> anyhow::Result<peace_actors::scores::beatmaps::SourceConfig> {
        use peace_actors::scores::beatmaps::{OSU_WEBSITE, SourceConfig};
        let here = format!("[[beatmaps.sources]] #{place} ({:?})", self.kind);
        let is_url = |url: &str| url.starts_with("http://") || url.starts_with("https://");
        // The keys of the other kind, so that a v1 entry with a client id (or the like)
        // is refused instead of silently ignored.
        let keys_of = |kind: &str| -> Vec<(&'static str, bool)> {
            match kind {
                "osu-api-v1" => vec![
                    ("api_url", !self.api_url.is_empty()),
                    ("key", !self.key.is_empty()),
                ],
                "cheesegull" => vec![
                    ("url", !self.url.is_empty()),
                    ("download_url", self.download_url.is_some()),
                ],
                _ => vec![
                    ("base_url", !self.base_url.is_empty()),
                    ("client_id", !self.client_id.is_empty()),
                    ("client_secret", !self.client_secret.is_empty()),
                    ("client_secret_env", !self.client_secret_env.is_empty()),
                ],
            }
        };
        let refuse_keys_of = |other: &str| -> anyhow::Result<()> {
            if let Some((key, _)) = keys_of(other).into_iter().find(|(_, set)| *set) {
                anyhow::bail!("{here}: {key} is a key of kind \"{other}\" only");
            }
            Ok(())
        };
        let osu_file_url = |default: String| -> anyhow::Result<String> {
            let url = self.osu_file_url.clone().unwrap_or(default);
            let usable = is_url(&url) && url.contains("{id}");
            if !url.is_empty() && !usable {
                anyhow::bail!(
                    "{here}: osu_file_url {url:?}: an http:// or https:// url with {{id}} \
                     where the beatmap id goes, or \"\" for none"
                );
            }
            Ok(url)
        };
        match self.kind.as_str() {
            "osu-api-v1" => {
                refuse_keys_of("osu-api-v2")?;
                refuse_keys_of("cheesegull")?;
                if !is_url(&self.api_url) {
                    anyhow::bail!(
                        "{here}: api_url {:?}: the api's http:// or https:// url \
                         (https://mirror.example/api)",
                        self.api_url
                    );
                }
                Ok(SourceConfig::OsuApiV1 {
                    api_url: self.api_url.clone(),
                    osu_file_url: osu_file_url(String::new())?,
                    key: self.key.clone(),
                })
            }
            "osu-api-v2" => {
                refuse_keys_of("osu-api-v1")?;
                refuse_keys_of("cheesegull")?;
                let base_url = if self.base_url.is_empty() {
                    OSU_WEBSITE.to_owned()
                } else {
                    self.base_url.trim_end_matches('/').to_owned()
                };
                if !is_url(&base_url) {
                    anyhow::bail!(
                        "{here}: base_url {base_url:?}: the site's http:// or https:// url \
                         ({OSU_WEBSITE})"
                    );
                }
                if self.client_id.trim().is_empty() {
                    anyhow::bail!("{here}: client_id must be set (the OAuth client's id)");
                }
                let client_secret = match (
                    self.client_secret.is_empty(),
                    self.client_secret_env.is_empty(),
                ) {
                    (false, true) => self.client_secret.clone(),
                    (true, false) => match std::env::var(&self.client_secret_env) {
                        Ok(secret) if !secret.is_empty() => secret,
                        _ => anyhow::bail!(
                            "{here}: client_secret_env names {:?}, which is not set",
                            self.client_secret_env
                        ),
                    },
                    (true, true) => anyhow::bail!(
                        "{here}: client_secret (or client_secret_env, the environment \
                         variable that holds it) must be set"
                    ),
                    (false, false) => anyhow::bail!(
                        "{here}: client_secret and client_secret_env are two ways to give \
                         one secret: set one of them"
                    ),
                };
                Ok(SourceConfig::OsuApiV2 {
                    osu_file_url: osu_file_url(format!("{base_url}/osu/{{id}}"))?,
                    base_url,
                    client_id: self.client_id.trim().to_owned(),
                    client_secret,
                })
            }
            "cheesegull" => {
                refuse_keys_of("osu-api-v1")?;
                refuse_keys_of("osu-api-v2")?;
                if self.osu_file_url.is_some() {
                    anyhow::bail!("{here}: osu_file_url is not a key of kind \"cheesegull\"");
                }
                let url = self.url.trim_end_matches('/').to_owned();
                if !is_url(&url) {
                    anyhow::bail!(
                        "{here}: url {url:?}: the mirror's http:// or https:// url \
                         (https://mirror.example)"
                    );
                }
                let download_url = self
                    .download_url
                    .clone()
                    .unwrap_or_else(|| format!("{url}/d/{{id}}"));
                if !is_url(&download_url) || !download_url.contains("{id}") {
                    anyhow::bail!(
                        "{here}: download_url {download_url:?}: an http:// or https:// url \
                         with {{id}} where the set id goes"
                    );
                }
                Ok(SourceConfig::Cheesegull { url, download_url })
            }
            other => anyhow::bail!(
                "[[beatmaps.sources]] #{place}: kind {other:?}: \"osu-api-v1\", \"osu-api-v2\" \
                 or \"cheesegull\""
            ),
        }
    }
}

/// `[storage]`: where replays and `.osu` files are kept: a local folder, or an
/// S3-compatible bucket when `s3_bucket` is set (docs/scores.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSection {
    /// A local folder (every node of a cluster must see the same one, e.g. a shared
    /// mount, so that any node serves a replay another received). Unused with a bucket.
    pub folder: String,
    /// An S3 bucket instead of the folder (every node of a cluster names the same one).
    /// The credentials come from the environment (`AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`), never from this file.
    pub s3_bucket: String,
    /// The base url of an S3-compatible server (MinIO, R2, ...); empty for AWS.
    pub s3_endpoint: String,
    /// Empty: `AWS_DEFAULT_REGION`/`AWS_REGION`, else `us-east-1`.
    pub s3_region: String,
    /// Every key under this prefix (`peace/`), to share a bucket; empty for none.
    pub s3_prefix: String,
    /// Allow an `http://` endpoint (a local MinIO); https otherwise.
    pub s3_allow_http: bool,
}

impl Default for StorageSection {
    fn default() -> Self {
        Self {
            folder: "data".into(),
            s3_bucket: String::new(),
            s3_endpoint: String::new(),
            s3_region: String::new(),
            s3_prefix: String::new(),
            s3_allow_http: false,
        }
    }
}

impl StorageSection {
    /// The bucket to use, if `s3_bucket` is set.
    pub fn s3_location(&self) -> Option<peace_actors::scores::storage::S3Location> {
        (!self.s3_bucket.is_empty()).then(|| peace_actors::scores::storage::S3Location {
            bucket: self.s3_bucket.clone(),
            endpoint: self.s3_endpoint.clone(),
            region: self.s3_region.clone(),
            prefix: self.s3_prefix.clone(),
            allow_http: self.s3_allow_http,
        })
    }

    fn validate(&self) -> anyhow::Result<()> {
        if self.s3_bucket.is_empty() {
            let set = [
                ("s3_endpoint", !self.s3_endpoint.is_empty()),
                ("s3_region", !self.s3_region.is_empty()),
                ("s3_prefix", !self.s3_prefix.is_empty()),
                ("s3_allow_http", self.s3_allow_http),
            ];
            if let Some((key, _)) = set.iter().find(|(_, set)| *set) {
                anyhow::bail!("[storage] {key} is set, so s3_bucket must name the bucket");
            }
            if self.folder.is_empty() {
                anyhow::bail!("[storage] folder must name a folder");
            }
            return Ok(());
        }
        let bucket = &self.s3_bucket;
        let edge_ok =
            |c: Option<char>| c.is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
        if !(3..=63).contains(&bucket.len())
            || !bucket
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '.')
            || !edge_ok(bucket.chars().next())
            || !edge_ok(bucket.chars().last())
        {
            anyhow::bail!(
                "[storage] s3_bucket {bucket:?}: 3 to 63 lowercase letters, digits, '-' or '.', \
                 beginning and ending with a letter or digit"
            );
        }
        if !self.s3_endpoint.is_empty() {
            let endpoint = &self.s3_endpoint;
            let url = reqwest::Url::parse(endpoint)
                .map_err(|e| anyhow::anyhow!("[storage] s3_endpoint {endpoint:?}: {e}"))?;
            match url.scheme() {
                "https" => {}
                "http" if self.s3_allow_http => {}
                "http" => anyhow::bail!(
                    "[storage] s3_endpoint {endpoint:?} is plain http: use https, or set \
                     s3_allow_http = true for a server on a trusted network"
                ),
                _ => {
                    anyhow::bail!("[storage] s3_endpoint {endpoint:?}: an http:// or https:// url")
                }
            }
            if url.host_str().is_none_or(str::is_empty)
                || url.query().is_some()
                || url.fragment().is_some()
                || !url.username().is_empty()
                || url.password().is_some()
            {
                anyhow::bail!(
                    "[storage] s3_endpoint {endpoint:?}: a server's base url (scheme, host, \
                     port), with no credentials, query or fragment"
                );
            }
        }
        let region = &self.s3_region;
        if region.len() > 64
            || !region
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        {
            anyhow::bail!("[storage] s3_region {region:?}: letters, digits and '-' (us-east-1)");
        }
        let prefix = &self.s3_prefix;
        let trimmed = prefix.trim_matches('/');
        if !prefix.is_empty()
            && (trimmed.is_empty()
                || trimmed.len() > 256
                || trimmed.split('/').any(|part| {
                    part.is_empty()
                        || part == "."
                        || part == ".."
                        || !part
                            .chars()
                            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
                }))
        {
            anyhow::bail!(
                "[storage] s3_prefix {prefix:?}: folders of letters, digits, '-', '_' and '.' \
                 separated by '/' (peace/ or osu/peace)"
            );
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NodeSection {
    pub name: String,
    /// `gateway` (HTTP), `actors` (hosts players, channels, matches), or both.
    pub roles: Vec<String>,
}

impl Default for NodeSection {
    fn default() -> Self {
        Self {
            name: "node-1".into(),
            roles: vec!["gateway".into(), "actors".into()],
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClusterSection {
    /// Where the cluster listener binds (`IP:PORT`); empty runs a node of one.
    pub listen: String,
    /// `host:port` peers use to reach this node; empty means `listen`.
    pub advertise: String,
    pub seeds: Vec<String>,
    pub cookie: String,
    pub heartbeat_ms: u64,
    pub down_after_ms: u64,
    pub join_grace_ms: u64,
    pub rebalance_batch: usize,
    pub auto_rebalance: bool,
    /// How long a node that gets SIGTERM waits for its drain before it stops anyway.
    pub drain_timeout_secs: u64,
    /// TLS between nodes: this node's certificate chain, its key and the cluster's CA
    /// (PEM files). All three or none.
    pub tls_cert: String,
    pub tls_key: String,
    pub tls_ca: String,
    /// The DNS name in every node's certificate, which connecting nodes verify.
    pub tls_server_name: String,
}

impl Default for ClusterSection {
    fn default() -> Self {
        let c = peace_actors::cluster::ClusterConfig::default();
        Self {
            listen: String::new(),
            advertise: String::new(),
            seeds: Vec::new(),
            cookie: String::new(),
            heartbeat_ms: c.heartbeat.as_millis() as u64,
            down_after_ms: c.down_after.as_millis() as u64,
            join_grace_ms: c.join_grace.as_millis() as u64,
            rebalance_batch: c.rebalance_batch,
            auto_rebalance: c.auto_rebalance,
            drain_timeout_secs: 60,
            tls_cert: String::new(),
            tls_key: String::new(),
            tls_ca: String::new(),
            tls_server_name: peace_sharding::tls::DEFAULT_SERVER_NAME.to_owned(),
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSection {
    /// Bearer token of the JSON API's admin calls (drain, rebalance); empty turns them
    /// off.
    pub admin_token: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSection {
    pub addr: String,
    /// A second listener that serves only `/metrics` and `/api/v1/health` (empty: none).
    /// For scraping nodes without the gateway role, or keeping `/metrics` off the
    /// players' listener.
    pub metrics_addr: String,
    pub domain: String,
    pub trust_proxy_headers: bool,
    pub max_connections: usize,
    pub header_read_timeout_secs: u64,
    pub request_timeout_secs: u64,
}

impl Default for HttpSection {
    fn default() -> Self {
        let limits = peace_gateway::ServeLimits::default();
        Self {
            addr: "127.0.0.1:8080".into(),
            metrics_addr: String::new(),
            domain: "peace.local".into(),
            trust_proxy_headers: false,
            max_connections: limits.max_connections,
            header_read_timeout_secs: limits.header_read_timeout.as_secs(),
            request_timeout_secs: limits.request_timeout.as_secs(),
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
    /// Every player gets the supporter bit, which shows osu!direct in the client.
    pub supporter_for_everyone: bool,
}

impl Default for LoginSection {
    fn default() -> Self {
        let world = peace_actors::WorldConfig::default();
        Self {
            bcrypt_cost: world.bcrypt_cost,
            min_client_date: world.min_client_date,
            welcome_message: world.welcome_message,
            menu_icon: world.menu_icon,
            supporter_for_everyone: world.supporter_for_everyone,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsSection {
    pub failed_logins_per_ip: u32,
    pub failed_logins_per_account: u32,
    pub login_window_secs: u64,
    pub registrations_per_ip: u32,
    pub registration_window_secs: u64,
    pub messages_per_window: u32,
    pub chat_window_secs: u64,
    pub spam_silence_secs: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        let l = peace_actors::limits::LimitsConfig::default();
        Self {
            failed_logins_per_ip: l.failed_logins_per_ip,
            failed_logins_per_account: l.failed_logins_per_account,
            login_window_secs: l.login_window.as_secs(),
            registrations_per_ip: l.registrations_per_ip,
            registration_window_secs: l.registration_window.as_secs(),
            messages_per_window: l.messages_per_window,
            chat_window_secs: l.chat_window.as_secs(),
            spam_silence_secs: l.spam_silence.as_secs(),
        }
    }
}

impl LimitsSection {
    fn to_limits(&self) -> peace_actors::limits::LimitsConfig {
        let secs = |s: u64| Duration::from_secs(s.max(1));
        peace_actors::limits::LimitsConfig {
            failed_logins_per_ip: self.failed_logins_per_ip.max(1),
            failed_logins_per_account: self.failed_logins_per_account.max(1),
            login_window: secs(self.login_window_secs),
            registrations_per_ip: self.registrations_per_ip.max(1),
            registration_window: secs(self.registration_window_secs),
            messages_per_window: self.messages_per_window.max(1),
            chat_window: secs(self.chat_window_secs),
            spam_silence: secs(self.spam_silence_secs),
        }
    }
}

impl Config {
    /// The file read when `--config` is not given.
    pub const DEFAULT_PATH: &'static str = "cluster.toml";

    /// Reads `path`. A file the operator named must exist; the default one
    /// ([`Self::DEFAULT_PATH`]) may be missing, which means all defaults.
    pub fn load(path: &Path, named: bool) -> anyhow::Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                toml::from_str(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !named => Ok(Self::default()),
            Err(e) => Err(anyhow::anyhow!(
                "cannot read the configuration file {}: {e}",
                path.display()
            )),
        }
    }

    pub fn db_config(&self) -> peace_db::DbConfig {
        peace_db::DbConfig {
            url: self.database.url.clone(),
            pool_size: self.database.pool_size,
            query_timeout: Duration::from_secs(self.database.query_timeout_secs.max(1)),
        }
    }

    /// Checks what cannot be defaulted: a node that joins a cluster needs a cookie and a
    /// shared session secret, and a name and roles that make sense.
    pub fn validate(&self) -> anyhow::Result<()> {
        let name = &self.node.name;
        if name.is_empty()
            || name.len() > 64
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        {
            anyhow::bail!("[node] name {name:?}: use 1 to 64 letters, digits, '-', '_' or '.'");
        }
        peace_actors::cluster::Roles::parse(&self.node.roles).map_err(anyhow::Error::msg)?;
        self.scores.pp_cap.validate()?;
        for (i, source) in self.beatmaps.sources.iter().enumerate() {
            source.to_source(i + 1)?;
        }
        self.storage.validate()?;
        self.web.validate()?;
        if !self.http.metrics_addr.is_empty() {
            self.http
                .metrics_addr
                .parse::<std::net::SocketAddr>()
                .map_err(|e| {
                    anyhow::anyhow!("[http] metrics_addr {:?}: {e}", self.http.metrics_addr)
                })?;
        }
        if !self.cluster.listen.is_empty() {
            self.cluster
                .listen
                .parse::<std::net::SocketAddr>()
                .map_err(|e| anyhow::anyhow!("[cluster] listen {:?}: {e}", self.cluster.listen))?;
            if self.cluster.cookie.is_empty() {
                anyhow::bail!("[cluster] cookie must be set (the same on every node)");
            }
            if self.sessions.secret.is_empty() {
                anyhow::bail!(
                    "[sessions] secret must be set (the same on every node) so that any node \
                     accepts any player's session token"
                );
            }
        } else if !self.cluster.seeds.is_empty() {
            anyhow::bail!("[cluster] seeds need a cluster listener: set [cluster] listen too");
        }
        self.validate_tls()?;
        let c = &self.cluster;
        let tls = [&c.tls_cert, &c.tls_key, &c.tls_ca];
        if tls.iter().any(|f| f.is_empty()) && tls.iter().any(|f| !f.is_empty()) {
            anyhow::bail!(
                "[cluster] tls_cert, tls_key and tls_ca go together: set all three or none"
            );
        }
        if let Some(files) = self.cluster_config().tls {
            // Read now, so that a node with broken TLS says which file and does not start.
            peace_sharding::tls::NodeTls::load(&files)
                .map_err(|e| anyhow::anyhow!("[cluster] TLS: {e}"))?;
        }
        Ok(())
    }

    fn validate_tls(&self) -> anyhow::Result<()> {
        let tls = &self.tls;
        if tls.mode == TlsMode::Off {
            return Ok(());
        }
        tls.addr
            .parse::<std::net::SocketAddr>()
            .map_err(|e| anyhow::anyhow!("[tls] addr {:?}: {e}", tls.addr))?;
        if tls.dir.is_empty() {
            anyhow::bail!("[tls] dir must name a folder");
        }
        peace_tls::check_names(&peace_tls::client_names(&self.http.domain)).map_err(|e| {
            anyhow::anyhow!(
                "[http] domain {:?}: HTTPS needs a DNS name ({e})",
                self.http.domain
            )
        })?;
        match tls.mode {
            TlsMode::Files if tls.cert.is_empty() || tls.key.is_empty() => anyhow::bail!(
                "[tls] mode = \"files\" needs cert and key (the PEM certificate chain and its \
                 private key)"
            ),
            TlsMode::Acme if !tls.email.contains('@') => anyhow::bail!(
                "[tls] email {:?}: mode = \"acme\" needs the account's e-mail address",
                tls.email
            ),
            TlsMode::Acme if !tls.directory.starts_with("https://") => anyhow::bail!(
                "[tls] directory {:?}: the ACME directory's https:// URL",
                tls.directory
            ),
            _ => Ok(()),
        }
    }

    /// What `peace_tls::start` needs, or `None` when `[tls] mode` is off.
    pub fn tls_settings(&self) -> Option<peace_tls::TlsSettings> {
        let tls = &self.tls;
        let source = match tls.mode {
            TlsMode::Off => return None,
            TlsMode::LocalCa => peace_tls::Source::LocalCa,
            TlsMode::Files => peace_tls::Source::Files {
                cert: tls.cert.clone().into(),
                key: tls.key.clone().into(),
            },
            TlsMode::Acme => peace_tls::Source::Acme(peace_tls::AcmeSettings {
                email: tls.email.clone(),
                directory: tls.directory.clone(),
                directory_ca: (!tls.directory_ca.is_empty())
                    .then(|| tls.directory_ca.clone().into()),
            }),
        };
        Some(peace_tls::TlsSettings {
            source,
            dir: tls.dir.clone().into(),
        })
    }

    pub fn cluster_config(&self) -> peace_actors::cluster::ClusterConfig {
        let c = &self.cluster;
        let ms = |v: u64| Duration::from_millis(v.max(50));
        peace_actors::cluster::ClusterConfig {
            node_name: self.node.name.clone(),
            listen: c.listen.parse().ok(),
            advertise: (!c.advertise.is_empty()).then(|| c.advertise.clone()),
            seeds: c.seeds.clone(),
            cookie: c.cookie.clone(),
            roles: peace_actors::cluster::Roles::parse(&self.node.roles).unwrap_or_default(),
            heartbeat: ms(c.heartbeat_ms),
            down_after: ms(c.down_after_ms),
            join_grace: ms(c.join_grace_ms),
            rebalance_batch: c.rebalance_batch.clamp(1, 256),
            auto_rebalance: c.auto_rebalance,
            http_addr: None,
            tls: (!c.tls_cert.is_empty()).then(|| peace_sharding::tls::TlsFiles {
                cert: c.tls_cert.clone().into(),
                key: c.tls_key.clone().into(),
                ca: c.tls_ca.clone().into(),
                server_name: c.tls_server_name.clone(),
            }),
        }
    }

    pub fn world_config(&self) -> peace_actors::WorldConfig {
        peace_actors::WorldConfig {
            cluster: self.cluster_config(),
            idle_timeout: Duration::from_secs(self.sessions.idle_timeout_secs.max(1)),
            call_timeout: Duration::from_millis(self.sessions.call_timeout_ms.max(100)),
            bcrypt_cost: self.login.bcrypt_cost.clamp(4, 31),
            min_client_date: self.login.min_client_date,
            welcome_message: self.login.welcome_message.clone(),
            menu_icon: self.login.menu_icon.clone(),
            supporter_for_everyone: self.login.supporter_for_everyone,
            secret: self.sessions.secret.as_bytes().to_vec(),
            limits: self.limits.to_limits(),
            scores: peace_actors::scores::ScoresConfig {
                relax_boards: self.scores.relax_boards,
                pp_cap: self.scores.pp_cap.to_caps(),
                domain: self.http.domain.clone(),
                recalc: peace_actors::scores::recalc::RecalcConfig {
                    batch: self.scores.recalc_batch,
                    pause: Duration::from_millis(self.scores.recalc_pause_ms),
                    poll: Duration::from_millis(self.scores.recalc_poll_ms),
                },
                beatmaps: peace_actors::scores::beatmaps::BeatmapsConfig {
                    // Checked by `validate`, which the server runs first.
                    sources: self
                        .beatmaps
                        .sources
                        .iter()
                        .enumerate()
                        .filter_map(|(i, source)| source.to_source(i + 1).ok())
                        .collect(),
                    source_timeout: Duration::from_millis(self.beatmaps.source_timeout_ms.max(100)),
                    miss_ttl: Duration::from_secs(self.beatmaps.miss_ttl_secs),
                    refresh_after: Duration::from_secs(self.beatmaps.refresh_after_secs),
                },
            },
            // Opened by `storage()`, which can fail.
            storage: None,
        }
    }

    /// The store of replays and `.osu` files: the bucket `[storage] s3_bucket` if set,
    /// else `[storage] folder` (created if missing).
    pub fn storage(&self) -> anyhow::Result<peace_actors::scores::storage::Storage> {
        use peace_actors::scores::storage::Storage;
        Ok(match self.storage.s3_location() {
            Some(location) => Storage::s3(&location)?,
            None => Storage::local(Path::new(&self.storage.folder))?,
        })
    }

    pub fn serve_limits(&self) -> peace_gateway::ServeLimits {
        peace_gateway::ServeLimits {
            max_connections: self.http.max_connections.max(1),
            header_read_timeout: Duration::from_secs(self.http.header_read_timeout_secs.max(1)),
            request_timeout: Duration::from_secs(self.http.request_timeout_secs.max(1)),
        }
    }

    pub fn gateway_config(&self) -> peace_gateway::GatewayConfig {
        peace_gateway::GatewayConfig {
            domain: self.http.domain.clone(),
            trust_proxy_headers: self.http.trust_proxy_headers,
            admin_token: self.api.admin_token.clone(),
            seasonal_backgrounds: self.web.seasonal_backgrounds.clone(),
            beatmap_media_url: self.web.beatmap_media_url.trim_end_matches('/').to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_cluster_toml_is_the_defaults() {
        // The file documents every key with its default value: keep it true.
        let shipped: Config = toml::from_str(include_str!("../cluster.toml")).unwrap();
        assert_eq!(format!("{shipped:?}"), format!("{:?}", Config::default()));
        shipped.validate().unwrap();
    }

    #[test]
    fn pp_caps_are_per_mode_and_positive() {
        let parsed: Config =
            toml::from_str("[scores]\npp_cap = { osu = 1500, mania = 900.5 }\n").unwrap();
        parsed.validate().unwrap();
        let caps = parsed.scores.pp_cap.to_caps();
        assert_eq!(caps.0, [Some(1500.0), None, None, Some(900.5)]);
        for bad in ["{ osu = 0 }", "{ taiko = -1 }", "{ catch = nan }"] {
            let text = format!("[scores]\npp_cap = {bad}\n");
            let parsed: Config = toml::from_str(&text).unwrap();
            assert!(parsed.validate().is_err(), "{bad}");
        }
        assert!(toml::from_str::<Config>("[scores]\npp_cap = { fruits = 1 }\n").is_err());
    }

    #[test]
    fn seasonal_backgrounds_are_http_urls() {
        let mut config = Config::default();
        config.web.seasonal_backgrounds = vec!["https://example.com/bg.jpg".into()];
        config.validate().unwrap();
        for bad in [
            "ftp://example.com/bg.jpg",
            "not a url",
            "javascript:alert(1)",
        ] {
            config.web.seasonal_backgrounds = vec![bad.into()];
            assert!(config.validate().is_err(), "{bad}");
        }
        config.web.seasonal_backgrounds = vec!["https://example.com/a.jpg".into(); 33];
        assert!(config.validate().is_err());
    }

    #[test]
    fn a_cluster_node_needs_a_cookie_and_a_shared_secret() {
        let mut config = Config::default();
        config.cluster.listen = "127.0.0.1:9001".into();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("cookie")
        );
        config.cluster.cookie = "c".into();
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("secret")
        );
        config.sessions.secret = "s".into();
        config.validate().unwrap();
        config.node.roles = vec!["nothing".into()];
        assert!(config.validate().is_err());
        config.node.roles = vec!["gateway".into()];
        config.node.name = "bad name!".into();
        assert!(config.validate().is_err());
    }

    #[test]
    fn the_tls_section_is_checked_key_by_key() {
        let parsed: Config =
            toml::from_str("[tls]\nmode = \"local-ca\"\naddr = \"127.0.0.1:8443\"\n").unwrap();
        parsed.validate().unwrap();
        assert!(matches!(
            parsed.tls_settings().unwrap().source,
            peace_tls::Source::LocalCa
        ));
        let err = toml::from_str::<Config>("[tls]\nmode = \"https\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("mode"), "{err}");
        assert!(Config::default().tls_settings().is_none(), "off by default");

        let mut config = Config::default();
        config.tls.mode = TlsMode::Files;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("cert and key"), "{err}");
        config.tls.cert = "cert.pem".into();
        config.tls.key = "key.pem".into();
        config.validate().unwrap();

        config.tls.mode = TlsMode::Acme;
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("[tls] email"), "{err}");
        config.tls.email = "admin@example.com".into();
        config.validate().unwrap();
        config.tls.directory = "http://acme.example/dir".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("[tls] directory"), "{err}");

        config.tls.mode = TlsMode::LocalCa;
        config.tls.addr = "everywhere".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("[tls] addr"), "{err}");
        config.tls.addr = "0.0.0.0:443".into();
        config.http.domain = "not a domain".into();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("[http] domain"), "{err}");
    }

    #[test]
    fn the_s3_keys_are_checked_key_by_key() {
        let parsed: Config = toml::from_str(
            "[storage]\ns3_bucket = \"peace-replays\"\ns3_endpoint = \"http://127.0.0.1:9000\"\n\
             s3_region = \"eu-west-1\"\ns3_prefix = \"peace/\"\ns3_allow_http = true\n",
        )
        .unwrap();
        parsed.validate().unwrap();
        let location = parsed.storage.s3_location().unwrap();
        assert_eq!(location.bucket, "peace-replays");
        assert_eq!(location.prefix, "peace/");
        assert!(
            Config::default().storage.s3_location().is_none(),
            "a folder by default"
        );
        // Credentials are never read from the file.
        let err = toml::from_str::<Config>("[storage]\ns3_secret_access_key = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("s3_secret_access_key"), "{err}");

        let check = |edit: &dyn Fn(&mut StorageSection), key: &str| {
            let mut config = parsed.clone();
            edit(&mut config.storage);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(&format!("[storage] {key}")), "{key}: {err}");
        };
        check(&|s| s.s3_bucket.clear(), "s3_endpoint");
        check(
            &|s| {
                s.s3_bucket.clear();
                s.s3_endpoint.clear();
                s.s3_region.clear();
            },
            "s3_prefix",
        );
        check(&|s| s.s3_bucket = "Peace_Replays".into(), "s3_bucket");
        check(&|s| s.s3_bucket = "ab".into(), "s3_bucket");
        check(&|s| s.s3_bucket = "-peace".into(), "s3_bucket");
        check(&|s| s.s3_endpoint = "not a url".into(), "s3_endpoint");
        check(&|s| s.s3_endpoint = "ftp://127.0.0.1".into(), "s3_endpoint");
        check(
            &|s| s.s3_endpoint = "http://u:p@127.0.0.1:9000".into(),
            "s3_endpoint",
        );
        check(
            &|s| s.s3_endpoint = "http://127.0.0.1:9000/?a=b".into(),
            "s3_endpoint",
        );
        check(&|s| s.s3_allow_http = false, "s3_endpoint");
        check(&|s| s.s3_region = "eu west".into(), "s3_region");
        check(&|s| s.s3_prefix = "a//b".into(), "s3_prefix");
        check(&|s| s.s3_prefix = "../up".into(), "s3_prefix");
        check(&|s| s.s3_prefix = "/".into(), "s3_prefix");

        // With a bucket the folder is not used, so it may be empty.
        let mut config = parsed.clone();
        config.storage.folder.clear();
        config.storage.s3_endpoint = "https://s3.example.com".into();
        config.storage.s3_allow_http = false;
        config.validate().unwrap();
        config.storage.s3_bucket.clear();
        config.storage.s3_endpoint.clear();
        config.storage.s3_region.clear();
        config.storage.s3_prefix.clear();
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("[storage] folder"), "{err}");
    }

    #[test]
    fn a_cheesegull_mirror_is_a_search_source_with_a_download_url() {
        use peace_actors::scores::beatmaps::SourceConfig;
        let parse = |text: &str| -> anyhow::Result<SourceConfig> {
            let section: BeatmapSourceSection = toml::from_str(text).unwrap();
            section.to_source(1)
        };
        assert_eq!(
            parse("kind = \"cheesegull\"\nurl = \"https://mirror.example/\"\n").unwrap(),
            SourceConfig::Cheesegull {
                url: "https://mirror.example".into(),
                download_url: "https://mirror.example/d/{id}".into(),
            }
        );
        let own = parse(
            "kind = \"cheesegull\"\nurl = \"https://m.example\"\n\
             download_url = \"https://dl.example/{id}\"\n",
        )
        .unwrap();
        assert!(matches!(own, SourceConfig::Cheesegull { download_url, .. }
            if download_url == "https://dl.example/{id}"));
        let err = |text: &str| parse(text).unwrap_err().to_string();
        assert!(err("kind = \"cheesegull\"\n").contains("url \"\""));
        assert!(
            err("kind = \"cheesegull\"\nurl = \"https://m\"\ndownload_url = \"https://d/\"\n")
                .contains("{id}")
        );
        assert!(
            err("kind = \"cheesegull\"\nurl = \"https://m\"\napi_url = \"https://a\"\n")
                .contains("api_url is a key of kind \"osu-api-v1\"")
        );
        let mut web = WebSection {
            beatmap_media_url: "b.ppy.sh".into(),
            ..WebSection::default()
        };
        assert!(
            web.validate()
                .unwrap_err()
                .to_string()
                .contains("beatmap_media_url")
        );
        web.beatmap_media_url = "https://b.ppy.sh".into();
        web.validate().unwrap();
    }

    #[test]
    fn beatmap_sources_are_checked_key_by_key_for_their_kind() {
        use peace_actors::scores::beatmaps::SourceConfig;
        let parsed: Config = toml::from_str(
            "[[beatmaps.sources]]\nkind = \"osu-api-v1\"\napi_url = \"https://mirror.example/api\"\n\
             [[beatmaps.sources]]\nkind = \"osu-api-v2\"\nclient_id = 1234\n\
             client_secret = \"s3cr3t\"\n",
        )
        .unwrap();
        parsed.validate().unwrap();
        let sources = parsed.world_config().scores.beatmaps.sources;
        assert_eq!(
            sources,
            [
                SourceConfig::OsuApiV1 {
                    api_url: "https://mirror.example/api".into(),
                    osu_file_url: String::new(),
                    key: String::new(),
                },
                SourceConfig::OsuApiV2 {
                    base_url: "https://osu.ppy.sh".into(),
                    osu_file_url: "https://osu.ppy.sh/osu/{id}".into(),
                    client_id: "1234".into(),
                    client_secret: "s3cr3t".into(),
                },
            ]
        );
        // The secret is in neither Debug form (which is what gets logged).
        assert!(!format!("{parsed:?}").contains("s3cr3t"));
        assert!(!format!("{sources:?}").contains("s3cr3t"));
        assert_eq!(
            parsed.world_config().scores.beatmaps.refresh_after,
            Duration::from_secs(3600)
        );

        let v2 = parsed.beatmaps.sources[1].clone();
        let check = |edit: &dyn Fn(&mut BeatmapSourceSection), wanted: &str| {
            let mut config = parsed.clone();
            edit(&mut config.beatmaps.sources[1]);
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains("[[beatmaps.sources]] #2"), "{wanted}: {err}");
            assert!(err.contains(wanted), "{wanted}: {err}");
        };
        check(
            &|s| s.kind = "osu-api-v3".into(),
            "\"osu-api-v1\", \"osu-api-v2\" or \"cheesegull\"",
        );
        check(
            &|s| s.url = "https://mirror.example".into(),
            "url is a key of kind \"cheesegull\"",
        );
        check(&|s| s.client_id.clear(), "client_id must be set");
        check(
            &|s| s.client_secret.clear(),
            "client_secret (or client_secret_env",
        );
        check(&|s| s.client_secret_env = "X".into(), "set one of them");
        check(
            &|s| s.api_url = "https://x/api".into(),
            "api_url is a key of kind \"osu-api-v1\"",
        );
        check(
            &|s| s.key = "k".into(),
            "key is a key of kind \"osu-api-v1\"",
        );
        check(&|s| s.base_url = "osu.ppy.sh".into(), "base_url");
        check(
            &|s| s.osu_file_url = Some("https://x/osu/".into()),
            "osu_file_url",
        );
        check(
            &|s| {
                s.client_secret.clear();
                s.client_secret_env = "PEACE_TEST_UNSET_SECRET_VARIABLE".into();
            },
            "PEACE_TEST_UNSET_SECRET_VARIABLE",
        );
        check(
            &|s| {
                *s = BeatmapSourceSection {
                    kind: "osu-api-v1".into(),
                    ..v2.clone()
                };
            },
            "client_id is a key of kind \"osu-api-v2\"",
        );
        check(
            &|s| {
                *s = BeatmapSourceSection {
                    kind: "osu-api-v1".into(),
                    ..Default::default()
                };
            },
            "api_url \"\"",
        );

        // A base url of its own moves the default .osu url with it; "" means none.
        let mut config = parsed.clone();
        config.beatmaps.sources[1].base_url = "http://127.0.0.1:9/".into();
        config.beatmaps.sources[1].osu_file_url = Some(String::new());
        config.validate().unwrap();
        assert!(matches!(
            &config.world_config().scores.beatmaps.sources[1],
            SourceConfig::OsuApiV2 { base_url, osu_file_url, .. }
                if base_url == "http://127.0.0.1:9" && osu_file_url.is_empty()
        ));
        config.beatmaps.sources[1].osu_file_url = None;
        assert!(matches!(
            &config.world_config().scores.beatmaps.sources[1],
            SourceConfig::OsuApiV2 { osu_file_url, .. }
                if osu_file_url == "http://127.0.0.1:9/osu/{id}"
        ));

        // The secret from the environment (PATH is set in any test run; its value
        // stands in for a secret).
        let mut config = parsed.clone();
        config.beatmaps.sources[1].client_secret.clear();
        config.beatmaps.sources[1].client_secret_env = "PATH".into();
        config.validate().unwrap();
        assert!(matches!(
            &config.world_config().scores.beatmaps.sources[1],
            SourceConfig::OsuApiV2 { client_secret, .. }
                if *client_secret == std::env::var("PATH").unwrap()
        ));

        // Unknown keys are refused by name.
        let err = toml::from_str::<Config>(
            "[[beatmaps.sources]]\nkind = \"osu-api-v2\"\nclient_key = \"x\"\n",
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("client_key"), "{err}");
    }

    #[test]
    fn tls_files_go_together_and_are_read_at_validation() {
        let fixture =
            |name: &str| format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"));
        let mut config = Config::default();
        config.cluster.tls_cert = fixture("node.pem");
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("go together"), "{err}");

        config.cluster.tls_key = fixture("node-key.pem");
        config.cluster.tls_ca = fixture("ca.pem");
        config.validate().unwrap();
        assert!(config.cluster_config().tls.is_some());

        config.cluster.tls_ca = fixture("missing.pem");
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("missing.pem"), "the file is named: {err}");
        config.cluster.tls_ca = fixture("node-key.pem");
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("no certificate"), "{err}");
        config.cluster.tls_ca = fixture("ca.pem");
        config.cluster.tls_server_name = "not a name!".into();
        assert!(config.validate().is_err());
    }
}
