//! The access audit: who opened which study, ran which model, exported, sent or received what,
//! and changed which setting. One chained row per event (`access_events`, schema version 7),
//! appended like decisions; [`crate::atna`] turns them, with the passphrase events, into DICOM
//! PS3.15 audit messages.

use rusqlite::OptionalExtension;
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use crate::store::{Ledger, LedgerError};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum AccessAction {
    /// The application started or stopped (PS3.15 Application Activity).
    AppStarted,
    AppStopped,
    /// A study's images were opened for reading (DICOM Instances Accessed, read).
    StudyOpened,
    /// A model ran on a study's images (DICOM Instances Accessed, execute).
    ModelRun,
    /// Objects or records were written out of the ledger or the study to a file or folder
    /// (Export).
    Exported,
    /// Instances were sent to a PACS node (DICOM Instances Transferred, read).
    Sent,
    /// Instances were received from a PACS node (DICOM Instances Transferred, create).
    Received,
    /// A PACS node was queried (Query).
    Queried,
    /// A setting was changed (Security Alert, software or network configuration).
    SettingChanged,
    /// The audit trail itself was exported (Audit Log Used).
    AuditExported,
}

impl AccessAction {
    pub const ALL: [AccessAction; 10] = [
        AccessAction::AppStarted,
        AccessAction::AppStopped,
        AccessAction::StudyOpened,
        AccessAction::ModelRun,
        AccessAction::Exported,
        AccessAction::Sent,
        AccessAction::Received,
        AccessAction::Queried,
        AccessAction::SettingChanged,
        AccessAction::AuditExported,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AccessAction::AppStarted => "app_started",
            AccessAction::AppStopped => "app_stopped",
            AccessAction::StudyOpened => "study_opened",
            AccessAction::ModelRun => "model_run",
            AccessAction::Exported => "exported",
            AccessAction::Sent => "sent",
            AccessAction::Received => "received",
            AccessAction::Queried => "queried",
            AccessAction::SettingChanged => "setting_changed",
            AccessAction::AuditExported => "audit_exported",
        }
    }

    pub fn parse(s: &str) -> Option<AccessAction> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

/// How it ended, with PS3.15's EventOutcomeIndicator values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Success,
    /// The action failed and nothing lasting happened (a refused file, an unreachable node).
    MinorFailure,
    /// The action failed part-way (some instances sent, others not).
    SeriousFailure,
}

impl Outcome {
    pub fn code(self) -> i64 {
        match self {
            Outcome::Success => 0,
            Outcome::MinorFailure => 4,
            Outcome::SeriousFailure => 8,
        }
    }

    fn from_code(code: i64) -> Outcome {
        match code {
            0 => Outcome::Success,
            4 => Outcome::MinorFailure,
            _ => Outcome::SeriousFailure,
        }
    }
}

/// The instances of one SOP class an event involved.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SopClassInstances {
    pub sop_class_uid: String,
    /// How many instances (the UIDs may be left out for large sets; the count stays).
    pub count: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub instance_uids: Vec<String>,
}

/// Details of an event, kept as JSON in `detail_json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AccessDetail {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub sop_classes: Vec<SopClassInstances>,
    /// Why it failed (no patient identifier).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
    /// Anything else worth keeping, in words (e.g. which settings changed and how).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub note: String,
}

/// At most this many instance UIDs are kept per SOP class (the count is always kept).
pub const MAX_INSTANCE_UIDS: usize = 10_000;

impl AccessDetail {
    /// Groups `(SOP class, SOP instance)` pairs by class, in the order classes first appear.
    pub fn with_instances<'a>(
        mut self,
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Self {
        for (class, instance) in pairs {
            let entry = match self
                .sop_classes
                .iter_mut()
                .position(|c| c.sop_class_uid == class)
            {
                Some(i) => &mut self.sop_classes[i],
                None => {
                    self.sop_classes.push(SopClassInstances {
                        sop_class_uid: class.to_owned(),
                        ..SopClassInstances::default()
                    });
                    self.sop_classes.last_mut().expect("just pushed")
                }
            };
            entry.count += 1;
            if entry.instance_uids.len() < MAX_INSTANCE_UIDS {
                entry.instance_uids.push(instance.to_owned());
            }
        }
        self
    }
}

/// One event to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessEvent {
    pub action: AccessAction,
    pub outcome: Outcome,
    /// The reader profile selected, when there is one.
    pub reader_id: Option<i64>,
    /// The operating-system account the application runs as.
    pub os_account: String,
    /// This machine's name.
    pub host: String,
    /// The study concerned ('' for none) and its patient's keyed hash (never the patient ID).
    pub study_uid: String,
    pub patient_key: String,
    /// What was used or changed: a model (`id version sha256`), a file or folder, a setting.
    pub object: String,
    /// The other side: a PACS node (`name AE@host:port` or URL), or a destination path.
    pub peer: String,
    pub detail: AccessDetail,
}

