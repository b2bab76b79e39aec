use super::*;

fn param<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .trim_start_matches("Digest ")
        .split(", ")
        .find_map(|p| p.strip_prefix(name)?.strip_prefix('='))
        .map(|v| v.trim_matches('"'))
}

#[test]
fn rfc2617_section_3_5_md5_auth() {
    let challenge = Challenge::parse(
        "Digest realm=\"testrealm@host.com\", qop=\"auth,auth-int\", \
         nonce=\"dcd98b7102dd2f0e8b11d0f600bfb0c093\", \
         opaque=\"5ccc069c403ebaf9f0171e9517f40e41\"",
    )
    .unwrap();
    assert_eq!(challenge.qop, vec![Qop::Auth, Qop::AuthInt]);
    assert_eq!(challenge.algorithm, Algorithm::Md5);
    let mut session = DigestSession::new(challenge).unwrap();
    let creds = Credentials::new("Mufasa", "Circle Of Life");
    let header = session.authorization(&creds, "GET", "/dir/index.html", "0a4f113b");
    assert_eq!(
        param(&header, "response"),
        Some("6629fae49393a05397450978507c4ef1")
    );
    assert_eq!(param(&header, "nc"), Some("00000001"));
    assert_eq!(param(&header, "qop"), Some("auth"));
    assert_eq!(param(&header, "cnonce"), Some("0a4f113b"));
    assert_eq!(
        param(&header, "opaque"),
        Some("5ccc069c403ebaf9f0171e9517f40e41")
    );
    assert_eq!(param(&header, "username"), Some("Mufasa"));
    assert_eq!(param(&header, "uri"), Some("/dir/index.html"));
}

const RFC7616_NONCE: &str = "7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v";
const RFC7616_CNONCE: &str = "f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ";

fn rfc7616_challenge(algorithm: &str) -> String {
    format!(
        "Digest\n realm=\"http-auth@example.org\",  qop=\"auth, auth-int\",\talgorithm={algorithm}, \
         nonce=\"{RFC7616_NONCE}\", opaque=\"FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS\""
    )
}

