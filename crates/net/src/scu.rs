//! Dokuei as a DIMSE SCU: C-FIND (study root), C-GET (receiving on the same association, SCP
//! role negotiated per storage class), C-MOVE (to Dokuei's own C-STORE SCP) and C-STORE (sending
//! files in the transfer syntax they are stored in).

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dicom_core::VR;
use dicom_dictionary_std::tags;
use dicom_ul::{ClientAssociation, ClientAssociationOptions};
use serde::{Deserialize, Serialize};

use crate::dimse::{
    Channel, Incoming, Message, command, decode_data, describe_status, encode_data, field,
    is_pending, put,
};
use crate::instance::{Header, Outgoing, StoredInstance};
use crate::query::{Level, Query, QueryRow};
use crate::scp::{Receiver, answer_store};
use crate::sop::{
    COMMON_STORAGE_CLASSES, EXPLICIT_VR_LE, IMPLICIT_VR_LE, STORAGE_TRANSFER_SYNTAXES,
    STUDY_ROOT_FIND, STUDY_ROOT_GET, STUDY_ROOT_MOVE, is_uncompressed,
};
use crate::{DimseNode, NetError, describe};

/// Time limits and retries for one node.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    /// For connecting and for each read or write.
    pub timeout: Duration,
    /// Attempts to connect when the node cannot be reached (1 = no retry); the wait doubles
    /// from `backoff` between attempts. A refused association is not retried.
    pub attempts: u32,
    pub backoff: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Timing {
            timeout: Duration::from_secs(30),
            attempts: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

/// An association over plain TCP or TLS.
pub(crate) enum Connection {
    Plain(ClientAssociation<TcpStream>),
    Tls(Box<ClientAssociation<dicom_ul::association::client::TlsStream>>),
}

/// Runs `$body` with `$a` bound to the association, whichever its stream (the body is compiled
/// for both).
macro_rules! on_association {
    ($connection:expr, |$a:ident| $body:block) => {
        match $connection {
            $crate::scu::Connection::Plain(mut $a) => $body,
            $crate::scu::Connection::Tls(boxed) => {
                let mut $a = *boxed;
                $body
            }
        }
    };
}
pub(crate) use on_association;

/// The streams an association runs on.
pub(crate) trait Stream:
    std::io::Read + std::io::Write + dicom_ul::association::CloseSocket + crate::dimse::Tcp
{
}
impl<S: std::io::Read + std::io::Write + dicom_ul::association::CloseSocket + crate::dimse::Tcp>
    Stream for S
{
}

/// Opens an association (over TLS when the node has TLS files), retrying with back-off while the
/// node is unreachable. A refused association or a failed TLS handshake is not retried.
pub(crate) fn associate(
    node: &DimseNode,
    timing: &Timing,
    configure: &dyn Fn(ClientAssociationOptions<'static>) -> ClientAssociationOptions<'static>,
) -> Result<Connection, NetError> {
    let tls = match &node.tls {
        Some(files) => Some(
            crate::tls::client_config(files)
                .map_err(|e| node.association_error(format!("TLS set-up: {e}")))?,
        ),
        None => None,
    };
    let mut wait = timing.backoff;
    let mut attempt = 1;
    loop {
        let options = configure(
            ClientAssociationOptions::new()
                .calling_ae_title(node.calling_ae_title.clone())
                .called_ae_title(node.called_ae_title.clone())
                .max_pdu_length(crate::MAX_PDU_LENGTH)
                .connection_timeout(timing.timeout)
                .read_timeout(timing.timeout)
                .write_timeout(timing.timeout),
        );
        let address = (node.host.as_str(), node.port);
        let result = match &tls {
            None => options.establish(address).map(Connection::Plain),
            Some(config) => options
                .tls_config(config.clone())
                .server_name(&node.host)
                .establish_tls(address)
                .map(|a| Connection::Tls(Box::new(a))),
        };
        match result {
            Ok(mut c) => {
                // Commands and responses go out at once.
                match &mut c {
                    Connection::Plain(a) => {
                        let _ = a.inner_stream().set_nodelay(true);
                    }
                    Connection::Tls(a) => {
                        let _ = a.inner_stream().sock.set_nodelay(true);
                    }
                }
                return Ok(c);
            }
            Err(e) => {
                let unreachable = matches!(e, dicom_ul::association::Error::Connect { .. });
                if !unreachable || attempt >= timing.attempts.max(1) {
                    let reason = describe(&e);
                    let rejected = matches!(e, dicom_ul::association::Error::Rejected { .. });
                    return Err(node.association_error(
                        if tls.is_some() && !unreachable && !rejected {
                            format!("TLS: {reason}")
                        } else {
                            reason
                        },
                    ));
                }
                std::thread::sleep(wait);
                wait *= 2;
                attempt += 1;
            }
        }
    }
}

/// Proposes a query/retrieve SOP class with the two uncompressed transfer syntaxes.
fn propose_qr(
    options: ClientAssociationOptions<'static>,
    sop_class: &str,
) -> ClientAssociationOptions<'static> {
    options.with_presentation_context(
        sop_class.to_string(),
        vec![EXPLICIT_VR_LE.to_string(), IMPLICIT_VR_LE.to_string()],
    )
}

/// The accepted presentation context for `sop_class` (`what` names it in the error when the
/// node refused it).
fn accepted_context<S: Stream>(
    association: &ClientAssociation<S>,
    node: &DimseNode,
    sop_class: &str,
    what: &str,
) -> Result<(u8, String), NetError> {
    association
        .presentation_contexts()
        .iter()
        .find(|c| {
            c.reason == dicom_ul::pdu::PresentationContextResultReason::Acceptance
                && c.abstract_syntax.trim_end_matches('\0') == sop_class
        })
        .map(|c| (c.id, c.transfer_syntax.trim_end_matches('\0').to_string()))
        .ok_or_else(|| node.association_error(format!("the node does not offer {what}")))
}

/// C-FIND at the query's level (Study Root). Answers past `limit` are cancelled.
pub fn find(node: &DimseNode, query: &Query, timing: &Timing) -> Result<Vec<QueryRow>, NetError> {
    query.check().map_err(|e| node.exchange_error(e))?;
    let connection = associate(node, timing, &|o| propose_qr(o, STUDY_ROOT_FIND))?;
    on_association!(connection, |association| {
        let (context, ts) =
            accepted_context(&association, node, STUDY_ROOT_FIND, "Study Root C-FIND")?;
        let result = find_on(&mut association, context, &ts, query);
        let _ = association.release();
        result.map_err(|e| node.exchange_error(e))
    })
}

fn find_on<S: Stream>(
    association: &mut ClientAssociation<S>,
    context: u8,
    ts: &str,
    query: &Query,
) -> Result<Vec<QueryRow>, String> {
    let mut channel = Channel::default();
    let mut rq = command(field::C_FIND_RQ, 1, STUDY_ROOT_FIND, true);
    put(&mut rq, tags::PRIORITY, VR::US, 0u16);
    let identifier = encode_data(&query.identifier(), ts)?;
    channel.send(association, context, &rq, Some(&identifier))?;
    let mut rows = Vec::new();
    let mut seen = 0usize;
    let mut keys = std::collections::HashSet::new();
    let mut cancelled = false;
    loop {
        let m = expect_message(channel.receive(association)?, "C-FIND")?;
        if m.field() != field::C_FIND_RSP {
            return Err(format!(
                "unexpected command 0x{:04X} during C-FIND",
                m.field()
            ));
        }
        let status = m.status().unwrap_or(0xC000);
        if !is_pending(status) {
            if status != 0 && status != 0xFE00 {
                return Err(format!("C-FIND {}", describe_status(status)));
            }
            break;
        }
        if let Some(data) = &m.data {
            // Some servers (pynetdicom's qrscp) answer a series-level query once per instance:
            // each study, series or instance is kept once.
            let row = QueryRow::from_object(&decode_data(data, ts)?);
            if keys.insert(row.key(query.level).to_string()) {
                seen += 1;
                if seen > query.offset && (query.limit == 0 || rows.len() < query.limit) {
                    rows.push(row);
                }
            }
        }
        if query.limit > 0 && rows.len() >= query.limit && !cancelled {
            channel.send(association, context, &cancel_rq(1), None)?;
            cancelled = true;
        }
    }
    Ok(rows)
}

fn cancel_rq(message_id: u16) -> dicom_object::InMemDicomObject {
    let mut rq = dicom_object::InMemDicomObject::new_empty();
    put(&mut rq, tags::COMMAND_FIELD, VR::US, field::C_CANCEL_RQ);
    put(
        &mut rq,
        tags::MESSAGE_ID_BEING_RESPONDED_TO,
        VR::US,
        message_id,
    );
    put(
        &mut rq,
        tags::COMMAND_DATA_SET_TYPE,
        VR::US,
        crate::dimse::NO_DATA_SET,
    );
    rq
}

fn expect_message(incoming: Incoming, during: &str) -> Result<Message, String> {
    match incoming {
        Incoming::Message(m) => Ok(m),
        Incoming::Released => Err(format!("the node released the association during {during}")),
        Incoming::Aborted => Err(format!("the node aborted the association during {during}")),
    }
}

/// What to retrieve: a study, or some of its series.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, specta::Type)]
pub struct RetrieveRequest {
    pub study_uid: String,
    /// Empty: every series of the study.
    pub series_uids: Vec<String>,
}

/// Progress of a retrieve, reported after each instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct Progress {
    pub series_uid: String,
    /// 0-based position of the series among those retrieved, and how many there are.
    #[specta(type = u32)]
    pub series_index: usize,
    #[specta(type = u32)]
    pub series_count: usize,
    pub series_instances_done: u32,
    pub series_instances_total: Option<u32>,
    pub instances_done: u32,
    pub instances_total: Option<u32>,
    #[specta(type = f64)]
    pub bytes: u64,
    pub seconds: f64,
    /// Estimated from the rate so far.
    pub seconds_left: Option<f64>,
    /// The series just finished (it can be opened while the rest arrives).
    pub series_complete: bool,
}

