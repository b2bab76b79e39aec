//! Transaction identity and the matching rules of RFC 3261 §17.1.3 and §17.2.3.

use std::fmt;
use std::hash::{Hash, Hasher};

use rsip::Method;

/// Which end of a transaction this endpoint is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Side {
    /// We sent the request.
    Client,
    /// We received the request.
    Server,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum KeyId {
    /// A client transaction: the branch we generated is unique on its own.
    Branch(String),
    /// A server transaction with an RFC 3261 branch: branch plus the top Via's sent-by.
    BranchSentBy { branch: String, sent_by: String },
    /// A server transaction for an RFC 2543 request without a magic-cookie branch:
    /// Request-URI, To tag, From tag, Call-ID, CSeq number and top Via, joined.
    Legacy(String),
}

/// Identifies one transaction: its branch (or RFC 2543 fields), its method and its side.
///
/// An ACK matches the INVITE transaction it acknowledges, so keys derived from an ACK carry
/// the INVITE method. CANCEL is a transaction of its own with the same branch as the INVITE.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionKey {
    side: Side,
    method: Method,
    id: KeyId,
}

impl Hash for TransactionKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.side.hash(state);
        std::mem::discriminant(&self.method).hash(state);
        self.id.hash(state);
    }
}

impl TransactionKey {
    pub(crate) fn client(branch: &str, method: Method) -> Self {
        TransactionKey {
            side: Side::Client,
            method: transaction_method(method),
            id: KeyId::Branch(branch.to_owned()),
        }
    }

    pub(crate) fn server(branch: &str, sent_by: &str, method: Method) -> Self {
        TransactionKey {
            side: Side::Server,
            method: transaction_method(method),
            id: KeyId::BranchSentBy {
                branch: branch.to_owned(),
                sent_by: sent_by.to_ascii_lowercase(),
            },
        }
    }

    pub(crate) fn legacy(fields: String, method: Method) -> Self {
        TransactionKey {
            side: Side::Server,
            method: transaction_method(method),
            id: KeyId::Legacy(fields),
        }
    }

    /// Client or server.
    pub fn side(&self) -> Side {
        self.side
    }

    /// The method of the request that created the transaction (INVITE for an ACK).
    pub fn method(&self) -> Method {
        self.method
    }

    /// The top Via branch, unless the transaction was matched with the RFC 2543 rules.
    pub fn branch(&self) -> Option<&str> {
        match &self.id {
            KeyId::Branch(branch) | KeyId::BranchSentBy { branch, .. } => Some(branch),
            KeyId::Legacy(_) => None,
        }
    }

    /// The key of the transaction with the same branch and side but another method: for a
    /// CANCEL server transaction, `key.with_method(Method::Invite)` names the INVITE it
    /// cancels (RFC 3261 §9.2).
    pub fn with_method(&self, method: Method) -> Self {
        TransactionKey {
            side: self.side,
            method: transaction_method(method),
            id: self.id.clone(),
        }
    }
}

impl fmt::Display for TransactionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let side = match self.side {
            Side::Client => "client",
            Side::Server => "server",
        };
        match &self.id {
            KeyId::Branch(branch) => write!(f, "{side}/{}/{branch}", self.method),
            KeyId::BranchSentBy { branch, sent_by } => {
                write!(f, "{side}/{}/{branch}@{sent_by}", self.method)
            }
            KeyId::Legacy(fields) => write!(f, "{side}/{}/rfc2543:{fields}", self.method),
        }
    }
}

/// ACK belongs to the INVITE transaction; every other method names its own.
fn transaction_method(method: Method) -> Method {
    match method {
        Method::Ack => Method::Invite,
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn ack_shares_the_invite_key_and_cancel_does_not() {
        let invite = TransactionKey::server("z9hG4bK1", "a.example:5060", Method::Invite);
        let ack = TransactionKey::server("z9hG4bK1", "A.example:5060", Method::Ack);
        let cancel = TransactionKey::server("z9hG4bK1", "a.example:5060", Method::Cancel);
        assert_eq!(invite, ack);
        assert_ne!(invite, cancel);
        assert_eq!(cancel.with_method(Method::Invite), invite);
        let set: HashSet<_> = [invite.clone(), ack, cancel].into_iter().collect();
        assert_eq!(set.len(), 2);
        assert_eq!(invite.branch(), Some("z9hG4bK1"));
    }

    #[test]
    fn client_and_server_keys_differ() {
        let client = TransactionKey::client("z9hG4bK1", Method::Register);
        let server = TransactionKey::server("z9hG4bK1", "", Method::Register);
        assert_ne!(client, server);
        assert_eq!(client.side(), Side::Client);
        assert_eq!(client.method(), Method::Register);
    }
}
