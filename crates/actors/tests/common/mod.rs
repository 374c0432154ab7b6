//! Two nodes in one process (their routers wired to each other directly, as peers are
//! across machines) and players with sessions on them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use peace_actors::cluster::ClusterConfig;
use peace_actors::cluster::shard::{ShardTable, TableOrigin};
use peace_actors::directory::OnlineUser;
use peace_actors::spawn::{SpawnReply, SpawnRequest};
use peace_actors::user::UserState;
use peace_actors::{EntityKey, World, WorldConfig};

/// Two nodes, "a" and "b", sharing one database, each owning half of the shards.
/// Held by a test while its pair of nodes runs: nodes of one process find each other
/// through the process's pg groups, so two pairs at once would see each other.
static ONE_PAIR_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

pub async fn two_nodes(
    dir: &tempfile::TempDir,
) -> (tokio::sync::MutexGuard<'static, ()>, World, World) {
    let guard = ONE_PAIR_AT_A_TIME.lock().await;
    let url = format!("sqlite://{}/peace.db", dir.path().display());
    let db = peace_db::Database::connect(&peace_db::DbConfig::new(url))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    let config = |name: &str| WorldConfig {
        secret: b"shared".to_vec(),
        cluster: ClusterConfig {
            node_name: name.into(),
            heartbeat: Duration::from_millis(50),
            // The test places the session itself.
            auto_rebalance: false,
            ..ClusterConfig::default()
        },
        ..WorldConfig::default()
    };
    let a = World::start(config("a"), db.clone()).await.unwrap();
    let b = World::start(config("b"), db).await.unwrap();
    // They find each other in the pg groups of this process, as peers do across nodes.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while a.router().net().peer_names() != ["b"] || b.router().net().peer_names() != ["a"] {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the nodes never met"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let origin = TableOrigin {
        started_ms: 0,
        node: "test".into(),
    };
    let table = ShardTable::deal(origin, &["a".into(), "b".into()]);
    a.install_table(table.clone());
    b.install_table(table);
    (guard, a, b)
}

/// A new player whose session lives on `home` (their shard's owner), started through
/// `via` (either node), with session id `session_id`.
pub async fn session_on(home: &World, via: &World, session_id: u64) -> peace_db::User {
    let table = home.router().placement().table().unwrap();
    let db = home.db().clone();
    let user = loop {
        let n = rand::random::<u32>();
        let name = format!("player{n}");
        let new = peace_db::NewUser {
            name: &name,
            email: &format!("{name}@example.com"),
            password_bcrypt: "$2b$04$invalidinvalidinvalidinvalidinvalidinvalidinvalidinvali",
            privileges: peace_db::Privileges::DEFAULT_NEW,
            country: "XX",
        };
        let user = db
            .create_user(&new)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e:?}"));
        if table.owner_of(&EntityKey::User(user.id)) == home.node_name() {
            break user;
        }
    };
    let state = UserState::new(&user, session_id, 0, peace_db::Stats::default(), 0);
    let entry = OnlineUser {
        id: user.id,
        name: user.name.as_str().into(),
        session_id,
        privileges: user.privileges(),
        presence: state.presence_packet(),
        stats: state.stats_packet(),
        login_time: 0,
        hidden: false,
        node: home.node_name().into(),
    };
    let spawned = via
        .spawn(SpawnRequest::Session {
            state: Box::new(state),
            entry: Box::new(entry),
        })
        .await;
    assert!(matches!(spawned, SpawnReply::Started), "{spawned:?}");
    assert!(home.router().sessions().main(user.id).is_some());
    user
}
