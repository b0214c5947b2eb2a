//! The access audit as DICOM PS3.15 Annex A.5 audit messages (the XML that IHE ATNA's Record
//! Audit Event transaction carries), one per recorded event, in chain order:
//!
//! | ledger row | message (EventID) |
//! |---|---|
//! | app started / stopped | Application Activity (110100), type 110120 / 110121 |
//! | study opened | DICOM Instances Accessed (110103), action R |
//! | model run | DICOM Instances Accessed (110103), action E, the model a processing element |
//! | exported | Export (110106), action R, to a destination medium (a file URI) |
//! | sent | DICOM Instances Transferred (110104), action R; Dokuei the source |
//! | received | DICOM Instances Transferred (110104), action C; Dokuei the destination |
//! | queried | Query (110112), action E |
//! | setting changed | Security Alert (110113), type 110128 network, 110129 security (policies) or 110131 software configuration |
//! | audit exported | Audit Log Used (110101), action R |
//! | passphrase accepted / refused | User Authentication (110114), type 110122 Login |
//! | profile locked / unlocked, key changed / reset | Security Alert (110113), type 110137 |
//! | administrator granted | Security Alert (110113), type 110136 |
//!
//! The patient is named by the ledger's keyed pseudonym of the patient ID (the ledger never
//! holds the ID itself), with ID type (2, RFC-3881, "Patient Number") and a detail saying so: an
//! auditor looking for one patient computes the pseudonym with the installation's export key.

use base64::Engine as _;

use crate::access::{AccessAction, AccessRow, Outcome};
use crate::store::{Ledger, LedgerError};

/// Instance UIDs go into a message only when it involves at most this many instances in all
/// (NumberOfInstances always counts them; the ledger keeps up to
/// [`crate::access::MAX_INSTANCE_UIDS`]), so that a message stays within the 8 KiB that syslog
/// receivers take by default (rsyslog's limit; RFC 5425 asks receivers for at least 2 KiB).
pub const MESSAGE_INSTANCE_UIDS: usize = 32;

/// Free text (error descriptions, setting changes) is cut to this many characters.
const TEXT_MAX: usize = 1000;

fn cut(s: &str) -> String {
    match s.char_indices().nth(TEXT_MAX) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_owned(),
    }
}

/// Who reports: PS3.15's AuditSourceIdentification.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditSource {
    /// AuditSourceID; empty: the host each event was recorded on.
    pub source_id: String,
    /// AuditEnterpriseSiteID (left out when empty).
    pub site_id: String,
    /// Dokuei's own AE titles (AlternativeUserID `AETITLES=…` of the application).
    pub ae_titles: Vec<String>,
}

/// One audit message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditMessage {
    /// The ledger row's position in the chain (messages are in this order).
    pub seq: i64,
    /// The event's UTC time (RFC 3339).
    pub at: String,
    /// A short name for file names and logs, e.g. `dicom-instances-accessed`.
    pub name: &'static str,
    /// The event did not succeed.
    pub failure: bool,
    /// The whole XML document.
    pub xml: String,
}

// ----------------------------------------------------------------------------------------------
// A small XML tree, written with escaping (and without characters XML 1.0 cannot carry).

struct Element {
    name: &'static str,
    attributes: Vec<(&'static str, String)>,
    children: Vec<Element>,
    text: Option<String>,
}

fn element(name: &'static str) -> Element {
    Element {
        name,
        attributes: Vec::new(),
        children: Vec::new(),
        text: None,
    }
}

impl Element {
    fn attr(mut self, name: &'static str, value: impl Into<String>) -> Element {
        self.attributes.push((name, value.into()));
        self
    }

    fn attr_if(self, name: &'static str, value: &str) -> Element {
        if value.is_empty() {
            self
        } else {
            self.attr(name, value)
        }
    }

    fn child(mut self, child: Element) -> Element {
        self.children.push(child);
        self
    }

    fn children(mut self, children: impl IntoIterator<Item = Element>) -> Element {
        self.children.extend(children);
        self
    }

