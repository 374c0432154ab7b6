//! End-to-end: `GET /metrics` serves the listed metrics in the Prometheus text format,
//! and what players do shows up in them.
//!
//! The recorder is process-wide and the gauges are set by whichever server is scraped,
//! so these tests run with no other test's server in the process (`common::alone`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::common::{TestServer, alone};

/// The value of the sample line `series` (name with labels, exactly as rendered).
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

async fn scrape(server: &TestServer) -> String {
    let response = server
        .http
        .get(format!("{}/metrics", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    response.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_count_what_players_do() {
    let _alone = alone().await;
    let server = TestServer::start().await;
    let before = scrape(&server).await;
    // Names that exist before anything happened, so that the cluster code and
    // dashboards find them from the start.
    for series in [
        "peace_cluster_envelopes_total{direction=\"sent\"}",
        "peace_cluster_envelopes_total{direction=\"received\"}",
        "peace_cluster_migrations_total{outcome=\"completed\"}",
        "peace_cluster_migrations_total{outcome=\"aborted\"}",
    ] {
        assert_eq!(value(&before, series), Some(0.0), "{series} in\n{before}");
    }
    let polls_before = value(&before, "peace_polls_total").unwrap_or(0.0);

    let mut alice = server.player("Alice").await;
    let mut bob = server.player("Bob").await;
    alice.poll().await;
    bob.poll().await;
    alice.say("#osu", "hello, metrics").await;
    bob.wait_message("hello, metrics").await;

    let text = scrape(&server).await;
    assert_eq!(value(&text, "peace_online_users"), Some(2.0), "{text}");
    assert_eq!(value(&text, "peace_actors{kind=\"user\"}"), Some(2.0));
    assert_eq!(value(&text, "peace_actors{kind=\"bot\"}"), Some(1.0));
    assert_eq!(value(&text, "peace_actors{kind=\"lobby\"}"), Some(1.0));
    assert!(value(&text, "peace_actors{kind=\"channel\"}").unwrap() >= 1.0);
    assert!(value(&text, "peace_polls_total").unwrap() >= polls_before + 3.0);
    assert!(value(&text, "peace_logins_total{outcome=\"ok\"}").unwrap() >= 2.0);
    assert!(
        value(
            &text,
            "peace_client_packets_total{packet=\"SendPublicMessage\"}"
        )
        .unwrap()
            >= 1.0
    );
    assert!(value(&text, "peace_bancho_bytes_received_total").unwrap() > 0.0);
    assert!(value(&text, "peace_bancho_bytes_sent_total").unwrap() > 0.0);
    assert!(value(&text, "peace_db_query_duration_seconds_count").unwrap() > 0.0);
    assert!(text.contains("peace_db_query_duration_seconds_bucket{le=\"0.001\"}"));
    assert!(value(&text, "peace_channel_fanout_duration_seconds_count").unwrap() >= 1.0);
    assert!(value(&text, "peace_channel_fanout_members_total").unwrap() >= 1.0);
    for kind in [
        "user", "channel", "spectate", "match", "lobby", "bot", "board",
    ] {
        let series = format!("peace_actor_mailbox_backlog{{kind=\"{kind}\"}}");
        assert!(value(&text, &series).is_some(), "{series} missing");
    }
    assert!(text.contains("# TYPE peace_polls_total counter"));
    assert!(text.contains("# HELP peace_online_users"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_node_without_a_gateway_serves_metrics_on_its_metrics_listener() {
    let _alone = alone().await;
    let dir = tempfile::tempdir().unwrap();
    let mut config = peace::Config::default();
    config.node.roles = vec!["actors".into()];
    config.http.metrics_addr = "127.0.0.1:0".into();
    config.sessions.secret = "test-secret".into();
    config.database.url = format!("sqlite://{}/peace.db", dir.path().display());
    let server = peace::Server::start(&config).await.unwrap();
    assert!(
        server.addr.is_none(),
        "an actors-only node has no gateway listener"
    );
    let base = format!(
        "http://{}",
        server.metrics_addr.expect("a metrics listener")
    );
    let http = reqwest::Client::new();

    let response = http.get(format!("{base}/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    // The bot's session lives here (a node of one holds every shard).
    assert_eq!(
        value(&text, "peace_actors{kind=\"bot\"}"),
        Some(1.0),
        "{text}"
    );
    let health = http
        .get(format!("{base}/api/v1/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    for probe in ["/livez", "/readyz"] {
        let response = http.get(format!("{base}{probe}")).send().await.unwrap();
        assert_eq!(response.status(), 200, "{probe}");
    }
    // Nothing else: no Bancho endpoint, no registration, no API beyond the health check.
    let bancho = http.post(&base).body(Vec::new()).send().await.unwrap();
    assert_eq!(bancho.status(), 404);
    for path in [
        "/users",
        "/api/v1/users/online",
        "/api/v1/cluster/rebalance",
    ] {
        let response = http.post(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 404, "{path}");
    }
    server.shutdown().await;
}
