//! The ledger's tables and their migrations. Every record table is STRICT (no type affinity
//! surprises in the canonical bytes), carries its position in the hash chain (`seq`), and has
//! triggers that refuse UPDATE and DELETE.

/// The tables whose rows are chained, in the order they were introduced.
pub const RECORD_TABLES: &[&str] = &[
    "readers",
    "studies",
    "analyses",
    "findings",
    "decisions",
    "sign_offs",
    "reading_events",
    "exported_objects",
    "imported_analyses",
    "analysis_sources",
    "sent_objects",
    "reader_keys",
    "sign_off_signatures",
    "auth_events",
    "administrators",
    "access_events",
    "shadow_analyses",
    "key_images",
    "key_object_documents",
];

/// The record tables as of version 5 (which added `_no_replace` triggers to each).
pub const V5_RECORD_TABLES: usize = 11;

/// Schema versions, oldest first. Version N is reached by running migration N - 1's SQL.
/// `PRAGMA user_version` records the version a file is at.
pub const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9];

/// The version this build writes.
pub const LATEST: i64 = MIGRATIONS.len() as i64;

/// Version 1: readers, studies, analyses, findings, decisions, sign-offs, and the chain.
const V1: &str = r#"
CREATE TABLE chain (
    seq        INTEGER PRIMARY KEY,
    table_name TEXT NOT NULL,
    row_id     INTEGER NOT NULL,
    prev_hash  BLOB NOT NULL,
    hash       BLOB NOT NULL
) STRICT;

CREATE TABLE readers (
    id           INTEGER PRIMARY KEY,
    seq          INTEGER NOT NULL UNIQUE,
    display_name TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('radiologist', 'clinician', 'qa')),
    recorded_at  TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version  TEXT NOT NULL
) STRICT;

CREATE TABLE studies (
    id              INTEGER PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE,
    study_uid       TEXT NOT NULL,
    accession       TEXT NOT NULL,
    modality        TEXT NOT NULL,
    study_date      TEXT NOT NULL,
    -- A keyed hash of the patient ID (never the ID itself unless configured otherwise).
    patient_key     TEXT NOT NULL,
    recorded_at     TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version     TEXT NOT NULL
) STRICT;
CREATE INDEX studies_uid ON studies(study_uid);

CREATE TABLE analyses (
    id                 INTEGER PRIMARY KEY,
    seq                INTEGER NOT NULL UNIQUE,
    study_id           INTEGER NOT NULL REFERENCES studies(id),
    series_uid         TEXT NOT NULL,
    model_id           TEXT NOT NULL,
    model_version      TEXT NOT NULL,
    model_sha256       TEXT NOT NULL,
    execution_provider TEXT NOT NULL,
    thresholds_json    TEXT NOT NULL,
    started_at         TEXT NOT NULL,
    finished_at        TEXT NOT NULL,
    recorded_at        TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version        TEXT NOT NULL
) STRICT;

CREATE TABLE findings (
    id            INTEGER PRIMARY KEY,
    seq           INTEGER NOT NULL UNIQUE,
    analysis_id   INTEGER NOT NULL REFERENCES analyses(id),
    label         TEXT NOT NULL,
    score         REAL NOT NULL,
    geometry_json TEXT NOT NULL,
    mask_sha256   TEXT NOT NULL,
    shown_at      TEXT NOT NULL,
    recorded_at   TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version   TEXT NOT NULL
) STRICT;

CREATE TABLE decisions (
    id             INTEGER PRIMARY KEY,
    seq            INTEGER NOT NULL UNIQUE,
    study_id       INTEGER NOT NULL REFERENCES studies(id),
    -- NULL for a finding added by the reader.
    finding_id     INTEGER REFERENCES findings(id),
    action         TEXT NOT NULL CHECK (action IN ('confirm', 'edit', 'reject', 'add')),
    label          TEXT NOT NULL,
    reject_reason  TEXT CHECK (reject_reason IN ('anatomical_structure', 'artefact', 'benign_or_known', 'outside_intended_use', 'other')),
    reason_text    TEXT NOT NULL,
    geometry_json  TEXT NOT NULL,
    reader_id      INTEGER NOT NULL REFERENCES readers(id),
    supersedes_id  INTEGER REFERENCES decisions(id),
    recorded_at    TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version    TEXT NOT NULL,
    CHECK ((action = 'reject') = (reject_reason IS NOT NULL)),
    CHECK ((action = 'add') = (finding_id IS NULL))
) STRICT;
CREATE INDEX decisions_study ON decisions(study_id);