    fn text(mut self, text: impl Into<String>) -> Element {
        self.text = Some(text.into());
        self
    }

    fn write(&self, out: &mut String, depth: usize) {
        out.push_str(&"  ".repeat(depth));
        out.push('<');
        out.push_str(self.name);
        for (name, value) in &self.attributes {
            out.push(' ');
            out.push_str(name);
            out.push_str("=\"");
            escape_into(out, value);
            out.push('"');
        }
        match (&self.text, self.children.is_empty()) {
            (None, true) => out.push_str("/>\n"),
            (Some(text), _) => {
                out.push('>');
                escape_into(out, text);
                out.push_str("</");
                out.push_str(self.name);
                out.push_str(">\n");
            }
            (None, false) => {
                out.push_str(">\n");
                for c in &self.children {
                    c.write(out, depth + 1);
                }
                out.push_str(&"  ".repeat(depth));
                out.push_str("</");
                out.push_str(self.name);
                out.push_str(">\n");
            }
        }
    }
}

fn escape_into(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            // Not allowed in XML 1.0 at all.
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
}

/// A coded value (csd-code, codeSystemName, originalText).
fn coded(name: &'static str, code: &str, system: &str, meaning: &str) -> Element {
    element(name)
        .attr("csd-code", code)
        .attr("codeSystemName", system)
        .attr("originalText", meaning)
}

fn dcm(name: &'static str, code: &str, meaning: &str) -> Element {
    coded(name, code, "DCM", meaning)
}

fn b64(s: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(s.as_bytes())
}

fn detail(kind: &str, value: &str) -> Element {
    element("ParticipantObjectDetail")
        .attr("type", kind)
        .attr("value", b64(value))
}

/// `file:` URI of a local path (percent-encoding what a URI cannot hold).
pub fn file_uri(path: &str) -> String {
    if path.contains("://") {
        return path.to_owned();
    }
    // An absolute path gives file:///…; a relative one (recorded by an older build) file:….
    let mut out = String::from(if path.starts_with('/') {
        "file://"
    } else {
        "file:"
    });
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

// ----------------------------------------------------------------------------------------------
// The parts of a message.

struct Participant {
    user_id: String,
    alternative: String,
    name: String,
    requestor: bool,
    role: Option<(&'static str, &'static str)>,
    access_point: String,
    media: Option<(&'static str, &'static str)>,
}

fn participant(user_id: &str, requestor: bool) -> Participant {
    Participant {
        user_id: if user_id.is_empty() {
            "unknown".into()
        } else {
            user_id.to_owned()
        },
        alternative: String::new(),
        name: String::new(),
        requestor,
        role: None,
        access_point: String::new(),
        media: None,
    }
}

impl Participant {
    fn role(mut self, code: &'static str, meaning: &'static str) -> Participant {
        self.role = Some((code, meaning));
        self
    }

    fn named(mut self, name: &str) -> Participant {
        self.name = name.to_owned();
        self
    }

    fn alternative(mut self, alternative: String) -> Participant {
        self.alternative = alternative;
        self
    }

    fn at(mut self, access_point: &str) -> Participant {
        self.access_point = access_point.to_owned();
        self
    }

    fn element(&self) -> Element {
        let mut e = element("ActiveParticipant");
        if let Some((code, meaning)) = self.role {
            e = e.child(dcm("RoleIDCode", code, meaning));
        }
        if let Some((code, meaning)) = self.media {
            e = e.child(element("MediaIdentifier").child(dcm("MediaType", code, meaning)));
        }
        e = e
            .attr("UserID", &self.user_id)
            .attr_if("AlternativeUserID", &self.alternative)
            .attr_if("UserName", &self.name)
            .attr(
                "UserIsRequestor",
                if self.requestor { "true" } else { "false" },
            );
        if !self.access_point.is_empty() {
            let kind = if self.access_point.parse::<std::net::IpAddr>().is_ok() {
                "2"
            } else if self.access_point.contains("://") {
                "5"
            } else {
                "1"
            };
            e = e
                .attr("NetworkAccessPointID", &self.access_point)
                .attr("NetworkAccessPointTypeCode", kind);
        }
        e
    }
}

/// The host part of a peer written `name AE@host:port` or as a URL (empty when it names no
/// host, e.g. `AE STORESCU` for a sender known only by its AE title).
fn peer_host(peer: &str) -> String {
    let address = peer.rsplit(' ').next().unwrap_or(peer);
    if !address.contains('@') && !address.contains("://") {
        return String::new();
    }
    let after_scheme = address.split("://").nth(1).unwrap_or(address);
    let host_port = after_scheme
        .split('/')
        .next()
        .unwrap_or(after_scheme)
        .rsplit('@')
        .next()
        .unwrap_or(after_scheme);
    let host = match host_port.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host_port.rsplit_once(':').map_or(host_port, |(h, _)| h),
    };
    host.to_owned()
}

struct Context<'a> {
    source: &'a AuditSource,
    readers: &'a std::collections::HashMap<i64, String>,
}

