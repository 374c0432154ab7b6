//! The root package's end-to-end tests, as one test binary: one link of the server and its
//! dependencies instead of one per scenario file, which dominated the build of the tests.
//! Each scenario file is a module; `tests/e2e/common/` is the harness they share.
//!
//! Run one scenario file with a filter on its module, e.g.
//! `cargo test --test e2e cluster::`.
//!
//! Everything here shares one process, so the tests must not depend on being alone in
//! it: the metrics recorder and the panic hook are process-wide, and the scenarios that
//! read them say how they cope (`metrics`, `quiet_polls`, `hostile`). Multi-node
//! scenarios start their nodes as child processes (`common::cluster`), so ractor's
//! process-global groups never mix nodes.

mod common;

mod backends;
mod beatmap_sources;
mod cli_and_web;
mod client_web;
mod cluster;
mod e2e;
mod hardening;
mod hostile;
mod media;
mod metrics;
mod moderation;
mod multiplayer;
mod osu_direct;
mod quiet_polls;
mod recalc;
mod registration;
mod scores;
mod staff;
mod tls;