CREATE TABLE sign_offs (
    id          INTEGER PRIMARY KEY,
    seq         INTEGER NOT NULL UNIQUE,
    study_id    INTEGER NOT NULL REFERENCES studies(id),
    reader_id   INTEGER NOT NULL REFERENCES readers(id),
    confirmed   INTEGER NOT NULL,
    edited      INTEGER NOT NULL,
    rejected    INTEGER NOT NULL,
    added       INTEGER NOT NULL,
    impression  TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version TEXT NOT NULL
) STRICT;
"#;

/// Version 2: commit-then-reveal reading events.
const V2: &str = r#"
CREATE TABLE reading_events (
    id          INTEGER PRIMARY KEY,
    seq         INTEGER NOT NULL UNIQUE,
    study_id    INTEGER NOT NULL REFERENCES studies(id),
    reader_id   INTEGER NOT NULL REFERENCES readers(id),
    kind        TEXT NOT NULL CHECK (kind IN ('impression_before_ai', 'ai_revealed')),
    content     TEXT NOT NULL,
    recorded_at TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version TEXT NOT NULL
) STRICT;
"#;

/// Version 3: every DICOM object exported (SEG, SR), with the analysis or sign-off it came from;
/// and, for results read from other tools' objects, who produced them (the analysis row then has
/// no model SHA-256: `execution_provider` is `imported`); and which stack of its series an
/// analysis ran on (its images, hashed), so that results are written on the images analysed.
const V3: &str = r#"
CREATE TABLE exported_objects (
    id                  INTEGER PRIMARY KEY,
    seq                 INTEGER NOT NULL UNIQUE,
    study_id            INTEGER NOT NULL REFERENCES studies(id),
    analysis_id         INTEGER REFERENCES analyses(id),
    sign_off_id         INTEGER REFERENCES sign_offs(id),
    kind                TEXT NOT NULL CHECK (kind IN ('ai_seg', 'ai_sr', 'ai_pmap', 'reader_seg', 'assessment_sr')),
    sop_class_uid       TEXT NOT NULL,
    sop_instance_uid    TEXT NOT NULL,
    series_instance_uid TEXT NOT NULL,
    sha256              TEXT NOT NULL,
    destination         TEXT NOT NULL,
    recorded_at         TEXT NOT NULL,
    utc_offset_minutes  INTEGER NOT NULL,
    app_version         TEXT NOT NULL,
    CHECK ((analysis_id IS NULL) <> (sign_off_id IS NULL))
) STRICT;

CREATE TABLE analysis_sources (
    id                 INTEGER PRIMARY KEY,
    seq                INTEGER NOT NULL UNIQUE,
    analysis_id        INTEGER NOT NULL UNIQUE REFERENCES analyses(id),
    stack_index        INTEGER NOT NULL,
    frames             INTEGER NOT NULL,
    images_sha256      TEXT NOT NULL,
    recorded_at        TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version        TEXT NOT NULL
) STRICT;

CREATE TABLE imported_analyses (
    id                      INTEGER PRIMARY KEY,
    seq                     INTEGER NOT NULL UNIQUE,
    analysis_id             INTEGER NOT NULL UNIQUE REFERENCES analyses(id),
    source_sop_class_uid    TEXT NOT NULL,
    source_sop_instance_uid TEXT NOT NULL,
    algorithm_name          TEXT NOT NULL,
    algorithm_version       TEXT NOT NULL,
    manufacturer            TEXT NOT NULL,
    device_uid              TEXT NOT NULL,
    recorded_at             TEXT NOT NULL,
    utc_offset_minutes      INTEGER NOT NULL,
    app_version             TEXT NOT NULL
) STRICT;
"#;

/// Version 4: every instance sent to a PACS node (C-STORE or STOW-RS) and its outcome; the
/// exported object it was, when Dokuei wrote it.
const V4: &str = r#"
CREATE TABLE sent_objects (
    id                  INTEGER PRIMARY KEY,
    seq                 INTEGER NOT NULL UNIQUE,
    exported_object_id  INTEGER REFERENCES exported_objects(id),
    sop_class_uid       TEXT NOT NULL,
    sop_instance_uid    TEXT NOT NULL,
    sha256              TEXT NOT NULL,
    node                TEXT NOT NULL,
    protocol            TEXT NOT NULL CHECK (protocol IN ('dimse', 'dicomweb')),
    address             TEXT NOT NULL,
    stored              INTEGER NOT NULL CHECK (stored IN (0, 1)),
    status              INTEGER,
    detail              TEXT NOT NULL,
    recorded_at         TEXT NOT NULL,
    utc_offset_minutes  INTEGER NOT NULL,
    app_version         TEXT NOT NULL
) STRICT;
"#;

