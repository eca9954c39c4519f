//! The handshake's pure parts against vectors computed with Python's `hmac` module:
//! `hmac.new(b"secret key", M, "sha256" or "md5").hexdigest()`.

use super::*;

const KEY: &[u8] = b"secret key";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

/// `{sha256}` followed by the bytes 0..40.
fn modern_challenge() -> Vec<u8> {
    [SHA256_PREFIX, &(0..40).collect::<Vec<u8>>()].concat()
}

/// The bytes 0..20.
fn legacy_challenge() -> Vec<u8> {
    (0..20).collect()
}

const SHA256_OF_MODERN: &str = "de660527caa52c2d8313422ff6496f5aa46b4ddfca5f20b8da5748f901d3dd5b";
const MD5_OF_LEGACY: &str = "4a02c707870ff5a776b673d15ef53ada";
const MD5_OF_MODERN: &str = "b60d7fd0e70a7da2749f805c65053205";

#[test]
fn modern_challenge_is_answered_with_prefixed_sha256_over_all_of_it() {
    let response = respond(KEY, &modern_challenge(), Dialect::Negotiate).unwrap();
    assert_eq!(response, [SHA256_PREFIX, &hex(SHA256_OF_MODERN)].concat());
    let response = respond(KEY, &modern_challenge(), Dialect::ModernOnly).unwrap();
    assert_eq!(response, [SHA256_PREFIX, &hex(SHA256_OF_MODERN)].concat());
}

#[test]
fn legacy_challenge_is_answered_with_raw_md5() {
    let response = respond(KEY, &legacy_challenge(), Dialect::Negotiate).unwrap();
    assert_eq!(response, hex(MD5_OF_LEGACY));
    assert_eq!(
        respond(KEY, &legacy_challenge(), Dialect::ModernOnly),
        Err(AuthFailure::LegacyRefused)
    );
}

#[test]
fn legacy_only_answers_every_challenge_with_raw_md5_as_python_3_11() {
    let response = respond(KEY, &modern_challenge(), Dialect::LegacyOnly).unwrap();
    assert_eq!(response, hex(MD5_OF_MODERN));
}

#[test]
fn md5_prefixed_challenge_is_answered_in_kind() {
    let challenge = [MD5_PREFIX, &[7; 40][..]].concat();
    let response = respond(KEY, &challenge, Dialect::Negotiate).unwrap();
    assert_eq!(&response[..5], MD5_PREFIX);
    assert_eq!(response[5..], hmac_md5(KEY, &challenge));
}

#[test]
fn bad_challenges_are_refused() {
    assert_eq!(
        respond(KEY, &[0; 19], Dialect::Negotiate),
        Err(AuthFailure::ChallengeTooShort { len: 19 })
    );
    assert_eq!(
        respond(
            KEY,
            &[b"{sha384}", &[0; 40][..]].concat(),
            Dialect::Negotiate
        ),
        Err(AuthFailure::UnsupportedDigest {
            name: "sha384".into()
        })
    );
    assert_eq!(
        respond(KEY, &[b'x'; 30], Dialect::Negotiate),
        Err(AuthFailure::NotAChallenge)
    );
}

#[test]
fn verify_accepts_modern_and_legacy_responses() {
    let m = modern_challenge();
    let modern = [SHA256_PREFIX, &hex(SHA256_OF_MODERN)].concat();
    assert_eq!(
        verify_response(KEY, &m, &modern, Dialect::Negotiate),
        Ok(())
    );
    assert_eq!(
        verify_response(KEY, &m, &modern, Dialect::ModernOnly),
        Ok(())
    );
    assert_eq!(
        verify_response(KEY, &m, &modern, Dialect::LegacyOnly),
        Ok(())
    );

    // What Python 3.11 sends back to a modern challenge.
    let legacy = hex(MD5_OF_MODERN);
    assert_eq!(
        verify_response(KEY, &m, &legacy, Dialect::Negotiate),
        Ok(())
    );
    assert_eq!(
        verify_response(KEY, &m, &legacy, Dialect::ModernOnly),
        Err(AuthFailure::LegacyRefused)
    );
    let prefixed = [MD5_PREFIX, &hex(MD5_OF_MODERN)].concat();
    assert_eq!(
        verify_response(KEY, &m, &prefixed, Dialect::Negotiate),
        Ok(())
    );
    assert_eq!(
        verify_response(KEY, &m, &prefixed, Dialect::ModernOnly),
        Err(AuthFailure::LegacyRefused)
    );
}

