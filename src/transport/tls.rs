//! The certificates the SMTP and IMAP clients trust: the public roots
//! (`webpki-roots`), plus the CA certificates of `PUEBLA_TLS_CA_FILE` when it is set
//! (a relay or mailbox behind an organisation's internal CA).

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::CertificateDer;
use tokio_rustls::rustls::RootCertStore;

/// CA certificates trusted in addition to the public roots; empty by default.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct ExtraRoots {
    /// The file they came from, for messages.
    source: Option<PathBuf>,
    certs: Vec<CertificateDer<'static>>,
}

impl std::fmt::Debug for ExtraRoots {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            None => f.write_str("ExtraRoots(none)"),
            Some(p) => write!(
                f,
                "ExtraRoots({}, {} certificates)",
                p.display(),
                self.certs.len()
            ),
        }
    }
}

impl ExtraRoots {
    /// Reads a PEM file of one or more CA certificates. A missing or unreadable file,
    /// one with no certificate, or one whose certificates cannot be used as roots is
    /// an error naming `PUEBLA_TLS_CA_FILE` and the path.
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let what = || format!("PUEBLA_TLS_CA_FILE (tls_ca_file) {}", path.display());
        let pem = std::fs::read(path).with_context(|| format!("{}: cannot read it", what()))?;
        let certs = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("{}: not a PEM file of certificates: {e:?}", what()))?;
        if certs.is_empty() {
            bail!(
                "{}: no certificate in it (expected PEM `-----BEGIN CERTIFICATE-----` blocks)",
                what()
            );
        }
        let mut store = RootCertStore::empty();
        for (i, cert) in certs.iter().enumerate() {
            store.add(cert.clone()).with_context(|| {
                format!("{}: certificate {} cannot be a trust anchor", what(), i + 1)
            })?;
        }
        Ok(Self {
            source: Some(path.to_path_buf()),
            certs,
        })
    }

    /// [`ExtraRoots::load`] when a file is named, none otherwise.
    pub fn from_option(path: Option<&Path>) -> anyhow::Result<Self> {
        path.map_or_else(|| Ok(Self::default()), Self::load)
    }

    pub fn is_empty(&self) -> bool {
        self.certs.is_empty()
    }

    /// The certificates, DER-encoded.
    pub fn certificates(&self) -> &[CertificateDer<'static>] {
        &self.certs
    }

    /// The public roots and these.
    pub fn root_store(&self) -> RootCertStore {
        let mut roots = RootCertStore::from_iter(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        // `load` checked that each one is accepted.
        let (_added, _ignored) = roots.add_parsable_certificates(self.certs.iter().cloned());
        roots
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_are_named_with_the_variable() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing.pem");
        let err = format!("{:#}", ExtraRoots::load(&missing).unwrap_err());
        assert!(
            err.contains("PUEBLA_TLS_CA_FILE") && err.contains("missing.pem"),
            "{err}"
        );
        let text = dir.path().join("ca.txt");
        std::fs::write(&text, "not a certificate\n").unwrap();
        let err = format!("{:#}", ExtraRoots::load(&text).unwrap_err());
        assert!(
            err.contains("PUEBLA_TLS_CA_FILE")
                && err.contains("ca.txt")
                && err.contains("no certificate"),
            "{err}"
        );
        let broken = dir.path().join("broken.pem");
        std::fs::write(
            &broken,
            "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
        )
        .unwrap();
        let err = format!("{:#}", ExtraRoots::load(&broken).unwrap_err());
        assert!(err.contains("broken.pem"), "{err}");
        assert!(ExtraRoots::from_option(None).unwrap().is_empty());
    }
}
