//! TLS for DIMSE associations (dicom-ul's `sync-tls`, rustls with the ring provider): the node's
//! CA certificate(s), and optionally Dokuei's own certificate and key for peers that require one.

use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

/// PEM files for a TLS association.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default, specta::Type)]
#[serde(default)]
pub struct TlsFiles {
    /// The CA certificate(s) the node's certificate must chain to.
    pub ca_file: String,
    /// Dokuei's certificate and private key, for nodes that ask for one (empty: none).
    pub certificate_file: String,
    pub key_file: String,
}

fn certificates(path: &str, what: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("{what} {path}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{what} {path}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{what} {path}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// The client configuration for `files`.
pub(crate) fn client_config(files: &TlsFiles) -> Result<Arc<rustls::ClientConfig>, String> {
    client_config_with(files, None)
}

/// Without a certificate of our own: notes whether the server asked for one.
#[derive(Debug)]
struct NoteRequest(Arc<std::sync::atomic::AtomicBool>);

impl rustls::client::ResolvesClientCert for NoteRequest {
    fn resolve(
        &self,
        _hints: &[&[u8]],
        _schemes: &[rustls::SignatureScheme],
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        self.0.store(true, std::sync::atomic::Ordering::Relaxed);
        None
    }

    fn has_certs(&self) -> bool {
        true
    }
}

/// [`client_config`], and a flag set when the server asks for a client certificate and `files`
/// has none: for peers that close a connection they refuse without saying why (syslog).
pub(crate) fn client_config_noting_request(
    files: &TlsFiles,
) -> Result<
    (
        Arc<rustls::ClientConfig>,
        Arc<std::sync::atomic::AtomicBool>,
    ),
    String,
> {
    let flag = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let config = client_config_with(files, Some(flag.clone()))?;
    Ok((config, flag))
}

fn client_config_with(
    files: &TlsFiles,
    note_request: Option<Arc<std::sync::atomic::AtomicBool>>,
) -> Result<Arc<rustls::ClientConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for cert in certificates(&files.ca_file, "CA certificate file")? {
        roots
            .add(cert)
            .map_err(|e| format!("CA certificate file {}: {e}", files.ca_file))?;
    }
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots);
    let config = if files.certificate_file.is_empty() {
        match note_request {
            Some(flag) => builder.with_client_cert_resolver(Arc::new(NoteRequest(flag))),
            None => builder.with_no_client_auth(),
        }
    } else {
        let chain = certificates(&files.certificate_file, "certificate file")?;
        let key = PrivateKeyDer::from_pem_file(&files.key_file)
            .map_err(|e| format!("key file {}: {e}", files.key_file))?;
        builder.with_client_auth_cert(chain, key).map_err(|e| {
            format!(
                "certificate {} and key {}: {e}",
                files.certificate_file, files.key_file
            )
        })?
    };
    Ok(Arc::new(config))
}