/// How one series went.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct SeriesOutcome {
    pub series_uid: String,
    pub expected: Option<u32>,
    pub received: u32,
    pub failed: u32,
    /// "success", or what went wrong (naming the node's status or the broken connection).
    pub status: String,
    pub complete: bool,
}

/// What a retrieve brought: everything that arrived is kept, even when it failed part way.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, specta::Type)]
pub struct RetrieveReport {
    pub study_uid: String,
    pub series: Vec<SeriesOutcome>,
    pub instances: Vec<StoredInstance>,
    #[specta(type = f64)]
    pub bytes: u64,
    pub seconds: f64,
    pub cancelled: bool,
}

impl SeriesOutcome {
    /// A series not retrieved yet.
    pub(crate) fn pending(series_uid: &str, expected: Option<u32>) -> SeriesOutcome {
        SeriesOutcome {
            series_uid: series_uid.to_string(),
            expected,
            received: 0,
            failed: 0,
            status: "not retrieved".into(),
            complete: false,
        }
    }
}

impl RetrieveReport {
    /// Nothing retrieved yet.
    pub(crate) fn empty(study_uid: &str) -> RetrieveReport {
        RetrieveReport {
            study_uid: study_uid.to_string(),
            series: Vec::new(),
            instances: Vec::new(),
            bytes: 0,
            seconds: 0.0,
            cancelled: false,
        }
    }

