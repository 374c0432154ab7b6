//! Operator commands that talk to a running node's JSON API (`peace cluster …`).

use anyhow::Context;
use serde_json::Value;

/// Fetches `GET {url}/api/v1/cluster`.
pub async fn fetch_cluster(url: &str) -> anyhow::Result<Value> {
    let url = format!("{}/api/v1/cluster", url.trim_end_matches('/'));
    let response = reqwest::get(&url)
        .await
        .with_context(|| format!("asking {url}"))?;
    let status = response.status();
    anyhow::ensure!(status.is_success(), "{url} answered {status}");
    response.json().await.context("reading the cluster view")
}

/// An admin call: `POST {url}{path}` with the bearer token; fails with the server's
/// message unless it succeeded.
pub async fn admin_post(url: &str, path: &str, token: &str) -> anyhow::Result<Value> {
    let url = format!("{}{path}", url.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .post(&url)
        .bearer_auth(token)
        .send()
        .await
        .with_context(|| format!("asking {url}"))?;
    let status = response.status();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    anyhow::ensure!(
        status.is_success(),
        "{url} answered {status}: {}",
        body["error"].as_str().unwrap_or("no detail")
    );
    Ok(body)
}

/// The cluster view as a table, one node a line.
pub fn cluster_table(view: &Value) -> String {
    let mut rows = vec![
        [
            "NODE", "STATUS", "ROLES", "SHARDS", "USERS", "CHANNELS", "SPECTATE", "MATCHES", "HTTP",
        ]
        .map(str::to_owned),
    ];
    for node in view["nodes"].as_array().into_iter().flatten() {
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => "-".to_owned(),
            other => other.to_string(),
        };
        let roles = node["roles"]
            .as_array()
            .map(|r| r.iter().map(text).collect::<Vec<_>>().join(","))
            .unwrap_or_else(|| "-".into());
        let e = &node["entities"];
        rows.push([
            text(&node["name"]),
            text(&node["status"]),
            roles,
            text(&node["shards"]),
            text(&e["user"]),
            text(&e["channel"]),
            text(&e["spectate"]),
            text(&e["match"]),
            text(&node["http_addr"]),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = format!(
        "cluster seen from {} (coordinator {}, table epoch {}, {} online)\n",
        view["node"].as_str().unwrap_or("?"),
        view["coordinator"].as_str().unwrap_or("-"),
        view["table_epoch"],
        view["online"],
    );
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_node() {
        let view = serde_json::json!({
            "node": "a", "coordinator": "a", "table_epoch": 3, "online": 12,
            "nodes": [
                {"name": "a", "status": "up", "roles": ["gateway", "actors"], "shards": 128,
                 "entities": {"user": 7, "channel": 4, "spectate": 0, "match": 1},
                 "http_addr": "127.0.0.1:8080"},
                {"name": "b", "status": "down"}
            ]
        });
        let table = cluster_table(&view);
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines[0].contains("coordinator a, table epoch 3, 12 online"));
        assert!(lines[1].starts_with("NODE"));
        assert!(
            lines[2].starts_with("a ")
                && lines[2].contains("gateway,actors")
                && lines[2].contains("128")
        );
        assert!(lines[3].starts_with("b ") && lines[3].contains("down"));
    }
}
