//! The access audit's use cases: recording who did what (the workstation calls [`event`] and
//! [`Ledger::record_access`] at each use case), exporting the trail as DICOM PS3.15 audit
//! messages (one XML file each), and forwarding it to the hospital's audit record repository
//! over syslog-TLS (RFC 5425) when one is configured.
//!
//! The settings live beside the ledger (`<ledger>.audit.json`), as the checkpoint key does:
//! the audit trail is the ledger's. Forwarding keeps its place in `<ledger>.audit-forwarded`
//! (the chain position of the last event the repository took), written after each batch, so
//! events recorded while the repository is unreachable go out later, in order. A crash between
//! a batch sent and its place written sends that batch again: at least once, never lost.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use dokuei_ledger::{
    AccessAction, AccessDetail, AccessEvent, AuditMessage, AuditSource, Ledger, Outcome,
};
use dokuei_net::syslog::{SyslogMessage, SyslogTarget};
use serde::{Deserialize, Serialize};

use crate::{AppError, ErrorCode};

/// The audit record repository and how Dokuei names itself to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(default)]
pub struct AuditSettings {
    /// Send every event to the repository as it is recorded.
    pub send: bool,
    pub repository: SyslogTarget,
    /// AuditSourceID (empty: this machine's name) and AuditEnterpriseSiteID (empty: left out).
    pub source_id: String,
    pub site_id: String,
}

/// Messages per syslog connection.
const BATCH: usize = 200;
const TIMEOUT: Duration = Duration::from_secs(10);

fn beside(ledger: &Path, suffix: &str) -> PathBuf {
    let mut name = ledger.file_name().unwrap_or_default().to_os_string();
    name.push(suffix);
    ledger.with_file_name(name)
}

pub fn settings_path(ledger: &Path) -> PathBuf {
    beside(ledger, ".audit.json")
}

fn cursor_path(ledger: &Path) -> PathBuf {
    beside(ledger, ".audit-forwarded")
}

/// The settings (defaults when there is no file; a damaged file is an error naming it).
pub fn load_settings(ledger: &Path) -> Result<AuditSettings, AppError> {
    let path = settings_path(ledger);
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text).map_err(|e| {
            AppError::new(
                ErrorCode::InvalidArgument,
                format!(
                    "the audit settings `{}` cannot be read: {e}",
                    path.display()
                ),
            )
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(AuditSettings::default()),
        Err(e) => Err(AppError::new(
            ErrorCode::LedgerUnavailable,
            format!("cannot read the audit settings `{}`: {e}", path.display()),
        )),
    }
}

/// Writes the settings whole (a temporary file renamed into place).
pub fn save_settings(ledger: &Path, settings: &AuditSettings) -> Result<(), AppError> {
    if settings.send
        && (settings.repository.host.trim().is_empty() || settings.repository.port == 0)
    {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            "sending to an audit repository needs its host and port",
        ));
    }
    if settings.send && settings.repository.tls.ca_file.trim().is_empty() {
        return Err(AppError::new(
            ErrorCode::InvalidArgument,
            "sending to an audit repository needs the CA certificate its certificate must chain to (syslog is sent over TLS only)",
        ));
    }
    let path = settings_path(ledger);
    write_whole(
        &path,
        serde_json::to_string_pretty(settings)
            .unwrap_or_default()
            .as_bytes(),
    )
    .map_err(|e| {
        AppError::new(
            ErrorCode::WriteFailed,
            format!("cannot save the audit settings `{}`: {e}", path.display()),
        )
    })
}

fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_os_string();
    tmp.push(".partial");
    let tmp = PathBuf::from(tmp);
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// This machine's name (the kernel's; `localhost` when unknown).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

/// An event of `action` by the OS account running Dokuei on this machine, about no study yet
/// (fill in what applies).
pub fn event(action: AccessAction, reader_id: Option<i64>) -> AccessEvent {
    AccessEvent {
        action,
        outcome: Outcome::Success,
        reader_id,
        os_account: crate::reading::os_account(),
        host: host_name(),
        study_uid: String::new(),
        patient_key: String::new(),
        object: String::new(),
        peer: String::new(),
        detail: AccessDetail::default(),
    }
}

/// The keyed pseudonym the ledger knows patient `patient_id` by.
pub fn patient_key(ledger: &Ledger, patient_id: &str) -> Result<String, AppError> {
    let key = crate::ledger::export_key(ledger.path())?;
    Ok(dokuei_ledger::export::pseudonym(&key, patient_id))
}