    pub fn complete(&self) -> bool {
        !self.cancelled && self.series.iter().all(|s| s.complete)
    }

    /// The series that did not arrive whole, with the reason (for the message and the retry).
    pub fn incomplete(&self) -> Vec<&SeriesOutcome> {
        self.series.iter().filter(|s| !s.complete).collect()
    }
}

/// The identifier of a series-level C-GET or C-MOVE.
fn series_identifier(study_uid: &str, series_uid: &str) -> dicom_object::InMemDicomObject {
    let mut identifier = dicom_object::InMemDicomObject::new_empty();
    put(
        &mut identifier,
        tags::QUERY_RETRIEVE_LEVEL,
        VR::CS,
        "SERIES",
    );
    put(&mut identifier, tags::STUDY_INSTANCE_UID, VR::UI, study_uid);
    put(
        &mut identifier,
        tags::SERIES_INSTANCE_UID,
        VR::UI,
        series_uid,
    );
    identifier
}

/// The series of `request` among those the node listed (all of them when none are named),
/// with their instance counts; a named series the node did not list is kept, count unknown.
pub(crate) fn choose_series(
    listed: &[QueryRow],
    request: &RetrieveRequest,
) -> Vec<(String, Option<u32>)> {
    let mut chosen: Vec<(String, Option<u32>)> = listed
        .iter()
        .filter(|s| request.series_uids.is_empty() || request.series_uids.contains(&s.series_uid))
        .map(|s| (s.series_uid.clone(), s.instance_count))
        .collect();
    for uid in &request.series_uids {
        if !chosen.iter().any(|(s, _)| s == uid) {
            chosen.push((uid.clone(), None));
        }
    }
    chosen
}

