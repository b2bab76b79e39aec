//! The documents of the SIP event package for conference state (RFC 4575).
//!
//! A conference focus sends its subscribers `application/conference-info+xml` documents in the
//! NOTIFY requests of the `conference` event package. This module handles the part a softphone
//! shows: the conference URI and subject, and per user the display text, the status of the
//! user's endpoint and its media streams. [`ConferenceInfo::to_xml`] writes a full document, as a
//! focus sends it; [`parse`] reads a received one, full or partial, refusing document type
//! declarations (so no entity is ever expanded); a [`Roster`] applies them in order (RFC 4575
//! §4.6) and reports a partial one out of sequence, so that the subscriber can resubscribe.

use std::fmt::Write as _;

use roxmltree::Node;

/// The MIME type of the documents, the NOTIFY bodies of the package (RFC 4575 §3.4).
pub const CONTENT_TYPE: &str = "application/conference-info+xml";
/// The Event package name (RFC 4575 §3.1).
pub const EVENT: &str = "conference";

/// The XML namespace of the documents.
const NAMESPACE: &str = "urn:ietf:params:xml:ns:conference-info";

/// A conference as a document describes it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConferenceInfo {
    /// The conference URI (`entity` attribute of `<conference-info>`).
    pub entity: String,
    /// `<conference-description><subject>`, when given.
    pub subject: Option<String>,
    /// The users, in document order.
    pub users: Vec<ConferenceUser>,
}

/// One user of the conference (a `<user>` element).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConferenceUser {
    /// The user's URI (`entity` attribute of `<user>`), e.g. sip:bob@example.com.
    pub entity: String,
    /// `<display-text>` of the user.
    pub display: Option<String>,
    /// `<status>` of the user's first `<endpoint>`: "connected", "on-hold", "disconnected", …
    /// (the endpoint status values of RFC 4575 §5); None when absent.
    pub status: Option<String>,
    /// The endpoint's media streams.
    pub media: Vec<ConferenceMedia>,
}

/// One media stream of an endpoint (a `<media>` element).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConferenceMedia {
    /// `id` attribute of `<media>`.
    pub id: String,
    /// `<type>`: "audio", "video", …
    pub kind: String,
    /// `<label>`: the SDP a=label of the stream this media is sent in, when given.
    pub label: Option<String>,
    /// `<status>`: "sendrecv", "sendonly", "recvonly", "inactive".
    pub status: Option<String>,
}

impl ConferenceUser {
    /// What to call the user: the display text, else the user part of the entity URI
    /// (`sip:bob@host` → `bob`), else the entity. A blank display text counts as absent.
    pub fn name(&self) -> String {
        let display = self.display.as_deref().map(str::trim);
        let display = display.filter(|display| !display.is_empty());
        let name = display.or_else(|| user_part(&self.entity));
        name.unwrap_or(&self.entity).to_owned()
    }
}

/// The user part of a URI: what lies between the scheme and the `@`, when there is an `@` and
/// the part is not empty (`sip:bob@host` → `bob`; `bob@host` → `bob`).
fn user_part(uri: &str) -> Option<&str> {
    let rest = uri.split_once(':').map_or(uri, |(_scheme, rest)| rest);
    let (user, _host) = rest.split_once('@')?;
    (!user.is_empty()).then_some(user)
}

