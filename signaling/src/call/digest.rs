//! Answering a 401/407 to a call's request with digest credentials (RFC 3261 §22.2).

use rsip::prelude::UntypedHeader;
use rsip::{Header, Request, Response};

use crate::auth::{Challenge, Credentials, DigestSession};
use crate::message::HeaderAccess;

/// The digest state of one challenge: which header it answers and the nonce count.
#[derive(Debug, Clone)]
pub(crate) struct CallDigest {
    session: DigestSession,
    /// A proxy's challenge (407): answered in Proxy-Authorization.
    proxy: bool,
}

impl CallDigest {
    /// The strongest challenge of a 401/407 Callisto can answer, if any.
    pub fn from_response(response: &Response) -> Option<CallDigest> {
        let proxy = response.status_code.code() == 407;
        let values = if proxy {
            response.proxy_authenticate()
        } else {
            response.www_authenticate()
        };
        let challenges: Vec<Challenge> = values
            .into_iter()
            .filter_map(|v| Challenge::parse(v).ok())
            .collect();
        let challenge = crate::auth::choose(&challenges)?.clone();
        let session = DigestSession::new(challenge).ok()?;
        Some(CallDigest { session, proxy })
    }

    /// Whether the server says the nonce we used was stale (the password was right).
    pub fn is_stale(&self) -> bool {
        self.session.challenge().stale
    }

    /// Adds the Authorization or Proxy-Authorization header for `request` (its method,
    /// Request-URI and body) to it.
    pub fn authorize(&mut self, request: &mut Request, credentials: &Credentials, cnonce: &str) {
        let value = self.session.authorization_with_body(
            credentials,
            &request.method.to_string(),
            &request.uri.to_string(),
            cnonce,
            &request.body,
        );
        let header = if self.proxy {
            Header::ProxyAuthorization(rsip::headers::ProxyAuthorization::new(value))
        } else {
            Header::Authorization(rsip::headers::Authorization::new(value))
        };
        // Before Content-Length, which stays last.
        let length = request
            .headers
            .iter()
            .position(|h| matches!(h, Header::ContentLength(_)));
        let mut headers: Vec<Header> = request.headers.iter().cloned().collect();
        headers.insert(length.unwrap_or(headers.len()), header);
        request.headers = headers.into();
    }
}

/// Whether a request carries credentials.
pub(crate) fn has_credentials(request: &Request) -> bool {
    request
        .headers
        .iter()
        .any(|h| matches!(h, Header::Authorization(_) | Header::ProxyAuthorization(_)))
}
