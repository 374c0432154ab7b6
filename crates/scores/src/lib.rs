//! The rules of osu! stable scores, as pure functions over bytes and numbers: no I/O, no
//! database, no actors. The score pipeline (gateway → actors → db) calls these.
//!
//! Invariant: this crate knows nothing of tokio, HTTP or SQL.

pub mod osu_file;
pub mod pp;
