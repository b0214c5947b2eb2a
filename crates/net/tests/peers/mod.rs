//! Real PACS peers on loopback for the tests: DCMTK `dcmqrscp`, Orthanc (with its DICOMweb
//! plug-in) and pynetdicom's `qrscp`, each started from a temporary configuration on free high
//! ports and stopped by its PID when dropped; and a small synthetic study to load into them.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dokuei_dicom::synth::SyntheticCt;
use dokuei_net::DimseNode;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running peer, stopped (by its PID) when dropped.
pub struct Peer(pub Child);

impl Peer {
    pub fn kill(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn wait_for_port(port: u16, what: &str, child: &mut Child) {
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("{what} exited before listening: {status}");
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{what} did not listen on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: {e} (run `bash scripts/setup.sh --test`)"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Python of the reference venv (pynetdicom lives there).
pub fn venv_python() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = root.join(".dokuei/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash scripts/setup.sh --test`",
        python.display()
    );
    python
}

/// A synthetic study of two CT series: series 1 uncompressed (`slices` 64² slices), series 2
/// the same phantom compressed as JPEG-LS by DCMTK's `dcmcjpls` (so retrieves must keep the
/// stored transfer syntax). Returns (study UID, [(series UID, files)]).
pub struct Study {
    pub study_uid: String,
    pub series: Vec<(String, Vec<PathBuf>)>,
}

impl Study {
    pub fn files(&self) -> Vec<PathBuf> {
        self.series.iter().flat_map(|(_, f)| f.clone()).collect()
    }
}

pub fn study(dir: &Path, seed: u64, slices: usize) -> Study {
    study_of(dir, seed, slices, 64, true)
}

/// The same with `size`² slices, series 2 compressed or not.
pub fn study_of(dir: &Path, seed: u64, slices: usize, size: u16, compress: bool) -> Study {
    let ct = |series_number: i32| SyntheticCt {
        slices,
        rows: size,
        columns: size,
        seed,
        series_number,
        series_description: format!("Series {series_number}"),
        noise_hu: 8.0,
        ..SyntheticCt::default()
    };
    let one = ct(1).write(&dir.join("s1")).unwrap();
    let raw = ct(2).write(&dir.join("s2-raw")).unwrap();
    if !compress {
        return Study::of(vec![one, raw]);
    }
    let two_dir = dir.join("s2");
    std::fs::create_dir_all(&two_dir).unwrap();
    let mut two = Vec::new();
    for f in &raw {
        let out = two_dir.join(f.file_name().unwrap());
        run(Command::new("dcmcjpls").arg(f).arg(&out), "DCMTK dcmcjpls");
        two.push(out);
    }
    Study::of(vec![one, two])
}

impl Study {
    fn of(series: Vec<Vec<PathBuf>>) -> Study {
        use dicom_dictionary_std::tags;
        let uid = |f: &Path, tag: dicom_core::Tag| -> String {
            let obj = dicom_object::open_file(f).unwrap();
            obj.element(tag)
                .unwrap()
                .to_str()
                .unwrap()
                .trim_end_matches('\0')
                .to_string()
        };
        Study {
            study_uid: uid(&series[0][0], tags::STUDY_INSTANCE_UID),
            series: series
                .into_iter()
                .map(|files| (uid(&files[0], tags::SERIES_INSTANCE_UID), files))
                .collect(),
        }
    }
}

pub fn node(name: &str, called: &str, port: u16) -> DimseNode {
    DimseNode {
        name: name.into(),
        called_ae_title: called.into(),
        calling_ae_title: "DOKUEI".into(),
        host: "127.0.0.1".into(),
        port,
        tls: None,
    }
}

/// DCMTK `dcmqrscp` (AE title QRSCP) holding `files`; `move_destinations` are (AE title, port)
/// on 127.0.0.1.
pub fn dcmqrscp(
    dir: &Path,
    port: u16,
    files: &[PathBuf],
    move_destinations: &[(&str, u16)],
) -> Peer {
    let db = dir.join("db");
    std::fs::create_dir_all(&db).unwrap();
    let hosts: String = move_destinations
        .iter()
        .map(|(ae, p)| format!("{} = ({ae}, 127.0.0.1, {p})\n", ae.to_lowercase()))
        .collect();
    let cfg = dir.join("q.cfg");
    std::fs::write(
        &cfg,
        format!(
            "NetworkTCPPort = {port}\nMaxPDUSize = 16384\nMaxAssociations = 4\n\
             HostTable BEGIN\n{hosts}HostTable END\nVendorTable BEGIN\nVendorTable END\n\
             AETable BEGIN\nQRSCP {} RW (200, 1024mb) ANY\nAETable END\n",
            db.display()
        ),
    )
    .unwrap();
    if !files.is_empty() {
        run(
            Command::new("dcmqridx").arg(&db).args(files),
            "DCMTK dcmqridx",
        );
    }
    let mut child = Command::new("dcmqrscp")
        .arg("-c")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("DCMTK dcmqrscp (run `bash scripts/setup.sh --test`)");
    wait_for_port(port, "dcmqrscp", &mut child);
    Peer(child)
}

/// Orthanc with its DICOMweb plug-in: AE title ORTHANC, HTTP with Basic auth (user `dokuei`,
/// password `secret`), `move_destinations` registered as modalities. Storage in `dir`.
pub struct Orthanc {
    pub peer: Peer,
    pub http_port: u16,
    pub dicom_port: u16,
}

pub fn orthanc(dir: &Path, move_destinations: &[(&str, u16)]) -> Orthanc {
    let http_port = free_port();
    let dicom_port = std::iter::repeat_with(free_port)
        .find(|&p| p != http_port)
        .unwrap();
    let modalities: Vec<String> = move_destinations
        .iter()
        .map(|(ae, p)| format!("\"{}\": [\"{ae}\", \"127.0.0.1\", {p}]", ae.to_lowercase()))
        .collect();
    let plugin = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so";
    assert!(
        Path::new(plugin).exists(),
        "{plugin} is missing (Debian orthanc-dicomweb; run `bash scripts/setup.sh --test`)"
    );
    std::fs::create_dir_all(dir).unwrap();
    let cfg = dir.join("orthanc.json");
    std::fs::write(
        &cfg,
        format!(
            r#"{{
  "Name": "dokuei-test",
  "StorageDirectory": "{storage}",
  "IndexDirectory": "{storage}",
  "HttpPort": {http_port},
  "DicomPort": {dicom_port},
  "DicomAet": "ORTHANC",
  "RemoteAccessAllowed": false,
  "AuthenticationEnabled": true,
  "RegisteredUsers": {{ "dokuei": "secret" }},
  "DicomModalities": {{ {modalities} }},
  "DicomAlwaysAllowEcho": true,
  "DicomAlwaysAllowStore": true,
  "DicomAlwaysAllowFind": true,
  "DicomAlwaysAllowGet": true,
  "DicomAlwaysAllowMove": true,
  "DicomCheckCalledAet": true,
  "Plugins": ["{plugin}"],
  "DicomWeb": {{ "Enable": true, "Root": "/dicom-web/" }},
  "StableAge": 1
}}"#,
            storage = dir.join("storage").display(),
            modalities = modalities.join(", "),
        ),
    )
    .unwrap();
    let log = std::fs::File::create(dir.join("orthanc.log")).unwrap();
    let mut child = Command::new("/usr/sbin/Orthanc")
        .arg(&cfg)
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("Orthanc (Debian orthanc; run `bash scripts/setup.sh --test`)");
    wait_for_port(http_port, "Orthanc", &mut child);
    wait_for_port(dicom_port, "Orthanc", &mut child);
    Orthanc {
        peer: Peer(child),
        http_port,
        dicom_port,
    }
}

