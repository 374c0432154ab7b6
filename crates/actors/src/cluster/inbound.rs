//! What a node does with what its router received: deliver to the entity if it lives
//! here, forward it if it moved, hold it if it is moving, answer requests about the
//! node itself.

use super::envelope::{self, Answer, Body, Envelope, Refusal, Request, RequestBody};
use super::placement::{Hold, Location};
use crate::router::{Origin, RouteError};
use crate::user::{UserCall, UserCast};
use crate::{EntityKey, World};

/// Handles an envelope from a peer.
pub(crate) fn deliver(world: &World, envelope: Envelope) {
    let router = world.router();
    let net = router.net();
    let origin = Origin {
        from: envelope.from.clone(),
        hops: envelope.hops,
    };
    match envelope.body {
        Body::Cast { .. } => deliver_cast(world, envelope),
        Body::Flush { .. } => flush(world, envelope),
        Body::CastUsers { user_ids, payload } => {
            let targets = user_ids.into_iter().map(|id| (id, None));
            fan_out(world, targets, &payload, &origin);
        }
        Body::CastSessions { sessions, payload } => {
            let targets = sessions.into_iter().map(|(id, s)| (id, Some(s)));
            fan_out(world, targets, &payload, &origin);
        }
        Body::Broadcast { audience, payload } => {
            match envelope::decode_payload::<UserCast>(&payload) {
                Ok(msg) => router.broadcast_here_from(&msg, &audience, &origin),
                Err(e) => net.undecodable(&origin.from, &e),
            }
        }
        Body::BroadcastKind { kind, payload } => {
            if let Err(e) = broadcast_kind(world, &kind, &payload, &origin) {
                net.undecodable(&origin.from, &e);
            }
        }
        Body::Directory(event) => router.users().apply(&origin.from, event),
        Body::SyncRequest => {
            if net.peer_names().contains(&origin.from) {
                router.users().sync_to(&origin.from);
            }
        }
        Body::Table(table) => world.install_table(table),
        Body::Handoff { shards, held } => world.finish_import(&origin.from, &shards, held),
        Body::FlushAck { shard } => world.end_flush(shard),
        Body::MemberCount {
            channel,
            required,
            packet,
        } => world.channel_counts().publish(&channel, required, packet),
    }
}

/// A peer's fan-out to users (their own sessions, `None`) or particular sessions here.
fn fan_out(
    world: &World,
    targets: impl IntoIterator<Item = (i32, Option<u64>)>,
    payload: &[u8],
    origin: &Origin,
) {
    let router = world.router();
    match envelope::decode_payload::<UserCast>(payload) {
        Ok(msg) => router.cast_users_from(targets, msg, origin),
        Err(e) => router.net().undecodable(&origin.from, &e),
    }
}

/// A flush marker (see `Placement`): held or forwarded like the messages it follows;
/// on the shard's owner, answered (or, if it is the owner's own, the end of its wait).
pub(crate) fn flush(world: &World, envelope: Envelope) {
    let Body::Flush { shard, origin } = &envelope.body else {
        return;
    };
    let (shard, origin) = (*shard, origin.clone());
    let router = world.router();
    match router.placement().locate_shard_inbound(shard) {
        Location::Here => {
            if origin == world.node_name() {
                world.end_flush(shard);
            } else if let Err(e) = router.net().send(&origin, Body::FlushAck { shard }) {
                tracing::debug!(node = %origin, "flush acknowledgement not sent: {e}");
            }
        }
        Location::Frozen => {
            if let Hold::Thawed(again) = router.placement().hold(shard, envelope, false) {
                flush(world, *again);
            }
        }
        Location::There(node) => {
            if let Err(e) = router.net().forward(&node, envelope) {
                tracing::debug!(%node, "flush marker not forwarded: {e}");
            }
        }
        Location::Unplaced => {}
    }
}

