//! TLS against real servers, with a private CA (`PUEBLA_TLS_CA_FILE`): a CA and a
//! certificate for `localhost` and 127.0.0.1 are made at test time with the `openssl`
//! command-line tool (nothing is committed). The SMTP sink speaks implicit TLS and
//! STARTTLS with that certificate, and Dovecot listens on an imaps port with it.
//! With the CA trusted, notices are delivered and a reply is fetched; without it,
//! the handshake fails, nothing is marked sent, and the reply is not read.

use crate::common::{self, key};
use crate::engine::{hn, prepare, request, PPT};
use crate::imap::{append, engine_on, flags, reply, round_one, start_dovecot_tls, PASSWORD};
use crate::smtp_sink::{Script, SinkTls, SmtpSink};

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use puebla::clock::{Clock, SimulatedClock};
use puebla::config::Config;
use puebla::domain::CountryCode;
use puebla::engine::outbox::SendError;
use puebla::engine::ports::NoticeStatus;
use puebla::mail::message::Outgoing;
use puebla::transport::imap::ImapPoller;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A private CA and a server certificate it signed, in a temporary folder.
struct Pki {
    /// The CA certificate (what `PUEBLA_TLS_CA_FILE` names).
    ca: PathBuf,
    /// The server's certificate and key, for `localhost` and 127.0.0.1.
    cert: PathBuf,
    key: PathBuf,
    _dir: tempfile::TempDir,
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run `openssl` ({e}): the TLS tests make their certificates with it (Debian package `openssl`)")
        });
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Pki {
    fn generate() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("puebla-pki-")
            .tempdir()
            .expect("a temporary folder");
        let d = dir.path();
        std::fs::write(
            d.join("ca.cnf"),
            "[req]\nprompt = no\ndistinguished_name = dn\nx509_extensions = v3_ca\n\
             [dn]\nCN = Puebla Test Internal CA\nO = example.org\n\
             [v3_ca]\nbasicConstraints = critical,CA:TRUE\nkeyUsage = critical,keyCertSign,cRLSign\n\
             subjectKeyIdentifier = hash\n",
        )
        .unwrap();
        std::fs::write(
            d.join("server.cnf"),
            "[req]\nprompt = no\ndistinguished_name = dn\n[dn]\nCN = localhost\n\
             [v3_server]\nbasicConstraints = critical,CA:FALSE\n\
             keyUsage = critical,digitalSignature,keyEncipherment\nextendedKeyUsage = serverAuth\n\
             subjectAltName = DNS:localhost,IP:127.0.0.1\n",
        )
        .unwrap();
        let ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        let mut ca = vec!["req", "-x509", "-config", "ca.cnf", "-nodes"];
        ca.extend(ec);
        ca.extend(["-keyout", "ca.key", "-out", "ca.pem", "-days", "30"]);
        openssl(d, &ca);
        let mut csr = vec!["req", "-new", "-config", "server.cnf", "-nodes"];
        csr.extend(ec);
        csr.extend(["-keyout", "server.key", "-out", "server.csr"]);
        openssl(d, &csr);
        openssl(
            d,
            &[
                "x509",
                "-req",
                "-in",
                "server.csr",
                "-CA",
                "ca.pem",
                "-CAkey",
                "ca.key",
                "-set_serial",
                "2",
                "-days",
                "30",
                "-extfile",
                "server.cnf",
                "-extensions",
                "v3_server",
                "-out",
                "server.pem",
            ],
        );
        Self {
            ca: d.join("ca.pem"),
            cert: d.join("server.pem"),
            key: d.join("server.key"),
            _dir: dir,
        }
    }

    /// A TLS server with the server certificate (the SMTP sink's).
    fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        let chain = CertificateDer::pem_slice_iter(&std::fs::read(&self.cert).unwrap())
            .collect::<Result<Vec<_>, _>>()
            .expect("the server certificate");
        let key = PrivateKeyDer::from_pem_slice(&std::fs::read(&self.key).unwrap())
            .expect("the server key");
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("a server configuration");
        tokio_rustls::TlsAcceptor::from(Arc::new(config))
    }
}