/// pynetdicom's `qrscp` (AE title QRSCP, from the reference venv); `move_destinations` as
/// (AE title, port) on 127.0.0.1.
pub fn pynetdicom_qrscp(dir: &Path, port: u16, move_destinations: &[(&str, u16)]) -> Peer {
    let mut ini = format!(
        "[DEFAULT]\nae_title: QRSCP\nport: {port}\nmax_pdu: 16382\nacse_timeout: 30\n\
         dimse_timeout: 30\nnetwork_timeout: 30\nbind_address: 127.0.0.1\n\
         instance_location: {}\ndatabase_location: {}\nlog_identifier: False\n",
        dir.join("instances").display(),
        dir.join("instances.sqlite").display()
    );
    for (ae, p) in move_destinations {
        ini.push_str(&format!("\n[{ae}]\naddress: 127.0.0.1\nport: {p}\n"));
    }
    let cfg = dir.join("qrscp.ini");
    std::fs::write(&cfg, ini).unwrap();
    // Its verbose log (qrscp.log) is what a failing test prints to say which side stalled.
    let log = std::fs::File::create(dir.join("qrscp.log")).unwrap();
    let mut child = Command::new(venv_python())
        .args(["-m", "pynetdicom", "qrscp", "-v", "-c"])
        .arg(&cfg)
        .current_dir(dir)
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("pynetdicom qrscp");
    wait_for_port(port, "pynetdicom qrscp", &mut child);
    Peer(child)
}

/// Sends files to a peer with DCMTK `dcmsend`, compressed files as they are (`-dn`: by default
/// dcmsend decompresses lossless files when the peer also accepts uncompressed).
pub fn dcmsend(called: &str, port: u16, calling: &str, files: &[PathBuf]) {
    run(
        Command::new("dcmsend")
            .args(["-dn", "-aet", calling, "-aec", called, "127.0.0.1"])
            .arg(port.to_string())
            .args(files),
        "DCMTK dcmsend",
    );
}

/// The transfer syntax a file is stored in.
pub fn transfer_syntax(path: &Path) -> String {
    dicom_object::open_file(path)
        .unwrap()
        .meta()
        .transfer_syntax()
        .trim_end_matches('\0')
        .to_string()
}

/// The SOP Instance UID of a file.
pub fn sop_instance(path: &Path) -> String {
    dicom_object::open_file(path)
        .unwrap()
        .meta()
        .media_storage_sop_instance_uid()
        .trim_end_matches('\0')
        .to_string()
}