impl Context<'_> {
    fn application(&self, host: &str) -> Participant {
        let aets = self.source.ae_titles.join(";");
        participant(&format!("dokuei@{host}"), false)
            .named("Dokuei")
            .alternative(if aets.is_empty() {
                String::new()
            } else {
                format!("AETITLES={aets}")
            })
            .at(host)
    }

    /// The person at the workstation: the OS account on this host, with the reader profile's
    /// printed name when one was selected.
    fn person(&self, os_account: &str, reader: Option<i64>, host: &str) -> Participant {
        let name = reader
            .and_then(|id| self.readers.get(&id))
            .cloned()
            .unwrap_or_default();
        participant(&format!("{os_account}@{host}"), true)
            .named(&name)
            .at(host)
    }

    fn source(&self, host: &str) -> Element {
        let id = if self.source.source_id.is_empty() {
            host
        } else {
            &self.source.source_id
        };
        element("AuditSourceIdentification")
            .attr_if("AuditEnterpriseSiteID", &self.source.site_id)
            .attr("AuditSourceID", if id.is_empty() { "dokuei" } else { id })
            // 1: an end-user interface (a reading workstation).
            .child(element("AuditSourceTypeCode").attr("csd-code", "1"))
    }
}

fn study_object(row: &AccessRow) -> Element {
    let e = &row.event;
    let mut description = element("ParticipantObjectDescription");
    let total: u64 = e.detail.sop_classes.iter().map(|c| c.count).sum();
    let list = total <= MESSAGE_INSTANCE_UIDS as u64;
    for class in &e.detail.sop_classes {
        description = description.child(
            element("SOPClass")
                .children(
                    class
                        .instance_uids
                        .iter()
                        .filter(|_| list)
                        .map(|uid| element("Instance").attr("UID", uid)),
                )
                .attr("UID", &class.sop_class_uid)
                .attr("NumberOfInstances", class.count.to_string()),
        );
    }
    let mut object = element("ParticipantObjectIdentification")
        .child(dcm(
            "ParticipantObjectIDTypeCode",
            "110180",
            "Study Instance UID",
        ))
        .child(element("ParticipantObjectName").text("Study"));
    if !description.children.is_empty() {
        object = object.child(description);
    }
    object
        .attr("ParticipantObjectID", &e.study_uid)
        .attr("ParticipantObjectTypeCode", "2")
        .attr("ParticipantObjectTypeCodeRole", "3")
}

fn patient_object(patient_key: &str) -> Element {
    element("ParticipantObjectIdentification")
        .child(coded(
            "ParticipantObjectIDTypeCode",
            "2",
            "RFC-3881",
            "Patient Number",
        ))
        .child(element("ParticipantObjectName").text("Pseudonymised patient"))
        .child(detail(
            "Pseudonym",
            "HMAC-SHA256 of the Patient ID under this installation's export key",
        ))
        .attr(
            "ParticipantObjectID",
            if patient_key.is_empty() {
                "unknown"
            } else {
                patient_key
            },
        )
        .attr("ParticipantObjectTypeCode", "1")
        .attr("ParticipantObjectTypeCodeRole", "1")
}

