//! Live migration between two nodes in one process (their routers wired to each other
//! directly): a session moves while messages pour in and its client keeps polling, and
//! nothing is lost, doubled or reordered.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

mod common;

use peace_actors::EntityKey;
use peace_actors::cluster::shard::shard_of;
use peace_actors::user::{UserCall, UserCast, UserReply};
use peace_bancho::ServerPacket;
use peace_bancho::server::Notification;

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
    let (_one_pair, a, b) = common::two_nodes(&dir).await;
    let table = a.router().placement().table().unwrap();

    // A player whose session lives on "a".
    let session_id = 42;
    let user = common::session_on(&a, &b, session_id).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_import_with_a_snapshot_it_cannot_read_is_refused_whole() {
    use peace_actors::cluster::envelope::{Refusal, RequestBody};
    use peace_actors::router::RouteError;

    let dir = tempfile::tempdir().unwrap();
    let (_one_pair, a, b) = common::two_nodes(&dir).await;
    let session_id = 7;
    let user = common::session_on(&a, &b, session_id).await;
    let shard = shard_of(&EntityKey::User(user.id));

    // "b" is handed the player's shard with a snapshot of a format it does not know (as
    // an older build is, by a newer one during a rolling upgrade).
    let import = RequestBody::Import {
        shards: vec![shard],
        snapshots: vec![vec![99, 0]],
    };
    let answer = a
        .router()
        .net()
        .ask("b", import, Duration::from_secs(5))
        .await;
    assert!(
        matches!(&answer, Err(RouteError::Refused(Refusal::Failed(why))) if why.contains("snapshot")),
        "{answer:?}"
    );
    // Refused before anything changed there: "b" holds nothing for the shard, and what
    // it sends the player still reaches them on "a".
    b.router()
        .cast_user(user.id, UserCast::Enqueue(notification(1)))
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let poll = UserCall::Poll { packets: vec![] };
        let reply = a
            .router()
            .call_session(user.id, session_id, poll, Duration::from_secs(5))
            .await
            .unwrap();
        let UserReply::Packets(bytes) = reply;
        if numbers(&bytes).contains(&1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the message never arrived"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(b.node_status().migrations.entities_in, 0);
    a.shutdown().await;
    b.shutdown().await;
}