/// The pixel data of a file, as stored (to compare what arrived with what was sent).
pub fn pixel_bytes(path: &Path) -> Vec<u8> {
    use dicom_dictionary_std::tags;
    let obj = dicom_object::open_file(path).unwrap();
    let e = obj.element(tags::PIXEL_DATA).unwrap();
    match e.value() {
        dicom_core::DicomValue::PixelSequence(seq) => seq.fragments().concat(),
        v => v.to_bytes().unwrap().to_vec(),
    }
}

// ----------------------------------------------------------------------------------------------
// A test CA made with openssl

pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA (`name`.key, `name`.crt).
pub fn ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=Dokuei test {name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// A certificate for `name` signed by CA `by`, valid for 127.0.0.1 and localhost.
pub fn signed(dir: &Path, name: &str, by: &str) {
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN={name}"),
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.csr"),
        ],
    );
    std::fs::write(
        dir.join(format!("{name}.ext")),
        "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth,clientAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            &format!("{name}.csr"),
            "-CA",
            &format!("{by}.crt"),
            "-CAkey",
            &format!("{by}.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &format!("{name}.ext"),
            "-out",
            &format!("{name}.crt"),
        ],
    );
}

/// TLS files of the test CA in `dir`: its `ca` certificate, and `client.crt`/`client.key` when
/// `client`.
pub fn tls_files(dir: &Path, ca: &str, client: bool) -> dokuei_net::TlsFiles {
    let file = |name: &str| dir.join(name).display().to_string();
    let mine = |name: &str| if client { file(name) } else { String::new() };
    dokuei_net::TlsFiles {
        ca_file: file(ca),
        certificate_file: mine("client.crt"),
        key_file: mine("client.key"),
    }
}

/// A running rsyslog (Debian's `rsyslogd`, with `rsyslog-gnutls`; its default 8 KiB message
/// limit, as a repository left at its defaults has) receiving syslog over TLS
/// (RFC 5425) on loopback with the certificate `server` of CA `ca` in `dir`, writing each message
/// it receives as one JSON line (priority, host, app, msgid, msg) to [`Rsyslog::received`].
/// `require_client_certificate`: clients must present a certificate of the same CA.
pub struct Rsyslog {
    pub port: u16,
    pub received: PathBuf,
    pub peer: Peer,
}

pub fn rsyslog(dir: &Path, require_client_certificate: bool) -> Rsyslog {
    rsyslog_on(dir, free_port(), require_client_certificate)
}

/// [`rsyslog`] on `port` (e.g. again on the port of one stopped); messages go to the same file.
pub fn rsyslog_on(dir: &Path, port: u16, require_client_certificate: bool) -> Rsyslog {
    let work = dir.join(format!("rsyslog-work-{port}"));
    std::fs::create_dir_all(&work).unwrap();
    let received = dir.join("received.jsonl");
    let file = |name: &str| dir.join(name).display().to_string();
    let config = format!(
        r#"global(workDirectory="{work}"
  parser.escapeControlCharactersOnReceive="off"
  defaultNetstreamDriver="gtls"
  defaultNetstreamDriverCAFile="{ca}"
  defaultNetstreamDriverCertFile="{cert}"
  defaultNetstreamDriverKeyFile="{key}")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="{auth}")
input(type="imtcp" port="{port}" address="127.0.0.1")
template(name="json" type="list") {{
  constant(value="{{\"pri\":\"") property(name="pri")
  constant(value="\",\"host\":\"") property(name="hostname" format="json")
  constant(value="\",\"app\":\"") property(name="app-name" format="json")
  constant(value="\",\"msgid\":\"") property(name="msgid" format="json")
  constant(value="\",\"msg\":\"") property(name="msg" format="json")
  constant(value="\"}}\n")
}}
*.* action(type="omfile" file="{out}" template="json")
"#,
        work = work.display(),
        ca = file("ca.crt"),
        cert = file("server.crt"),
        key = file("server.key"),
        auth = if require_client_certificate {
            "x509/certvalid"
        } else {
            "anon"
        },
        out = received.display(),
    );
    let conf = dir.join(format!("rsyslog-{port}.conf"));
    std::fs::write(&conf, config).unwrap();
    let mut child = Command::new("rsyslogd")
        .arg("-n")
        .arg("-f")
        .arg(&conf)
        .arg("-i")
        .arg(dir.join(format!("rsyslog-{port}.pid")))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join(format!("rsyslog-{port}.log"))).unwrap())
        .spawn()
        .expect(
            "rsyslogd (Debian's rsyslog and rsyslog-gnutls: run `bash scripts/setup.sh --test`)",
        );
    wait_for_port(port, "rsyslogd", &mut child);
    Rsyslog {
        port,
        received,
        peer: Peer(child),
    }
}

impl Rsyslog {
    /// The messages received so far, waiting up to `limit` for at least `n`.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<serde_json::Value> {
        let start = Instant::now();
        loop {
            let lines: Vec<serde_json::Value> = std::fs::read_to_string(&self.received)
                .unwrap_or_default()
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
            if lines.len() >= n || start.elapsed() > limit {
                return lines;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}