impl ConferenceInfo {
    /// The document as XML, `state="full"`, with the given `version` (RFC 4575 §5.1: versions
    /// grow by one per notification sent to a subscriber).
    ///
    /// It has the subject (when Some), the `<user-count>`, and per user one
    /// `<endpoint entity="{user entity}">` with `<status>` (when Some) and `<media>` (no `<type>`
    /// when `kind` is empty). Text and attribute values are XML-escaped (`&<>"'`); characters
    /// XML 1.0 cannot carry (most C0 controls) become U+FFFD. UTF-8, with the XML declaration.
    pub fn to_xml(&self, version: u32) -> String {
        let mut xml = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<conference-info xmlns=\"{NAMESPACE}\" \
             entity=\"{}\" state=\"full\" version=\"{version}\">\n",
            escape(&self.entity)
        );
        if self.subject.is_some() {
            xml.push_str("  <conference-description>\n");
            push_element(&mut xml, 4, "subject", self.subject.as_deref());
            xml.push_str("  </conference-description>\n");
        }
        let count = self.users.len().to_string();
        xml.push_str("  <conference-state>\n");
        push_element(&mut xml, 4, "user-count", Some(&count));
        xml.push_str("  </conference-state>\n  <users>\n");
        for user in &self.users {
            let entity = escape(&user.entity);
            xml.push_str(&format!("    <user entity=\"{entity}\" state=\"full\">\n"));
            push_element(&mut xml, 6, "display-text", user.display.as_deref());
            xml.push_str(&format!("      <endpoint entity=\"{entity}\">\n"));
            push_element(&mut xml, 8, "status", user.status.as_deref());
            for media in &user.media {
                xml.push_str(&format!("        <media id=\"{}\">\n", escape(&media.id)));
                let kind = Some(media.kind.as_str()).filter(|kind| !kind.is_empty());
                push_element(&mut xml, 10, "type", kind);
                push_element(&mut xml, 10, "label", media.label.as_deref());
                push_element(&mut xml, 10, "status", media.status.as_deref());
                xml.push_str("        </media>\n");
            }
            xml.push_str("      </endpoint>\n    </user>\n");
        }
        xml.push_str("  </users>\n</conference-info>\n");
        xml
    }
}

/// Appends `<name>text</name>`, `text` escaped, on a line indented by `indent`; nothing for None.
fn push_element(xml: &mut String, indent: usize, name: &str, text: Option<&str>) {
    if let Some(text) = text {
        let _ = writeln!(xml, "{:indent$}<{name}>{}</{name}>", "", escape(text));
    }
}

/// `text` escaped for XML text and attribute values. Tab, LF and CR become character references,
/// which attribute value normalisation keeps; characters XML 1.0 does not allow become U+FFFD.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            '\u{0}'..='\u{1f}' | '\u{fffe}' | '\u{ffff}' => out.push('\u{fffd}'),
            c => out.push(c),
        }
    }
    out
}