#[test]
fn rfc7616_section_3_9_1_md5_and_sha256() {
    let creds = Credentials::new("Mufasa", "Circle of Life");
    for (algorithm, expected) in [
        ("MD5", "8ca523f5e9506fed4657c9700eebdbec"),
        (
            "SHA-256",
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let challenge = Challenge::parse(&rfc7616_challenge(algorithm)).unwrap();
        let mut session = DigestSession::new(challenge).unwrap();
        let header = session.authorization(&creds, "GET", "/dir/index.html", RFC7616_CNONCE);
        assert_eq!(param(&header, "response"), Some(expected), "{algorithm}");
        assert_eq!(param(&header, "algorithm"), Some(algorithm));
        assert_eq!(
            param(&header, "opaque"),
            Some("FQhe/qaU925kfnzjCev0ciny7QMkPqMAFRtzCUYo5tdS")
        );
    }
}

#[test]
fn sip_register_md5_without_qop_uses_rfc2069_form() {
    // Expected value computed independently: MD5(MD5(A1):nonce:MD5(A2)).
    let challenge =
        Challenge::parse("Digest realm=\"biloxi.com\", nonce=\"dc3a5ab2530aa93112cf5904ba7d88fa\"")
            .unwrap();
    let mut session = DigestSession::new(challenge).unwrap();
    let creds = Credentials::new("bob", "zanzibar");
    let header = session.authorization(&creds, "REGISTER", "sip:biloxi.com", "unused");
    assert_eq!(
        param(&header, "response"),
        Some("42221b57055285ff14b964301e365f71")
    );
    assert_eq!(param(&header, "qop"), None);
    assert_eq!(param(&header, "nc"), None);
    assert_eq!(param(&header, "cnonce"), None);
    assert_eq!(param(&header, "algorithm"), None);
}

#[test]
fn sip_invite_sha256_nonce_count_increments_and_resets() {
    let challenge = |nonce: &str| {
        Challenge::parse(&format!(
            "Digest realm=\"atlanta.com\",nonce=\"{nonce}\",algorithm=SHA-256,qop=auth"
        ))
        .unwrap()
    };
    let creds = Credentials::new("alice", "secret");
    let mut session = DigestSession::new(challenge("abc123")).unwrap();
    let first = session.authorization(&creds, "INVITE", "sip:bob@biloxi.com", "0a4f113b");
    assert_eq!(
        param(&first, "response"),
        Some("96c793eb6574fcc7701d01cf4d78e6deef62659e44fc082e22613d7a56723345")
    );
    let second = session.authorization(&creds, "INVITE", "sip:bob@biloxi.com", "0a4f113b");
    assert_eq!(param(&second, "nc"), Some("00000002"));
    assert_eq!(
        param(&second, "response"),
        Some("cc45da074a630562e34408fdc867750dc556a3edb617045c0960c879218ae8ec")
    );
    session.update(challenge("abc123")).unwrap();
    assert_eq!(session.nonce_count(), 2);
    session.update(challenge("fresh")).unwrap();
    let third = session.authorization(&creds, "INVITE", "sip:bob@biloxi.com", "0a4f113b");
    assert_eq!(param(&third, "nc"), Some("00000001"));
    assert_eq!(param(&third, "nonce"), Some("fresh"));
}

#[test]
fn md5_sess_and_auth_int() {
    let creds = Credentials::new("alice", "secret");
    let sess = Challenge::parse(
        "Digest realm=\"atlanta.com\", nonce=\"abc123\", algorithm=MD5-sess, qop=\"auth\"",
    )
    .unwrap();
    let header = DigestSession::new(sess).unwrap().authorization(
        &creds,
        "REGISTER",
        "sip:atlanta.com",
        "cn1",
    );
    assert_eq!(
        param(&header, "response"),
        Some("f68990d6f7c59e061bf6cfaa2865a5f6")
    );
    assert_eq!(param(&header, "algorithm"), Some("MD5-sess"));

    let int_only =
        Challenge::parse("Digest realm=\"atlanta.com\", nonce=\"n1\", qop=\"auth-int\"").unwrap();
    let header = DigestSession::new(int_only)
        .unwrap()
        .authorization_with_body(&creds, "INVITE", "sip:bob@biloxi.com", "cn", b"v=0");
    assert_eq!(param(&header, "qop"), Some("auth-int"));
    assert_eq!(
        param(&header, "response"),
        Some("2f4878f59ecc456f34f876c16b6d6814")
    );
}

#[test]
fn challenge_parsing_is_tolerant() {
    let c = Challenge::parse(
        "digest  nonce=abc , STALE=TRUE,realm = \"r\\\"q\", unknown=\"x, y\", \
         domain=\"sip:a.example sip:b.example\", qop=auth",
    )
    .unwrap();
    assert_eq!(c.nonce, "abc");
    assert_eq!(c.realm, "r\"q");
    assert!(c.stale);
    assert_eq!(c.qop, vec![Qop::Auth]);
    assert_eq!(c.domain.as_deref(), Some("sip:a.example sip:b.example"));
    assert!(
        !Challenge::parse("Digest realm=\"r\", nonce=\"n\", stale=false")
            .unwrap()
            .stale
    );

    assert_eq!(
        Challenge::parse("Basic realm=\"r\""),
        Err(AuthError::NotDigest("Basic".into()))
    );
    assert_eq!(
        Challenge::parse("Digest realm=\"r\""),
        Err(AuthError::MissingParam("nonce"))
    );
    assert_eq!(
        Challenge::parse("Digest realm=\"r, nonce=1"),
        Err(AuthError::Malformed)
    );
    let odd = Challenge::parse("Digest realm=r, nonce=n, qop=\"auth-conf\"").unwrap();
    assert_eq!(
        DigestSession::new(odd).unwrap_err(),
        AuthError::UnsupportedQop
    );
    let unknown = Challenge::parse("Digest realm=r, nonce=n, algorithm=AKAv1-MD5").unwrap();
    assert_eq!(
        DigestSession::new(unknown).unwrap_err(),
        AuthError::UnsupportedAlgorithm("AKAv1-MD5".into())
    );
}

#[test]
fn choose_prefers_sha256_and_skips_unsupported() {
    let parse = |alg: &str| {
        Challenge::parse(&format!(
            "Digest realm=\"r\", nonce=\"{alg}\", algorithm={alg}"
        ))
        .unwrap()
    };
    let list = [parse("MD5"), parse("SHA-256"), parse("AKAv1-MD5")];
    assert_eq!(choose(&list).map(|c| c.nonce.as_str()), Some("SHA-256"));
    let list = [parse("AKAv1-MD5"), parse("MD5"), parse("MD5-sess")];
    assert_eq!(choose(&list).map(|c| c.nonce.as_str()), Some("MD5"));
    assert!(choose(&[parse("AKAv1-MD5")]).is_none());
    assert!(choose(&[]).is_none());
}

#[test]
fn credentials_debug_hides_the_password() {
    let creds = Credentials::new("alice", "hunter2-secret");
    let shown = format!("{creds:?}");
    assert!(shown.contains("alice"));
    assert!(!shown.contains("hunter2"));
}