/// The series to retrieve with their expected instance counts, and the storage SOP classes.
type Plan = (Vec<(String, Option<u32>)>, Vec<String>);

/// The series to retrieve (all of the study's when none are named), with their sizes and the
/// storage SOP classes they hold, asked of the node by C-FIND.
fn plan(node: &DimseNode, request: &RetrieveRequest, timing: &Timing) -> Result<Plan, NetError> {
    // One association for all the queries.
    let connection = associate(node, timing, &|o| propose_qr(o, STUDY_ROOT_FIND))?;
    on_association!(connection, |association| {
        let (context, ts) =
            accepted_context(&association, node, STUDY_ROOT_FIND, "Study Root C-FIND")?;
        let planned = plan_on(&mut association, context, &ts, request);
        let _ = association.release();
        let (chosen, classes) = planned.map_err(|e| node.exchange_error(e))?;
        if chosen.is_empty() {
            return Err(node.exchange_error(format!(
                "the node holds no series of study {}",
                request.study_uid
            )));
        }
        Ok((chosen, classes))
    })
}

fn plan_on<S: Stream>(
    association: &mut ClientAssociation<S>,
    context: u8,
    ts: &str,
    request: &RetrieveRequest,
) -> Result<Plan, String> {
    let series = find_on(association, context, ts, &Query::study(&request.study_uid))?;
    let mut chosen = choose_series(&series, request);
    let mut classes: Vec<String> = Vec::new();
    for (series_uid, count) in chosen.iter_mut() {
        let query = Query {
            level: Level::Image,
            study_uid: request.study_uid.clone(),
            series_uid: series_uid.clone(),
            ..Query::default()
        };
        match find_on(association, context, ts, &query) {
            Ok(images) => {
                if count.is_none() {
                    *count = u32::try_from(images.len()).ok();
                }
                for i in images {
                    if !i.sop_class_uid.is_empty() && !classes.contains(&i.sop_class_uid) {
                        classes.push(i.sop_class_uid);
                    }
                }
            }
            // A node that does not answer image-level queries: propose the common classes.
            Err(_) => return Ok((chosen, Vec::new())),
        }
    }
    Ok((chosen, classes))
}

/// The storage presentation contexts for receiving `classes`: one per class and syntax, so
/// each instance can come in the syntax it is stored in (at most 127 contexts besides the
/// query's; with more classes, one context per class offering every syntax).
fn storage_contexts(classes: &[String]) -> Vec<(String, Vec<String>)> {
    let all: Vec<String> = STORAGE_TRANSFER_SYNTAXES
        .iter()
        .map(|s| s.to_string())
        .collect();
    let classes: Vec<String> = if classes.is_empty() {
        COMMON_STORAGE_CLASSES
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        classes.to_vec()
    };
    if classes.len() * all.len() <= 120 {
        classes
            .iter()
            .flat_map(|c| all.iter().map(move |t| (c.clone(), vec![t.clone()])))
            .collect()
    } else {
        classes
            .iter()
            .take(120)
            .map(|c| (c.clone(), all.clone()))
            .collect()
    }
}

struct Counter<'a> {
    started: Instant,
    total: Option<u32>,
    done: u32,
    bytes: u64,
    report: &'a mut dyn FnMut(&Progress),
}

