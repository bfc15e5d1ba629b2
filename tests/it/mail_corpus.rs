//! The inbound corpus: realistic replies, auto-replies and bounces written for
//! these tests (`tests/fixtures/mail/*.eml`), each with its expectation in
//! `expected.toml`. Prints the accuracy per label and fails on any miss; then
//! fuzzes `inspect` with arbitrary bytes and mutated corpus messages, and runs
//! `puebla mail inspect --json` as an operator would.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;
use puebla::mail::inbound::{inspect, Inspection};
use serde::Deserialize;

use crate::daemon::Puebla;

#[derive(Debug, Deserialize)]
struct Manifest {
    message: Vec<Expectation>,
}

#[derive(Debug, Deserialize)]
struct Expectation {
    file: String,
    kind: String,
    position: Option<String>,
    ambiguous: bool,
    #[serde(default)]
    conditional: bool,
    text_contains: String,
    text_excludes: Option<String>,
    bounced_recipient: Option<String>,
    transient: bool,
    reference: Option<String>,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/mail")
}

fn manifest() -> Manifest {
    let path = corpus_dir().join("expected.toml");
    let text = std::fs::read_to_string(&path).expect("read expected.toml");
    toml::from_str(&text).expect("parse expected.toml")
}

fn corpus_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(corpus_dir())
        .expect("read the corpus folder")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "eml"))
        .collect();
    files.sort();
    files
}

/// Each label compared for one message: (label, ok, what was expected, what came out).
fn judge(e: &Expectation, i: &Inspection) -> Vec<(&'static str, bool, String, String)> {
    let text_ok = i.text.contains(&e.text_contains)
        && e.text_excludes
            .as_deref()
            .is_none_or(|x| !i.text.contains(x));
    vec![
        (
            "kind",
            i.kind.as_str() == e.kind,
            e.kind.clone(),
            i.kind.as_str().to_string(),
        ),
        (
            "position",
            i.position.map(|p| p.as_str().to_string()) == e.position,
            format!("{:?}", e.position),
            format!("{:?}", i.position.map(|p| p.as_str())),
        ),
        (
            "ambiguous",
            i.ambiguous == e.ambiguous,
            e.ambiguous.to_string(),
            i.ambiguous.to_string(),
        ),
        (
            "conditional",
            i.conditional == e.conditional,
            e.conditional.to_string(),
            i.conditional.to_string(),
        ),
        (
            "text",
            text_ok,
            format!(
                "contains {:?}, not {:?}",
                e.text_contains,
                e.text_excludes.as_deref().unwrap_or("")
            ),
            format!("{:?}", i.text),
        ),
        (
            "bounced_recipient",
            i.bounced_recipient == e.bounced_recipient,
            format!("{:?}", e.bounced_recipient),
            format!("{:?}", i.bounced_recipient),
        ),
        (
            "transient",
            i.transient == e.transient,
            e.transient.to_string(),
            i.transient.to_string(),
        ),
        (
            "reference",
            i.reference.as_ref().map(|r| r.to_string()) == e.reference,
            format!("{:?}", e.reference),
            format!("{:?}", i.reference.as_ref().map(|r| r.to_string())),
        ),
    ]
}

#[test]
fn corpus_meets_every_expectation() {
    let manifest = manifest();
    let files = corpus_files();
    assert!(
        files.len() >= 40,
        "the corpus must hold at least 40 messages, it holds {}",
        files.len()
    );
    let listed: Vec<&str> = manifest.message.iter().map(|e| e.file.as_str()).collect();
    for f in &files {
        let name = f.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(
            listed.contains(&name),
            "{name} has no entry in expected.toml"
        );
    }

    let mut tally: BTreeMap<&'static str, (usize, usize)> = BTreeMap::new();
    let mut misses = Vec::new();
    for e in &manifest.message {
        let raw = std::fs::read(corpus_dir().join(&e.file))
            .unwrap_or_else(|err| panic!("{}: {err}", e.file));
        let i = inspect(&raw);
        for (label, ok, want, got) in judge(e, &i) {
            let t = tally.entry(label).or_default();
            t.1 += 1;
            if ok {
                t.0 += 1;
            } else {
                misses.push(format!(
                    "{}: {label}: expected {want}, got {got} (reason: {})",
                    e.file, i.reason
                ));
            }
        }
    }
    println!("inbound corpus: {} messages", manifest.message.len());
    for (label, (ok, total)) in &tally {
        println!(
            "  {label:<18} {ok:>3}/{total:<3} {:>6.1}%",
            100.0 * *ok as f64 / *total as f64
        );
    }
    assert!(
        misses.is_empty(),
        "{} miss(es):\n{}",
        misses.len(),
        misses.join("\n")
    );
}