/// One received document: its version, whether it is full or partial, and its content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConferenceDocument {
    /// The `version` attribute of `<conference-info>`.
    pub version: u32,
    /// `state="full"` (the default when absent is "full").
    pub full: bool,
    /// The conference as the document describes it; users marked deleted are not in it.
    pub info: ConferenceInfo,
    /// Entities of users that the document marks `state="deleted"` (partial documents).
    pub deleted: Vec<String>,
}

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConferenceInfoError {
    /// The body is not well-formed UTF-8 XML, or it has a document type declaration.
    #[error("not an XML document: {0}")]
    NotXml(String),
    /// The root element is not `<conference-info>` in the RFC 4575 namespace.
    #[error("the root element is not an RFC 4575 conference-info element")]
    NotConferenceInfo,
    /// The `version` attribute of `<conference-info>` is missing or not an unsigned 32-bit number.
    #[error("the version attribute is missing or not an unsigned 32-bit number")]
    BadVersion,
    /// The `state` attribute of `<conference-info>` is neither "full" nor "partial".
    #[error("the state attribute of conference-info is {0:?}, not \"full\" or \"partial\"")]
    BadState(String),
    /// The named element has no `entity` attribute.
    #[error("a {0} element has no entity attribute")]
    MissingEntity(&'static str),
}

/// Parses a received document (RFC 4575 §5).
///
/// Tolerant of what devices add: unknown elements and attributes, other namespaces' extensions
/// (even with RFC 4575 local names), comments, whitespace (text is trimmed), missing optional
/// elements. Only the `<users>` directly in `<conference-info>` are read, not sidebars'. A
/// user's status and media are those of its first `<endpoint>` not marked deleted; a `<media>`
/// without `id` gets an empty one. A `<user>` marked deleted goes to `deleted`.
pub fn parse(xml: &[u8]) -> Result<ConferenceDocument, ConferenceInfoError> {
    use ConferenceInfoError as E;
    let text = std::str::from_utf8(xml).map_err(|e| E::NotXml(e.to_string()))?;
    let document = roxmltree::Document::parse(text).map_err(|e| E::NotXml(e.to_string()))?;
    let root = document.root_element();
    if !is(root, "conference-info") {
        return Err(E::NotConferenceInfo);
    }
    let version = attribute(root, "version").and_then(|v| v.parse().ok());
    let version = version.ok_or(E::BadVersion)?;
    let full = match attribute(root, "state") {
        None | Some("full") => true,
        Some("partial") => false,
        Some(other) => return Err(E::BadState(other.to_owned())),
    };
    let entity = attribute(root, "entity").ok_or(E::MissingEntity("conference-info"))?;
    let description = child(root, "conference-description");
    let subject = description.and_then(|d| child_text(d, "subject"));
    let mut info = ConferenceInfo {
        entity: entity.to_owned(),
        subject,
        users: Vec::new(),
    };
    let mut deleted = Vec::new();
    for users in root.children().filter(|n| is(*n, "users")) {
        for user in users.children().filter(|n| is(*n, "user")) {
            let entity = attribute(user, "entity").ok_or(E::MissingEntity("user"))?;
            if attribute(user, "state") == Some("deleted") {
                deleted.push(entity.to_owned());
            } else {
                info.users.push(parse_user(user, entity.to_owned()));
            }
        }
    }
    Ok(ConferenceDocument {
        version,
        full,
        info,
        deleted,
    })
}

/// A `<user>` element whose entity has been read.
fn parse_user(user: Node, entity: String) -> ConferenceUser {
    let live = |n: &Node| is(*n, "endpoint") && attribute(*n, "state") != Some("deleted");
    let endpoint = user.children().find(live);
    let media = endpoint
        .into_iter()
        .flat_map(|e| e.children().filter(|n| is(*n, "media")))
        .map(|m| ConferenceMedia {
            id: attribute(m, "id").unwrap_or_default().to_owned(),
            kind: child_text(m, "type").unwrap_or_default(),
            label: child_text(m, "label"),
            status: child_text(m, "status"),
        })
        .collect();
    ConferenceUser {
        entity,
        display: child_text(user, "display-text"),
        status: endpoint.and_then(|e| child_text(e, "status")),
        media,
    }
}

/// Whether `node` is the element `name` of the RFC 4575 namespace.
fn is(node: Node, name: &str) -> bool {
    let tag = node.tag_name();
    node.is_element() && tag.name() == name && tag.namespace() == Some(NAMESPACE)
}

/// The value of the attribute `name` (with no namespace) of `node`, trimmed.
fn attribute<'a>(node: Node<'a, '_>, name: &str) -> Option<&'a str> {
    node.attribute(name).map(str::trim)
}

/// The first child of `node` that is the RFC 4575 element `name`.
fn child<'a, 'input>(node: Node<'a, 'input>, name: &str) -> Option<Node<'a, 'input>> {
    node.children().find(|n| is(*n, name))
}

/// The trimmed text directly inside the first child `name` of `node`, joined across comments.
fn child_text(node: Node, name: &str) -> Option<String> {
    let element = child(node, name)?;
    let texts = element.children().filter(Node::is_text);
    let text: String = texts.filter_map(|n| n.text()).collect();
    Some(text.trim().to_owned())
}

/// The roster a subscriber holds: documents applied in order (RFC 4575 §4.6).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Roster {
    /// The conference as the documents applied so far describe it.
    pub info: ConferenceInfo,
    /// The version of the last document applied; None before the first.
    pub version: Option<u32>,
}

/// A partial document that does not follow the last one applied, so was not applied. The
/// subscriber should refresh its subscription: the NOTIFY that answers it carries a full document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("partial conference document version {got} is out of sequence (expected {expected})")]
pub struct OutOfSequence {
    /// The last version applied + 1, or 0 before any document (when only a full one applies).
    pub expected: u32,
    /// The version of the document.
    pub got: u32,
}

