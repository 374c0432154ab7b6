// Tells the tests which database servers this build was made for: with
// `PEACE_TEST_POSTGRES_URL` / `PEACE_TEST_MYSQL_URL` set, the cfgs `peace_test_postgres` /
// `peace_test_mysql` are on, and the tests of that backend run; without, they are marked
// ignored (see `peace_db::backend_test!`), so that `cargo test` shows them as ignored,
// with the reason, instead of counting them as passed. The root package's build script
// is this file too.

fn main() {
    for (var, cfg) in [
        ("PEACE_TEST_POSTGRES_URL", "peace_test_postgres"),
        ("PEACE_TEST_MYSQL_URL", "peace_test_mysql"),
    ] {
        println!("cargo::rerun-if-env-changed={var}");
        println!("cargo::rustc-check-cfg=cfg({cfg})");
        if std::env::var(var).is_ok_and(|url| !url.trim().is_empty()) {
            println!("cargo::rustc-cfg={cfg}");
        }
    }
}