impl Counter<'_> {
    fn tell(&mut self, series: &SeriesOutcome, index: usize, count: usize, complete: bool) {
        let seconds = self.started.elapsed().as_secs_f64();
        let seconds_left = self.total.and_then(|t| {
            (self.done > 0).then(|| seconds / self.done as f64 * t.saturating_sub(self.done) as f64)
        });
        (self.report)(&Progress {
            series_uid: series.series_uid.clone(),
            series_index: index,
            series_count: count,
            series_instances_done: series.received,
            series_instances_total: series.expected,
            instances_done: self.done,
            instances_total: self.total,
            bytes: self.bytes,
            seconds,
            seconds_left,
            series_complete: complete,
        });
    }
}

/// C-GET of a study or some of its series, one series after another, into `root/<study>/<series>/`.
/// Progress is reported after each instance; `cancel` stops it (C-CANCEL) and keeps what came.
/// A connection lost part way is not an error: the report names the series not complete.
pub fn get(
    node: &DimseNode,
    request: &RetrieveRequest,
    root: &Path,
    timing: &Timing,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<RetrieveReport, NetError> {
    let started = Instant::now();
    let (series, classes) = plan(node, request, timing)?;
    let contexts = storage_contexts(&classes);
    let connection = associate(node, timing, &|mut o| {
        o = propose_qr(o, STUDY_ROOT_GET);
        for (class, ts) in &contexts {
            o = o.with_presentation_context(class.clone(), ts.clone());
        }
        let mut roles: Vec<&String> = contexts.iter().map(|(c, _)| c).collect();
        roles.dedup();
        for class in roles {
            o = o.with_role_selection(class.clone(), false, true);
        }
        o
    })?;
    on_association!(connection, |association| {
        let (context, ts) =
            accepted_context(&association, node, STUDY_ROOT_GET, "Study Root C-GET")?;
        let mut report = RetrieveReport::empty(&request.study_uid);
        report.series = series
            .iter()
            .map(|(uid, expected)| SeriesOutcome::pending(uid, *expected))
            .collect();
        let mut counter = Counter {
            started,
            total: series.iter().map(|(_, n)| *n).sum(),
            done: 0,
            bytes: 0,
            report: progress,
        };
        let mut channel = Channel::default();
        let count = report.series.len();
        let mut broken = None;
        for index in 0..count {
            if cancel.load(Ordering::Relaxed) {
                report.cancelled = true;
                break;
            }
            let message_id = (index + 1) as u16;
            let outcome = get_series(
                &mut association,
                &mut channel,
                (context, &ts),
                message_id,
                request,
                root,
                index,
                count,
                &mut report,
                &mut counter,
                cancel,
            );
            if let Err(e) = outcome {
                report.series[index].status = node.exchange_error(e).to_string();
                broken = Some(index);
                break;
            }
        }
        if broken.is_none() {
            let _ = association.release();
        }
        report.bytes = counter.bytes;
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    })
}

#[allow(clippy::too_many_arguments)]
fn get_series<S: Stream>(
    association: &mut ClientAssociation<S>,
    channel: &mut Channel,
    (context, ts): (u8, &str),
    message_id: u16,
    request: &RetrieveRequest,
    root: &Path,
    index: usize,
    count: usize,
    report: &mut RetrieveReport,
    counter: &mut Counter<'_>,
    cancel: &AtomicBool,
) -> Result<(), String> {
    let series_uid = report.series[index].series_uid.clone();
    let identifier = series_identifier(&request.study_uid, &series_uid);
    let mut rq = command(field::C_GET_RQ, message_id, STUDY_ROOT_GET, true);
    put(&mut rq, tags::PRIORITY, VR::US, 0u16);
    channel.send(
        association,
        context,
        &rq,
        Some(&encode_data(&identifier, ts)?),
    )?;
    let mut cancelled = false;
    loop {
        let m = expect_message(channel.receive(association)?, "C-GET")?;
        match m.field() {
            field::C_STORE_RQ => {
                let (rsp, outcome) = answer_store(association, &m, root);
                channel.send(association, m.context, &rsp, None)?;
                let s = &mut report.series[index];
                match outcome {
                    Ok(stored) => {
                        s.received += 1;
                        counter.done += 1;
                        counter.bytes += stored.bytes;
                        report.instances.push(stored);
                    }
                    Err(e) => {
                        s.failed += 1;
                        s.status = e;
                    }
                }
                counter.tell(&report.series[index], index, count, false);
                if cancel.load(Ordering::Relaxed) && !cancelled {
                    channel.send(association, context, &cancel_rq(message_id), None)?;
                    cancelled = true;
                }
            }
            field::C_GET_RSP => {
                let status = m.status().unwrap_or(0xC000);
                let remaining = m.u16(tags::NUMBER_OF_REMAINING_SUBOPERATIONS);
                let s = &mut report.series[index];
                if let Some(r) = remaining {
                    let total = u32::from(r)
                        + u32::from(m.u16(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS).unwrap_or(0))
                        + u32::from(m.u16(tags::NUMBER_OF_FAILED_SUBOPERATIONS).unwrap_or(0))
                        + u32::from(m.u16(tags::NUMBER_OF_WARNING_SUBOPERATIONS).unwrap_or(0));
                    if s.expected.is_none() {
                        s.expected = Some(total);
                    }
                }
                if is_pending(status) {
                    continue;
                }
                let failed = u32::from(m.u16(tags::NUMBER_OF_FAILED_SUBOPERATIONS).unwrap_or(0));
                s.failed = s.failed.max(failed);
                if status == 0xFE00 {
                    report.cancelled = true;
                    s.status = "cancelled".into();
                } else if status == 0 || (status & 0xF000 == 0xB000 && failed == 0) {
                    // (A cancel that came too late to stop anything still ends in success.)
                    s.complete = s.failed == 0
                        && s.received > 0
                        && s.expected.is_none_or(|e| s.received >= e);
                    s.status = if s.complete {
                        "success".into()
                    } else {
                        format!(
                            "{} of {} instances arrived",
                            s.received,
                            s.expected.map_or("?".into(), |e| e.to_string())
                        )
                    };
                } else {
                    s.status = format!(
                        "C-GET {}: {} instances failed",
                        describe_status(status),
                        s.failed
                    );
                }
                counter.tell(
                    &report.series[index],
                    index,
                    count,
                    report.series[index].complete,
                );
                return Ok(());
            }
            other => return Err(format!("unexpected command 0x{other:04X} during C-GET")),
        }
    }
}

/// C-MOVE of a study or some of its series to Dokuei's own C-STORE SCP (`receiver`, which the
/// node must know under the receiver's AE title). Files land where the receiver stores them.
pub fn move_to(
    node: &DimseNode,
    request: &RetrieveRequest,
    receiver: &Receiver,
    timing: &Timing,
    progress: &mut dyn FnMut(&Progress),
    cancel: &AtomicBool,
) -> Result<RetrieveReport, NetError> {
    let started = Instant::now();
    let (series, _) = plan(node, request, timing)?;
    let connection = associate(node, timing, &|o| propose_qr(o, STUDY_ROOT_MOVE))?;
    on_association!(connection, |association| {
        let (context, ts) =
            accepted_context(&association, node, STUDY_ROOT_MOVE, "Study Root C-MOVE")?;
        let before = receiver.received_count();
        let mut report = RetrieveReport::empty(&request.study_uid);
        let mut counter = Counter {
            started,
            total: series.iter().map(|(_, n)| *n).sum(),
            done: 0,
            bytes: 0,
            report: progress,
        };
        let mut channel = Channel::default();
        let count = series.len();
        let mut broken = false;
        for (index, (series_uid, expected)) in series.iter().enumerate() {
            let mut outcome = SeriesOutcome::pending(series_uid, *expected);
            if cancel.load(Ordering::Relaxed) || broken {
                report.cancelled |= !broken;
                report.series.push(outcome);
                continue;
            }
            let message_id = (index + 1) as u16;
            let result = (|| -> Result<(), String> {
                let identifier = series_identifier(&request.study_uid, series_uid);
                let mut rq = command(field::C_MOVE_RQ, message_id, STUDY_ROOT_MOVE, true);
                put(&mut rq, tags::PRIORITY, VR::US, 0u16);
                put(&mut rq, tags::MOVE_DESTINATION, VR::AE, receiver.ae_title());
                channel.send(
                    &mut association,
                    context,
                    &rq,
                    Some(&encode_data(&identifier, &ts)?),
                )?;
                let mut cancelled = false;
                loop {
                    let m = expect_message(channel.receive(&mut association)?, "C-MOVE")?;
                    if m.field() != field::C_MOVE_RSP {
                        return Err(format!(
                            "unexpected command 0x{:04X} during C-MOVE",
                            m.field()
                        ));
                    }
                    let status = m.status().unwrap_or(0xC000);
                    let completed =
                        u32::from(m.u16(tags::NUMBER_OF_COMPLETED_SUBOPERATIONS).unwrap_or(0));
                    let failed =
                        u32::from(m.u16(tags::NUMBER_OF_FAILED_SUBOPERATIONS).unwrap_or(0));
                    let warned =
                        u32::from(m.u16(tags::NUMBER_OF_WARNING_SUBOPERATIONS).unwrap_or(0));
                    if let Some(r) = m.u16(tags::NUMBER_OF_REMAINING_SUBOPERATIONS) {
                        outcome
                            .expected
                            .get_or_insert(u32::from(r) + completed + failed + warned);
                    }
                    let delta = (completed + warned).saturating_sub(outcome.received);
                    outcome.received = completed + warned;
                    outcome.failed = failed;
                    counter.done += delta;
                    if is_pending(status) {
                        counter.tell(&outcome, index, count, false);
                        if cancel.load(Ordering::Relaxed) && !cancelled {
                            channel.send(
                                &mut association,
                                context,
                                &cancel_rq(message_id),
                                None,
                            )?;
                            cancelled = true;
                        }
                        continue;
                    }
                    if status == 0xFE00 {
                        report.cancelled = true;
                        outcome.status = "cancelled".into();
                    } else if status == 0 || (status & 0xF000 == 0xB000 && failed == 0) {
                        outcome.complete = failed == 0 && outcome.received > 0;
                        outcome.status = if outcome.complete {
                            "success".into()
                        } else {
                            "the node sent no instances".into()
                        };
                    } else {
                        outcome.status = format!(
                            "C-MOVE {}: {failed} instances failed",
                            describe_status(status)
                        );
                    }
                    counter.tell(&outcome, index, count, outcome.complete);
                    return Ok(());
                }
            })();
            if let Err(e) = result {
                outcome.status = node.exchange_error(e).to_string();
                broken = true;
            }
            report.series.push(outcome);
        }
        if !broken {
            let _ = association.release();
        }
        // The instances the receiver stored for this study since the move began.
        report.instances = receiver
            .received()
            .into_iter()
            .skip(before)
            .map(|r| r.instance)
            .filter(|i| i.study_uid == request.study_uid)
            .collect();
        report.bytes = report.instances.iter().map(|i| i.bytes).sum();
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    })
}

/// How one sent instance fared.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, specta::Type)]
pub struct SendOutcome {
    pub path: PathBuf,
    pub sop_instance_uid: String,
    pub sop_class_uid: String,
    /// The node's status (None: not sent, see `detail`).
    pub status: Option<u16>,
    pub stored: bool,
    pub detail: String,
}

/// C-STORE of files to a node, each in its stored transfer syntax (uncompressed files are
/// re-encoded when the node takes only the other uncompressed syntax; compressed files are never
/// transcoded: a node that refuses their syntax gets none and the outcome says so).
pub fn store(
    node: &DimseNode,
    files: &[PathBuf],
    timing: &Timing,
) -> Result<Vec<SendOutcome>, NetError> {
    // Headers only here; each file is read when its turn comes.
    let mut outgoing = Vec::new();
    let mut outcomes = Vec::new();
    for path in files {
        match Header::read(path) {
            Ok(h) => outgoing.push(h),
            Err(e) => outcomes.push(SendOutcome {
                path: path.clone(),
                sop_instance_uid: String::new(),
                sop_class_uid: String::new(),
                status: None,
                stored: false,
                detail: e,
            }),
        }
    }
    if outgoing.is_empty() {
        return Ok(outcomes);
    }
    let mut wanted: Vec<(String, String)> = Vec::new();
    for o in &outgoing {
        let mut pairs = vec![(o.sop_class.clone(), o.transfer_syntax.clone())];
        if is_uncompressed(&o.transfer_syntax) {
            for t in [EXPLICIT_VR_LE, IMPLICIT_VR_LE] {
                pairs.push((o.sop_class.clone(), t.to_string()));
            }
        }
        for p in pairs {
            if !wanted.contains(&p) {
                wanted.push(p);
            }
        }
    }
    if wanted.len() > 127 {
        return Err(node.exchange_error(format!(
            "{} SOP class and transfer syntax pairs are more than one association can carry; send fewer files at once",
            wanted.len()
        )));
    }
    let connection = associate(node, timing, &|mut o| {
        for (class, ts) in &wanted {
            o = o.with_presentation_context(class.clone(), vec![ts.clone()]);
        }
        o
    })?;
    on_association!(connection, |association| {
        let accepted: Vec<(u8, String, String)> = association
            .presentation_contexts()
            .iter()
            .filter(|c| c.reason == dicom_ul::pdu::PresentationContextResultReason::Acceptance)
            .map(|c| {
                (
                    c.id,
                    c.abstract_syntax.trim_end_matches('\0').to_string(),
                    c.transfer_syntax.trim_end_matches('\0').to_string(),
                )
            })
            .collect();
        let mut channel = Channel::default();
        let mut broken: Option<String> = None;
        for (n, o) in outgoing.iter().enumerate() {
            let mut outcome = SendOutcome {
                path: o.path.clone(),
                sop_instance_uid: o.sop_instance.clone(),
                sop_class_uid: o.sop_class.clone(),
                status: None,
                stored: false,
                detail: String::new(),
            };
            if let Some(reason) = &broken {
                outcome.detail = format!("not sent: {reason}");
                outcomes.push(outcome);
                continue;
            }
            let exact = accepted
                .iter()
                .find(|(_, c, t)| *c == o.sop_class && *t == o.transfer_syntax);
            let other = accepted.iter().find(|(_, c, t)| {
                *c == o.sop_class && is_uncompressed(t) && is_uncompressed(&o.transfer_syntax)
            });
            let file = match Outgoing::read(&o.path) {
                Ok(f) => f,
                Err(e) => {
                    outcome.detail = e;
                    outcomes.push(outcome);
                    continue;
                }
            };
            let (context, data) = match (exact, other) {
                (Some((id, _, _)), _) => (*id, std::borrow::Cow::Borrowed(file.data())),
                (None, Some((id, _, ts))) => match file.reencoded(ts) {
                    Ok(d) => (*id, std::borrow::Cow::Owned(d)),
                    Err(e) => {
                        outcome.detail = e;
                        outcomes.push(outcome);
                        continue;
                    }
                },
                (None, None) => {
                    outcome.detail = format!(
                        "the node accepts no presentation context for SOP class {} in transfer syntax {}",
                        o.sop_class, o.transfer_syntax
                    );
                    outcomes.push(outcome);
                    continue;
                }
            };
            let message_id = (n % 0xFFFF + 1) as u16;
            let mut rq = command(field::C_STORE_RQ, message_id, &o.sop_class, true);
            put(&mut rq, tags::PRIORITY, VR::US, 0u16);
            put(
                &mut rq,
                tags::AFFECTED_SOP_INSTANCE_UID,
                VR::UI,
                o.sop_instance.as_str(),
            );
            let exchange = channel
                .send(&mut association, context, &rq, Some(&data))
                .and_then(|()| expect_message(channel.receive(&mut association)?, "C-STORE"));
            match exchange {
                Ok(m) => {
                    let status = m.status().unwrap_or(0xC000);
                    outcome.status = Some(status);
                    outcome.stored = status == 0 || status & 0xF000 == 0xB000;
                    outcome.detail = describe_status(status);
                    if let Some(comment) = m.text(tags::ERROR_COMMENT) {
                        outcome.detail.push_str(": ");
                        outcome.detail.push_str(&comment);
                    }
                }
                Err(e) => {
                    let e = node.exchange_error(e).to_string();
                    outcome.detail = e.clone();
                    broken = Some(e);
                }
            }
            outcomes.push(outcome);
        }
        if broken.is_none() {
            let _ = association.release();
        }
        Ok(outcomes)
    })
}
