//! The node router is the door other nodes knock on: whatever bytes arrive there, the
//! node logs and counts what it cannot read and carries on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use peace_actors::cluster::envelope::{
    self, Answer, Body, Envelope, Refusal, Request, RequestBody,
};
use peace_actors::cluster::node_router::{ROUTER_GROUP_PREFIX, RouterMsg};
use peace_actors::{EntityKey, World, WorldConfig};
use proptest::prelude::*;
use ractor::ActorRef;

async fn world(dir: &tempfile::TempDir) -> World {
    let url = format!("sqlite://{}/peace.db", dir.path().display());
    let db = peace_db::Database::connect(&peace_db::DbConfig::new(url))
        .await
        .unwrap();
    db.migrate().await.unwrap();
    World::start(WorldConfig::default(), db).await.unwrap()
}

fn router_of(world: &World) -> ActorRef<RouterMsg> {
    let group = format!("{ROUTER_GROUP_PREFIX}{}", world.node_name());
    ractor::pg::get_members(&group)
        .into_iter()
        .next()
        .expect("the node router is in its group")
        .into()
}

async fn ask(router: &ActorRef<RouterMsg>, bytes: Vec<u8>) -> Answer {
    let reply = router
        .call(
            |port| RouterMsg::Ask(bytes, port),
            Some(Duration::from_secs(5)),
        )
        .await
        .unwrap()
        .unwrap();
    envelope::decode(&reply).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn garbage_from_a_peer_is_counted_and_refused_and_the_node_carries_on() {
    let dir = tempfile::tempdir().unwrap();
    let world = world(&dir).await;
    let router = router_of(&world);

    // Undecodable envelopes: random bytes, a future format version, a valid envelope
    // whose entity payload is garbage.
    router.cast(RouterMsg::Deliver(vec![0xff; 64])).unwrap();
    let mut future = envelope::encode(&Envelope {
        from: "peer".into(),
        hops: 0,
        body: Body::SyncRequest,
    })
    .unwrap();
    future[0] = 99;
    router.cast(RouterMsg::Deliver(future)).unwrap();
    let bad_payload = Envelope {
        from: "peer".into(),
        hops: 0,
        body: Body::Cast {
            key: EntityKey::Channel("#osu".into()),
            session: None,
            payload: vec![0xde, 0xad, 0xbe, 0xef],
        },
    };
    router
        .cast(RouterMsg::Deliver(envelope::encode(&bad_payload).unwrap()))
        .unwrap();

    // Undecodable requests are answered with a refusal, never left hanging.
    assert!(matches!(
        ask(&router, b"not a request".to_vec()).await,
        Answer::Refused(Refusal::Undecodable(_))
    ));
    let call = Request {
        from: "peer".into(),
        hops: 0,
        body: RequestBody::Call {
            key: EntityKey::Channel("#osu".into()),
            session: None,
            payload: vec![7; 3],
        },
    };
    assert!(matches!(
        ask(&router, envelope::encode(&call).unwrap()).await,
        Answer::Refused(Refusal::Undecodable(_))
    ));

    // A request it can read is answered as ever.
    let status = Request {
        from: "peer".into(),
        hops: 0,
        body: RequestBody::Status,
    };
    match ask(&router, envelope::encode(&status).unwrap()).await {
        Answer::Status(s) => assert_eq!(s.name, world.node_name()),
        other => panic!("{other:?}"),
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let traffic = world.node_status().traffic;
        if traffic.undecodable >= 5 {
            assert_eq!(traffic.undecodable, 5, "{traffic:?}");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{traffic:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    world.shutdown().await;
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(
        std::env::var("PEACE_PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(2_000)
    ))]

    #[test]
    fn the_envelope_decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = envelope::decode::<Envelope>(&bytes);
        let _ = envelope::decode::<Request>(&bytes);
        let _ = envelope::decode::<Answer>(&bytes);
        let _ = envelope::decode_payload::<peace_actors::user::UserCast>(&bytes);
        let _ = envelope::decode_payload::<peace_actors::user::UserCall>(&bytes);
    }

    #[test]
    fn envelopes_round_trip(
        from in "[a-z0-9-]{0,16}",
        hops in any::<u8>(),
        ids in proptest::collection::vec(any::<i32>(), 0..64),
        payload in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let original = Envelope {
            from,
            hops,
            body: Body::CastUsers { user_ids: ids, payload },
        };
        let bytes = envelope::encode(&original).unwrap();
        let back: Envelope = envelope::decode(&bytes).unwrap();
        prop_assert_eq!(envelope::encode(&back).unwrap(), bytes);
    }
}