#[test]
fn verify_rejects_wrong_and_malformed_responses() {
    let m = modern_challenge();
    let mut modern = [SHA256_PREFIX, &hex(SHA256_OF_MODERN)].concat();
    *modern.last_mut().unwrap() ^= 1;
    assert_eq!(
        verify_response(KEY, &m, &modern, Dialect::Negotiate),
        Err(AuthFailure::WrongDigest)
    );
    let other_key = respond(b"other key", &m, Dialect::Negotiate).unwrap();
    assert_eq!(
        verify_response(KEY, &m, &other_key, Dialect::Negotiate),
        Err(AuthFailure::WrongDigest)
    );
    let cases: [&[u8]; 6] = [
        b"",
        b"hello",
        &[0; 20],                // a legacy length, but not an MD5's
        b"{sha256}too short",    // wrong MAC length
        b"{}0123456789abcdef0",  // empty name
        b"{sha3_384_x}whatever", // no closing brace within a digest name's length
    ];
    for case in cases {
        assert_eq!(
            verify_response(KEY, &m, case, Dialect::Negotiate),
            Err(AuthFailure::MalformedResponse),
            "{case:?}"
        );
    }
    assert_eq!(
        verify_response(KEY, &m, b"{blake2b}0123456789", Dialect::Negotiate),
        Err(AuthFailure::UnsupportedDigest {
            name: "blake2b".into()
        })
    );
}

#[test]
fn challenges_have_the_right_shape_and_are_fresh() {
    let a = new_challenge(Dialect::Negotiate).unwrap();
    let b = new_challenge(Dialect::ModernOnly).unwrap();
    assert_eq!(a.len(), 48);
    assert!(a.starts_with(SHA256_PREFIX));
    assert_eq!(b.len(), 48);
    assert_ne!(a, b);
    let legacy = new_challenge(Dialect::LegacyOnly).unwrap();
    assert_eq!(legacy.len(), 20);
    assert_eq!(parse_form(&legacy), Ok(Form::Legacy(&legacy[..])));
    assert_eq!(parse_form(&a), Ok(Form::Sha256(&a[8..])));
}

#[test]
fn key_is_not_printed() {
    let auth = Authenticator::new(AuthKey::new(b"hunter2".to_vec()));
    let shown = format!("{auth:?} {:?}", auth.key());
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(!shown.contains("104, 117"), "{shown}");
}

#[test]
fn key_file_is_read_as_is_and_empty_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    std::fs::write(&path, b"secret\n").unwrap();
    assert_eq!(AuthKey::from_file(&path).unwrap().as_bytes(), b"secret\n");
    std::fs::write(&path, b"").unwrap();
    assert!(matches!(
        AuthKey::from_file(&path),
        Err(Error::Path { ref source, .. }) if source.kind() == io::ErrorKind::InvalidData
    ));
    assert!(matches!(
        AuthKey::from_file(dir.path().join("missing")),
        Err(Error::Path { ref source, .. }) if source.kind() == io::ErrorKind::NotFound
    ));
}

/// A key file is read up to [`MAX_KEY_FILE_LEN`] bytes and no further: a longer file, or one
/// that never ends (`/dev/zero`, a mistaken path), is a typed error, not memory without bound.
#[test]
fn key_file_longer_than_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("key");
    std::fs::write(&path, vec![b'k'; MAX_KEY_FILE_LEN]).unwrap();
    assert_eq!(
        AuthKey::from_file(&path).unwrap().as_bytes().len(),
        MAX_KEY_FILE_LEN
    );
    std::fs::write(&path, vec![b'k'; MAX_KEY_FILE_LEN + 1]).unwrap();
    for path in [path.as_path(), Path::new("/dev/zero")] {
        let err = AuthKey::from_file(path).unwrap_err();
        assert!(
            matches!(&err, Error::Path { source, .. } if source.kind() == io::ErrorKind::InvalidData),
            "{path:?}: {err:?}"
        );
        assert!(err.to_string().contains("longer than"), "{err}");
    }
}