/// The model that ran (`id version sha256:… on provider`, or the folder of one that failed to
/// load), as a processing element.
fn model_object(model: &str) -> Element {
    let name = model.split(' ').next().unwrap_or(model);
    element("ParticipantObjectIdentification")
        .child(coded(
            "ParticipantObjectIDTypeCode",
            "MODEL",
            "99DOKUEI",
            "Diagnostic-support model",
        ))
        .child(element("ParticipantObjectName").text(name))
        .attr(
            "ParticipantObjectID",
            if model.is_empty() { "unknown" } else { model },
        )
        .attr("ParticipantObjectTypeCode", "2")
        // 26: processing element.
        .attr("ParticipantObjectTypeCodeRole", "26")
}

/// A system object named by URI (`role`: 3 report, 13 security resource), with one detail.
fn uri_object(uri: &str, name: &str, detail_pair: Option<(&str, &str)>, role: &str) -> Element {
    let mut e = element("ParticipantObjectIdentification")
        .child(coded(
            "ParticipantObjectIDTypeCode",
            "12",
            "RFC-3881",
            "URI",
        ))
        .child(element("ParticipantObjectName").text(name));
    if let Some((kind, text)) = detail_pair {
        e = e.child(detail(kind, &cut(text)));
    }
    e.attr("ParticipantObjectID", uri)
        .attr("ParticipantObjectTypeCode", "2")
        .attr("ParticipantObjectTypeCodeRole", role)
}

fn event(
    id: (&str, &str),
    action: &str,
    types: &[(&str, &str, &str)],
    at: &str,
    outcome: Outcome,
    error: &str,
) -> Element {
    let mut e = element("EventIdentification")
        .child(dcm("EventID", id.0, id.1))
        .children(
            types
                .iter()
                .map(|(code, system, meaning)| coded("EventTypeCode", code, system, meaning)),
        );
    if !error.is_empty() {
        e = e.child(element("EventOutcomeDescription").text(cut(error)));
    }
    e.attr("EventActionCode", action)
        .attr("EventDateTime", at)
        .attr("EventOutcomeIndicator", outcome.code().to_string())
}

fn message(
    event: Element,
    participants: Vec<Participant>,
    source: Element,
    objects: Vec<Element>,
) -> String {
    let root = element("AuditMessage")
        .child(event)
        .children(participants.iter().map(Participant::element))
        .child(source)
        .children(objects);
    let mut xml = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    root.write(&mut xml, 0);
    xml
}

