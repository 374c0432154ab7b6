//! What a node does with what its router received: deliver to the entity if it lives
//! here, forward it if it moved, answer requests about the node itself.

use super::envelope::{self, Answer, Body, Envelope, Refusal, Request, RequestBody};
use super::placement::Location;
use crate::router::RouteError;
use crate::user::{UserCall, UserCast};
use crate::{EntityKey, World};

/// Handles an envelope from a peer.
pub(crate) fn deliver(world: &World, envelope: Envelope) {
    let router = world.router();
    let net = router.net();
    match &envelope.body {
        Body::Cast {
            key,
            session,
            payload,
        } => match router.placement().locate(key) {
            Location::Here => {
                if let Err(e) = cast_here(world, key, *session, payload) {
                    report(world, &envelope.from, key, &e);
                }
            }
            Location::There(node) => {
                let from = envelope.from.clone();
                if let Err(e) = net.forward(&node, envelope) {
                    tracing::warn!(peer = %from, %node, "message could not be forwarded: {e}");
                }
            }
            Location::Unplaced => net.dropped(),
        },
        Body::CastUsers { user_ids, payload } => {
            let msg: UserCast = match envelope::decode_payload(payload) {
                Ok(msg) => msg,
                Err(e) => return net.undecodable(&envelope.from, &e),
            };
            fan_out(world, &envelope, user_ids, msg);
        }
        Body::Broadcast { audience, payload } => {
            match envelope::decode_payload::<UserCast>(payload) {
                Ok(msg) => router.sessions().broadcast(&msg, audience),
                Err(e) => net.undecodable(&envelope.from, &e),
            }
        }
        Body::BroadcastKind { kind, payload } => {
            let result = match kind.as_str() {
                "channel" => router.channels_table().deliver_broadcast(payload),
                "spectate" => router.spectate_table().deliver_broadcast(payload),
                "match" => router.matches_table().deliver_broadcast(payload),
                "lobby" => router.lobby_table().deliver_broadcast(payload),
                other => {
                    tracing::warn!(peer = %envelope.from, kind = other, "broadcast to an unknown kind dropped");
                    Ok(())
                }
            };
            if let Err(RouteError::Wire(e)) = result {
                net.undecodable(&envelope.from, &e);
            }
        }
        Body::Directory(event) => router.users().apply(&envelope.from, event.clone()),
        Body::SyncRequest => {
            if net.peer_names().contains(&envelope.from) {
                router.users().sync_to(&envelope.from);
            }
        }
        Body::Table(table) => world.install_table(table.clone()),
    }
}

/// Delivers a cast to an entity of this node.
fn cast_here(
    world: &World,
    key: &EntityKey,
    session: Option<u64>,
    payload: &[u8],
) -> Result<(), RouteError> {
    let router = world.router();
    match key {
        EntityKey::User(id) => {
            let msg: UserCast = envelope::decode_payload(payload)?;
            match router.sessions().cast(*id, session, msg.clone()) {
                Err(RouteError::NotFound(_)) | Err(RouteError::Stopped(_)) => {
                    world.undeliverable(*id, msg);
                    Ok(())
                }
                other => other,
            }
        }
        EntityKey::Channel(name) => router.channels_table().deliver_cast(name, payload),
        EntityKey::Spectate(host) => router.spectate_table().deliver_cast(host, payload),
        EntityKey::Match(id) => router.matches_table().deliver_cast(id, payload),
        EntityKey::Lobby => router.lobby_table().deliver_cast(&(), payload),
    }
}

/// A fan-out envelope: the users still here are told, the rest forwarded.
fn fan_out(world: &World, envelope: &Envelope, user_ids: &[i32], msg: UserCast) {
    let router = world.router();
    let mut moved: std::collections::BTreeMap<String, Vec<i32>> = Default::default();
    for &id in user_ids {
        match router.placement().locate(&EntityKey::User(id)) {
            Location::Here => {
                let _ = router.sessions().cast(id, None, msg.clone());
            }
            Location::There(node) => moved.entry(node).or_default().push(id),
            Location::Unplaced => router.net().dropped(),
        }
    }
    for (node, user_ids) in moved {
        let Ok(payload) = envelope::encode_payload(&msg) else {
            continue;
        };
        let forward = Envelope {
            from: envelope.from.clone(),
            hops: envelope.hops,
            body: Body::CastUsers { user_ids, payload },
        };
        if let Err(e) = router.net().forward(&node, forward) {
            tracing::debug!(%node, "fan-out could not be forwarded: {e}");
        }
    }
}

