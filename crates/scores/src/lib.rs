//! The rules of osu! stable scores, as pure functions over bytes and numbers: no I/O, no
//! database, no actors. The score pipeline (gateway → actors → db) calls these.
//!
//! Invariant: this crate knows nothing of tokio, HTTP or SQL.

pub mod client_form;
pub mod crypto;
pub mod direct;
pub mod grade;
pub mod mode;
pub mod mods;
pub mod osr;
pub mod osu_file;
pub mod pp;
pub mod status;
pub mod submission;
pub mod web;