fn access_message(row: &AccessRow, cx: &Context<'_>) -> (&'static str, String) {
    let e = &row.event;
    let at = &row.recorded_at;
    let person = || cx.person(&e.os_account, e.reader_id, &e.host);
    let app = || cx.application(&e.host);
    let study = || vec![study_object(row), patient_object(&e.patient_key)];
    let err = e.detail.error.as_str();
    match e.action {
        AccessAction::AppStarted | AccessAction::AppStopped => {
            let (code, meaning, name) = if e.action == AccessAction::AppStarted {
                ("110120", "Application Start", "application-start")
            } else {
                ("110121", "Application Stop", "application-stop")
            };
            let msg = message(
                event(
                    ("110100", "Application Activity"),
                    "E",
                    &[(code, "DCM", meaning)],
                    at,
                    e.outcome,
                    err,
                ),
                vec![
                    app().role("110150", "Application"),
                    person().role("110151", "Application Launcher"),
                ],
                cx.source(&e.host),
                Vec::new(),
            );
            (name, msg)
        }
        AccessAction::StudyOpened | AccessAction::ModelRun => {
            let (action, types, name): (_, &[(&str, &str, &str)], _) =
                if e.action == AccessAction::StudyOpened {
                    ("R", &[], "dicom-instances-accessed")
                } else {
                    (
                        "E",
                        &[("MODEL_RUN", "99DOKUEI", "Diagnostic-support model run")],
                        "model-run",
                    )
                };
            let mut objects = study();
            if e.action == AccessAction::ModelRun {
                objects.push(model_object(&e.object));
            }
            let msg = message(
                event(
                    ("110103", "DICOM Instances Accessed"),
                    action,
                    types,
                    at,
                    e.outcome,
                    err,
                ),
                vec![person(), app()],
                cx.source(&e.host),
                objects,
            );
            (name, msg)
        }
        AccessAction::Exported | AccessAction::AuditExported => {
            let uri = file_uri(&e.peer);
            let mut media = participant(&uri, false).role("110154", "Destination Media");
            media.media = Some(("110037", "URI"));
            let mut objects = Vec::new();
            if !e.study_uid.is_empty() {
                objects = study();
            } else {
                objects.push(uri_object(
                    &uri,
                    &e.object,
                    Some(("Contents", &e.detail.note)),
                    "3",
                ));
            }
            if e.action == AccessAction::AuditExported {
                let msg = message(
                    event(("110101", "Audit Log Used"), "R", &[], at, e.outcome, err),
                    vec![person(), app(), media],
                    cx.source(&e.host),
                    vec![uri_object(
                        &file_uri(&e.object),
                        "Security Audit Log",
                        None,
                        "13",
                    )],
                );
                return ("audit-log-used", msg);
            }
            let msg = message(
                event(("110106", "Export"), "R", &[], at, e.outcome, err),
                vec![
                    person().role("110153", "Source Role ID"),
                    app().role("110153", "Source Role ID"),
                    media,
                ],
                cx.source(&e.host),
                objects,
            );
            ("export", msg)
        }
        AccessAction::Sent | AccessAction::Received => {
            // No OS account: nobody here asked for it (instances pushed to the receiver), so
            // the sender is the requestor.
            let by_person = !e.os_account.is_empty();
            let remote = participant(&e.peer, !by_person).at(&peer_host(&e.peer));
            let (action, mut participants, name) = if e.action == AccessAction::Sent {
                (
                    "R",
                    vec![
                        app().role("110153", "Source Role ID"),
                        remote.role("110152", "Destination Role ID"),
                    ],
                    "dicom-instances-transferred-sent",
                )
            } else {
                (
                    "C",
                    vec![
                        remote.role("110153", "Source Role ID"),
                        app().role("110152", "Destination Role ID"),
                    ],
                    "dicom-instances-transferred-received",
                )
            };
            if by_person {
                participants.push(person());
            }
            let msg = message(
                event(
                    ("110104", "DICOM Instances Transferred"),
                    action,
                    &[],
                    at,
                    e.outcome,
                    err,
                ),
                participants,
                cx.source(&e.host),
                study(),
            );
            (name, msg)
        }
        AccessAction::Queried => {
            let remote = participant(&e.peer, false)
                .at(&peer_host(&e.peer))
                .role("110152", "Destination Role ID");
            let query = element("ParticipantObjectIdentification")
                .child(dcm(
                    "ParticipantObjectIDTypeCode",
                    "110181",
                    "SOP Class UID",
                ))
                .child(element("ParticipantObjectQuery").text(b64(&e.detail.note)))
                .attr("ParticipantObjectID", &e.object)
                .attr("ParticipantObjectTypeCode", "2")
                .attr("ParticipantObjectTypeCodeRole", "3");
            let msg = message(
                event(("110112", "Query"), "E", &[], at, e.outcome, err),
                vec![app().role("110153", "Source Role ID"), remote, person()],
                cx.source(&e.host),
                vec![query],
            );
            ("query", msg)
        }
        AccessAction::SettingChanged => {
            let (code, meaning) = if e.object.starts_with("pacs") || e.object.starts_with("audit") {
                ("110128", "Network Configuration")
            } else if e.object.starts_with("policy") {
                ("110129", "Security Configuration")
            } else {
                ("110131", "Software Configuration")
            };
            let msg = message(
                event(
                    ("110113", "Security Alert"),
                    "E",
                    &[(code, "DCM", meaning)],
                    at,
                    e.outcome,
                    err,
                ),
                vec![person(), app()],
                cx.source(&e.host),
                vec![uri_object(
                    &file_uri(&e.peer),
                    &e.object,
                    Some(("Alert Description", &e.detail.note)),
                    "13",
                )],
            );
            ("security-alert-configuration", msg)
        }
    }
}

