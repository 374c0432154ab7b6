//! Addressing by key. Every message to an entity goes through here: `cast`/`call` on a
//! user id or channel name, never on an actor reference kept by the caller. Today the
//! router resolves keys on this node; the cluster will resolve them to other nodes behind
//! the same calls.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use ractor::{ActorRef, MessagingErr};
use thiserror::Error;

use crate::EntityKey;
use crate::channel::{ChannelCall, ChannelCast, ChannelMsg, ChannelReply};
use crate::directory::Directory;
use crate::message::EntityMsg;
use crate::user::{UserCall, UserCast, UserReply};

/// Why a message could not be delivered.
#[derive(Debug, Error)]
pub enum RouteError {
    #[error("{0} is not online")]
    NotFound(EntityKey),
    #[error("{0} stopped before it could answer")]
    Stopped(EntityKey),
    #[error("{0} did not answer within {1:?}")]
    Timeout(EntityKey, Duration),
}

/// Resolves entity keys to actors.
#[derive(Debug, Clone, Default)]
pub struct Router {
    users: Directory,
    channels: Arc<RwLock<HashMap<String, ActorRef<ChannelMsg>>>>,
}

impl Router {
    /// The online-user table (addresses and presence).
    pub fn users(&self) -> &Directory {
        &self.users
    }

    pub fn cast_user(&self, user_id: i32, msg: UserCast) -> Result<(), RouteError> {
        let key = EntityKey::User(user_id);
        let user = self
            .users
            .get(user_id)
            .ok_or_else(|| RouteError::NotFound(key.clone()))?;
        user.actor
            .cast(EntityMsg::Cast(msg))
            .map_err(|_| RouteError::Stopped(key))
    }

    /// Asks a user's session, but only if it is still session `session_id`.
    pub async fn call_session(
        &self,
        user_id: i32,
        session_id: u64,
        msg: UserCall,
        timeout: Duration,
    ) -> Result<UserReply, RouteError> {
        let key = EntityKey::User(user_id);
        let user = self
            .users
            .get(user_id)
            .filter(|u| u.session_id == session_id)
            .ok_or_else(|| RouteError::NotFound(key.clone()))?;
        call(&user.actor, key, msg, timeout).await
    }

    /// Tells every online user the same thing.
    pub fn broadcast_users(&self, msg: UserCast) {
        self.broadcast_users_where(msg, |_| true);
    }

    /// Tells every online user for whom `keep` holds.
    pub fn broadcast_users_where(
        &self,
        msg: UserCast,
        keep: impl Fn(&crate::directory::OnlineUser) -> bool,
    ) {
        for actor in self.users.actors_where(keep) {
            // A session that stopped meanwhile has nothing left to be told.
            let _ = actor.cast(EntityMsg::Cast(msg.clone()));
        }
    }

    pub fn add_channel(&self, name: &str, actor: ActorRef<ChannelMsg>) {
        self.channels_write().insert(name.to_owned(), actor);
    }

    pub fn remove_channel(&self, name: &str) {
        self.channels_write().remove(name);
    }

    /// Which channel (if any) an actor is.
    pub fn channel_by_actor(&self, actor: ractor::ActorId) -> Option<String> {
        let channels = self.channels.read().unwrap_or_else(|e| e.into_inner());
        channels
            .iter()
            .find(|(_, a)| a.get_id() == actor)
            .map(|(name, _)| name.clone())
    }

    pub fn channel_names(&self) -> Vec<String> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .keys()
            .cloned()
            .collect()
    }

    fn channel(&self, name: &str) -> Result<ActorRef<ChannelMsg>, RouteError> {
        self.channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
            .ok_or_else(|| RouteError::NotFound(EntityKey::Channel(name.to_owned())))
    }

    fn channels_write(
        &self,
    ) -> std::sync::RwLockWriteGuard<'_, HashMap<String, ActorRef<ChannelMsg>>> {
        self.channels.write().unwrap_or_else(|e| e.into_inner())
    }

    pub fn cast_channel(&self, name: &str, msg: ChannelCast) -> Result<(), RouteError> {
        let actor = self.channel(name)?;
        actor
            .cast(EntityMsg::Cast(msg))
            .map_err(|_| RouteError::Stopped(EntityKey::Channel(name.to_owned())))
    }

    pub async fn call_channel(
        &self,
        name: &str,
        msg: ChannelCall,
        timeout: Duration,
    ) -> Result<ChannelReply, RouteError> {
        let actor = self.channel(name)?;
        call(&actor, EntityKey::Channel(name.to_owned()), msg, timeout).await
    }

    /// Tells every channel the same thing.
    pub fn broadcast_channels(&self, msg: ChannelCast) {
        let actors: Vec<_> = self
            .channels
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .cloned()
            .collect();
        for actor in actors {
            let _ = actor.cast(EntityMsg::Cast(msg.clone()));
        }
    }
}

/// One request/response with a time-out; the only way anything awaits an entity.
async fn call<C, Q, R>(
    actor: &ActorRef<EntityMsg<C, Q, R>>,
    key: EntityKey,
    msg: Q,
    timeout: Duration,
) -> Result<R, RouteError>
where
    EntityMsg<C, Q, R>: ractor::Message,
    R: Send + 'static,
{
    match actor
        .call(|reply| EntityMsg::Call(msg, reply), Some(timeout))
        .await
    {
        Ok(ractor::rpc::CallResult::Success(reply)) => Ok(reply),
        Ok(ractor::rpc::CallResult::Timeout) => Err(RouteError::Timeout(key, timeout)),
        Ok(ractor::rpc::CallResult::SenderError) | Err(MessagingErr::SendErr(_)) => {
            Err(RouteError::Stopped(key))
        }
        Err(_) => Err(RouteError::Stopped(key)),
    }
}
