//! DICOMweb: QIDO-RS queries, WADO-RS retrieves asking for the stored transfer syntax
//! (`transfer-syntax=*`, nothing transcoded) with each part written to disk as it arrives, and
//! STOW-RS sends with their outcome per instance. HTTP through `ureq`, `multipart/related`
//! through `multer` (driven without an async runtime).

use std::collections::HashSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::instance::{Header, Outgoing, StoredInstance, uid_component, write_atomically};
use crate::query::{Level, Query, QueryRow};
use crate::scu::{Progress, RetrieveReport, RetrieveRequest, SendOutcome, SeriesOutcome};

/// How Dokuei authenticates to a DICOMweb server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, specta::Type)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Auth {
    #[default]
    None,
    Basic {
        user: String,
        password: String,
    },
    Bearer {
        token: String,
    },
}

/// A DICOMweb server: its base URL (the one `/studies` hangs from).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct WebNode {
    pub name: String,
    pub base_url: String,
    #[serde(default)]
    pub auth: Auth,
}

/// What went wrong, naming the node.
#[derive(Debug, thiserror::Error)]
#[error("{node} ({url}): {reason}")]
pub struct WebError {
    pub node: String,
    pub url: String,
    pub reason: String,
}

const DICOM_PARTS: &str = r#"multipart/related; type="application/dicom"; transfer-syntax=*"#;

impl WebNode {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url.trim_end_matches('/'))
    }

    fn error(&self, url: &str, reason: impl Into<String>) -> WebError {
        WebError {
            node: self.name.clone(),
            url: url.to_string(),
            reason: reason.into(),
        }
    }

    fn authorization(&self) -> Option<String> {
        match &self.auth {
            Auth::None => None,
            Auth::Basic { user, password } => Some(format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            )),
            Auth::Bearer { token } => Some(format!("Bearer {token}")),
        }
    }

    fn agent(timeout: Duration) -> ureq::Agent {
        // Idle timeouts (each read or write), not totals: a large study may take minutes.
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeout))
            .timeout_recv_response(Some(timeout))
            .timeout_per_read(Some(timeout))
            .timeout_per_write(Some(timeout))
            .build()
            .into()
    }

    fn get(
        &self,
        agent: &ureq::Agent,
        url: &str,
        accept: &str,
    ) -> ureq::RequestBuilder<ureq::typestate::WithoutBody> {
        let mut rq = agent.get(url).header("Accept", accept);
        if let Some(a) = self.authorization() {
            rq = rq.header("Authorization", a);
        }
        rq
    }

    /// The reason for a failed HTTP exchange, in words.
    fn http_error(&self, url: &str, e: ureq::Error) -> WebError {
        let reason = match e {
            ureq::Error::ConnectionFailed | ureq::Error::Io(_) => {
                format!("unreachable ({e})")
            }
            ureq::Error::HostNotFound => "host not found".into(),
            ureq::Error::Timeout(t) => format!("timed out ({t})"),
            other => other.to_string(),
        };
        self.error(url, reason)
    }

    fn status_error(&self, url: &str, status: u16, body: &str) -> WebError {
        let what = match status {
            401 => "authentication failed (401 Unauthorized)".to_string(),
            403 => "not allowed (403 Forbidden)".to_string(),
            404 => "not found (404)".to_string(),
            s => format!("HTTP {s}"),
        };
        let body = body.trim();
        if body.is_empty() || status == 401 {
            self.error(url, what)
        } else {
            let short: String = body.chars().take(200).collect();
            self.error(url, format!("{what}: {short}"))
        }
    }
}

/// Attempts for a request that cannot reach the server (connection refused, reset, timed out
/// connecting); the wait doubles from [`BACKOFF`] between them. HTTP answers are not retried.
const ATTEMPTS: u32 = 3;
const BACKOFF: Duration = Duration::from_millis(500);