/// The configuration from these environment variables, as the daemon loads it.
fn config(vars: &[(&str, String)]) -> Config {
    Config::load(None, |k| {
        vars.iter()
            .find(|(name, _)| *name == k)
            .map(|(_, v)| v.clone())
    })
    .expect("a valid configuration")
}

#[tokio::test]
async fn notices_reach_a_relay_with_a_private_ca_over_tls_only_when_the_ca_is_trusted() {
    let pki = Pki::generate();
    for starttls in [false, true] {
        let mode = if starttls { "STARTTLS" } else { "implicit TLS" };
        let sink = SmtpSink::start(Script {
            tls: Some(SinkTls {
                acceptor: pki.acceptor(),
                starttls,
            }),
            ..Script::default()
        })
        .await;
        let url = if starttls {
            format!("smtp://{}?tls=starttls&timeout=10", sink.addr)
        } else {
            format!("smtps://{}?timeout=10", sink.addr)
        };
        let store = puebla::store::connect(&common::fresh_sqlite_url(&common::test_dir()))
            .await
            .expect("store");
        let clock = Arc::new(SimulatedClock::new(hn(2027, 3, 22, 9, 0)));
        let engine = engine_on(store.clone(), clock.clone());
        prepare(&engine, &[]).await;
        let c = engine
            .start(request("TLS", "rcm-five-day"), PPT)
            .await
            .expect("start");
        let reference = c.reference.to_string();
        let notices = store.notices(Some(&key(&reference))).await.unwrap();
        assert!(!notices.is_empty(), "{mode}: the start made notices");

        // Without the CA: the public roots do not know it, the handshake fails, and
        // that is an unreachable server (retried), not a refused message.
        let untrusting = config(&[("PUEBLA_SMTP_URL", url.clone())]);
        let transport = puebla::app::transport(&untrusting).expect("transport");
        let outgoing = Outgoing::from_notice(&notices[0], &untrusting.mail_from).expect("build");
        match transport.send(&outgoing).await {
            Err(SendError::Unreachable(e)) => assert!(
                e.to_ascii_lowercase().contains("certificate"),
                "{mode}: {e}"
            ),
            other => panic!("{mode}: an unreachable server, not {other:?}"),
        }
        let worker = puebla::app::worker(
            &untrusting,
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            transport,
            "untrusting",
        );
        worker.drain().await.expect("drain");
        assert!(sink.received().is_empty(), "{mode}: nothing got through");
        for n in store.notices(Some(&key(&reference))).await.unwrap() {
            assert_ne!(n.status, NoticeStatus::Sent, "{mode}: {}", n.notice.kind);
        }
        let retried = store.notices(Some(&key(&reference))).await.unwrap();
        assert!(
            retried.iter().any(|n| n
                .last_error
                .as_deref()
                .is_some_and(|e| e.to_ascii_lowercase().contains("certificate"))),
            "{mode}: the handshake failure is recorded"
        );

        // With PUEBLA_TLS_CA_FILE naming the CA: every notice is delivered over TLS.
        let trusting = config(&[
            ("PUEBLA_SMTP_URL", url.clone()),
            ("PUEBLA_TLS_CA_FILE", pki.ca.display().to_string()),
        ]);
        assert_eq!(trusting.tls_ca_file.as_deref(), Some(pki.ca.as_path()));
        let worker = puebla::app::worker(
            &trusting,
            store.clone(),
            clock.clone() as Arc<dyn Clock>,
            puebla::app::transport(&trusting).expect("transport"),
            "trusting",
        );
        clock.advance(chrono::Duration::days(1));
        worker.drain().await.expect("drain");
        let sent = store.notices(Some(&key(&reference))).await.unwrap();
        for n in &sent {
            assert_eq!(n.status, NoticeStatus::Sent, "{mode}: {}", n.notice.kind);
        }
        let received = sink.received();
        assert_eq!(received.len(), sent.len(), "{mode}");
        assert!(received.iter().all(|r| r.tls), "{mode}: over TLS");
        let ids: Vec<String> = sent.iter().map(|n| n.notice.message_id.clone()).collect();
        for r in &received {
            let id = crate::smtp_sink::message_id(&r.data).expect("a Message-ID");
            assert!(ids.contains(&id), "{mode}: {id} in {ids:?}");
        }
    }
}

