//! A multi-node harness: several real `peace` processes on 127.0.0.1 that form a
//! cluster over one database, driven through their HTTP gateways.
//!
//! Nodes are processes (not tasks of the test) because ractor's pg groups are global to
//! a process: two nodes in one process would share them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::process::{Child, Command};

use super::Gateway;

/// The cluster's shared cookie in tests.
pub const COOKIE: &str = "test-cookie";
/// The admin token of every test node.
pub const ADMIN_TOKEN: &str = "test-admin-token";
/// The session-token secret of every test node.
pub const SESSION_SECRET: &str = "cluster-test-secret";

/// A free port on 127.0.0.1 for a node to bind. Ports are handed out from a counter
/// (so that tests running at once in this process never get the same one, which asking
/// the kernel for port 0 and releasing it does not guarantee) below the kernel's range of
/// ephemeral ports (so that no outgoing connection holds one), and checked free.
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Start somewhere in 20000..30000 that depends on the process, so that two test
    // processes on one machine are unlikely to overlap.
    let _ = NEXT.compare_exchange(
        0,
        20_000 + (std::process::id() % 10_000) as u16,
        Ordering::Relaxed,
        Ordering::Relaxed,
    );
    loop {
        let port = NEXT.fetch_add(1, Ordering::Relaxed);
        let port = if port >= 32_000 {
            20_000 + port % 12_000
        } else {
            port
        };
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

pub struct Node {
    pub name: String,
    /// `roles` of the node's configuration, e.g. `["gateway", "actors"]`.
    pub roles: Vec<&'static str>,
    pub http_port: u16,
    pub cluster_port: u16,
    /// TLS between nodes: the fixture names of this node's certificate and of the CA
    /// it trusts (`tests/fixtures/tls/<name>.pem`), or plain TCP.
    pub tls: Option<(&'static str, &'static str)>,
    /// `[cluster] join_grace_ms`: how long the node waits for its seeds before it deals
    /// itself a shard table.
    pub join_grace_ms: u64,
    /// More configuration, appended to the node's file (whole tables, e.g. `[scores]`).
    pub extra_config: String,
    child: Option<Child>,
    log: PathBuf,
}

/// The test certificates: a cluster CA with one node certificate, and another CA with
/// its own (`tests/fixtures/tls/`, valid for a century).
pub const CLUSTER_TLS: (&str, &str) = ("node", "ca");
pub const ROGUE_TLS: (&str, &str) = ("rogue", "rogue-ca");

fn tls_fixture(name: &str) -> String {
    format!("{}/tests/fixtures/tls/{name}", env!("CARGO_MANIFEST_DIR"))
}

pub struct TestCluster {
    dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    database_url: String,
    http: reqwest::Client,
}

impl TestCluster {
    /// Starts `n` nodes (the first alone, so that it migrates the database, then the
    /// rest) and waits until they form one cluster with the shards spread over them.
    pub async fn start(n: usize) -> Self {
        let roles = vec![["gateway", "actors"].as_slice(); n];
        Self::start_with_roles(&roles).await
    }

    /// Starts one node per entry of `roles` (the first needs the gateway role).
    pub async fn start_with_roles(roles: &[&[&'static str]]) -> Self {
        Self::start_planned(roles, None).await
    }

    /// Like [`TestCluster::start`], with TLS between the nodes.
    pub async fn start_tls(n: usize) -> Self {
        let roles = vec![["gateway", "actors"].as_slice(); n];
        Self::start_planned(&roles, Some(CLUSTER_TLS)).await
    }

    /// A cluster with no nodes yet: add them with [`TestCluster::add_node`] and start
    /// them with [`TestCluster::launch`]. The first node added is every node's seed.
    pub fn planned() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let database_url = format!("sqlite://{}/peace.db", dir.path().display());
        Self {
            nodes: Vec::new(),
            database_url,
            http: reqwest::Client::new(),
            dir,
        }
    }

    async fn start_planned(
        roles: &[&[&'static str]],
        tls: Option<(&'static str, &'static str)>,
    ) -> Self {
        let n = roles.len();
        let mut cluster = Self::planned();
        for (i, roles) in roles.iter().enumerate() {
            let node = cluster.add_node_with_roles(&format!("node-{}", i + 1), roles);
            cluster.nodes[node].tls = tls;
        }
        cluster.launch(0, COOKIE);
        cluster.wait_healthy(0).await;
        for i in 1..n {
            cluster.launch(i, COOKIE);
        }
        let all: Vec<usize> = (0..n).collect();
        cluster.wait_formed(&all).await;
        cluster
    }

    /// Adds a node with both roles to the plan (not started); returns its index.
    pub fn add_node(&mut self, name: &str) -> usize {
        self.add_node_with_roles(name, &["gateway", "actors"])
    }

    /// Adds a node with these roles to the plan (not started); returns its index.
    pub fn add_node_with_roles(&mut self, name: &str, roles: &[&'static str]) -> usize {
        let log = self.dir.path().join(format!("{name}.log"));
        self.nodes.push(Node {
            name: name.to_owned(),
            roles: roles.to_vec(),
            http_port: free_port(),
            cluster_port: free_port(),
            tls: None,
            join_grace_ms: 1500,
            extra_config: String::new(),
            child: None,
            log,
        });
        self.nodes.len() - 1
    }

    fn config(&self, i: usize, cookie: &str) -> String {
        let node = &self.nodes[i];
        let seed = self.nodes[0].cluster_port;
        let roles: Vec<String> = node.roles.iter().map(|r| format!("{r:?}")).collect();
        let tls = node.tls.map_or(String::new(), |(cert, ca)| {
            format!(
                "tls_cert = {:?}\ntls_key = {:?}\ntls_ca = {:?}\n",
                tls_fixture(&format!("{cert}.pem")),
                tls_fixture(&format!("{cert}-key.pem")),
                tls_fixture(&format!("{ca}.pem")),
            )
        });
        format!(
            r#"[node]
name = "{name}"
roles = [{roles}]
[http]
addr = "127.0.0.1:{http}"
[database]
url = "{db}"
[storage]
folder = "{files}"
[sessions]
secret = "{session_secret}"
idle_timeout_secs = 60
[login]
bcrypt_cost = 4
[limits]
registrations_per_ip = 100000
messages_per_window = 1000000
[api]
admin_token = "{admin}"
[cluster]
listen = "127.0.0.1:{cluster}"
seeds = ["127.0.0.1:{seed}"]
cookie = "{cookie}"
heartbeat_ms = 200
down_after_ms = 1500
join_grace_ms = {join_grace}
{tls}
{extra}"#,
            extra = node.extra_config,
            name = node.name,
            join_grace = node.join_grace_ms,
            admin = ADMIN_TOKEN,
            session_secret = SESSION_SECRET,
            roles = roles.join(", "),
            http = node.http_port,
            cluster = node.cluster_port,
            db = self.database_url,
            files = self.dir.path().join("files").display(),
        )
    }

    /// Starts node `i` with `cookie`.
    pub fn launch(&mut self, i: usize, cookie: &str) {
        let path = self.dir.path().join(format!("{}.toml", self.nodes[i].name));
        std::fs::write(&path, self.config(i, cookie)).unwrap();
        let log = std::fs::File::options()
            .create(true)
            .append(true)
            .open(&self.nodes[i].log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_peace"))
            .arg("--config")
            .arg(&path)
            .arg("serve")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .kill_on_drop(true)
            .spawn()
            .expect("the peace binary starts");
        self.nodes[i].child = Some(child);
    }

    /// Runs `peace --config <node i's configuration> ARGS` (e.g. `user add`) to its end.
    pub async fn cli(&self, i: usize, args: &[&str]) -> std::process::Output {
        let path = self.dir.path().join(format!("{}.toml", self.nodes[i].name));
        let output = Command::new(env!("CARGO_BIN_EXE_peace"))
            .arg("--config")
            .arg(&path)
            .args(args)
            .output()
            .await
            .unwrap();
        assert!(
            output.status.success(),
            "peace {args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// Kills node `i` at once (SIGKILL: no goodbye to its peers).
    pub async fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.start_kill();
            let _ = child.wait().await;
        }
    }

    /// Freezes node `i` (SIGSTOP): its process holds its connections open and answers
    /// nothing, as a node stuck in a long pause or behind a broken network would.
    pub async fn freeze(&self, i: usize) {
        let pid = self.nodes[i]
            .child
            .as_ref()
            .and_then(Child::id)
            .expect("a running node");
        let status = Command::new("kill")
            .args(["-STOP", &pid.to_string()])
            .status()
            .await
            .unwrap();
        assert!(status.success());
    }

    /// Stops node `i` as an operator would (SIGTERM: it drains itself first).
    pub async fn stop(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .args(["-TERM", &pid.to_string()])
                    .status()
                    .await;
            }
            let _ = tokio::time::timeout(Duration::from_secs(90), child.wait()).await;
            let _ = child.start_kill();
        }
    }

    /// An admin call on node `i`; returns the HTTP status.
    pub async fn admin(&self, i: usize, path: &str) -> u16 {
        let url = format!("http://127.0.0.1:{}{path}", self.nodes[i].http_port);
        self.http
            .post(url)
            .bearer_auth(ADMIN_TOKEN)
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// Node `name` as node `i` sees it in its cluster view.
    pub async fn node_view(&self, i: usize, name: &str) -> Option<Value> {
        let view = self.view(i).await?;
        view["nodes"]
            .as_array()?
            .iter()
            .find(|n| n["name"] == name)
            .cloned()
    }

    /// A connection of the test's own to the database the nodes share.
    pub async fn database(&self) -> peace_db::Database {
        peace_db::Database::connect(&peace_db::DbConfig::new(&self.database_url))
            .await
            .expect("connecting to the cluster's database")
    }

    pub fn gateway(&self, i: usize) -> Gateway {
        Gateway::new(format!("http://127.0.0.1:{}", self.nodes[i].http_port))
    }

    /// `GET /api/v1/cluster` on node `i`.
    pub async fn view(&self, i: usize) -> Option<Value> {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/cluster",
            self.nodes[i].http_port
        );
        let response = self.http.get(url).send().await.ok()?;
        response.json().await.ok()
    }

    /// The node hosting `kind/key`, as node `i` sees it.
    pub async fn where_is(&self, i: usize, kind: &str, key: &str) -> String {
        let url = format!(
            "http://127.0.0.1:{}/api/v1/entities/{kind}/{key}",
            self.nodes[i].http_port
        );
        let body: Value = self
            .http
            .get(url)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        body["node"].as_str().unwrap().to_owned()
    }

    pub async fn wait_healthy(&self, i: usize) {
        let url = format!("http://127.0.0.1:{}/api/v1/health", self.nodes[i].http_port);
        self.wait(&format!("{} to be healthy", self.nodes[i].name), || {
            let (http, url) = (self.http.clone(), url.clone());
            async move { http.get(url).send().await.is_ok_and(|r| r.status() == 200) }
        })
        .await;
    }

    /// Waits until each of `members` with a gateway sees exactly them up, with one table
    /// epoch and every one of them that hosts entities owning shards.
    pub async fn wait_formed(&self, members: &[usize]) {
        let names: Vec<String> = members
            .iter()
            .map(|&i| self.nodes[i].name.clone())
            .collect();
        let hosts: Vec<String> = members
            .iter()
            .filter(|&&i| self.nodes[i].roles.contains(&"actors"))
            .map(|&i| self.nodes[i].name.clone())
            .collect();
        let gateways: Vec<usize> = members
            .iter()
            .copied()
            .filter(|&i| self.nodes[i].roles.contains(&"gateway"))
            .collect();
        self.wait(&format!("{names:?} to form a cluster"), || async {
            let mut epochs = Vec::new();
            for &i in &gateways {
                let Some(view) = self.view(i).await else {
                    return false;
                };
                let up: Vec<&Value> = view["nodes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter(|n| n["status"] == "up")
                    .collect();
                let mut up_names: Vec<String> = up
                    .iter()
                    .map(|n| n["name"].as_str().unwrap_or_default().to_owned())
                    .collect();
                up_names.sort();
                let mut want = names.clone();
                want.sort();
                let shards = |n: &Value| n["shards"].as_u64().unwrap_or(0);
                let total: u64 = up.iter().map(|n| shards(n)).sum();
                let all_own = up.iter().all(|n| {
                    let hosts_entities = hosts.iter().any(|h| n["name"] == h.as_str());
                    hosts_entities == (shards(n) > 0)
                });
                if up_names != want || total != 256 || !all_own {
                    return false;
                }
                epochs.push(view["table_epoch"].clone());
            }
            epochs.windows(2).all(|w| w[0] == w[1])
        })
        .await;
    }

    /// Polls `ready` every 100 ms for up to 30 s; fails the test with the nodes' logs.
    pub async fn wait<F, Fut>(&self, what: &str, mut ready: F)
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !ready().await {
            if tokio::time::Instant::now() >= deadline {
                panic!("timed out waiting for {what}\n{}", self.logs());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The last lines of every node's log.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let text = std::fs::read_to_string(&node.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            out.push_str(&format!("--- {} ---\n", node.name));
            for line in &lines[lines.len().saturating_sub(40)..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// The whole log of node `i`.
    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(&self.nodes[i].log).unwrap_or_default()
    }
}