/// A row of the signing tables, as an audit event.
struct SecurityRow {
    seq: i64,
    at: String,
    kind: String,
    reader: i64,
    by: Option<i64>,
    os_account: String,
    by_account: String,
}

fn security_message(row: &SecurityRow, cx: &Context<'_>, host: &str) -> (&'static str, String) {
    let name = cx.readers.get(&row.reader).cloned().unwrap_or_default();
    let account = if row.os_account.is_empty() {
        "unknown".to_owned()
    } else {
        row.os_account.clone()
    };
    let subject = || {
        participant(&format!("{account}@{host}"), row.by.is_none())
            .named(&name)
            .at(host)
    };
    let by = || {
        row.by.map(|id| {
            participant(&format!("{}@{host}", row.by_account), true)
                .named(&cx.readers.get(&id).cloned().unwrap_or_default())
                .at(host)
        })
    };
    let reader_uri = format!("urn:dokuei:reader:{}", row.reader);
    match row.kind.as_str() {
        "success" | "failure" => {
            let outcome = if row.kind == "success" {
                Outcome::Success
            } else {
                Outcome::MinorFailure
            };
            let msg = message(
                event(
                    ("110114", "User Authentication"),
                    "E",
                    &[("110122", "DCM", "Login")],
                    &row.at,
                    outcome,
                    if row.kind == "failure" {
                        "wrong passphrase"
                    } else {
                        ""
                    },
                ),
                vec![subject(), cx.application(host)],
                cx.source(host),
                Vec::new(),
            );
            ("user-authentication", msg)
        }
        kind => {
            let (code, meaning, what) = match kind {
                "locked" => (
                    "110137",
                    "User Security Attributes Changed",
                    "profile locked after repeated wrong passphrases",
                ),
                "unlocked" => (
                    "110137",
                    "User Security Attributes Changed",
                    "profile unlocked by an administrator",
                ),
                "key_created" => (
                    "110137",
                    "User Security Attributes Changed",
                    "signing key and passphrase created",
                ),
                "key_changed" => (
                    "110137",
                    "User Security Attributes Changed",
                    "passphrase changed by the reader (new signing key)",
                ),
                "key_reset" => (
                    "110137",
                    "User Security Attributes Changed",
                    "passphrase reset by an administrator (new signing key)",
                ),
                _ => (
                    "110136",
                    "Security Roles Changed",
                    "administrator role granted",
                ),
            };
            let mut participants = vec![subject()];
            participants.extend(by());
            participants.push(cx.application(host));
            let msg = message(
                event(
                    ("110113", "Security Alert"),
                    "E",
                    &[(code, "DCM", meaning)],
                    &row.at,
                    Outcome::Success,
                    "",
                ),
                participants,
                cx.source(host),
                vec![uri_object(
                    &reader_uri,
                    &name,
                    Some(("Alert Description", what)),
                    "13",
                )],
            );
            ("security-alert-user", msg)
        }
    }
}