/// Version 5: signed checkpoints of the chain's head (see `anchor.rs`). Not chained themselves:
/// each one commits to the chain up to `size` and is signed by the installation key.
const V5: &str = r#"
CREATE TABLE checkpoints (
    id          INTEGER PRIMARY KEY,
    ledger_id   TEXT NOT NULL,
    size        INTEGER NOT NULL CHECK (size > 0),
    head        TEXT NOT NULL,
    made_at     TEXT NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('sign_off', 'hourly', 'export', 'closing', 'manual')),
    public_key  TEXT NOT NULL,
    signature   TEXT NOT NULL
) STRICT;
-- The older tables get their `_no_replace` triggers from `with_triggers` (store.rs), run for
-- every table at this version.
"#;

/// What the append-only triggers refuse (`replace` since schema version 5).
pub const APPEND_ONLY_OPS: [&str; 3] = ["update", "delete", "replace"];

/// Version 6: who signed. Readers' key pairs (the secret half sealed under their passphrase;
/// a changed key endorsed by the old one, a reset one by an administrator's), signed
/// sign-offs, passphrase events, and administrators.
const V6: &str = r#"
CREATE TABLE reader_keys (
    id                 INTEGER PRIMARY KEY,
    seq                INTEGER NOT NULL UNIQUE,
    reader_id          INTEGER NOT NULL REFERENCES readers(id),
    os_account         TEXT NOT NULL,
    public_key         TEXT NOT NULL,
    sealed_key         TEXT NOT NULL,
    kdf                TEXT NOT NULL,
    reason             TEXT NOT NULL CHECK (reason IN ('created', 'changed', 'reset')),
    by_reader_id       INTEGER REFERENCES readers(id),
    endorsement        TEXT NOT NULL,
    recorded_at        TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version        TEXT NOT NULL
) STRICT;

CREATE TABLE sign_off_signatures (
    id                 INTEGER PRIMARY KEY,
    seq                INTEGER NOT NULL UNIQUE,
    sign_off_id        INTEGER NOT NULL UNIQUE REFERENCES sign_offs(id),
    reader_key_id      INTEGER NOT NULL REFERENCES reader_keys(id),
    statement          TEXT NOT NULL,
    signature          TEXT NOT NULL,
    recorded_at        TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version        TEXT NOT NULL
) STRICT;

CREATE TABLE auth_events (
    id                 INTEGER PRIMARY KEY,
    seq                INTEGER NOT NULL UNIQUE,
    reader_id          INTEGER NOT NULL REFERENCES readers(id),
    kind               TEXT NOT NULL CHECK (kind IN ('failure', 'success', 'locked', 'unlocked')),
    by_reader_id       INTEGER REFERENCES readers(id),
    recorded_at        TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version        TEXT NOT NULL
) STRICT;

CREATE TABLE administrators (
    id                 INTEGER PRIMARY KEY,
    seq                INTEGER NOT NULL UNIQUE,
    reader_id          INTEGER NOT NULL UNIQUE REFERENCES readers(id),
    granted_by         INTEGER REFERENCES readers(id),
    endorsement        TEXT NOT NULL,
    recorded_at        TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version        TEXT NOT NULL
) STRICT;
"#;

/// Version 7: the access audit. Who opened which study, ran which model, exported, sent or
/// received what, and changed which setting (see `access.rs`): one row per event, exported as
/// DICOM PS3.15 audit messages. `study_uid` and `patient_key` are empty for events about no
/// study; `detail_json` holds the SOP classes and instances involved and any error.
const V7: &str = r#"
CREATE TABLE access_events (
    id                 INTEGER PRIMARY KEY,
    seq                INTEGER NOT NULL UNIQUE,
    action             TEXT NOT NULL CHECK (action IN ('app_started', 'app_stopped', 'study_opened', 'model_run', 'exported', 'sent', 'received', 'queried', 'setting_changed', 'audit_exported')),
    outcome            INTEGER NOT NULL CHECK (outcome IN (0, 4, 8, 12)),
    reader_id          INTEGER REFERENCES readers(id),
    os_account         TEXT NOT NULL,
    host               TEXT NOT NULL,
    study_uid          TEXT NOT NULL,
    patient_key        TEXT NOT NULL,
    object             TEXT NOT NULL,
    peer               TEXT NOT NULL,
    detail_json        TEXT NOT NULL,
    recorded_at        TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version        TEXT NOT NULL
) STRICT;
CREATE INDEX access_events_setting ON access_events(object, action);
"#;

