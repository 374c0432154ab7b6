//! Live migration between two nodes in one process (their routers wired to each other
//! directly): a session moves while messages pour in and its client keeps polling, and
//! nothing is lost, doubled or reordered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use peace_actors::cluster::ClusterConfig;
use peace_actors::cluster::shard::{ShardTable, TableOrigin, shard_of};
use peace_actors::directory::OnlineUser;
use peace_actors::spawn::{SpawnReply, SpawnRequest};
use peace_actors::user::{UserCall, UserCast, UserReply, UserState};
use peace_actors::{EntityKey, World, WorldConfig};
use peace_bancho::ServerPacket;
use peace_bancho::server::Notification;

/// Two nodes, "a" and "b", sharing one database, each owning half of the shards.
async fn two_nodes(dir: &tempfile::TempDir) -> (World, World) {
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
    (a, b)
}

/// How often the session moves in the test.
const MOVES: usize = 20;

fn notification(i: usize) -> bytes::Bytes {
    ServerPacket::from(Notification {
        text: format!("n{i}"),
    })
    .to_bytes()
}

fn numbers(bytes: &[u8]) -> Vec<usize> {
    peace_bancho::decode_server_packets(bytes)
        .into_iter()
        .filter_map(|p| match p {
            Ok(ServerPacket::Notification(n)) => n.text.strip_prefix('n')?.parse().ok(),
            _ => None,
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_session_moves_while_messages_arrive_and_its_client_polls() {
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = two_nodes(&dir).await;
    let table = a.router().placement().table().unwrap();

    // A player whose session lives on "a".
    let db = a.db().clone();
    let user = loop {
        let n = rand::random::<u32>();
        let name = format!("mover{n}");
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
        if table.owner_of(&EntityKey::User(user.id)) == "a" {
            break user;
        }
    };
    let session_id = 42;
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
        node: "a".into(),
    };
    let spawned = b
        .spawn(SpawnRequest::Session {
            state: Box::new(state),
            entry: Box::new(entry),
        })
        .await;
    assert!(matches!(spawned, SpawnReply::Started), "{spawned:?}");
    assert!(a.router().sessions().main(user.id).is_some());

    while b.router().users().get(user.id).is_none() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    let feeds = [&a, &b].map(|n| n.router().users().feed().head());

    // Messages pour in through "b" (which sends them to "a" while the session is there)
    // and the client polls through "a", while the session moves from "a" to "b".
    let uid = user.id;
    let stop = Arc::new(AtomicBool::new(false));
    // How many were sent, once the sender stopped.
    let total = Arc::new(AtomicUsize::new(usize::MAX));
    let sender = {
        let (b, stop, total) = (b.clone(), stop.clone(), total.clone());
        tokio::spawn(async move {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                b.router()
                    .cast_user(uid, UserCast::Enqueue(notification(i)))
                    .unwrap();
                i += 1;
                // Bursts of 16, about 10,000 a second: far more than one player gets,
                // and enough that some always arrive while the session moves.
                if i % 16 == 0 {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            total.store(i, Ordering::Relaxed);
        })
    };
    let poller = {
        let (a, total) = (a.clone(), total.clone());
        tokio::spawn(async move {
            let mut seen = Vec::new();
            let timeout = Duration::from_secs(5);
            while seen.len() < total.load(Ordering::Relaxed) {
                let reply = a
                    .router()
                    .call_session(uid, session_id, UserCall::Poll { packets: vec![] }, timeout)
                    .await
                    .expect("every poll is answered, during the move too");
                let UserReply::Packets(bytes) = reply;
                seen.extend(numbers(&bytes));
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            seen
        })
    };
    // The session moves back and forth between the nodes while all that goes on.
    let shard = shard_of(&EntityKey::User(uid));
    let mut table = (*table).clone();
    for round in 0..MOVES {
        tokio::time::sleep(Duration::from_millis(5)).await;
        let (from, to) = if round % 2 == 0 { (&a, &b) } else { (&b, &a) };
        let moved = from.release_shards(&[shard], to.node_name(), 1).await;
        assert_eq!(moved, [shard], "move {round}");
        assert!(from.router().sessions().main(uid).is_none());
        assert!(to.router().sessions().main(uid).is_some());
        // Everyone learns the new owner; the new owner serves once the hand-over is in.
        table = table.with_moves(&[(shard, to.node_name().to_owned())]);
        a.install_table(table.clone());
        b.install_table(table.clone());
        while !to.router().placement().is_here(&EntityKey::User(uid)) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
    stop.store(true, Ordering::Relaxed);

    sender.await.unwrap();
    let sent = total.load(Ordering::Relaxed);
    let seen = tokio::time::timeout(Duration::from_secs(30), poller)
        .await
        .expect("the client got everything")
        .unwrap();
    assert!(sent > 1_000, "the sender kept sending: {sent}");
    if let Some(i) = (0..sent).find(|&i| seen.get(i) != Some(&i)) {
        let around: Vec<_> = seen[i.saturating_sub(3)..(i + 5).min(seen.len())].to_vec();
        panic!(
            "once each, in order: first difference at {i} of {sent} ({} seen): {around:?}",
            seen.len()
        );
    }
    assert_eq!(seen.len(), sent, "nothing more");
    let held_a = a.node_status().migrations.held_messages;
    let held_b = b.node_status().migrations.held_messages;
    assert!(
        held_a + held_b > 0,
        "messages arrived while the session moved and were held ({sent} sent, {:?} / {:?})",
        a.node_status().migrations,
        b.node_status().migrations
    );
    let moves = MOVES as u64 / 2;
    assert_eq!(a.node_status().migrations.entities_out, moves);
    assert_eq!(b.node_status().migrations.entities_in, moves);
    // The directory on both nodes says where the session is now (back on "a").
    assert_eq!(&*a.router().users().get(uid).unwrap().node, "a");
    assert_eq!(&*b.router().users().get(uid).unwrap().node, "a");
    // Players saw nothing of it: no presence feed announced the moves.
    assert_eq!([&a, &b].map(|n| n.router().users().feed().head()), feeds);
    a.shutdown().await;
    b.shutdown().await;
}