/// A cast for one entity: delivered here, forwarded or held; a private message for a
/// player who is not here any more becomes an offline message.
pub(crate) fn deliver_cast(world: &World, envelope: Envelope) {
    let (from, key, pm) = match &envelope.body {
        Body::Cast { key, payload, .. } => {
            let pm = match key {
                EntityKey::User(id) => Some((*id, payload.clone())),
                _ => None,
            };
            (envelope.from.clone(), key.clone(), pm)
        }
        _ => return,
    };
    match world.router().route_envelope(envelope) {
        Ok(()) => {}
        Err(RouteError::Wire(e)) => world.router().net().undecodable(&from, &e),
        Err(RouteError::NotFound(_) | RouteError::Stopped(_)) => {
            if let Some((user_id, payload)) = pm
                && let Ok(msg) = envelope::decode_payload::<UserCast>(&payload)
            {
                world.undeliverable(user_id, msg);
            } else {
                tracing::debug!(peer = %from, %key, "cast for an entity that is gone");
            }
        }
        Err(e) => tracing::warn!(peer = %from, %key, "cast not delivered: {e}"),
    }
}

fn broadcast_kind(
    world: &World,
    kind: &str,
    payload: &[u8],
    origin: &Origin,
) -> Result<(), envelope::WireError> {
    let router = world.router();
    match router.kind(kind) {
        Some(table) => table.broadcast_payload(router, payload, origin)?,
        None => tracing::warn!(kind, "broadcast to an unknown kind dropped"),
    }
    Ok(())
}

/// Answers a request from a peer.
pub(crate) async fn answer(world: &World, request: Request) -> Answer {
    let router = world.router();
    let origin = Origin {
        from: request.from.clone(),
        hops: request.hops,
    };
    let refuse = |e: RouteError| Answer::Refused(e.to_refusal());
    match request.body {
        RequestBody::Call {
            key,
            session,
            payload,
        } => match call(world, &key, session, &payload, &origin).await {
            Ok(bytes) => Answer::Reply(bytes),
            Err(e) => {
                if let RouteError::Wire(w) = &e {
                    router.net().undecodable(&origin.from, w);
                }
                refuse(e)
            }
        },
        RequestBody::Poll {
            user_id,
            session_id,
            body,
        } => match world.poll_routed(user_id, session_id, body, &origin).await {
            Ok(packets) => Answer::Packets(packets),
            Err(e) => refuse(e),
        },
        RequestBody::Spawn(spawn) => Answer::Spawned(world.spawn_routed(spawn, request.hops).await),
        RequestBody::Status => Answer::Status(Box::new(world.node_status())),
        RequestBody::Peers => Answer::Peers(world.peer_addresses()),
        RequestBody::Table => Answer::Table(router.placement().table().map(|t| (*t).clone())),
        RequestBody::Acquire { shards } => {
            router.placement().acquire(&shards);
            Answer::Done
        }
        RequestBody::Release { shards, to, limit } => {
            Answer::Released(world.release_shards(&shards, &to, usize::from(limit)).await)
        }
        RequestBody::Import { shards, snapshots } => {
            done(world.import(&origin.from, &shards, &snapshots).await)
        }
        RequestBody::Drain { node } => done(world.drain_node(&node).await),
        RequestBody::Rebalance => done(world.rebalance().await),
    }
}

/// The answer to a request carried out here: done, or refused with the reason in words
/// (the wire carries the text, so that any build can read it).
fn done(result: Result<(), impl std::fmt::Display>) -> Answer {
    match result {
        Ok(()) => Answer::Done,
        Err(why) => Answer::Refused(Refusal::Failed(why.to_string())),
    }
}

/// Runs a call from a peer on the entity, wherever it is now, and encodes its answer.
async fn call(
    world: &World,
    key: &EntityKey,
    session: Option<u64>,
    payload: &[u8],
    origin: &Origin,
) -> Result<Vec<u8>, RouteError> {
    let router = world.router();
    let timeout = world.config().call_timeout;
    match key {
        EntityKey::User(id) => {
            let msg: UserCall = envelope::decode_payload(payload)?;
            let reply = router.call_user(*id, session, msg, timeout, origin).await?;
            Ok(envelope::encode_payload(&reply)?)
        }
        other => match router.kind(other.kind()) {
            Some(kind) => {
                kind.call_payload(router, other, payload, timeout, origin)
                    .await
            }
            None => Err(RouteError::NotFound(other.clone())),
        },
    }
}
