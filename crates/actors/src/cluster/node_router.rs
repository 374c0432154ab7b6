//! The node router: the one remotable actor of a node. Peers find it through the pg
//! group [`ROUTERS_GROUP`] and the per-node group `peace.router.<name>`; everything that
//! crosses nodes arrives here as bytes and is handed to [`super::inbound`].
//!
//! Requests are answered from a task of their own, so that a slow entity (a poll waiting
//! on its session) never holds up the router's mailbox, and casts are delivered in the
//! order they arrived, which keeps per-sender order across nodes.

use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster_derive::RactorClusterMessage;

use super::envelope::{self, Answer, Envelope, Refusal, Request};
use crate::World;

/// Every node's router is in this group.
pub const ROUTERS_GROUP: &str = "peace.routers";
/// Prefix of the group that holds only one node's router (`peace.router.node-1`).
pub const ROUTER_GROUP_PREFIX: &str = "peace.router.";

/// What peers send to a router: versioned bincode documents.
#[derive(RactorClusterMessage)]
pub enum RouterMsg {
    /// An [`Envelope`].
    Deliver(Vec<u8>),
    /// A [`Request`], answered with an [`Answer`].
    #[rpc]
    Ask(Vec<u8>, RpcReplyPort<Vec<u8>>),
}

impl std::fmt::Debug for RouterMsg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouterMsg::Deliver(b) => write!(f, "Deliver({} bytes)", b.len()),
            RouterMsg::Ask(b, _) => write!(f, "Ask({} bytes)", b.len()),
        }
    }
}

/// The node router actor.
#[derive(Debug)]
pub struct NodeRouter;

impl Actor for NodeRouter {
    type Msg = RouterMsg;
    type State = World;
    type Arguments = World;

    async fn pre_start(
        &self,
        myself: ActorRef<RouterMsg>,
        world: World,
    ) -> Result<World, ActorProcessingErr> {
        let own_group = format!("{ROUTER_GROUP_PREFIX}{}", world.node_name());
        ractor::pg::join(ROUTERS_GROUP.to_owned(), vec![myself.get_cell()]);
        ractor::pg::join(own_group, vec![myself.get_cell()]);
        Ok(world)
    }

    async fn handle(
        &self,
        _myself: ActorRef<RouterMsg>,
        msg: RouterMsg,
        world: &mut World,
    ) -> Result<(), ActorProcessingErr> {
        let net = world.router().net().clone();
        match msg {
            RouterMsg::Deliver(bytes) => {
                net.received_envelope();
                match envelope::decode::<Envelope>(&bytes) {
                    Ok(envelope) => {
                        // A delivery that panics loses that envelope, not the router:
                        // the node stays reachable.
                        let deliver = async { super::inbound::deliver(world, envelope) };
                        peace_sharding::task::contain("envelope delivery", deliver).await;
                    }
                    Err(e) => net.undecodable("a peer", &e),
                }
            }
            RouterMsg::Ask(bytes, port) => {
                net.received_request();
                let world = world.clone();
                tokio::spawn(async move {
                    let answer = match envelope::decode::<Request>(&bytes) {
                        Ok(request) => super::inbound::answer(&world, request).await,
                        Err(e) => {
                            net.undecodable("a peer", &e);
                            Answer::Refused(Refusal::Undecodable(e.to_string()))
                        }
                    };
                    match envelope::encode(&answer) {
                        Ok(bytes) => {
                            let _ = port.send(bytes);
                        }
                        Err(e) => tracing::error!("could not encode an answer: {e}"),
                    }
                });
            }
        }
        Ok(())
    }
}