/// An event about each study in `index`, with the SOP classes and instances it holds (images
/// and result objects alike).
pub fn study_events(
    ledger: &Ledger,
    index: &dokuei_dicom::StudyIndex,
    template: &AccessEvent,
) -> Result<Vec<AccessEvent>, AppError> {
    let key = crate::ledger::export_key(ledger.path())?;
    // (study UID, patient ID) → (SOP class, SOP instance), in the order first met.
    type Pair<'a> = (&'a str, &'a str);
    let mut studies: Vec<(Pair<'_>, Vec<Pair<'_>>)> = Vec::new();
    let mut push = |study, patient, class, instance| match studies
        .iter_mut()
        .find(|((s, _), _)| *s == study)
    {
        Some((_, list)) => list.push((class, instance)),
        None => studies.push(((study, patient), vec![(class, instance)])),
    };
    for p in &index.patients {
        for s in &p.studies {
            for i in s.series.iter().flat_map(|se| &se.instances) {
                push(
                    s.uid.as_str(),
                    p.id.as_str(),
                    i.sop_class_uid.as_str(),
                    i.sop_instance_uid.as_str(),
                );
            }
        }
    }
    for r in &index.results {
        push(
            r.study_uid.as_str(),
            r.patient_id.as_str(),
            r.instance.sop_class_uid.as_str(),
            r.instance.sop_instance_uid.as_str(),
        );
    }
    Ok(studies
        .into_iter()
        .map(|((study, patient), pairs)| AccessEvent {
            study_uid: study.to_owned(),
            patient_key: dokuei_ledger::export::pseudonym(&key, patient),
            detail: AccessDetail {
                sop_classes: Vec::new(),
                ..template.detail.clone()
            }
            .with_instances(pairs),
            ..template.clone()
        })
        .collect())
}

/// `text` with the user name and password of any URL in it removed
/// (`https://user:secret@pacs/…` → `https://pacs/…`): they are never recorded.
pub fn without_credentials(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find("://") {
        let (head, tail) = rest.split_at(at + 3);
        out.push_str(head);
        let authority_end = tail.find(['/', ' ', '?', '#']).unwrap_or(tail.len());
        let authority = &tail[..authority_end];
        match authority.rfind('@') {
            Some(userinfo) => out.push_str(&authority[userinfo + 1..]),
            None => out.push_str(authority),
        }
        rest = &tail[authority_end..];
    }
    out.push_str(rest);
    out
}

/// `node` as the audit names it: `name AE@host:port` or `name URL`, without credentials.
pub fn node_peer(node: &crate::pacs::Node) -> String {
    without_credentials(&format!("{} {}", node.name(), node.address()))
}

