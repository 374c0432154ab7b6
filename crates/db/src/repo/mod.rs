//! Repositories: one module per table, each adding methods to [`crate::Database`].
//! Queries are written once and run on any backend through [`crate::pool::run`].

pub mod audit;
pub mod channels;
pub mod logins;
pub mod mail;
pub mod match_games;
pub mod relationships;
pub mod stats;
pub mod users;
