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