/// A path as recorded: absolute (as given when that fails).
pub(crate) fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The event of a send to `peer` that failed before any instance went (no association, a
/// folder without DICOM).
pub fn send_failure_event(peer: String, error: &AppError, reader_id: Option<i64>) -> AccessEvent {
    let mut e = event(AccessAction::Sent, reader_id);
    e.outcome = Outcome::MinorFailure;
    e.peer = peer;
    e.detail.error = error.message.clone();
    e
}

/// The events of a send to `node`: one per study for the instances it took, and one per study
/// for those it did not (PS3.15: mixed results are separate messages). `index`: the sent files'
/// headers.
pub fn sent_events(
    ledger: &Ledger,
    node: &crate::pacs::Node,
    outcomes: &[dokuei_net::SendOutcome],
    index: &dokuei_dicom::StudyIndex,
    reader_id: Option<i64>,
) -> Result<Vec<AccessEvent>, AppError> {
    let peer = node_peer(node);
    let mut events = Vec::new();
    for stored in [true, false] {
        let group: Vec<&dokuei_net::SendOutcome> =
            outcomes.iter().filter(|o| o.stored == stored).collect();
        if group.is_empty() {
            continue;
        }
        let uids: std::collections::HashSet<&str> =
            group.iter().map(|o| o.sop_instance_uid.as_str()).collect();
        let template = AccessEvent {
            outcome: if stored {
                Outcome::Success
            } else {
                Outcome::MinorFailure
            },
            peer: peer.clone(),
            detail: AccessDetail {
                error: group
                    .iter()
                    .find(|o| !o.stored)
                    .map(|o| o.detail.clone())
                    .unwrap_or_default(),
                ..AccessDetail::default()
            },
            ..event(AccessAction::Sent, reader_id)
        };
        let mut studies = study_events(ledger, index, &template)?;
        // Only this group's instances.
        for e in &mut studies {
            for c in &mut e.detail.sop_classes {
                c.instance_uids.retain(|u| uids.contains(u.as_str()));
                c.count = c.instance_uids.len() as u64;
            }
            e.detail.sop_classes.retain(|c| c.count > 0);
        }
        studies.retain(|e| !e.detail.sop_classes.is_empty());
        if studies.is_empty() {
            // Files that could not be read back: still say what was attempted.
            studies.push(AccessEvent {
                detail: template.detail.clone().with_instances(
                    group
                        .iter()
                        .map(|o| (o.sop_class_uid.as_str(), o.sop_instance_uid.as_str())),
                ),
                ..template.clone()
            });
        }
        events.extend(studies);
    }
    Ok(events)
}

/// The event of a results export (SEG, SR) of `study` in `index` to `out`.
pub fn results_exported_event(
    ledger: &Ledger,
    index: &dokuei_dicom::StudyIndex,
    study_uid: &str,
    result: &Result<crate::results::ResultsExport, AppError>,
    out: &Path,
    reader_id: Option<i64>,
) -> Result<AccessEvent, AppError> {
    let patient = index
        .patients
        .iter()
        .find(|p| p.studies.iter().any(|s| s.uid == study_uid))
        .map(|p| p.id.as_str())
        .unwrap_or_default();
    let mut e = event(AccessAction::Exported, reader_id);
    e.study_uid = study_uid.to_owned();
    e.patient_key = patient_key(ledger, patient)?;
    e.object = "DICOM results (SEG, SR)".into();
    e.peer = absolute(out).display().to_string();
    match result {
        Ok(r) => {
            e.detail = AccessDetail::default().with_instances(
                r.objects
                    .iter()
                    .map(|o| (o.sop_class_uid.as_str(), o.sop_instance_uid.as_str())),
            );
        }
        Err(err) => {
            e.outcome = Outcome::MinorFailure;
            e.detail.error = err.message.clone();
        }
    }
    Ok(e)
}

/// How Dokuei reports itself: the settings' source and site, and its AE titles.
pub fn source(settings: &AuditSettings, ae_titles: &[String]) -> AuditSource {
    AuditSource {
        source_id: settings.source_id.clone(),
        site_id: settings.site_id.clone(),
        ae_titles: ae_titles.to_vec(),
    }
}

/// What an audit export wrote.
#[derive(Debug, Clone, PartialEq, Serialize, specta::Type)]
pub struct AuditExport {
    pub folder: String,
    pub messages: u32,
}

/// Writes every audit message after chain position `after_seq` to `folder`, one XML file each
/// (`<position>-<event>.xml`), and records that the audit trail was exported. The files are
/// written to a temporary folder renamed into place when `folder` does not exist yet.
pub fn export(
    ledger: &Ledger,
    folder: &Path,
    settings: &AuditSettings,
    ae_titles: &[String],
    after_seq: i64,
    reader_id: Option<i64>,
) -> Result<AuditExport, AppError> {
    let fail = |e: &dyn std::fmt::Display| {
        AppError::new(
            ErrorCode::WriteFailed,
            format!(
                "cannot write the audit messages to `{}`: {e}",
                folder.display()
            ),
        )
    };
    let host = host_name();
    let source = source(settings, ae_titles);
    let folder = absolute(folder);
    let recorded = AccessEvent {
        object: ledger.path().display().to_string(),
        peer: folder.display().to_string(),
        ..event(AccessAction::AuditExported, reader_id)
    };
    // The export is recorded first, so that the trail exported includes its own export; a
    // failure to write it is recorded after.
    ledger.record_access(&recorded)?;
    let mut written = 0u32;
    let result = (|| {
        std::fs::create_dir_all(&folder).map_err(|e| fail(&e))?;
        let mut after = after_seq;
        loop {
            let batch = ledger.audit_messages_after(after, 1000, &source, &host)?;
            let Some(last) = batch.last() else { break };
            after = last.seq;
            for m in &batch {
                let path = folder.join(format!("{:08}-{}.xml", m.seq, m.name));
                write_whole(&path, m.xml.as_bytes()).map_err(|e| fail(&e))?;
                written += 1;
            }
        }
        Ok::<(), AppError>(())
    })();
    if let Err(e) = &result {
        ledger.record_access(&AccessEvent {
            outcome: Outcome::MinorFailure,
            detail: AccessDetail {
                error: e.message.clone(),
                note: format!("{written} message(s) written before the failure"),
                ..AccessDetail::default()
            },
            ..recorded
        })?;
    }
    result.map(|()| AuditExport {
        folder: folder.display().to_string(),
        messages: written,
    })
}

/// What forwarding did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, specta::Type)]
pub struct Forwarded {
    pub sent: u32,
    /// The chain position of the last event the repository has now.
    #[specta(type = f64)]
    pub up_to: i64,
}

/// Where forwarding stands: `<ledger id> <chain position>`. A place kept for another ledger
/// (the file replaced) starts again from the beginning; a place beyond the chain's end (the
/// ledger restored from an older copy) resumes at the end, so that events recorded from now on
/// are not taken for ones already sent.
fn read_cursor(ledger: &Ledger) -> Result<i64, AppError> {
    let path = cursor_path(ledger.path());
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(0),
        Err(e) => {
            return Err(AppError::new(
                ErrorCode::LedgerUnavailable,
                format!("cannot read `{}`: {e}", path.display()),
            ));
        }
    };
    let malformed = || {
        AppError::new(
            ErrorCode::LedgerUnavailable,
            format!(
                "`{}` does not hold a ledger id and chain position: remove it to send the whole audit trail again",
                path.display()
            ),
        )
    };
    let (id, seq) = text.trim().split_once(' ').ok_or_else(malformed)?;
    let seq: i64 = seq.parse().map_err(|_| malformed())?;
    if ledger.ledger_id()?.as_deref() != Some(id) {
        tracing::warn!(
            "audit: the forwarding place was kept for another ledger; sending this one's whole trail"
        );
        return Ok(0);
    }
    let size = ledger.chain_size()?;
    if seq > size {
        tracing::warn!(
            "audit: the forwarding place ({seq}) is beyond the ledger's end ({size}): it was restored from an older copy; resuming at its end"
        );
        return Ok(size);
    }
    Ok(seq)
}

