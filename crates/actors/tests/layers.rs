//! The modules of `peace-actors` depend downward only: this test reads every source file,
//! finds which of the crate's modules it names (`crate::x`, `use crate::{x, y}`), and
//! fails when a module names one in a layer above its own.
//!
//! The layers, top to bottom, are drawn in docs/ARCHITECTURE.md. A few upward edges are
//! still there (the runtime work of issue 13 removes them); they are listed in
//! [`KNOWN_UPWARD`] with their reason, and the test fails as well when one of them is
//! gone, so the list only ever shrinks.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level modules by layer, top first. A module may name modules of its own layer and
/// of every layer below it.
const LAYERS: &[&[&str]] = &[
    // The node: what the gateway and the CLI use (`World`, whose methods `spawn` and
    // `migrate` extend: starting entities where their key lives, moving them), and the
    // supervision of it all.
    &[
        "world",
        "spawn",
        "migrate",
        "snapshot",
        "login",
        "supervisor",
        "config",
    ],
    // Services every node runs over the shared database and store: the score pipeline,
    // avatars and screenshots.
    &["scores", "media"],
    // Addressing by key, the node's tables, the cluster.
    &["router", "sessions", "directory", "cluster"],
    // Entities that act for a player (the session, the bot).
    &["user", "bot"],
    // Entities that only send (rooms, matches, channels, the lobby) or only answer
    // (leaderboards).
    &["channel", "spectate", "lobby", "match_room", "leaderboard"],
    // What entities may use beyond their own state.
    &["ports"],
    // The shape of messages, and what entities tell sessions and each other.
    &["message", "session_msg", "kind_msg"],
    // Foundations: keys, the presence feed, credentials, limits, sign-up rules.
    &["key", "presence", "auth", "limits", "accounts", "cache"],
];

/// What the crate root re-exports, by the module that defines it.
const ROOT_ITEMS: &[(&str, &str)] = &[
    ("EntityKey", "key"),
    ("BoardKey", "key"),
    ("Router", "router"),
    ("RouteError", "router"),
    ("Audience", "message"),
    ("World", "world"),
    ("StartError", "world"),
    ("MAX_PACKETS_PER_POLL", "world"),
    ("restart_reply", "world"),
    ("shard_of_key", "world"),
    ("WorldConfig", "config"),
    ("LoginReply", "login"),
    ("LOGIN_FULL_PRESENCE_LIMIT", "presence"),
];

/// Items of the crate root itself (`lib.rs`), which every module may use.
const ROOT_OWN: &[&str] = &["BOT_ID", "unix_millis"];

/// Upward edges that are still there, each with why, as (from, to).
const KNOWN_UPWARD: &[(&str, &str, &str)] = &[
    (
        "user",
        "sessions",
        "the session's context holds the router (its casts and calls by key, the directory, the node's session table), and a session ends itself in the node's tables; narrowing that to traits is the next step",
    ),
    (
        "user",
        "directory",
        "the same: the session reads the directory directly",
    ),
    (
        "cluster",
        "world",
        "inbound delivery, membership and the admin calls operate the node through World; they move to the runtime crate",
    ),
    ("cluster", "spawn", "the same"),
    ("cluster", "migrate", "the same"),
    (
        "router",
        "world",
        "the same: held messages are delivered through World",
    ),
    (
        "user",
        "router",
        "the same: the router is in the session's context",
    ),
    (
        "ports",
        "router",
        "a send returns the router's RouteError, which lives with the router",
    ),
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

/// The non-test code of a file: everything before its first `#[cfg(test)]`, without
/// comments (a doc link names a module without depending on it).
fn code(text: &str) -> String {
    let text = text.find("#[cfg(test)]").map_or(text, |i| &text[..i]);
    text.lines()
        .map(|line| line.find("//").map_or(line, |i| &line[..i]))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate modules (or root items) a piece of code names.
fn named(code: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut rest = code;
    while let Some(i) = rest.find("crate::") {
        rest = &rest[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `use crate::{a, b::{c, d}, E}`: the first word of each item at depth one.
            let mut depth = 1;
            let mut item = String::new();
            let mut items = Vec::new();
            for c in group.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 1 => break,
                    '}' => depth -= 1,
                    ',' if depth == 1 => items.push(std::mem::take(&mut item)),
                    c if depth == 1 => item.push(c),
                    _ => {}
                }
            }
            items.push(item);
            for item in items {
                let word: String = item
                    .trim()
                    .chars()
                    .take_while(|c| c.is_alphanumeric() || *c == '_')
                    .collect();
                if !word.is_empty() {
                    out.insert(word);
                }
            }
        } else {
            let word: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(word);
        }
    }
    out
}

/// Each top-level module and the modules it names (root items mapped to their module).
fn edges() -> BTreeMap<String, BTreeSet<String>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let relative = path.strip_prefix(&root).unwrap();
            let first = relative.components().next().unwrap();
            let module = first
                .as_os_str()
                .to_string_lossy()
                .trim_end_matches(".rs")
                .to_owned();
            if module == "lib" {
                continue;
            }
            // A module's `tests.rs` is test code throughout.
            if path.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for name in named(&code(&text)) {
                if ROOT_OWN.contains(&name.as_str()) {
                    continue;
                }
                let target = ROOT_ITEMS
                    .iter()
                    .find(|(item, _)| *item == name)
                    .map_or(name.clone(), |(_, m)| (*m).to_owned());
                if target != module {
                    edges.entry(module.clone()).or_default().insert(target);
                }
            }
        }
    }
    edges
}

#[test]
fn modules_depend_downward_only() {
    let edges = edges();
    let known: BTreeSet<(&str, &str)> = KNOWN_UPWARD
        .iter()
        .map(|(from, to, _)| (*from, *to))
        .collect();
    let mut unplaced = Vec::new();
    let mut upward = BTreeSet::new();
    for (from, targets) in &edges {
        let Some(from_layer) = layer_of(from) else {
            unplaced.push(from.clone());
            continue;
        };
        for to in targets {
            let Some(to_layer) = layer_of(to) else {
                unplaced.push(format!("{to} (named by {from})"));
                continue;
            };
            if to_layer < from_layer {
                upward.insert((from.as_str(), to.as_str()));
            }
        }
    }
    assert!(
        unplaced.is_empty(),
        "modules in no layer (add them to LAYERS and docs/ARCHITECTURE.md): {unplaced:?}"
    );
    let new: Vec<_> = upward.difference(&known).collect();
    assert!(
        new.is_empty(),
        "modules that name a module above them (from, to): {new:?}"
    );
    let gone: Vec<_> = known.difference(&upward).collect();
    assert!(
        gone.is_empty(),
        "upward edges that are gone: remove them from KNOWN_UPWARD: {gone:?}"
    );
}

#[test]
fn the_reader_finds_what_a_file_names() {
    let names = named(
        "use crate::{EntityKey, channel::ChannelCast, user::{UserCast, packet_bytes}};\n\
         let x = crate::spectate::channel_name(1); // crate::BOT_ID",
    );
    let names: Vec<_> = names.iter().map(String::as_str).collect();
    assert_eq!(
        names,
        ["BOT_ID", "EntityKey", "channel", "spectate", "user"]
    );
}