/// Version 8: shadow runs. A candidate model version run beside the one readers see, on the
/// same stack: its analysis and findings are recorded like any other, and this row (written in
/// the same transaction) keeps them off the review screen and out of every decision count;
/// the model-version watch compares them with what readers decided.
const V8: &str = r#"
CREATE TABLE shadow_analyses (
    id                  INTEGER PRIMARY KEY,
    seq                 INTEGER NOT NULL UNIQUE,
    analysis_id         INTEGER NOT NULL UNIQUE REFERENCES analyses(id),
    shadows_analysis_id INTEGER NOT NULL REFERENCES analyses(id),
    recorded_at         TEXT NOT NULL,
    utc_offset_minutes  INTEGER NOT NULL,
    app_version         TEXT NOT NULL
) STRICT;
-- The watch looks up each finding's decisions and each analysis's findings.
CREATE INDEX decisions_finding ON decisions(finding_id);
CREATE INDEX findings_analysis ON findings(analysis_id);
"#;

/// Version 9: key images. A reader marks (or unmarks: a new row, never a deletion) an image of
/// the study, with a note; the study's key images are its images whose latest row is a mark.
/// Each Key Object Selection document written from them is recorded with its SHA-256 and how
/// many images it names.
const V9: &str = r#"
CREATE TABLE key_images (
    id                 INTEGER PRIMARY KEY,
    seq                INTEGER NOT NULL UNIQUE,
    study_id           INTEGER NOT NULL REFERENCES studies(id),
    reader_id          INTEGER NOT NULL REFERENCES readers(id),
    action             TEXT NOT NULL CHECK (action IN ('mark', 'unmark')),
    series_uid         TEXT NOT NULL,
    sop_class_uid      TEXT NOT NULL,
    sop_instance_uid   TEXT NOT NULL,
    frame              INTEGER CHECK (frame IS NULL OR frame >= 1),
    note               TEXT NOT NULL,
    recorded_at        TEXT NOT NULL,
    utc_offset_minutes INTEGER NOT NULL,
    app_version        TEXT NOT NULL
) STRICT;
CREATE INDEX key_images_study ON key_images(study_id);

CREATE TABLE key_object_documents (
    id                  INTEGER PRIMARY KEY,
    seq                 INTEGER NOT NULL UNIQUE,
    study_id            INTEGER NOT NULL REFERENCES studies(id),
    sop_instance_uid    TEXT NOT NULL,
    series_instance_uid TEXT NOT NULL,
    images              INTEGER NOT NULL,
    sha256              TEXT NOT NULL,
    destination         TEXT NOT NULL,
    recorded_at         TEXT NOT NULL,
    utc_offset_minutes  INTEGER NOT NULL,
    app_version         TEXT NOT NULL
) STRICT;
"#;

/// Tables that are append-only but not chained.
pub const UNCHAINED_TABLES: &[&str] = &["chain", "checkpoints"];

/// The SQL SQLite keeps for one of the append-only triggers (`op` is `update` or `delete`), as
/// `sqlite_schema` stores it (without `IF NOT EXISTS`).
pub fn trigger_sql(table: &str, op: &str) -> String {
    if op == "replace" {
        // INSERT OR REPLACE deletes the row it collides with without firing the delete
        // trigger: refuse any insert whose key is taken.
        let taken = match table {
            "chain" => "seq = NEW.seq",
            "checkpoints" => "id = NEW.id",
            _ => "id = NEW.id OR seq = NEW.seq",
        };
        return format!(
            "CREATE TRIGGER {table}_no_replace BEFORE INSERT ON {table} \
             WHEN EXISTS (SELECT 1 FROM {table} WHERE {taken}) \
             BEGIN SELECT RAISE(ABORT, 'the Dokuei ledger is append-only: {table} rows cannot be replaced'); END"
        );
    }
    let (event, verb) = if op == "update" {
        ("UPDATE", "changed")
    } else {
        ("DELETE", "deleted")
    };
    format!(
        "CREATE TRIGGER {table}_no_{op} BEFORE {event} ON {table} \
         BEGIN SELECT RAISE(ABORT, 'the Dokuei ledger is append-only: {table} rows cannot be {verb}'); END"
    )
}

/// Triggers that make a table append-only. Created for every table a version introduces.
pub fn append_only_triggers(table: &str) -> String {
    APPEND_ONLY_OPS
        .iter()
        .map(|op| {
            trigger_sql(table, op).replacen("CREATE TRIGGER ", "CREATE TRIGGER IF NOT EXISTS ", 1)
                + ";\n"
        })
        .collect()
}