/// Sends the events the repository does not have yet, in order, in batches; stops at the first
/// failure (what was sent stays sent). Nothing to do when sending is off.
pub fn forward(
    ledger: &Ledger,
    settings: &AuditSettings,
    ae_titles: &[String],
) -> Result<Forwarded, AppError> {
    let mut up_to = read_cursor(ledger)?;
    let ledger_id = ledger.ledger_id()?.unwrap_or_default();
    let mut sent = 0u32;
    if !settings.send {
        return Ok(Forwarded { sent, up_to });
    }
    let host = host_name();
    let source = source(settings, ae_titles);
    loop {
        let batch: Vec<AuditMessage> = ledger.audit_messages_after(up_to, BATCH, &source, &host)?;
        let Some(last) = batch.last().map(|m| m.seq) else {
            break;
        };
        let messages: Vec<SyslogMessage> = batch
            .into_iter()
            .map(|m| SyslogMessage {
                timestamp: m.at,
                severity: if m.failure { 4 } else { 5 },
                body: m.xml,
            })
            .collect();
        dokuei_net::syslog::send(&settings.repository, &host, "dokuei", &messages, TIMEOUT)
            .map_err(|e| AppError::new(ErrorCode::NodeFailed, e.to_string()))?;
        sent += messages.len() as u32;
        up_to = last;
        let path = cursor_path(ledger.path());
        write_whole(&path, format!("{ledger_id} {up_to}\n").as_bytes()).map_err(|e| {
            AppError::new(
                ErrorCode::WriteFailed,
                format!("cannot write `{}`: {e}", path.display()),
            )
        })?;
    }
    Ok(Forwarded { sent, up_to })
}

/// One forwarding at a time in this process; a request while one runs makes it go round again.
#[derive(Default)]
pub(crate) struct Forwarder {
    running: AtomicBool,
    again: AtomicBool,
}

impl Forwarder {
    /// Forwards in a background thread over its own connection to the ledger at `path`.
    pub(crate) fn nudge(self: &std::sync::Arc<Self>, path: PathBuf, ae_titles: Vec<String>) {
        self.again.store(true, Ordering::SeqCst);
        if self.running.swap(true, Ordering::SeqCst) {
            return;
        }
        let me = self.clone();
        std::thread::spawn(move || {
            while me.again.swap(false, Ordering::SeqCst) {
                let result = load_settings(&path).and_then(|settings| {
                    if !settings.send {
                        return Ok(None);
                    }
                    let ledger = Ledger::open(&path)?;
                    forward(&ledger, &settings, &ae_titles).map(Some)
                });
                match result {
                    Ok(Some(f)) if f.sent > 0 => {
                        tracing::info!("audit: {} message(s) sent to the repository", f.sent);
                    }
                    Ok(_) => {}
                    // Names the repository's address and the cause, nothing about patients.
                    Err(e) => tracing::warn!("audit: {}; will retry", e.message),
                }
            }
            me.running.store(false, Ordering::SeqCst);
            // A nudge between the last round and the flag being cleared.
            if me.again.load(Ordering::SeqCst) {
                me.nudge(path, ae_titles);
            }
        });
    }
}

