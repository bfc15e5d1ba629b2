//! The measuring corpora: replies written by people who never saw the reader's
//! rules (`tests/fixtures/measure/batch-*/`, each with `labels.toml` and a README
//! saying who wrote it and how). They measure whether the reader generalises; the
//! development corpus (`tests/fixtures/mail/`) only proves the rules it was written
//! with.
//!
//! The test prints, per batch and per label, how the replies were read, and fails on
//! a **dangerous misread**: a reply whose author meant anything but plain consent,
//! read as a plain `no_objection` (not `ambiguous`), so that an objection, a
//! condition, an edit, a reservation or a question would be recorded as consent; and,
//! stricter than that, an objection or a condition read as plain comments (neither
//! `ambiguous` nor `conditional`), which under the silence rule decides like consent
//! with nobody asked to look.
//! Accuracy is reported, not asserted: rules are never tuned to single messages of a
//! measuring batch (a fresh batch measures again).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use puebla::domain::consultation::Position;
use puebla::mail::inbound::{inspect, Inspection, Kind};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Labels {
    reply: Vec<Label>,
}

#[derive(Debug, Deserialize)]
struct Label {
    file: String,
    lang: String,
    label: String,
    why: String,
}

const LABELS: [&str; 7] = [
    "consent",
    "objection",
    "condition",
    "edits",
    "reservation",
    "question",
    "acknowledgement",
];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/measure")
}

fn batches() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("read tests/fixtures/measure")
        .map(|e| e.expect("a folder entry").path())
        .filter(|p| p.join("labels.toml").is_file())
        .collect();
    dirs.sort();
    dirs
}

/// How one reading compares with what its author meant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// Read as meant.
    Right,
    /// Held for a person (`ambiguous`) where the meaning was clear: safe, not right.
    Held,
    /// Read as something else, but not as plain consent.
    Wrong,
    /// Read as plain consent although the author did not consent plainly.
    Dangerous,
}

/// A plain `no_objection`: counted as consent with no flag for a person.
fn plain_consent(i: &Inspection) -> bool {
    i.kind == Kind::Reply && i.position == Some(Position::NoObjection) && !i.ambiguous
}

/// Plain comments: no person is asked to look, and silence decides over them.
fn plain_comments(i: &Inspection) -> bool {
    i.kind == Kind::Reply
        && i.position == Some(Position::Comments)
        && !i.ambiguous
        && !i.conditional
}

fn judge(label: &str, i: &Inspection) -> Verdict {
    if label != "consent" && plain_consent(i) {
        return Verdict::Dangerous;
    }
    if matches!(label, "objection" | "condition") && plain_comments(i) {
        return Verdict::Dangerous;
    }
    if i.kind != Kind::Reply {
        return Verdict::Wrong;
    }
    let right = match label {
        "consent" => plain_consent(i),
        "objection" => i.position == Some(Position::Objection),
        "condition" | "reservation" => {
            i.position == Some(Position::Comments) && !i.ambiguous && i.conditional
        }
        "edits" => i.position == Some(Position::Comments) && !i.ambiguous,
        // A question or an acknowledgement takes no position: a person must look.
        "question" | "acknowledgement" => i.ambiguous,
        other => panic!("unknown label {other}"),
    };
    match (right, i.ambiguous) {
        (true, _) => Verdict::Right,
        (false, true) => Verdict::Held,
        (false, false) => Verdict::Wrong,
    }
}

#[derive(Default)]
struct Tally {
    total: usize,
    right: usize,
    held: usize,
    wrong: usize,
    dangerous: usize,
}

impl Tally {
    fn add(&mut self, v: Verdict) {
        self.total += 1;
        match v {
            Verdict::Right => self.right += 1,
            Verdict::Held => self.held += 1,
            Verdict::Wrong => self.wrong += 1,
            Verdict::Dangerous => self.dangerous += 1,
        }
    }

    fn line(&self, name: &str) -> String {
        let pct = |n: usize| 100.0 * n as f64 / self.total.max(1) as f64;
        format!(
            "  {name:<16} {:>3} replies: right {:>3} ({:>5.1}%)  held for a person {:>3} ({:>5.1}%)  wrong {:>3}  dangerous {:>2}",
            self.total,
            self.right,
            pct(self.right),
            self.held,
            pct(self.held),
            self.wrong,
            self.dangerous
        )
    }
}

#[test]
fn independent_replies_are_never_read_as_consent_they_do_not_give() {
    let batches = batches();
    assert!(
        !batches.is_empty(),
        "no measuring batch under {}",
        root().display()
    );
    let mut dangerous = Vec::new();
    for dir in &batches {
        let text = std::fs::read_to_string(dir.join("labels.toml")).expect("read labels.toml");
        let labels: Labels = toml::from_str(&text)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.join("labels.toml").display()));
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .expect("read the batch folder")
            .map(|e| e.expect("a folder entry").file_name())
            .filter_map(|n| n.to_str().map(str::to_string))
            .filter(|n| n.ends_with(".eml"))
            .collect();
        files.sort();
        let listed: Vec<&str> = labels.reply.iter().map(|l| l.file.as_str()).collect();
        assert_eq!(
            files.len(),
            listed.len(),
            "{}: every .eml needs one entry in labels.toml",
            dir.display()
        );
        for f in &files {
            assert!(listed.contains(&f.as_str()), "{f} is not in labels.toml");
        }

        let mut by_label: BTreeMap<&str, Tally> = BTreeMap::new();
        let mut by_lang: BTreeMap<String, Tally> = BTreeMap::new();
        let mut all = Tally::default();
        for l in &labels.reply {
            assert!(
                LABELS.contains(&l.label.as_str()),
                "{}: label {}",
                l.file,
                l.label
            );
            let raw = std::fs::read(dir.join(&l.file)).expect("read a reply");
            let i = inspect(&raw);
            let v = judge(&l.label, &i);
            by_label.entry(l.label.as_str()).or_default().add(v);
            by_lang.entry(l.lang.clone()).or_default().add(v);
            all.add(v);
            if v == Verdict::Dangerous {
                dangerous.push(format!(
                    "{}/{} ({}: {}) read as {:?}{}: {}",
                    dir.file_name().unwrap_or_default().to_string_lossy(),
                    l.file,
                    l.label,
                    l.why,
                    i.position,
                    if i.conditional { " (conditional)" } else { "" },
                    i.reason
                ));
            }
        }
        println!(
            "measuring batch {}: {} replies",
            dir.file_name().unwrap_or_default().to_string_lossy(),
            all.total
        );
        for label in LABELS {
            if let Some(t) = by_label.get(label) {
                println!("{}", t.line(label));
            }
        }
        for (lang, t) in &by_lang {
            println!("{}", t.line(lang));
        }
        println!("{}", all.line("all"));
    }
    assert!(
        dangerous.is_empty(),
        "{} dangerous misread(s):\n{}",
        dangerous.len(),
        dangerous.join("\n")
    );
}
