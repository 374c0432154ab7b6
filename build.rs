// The same test-server cfgs as the database crate's tests (see that file).
include!("crates/db/build.rs");