/// The top-level fields of two settings values that differ, in words (`field: old → new`), for
/// the audit.
pub fn changed_fields<T: Serialize>(before: &T, after: &T) -> String {
    /// Secrets are never written to the ledger: only that one changed.
    fn scrub(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if matches!(k.as_str(), "password" | "token") && v.is_string() {
                        *v = "(secret)".into();
                    } else {
                        scrub(v);
                    }
                }
            }
            serde_json::Value::String(text) if text.contains("://") => {
                *text = without_credentials(text);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(scrub),
            _ => {}
        }
    }
    let (Ok(serde_json::Value::Object(a)), Ok(serde_json::Value::Object(b))) =
        (serde_json::to_value(before), serde_json::to_value(after))
    else {
        return String::new();
    };
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            // Scrubbed under its own key, so that a top-level secret is hidden too.
            let shown = |v: Option<&serde_json::Value>| {
                v.cloned().map_or("(none)".to_owned(), |v| {
                    let mut field =
                        serde_json::Value::Object(std::iter::once(((*k).clone(), v)).collect());
                    scrub(&mut field);
                    field[k.as_str()].to_string()
                })
            };
            let (old, new) = (shown(a.get(k)), shown(b.get(k)));
            if old == new {
                format!("{k}: a password or token changed")
            } else {
                format!("{k}: {old} → {new}")
            }
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// The event saying that `what` (kept in `file`) changed from `before` to `after`; `None` when
/// nothing did.
pub fn setting_change<T: Serialize>(
    what: &str,
    file: &Path,
    before: &T,
    after: &T,
    reader_id: Option<i64>,
) -> Option<AccessEvent> {
    let changes = changed_fields(before, after);
    (!changes.is_empty()).then(|| AccessEvent {
        object: what.to_owned(),
        peer: file.display().to_string(),
        detail: AccessDetail {
            note: changes,
            ..AccessDetail::default()
        },
        ..event(AccessAction::SettingChanged, reader_id)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_in_urls_are_never_recorded() {
        assert_eq!(
            without_credentials("web https://dokuei:secret@pacs.example:8443/dicom-web?x=1"),
            "web https://pacs.example:8443/dicom-web?x=1"
        );
        assert_eq!(without_credentials("AE@127.0.0.1:104"), "AE@127.0.0.1:104");
        assert_eq!(
            without_credentials("a http://u@h/p and https://v:w@k"),
            "a http://h/p and https://k"
        );
        #[derive(Serialize)]
        struct Node {
            base_url: String,
            password: String,
        }
        let before = Node {
            base_url: "https://u:old@pacs/dicom-web".into(),
            password: "hunter22".into(),
        };
        let after = Node {
            base_url: "https://u:new@pacs/dicom-web".into(),
            password: "correct horse".into(),
        };
        let changes = changed_fields(&before, &after);
        assert!(
            !changes.contains("old") && !changes.contains("new@"),
            "{changes}"
        );
        assert!(
            !changes.contains("hunter") && !changes.contains("horse"),
            "{changes}"
        );
        assert_eq!(
            changes,
            "base_url: a password or token changed; password: a password or token changed"
        );
    }

    #[test]
    fn the_forwarding_place_belongs_to_its_ledger_and_never_passes_its_end() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = Ledger::open(&dir.path().join("ledger.sqlite")).unwrap();
        for _ in 0..3 {
            ledger
                .record_access(&event(AccessAction::SettingChanged, None))
                .unwrap();
        }
        let id = ledger.ledger_id().unwrap().unwrap();
        let cursor = cursor_path(ledger.path());
        assert_eq!(read_cursor(&ledger).unwrap(), 0, "nothing sent yet");
        std::fs::write(&cursor, format!("{id} 2\n")).unwrap();
        assert_eq!(read_cursor(&ledger).unwrap(), 2);
        std::fs::write(&cursor, "0123456789abcdef 2\n").unwrap();
        assert_eq!(read_cursor(&ledger).unwrap(), 0, "another ledger's place");
        std::fs::write(&cursor, format!("{id} 99\n")).unwrap();
        assert_eq!(
            read_cursor(&ledger).unwrap(),
            3,
            "restored from an older copy"
        );
        std::fs::write(&cursor, "2").unwrap();
        assert!(
            read_cursor(&ledger)
                .unwrap_err()
                .message
                .contains("remove it")
        );
    }
}