impl Roster {
    /// Applies a received document and returns whether the roster changed.
    ///
    /// A full document replaces the roster, whatever its version: a new subscription or a resync
    /// may restart the numbering. A partial one is applied only when its version is exactly the
    /// last one + 1 (RFC 4575 §4.6): its subject, when given, replaces the known one; users are
    /// matched by entity, and a user element replaces the fields it carries (display text,
    /// status, media when it lists any) or is appended when new; then deleted entities are
    /// removed. A partial document out of sequence (older, repeated, with a gap, or before any
    /// full one) is ignored and returns [`OutOfSequence`].
    pub fn apply(&mut self, document: ConferenceDocument) -> Result<bool, OutOfSequence> {
        if document.full {
            let changed = self.info != document.info;
            self.info = document.info;
            self.version = Some(document.version);
            return Ok(changed);
        }
        let expected = self.version.map_or(0, |v| v.wrapping_add(1));
        let got = document.version;
        if self.version.is_none() || got != expected {
            return Err(OutOfSequence { expected, got });
        }
        self.version = Some(got);
        let before = self.info.clone();
        self.info.subject = document.info.subject.or(self.info.subject.take());
        let users = &mut self.info.users;
        for update in document.info.users {
            match users.iter_mut().find(|u| u.entity == update.entity) {
                Some(known) => {
                    known.display = update.display.or(known.display.take());
                    known.status = update.status.or(known.status.take());
                    if !update.media.is_empty() {
                        known.media = update.media;
                    }
                }
                None => users.push(update),
            }
        }
        users.retain(|u| !document.deleted.contains(&u.entity));
        Ok(self.info != before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConferenceInfoError as E;

    /// The full-state example document of RFC 4575 (its basic example): the RFC's elements and
    /// values, with its comments left out and short elements joined on one line.
    const RFC_EXAMPLE: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
   <conference-info xmlns="urn:ietf:params:xml:ns:conference-info"
    entity="sips:conf233@example.com" state="full" version="1">
    <conference-description><subject>Agenda: This month's goals</subject><service-uris>
      <entry><uri>http://sharepoint/salesgroup/</uri><purpose>web-page</purpose></entry>
     </service-uris></conference-description>
    <conference-state><user-count>33</user-count></conference-state>
    <users>
     <user entity="sip:bob@example.com" state="full">
      <display-text>Bob Hoskins</display-text>
      <endpoint entity="sip:bob@pc33.example.com">
       <display-text>Bob's Laptop</display-text><status>disconnected</status>
       <disconnection-method>departed</disconnection-method>
       <disconnection-info><when>2005-03-04T20:00:00Z</when><reason>bad voice quality</reason>
        <by>sip:mike@example.com</by></disconnection-info>
       <media id="1">
        <display-text>main audio</display-text><type>audio</type><label>34567</label>
        <src-id>432424</src-id><status>sendrecv</status>
       </media>
      </endpoint>
     </user>
     <user entity="sip:alice@example.com" state="full">
      <display-text>Alice</display-text>
      <endpoint entity="sip:4kfk4j392jsu@example.com;grid=433kj4j3u">
       <status>connected</status><joining-method>dialed-out</joining-method>
       <joining-info><when>2005-03-04T20:00:00Z</when><by>sip:mike@example.com</by></joining-info>
       <media id="1">
        <display-text>main audio</display-text><type>audio</type><label>34567</label>
        <src-id>534232</src-id><status>sendrecv</status>
       </media>
      </endpoint>
     </user>
    </users>
   </conference-info>"#;

    fn user(entity: &str, display: Option<&str>, status: Option<&str>) -> ConferenceUser {
        let mut user = ConferenceUser::default();
        (user.entity, user.display) = (entity.into(), display.map(Into::into));
        user.status = status.map(Into::into);
        user
    }

    fn media(id: &str, kind: &str, label: Option<&str>, status: Option<&str>) -> ConferenceMedia {
        let mut media = ConferenceMedia::default();
        (media.id, media.kind, media.label) = (id.into(), kind.into(), label.map(Into::into));
        media.status = status.map(Into::into);
        media
    }

    fn document(state: &str, version: u32, users: &str) -> ConferenceDocument {
        let xml = format!(
            "<conference-info xmlns=\"{NAMESPACE}\" entity=\"sip:conf@x\" state=\"{state}\" \
             version=\"{version}\"><users>{users}</users></conference-info>"
        );
        parse(xml.as_bytes()).expect("a valid document")
    }

    fn partial(version: u32, users: &str) -> ConferenceDocument {
        document("partial", version, users)
    }

    fn out(expected: u32, got: u32) -> Result<bool, OutOfSequence> {
        Err(OutOfSequence { expected, got })
    }

    /// A roster holding a full document of version 1 with Alice and Bob, both connected.
    fn roster_at_version_1() -> Roster {
        let mut roster = Roster::default();
        let users = r#"<user entity="sip:alice@x"><display-text>Alice</display-text><endpoint>
            <status>connected</status></endpoint></user><user entity="sip:bob@x"><endpoint>
            <status>connected</status></endpoint></user>"#;
        assert_eq!(roster.apply(document("full", 1, users)), Ok(true));
        roster
    }

    fn entities(roster: &Roster) -> Vec<&str> {
        roster.info.users.iter().map(|u| &*u.entity).collect()
    }

    #[test]
    fn to_xml_round_trips_escaped_and_non_ascii_text() {
        let mut zoe = user("sip:zoe@x", Some("Zoë & <Co>"), Some("connected"));
        zoe.media = vec![
            media("1", "audio", Some("main-audio"), Some("sendrecv")),
            media("2", "video", Some("cam \"1\""), None),
        ];
        let mut quoted = user("sip:o'brien@x;y=a&b", Some("\"Q\" O'Brien"), None);
        quoted.media = vec![media("1", "", None, Some("inactive"))];
        let mut info = ConferenceInfo::default();
        (info.entity, info.subject) =
            ("sip:conf-ü@x".into(), Some("Weekly <sync> & 日本語".into()));
        info.users = vec![zoe, quoted, user("sip:carol@x", None, Some("on-hold"))];
        let xml = info.to_xml(42);
        assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"));
        assert!(xml.contains("Zoë &amp; &lt;Co&gt;"), "{xml}");
        assert!(xml.contains("o&apos;brien@x;y=a&amp;b"), "{xml}");
        assert!(xml.contains("<user-count>3</user-count>"), "{xml}");
        let parsed = parse(xml.as_bytes()).expect("our own document parses");
        assert_eq!((parsed.version, parsed.full), (42, true));
        assert_eq!(parsed.info, info);

        info.subject = Some("a\tb\u{1}".into());
        let parsed = parse(info.to_xml(1).as_bytes()).expect("controls are replaced");
        assert_eq!(parsed.info.subject.unwrap(), "a\tb\u{fffd}");
    }

    #[test]
    fn parses_the_rfc_4575_example() {
        let doc = parse(RFC_EXAMPLE.as_bytes()).expect("the RFC example parses");
        assert_eq!((doc.version, doc.full), (1, true));
        assert_eq!(doc.info.entity, "sips:conf233@example.com");
        let subject = doc.info.subject.as_deref();
        assert_eq!(subject, Some("Agenda: This month's goals"));
        assert_eq!(doc.info.users.len(), 2);
        let (display, status) = (Some("Bob Hoskins"), Some("disconnected"));
        let mut bob = user("sip:bob@example.com", display, status);
        bob.media = vec![media("1", "audio", Some("34567"), Some("sendrecv"))];
        assert_eq!(doc.info.users[0], bob);
        assert_eq!(doc.info.users[1].status.as_deref(), Some("connected"));
    }

    #[test]
    fn ignores_host_info_sidebars_and_other_namespaces() {
        let xml = r#"<?xml version="1.0"?>
<ci:conference-info xmlns:ci="urn:ietf:params:xml:ns:conference-info" xmlns:x="urn:example:x"
    entity=" sips:conf233@example.com " version=" 7 " x:flavour="plain">
  <ci:host-info><ci:display-text>Sales Host</ci:display-text></ci:host-info>
  <ci:conference-state><ci:user-count>9</ci:user-count></ci:conference-state>
  <x:users><ci:user entity="sip:mallory@x"/></x:users>
  <ci:users><ci:user entity="sip:bob@x" x:rank="1"><x:display-text>not this</x:display-text>
      <ci:roles><ci:entry>participant</ci:entry></ci:roles>
      <ci:display-text> Bob <!-- a comment --><![CDATA[& Co]]> </ci:display-text>
      <ci:endpoint entity="sip:bob@old.example.com" state="deleted"/>
      <ci:endpoint entity="sip:bob@pc33.example.com"><x:status>muted</x:status>
        <ci:status>on-hold</ci:status><ci:media id="2"><ci:type>video</ci:type><x:codec/>
  </ci:media></ci:endpoint></ci:user></ci:users>
  <ci:sidebars-by-ref><ci:entry><ci:uri>sips:conf233@example.com;grid=45</ci:uri>
    <ci:display-text>sidebar with Carol</ci:display-text></ci:entry></ci:sidebars-by-ref>
  <ci:sidebars-by-val><ci:entry entity="sips:conf233@example.com;grid=21">
    <ci:users><ci:user entity="sip:dan@x"/></ci:users></ci:entry></ci:sidebars-by-val>
  <x:anything-else/></ci:conference-info>"#;
        let doc = parse(xml.as_bytes()).expect("extensions are ignored");
        assert_eq!((doc.version, doc.full), (7, true), "full when absent");
        assert_eq!(doc.info.entity, "sips:conf233@example.com");
        assert_eq!(doc.info.subject, None);
        let mut bob = user("sip:bob@x", Some("Bob & Co"), Some("on-hold"));
        bob.media = vec![media("2", "video", None, None)];
        assert_eq!(doc.info.users, [bob]);
    }

    #[test]
    fn refuses_other_namespaces_non_xml_and_bad_version_state_or_entity() {
        let other = r#"<conference-info xmlns="urn:example:other" entity="sip:c@x" version="1"/>"#;
        assert_eq!(parse(other.as_bytes()), Err(E::NotConferenceInfo));
        let dialog = r#"<dialog-info xmlns="urn:ietf:params:xml:ns:conference-info" version="1"/>"#;
        assert_eq!(parse(dialog.as_bytes()), Err(E::NotConferenceInfo));
        for body in [
            &b"v=0\r\no=- 1 1 IN IP4 192.0.2.1\r\n"[..],
            b"<conference-info xmlns=\"urn:ietf:params:xml:ns:conference-info\">",
            b"<conference-info \xff/>",
            b"",
            b"<!DOCTYPE c [<!ENTITY a \"aaaa\">]><c/>",
        ] {
            let refused = parse(body);
            assert!(matches!(refused, Err(E::NotXml(_))), "{refused:?}");
        }
        let root = |attributes| format!("<conference-info xmlns=\"{NAMESPACE}\" {attributes}");
        let with = |attributes| parse(format!("{}/>", root(attributes)).as_bytes());
        assert_eq!(with("entity=\"sip:c@x\"".into()), Err(E::BadVersion));
        for version in ["", "-1", "1.5", "4294967296"] {
            let refused = with(format!("entity=\"sip:c@x\" version=\"{version}\""));
            assert_eq!(refused, Err(E::BadVersion), "{version}");
        }
        let deleted = with("entity=\"sip:c@x\" version=\"1\" state=\"deleted\"".into());
        assert_eq!(deleted, Err(E::BadState("deleted".into())));
        let anonymous = with("version=\"1\"".into());
        assert_eq!(anonymous, Err(E::MissingEntity("conference-info")));
        let nobody = root("entity=\"sip:c@x\" version=\"1\"><users><user/></users>".into());
        let refused = parse(format!("{nobody}</conference-info>").as_bytes());
        assert_eq!(refused, Err(E::MissingEntity("user")));
    }

    #[test]
    fn roster_applies_partial_documents_in_sequence() {
        let mut roster = roster_at_version_1();
        let carol = r#"<user entity="sip:carol@x"><display-text>Carol</display-text><endpoint>
            <media id="1"><type>audio</type><status>sendrecv</status></media></endpoint></user>"#;
        assert_eq!(roster.apply(partial(2, carol)), Ok(true));
        let all = ["sip:alice@x", "sip:bob@x", "sip:carol@x"];
        assert_eq!(entities(&roster), all);
        let hold = r#"<user entity="sip:alice@x"><endpoint><status>on-hold</status>
            </endpoint></user>"#;
        assert_eq!(roster.apply(partial(3, hold)), Ok(true));
        let alice = &roster.info.users[0];
        assert_eq!(alice.status.as_deref(), Some("on-hold"));
        assert_eq!(alice.display.as_deref(), Some("Alice"), "kept");
        let leave = partial(4, r#"<user entity="sip:bob@x" state="deleted"/>"#);
        assert_eq!((leave.deleted.len(), leave.info.users.len()), (1, 0));
        assert_eq!(roster.apply(leave), Ok(true));
        assert_eq!(entities(&roster), ["sip:alice@x", "sip:carol@x"]);
        let same = partial(5, r#"<user entity="sip:carol@x"><endpoint/></user>"#);
        assert_eq!(roster.apply(same), Ok(false));
        assert_eq!(roster.version, Some(5));
        assert_eq!(roster.info.users[1].media.len(), 1, "kept");
    }

    #[test]
    fn roster_refuses_partial_documents_out_of_sequence() {
        let mut roster = roster_at_version_1();
        let before = roster.clone();
        let leave = r#"<user entity="sip:bob@x" state="deleted"/>"#;
        assert_eq!(roster.apply(partial(3, leave)), out(2, 3), "a gap");
        assert_eq!(roster, before);
        let dave = partial(2, r#"<user entity="sip:dave@x"/>"#);
        assert_eq!(roster.apply(dave.clone()), Ok(true));
        let before = roster.clone();
        assert_eq!(roster.apply(dave), out(3, 2), "repeated");
        assert_eq!(roster.apply(partial(1, leave)), out(3, 1), "older");
        assert_eq!(roster, before);
        let mut empty = Roster::default();
        assert_eq!(empty.apply(partial(1, leave)), out(0, 1), "no base");
        assert_eq!(empty, Roster::default());
    }

    #[test]
    fn roster_accepts_a_full_document_with_a_lower_version() {
        let mut roster = roster_at_version_1();
        let xavier = partial(2, r#"<user entity="sip:x@x"/>"#);
        assert_eq!(roster.apply(xavier), Ok(true));
        let resync = document("full", 1, r#"<user entity="sip:eve@x"/>"#);
        assert_eq!(roster.apply(resync.clone()), Ok(true));
        assert_eq!(roster.version, Some(1));
        assert_eq!(entities(&roster), ["sip:eve@x"]);
        assert_eq!(roster.apply(resync), Ok(false), "nothing new");
        assert_eq!(roster.apply(partial(2, "")), Ok(false));
    }

    #[test]
    fn name_prefers_display_text_then_user_part_then_entity() {
        let name = |entity, display| user(entity, display, None).name();
        assert_eq!(name("sip:bob@example.com", Some("Robert")), "Robert");
        assert_eq!(name("sip:bob@example.com", None), "bob");
        assert_eq!(name("sips:bob@example.com", Some("  ")), "bob");
        assert_eq!(name("bob@example.com", None), "bob");
        for entity in ["tel:+15551234", "sip:@example.com", "sip:example.com"] {
            assert_eq!(name(entity, None), entity);
        }
    }
}