/// Logs a cast that could not be delivered here (at debug level when the entity simply
/// ended meanwhile, which is normal).
fn report(world: &World, from: &str, key: &EntityKey, error: &RouteError) {
    match error {
        RouteError::Wire(e) => world.router().net().undecodable(from, e),
        RouteError::NotFound(_) | RouteError::Stopped(_) => {
            tracing::debug!(peer = %from, %key, "cast for an entity that is gone: {error}");
        }
        other => tracing::warn!(peer = %from, %key, "cast not delivered: {other}"),
    }
}

/// Answers a request from a peer.
pub(crate) async fn answer(world: &World, request: Request) -> Answer {
    let router = world.router();
    let timeout = world.config().call_timeout;
    let refuse = |e: RouteError| Answer::Refused(e.to_refusal());
    match &request.body {
        RequestBody::Call {
            key,
            session,
            payload,
        } => match router.placement().locate(key) {
            Location::Here => match call_here(world, key, *session, payload).await {
                Ok(bytes) => Answer::Reply(bytes),
                Err(e) => {
                    if let RouteError::Wire(w) = &e {
                        router.net().undecodable(&request.from, w);
                    }
                    refuse(e)
                }
            },
            Location::There(node) => forward(world, &node, request, timeout).await,
            Location::Unplaced => Answer::Refused(Refusal::NotPlaced),
        },
        RequestBody::Poll {
            user_id,
            session_id,
            body,
        } => match router.placement().locate(&EntityKey::User(*user_id)) {
            Location::Here => Answer::Packets(world.poll_here(*user_id, *session_id, body).await),
            Location::There(node) => forward(world, &node, request, timeout).await,
            Location::Unplaced => Answer::Refused(Refusal::NotPlaced),
        },
        RequestBody::Spawn(spawn) => {
            Answer::Spawned(world.spawn_routed(spawn.clone(), request.hops).await)
        }
        RequestBody::Status => Answer::Status(Box::new(world.node_status())),
        RequestBody::Table => Answer::Table(router.placement().table().map(|t| (*t).clone())),
        RequestBody::Acquire { shards } => {
            router.placement().acquire(shards);
            Answer::Done
        }
        RequestBody::Release { shards, to, limit } => {
            Answer::Released(world.release_shards(shards, to, usize::from(*limit)).await)
        }
    }
}

async fn forward(
    world: &World,
    node: &str,
    request: Request,
    timeout: std::time::Duration,
) -> Answer {
    match world
        .router()
        .net()
        .forward_request(node, request, timeout)
        .await
    {
        Ok(answer) => answer,
        Err(RouteError::Refused(refusal)) => Answer::Refused(refusal),
        Err(e) => Answer::Refused(e.to_refusal()),
    }
}

/// Runs a call on an entity of this node and encodes its answer.
async fn call_here(
    world: &World,
    key: &EntityKey,
    session: Option<u64>,
    payload: &[u8],
) -> Result<Vec<u8>, RouteError> {
    let router = world.router();
    let timeout = world.config().call_timeout;
    match key {
        EntityKey::User(id) => {
            let msg: UserCall = envelope::decode_payload(payload)?;
            let target = match session {
                Some(s) => router.sessions().session(*id, s),
                None => router.sessions().main(*id),
            };
            let target = target.ok_or_else(|| RouteError::NotFound(key.clone()))?;
            let reply = crate::router::call(&target.actor, key.clone(), msg, timeout).await?;
            Ok(envelope::encode_payload(&reply)?)
        }
        EntityKey::Channel(name) => {
            router
                .channels_table()
                .deliver_call(name, payload, timeout)
                .await
        }
        EntityKey::Spectate(host) => {
            router
                .spectate_table()
                .deliver_call(host, payload, timeout)
                .await
        }
        EntityKey::Match(id) => {
            router
                .matches_table()
                .deliver_call(id, payload, timeout)
                .await
        }
        EntityKey::Lobby => {
            router
                .lobby_table()
                .deliver_call(&(), payload, timeout)
                .await
        }
    }
}
