//! The account form: what the window's Accounts page sends to add or change an account,
//! checked and made an [`Account`] with every problem explained in words, and an account put
//! back into the form to edit it.

use crate::account;
use crate::call::media_options_for;
use crate::cli::MediaArgs;
use crate::config::Account;

/// The account form as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountForm {
    pub user: String,
    pub password: String,
    pub registrar: String,
    pub media: String,
    pub srtp: String,
    /// How to reach the server: `auto` (or empty: what its address and DNS say), `udp`,
    /// `tcp` or `tls` (the registrar's `transport` parameter).
    pub transport: String,
    /// `stun:HOST:PORT`, or empty.
    pub stun: String,
    /// `turn:HOST:PORT`, or empty; with its user and password.
    pub turn: String,
    pub turn_user: String,
    pub turn_password: String,
}

impl AccountForm {
    /// The form filled with `account`, to edit it.
    pub fn of(account: &Account) -> AccountForm {
        let text = |value: &Option<String>| value.clone().unwrap_or_default();
        let registrar = text(&account.registrar);
        let (registrar, transport) = match split_transport(&registrar) {
            (rest, Some(transport)) if FORM_TRANSPORTS.contains(&transport.as_str()) => {
                (rest, transport)
            }
            _ => (registrar, "auto".to_string()),
        };
        AccountForm {
            user: account.user.clone(),
            password: text(&account.password),
            registrar,
            transport,
            media: account.media.clone().unwrap_or_else(|| "classic".into()),
            srtp: account.srtp.clone().unwrap_or_else(|| "optional".into()),
            stun: text(&account.stun),
            turn: text(&account.turn),
            turn_user: text(&account.turn_user),
            turn_password: text(&account.turn_password),
        }
    }
}

/// The transports the form offers besides `auto`.
const FORM_TRANSPORTS: [&str; 3] = ["udp", "tcp", "tls"];

/// A SIP address without its `transport` parameter, and that parameter's value (lowercase)
/// when it has one.
fn split_transport(address: &str) -> (String, Option<String>) {
    let lower = address.to_ascii_lowercase();
    let Some(at) = lower.find(";transport=") else {
        return (address.to_string(), None);
    };
    let value_at = at + ";transport=".len();
    let end = lower[value_at..]
        .find([';', '?', '>'])
        .map_or(address.len(), |e| value_at + e);
    let rest = format!("{}{}", &address[..at], &address[end..]);
    (rest, Some(lower[value_at..end].to_string()))
}

/// `account` changed as the form says; what the form does not show (its name, authentication
/// user, WebSocket path, expiry) stays.
pub fn edited_account(account: &Account, form: &AccountForm) -> Result<Account, String> {
    let edited = account_from_form(form)?;
    Ok(Account {
        name: account.name.clone(),
        auth_user: account.auth_user.clone(),
        ws_path: account.ws_path.clone(),
        expires: account.expires,
        ..edited
    })
}

/// Checks the account form and makes it an account.
pub fn account_from_form(form: &AccountForm) -> Result<Account, String> {
    let user = form.user.trim();
    if user.is_empty() {
        return Err("Give the account's address, like sip:alice@example.org".into());
    }
    let with_scheme = if user.starts_with("sip:") || user.starts_with("sips:") {
        user.to_string()
    } else {
        format!("sip:{user}")
    };
    let uri = account::parse_sip_uri(&with_scheme)
        .filter(|uri| uri.auth.is_some())
        .ok_or_else(|| {
            format!("'{user}' is not an account address; write it like sip:alice@example.org")
        })?;
    let registrar = form.registrar.trim();
    let unreadable = registrar.contains(char::is_whitespace)
        || (account::parse_sip_uri(registrar).is_none()
            && account::websocket_url(registrar).is_none());
    if !registrar.is_empty() && unreadable {
        return Err(format!(
            "'{registrar}' is not a server address; write it like sip:pbx.example.org or wss://example.org/ws"
        ));
    }
    let choice = |text: &str, allowed: &[&str]| -> Result<Option<String>, String> {
        match text.trim() {
            "" => Ok(None),
            t if allowed.contains(&t) => Ok(Some(t.to_string())),
            t => Err(format!("'{t}' is not one of {}", allowed.join(", "))),
        }
    };
    let optional = |text: &str| {
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_string())
    };
    let registrar = with_transport(registrar, &form.transport, &uri)?;
    let account = Account {
        user: uri.to_string(),
        password: (!form.password.is_empty()).then(|| form.password.clone()),
        registrar,
        media: choice(&form.media, &["classic", "webrtc"])?,
        srtp: choice(&form.srtp, &["off", "optional", "mandatory"])?,
        stun: optional(&form.stun),
        turn: optional(&form.turn),
        turn_user: optional(&form.turn_user),
        turn_password: (!form.turn_password.is_empty()).then(|| form.turn_password.clone()),
        ..Account::default()
    };
    // The ICE servers as a call would take them: the same checks, in the form's words.
    media_options_for(&MediaArgs::default(), Some(&account)).map_err(|reason| {
        reason
            .replace("--stun ", "STUN server ")
            .replace(
                "--turn needs --turn-user and --turn-password",
                "A TURN server needs its user and password",
            )
            .replace("--turn ", "TURN server ")
    })?;
    Ok(account)
}