/// Runs `request` again (with back-off) while the server cannot be reached.
fn with_retry<T>(mut request: impl FnMut() -> Result<T, ureq::Error>) -> Result<T, ureq::Error> {
    let mut wait = BACKOFF;
    let mut attempt = 1;
    loop {
        match request() {
            Err(ureq::Error::ConnectionFailed | ureq::Error::Io(_)) if attempt < ATTEMPTS => {
                std::thread::sleep(wait);
                wait *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// QIDO-RS at the query's level. `204 No Content` and `200 []` both mean no match.
pub fn find(node: &WebNode, query: &Query, timeout: Duration) -> Result<Vec<QueryRow>, WebError> {
    let path = match query.level {
        Level::Study => "/studies".to_string(),
        Level::Series => format!("/studies/{}/series", query.study_uid),
        Level::Image => format!(
            "/studies/{}/series/{}/instances",
            query.study_uid, query.series_uid
        ),
    };
    let url = node.url(&path);
    query.check().map_err(|e| node.error(&url, e))?;
    for uid in [&query.study_uid, &query.series_uid] {
        if !uid.is_empty() {
            uid_component(uid).map_err(|e| node.error(&url, e))?;
        }
    }
    let agent = WebNode::agent(timeout);
    let mut params: Vec<(&str, String)> = Vec::new();
    let mut param = |k: &'static str, v: &str| {
        if !v.is_empty() {
            params.push((k, v.to_string()));
        }
    };
    match query.level {
        Level::Study => {
            param("PatientName", &query.patient_name);
            param("PatientID", &query.patient_id);
            param("AccessionNumber", &query.accession_number);
            param("StudyDate", &query.date_range());
            param("ModalitiesInStudy", &query.modality);
            for f in [
                "StudyDescription",
                "ModalitiesInStudy",
                "NumberOfStudyRelatedSeries",
                "NumberOfStudyRelatedInstances",
                "StudyTime",
            ] {
                param("includefield", f);
            }
        }
        Level::Series => {
            param("Modality", &query.modality);
            for f in [
                "SeriesDescription",
                "SeriesNumber",
                "NumberOfSeriesRelatedInstances",
            ] {
                param("includefield", f);
            }
        }
        Level::Image => param("includefield", "InstanceNumber"),
    }
    if query.limit > 0 {
        param("limit", &query.limit.to_string());
    }
    if query.offset > 0 {
        param("offset", &query.offset.to_string());
    }
    let mut response = with_retry(|| {
        let mut rq = node.get(&agent, &url, "application/dicom+json");
        for (k, v) in &params {
            rq = rq.query(*k, v);
        }
        rq.call()
    })
    .map_err(|e| node.http_error(&url, e))?;
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(256 << 20)
        .read_to_string()
        .map_err(|e| node.http_error(&url, e))?;
    match status {
        204 => return Ok(Vec::new()),
        200 => {}
        s => return Err(node.status_error(&url, s, &body)),
    }
    if body.trim().is_empty() {
        return Ok(Vec::new());
    }
    let json: Value = serde_json::from_str(&body)
        .map_err(|e| node.error(&url, format!("the answer is not DICOM JSON: {e}")))?;
    let items = json
        .as_array()
        .ok_or_else(|| node.error(&url, "the answer is not a JSON array"))?;
    let mut keys = HashSet::new();
    Ok(items
        .iter()
        .map(row_from_json)
        .filter(|r| keys.insert(r.key(query.level).to_string()))
        .collect())
}

/// A DICOM JSON attribute's first value as text (PN: its alphabetic form).
fn json_text(item: &Value, tag: &str) -> String {
    let values = item
        .get(tag)
        .and_then(|a| a.get("Value"))
        .and_then(Value::as_array);
    let Some(values) = values else {
        return String::new();
    };
    values
        .iter()
        .map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Object(o) => o
                .get("Alphabetic")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            _ => String::new(),
        })
        .collect::<Vec<_>>()
        .join("\\")
}

fn row_from_json(item: &Value) -> QueryRow {
    let t = |tag: &str| json_text(item, tag);
    let n = |tag: &str| t(tag).trim().parse::<i64>().ok();
    let count = |tag: &str| n(tag).and_then(|v| u32::try_from(v).ok());
    QueryRow {
        study_uid: t("0020000D"),
        patient_name: t("00100010"),
        patient_id: t("00100020"),
        accession_number: t("00080050"),
        study_date: t("00080020"),
        study_time: t("00080030"),
        study_description: t("00081030"),
        modalities: t("00080061"),
        series_count: count("00201206"),
        instance_count: count("00201208").or_else(|| count("00201209")),
        series_uid: t("0020000E"),
        modality: t("00080060"),
        series_number: n("00200011").and_then(|v| i32::try_from(v).ok()),
        series_description: t("0008103E"),
        sop_instance_uid: t("00080018"),
        sop_class_uid: t("00080016"),
        instance_number: n("00200013").and_then(|v| i32::try_from(v).ok()),
    }
}

/// Whether the server answers a QIDO-RS probe (the "Test connection" of a DICOMweb node).
pub fn probe(node: &WebNode, timeout: Duration) -> Result<f64, WebError> {
    let started = Instant::now();
    find(
        node,
        &Query {
            limit: 1,
            ..Query::default()
        },
        timeout,
    )?;
    Ok(started.elapsed().as_secs_f64() * 1000.0)
}

/// A `Read` as a byte stream for multer that yields after each chunk, so multer hands out a
/// part as soon as it is complete instead of reading the whole response first.
struct ReadStream<R> {
    reader: R,
    buffer: Vec<u8>,
    yield_next: bool,
}

impl<R: Read + Unpin> futures_util::Stream for ReadStream<R> {
    type Item = std::io::Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if std::mem::take(&mut this.yield_next) {
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match this.reader.read(&mut this.buffer) {
            Ok(0) => Poll::Ready(None),
            Ok(n) => {
                this.yield_next = true;
                Poll::Ready(Some(Ok(Bytes::copy_from_slice(&this.buffer[..n]))))
            }
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }
}

/// The boundary of a `multipart/related` content type.
fn boundary(content_type: &str) -> Result<String, String> {
    let mime: mime::Mime = content_type
        .parse()
        .map_err(|e| format!("content type {content_type:?}: {e}"))?;
    if mime.type_() != mime::MULTIPART {
        return Err(format!("expected multipart/related, got {content_type}"));
    }
    mime.get_param(mime::BOUNDARY)
        .map(|b| b.as_str().to_string())
        .ok_or_else(|| format!("no boundary in {content_type}"))
}

/// WADO-RS of a study or some of its series, series by series, into `root/<study>/<series>/`.
/// Each instance arrives in the syntax it is stored in and is written as it arrives. Progress
/// after each instance; `cancel` stops between instances and keeps what came. A connection lost
/// part way is not an error: the report names the series not complete.
pub fn retrieve(
    node: &WebNode,
    request: &RetrieveRequest,
    root: &Path,
    timeout: Duration,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<RetrieveReport, WebError> {
    let started = Instant::now();
    let series = find(node, &Query::study(&request.study_uid), timeout)?;
    let chosen = crate::scu::choose_series(&series, request);
    if chosen.is_empty() {
        return Err(node.error(
            &node.url(&format!("/studies/{}/series", request.study_uid)),
            format!("the server holds no series of study {}", request.study_uid),
        ));
    }
    let study_dir = root.join(
        uid_component(&request.study_uid)
            .map_err(|e| node.error(&node.base_url, format!("Study Instance UID: {e}")))?,
    );
    let total: Option<u32> = chosen.iter().map(|(_, n)| *n).sum();
    let mut report = RetrieveReport::empty(&request.study_uid);
    let agent = WebNode::agent(timeout);
    let count = chosen.len();
    let mut done = 0u32;
    for (index, (series_uid, expected)) in chosen.iter().enumerate() {
        let mut outcome = SeriesOutcome::pending(series_uid, *expected);
        if cancel.load(Ordering::Relaxed) {
            report.cancelled = true;
            report.series.push(outcome);
            continue;
        }
        let url = node.url(&format!(
            "/studies/{}/series/{series_uid}",
            request.study_uid
        ));
        let dir = match uid_component(series_uid) {
            Ok(s) => study_dir.join(s),
            Err(e) => {
                outcome.status = format!("Series Instance UID: {e}");
                report.series.push(outcome);
                continue;
            }
        };
        let mut tell = |outcome: &SeriesOutcome, done: u32, bytes: u64, complete: bool| {
            let seconds = started.elapsed().as_secs_f64();
            progress(&Progress {
                series_uid: outcome.series_uid.clone(),
                series_index: index,
                series_count: count,
                series_instances_done: outcome.received,
                series_instances_total: outcome.expected,
                instances_done: done,
                instances_total: total,
                bytes,
                seconds,
                seconds_left: total.and_then(|t| {
                    (done > 0)
                        .then(|| seconds / f64::from(done) * f64::from(t.saturating_sub(done)))
                }),
                series_complete: complete,
            });
        };
        let result = (|| -> Result<(), String> {
            let response = with_retry(|| node.get(&agent, &url, DICOM_PARTS).call())
                .map_err(|e| node.http_error(&url, e).reason)?;
            let status = response.status().as_u16();
            if status != 200 {
                let mut response = response;
                let body = response.body_mut().read_to_string().unwrap_or_default();
                return Err(node.status_error(&url, status, &body).reason);
            }
            let content_type = response
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_string();
            let boundary = boundary(&content_type)?;
            let stream = ReadStream {
                reader: response.into_body().into_reader(),
                buffer: vec![0; 256 << 10],
                yield_next: false,
            };
            let mut multipart = multer::Multipart::new(stream, boundary);
            futures_executor::block_on(async {
                loop {
                    if cancel.load(Ordering::Relaxed) {
                        return Err("cancelled".to_string());
                    }
                    let Some(part) = multipart
                        .next_field()
                        .await
                        .map_err(|e| format!("reading the response: {e}"))?
                    else {
                        return Ok(());
                    };
                    let bytes = part
                        .bytes()
                        .await
                        .map_err(|e| format!("reading the response: {e}"))?;
                    let stored = store_part(&dir, &request.study_uid, series_uid, &bytes)?;
                    outcome.received += 1;
                    done += 1;
                    report.bytes += stored.bytes;
                    report.instances.push(stored);
                    tell(&outcome, done, report.bytes, false);
                }
            })
        })();
        match result {
            Ok(()) => {
                outcome.complete =
                    outcome.received > 0 && outcome.expected.is_none_or(|e| outcome.received >= e);
                outcome.status = if outcome.complete {
                    "success".into()
                } else {
                    format!(
                        "{} of {} instances arrived",
                        outcome.received,
                        outcome.expected.unwrap_or(0)
                    )
                };
                tell(&outcome, done, report.bytes, outcome.complete);
            }
            Err(e) if e == "cancelled" => {
                report.cancelled = true;
                outcome.status = e;
            }
            Err(e) => outcome.status = node.error(&url, e).to_string(),
        }
        report.series.push(outcome);
    }
    report.seconds = started.elapsed().as_secs_f64();
    Ok(report)
}

/// Writes one WADO-RS part (a Part 10 file; Orthanc's carry no transfer syntax in their
/// headers, so the file's own meta says it) as `dir/<SOP Instance UID>.dcm`.
fn store_part(
    dir: &Path,
    study_uid: &str,
    series_uid: &str,
    bytes: &[u8],
) -> Result<StoredInstance, String> {
    let outgoing = Outgoing::parse(PathBuf::from("WADO-RS part"), bytes.to_vec())?;
    let path = dir.join(format!(
        "{}.dcm",
        uid_component(&outgoing.sop_instance).map_err(|e| format!("SOP Instance UID: {e}"))?
    ));
    write_atomically(&path, &[bytes])?;
    Ok(StoredInstance {
        study_uid: study_uid.to_string(),
        series_uid: series_uid.to_string(),
        sop_instance_uid: outgoing.sop_instance,
        sop_class_uid: outgoing.sop_class,
        transfer_syntax: outgoing.transfer_syntax,
        path,
        bytes: bytes.len() as u64,
    })
}

/// The most a single STOW-RS request carries; larger sends go in several requests, so that
/// neither the files nor the request body are all in memory at once.
const STOW_BATCH_BYTES: u64 = 64 << 20;

/// STOW-RS of files to `/studies`, in requests of at most [`STOW_BATCH_BYTES`]. 200: all stored;
/// 202: some failed; 409/400: failures, named by the Failed SOP Sequence. Some servers answer
/// 400 and still store the valid parts, so after any 4xx what is on the server is confirmed by
/// QIDO. Sending twice is safe.
pub fn store(
    node: &WebNode,
    files: &[PathBuf],
    timeout: Duration,
) -> Result<Vec<SendOutcome>, WebError> {
    let mut outcomes = Vec::new();
    let mut batch: Vec<Header> = Vec::new();
    let mut batch_bytes = 0;
    let not_sent = |path: &Path, detail: String| SendOutcome {
        path: path.to_path_buf(),
        sop_instance_uid: String::new(),
        sop_class_uid: String::new(),
        status: None,
        stored: false,
        detail,
    };
    for path in files {
        match Header::read(path) {
            Ok(h) => {
                if !batch.is_empty() && batch_bytes + h.bytes > STOW_BATCH_BYTES {
                    outcomes.extend(store_batch(node, &std::mem::take(&mut batch), timeout)?);
                    batch_bytes = 0;
                }
                batch_bytes += h.bytes;
                batch.push(h);
            }
            Err(e) => outcomes.push(not_sent(path, e)),
        }
    }
    if !batch.is_empty() {
        outcomes.extend(store_batch(node, &batch, timeout)?);
    }
    Ok(outcomes)
}

fn store_batch(
    node: &WebNode,
    parts: &[Header],
    timeout: Duration,
) -> Result<Vec<SendOutcome>, WebError> {
    let url = node.url("/studies");
    let mut outcomes = Vec::new();
    let boundary = format!(
        "DOKUEI-{}",
        dokuei_results::uid::random_uid().replace('.', "")
    );
    let mut body = Vec::new();
    let mut sent = Vec::new();
    for h in parts {
        match std::fs::read(&h.path) {
            Ok(bytes) => {
                body.extend_from_slice(
                    format!("--{boundary}\r\nContent-Type: application/dicom\r\n\r\n").as_bytes(),
                );
                body.extend_from_slice(&bytes);
                body.extend_from_slice(b"\r\n");
                sent.push(h);
            }
            Err(e) => outcomes.push(SendOutcome {
                path: h.path.clone(),
                sop_instance_uid: h.sop_instance.clone(),
                sop_class_uid: h.sop_class.clone(),
                status: None,
                stored: false,
                detail: format!("reading {}: {e}", h.path.display()),
            }),
        }
    }
    if sent.is_empty() {
        return Ok(outcomes);
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let agent = WebNode::agent(timeout);
    // Sending twice is safe (the server keeps one copy), so a send that could not connect is
    // tried again.
    let mut response = with_retry(|| {
        let mut rq = agent
            .post(&url)
            .header("Accept", "application/dicom+json")
            .header(
                "Content-Type",
                format!(r#"multipart/related; type="application/dicom"; boundary={boundary}"#),
            );
        if let Some(a) = node.authorization() {
            rq = rq.header("Authorization", a);
        }
        rq.send(&body[..])
    })
    .map_err(|e| node.http_error(&url, e))?;
    drop(body);
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(64 << 20)
        .read_to_string()
        .unwrap_or_default();
    if status == 401 || status == 403 {
        return Err(node.status_error(&url, status, &text));
    }
    // Failures the server named: SOP Instance UID → reason.
    let mut failed: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    if let Ok(json) = serde_json::from_str::<Value>(&text) {
        let items = json
            .get("00081198")
            .and_then(|a| a.get("Value"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for item in items {
            let uid = json_text(&item, "00081155");
            let reason = json_text(&item, "00081197");
            failed.insert(uid, format!("failure reason {reason}"));
        }
    }
    // After a 4xx, ask the server what it holds of each study sent (or say why it could not
    // be asked).
    let confirmed: Option<Result<HashSet<String>, String>> =
        (400..500).contains(&status).then(|| {
            let mut there = HashSet::new();
            let studies: HashSet<&String> = sent.iter().map(|h| &h.study_uid).collect();
            for study in studies {
                let series = find(node, &Query::study(study), timeout).map_err(|e| e.reason)?;
                for s in series {
                    let q = Query {
                        level: Level::Image,
                        study_uid: study.clone(),
                        series_uid: s.series_uid,
                        ..Query::default()
                    };
                    for i in find(node, &q, timeout).map_err(|e| e.reason)? {
                        there.insert(i.sop_instance_uid);
                    }
                }
            }
            Ok(there)
        });
    for h in sent {
        let reason = failed.get(&h.sop_instance);
        let (stored, detail) = match &confirmed {
            Some(Ok(there)) => {
                let stored = there.contains(&h.sop_instance);
                let detail = match (stored, reason) {
                    (true, _) => {
                        format!("HTTP {status}, but the server holds it (checked by QIDO)")
                    }
                    (false, Some(r)) => format!("HTTP {status}: {r}"),
                    (false, None) => format!("HTTP {status}: not on the server (checked by QIDO)"),
                };
                (stored, detail)
            }
            Some(Err(e)) => (
                false,
                format!(
                    "HTTP {status}{}; could not check by QIDO what the server holds: {e}",
                    reason.map(|r| format!(": {r}")).unwrap_or_default()
                ),
            ),
            None => match reason {
                Some(r) => (false, format!("HTTP {status}: {r}")),
                None if status == 200 || status == 202 => (true, format!("HTTP {status}")),
                None => (false, node.status_error(&url, status, &text).reason),
            },
        };
        outcomes.push(SendOutcome {
            path: h.path.clone(),
            sop_instance_uid: h.sop_instance.clone(),
            sop_class_uid: h.sop_class.clone(),
            status: Some(status),
            stored,
            detail,
        });
    }
    Ok(outcomes)
}