/// Fragments that steer random input towards the parser's interesting paths.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("\r\n".to_string()),
        Just("\n\n".to_string()),
        Just("Content-Type: multipart/mixed; boundary=\"b\"\r\n".to_string()),
        Just(
            "Content-Type: multipart/report; report-type=delivery-status; boundary=b\r\n"
                .to_string()
        ),
        Just("Content-Type: message/delivery-status\r\n".to_string()),
        Just("Content-Type: message/rfc822\r\n".to_string()),
        Just("Content-Type: text/html; charset=windows-1252\r\n".to_string()),
        Just("Content-Transfer-Encoding: base64\r\n".to_string()),
        Just("Content-Transfer-Encoding: quoted-printable\r\n".to_string()),
        Just("--b\r\n".to_string()),
        Just("--b--\r\n".to_string()),
        Just("Subject: =?utf-8?B?W1JDTS0yMDI2LTAwN10=?=\r\n".to_string()),
        Just("From: =?iso-8859-1?Q?Jos=E9?= <a@example.gob>\r\n".to_string()),
        Just("Return-Path: <>\r\n".to_string()),
        Just("Final-Recipient: rfc822; \r\nAction: delayed\r\nStatus: 4.".to_string()),
        Just("<blockquote><div id=\"divRplyFwdMsg\">&#x1F600;&#99999999;&".to_string()),
        Just("> On Mon, 2 Mar 2026 wrote:\r\n".to_string()),
        Just("De : \r\nEnvoyé : \r\nÀ : \r\n".to_string()),
        Just("NO OBJECIÓN".to_string()),
        "[ -~]{0,40}",
        "\\PC{0,20}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_never_panic(raw in prop::collection::vec(any::<u8>(), 0..4096)) {
        let _ = inspect(&raw);
    }

    #[test]
    fn mime_shaped_noise_never_panics(parts in prop::collection::vec(fragment(), 0..40)) {
        let _ = inspect(parts.concat().as_bytes());
    }

    #[test]
    fn mutated_corpus_messages_never_panic(
        pick in any::<prop::sample::Index>(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>(), 0u8..4), 1..24),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let files = corpus_files();
        let mut raw = std::fs::read(pick.get(&files)).expect("read a corpus file");
        for (at, byte, op) in edits {
            if raw.is_empty() {
                raw.push(byte);
                continue;
            }
            let at = at.index(raw.len());
            match op {
                0 => raw[at] = byte,
                1 => raw.insert(at, byte),
                2 => { raw.remove(at); }
                _ => {
                    // Duplicate a slice, as a broken relay might.
                    let end = (at + 64).min(raw.len());
                    let copy = raw[at..end].to_vec();
                    raw.splice(at..at, copy);
                }
            }
        }
        if truncate && !raw.is_empty() {
            raw.truncate(cut.index(raw.len()));
        }
        let _ = inspect(&raw);
    }
}

/// How long `mail inspect` may take.
const TIMEOUT: Duration = Duration::from_secs(120);

#[test]
fn cli_mail_inspect_json_has_exactly_the_contract_keys() {
    // A configuration that cannot load: `mail inspect` must not need it.
    let dir = tempfile::tempdir().expect("a temporary folder");
    let config = dir.path().join("puebla.toml");
    std::fs::write(&config, "this is = = not toml").expect("write a broken configuration");
    let file = corpus_dir().join("34-postfix-dsn-5.1.1-failed.eml");
    let file = file.to_str().expect("a UTF-8 path");
    let out = Puebla::new(dir.path(), &["mail", "inspect", "--json", file])
        .env("PUEBLA_CONFIG", &config)
        .run(TIMEOUT);
    let stdout = &out.stdout;
    assert!(out.status.success(), "{}\n{}", stdout, out.stderr);
    let json: serde_json::Value = serde_json::from_str(stdout).expect("JSON on stdout");
    let keys: Vec<&str> = json
        .as_object()
        .expect("a JSON object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut want = vec![
        "kind",
        "position",
        "ambiguous",
        "conditional",
        "text",
        "bounced_recipient",
        "transient",
        "reference",
    ];
    let mut got = keys.clone();
    want.sort_unstable();
    got.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(json["kind"], "bounce");
    assert_eq!(json["position"], serde_json::Value::Null);
    assert_eq!(json["ambiguous"], false);
    assert_eq!(json["conditional"], false);
    assert_eq!(json["bounced_recipient"], "pf.honduras@example.gob");
    assert_eq!(json["transient"], false);
    assert_eq!(json["reference"], "RCM-2026-007");
    assert!(json["text"].is_string());

    let reply = corpus_dir().join("02-outlook-windows-es-cp1252-sin-objecion.eml");
    let reply = reply.to_str().expect("a UTF-8 path");
    let out = Puebla::new(dir.path(), &["mail", "inspect", "--json", reply]).run(TIMEOUT);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["kind"], "reply");
    assert_eq!(json["position"], "no_objection");
    assert_eq!(json["text"], "SIN OBJECIÓN");
    assert_eq!(json["conditional"], false);
    assert_eq!(json["bounced_recipient"], serde_json::Value::Null);

    // Consent with a condition: comments, and "conditional" says why they block.
    let reply = corpus_dir().join("54-outlook-en-no-objection-subject-to.eml");
    let reply = reply.to_str().expect("a UTF-8 path");
    let out = Puebla::new(dir.path(), &["mail", "inspect", "--json", reply]).run(TIMEOUT);
    let json: serde_json::Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    assert_eq!(json["position"], "comments");
    assert_eq!(json["ambiguous"], false);
    assert_eq!(json["conditional"], true);
}

#[test]
fn cli_mail_inspect_explains_and_fails_on_a_missing_file() {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = corpus_dir().join("07-gmail-es-wrapped-attribution.eml");
    let file = file.to_str().expect("a UTF-8 path");
    let out = Puebla::new(dir.path(), &["mail", "inspect", file]).run(TIMEOUT);
    let stdout = &out.stdout;
    assert!(out.status.success());
    assert!(stdout.contains("position:   no_objection"), "{stdout}");
    assert!(stdout.contains("reason:"), "{stdout}");
    assert!(stdout.contains("--- trimmed"), "{stdout}");
    assert!(stdout.contains("escribió:"), "{stdout}");

    let out = Puebla::new(dir.path(), &["mail", "inspect", "/nonexistent/reply.eml"]).run(TIMEOUT);
    assert!(!out.status.success());
    let stderr = &out.stderr;
    assert!(
        stderr.contains("cannot read /nonexistent/reply.eml"),
        "{stderr}"
    );
}
