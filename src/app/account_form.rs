//! The add-account form: what the window's Accounts page sends, checked and made an
//! [`Account`] with every problem explained in words.

use crate::account;
use crate::config::Account;

/// The add-account form as typed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountForm {
    pub user: String,
    pub password: String,
    pub registrar: String,
    pub media: String,
    pub srtp: String,
}

/// Checks the add-account form and makes it an account.
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
    Ok(Account {
        user: uri.to_string(),
        password: (!form.password.is_empty()).then(|| form.password.clone()),
        registrar: (!registrar.is_empty()).then(|| registrar.to_string()),
        media: choice(&form.media, &["classic", "webrtc"])?,
        srtp: choice(&form.srtp, &["off", "optional", "mandatory"])?,
        ..Account::default()
    })
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
}
