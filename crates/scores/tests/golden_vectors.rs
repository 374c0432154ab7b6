//! Checks the Rust code against vectors made by an independent implementation
//! (`tests/golden/make_vectors.py`, with the PyPI package `py3rijndael` and Python's hashlib).

use peace_scores::crypto;

const VECTORS: &str = include_str!("golden/vectors.txt");

fn vectors(kind: &str) -> impl Iterator<Item = Vec<&'static str>> + '_ {
    VECTORS
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .map(|line| line.split('|').collect::<Vec<_>>())
        .filter(move |fields| fields[0] == kind)
}

#[test]
fn cipher_vectors_match_both_ways() {
    let mut count = 0;
    for v in vectors("cipher") {
        let (version, iv_b64, plain_hex, ct_b64) = (v[1], v[2], v[3], v[4]);
        let iv = crypto::decode_base64(iv_b64).unwrap();
        let plain = hex::decode(plain_hex).unwrap();
        let ct = crypto::decode_base64(ct_b64).unwrap();
        assert_eq!(
            crypto::encrypt(version, &iv, &plain).unwrap(),
            ct,
            "encrypt {v:?}"
        );
        assert_eq!(
            crypto::decrypt(version, &iv, &ct).unwrap(),
            plain,
            "decrypt {v:?}"
        );
        count += 1;
    }
    assert!(count >= 8, "only {count} cipher vectors");
}

#[test]
fn the_realistic_score_field_decrypts_to_score_text() {
    let v = vectors("cipher").next().unwrap();
    let text = crypto::decrypt_field(v[1], v[2], v[4]).unwrap();
    assert!(text.starts_with("1cf5b2c2edfafd055536d2cefcb89c0e:peppy :"));
    assert_eq!(text.split(':').count(), 18);
}

#[test]
fn the_online_checksum_matches_python() {
    use peace_scores::grade::Counts;
    use peace_scores::submission::ScoreText;

    let v = vectors("checksum").next().unwrap();
    let num = |i: usize| v[i].parse::<u32>().unwrap();
    let score = ScoreText {
        beatmap_md5: v[1].into(),
        player_name: v[2].into(),
        supporter: false,
        online_checksum: String::new(),
        counts: Counts {
            n300: num(3),
            n100: num(4),
            n50: num(5),
            ngeki: num(6),
            nkatu: num(7),
            nmiss: num(8),
        },
        score: v[9].parse().unwrap(),
        max_combo: num(10),
        perfect: v[11] == "True",
        grade: v[12].parse().unwrap(),
        mods: peace_scores::mods::Mods::from_bits_retain(num(13)),
        passed: v[14] == "True",
        mode: peace_scores::mode::Mode::from_number(v[15].parse().unwrap()).unwrap(),
        client_time: v[16].into(),
        osu_version: v[17].into(),
        client_flags: 0,
    };
    // The client hash itself contains no '|', so the fields split cleanly.
    let (version, client_hash, storyboard, expected) = (v[17], v[18], v[19], v[20]);
    assert_eq!(
        score.expected_online_checksum(v[2], version, client_hash, storyboard),
        expected
    );
}

#[test]
fn the_realistic_submission_decrypts_parses_and_checks_out() {
    use peace_scores::submission::ScoreText;

    let sum = vectors("checksum").next().unwrap();
    let field = vectors("cipher").next().unwrap();
    let text = crypto::decrypt_field(field[1], field[2], field[4]).unwrap();
    let score = ScoreText::parse(&text).unwrap();
    assert!(score.supporter);
    assert_eq!(score.client_flags, 2);
    assert!(score.online_checksum_matches(&score.player_name, field[1], sum[18], sum[19]));
}
