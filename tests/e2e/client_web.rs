//! The client's web calls besides scores, over HTTP on every configured backend:
//! ratings, favourites, in-song comments, anti-cheat flags, error reports, read marks,
//! seasonal backgrounds, star ratings with mods, the calls answered empty, and the bot's
//! announcement in #announce when a player takes first place.

#![allow(clippy::unwrap_used)]

use bytes::Bytes;
use peace_bancho::ServerPacket;
use peace_db::{Backend, ReportKind};
use peace_scores::status::RankedStatus;

use crate::common::{BOT_NAME, PASSWORD, TestServer, md5_hex};
use crate::scores::{STD_MAP, play, submit};

const BACKGROUND: &str = "https://example.com/menu/winter.jpg";

/// The test map with osu!'s ids, so that it has a set to favourite and an id to rate.
fn map_with_ids() -> Bytes {
    let text = String::from_utf8(STD_MAP.to_vec()).unwrap();
    let text = text.replace("BeatmapID:0", "BeatmapID:4242");
    let text = text.replace("BeatmapSetID:-1", "BeatmapSetID:4200");
    assert!(text.contains("BeatmapSetID:4200"));
    Bytes::from(text)
}

async fn get(server: &TestServer, path_and_query: &str) -> (u16, String) {
    let response = server
        .http
        .get(format!("{}{path_and_query}", server.base))
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_form(server: &TestServer, path: &str, form: &[(&str, &str)]) -> (u16, String) {
    let response = server
        .http
        .post(format!("{}{path}", server.base))
        .form(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn post_json(server: &TestServer, path: &str, body: &str) -> (u16, String) {
    let response = server
        .http
        .post(format!("{}{path}", server.base))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

async fn scenario(server: &TestServer) {
    let pw = md5_hex(PASSWORD);
    let map = server
        .world()
        .scores()
        .beatmaps()
        .import_osu(map_with_ids(), RankedStatus::Ranked)
        .await
        .unwrap();
    assert_eq!((map.id, map.set_id), (4242, 4200));
    // Carol watches #announce (every player joins it at login); Alice and Bob play.
    let mut carol = server.player("Carol").await;
    for name in ["Alice", "Bob"] {
        let email = format!("{}@example.com", name.to_lowercase());
        let response = server.register(name, &email, PASSWORD, false).await;
        assert_eq!(response.status(), 200);
    }
    let db = server.world().db().clone();
    let alice = db.user_by_name("Alice").await.unwrap().unwrap();
    let bob = db.user_by_name("Bob").await.unwrap().unwrap();

    // First place: announced by the bot in #announce, with links to player and map.
    let (status, _) = submit(server, &play("Alice", &map.md5, 50_000, true, 1), PASSWORD).await;
    assert_eq!(status, 200);
    let announced = |name: &'static str| {
        move |p: &ServerPacket| {
            matches!(p, ServerPacket::SendMessage(m)
                if m.message.sender == BOT_NAME
                    && m.message.recipient == "#announce"
                    && m.message.text.contains(&format!(" {name}] achieved #1 on ")))
        }
    };
    let ServerPacket::SendMessage(first) = carol
        .wait_for("Alice's first place", announced("Alice"))
        .await
    else {
        unreachable!()
    };
    assert!(
        first.message.text.starts_with(&format!(
            "[https://osu.peace.local/u/{} Alice] achieved #1 on [https://osu.peace.local/b/4242 \
             Peace Test Vectors - Standard Test [Circles Sliders Spinner]] (osu!)",
            alice.id
        )),
        "{}",
        first.message.text
    );
    // Bob takes it from her; her lower play after that takes nothing.
    submit(server, &play("Bob", &map.md5, 70_000, true, 2), PASSWORD).await;
    carol.wait_for("Bob's first place", announced("Bob")).await;
    submit(server, &play("Alice", &map.md5, 40_000, true, 3), PASSWORD).await;
    submit(server, &play("Bob", &map.md5, 80_000, true, 4), PASSWORD).await;
    // Bob improving his own #1 is not news either; a last pass by Alice on top is.
    submit(server, &play("Alice", &map.md5, 90_000, true, 5), PASSWORD).await;
    carol
        .wait_for("Alice's second first place", announced("Alice"))
        .await;
    let more = carol
        .seen
        .iter()
        .filter(|p| announced("Bob")(p) || announced("Alice")(p))
        .count();
    assert_eq!(more, 0, "announced more than the three first places");

    // Ratings: asked, voted once, the mean; a second vote does not count.
    let rate = |name: &str, v: &str| {
        format!(
            "/web/osu-rate.php?c={}&u={name}&p={pw}{v}",
            map.md5.to_uppercase()
        )
    };
    assert_eq!(get(server, &rate("Alice", "")).await, (200, "ok".into()));
    assert_eq!(
        get(server, &rate("Alice", "&v=8")).await,
        (200, "alreadyvoted\n8.00".into())
    );
    assert_eq!(
        get(server, &rate("Alice", "&v=1")).await,
        (200, "alreadyvoted\n8.00".into())
    );
    assert_eq!(
        get(server, &rate("Alice", "")).await.1,
        "alreadyvoted\n8.00"
    );
    assert_eq!(get(server, &rate("Bob", "&v=99")).await.1, "ok");
    assert_eq!(
        get(server, &rate("Bob", "&v=3")).await.1,
        "alreadyvoted\n5.50"
    );
    let unknown = format!("/web/osu-rate.php?c={}&u=Alice&p={pw}", "f".repeat(32));
    assert_eq!(get(server, &unknown).await.1, "no exist");
    let garbage = format!("/web/osu-rate.php?c=%00%ff&v=x&u=Alice&p={pw}");
    assert_eq!(get(server, &garbage).await, (200, "no exist".into()));
    let wrong = format!(
        "/web/osu-rate.php?c={}&u=Alice&p={}",
        map.md5,
        md5_hex("no")
    );
    assert_eq!(get(server, &wrong).await.1, "auth fail");

    // Favourites.
    let favourites = format!("/web/osu-getfavourites.php?u=Alice&h={pw}");
    assert_eq!(get(server, &favourites).await, (200, String::new()));
    let add = |set: &str| format!("/web/osu-addfavourite.php?a={set}&u=Alice&h={pw}");
    assert_eq!(get(server, &add("4200")).await, (200, String::new()));
    assert_eq!(
        get(server, &add("4200")).await.1,
        "You've already favourited this beatmap!"
    );
    for not_a_set in ["999999", "-1", "abc", ""] {
        let (status, text) = get(server, &add(not_a_set)).await;
        assert_eq!(status, 200);
        assert!(text.contains("not known"), "{not_a_set}: {text}");
    }
    assert_eq!(get(server, &favourites).await.1, "4200");
    let bob_favourites = format!("/web/osu-getfavourites.php?u=Bob&h={pw}");
    assert_eq!(get(server, &bob_favourites).await.1, "");

    // Comments: posted on the map and the set, listed in song order; a tab in the text
    // cannot break the line format; a colour needs a supporter.
    let comment =
        |a: &'static str, target: &'static str, time: &'static str, text: &'static str| {
            vec![
                ("u", "Alice"),
                ("p", pw.as_str()),
                ("b", "4242"),
                ("s", "4200"),
                ("r", "0"),
                ("m", "0"),
                ("a", a),
                ("target", target),
                ("starttime", time),
                ("f", "ff0000"),
                ("comment", text),
            ]
        };
    let posted = post_form(
        server,
        "/web/osu-comment.php",
        &comment("post", "map", "5000", "nice\tslider"),
    )
    .await;
    assert_eq!(posted, (200, String::new()));
    let posted = post_form(
        server,
        "/web/osu-comment.php",
        &comment("post", "song", "1200", "great song"),
    )
    .await;
    assert_eq!(posted.0, 200);
    let long = "x".repeat(500);
    let long: &'static str = Box::leak(long.into_boxed_str());
    post_form(
        server,
        "/web/osu-comment.php",
        &comment("post", "map", "9000", long),
    )
    .await;
    let (status, listed) =
        post_form(server, "/web/osu-comment.php", &comment("get", "", "", "")).await;
    assert_eq!(status, 200);
    let lines: Vec<&str> = listed.lines().collect();
    assert_eq!(lines.len(), 3, "{listed}");
    assert_eq!(lines[0], "1200\tsong\t\tgreat song");
    assert_eq!(lines[1], "5000\tmap\t\tnice slider");
    assert_eq!(lines[2], format!("9000\tmap\t\t{}", "x".repeat(80)));
    // Another map's comments are not these.
    let mut other = comment("get", "", "", "");
    other[2] = ("b", "1");
    other[3] = ("s", "1");
    assert_eq!(
        post_form(server, "/web/osu-comment.php", &other).await.1,
        ""
    );
    for bad in [
        comment("dance", "map", "1", "x"),
        comment("post", "moon", "1", "x"),
    ] {
        assert_eq!(post_form(server, "/web/osu-comment.php", &bad).await.0, 400);
    }
    let mut wrong_login = comment("get", "", "", "");
    wrong_login[1] = ("p", "0");
    assert_eq!(
        post_form(server, "/web/osu-comment.php", &wrong_login).await,
        (200, "error: pass".into())
    );

    // Anti-cheat flags: recorded with the player; a beatmap id is not a flag.
    let lastfm = |b: &str| format!("/web/lastfm.php?b={b}&action=np&us=Alice&ha={pw}");
    assert_eq!(get(server, &lastfm("a16")).await, (200, String::new()));
    assert_eq!(get(server, &lastfm("4242")).await, (200, "-3".into()));
    assert_eq!(get(server, &lastfm("a1x")).await, (200, "-3".into()));
    let flags = db.client_reports(ReportKind::Flags, 10).await.unwrap();
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!((flags[0].user_id, flags[0].flags), (Some(alice.id), 16));

    // Error reports: with the player when logged in, without otherwise; the screenshot
    // part is not kept.
    let report = |login: bool| {
        let mut form = reqwest::multipart::Form::new()
            .text("i", "0")
            .text("osumode", "Menu")
            .text("gamemode", "Osu")
            .text("version", "b20231030")
            .text("exception", "System.NullReferenceException")
            .text("feedback", "crashed")
            .text("stacktrace", "at osu.Main()\n".repeat(3000))
            .part(
                "ss",
                reqwest::multipart::Part::bytes(vec![0u8; 1000]).file_name("ss.jpg"),
            );
        if login {
            form = form.text("u", "Bob").text("h", pw.clone());
        }
        form
    };
    for login in [true, false] {
        let response = server
            .http
            .post(format!("{}/web/osu-error.php", server.base))
            .multipart(report(login))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let errors = db.client_reports(ReportKind::Error, 10).await.unwrap();
    assert_eq!(errors.len(), 2, "{errors:?}");
    assert_eq!(errors[1].user_id, Some(bob.id));
    assert_eq!(errors[0].user_id, None);
    assert_eq!(errors[0].client_version, "b20231030");
    assert!(
        errors[0]
            .detail
            .starts_with("exception: System.NullReferenceException\n")
    );
    assert!(errors[0].detail.chars().count() <= peace_db::MAX_REPORT_DETAIL_LEN);
    let not_a_form = server
        .http
        .post(format!("{}/web/osu-error.php", server.base))
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--y\r\n garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(not_a_form.status(), 200);
    assert_eq!(
        db.client_reports(ReportKind::Error, 10)
            .await
            .unwrap()
            .len(),
        2
    );

    // Read marks: Bob's waiting message to Alice is not handed out again.
    db.store_mail(bob.id, alice.id, "see you").await.unwrap();
    let read = format!("/web/osu-markasread.php?channel=Bob&u=Alice&h={pw}");
    assert_eq!(get(server, &read).await, (200, String::new()));
    assert!(db.take_mail(alice.id).await.unwrap().is_empty());
    let channel = format!("/web/osu-markasread.php?channel=%23osu&u=Alice&h={pw}");
    assert_eq!(get(server, &channel).await.0, 200);

    // Seasonal backgrounds: the configured list.
    let (status, seasonal) = get(server, "/web/osu-getseasonal.php").await;
    assert_eq!(status, 200);
    assert_eq!(
        serde_json::from_str::<Vec<String>>(&seasonal).unwrap(),
        [BACKGROUND]
    );

    // Star ratings with mods: DoubleTime is harder; an unknown map is a 404.
    let stars = |body: &'static str| post_json(server, "/difficulty-rating", body);
    let (status, nomod) = stars(r#"{"beatmap_id":4242,"ruleset_id":0,"mods":0}"#).await;
    assert_eq!(status, 200, "{nomod}");
    let nomod: f64 = nomod.parse().unwrap();
    assert!(
        (nomod - f64::from(map.stars)).abs() < 0.01,
        "{nomod} vs {}",
        map.stars
    );
    let (_, dt) = stars(r#"{"beatmap_id":4242,"ruleset_id":0,"mods":64}"#).await;
    let dt: f64 = dt.parse().unwrap();
    assert!(dt > nomod, "{dt} <= {nomod}");
    let (_, dt_list) =
        stars(r#"{"beatmap_id":4242,"ruleset_id":0,"mods":[{"acronym":"DT"}]}"#).await;
    assert_eq!(dt_list.parse::<f64>().unwrap(), dt);
    let (_, taiko) = stars(r#"{"beatmap_id":4242,"ruleset_id":1,"mods":0}"#).await;
    assert!(taiko.parse::<f64>().unwrap() > 0.0);
    assert_eq!(
        stars(r#"{"beatmap_id":999,"ruleset_id":0,"mods":0}"#)
            .await
            .0,
        404
    );
    for bad in [
        "not json",
        r#"{"ruleset_id":0}"#,
        r#"{"beatmap_id":4242,"ruleset_id":9}"#,
        r#"{"beatmap_id":99999999999,"ruleset_id":0}"#,
        r#"{"beatmap_id":4242,"ruleset_id":0,"mods":["ZZ"]}"#,
    ] {
        assert_eq!(stars(bad).await.0, 400, "{bad}");
    }

    // The calls answered without content.
    let session = server
        .http
        .post(format!("{}/web/osu-session.php", server.base))
        .body("telemetry")
        .send()
        .await
        .unwrap();
    assert_eq!(session.status(), 200);
    assert_eq!(
        get(server, "/web/bancho_connect.php?v=b20231030&u=Alice&h=x").await,
        (200, String::new())
    );
    assert_eq!(
        get(
            server,
            "/web/check-updates.php?action=check&stream=stable40"
        )
        .await,
        (200, "[]".into())
    );
}

async fn run_on(backend: Backend) {
    let server = TestServer::start_on_with(backend, |config| {
        config.web.seasonal_backgrounds = vec![BACKGROUND.into()];
    })
    .await;
    if let Some(server) = server {
        scenario(&server).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_clients_web_calls_on_sqlite() {
    run_on(Backend::Sqlite).await;
}

peace_db::backend_test!(
    Postgres,
    #[tokio::test(flavor = "multi_thread")]
    async fn the_clients_web_calls_on_postgres() {
        run_on(Backend::Postgres).await;
    }
);

peace_db::backend_test!(
    Mysql,
    #[tokio::test(flavor = "multi_thread")]
    async fn the_clients_web_calls_on_mysql() {
        run_on(Backend::Mysql).await;
    }
);