#[tokio::test]
async fn the_poller_reads_a_reply_over_imaps_only_when_the_private_ca_is_trusted() {
    let pki = Pki::generate();
    let user = "replies-tls@example.test";
    let dovecot = start_dovecot_tls(&[user], &pki.cert, &pki.key);
    let store = puebla::store::connect(&common::fresh_sqlite_url(&common::test_dir()))
        .await
        .expect("store");
    let clock = Arc::new(SimulatedClock::new(crate::imap::hn(2027, 3, 18, 9)));
    let engine = engine_on(store, clock.clone());
    let r = round_one(&engine).await;
    clock.set(crate::imap::hn(2027, 3, 22, 10));
    let raw = reply(&engine, &r, "MX", "Sin objeción.", "<mx-imaps@example.org>").await;
    append(dovecot.port, user, &raw).await;
    // The certificate names localhost: the poller checks the name it connects to.
    let url = format!(
        "imaps://{}:{PASSWORD}@localhost:{}/INBOX",
        user.replace('@', "%40"),
        dovecot.imaps_port
    );
    let mx = CountryCode::parse("MX").unwrap();

    // Without the CA: the handshake fails, clearly, and nothing is read or flagged.
    let untrusting = config(&[("PUEBLA_IMAP_URL", url.clone())]);
    let settings = puebla::app::imap_settings(&untrusting)
        .expect("settings")
        .expect("an IMAP URL");
    let poller = ImapPoller::new(engine.clone(), settings);
    let err = format!("{:#}", poller.poll_once().await.unwrap_err());
    assert!(
        err.contains("TLS handshake with localhost failed")
            && err.contains("PUEBLA_TLS_CA_FILE")
            && err.to_ascii_lowercase().contains("certificate"),
        "{err}"
    );
    assert!(!err.contains(PASSWORD), "{err}");
    assert!(poller.health().snapshot().failing());
    let c = engine.load(&r).await.unwrap().0;
    assert!(!c.rounds[0].answers.contains_key(&mx));
    let f = flags(dovecot.port, user).await;
    assert!(
        f.len() == 1 && !f[0].1.iter().any(|fl| fl.contains("Seen")),
        "not flagged: {f:?}"
    );

    // With PUEBLA_TLS_CA_FILE: the reply is fetched over imaps, counted and flagged.
    let trusting = config(&[
        ("PUEBLA_IMAP_URL", url),
        ("PUEBLA_TLS_CA_FILE", pki.ca.display().to_string()),
    ]);
    let settings = puebla::app::imap_settings(&trusting)
        .expect("settings")
        .expect("an IMAP URL");
    let poller = ImapPoller::new(engine.clone(), settings);
    let report = poller
        .poll_once()
        .await
        .expect("a pass over the mailbox over TLS");
    assert_eq!(report.fetched, 1);
    let c = engine.load(&r).await.unwrap().0;
    assert_eq!(c.rounds[0].answers[&mx].text, "Sin objeción.");
    let f = flags(dovecot.port, user).await;
    assert!(f[0].1.iter().any(|fl| fl.contains("Seen")), "{f:?}");
    drop(dovecot);
}

#[test]
fn a_ca_file_that_is_not_pem_stops_the_configuration_with_its_path() {
    let pki = Pki::generate();
    // The private key is PEM, but holds no certificate.
    for path in [pki.key.clone(), pki.ca.with_file_name("absent.pem")] {
        let err = format!(
            "{:#}",
            Config::load(None, |k| (k == "PUEBLA_TLS_CA_FILE")
                .then(|| path.display().to_string()))
            .unwrap_err()
        );
        assert!(
            err.contains("PUEBLA_TLS_CA_FILE") && err.contains(&path.display().to_string()),
            "{err}"
        );
    }
}
