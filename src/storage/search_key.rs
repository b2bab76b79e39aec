//! The folded forms the database stores beside names and addresses, so that search, completion
//! and "calls with this address" compare case-insensitively (full Unicode lower case, which
//! SQLite's own `LIKE` and `lower()` only do for ASCII) and an address matches however it was
//! written.
//!
//! Both the stored keys and the typed queries go through the same functions; a change to them
//! needs a schema migration that recomputes the stored keys.

/// A name or free text, trimmed and lower-cased.
pub(crate) fn fold(text: &str) -> String {
    text.trim().to_lowercase()
}

/// The comparable form of a dialable address: folded, without enclosing `<…>`, without the
/// `sip:`, `sips:` or `tel:` scheme, without URI parameters and headers (`;transport=tcp`,
/// `?subject=…`), and, for a telephone number (a user part of digits, `+`, `*`, `#` and the
/// visual separators of RFC 3966), without the separators.
///
/// `sip:Alice@Example.org;transport=tcp`, `<sips:alice@example.org>` and `alice@example.org` all
/// give `alice@example.org`; `tel:+33 6-12.34` and `sip:+3361234@pbx` give `+3361234` and
/// `+3361234@pbx`. The key compares the user part case-insensitively too, which RFC 3261 does
/// not; for finding past calls with a person that is the useful choice.
pub(crate) fn address_key(address: &str) -> String {
    let folded = fold(address);
    let mut rest = folded.as_str();
    if let Some(inner) = rest.strip_prefix('<') {
        rest = inner.strip_suffix('>').unwrap_or(inner);
    }
    for scheme in ["sips:", "sip:", "tel:"] {
        if let Some(after) = rest.strip_prefix(scheme) {
            rest = after;
            break;
        }
    }
    // Parameters and headers start after the host part (or anywhere in a bare number).
    let host_start = rest.find('@').unwrap_or(0);
    let end = rest[host_start..]
        .find([';', '?', '>'])
        .map(|i| host_start + i)
        .unwrap_or(rest.len());
    let rest = &rest[..end];
    let (user, host) = match rest.find('@') {
        Some(at) => (&rest[..at], &rest[at..]),
        None => (rest, ""),
    };
    let is_number = !user.is_empty()
        && user.chars().any(|c| c.is_ascii_digit())
        && user
            .chars()
            .all(|c| c.is_ascii_digit() || "+*#-.() ".contains(c));
    let user = if is_number {
        user.chars().filter(|c| !"-.() ".contains(*c)).collect()
    } else {
        user.trim().to_string()
    };
    format!("{user}{host}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folding_is_unicode_lower_case() {
        assert_eq!(fold("  Élodie ÖZTÜRK "), "élodie öztürk");
    }

    #[test]
    fn sip_uris_compare_without_scheme_case_or_parameters() {
        for written in [
            "sip:Alice@Example.org;transport=tcp",
            "<sips:alice@example.org>",
            "alice@example.org",
            "SIP:alice@EXAMPLE.ORG?subject=hi",
        ] {
            assert_eq!(address_key(written), "alice@example.org", "{written}");
        }
    }

    #[test]
    fn numbers_lose_their_visual_separators() {
        assert_eq!(address_key("tel:+33 6-12.34"), "+3361234");
        assert_eq!(
            address_key("tel:+1-201-555-0123;phone-context=x"),
            "+12015550123"
        );
        assert_eq!(address_key("(0)6 12 34"), "061234");
        assert_eq!(
            address_key("sip:+33-612@pbx.example.org"),
            "+33612@pbx.example.org"
        );
        assert_eq!(address_key("1001"), "1001");
        // A name with a dash is not a number.
        assert_eq!(
            address_key("sip:jean-luc@example.org"),
            "jean-luc@example.org"
        );
    }

    #[test]
    fn a_user_part_with_parameters_keeps_its_host() {
        assert_eq!(
            address_key("sip:+123;phone-context=example.org@gw.example.org;user=phone"),
            "+123;phone-context=example.org@gw.example.org"
        );
    }

    #[test]
    fn odd_input_gives_some_key_without_panicking() {
        for written in [
            "", "<", ">", "sip:", "@", ";;", "<sip:@>", "tel:", "é@", "?@;",
        ] {
            let _ = address_key(written);
        }
        assert_eq!(address_key("sip:"), "");
    }
}