impl Ledger {
    /// The audit messages of the events after chain position `after_seq`, oldest first, at
    /// most `limit`: the access events and the passphrase, key and administrator records.
    /// `host` names this machine for records that do not carry it (the signing tables).
    pub fn audit_messages_after(
        &self,
        after_seq: i64,
        limit: usize,
        source: &AuditSource,
        host: &str,
    ) -> Result<Vec<AuditMessage>, LedgerError> {
        let readers: std::collections::HashMap<i64, String> = self
            .readers()?
            .into_iter()
            .map(|r| (r.id, r.display_name))
            .collect();
        let cx = Context {
            source,
            readers: &readers,
        };
        let lim = i64::try_from(limit).unwrap_or(i64::MAX);
        // One read transaction: both tables as of one moment, so that a row committed between
        // the two reads cannot be passed over by a caller that resumes after the last seq.
        let snapshot = rusqlite::Transaction::new_unchecked(
            &self.conn,
            rusqlite::TransactionBehavior::Deferred,
        )
        .map_err(|e| self.read_err(e))?;
        let access = self.access_events_after(after_seq, limit)?;
        let security = self.security_rows(after_seq, lim)?;
        snapshot.finish().map_err(|e| self.read_err(e))?;
        let mut out: Vec<AuditMessage> = access
            .iter()
            .map(|row| {
                let (name, xml) = access_message(row, &cx);
                AuditMessage {
                    seq: row.seq,
                    at: row.recorded_at.clone(),
                    name,
                    failure: row.event.outcome != Outcome::Success,
                    xml,
                }
            })
            .collect();
        out.extend(security.iter().map(|row| {
            let (name, xml) = security_message(row, &cx, host);
            AuditMessage {
                seq: row.seq,
                at: row.at.clone(),
                name,
                failure: row.kind == "failure" || row.kind == "locked",
                xml,
            }
        }));
        out.sort_by_key(|m| m.seq);
        out.truncate(limit);
        Ok(out)
    }

    fn security_rows(&self, after_seq: i64, limit: i64) -> Result<Vec<SecurityRow>, LedgerError> {
        // The OS account a reader's profile is bound to is that of their newest key.
        let sql = "
            SELECT seq, recorded_at, kind, reader_id, by_reader_id FROM (
                SELECT seq, recorded_at, kind, reader_id, by_reader_id
                  FROM auth_events WHERE seq > ?1
                UNION ALL
                SELECT seq, recorded_at, 'key_' || reason, reader_id, by_reader_id
                  FROM reader_keys WHERE seq > ?1
                UNION ALL
                SELECT seq, recorded_at, 'administrator', reader_id, granted_by
                  FROM administrators WHERE seq > ?1)
            ORDER BY seq LIMIT ?2";
        let mut stmt = self
            .conn
            .prepare_cached(sql)
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map(rusqlite::params![after_seq, limit], |r| {
                Ok(SecurityRow {
                    seq: r.get(0)?,
                    at: r.get(1)?,
                    kind: r.get(2)?,
                    reader: r.get(3)?,
                    by: r.get(4)?,
                    os_account: String::new(),
                    by_account: String::new(),
                })
            })
            .map_err(|e| self.read_err(e))?;
        let mut rows: Vec<SecurityRow> = rows
            .collect::<Result<_, _>>()
            .map_err(|e| self.read_err(e))?;
        let mut accounts = self
            .conn
            .prepare_cached(
                "SELECT os_account FROM reader_keys WHERE reader_id = ?1 AND seq <= ?2
                 ORDER BY seq DESC LIMIT 1",
            )
            .map_err(|e| self.read_err(e))?;
        for row in &mut rows {
            // A key created in this very row counts (its seq is the row's).
            row.os_account = accounts
                .query_row(rusqlite::params![row.reader, row.seq], |r| r.get(0))
                .unwrap_or_default();
            if let Some(by) = row.by {
                row.by_account = accounts
                    .query_row(rusqlite::params![by, row.seq], |r| r.get(0))
                    .unwrap_or_else(|_| "unknown".to_owned());
            }
        }
        Ok(rows)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_hosts_and_file_uris() {
        assert_eq!(peer_host("Orthanc ORTHANC@127.0.0.1:4242"), "127.0.0.1");
        assert_eq!(
            peer_host("web http://pacs.example:8042/dicom-web"),
            "pacs.example"
        );
        assert_eq!(peer_host("v6 AE@[::1]:104"), "::1");
        assert_eq!(peer_host("AE STORESCU"), "");
        assert_eq!(file_uri("/tmp/a b/é.xml"), "file:///tmp/a%20b/%C3%A9.xml");
    }

    #[test]
    fn text_is_escaped_and_control_characters_replaced() {
        let mut out = String::new();
        escape_into(&mut out, "a<b>&\"c\"\u{1}\n");
        assert_eq!(out, "a&lt;b&gt;&amp;&quot;c&quot;\u{FFFD}&#10;");
    }
}