/// A recorded event.
#[derive(Debug, Clone, PartialEq)]
pub struct AccessRow {
    pub id: i64,
    pub seq: i64,
    pub event: AccessEvent,
    pub recorded_at: String,
    pub app_version: String,
}

fn text(s: &str) -> Value {
    Value::Text(s.to_owned())
}

impl Ledger {
    /// Appends one access event (and extends the chain).
    pub fn record_access(&self, e: &AccessEvent) -> Result<i64, LedgerError> {
        // A profile id from another ledger (settings kept across ledgers) names nobody here:
        // the event is recorded without it rather than refused.
        let reader_id = match e.reader_id {
            Some(id) if self.reader_exists(id)? => Some(id),
            _ => None,
        };
        let detail = serde_json::to_string(&e.detail).map_err(|err| LedgerError::Write {
            path: self.path.clone(),
            reason: err.to_string(),
        })?;
        let cols = self.stamped(vec![
            ("action", text(e.action.as_str())),
            ("outcome", Value::Integer(e.outcome.code())),
            ("reader_id", reader_id.map_or(Value::Null, Value::Integer)),
            ("os_account", text(&e.os_account)),
            ("host", text(&e.host)),
            ("study_uid", text(&e.study_uid)),
            ("patient_key", text(&e.patient_key)),
            ("object", text(&e.object)),
            ("peer", text(&e.peer)),
            ("detail_json", Value::Text(detail)),
        ]);
        self.append("access_events", &cols)
    }

    /// Whether reader `id` exists (an event names only readers of this ledger).
    pub fn reader_exists(&self, id: i64) -> Result<bool, LedgerError> {
        self.conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM readers WHERE id = ?1)",
                [id],
                |r| r.get(0),
            )
            .map_err(|e| self.read_err(e))
    }

    /// The note of the latest change of setting `object` (e.g. a policy's `on`/`off`), if any.
    pub fn latest_setting_note(&self, object: &str) -> Result<Option<String>, LedgerError> {
        let detail: Option<String> = self
            .conn
            .query_row(
                "SELECT detail_json FROM access_events
                 WHERE action = 'setting_changed' AND object = ?1 AND outcome = 0
                 ORDER BY seq DESC LIMIT 1",
                [object],
                |r| r.get(0),
            )
            .optional()
            .map_err(|e| self.read_err(e))?;
        Ok(detail.map(|d| {
            serde_json::from_str::<AccessDetail>(&d)
                .unwrap_or_default()
                .note
        }))
    }

    /// The number of chain entries (the last one's position).
    pub fn chain_size(&self) -> Result<i64, LedgerError> {
        self.conn
            .query_row("SELECT COALESCE(max(seq), 0) FROM chain", [], |r| r.get(0))
            .map_err(|e| self.read_err(e))
    }

    /// Access events with chain position after `after_seq`, oldest first, at most `limit`.
    pub fn access_events_after(
        &self,
        after_seq: i64,
        limit: usize,
    ) -> Result<Vec<AccessRow>, LedgerError> {
        let mut stmt = self
            .conn
            .prepare_cached(
                "SELECT id, seq, action, outcome, reader_id, os_account, host, study_uid,
                        patient_key, object, peer, detail_json, recorded_at, app_version
                 FROM access_events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )
            .map_err(|e| self.read_err(e))?;
        let rows = stmt
            .query_map(
                rusqlite::params![after_seq, i64::try_from(limit).unwrap_or(i64::MAX)],
                |r| {
                    let action: String = r.get(2)?;
                    let detail: String = r.get(11)?;
                    Ok(AccessRow {
                        id: r.get(0)?,
                        seq: r.get(1)?,
                        event: AccessEvent {
                            // The CHECK constraint allows only known actions.
                            action: AccessAction::parse(&action)
                                .unwrap_or(AccessAction::SettingChanged),
                            outcome: Outcome::from_code(r.get(3)?),
                            reader_id: r.get(4)?,
                            os_account: r.get(5)?,
                            host: r.get(6)?,
                            study_uid: r.get(7)?,
                            patient_key: r.get(8)?,
                            object: r.get(9)?,
                            peer: r.get(10)?,
                            detail: serde_json::from_str(&detail).unwrap_or_default(),
                        },
                        recorded_at: r.get(12)?,
                        app_version: r.get(13)?,
                    })
                },
            )
            .map_err(|e| self.read_err(e))?;
        rows.collect::<Result<_, _>>().map_err(|e| self.read_err(e))
    }
}