/// The registrar the form asks for: the server typed (or, when none is, the account's own
/// domain) with the chosen transport as its `transport` parameter; with `auto`, the server
/// as typed. `None`: no server, found from the account's domain.
fn with_transport(
    registrar: &str,
    transport: &str,
    user: &rsip::Uri,
) -> Result<Option<String>, String> {
    let transport = transport.trim().to_ascii_lowercase();
    if transport.is_empty() || transport == "auto" {
        return Ok((!registrar.is_empty()).then(|| registrar.to_string()));
    }
    if !FORM_TRANSPORTS.contains(&transport.as_str()) {
        return Err(format!(
            "'{transport}' is not a transport; choose auto, udp, tcp or tls"
        ));
    }
    let websocket_error =
        || "A WebSocket server address carries its own transport; choose auto for it".to_string();
    if account::websocket_url(registrar).is_some() {
        return Err(websocket_error());
    }
    // With no server given, the account's own domain, scheme and port (as registering
    // without one would use them).
    let server = if registrar.is_empty() {
        format!(
            "{}:{}",
            user.scheme.clone().unwrap_or_default(),
            user.host_with_port
        )
    } else {
        let (server, typed) = split_transport(registrar);
        if matches!(typed.as_deref(), Some("ws" | "wss")) {
            return Err(websocket_error());
        }
        server
    };
    if server.starts_with("sips:") && transport != "tls" {
        return Err(format!(
            "A sips: server is reached over TLS only; choose tls or auto, not {transport}"
        ));
    }
    // The parameter goes with the URI's other parameters, before any headers.
    Ok(Some(match server.split_once('?') {
        Some((uri, headers)) => format!("{uri};transport={transport}?{headers}"),
        None => format!("{server};transport={transport}"),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_account_form_explains_what_is_wrong() {
        let form = |user: &str, registrar: &str| AccountForm {
            user: user.into(),
            registrar: registrar.into(),
            ..AccountForm::default()
        };
        assert!(account_from_form(&form("", ""))
            .unwrap_err()
            .contains("address"));
        assert!(account_from_form(&form("example.org", ""))
            .unwrap_err()
            .contains("not an account address"));
        assert!(
            account_from_form(&form("alice@example.org", "not a server!"))
                .unwrap_err()
                .contains("not a server address")
        );
        let account = account_from_form(&AccountForm {
            user: "alice@example.org".into(),
            password: "secret".into(),
            registrar: "sip:127.0.0.1:5060".into(),
            media: "webrtc".into(),
            srtp: "mandatory".into(),
            ..AccountForm::default()
        })
        .unwrap();
        assert_eq!(account.user, "sip:alice@example.org");
        assert_eq!(account.password.as_deref(), Some("secret"));
        assert_eq!(account.media.as_deref(), Some("webrtc"));
        assert_eq!(account.srtp.as_deref(), Some("mandatory"));
        let wrong = AccountForm {
            srtp: "sometimes".into(),
            ..form("alice@example.org", "")
        };
        assert!(account_from_form(&wrong)
            .unwrap_err()
            .contains("not one of"));
    }

    #[test]
    fn stun_and_turn_are_checked_like_a_call_would() {
        let form = |stun: &str, turn: &str, turn_user: &str, turn_password: &str| AccountForm {
            user: "alice@example.org".into(),
            stun: stun.into(),
            turn: turn.into(),
            turn_user: turn_user.into(),
            turn_password: turn_password.into(),
            ..AccountForm::default()
        };
        assert_eq!(
            account_from_form(&form("127.0.0.1:3478", "", "", "")).unwrap_err(),
            "STUN server 127.0.0.1:3478: write it like stun:HOST:3478"
        );
        assert_eq!(
            account_from_form(&form("", "turn:127.0.0.1:3478", "", "")).unwrap_err(),
            "A TURN server needs its user and password"
        );
        let account = account_from_form(&form(
            "stun:127.0.0.1:3478",
            "turn:127.0.0.1:3478",
            "alice",
            "s3cret",
        ))
        .unwrap();
        assert_eq!(account.stun.as_deref(), Some("stun:127.0.0.1:3478"));
        assert_eq!(account.turn_user.as_deref(), Some("alice"));
        assert_eq!(account.turn_password.as_deref(), Some("s3cret"));
    }

    #[test]
    fn the_transport_chosen_becomes_the_registrars_transport_parameter_and_back() {
        let form = |registrar: &str, transport: &str| AccountForm {
            user: "alice@example.org".into(),
            registrar: registrar.into(),
            transport: transport.into(),
            ..AccountForm::default()
        };
        let registrar = |registrar: &str, transport: &str| {
            account_from_form(&form(registrar, transport)).map(|a| a.registrar)
        };
        assert_eq!(
            registrar("sip:pbx.example.org:5070", "tcp"),
            Ok(Some("sip:pbx.example.org:5070;transport=tcp".into()))
        );
        // Without a server, the account's own domain over that transport.
        assert_eq!(
            registrar("", "tls"),
            Ok(Some("sip:example.org;transport=tls".into()))
        );
        assert_eq!(registrar("", "auto"), Ok(None));
        // The account's own port and scheme stay.
        let own = |user: &str, transport: &str| {
            account_from_form(&AccountForm {
                user: user.into(),
                transport: transport.into(),
                ..AccountForm::default()
            })
            .map(|a| a.registrar)
        };
        assert_eq!(
            own("sip:alice@example.org:5070", "tcp"),
            Ok(Some("sip:example.org:5070;transport=tcp".into()))
        );
        assert_eq!(
            own("sips:alice@example.org", "tls"),
            Ok(Some("sips:example.org;transport=tls".into()))
        );
        assert!(own("sips:alice@example.org", "udp")
            .unwrap_err()
            .contains("over TLS only"));
        assert!(registrar("sip:pbx.example.org;transport=ws", "tcp")
            .unwrap_err()
            .contains("WebSocket"));
        // The choice replaces a parameter typed in the address; auto keeps what was typed.
        assert_eq!(
            registrar("sip:pbx.example.org;transport=UDP;lr", "tls"),
            Ok(Some("sip:pbx.example.org;lr;transport=tls".into()))
        );
        assert_eq!(
            registrar("sip:pbx.example.org;transport=tcp", "auto"),
            Ok(Some("sip:pbx.example.org;transport=tcp".into()))
        );
        assert_eq!(
            registrar("wss://example.org/ws", "tcp").unwrap_err(),
            "A WebSocket server address carries its own transport; choose auto for it"
        );
        assert_eq!(
            registrar("", "sctp").unwrap_err(),
            "'sctp' is not a transport; choose auto, udp, tcp or tls"
        );
        // Editing shows the parameter as the choice and the address without it.
        let account = account_from_form(&form("sip:pbx.example.org", "tls")).unwrap();
        let shown = AccountForm::of(&account);
        assert_eq!(
            (shown.registrar.as_str(), shown.transport.as_str()),
            ("sip:pbx.example.org", "tls")
        );
        assert_eq!(
            account_from_form(&shown).map(|a| a.registrar),
            Ok(account.registrar)
        );
        let plain = account_from_form(&form("sip:pbx.example.org", "")).unwrap();
        assert_eq!(AccountForm::of(&plain).transport, "auto");
    }

    #[test]
    fn editing_an_account_keeps_what_the_form_does_not_show() {
        let account = Account {
            name: "work".into(),
            user: "sip:alice@example.org".into(),
            password: Some("old".into()),
            auth_user: Some("alice-auth".into()),
            expires: 600,
            media: Some("webrtc".into()),
            ..Account::default()
        };
        let mut form = AccountForm::of(&account);
        assert_eq!(form.password, "old");
        assert_eq!(
            (form.media.as_str(), form.srtp.as_str()),
            ("webrtc", "optional")
        );
        form.password = "new".into();
        form.registrar = "sip:pbx.example.org;transport=tls".into();
        let edited = edited_account(&account, &form).unwrap();
        assert_eq!(edited.password.as_deref(), Some("new"));
        assert_eq!(
            edited.registrar.as_deref(),
            Some("sip:pbx.example.org;transport=tls")
        );
        assert_eq!(edited.name, "work");
        assert_eq!(edited.auth_user.as_deref(), Some("alice-auth"));
        assert_eq!(edited.expires, 600);
        // Unchanged, the form gives the account back.
        assert_eq!(
            edited_account(&account, &AccountForm::of(&account)).unwrap(),
            Account {
                srtp: Some("optional".into()),
                ..account
            }
        );
    }
}
