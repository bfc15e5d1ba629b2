//! The command line as an operator meets it: the real `puebla` binary, run in a fresh
//! temporary folder with its own SQLite file, workflows folder and outbox, judged by
//! its exit code, its JSON on standard output and its messages on standard error.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use serde_json::{json, Value};

use crate::daemon::{Output, Puebla};

/// The reply-token secret every `Cli` has unless a test unsets it.
const TEST_SECRET: &str = "a cli test secret, 32 bytes long!";

/// Starts a consultation whose Troika request goes to HN (a Troika member this
/// year) and returns what a bounce of the request to `email` needs: the notice's
/// signed envelope address, Message-ID and subject, read from the database.
fn a_notice_to(cli: &Cli, email: &str) -> (String, String, String) {
    let year = this_year();
    cli.ok(&["presidency", "set", &(year - 1).to_string(), "HN"]);
    cli.ok(&["presidency", "set", &year.to_string(), "MX"]);
    cli.ok(&["presidency", "set", &(year + 1).to_string(), "GT"]);
    cli.write("notice-text.md", "# Text\n\nOne paragraph.\n");
    cli.ok(&[
        "consultation",
        "start",
        "--title",
        "A text",
        "--text",
        "notice-text.md",
    ]);
    let db = format!("sqlite://{}/t.db", cli.path().display());
    let notice = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = puebla::store::connect(&db).await.expect("the database");
        store
            .notices(None)
            .await
            .unwrap()
            .into_iter()
            .find(|n| n.notice.recipient == email)
            .expect("a notice to the address")
    });
    let token = puebla::mail::token::TokenKey::new(TEST_SECRET.as_bytes())
        .mint(&puebla::mail::token::Token::Bounce(
            puebla::mail::token::BounceToken {
                notice_id: notice.id,
            },
        ))
        .unwrap();
    (
        puebla::mail::token::bounce_address("consultas@rcm-ts.example", &token),
        notice.notice.message_id,
        notice.notice.subject,
    )
}

/// A command that does not finish in this time is a hang, not a slow machine.
const TIMEOUT: Duration = Duration::from_secs(120);

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// One test's world: a temporary folder that is the binary's working directory.
struct Cli {
    dir: tempfile::TempDir,
    workflows: PathBuf,
    env: Vec<(String, String)>,
    runs: std::cell::Cell<u32>,
    /// A file given to the next run as its standard input.
    stdin: std::cell::RefCell<Option<PathBuf>>,
}

impl Cli {
    /// Runs against the shipped `workflows/`, with a reply-token secret (as every
    /// real installation has; see `unset_env` for a test without one).
    fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        Cli {
            dir,
            workflows: repo().join("workflows"),
            env: vec![("PUEBLA_TOKEN_SECRET".into(), TEST_SECRET.into())],
            runs: std::cell::Cell::new(0),
            stdin: std::cell::RefCell::new(None),
        }
    }

    /// Runs against a copy of `workflows/` in the temporary folder, free to be broken.
    fn with_workflow_copy() -> Self {
        let mut cli = Self::new();
        let copy = cli.path().join("wf");
        copy_dir(&repo().join("workflows"), &copy);
        cli.workflows = copy;
        cli
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn set_env(&mut self, key: &str, value: &str) {
        self.unset_env(key);
        self.env.push((key.to_string(), value.to_string()));
    }

    fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path().join(name);
        std::fs::write(&p, text).expect("write a test file");
        p
    }

    fn run(&self, args: &[&str]) -> Output {
        // Output goes to files rather than pipes, so a chatty command cannot block on a
        // full pipe while the test waits for it to exit.
        let n = self.runs.get();
        self.runs.set(n + 1);
        let mut puebla = Puebla::new(self.path(), args)
            .on_database(&format!("sqlite://{}/t.db", self.path().display()))
            .env("PUEBLA_WORKFLOWS", &self.workflows)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .name(&format!(".run-{n}"));
        if let Some(p) = self.stdin.borrow_mut().take() {
            puebla = puebla.stdin_file(p);
        }
        puebla.run(TIMEOUT)
    }

    /// Runs and insists on success.
    fn ok(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "`puebla {}` failed ({}):\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.status,
            out.stdout,
            out.stderr
        );
        out
    }

    /// Runs and insists on failure; the caller checks the message.
    fn fails(&self, args: &[&str]) -> Output {
        let out = self.run(args);
        assert!(
            !out.status.success(),
            "`puebla {}` should have failed:\nstdout:\n{}\nstderr:\n{}",
            args.join(" "),
            out.stdout,
            out.stderr
        );
        assert!(
            !out.stderr.trim().is_empty(),
            "`puebla {}` failed without a message",
            args.join(" ")
        );
        out
    }
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("create folder");
    for entry in std::fs::read_dir(from).expect("read folder") {
        let entry = entry.expect("folder entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy file");
        }
    }
}

/// Replaces the first `from` in `file` with `to`; returns the 1-based line it sits on.
fn break_file(file: &Path, from: &str, to: &str) -> usize {
    let text = std::fs::read_to_string(file).expect("read data file");
    let at = text
        .find(from)
        .unwrap_or_else(|| panic!("`{from}` not in {}", file.display()));
    let line = text[..at].matches('\n').count() + 1;
    std::fs::write(file, text.replacen(from, to, 1)).expect("write data file");
    line
}

fn assert_contains(haystack: &str, needles: &[&str]) {
    for needle in needles {
        assert!(
            haystack.contains(needle),
            "expected `{needle}` in:\n{haystack}"
        );
    }
}

/// The error line `puebla check` printed about `file` (named relative to the workflows copy).
fn check_error<'a>(stderr: &'a str, file: &str) -> &'a str {
    stderr
        .lines()
        .find(|l| l.starts_with("error: ") && l.contains(file))
        .unwrap_or_else(|| panic!("no error about {file} in:\n{stderr}"))
}

// ---------------------------------------------------------------------------------------
// puebla check

#[test]
fn check_accepts_the_shipped_workflows() {
    let cli = Cli::new();
    let out = cli.ok(&["check"]);
    assert_contains(
        &out.stdout,
        &["RCM (11 members)", "rcm-five-day", "silence"],
    );
    assert_contains(
        &out.stdout,
        &[
            "daily digest `0 8 * * 1-5` in America/Costa_Rica",
            "engine templates (digest, quarantine_notice, bounce_alert, oversized, confirmation_request, notice_failed)",
            "ok: reply tokens signed",
            "note: PUEBLA_TRUSTED_AUTHSERV_ID is not set",
        ],
    );
}

#[test]
fn check_names_a_bad_digest_schedule() {
    let mut cli = Cli::new();
    cli.set_env("PUEBLA_DIGEST_CRON", "0 0 8 * * 1-5");
    let out = cli.fails(&["check"]);
    assert_contains(
        &out.stderr,
        &["digest_cron", "`0 0 8 * * 1-5`", "expected 5"],
    );

    let mut cli = Cli::new();
    cli.set_env("PUEBLA_DIGEST_TZ", "America/San_Jose");
    let out = cli.fails(&["check"]);
    assert_contains(&out.stderr, &["`America/San_Jose`"]);
}

#[test]
fn check_renders_every_template_and_names_the_file_with_a_missing_variable() {
    let mut cli = Cli::new();
    let out = cli.ok(&["check"]);
    assert_contains(
        &out.stdout,
        &[
            "notice template(s)",
            "render in es, en and fr",
            "ok: the dashboard's and the answer page's templates and phrases",
        ],
    );

    let copy = cli.path().join("tpl");
    copy_dir(&repo().join("templates"), &copy);
    cli.set_env("PUEBLA_TEMPLATES", copy.to_str().unwrap());
    break_file(&copy.join("fr/outcome.txt.hbs"), "{{title}}", "{{titre}}");
    std::fs::remove_file(copy.join("es/reminder.html.hbs")).unwrap();
    let out = cli.fails(&["check"]);
    assert_contains(check_error(&out.stderr, "fr/outcome.txt.hbs"), &["titre"]);
    check_error(&out.stderr, "es/reminder.html.hbs");
}

#[test]
fn mail_preview_prints_a_notice_with_sample_data() {
    let cli = Cli::new();
    let out = cli.ok(&["mail", "preview", "round2_invitation", "--lang", "es"]);
    assert_contains(
        &out.stdout,
        &[
            "Subject: [RCM-2026-007] ",
            "lunes 7 de diciembre de 2026, 23:59 (hora de Tegucigalpa)",
            "SIN OBJECIÓN",
        ],
    );
    let out = cli.ok(&["mail", "preview", "outcome", "--lang", "fr", "--html"]);
    assert_contains(&out.stdout, &["<html lang=\"fr\">", "Texte adopté"]);
    let out = cli.fails(&["mail", "preview", "nonsense"]);
    assert_contains(&out.stderr, &["not a notice template"]);
}

#[test]
fn check_names_file_line_and_field_of_a_round_without_working_days() {
    let cli = Cli::with_workflow_copy();
    let line = break_file(
        &cli.workflows.join("rcm-five-day.toml"),
        "working_days = 5",
        "working_days = 0",
    );
    let out = cli.fails(&["check"]);
    let err = check_error(&out.stderr, "rcm-five-day.toml");
    assert_contains(
        err,
        &[
            &format!("rcm-five-day.toml:{line}:"),
            "`rounds[0].working_days`",
            "found 0",
        ],
    );
}

#[test]
fn check_names_an_unknown_template() {
    let cli = Cli::with_workflow_copy();
    let line = break_file(
        &cli.workflows.join("rcm-five-day.toml"),
        "template = \"troika_request\"",
        "template = \"troika_reqest\"",
    );
    let out = cli.fails(&["check"]);
    let err = check_error(&out.stderr, "rcm-five-day.toml");
    assert_contains(
        err,
        &[
            &format!("rcm-five-day.toml:{line}:"),
            "`troika_review.template`",
            "unknown template `troika_reqest`",
        ],
    );
}

#[test]
fn check_names_an_unknown_key() {
    let cli = Cli::with_workflow_copy();
    let line = break_file(
        &cli.workflows.join("silence.toml"),
        "end_of_day = ",
        "colour = \"red\"\nend_of_day = ",
    );
    let out = cli.fails(&["check"]);
    let err = check_error(&out.stderr, "silence.toml");
    assert_contains(
        err,
        &[&format!("silence.toml:{line}:"), "unknown field `colour`"],
    );
}

#[test]
fn check_names_the_line_of_a_toml_syntax_error() {
    let cli = Cli::with_workflow_copy();
    let line = break_file(
        &cli.workflows.join("silence.toml"),
        "name = \"Silence procedure (one round of five working days)\"",
        "name = \"Silence procedure",
    );
    let out = cli.fails(&["check"]);
    let err = check_error(&out.stderr, "silence.toml");
    // A syntax error has no field yet (the file did not parse); file and line are what
    // the TS needs to find it.
    assert_contains(err, &[&format!("silence.toml:{line}:"), "string"]);
}

#[test]
fn check_names_a_calendar_month_out_of_range() {
    let cli = Cli::with_workflow_copy();
    let line = break_file(
        &cli.workflows.join("calendars/hn.toml"),
        "month = 1\n",
        "month = 13\n",
    );
    let out = cli.fails(&["check"]);
    let err = check_error(&out.stderr, "hn.toml");
    assert_contains(
        err,
        &[
            &format!("calendars/hn.toml:{line}:"),
            "`holiday[0].month`",
            "month 13",
        ],
    );
}

#[test]
fn check_names_a_presidency_held_by_a_non_member() {
    let cli = Cli::with_workflow_copy();
    let line = break_file(
        &cli.workflows.join("rcm.toml"),
        "1996 = \"MX\"",
        "1996 = \"AR\"",
    );
    let out = cli.fails(&["check"]);
    let err = check_error(&out.stderr, "rcm.toml");
    assert_contains(
        err,
        &[
            &format!("rcm.toml:{line}:"),
            "`presidency.1996`",
            "AR is not a Member Country",
        ],
    );
}

#[test]
fn check_reports_errors_in_several_files_in_one_run() {
    let cli = Cli::with_workflow_copy();
    let proc_line = break_file(
        &cli.workflows.join("rcm-five-day.toml"),
        "working_days = 5",
        "working_days = 0",
    );
    let cal_line = break_file(
        &cli.workflows.join("calendars/hn.toml"),
        "month = 1\n",
        "month = 13\n",
    );
    let body_line = break_file(
        &cli.workflows.join("rcm.toml"),
        "1996 = \"MX\"",
        "1996 = \"AR\"",
    );
    let key_line = break_file(
        &cli.workflows.join("silence.toml"),
        "end_of_day = ",
        "colour = \"red\"\nend_of_day = ",
    );
    let out = cli.fails(&["check"]);
    assert_contains(
        &out.stderr,
        &[
            &format!("rcm-five-day.toml:{proc_line}:"),
            &format!("calendars/hn.toml:{cal_line}:"),
            &format!("rcm.toml:{body_line}:"),
            &format!("silence.toml:{key_line}:"),
            "error(s) in",
        ],
    );
}

// ---------------------------------------------------------------------------------------
// puebla calendar

#[test]
fn calendar_deadline_skips_holy_week_in_honduras() {
    let cli = Cli::new();
    let out = cli.ok(&[
        "calendar",
        "deadline",
        "--country",
        "HN",
        "--from",
        "2027-03-22T10:00",
        "--working-days",
        "5",
        "--json",
    ]);
    assert_eq!(
        out.json(),
        json!({
            "deadline": "2027-03-31T23:59:59-06:00",
            "working_days": ["2027-03-23", "2027-03-24", "2027-03-29", "2027-03-30", "2027-03-31"],
            "skipped": [
                {"date": "2027-03-25", "reason": "Maundy Thursday"},
                {"date": "2027-03-26", "reason": "Good Friday"},
                {"date": "2027-03-27", "reason": "Saturday"},
                {"date": "2027-03-28", "reason": "Sunday"},
            ],
        })
    );
}

#[test]
fn calendar_deadline_for_all_members_is_never_earlier() {
    let cli = Cli::new();
    let deadline = |policy: &str| {
        let v = cli
            .ok(&[
                "calendar",
                "deadline",
                "--country",
                "HN",
                "--from",
                "2027-03-22T10:00",
                "--working-days",
                "5",
                "--policy",
                policy,
                "--json",
            ])
            .json();
        assert_eq!(v["working_days"].as_array().map(Vec::len), Some(5), "{v}");
        DateTime::<FixedOffset>::parse_from_rfc3339(v["deadline"].as_str().expect("deadline"))
            .expect("an RFC 3339 deadline")
    };
    let presidency = deadline("presidency");
    let all = deadline("all_members");
    assert!(all >= presidency, "{all} is earlier than {presidency}");
}

#[test]
fn calendar_deadline_rejects_bad_input_clearly() {
    let cli = Cli::new();
    let args = |country: &'static str, from: &'static str| {
        [
            "calendar",
            "deadline",
            "--country",
            country,
            "--from",
            from,
            "--working-days",
            "5",
            "--json",
        ]
    };
    let out = cli.fails(&args("HN", "2027-03-22"));
    assert_contains(&out.stderr, &["--from `2027-03-22`", "2027-03-22T10:00"]);
    assert!(out.stdout.is_empty(), "{}", out.stdout);

    let out = cli.fails(&args("HN", "next tuesday"));
    assert_contains(&out.stderr, &["--from `next tuesday`"]);

    let out = cli.fails(&args("ZZ", "2027-03-22T10:00"));
    assert_contains(&out.stderr, &["ZZ", "not a Member Country"]);

    let out = cli.fails(&[
        "calendar",
        "deadline",
        "--country",
        "HN",
        "--from",
        "2027-03-22T10:00",
        "--working-days",
        "5",
        "--policy",
        "everyone",
    ]);
    assert_contains(&out.stderr, &["--policy `everyone`", "all_members"]);
}

#[test]
fn calendar_holidays_lists_dates_and_names() {
    let cli = Cli::new();
    let hn = cli
        .ok(&[
            "calendar",
            "holidays",
            "--country",
            "HN",
            "--year",
            "2027",
            "--json",
        ])
        .json();
    let list = hn.as_array().expect("a JSON array");
    assert!(list.len() >= 10, "{hn}");
    for h in list {
        let obj = h.as_object().expect("an object per holiday");
        let mut keys: Vec<&str> = obj.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["date", "name"], "{h}");
    }
    let has = |list: &[Value], date: &str, name: &str| {
        list.iter().any(|h| h["date"] == date && h["name"] == name)
    };
    assert!(has(list, "2027-03-25", "Maundy Thursday"), "{hn}");
    assert!(has(list, "2027-03-26", "Good Friday"), "{hn}");

    let us = cli
        .ok(&[
            "calendar",
            "holidays",
            "--country",
            "US",
            "--year",
            "2026",
            "--json",
        ])
        .json();
    let us = us.as_array().expect("a JSON array");
    assert!(
        us.iter().any(|h| h["date"] == "2026-07-03"
            && h["name"]
                .as_str()
                .is_some_and(|n| n.contains("Independence Day"))),
        "{us:?}"
    );

    let out = cli.fails(&["calendar", "holidays", "--country", "ZZ", "--year", "2027"]);
    assert_contains(&out.stderr, &["ZZ"]);
}

// ---------------------------------------------------------------------------------------
// puebla focal-points

fn focal_points(cli: &Cli, all: bool) -> Vec<Value> {
    let mut args = vec!["focal-points", "list", "--json"];
    if all {
        args.push("--all");
    }
    match cli.ok(&args).json() {
        Value::Array(rows) => rows,
        other => panic!("focal-points list --json is not an array: {other}"),
    }
}

fn find<'a>(rows: &'a [Value], email: &str) -> Option<&'a Value> {
    rows.iter().find(|r| r["email"] == email)
}

#[test]
fn focal_points_import_list_add_and_remove() {
    let cli = Cli::new();
    let example = repo().join("examples/focal-points.toml");
    let out = cli.ok(&[
        "focal-points",
        "import",
        example.to_str().expect("utf-8 path"),
    ]);
    assert_contains(&out.stdout, &["22 added"]);

    let rows = focal_points(&cli, false);
    assert_eq!(rows.len(), 22);
    assert!(rows.iter().all(|r| r["active"] == true), "{rows:?}");
    let bz = find(&rows, "fp1.bz@example.org").expect("fp1.bz listed");
    assert_eq!(bz["country"], "BZ");
    assert_eq!(bz["language"], "en");

    // Importing the same file again changes nothing.
    let out = cli.ok(&[
        "focal-points",
        "import",
        example.to_str().expect("utf-8 path"),
    ]);
    assert_contains(&out.stdout, &["0 added", "22 unchanged"]);

    // An observer country has no focal points; a bad address is refused.
    let out = cli.fails(&[
        "focal-points",
        "add",
        "--country",
        "AR",
        "--name",
        "Observer",
        "--email",
        "obs@example.org",
    ]);
    assert_contains(&out.stderr, &["AR", "not a Member Country"]);
    let out = cli.fails(&[
        "focal-points",
        "add",
        "--country",
        "HN",
        "--name",
        "Typo",
        "--email",
        "not-an-email",
    ]);
    assert_contains(&out.stderr, &["`not-an-email`", "email"]);
    assert_eq!(focal_points(&cli, true).len(), 22);

    cli.ok(&[
        "focal-points",
        "add",
        "--country",
        "HN",
        "--name",
        "Nueva Persona",
        "--email",
        "new.hn@example.org",
    ]);
    let rows = focal_points(&cli, false);
    assert_eq!(rows.len(), 23);
    let new = find(&rows, "new.hn@example.org").expect("the added focal point");
    assert_eq!(new["language"], "es", "the country's first language");

    let out = cli.ok(&["focal-points", "remove", "fp1.bz@example.org"]);
    assert_contains(&out.stdout, &["fp1.bz@example.org"]);
    let active = focal_points(&cli, false);
    assert!(find(&active, "fp1.bz@example.org").is_none(), "{active:?}");
    assert_eq!(active.len(), 22);
    let all = focal_points(&cli, true);
    let removed = find(&all, "fp1.bz@example.org").expect("kept for the record");
    assert_eq!(removed["active"], false);
    assert_eq!(all.len(), 23);

    let out = cli.fails(&["focal-points", "remove", "nobody@example.org"]);
    assert_contains(&out.stderr, &["nobody@example.org", "not found"]);
}

#[test]
fn focal_points_clear_bouncing_after_a_permanent_bounce() {
    let cli = Cli::new();
    let example = repo().join("examples/focal-points.toml");
    cli.ok(&[
        "focal-points",
        "import",
        example.to_str().expect("utf-8 path"),
    ]);
    let (envelope, _, subject) = a_notice_to(&cli, "fp1.hn@example.org");
    let dsn = cli.write(
        "dsn.eml",
        &String::from_utf8(puebla::mail::simulate::delivery_report_to(
            &envelope,
            "fp1.hn@example.org",
            &subject,
            "<not-returned@mx.example.org>",
            DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z")
                .unwrap()
                .into(),
            "<dsn-1@mx.example.org>",
            false,
        ))
        .unwrap(),
    );
    *cli.stdin.borrow_mut() = Some(dsn);
    let out = cli.ok(&["ingest"]);
    assert_contains(&out.stdout, &["marked bouncing"]);
    let bouncing = |cli: &Cli| {
        find(&focal_points(cli, false), "fp1.hn@example.org").map(|r| r["bouncing"].clone())
    };
    assert_eq!(bouncing(&cli), Some(json!(true)));

    let out = cli.ok(&[
        "focal-points",
        "clear-bouncing",
        "fp1.hn@example.org",
        "--actor",
        "ts:maria",
    ]);
    assert_contains(
        &out.stdout,
        &["cleared the bouncing mark", "fp1.hn@example.org"],
    );
    assert_eq!(bouncing(&cli), Some(json!(false)));
    assert!(!cli
        .ok(&["focal-points", "list", "--country", "HN"])
        .stdout
        .contains("(bouncing)"));

    // Again: allowed, and it says there was nothing to clear.
    let out = cli.ok(&["focal-points", "clear-bouncing", "fp1.hn@example.org"]);
    assert_contains(
        &out.stdout,
        &["was not marked bouncing", "fp1.hn@example.org"],
    );

    let out = cli.fails(&["focal-points", "clear-bouncing", "nobody@example.org"]);
    assert_contains(&out.stderr, &["nobody@example.org", "not found"]);
    let out = cli.fails(&["focal-points", "clear-bouncing", "not-an-email"]);
    assert_contains(&out.stderr, &["`not-an-email`", "email"]);

    // Both clearings are in the audit log, under their actors.
    let db = format!("sqlite://{}/t.db", cli.path().display());
    let audit = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = puebla::store::connect(&db)
            .await
            .expect("the CLI's database");
        store.audit_log(None).await.expect("the audit log")
    });
    let cleared: Vec<(&str, bool)> = audit
        .iter()
        .filter(|e| e.action == "focal_point.bouncing_cleared")
        .map(|e| {
            let d: Value = serde_json::from_str(&e.detail_json).unwrap();
            assert_eq!(d["email"], "fp1.hn@example.org");
            (e.actor.as_str(), d["was_bouncing"] == true)
        })
        .collect();
    assert_eq!(cleared, [("ts:maria", true), ("cli", false)]);
}

#[test]
fn focal_points_csv_import_and_its_errors() {
    let cli = Cli::new();
    let good = cli.write(
        "fp.csv",
        "country,name,email,language,active\n\
         HN,\"Pérez, Ana\",ana@example.org,es,true\n\
         CA,Jean Roy,jean@example.org,fr,\n\
         GT,Bob Inactive,bob@example.org,,false\n",
    );
    let out = cli.ok(&["focal-points", "import", good.to_str().expect("utf-8 path")]);
    assert_contains(&out.stdout, &["3 added"]);
    let all = focal_points(&cli, true);
    let ana = find(&all, "ana@example.org").expect("ana imported");
    assert_eq!(ana["name"], "Pérez, Ana");
    assert_eq!(ana["country"], "HN");
    assert_eq!(ana["active"], true);
    assert_eq!(
        find(&all, "jean@example.org").expect("jean")["language"],
        "fr"
    );
    let bob = find(&all, "bob@example.org").expect("bob imported");
    assert_eq!(bob["active"], false);
    assert_eq!(bob["language"], "es", "the country's first language");
    assert!(find(&focal_points(&cli, false), "bob@example.org").is_none());

    let bad = cli.write(
        "bad.csv",
        "country,name,email,language,active\n\
         HN,Carla Buena,carla@example.org,es,true\n\
         AR,Observer,obs@example.org,es,true\n\
         GT,Carl,carl-at-example.org,es,true\n",
    );
    let out = cli.fails(&["focal-points", "import", bad.to_str().expect("utf-8 path")]);
    let lines: Vec<&str> = out.stderr.lines().collect();
    let line_about = |needle: &str| {
        lines
            .iter()
            .find(|l| l.contains(needle))
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{}", out.stderr))
    };
    let row3 = line_about("bad.csv:3:");
    assert!(row3.starts_with("error: "), "{row3}");
    assert_contains(row3, &["`country`", "AR is not a Member Country"]);
    let row4 = line_about("bad.csv:4:");
    assert!(row4.starts_with("error: "), "{row4}");
    assert_contains(row4, &["`email`", "`carl-at-example.org`"]);
    assert_contains(&out.stderr, &["2 error(s)", "nothing imported"]);
    // A file with errors is not imported in part.
    assert!(find(&focal_points(&cli, true), "carla@example.org").is_none());
}

// ---------------------------------------------------------------------------------------
// puebla presidency

#[test]
fn presidency_set_and_show() {
    let cli = Cli::new();
    let out = cli.ok(&["presidency", "set", "2027", "HN"]);
    assert_contains(&out.stdout, &["2027", "HN"]);
    let t = cli.ok(&["presidency", "show", "2027", "--json"]).json();
    assert_eq!(t["year"], 2027);
    assert_eq!(t["current"], "HN");
    assert_eq!(t["upcoming"], Value::Null);

    // With the former PPT recorded and 2028 unset, the Troika is of two and says so.
    cli.ok(&["presidency", "set", "2026", "MX"]);
    let t = cli.ok(&["presidency", "show", "2027", "--json"]).json();
    assert_eq!(t["current"], "HN");
    assert_eq!(t["former"], "MX");
    assert_eq!(t["upcoming"], Value::Null);
    assert_eq!(t["members"], 2);
    let description = t["description"].as_str().expect("a description");
    assert_contains(description, &["of 2", "upcoming PPT not designated"]);

    let out = cli.fails(&["presidency", "set", "2027", "AR"]);
    assert_contains(&out.stderr, &["AR", "not a Member Country"]);
    let t = cli.ok(&["presidency", "show", "2027", "--json"]).json();
    assert_eq!(
        t["current"], "HN",
        "a refused change leaves the record alone"
    );

    let rotation = cli.ok(&["presidency", "show", "--json"]).json();
    assert_eq!(rotation["2016"], "HN", "the body file's rotation");
    assert_eq!(rotation["2027"], "HN", "the recorded one");

    let out = cli.fails(&["presidency", "show", "2031", "--json"]);
    assert_contains(&out.stderr, &["2031", "presidency set"]);
}

// ---------------------------------------------------------------------------------------
// puebla consultation, on the real clock

/// This year, as the system says it (the binary runs on the system clock).
fn this_year() -> i32 {
    let out = Command::new("date").arg("+%Y").output().expect("run date");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a year")
}

fn stage(cli: &Cli, reference: &str) -> String {
    let v = cli
        .ok(&["consultation", "show", reference, "--json"])
        .json();
    v["stage"].as_str().expect("a stage").to_string()
}

#[test]
fn consultation_lifecycle_through_the_cli() {
    let cli = Cli::new();
    let year = this_year();
    let (former, current, upcoming) = (
        (year - 1).to_string(),
        year.to_string(),
        (year + 1).to_string(),
    );
    cli.ok(&["presidency", "set", &former, "GT"]);
    cli.ok(&["presidency", "set", &current, "MX"]);
    cli.ok(&["presidency", "set", &upcoming, "HN"]);
    let example = repo().join("examples/focal-points.toml");
    cli.ok(&[
        "focal-points",
        "import",
        example.to_str().expect("utf-8 path"),
    ]);
    cli.write(
        "text.md",
        "# Regional guidelines\n\nThe Member Countries agree to share data.\n",
    );

    let out = cli.ok(&[
        "consultation",
        "start",
        "--title",
        "Regional guidelines",
        "--text",
        "text.md",
        "--year",
        &current,
    ]);
    let reference = format!("RCM-{year}-001");
    assert!(
        out.stdout.starts_with(&reference),
        "expected {reference}:\n{}",
        out.stdout
    );
    assert_eq!(stage(&cli, &reference), "troika_review");

    // Only the former and upcoming PPTs review; the PPT itself is refused by name.
    let out = cli.fails(&[
        "consultation",
        "troika",
        &reference,
        "--country",
        "MX",
        "--approve",
    ]);
    assert_contains(&out.stderr, &["MX", "Troika"]);
    cli.ok(&[
        "consultation",
        "troika",
        &reference,
        "--country",
        "GT",
        "--approve",
    ]);
    assert_eq!(stage(&cli, &reference), "troika_review");
    let out = cli.ok(&[
        "consultation",
        "troika",
        &reference,
        "--country",
        "HN",
        "--approve",
    ]);
    assert_contains(&out.stdout, &["member_input"]);
    // `show` lists the Troika's feedback, with who entered it.
    let shown = cli
        .ok(&["consultation", "show", &reference, "--json"])
        .json();
    let feedback = shown["troika_feedback"]
        .as_array()
        .expect("troika_feedback");
    assert_eq!(feedback.len(), 2, "{shown}");
    assert!(
        feedback
            .iter()
            .all(|f| f["approve"] == true && f["via"] == "staff" && f["late"] == false),
        "{shown}"
    );
    assert_contains(
        &cli.ok(&["consultation", "show", &reference]).stdout,
        &["Troika feedback:", "review 1  GT  APPROVES"],
    );

    cli.ok(&[
        "consultation",
        "record",
        &reference,
        "--country",
        "MX",
        "--position",
        "objection",
        "--text",
        "Paragraph 2 needs work",
        "--channel",
        "phone",
    ]);
    let out = cli.fails(&[
        "consultation",
        "record",
        &reference,
        "--country",
        "CR",
        "--position",
        "maybe",
    ]);
    assert_contains(&out.stderr, &["--position `maybe`"]);

    let shown = cli
        .ok(&["consultation", "show", &reference, "--json"])
        .json();
    assert_eq!(shown["reference"], reference.as_str());
    assert_eq!(shown["stage"], "member_input");
    assert_eq!(shown["round"], 1);
    let countries = shown["countries"].as_array().expect("countries");
    assert_eq!(countries.len(), 11, "every Member Country");
    let mx = countries
        .iter()
        .find(|c| c["country"] == "MX")
        .expect("MX listed");
    assert_eq!(mx["state"], "objection");
    assert_eq!(mx["text"], "Paragraph 2 needs work");
    let cr = countries
        .iter()
        .find(|c| c["country"] == "CR")
        .expect("CR listed");
    // Invited, not yet answered: the invitation waits in the outbox (no serve ran).
    assert_eq!(cr["state"], "notified");
    let actions: Vec<&str> = shown["timeline"]
        .as_array()
        .expect("a timeline")
        .iter()
        .map(|t| t["action"].as_str().expect("an action"))
        .collect();
    for action in ["consultation.created", "troika_feedback", "answer"] {
        assert!(
            actions.contains(&action),
            "{action} missing from {actions:?}"
        );
    }
    let before = shown["deadline"].as_str().expect("a deadline").to_string();

    let out = cli.ok(&[
        "consultation",
        "extend",
        &reference,
        "--working-days",
        "2",
        "--reason",
        "National holiday week",
    ]);
    // The PPT (Mexico, UTC-6 all year) reads its deadline at the end of its own day.
    assert_contains(&out.stdout, &["round 1 deadline", "T23:59:59-06:00"]);
    let after = cli
        .ok(&["consultation", "show", &reference, "--json"])
        .json();
    let after = after["deadline"].as_str().expect("a deadline").to_string();
    let parse = |s: &str| DateTime::parse_from_rfc3339(s).expect("an RFC 3339 deadline");
    assert!(parse(&after) > parse(&before), "{before} -> {after}");

    let out = cli.ok(&[
        "consultation",
        "withdraw",
        &reference,
        "--reason",
        "Superseded by the plenary",
    ]);
    assert_contains(&out.stdout, &["withdrawn"]);
    assert_eq!(stage(&cli, &reference), "withdrawn");

    let out = cli.fails(&["consultation", "revise", &reference, "--no-changes"]);
    assert_contains(&out.stderr, &["revise", "`withdrawn`"]);

    let open = cli.ok(&["consultation", "list", "--json"]).json();
    assert_eq!(open, json!([]), "a withdrawn consultation is not open");
    let all = cli.ok(&["consultation", "list", "--all", "--json"]).json();
    let row = all
        .as_array()
        .expect("a JSON array")
        .iter()
        .find(|r| r["reference"] == reference.as_str())
        .unwrap_or_else(|| panic!("{reference} not in {all}"));
    assert_eq!(row["stage"], "withdrawn");
    assert_eq!(row["title"], "Regional guidelines");

    let missing = format!("RCM-{year}-099");
    let out = cli.fails(&["consultation", "show", &missing]);
    assert_contains(&out.stderr, &["no consultation", &missing]);
    let out = cli.fails(&["consultation", "withdraw", &missing, "--reason", "x"]);
    assert_contains(&out.stderr, &[&missing]);
}

/// An answer in doubt holds the decision of a silence procedure whose deadline has
/// passed (set up on simulated time in the CLI's own database); `show` lists it and
/// `reclassify` reviews it, refusing an answer that is not the one named.
#[test]
fn show_lists_the_answer_in_doubt_and_reclassify_decides() {
    use chrono::TimeZone as _;
    use puebla::domain::consultation::{Answer, AnswerSource, Event, Position};
    use puebla::domain::CountryCode;

    let cli = Cli::new();
    let db = format!("sqlite://{}/t.db", cli.path().display());
    let start = chrono::Utc.with_ymd_and_hms(2025, 3, 3, 15, 0, 0).unwrap();
    let (reference, received) = tokio::runtime::Runtime::new().unwrap().block_on(async {
        let config = puebla::config::Config {
            database_url: db.clone(),
            workflows_dir: repo().join("workflows"),
            token_secret: Some("a cli test secret of some length".into()),
            ..puebla::config::Config::default()
        };
        let store = puebla::app::store(&config)
            .await
            .expect("the CLI's database");
        let clock = std::sync::Arc::new(puebla::clock::SimulatedClock::new(start));
        let engine = puebla::app::engine(
            &config,
            store,
            clock.clone() as std::sync::Arc<dyn puebla::clock::Clock>,
            puebla::app::catalog(&config).expect("the shipped workflows"),
        )
        .expect("an engine");
        crate::common::seed_directory(
            &engine,
            &[(2024, "GT"), (2025, "HN"), (2026, "MX")],
            |code| format!("fp.{}@example.org", code.to_ascii_lowercase()),
            "test:ts",
        )
        .await;
        let c = engine
            .start(
                puebla::engine::StartRequest {
                    title: "Held by a doubt".into(),
                    text: "# Text\n\n1. Paragraph.\n".into(),
                    procedure: "silence".into(),
                    year: Some(2025),
                    draft_only: false,
                    attachments: Vec::new(),
                },
                "ppt:hn",
            )
            .await
            .expect("start");
        let reference = c.reference.to_string();
        let at = start + chrono::Duration::hours(1);
        let answer = Answer {
            country: CountryCode::parse("MX").unwrap(),
            position: Position::Comments,
            text: "Lo estamos consultando.".into(),
            received_at: at,
            source: AnswerSource::Email {
                from: "fp.mx@example.org".into(),
                message_id: None,
            },
            ambiguous: true,
            round: None,
            conditional: false,
            reason: Some("an acknowledgement, not a position".into()),
            conflict: None,
            review: None,
        };
        engine
            .apply(
                &reference,
                Event::Answer { answer },
                "email:fp.mx@example.org",
            )
            .await
            .expect("the answer");
        clock.set(c.rounds[0].deadline + chrono::Duration::minutes(1));
        engine.tick().await.expect("the deadline fires");
        (reference, at)
    });
    assert_eq!(stage(&cli, &reference), "awaiting_decision");

    let shown = cli
        .ok(&["consultation", "show", &reference, "--json"])
        .json();
    let item = &shown["to_review"][0];
    assert_eq!(item["country"], "MX", "{shown}");
    assert_eq!(item["reasons"], json!(["ambiguous"]));
    assert_eq!(item["blocks_decision"], true);
    let text = cli.ok(&["consultation", "show", &reference]).stdout;
    assert_contains(
        &text,
        &[
            "awaiting a decision",
            "MX  comments",
            "(ambiguous)",
            "read as: an acknowledgement, not a position",
        ],
    );

    // A review naming another answer than the one recorded is refused.
    let wrong = (received - chrono::Duration::minutes(5)).to_rfc3339();
    let out = cli.fails(&[
        "consultation",
        "reclassify",
        &reference,
        "--round",
        "1",
        "--country",
        "MX",
        "--position",
        "comments",
        "--received-at",
        &wrong,
    ]);
    assert_contains(&out.stderr, &["look at it again"]);
    assert_eq!(stage(&cli, &reference), "awaiting_decision");

    let out = cli.ok(&[
        "consultation",
        "reclassify",
        &reference,
        "--round",
        "1",
        "--country",
        "MX",
        "--position",
        "comments",
        "--received-at",
        &received.to_rfc3339(),
    ]);
    assert_contains(
        &out.stdout,
        &[
            "MX's answer in round 1 confirmed as comments",
            "stage adopted",
        ],
    );
    let shown = cli
        .ok(&["consultation", "show", &reference, "--json"])
        .json();
    assert_eq!(shown["to_review"], json!([]));
    let review = shown["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "reclassify")
        .expect("the review is in the timeline")
        .clone();
    assert_eq!(review["actor"], "cli");
    assert_eq!(review["detail"]["was"], "comments");
}

#[test]
fn consultation_start_with_attach_mails_the_same_bytes_and_show_lists_them() {
    let cli = Cli::new();
    let year = this_year();
    for (y, c) in [(year - 1, "GT"), (year, "MX"), (year + 1, "HN")] {
        cli.ok(&["presidency", "set", &y.to_string(), c]);
    }
    let example = repo().join("examples/focal-points.toml");
    cli.ok(&[
        "focal-points",
        "import",
        example.to_str().expect("utf-8 path"),
    ]);
    cli.write("text.md", "# Guidelines\n\n1. Share data.\n");
    let pdf = crate::attachments::pdf_bytes();
    let pdf_path = cli.path().join("Propuesta final.pdf");
    std::fs::write(&pdf_path, &pdf).expect("write the PDF");
    let annex = cli.write("annex.csv", "country,contact\nHN,fp@example.org\n");
    let sha = puebla::domain::attachment::sha256_hex(&pdf);

    // A file that is not there, and the same content twice, are refused by name.
    let out = cli.fails(&[
        "consultation",
        "start",
        "--title",
        "T",
        "--text",
        "text.md",
        "--attach",
        "missing.pdf",
    ]);
    assert_contains(&out.stderr, &["missing.pdf"]);
    let out = cli.fails(&[
        "consultation",
        "start",
        "--title",
        "T",
        "--text",
        "text.md",
        "--attach",
        "annex.csv",
        "--attach",
        annex.to_str().unwrap(),
    ]);
    assert_contains(
        &out.stderr,
        &[
            "attachment 2 (annex.csv)",
            "already attached as `annex.csv`",
        ],
    );

    let out = cli.ok(&[
        "consultation",
        "start",
        "--title",
        "With files",
        "--text",
        "text.md",
        "--attach",
        pdf_path.to_str().unwrap(),
        "--attach",
        "annex.csv",
    ]);
    let reference = format!("RCM-{year}-001");
    assert_contains(
        &out.stdout,
        &[&reference, "attached Propuesta final.pdf", &sha],
    );
    let shown = cli
        .ok(&["consultation", "show", &reference, "--json"])
        .json();
    let files = shown["attachments"].as_array().expect("attachments");
    assert_eq!(files.len(), 2);
    assert_eq!(files[0]["filename"], "Propuesta final.pdf");
    assert_eq!(files[0]["size"], pdf.len());
    assert_eq!(files[0]["sha256"], sha.as_str());
    assert_eq!(files[0]["content_type"], "application/pdf");
    assert_eq!(files[1]["content_type"], "text/csv; charset=utf-8");
    let text = cli.ok(&["consultation", "show", &reference]).stdout;
    assert_contains(&text, &["attachments:", "Propuesta final.pdf", &sha]);

    for country in ["GT", "HN"] {
        cli.ok(&[
            "consultation",
            "troika",
            &reference,
            "--country",
            country,
            "--approve",
        ]);
    }
    // Send what the outbox holds with the file transport, as `serve` would.
    let outbox = cli.path().join("outbox");
    let db = format!("sqlite://{}/t.db", cli.path().display());
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = puebla::store::connect(&db)
            .await
            .expect("the CLI's database");
        let config = puebla::config::Config::default();
        puebla::app::worker(
            &config,
            store,
            std::sync::Arc::new(puebla::clock::SystemClock),
            std::sync::Arc::new(puebla::engine::outbox::FileTransport::new(&outbox)),
            "test",
        )
        .drain()
        .await
        .expect("the outbox drains");
    });
    let mailed = crate::attachments::attachments_in_mail(&outbox, "round_invitation");
    let with_pdf: Vec<_> = mailed
        .iter()
        .filter(|(_, name, hash)| name == "Propuesta final.pdf" && *hash == sha)
        .collect();
    assert!(
        with_pdf.len() >= 11,
        "every member's invitation carries the PDF: {mailed:?}"
    );
    assert!(mailed.iter().any(|(_, name, _)| name == "annex.csv"));
    let troika = crate::attachments::attachments_in_mail(&outbox, "troika_request");
    assert!(troika
        .iter()
        .any(|(_, name, hash)| name == "Propuesta final.pdf" && *hash == sha));
}

#[test]
fn consultation_start_without_a_presidency_says_what_to_do() {
    let cli = Cli::new();
    cli.write("text.md", "Text.\n");
    let out = cli.fails(&[
        "consultation",
        "start",
        "--title",
        "T",
        "--text",
        "text.md",
        "--year",
        "2031",
    ]);
    assert_contains(&out.stderr, &["2031", "presidency set"]);
    let out = cli.fails(&[
        "consultation",
        "start",
        "--title",
        "T",
        "--text",
        "missing.md",
        "--year",
        "2031",
    ]);
    assert_contains(&out.stderr, &["missing.md"]);
}

// ---------------------------------------------------------------------------------------
// puebla ingest, quarantine, inbound

#[test]
fn ingest_stores_a_message_from_stdin_and_the_ts_sees_the_quarantine() {
    let cli = Cli::new();
    let example = repo().join("examples/focal-points.toml");
    cli.ok(&[
        "focal-points",
        "import",
        example.to_str().expect("utf-8 path"),
    ]);
    let ingest = |cli: &Cli, name: &str, text: &str| {
        *cli.stdin.borrow_mut() = Some(cli.write(name, text));
        cli.run(&["ingest"])
    };

    // A message that names no consultation: stored and quarantined, exit 0.
    let stray = "From: Someone <someone@example.net>\r\nTo: consultas@rcm-ts.example\r\n\
Subject: Hola\r\nMessage-ID: <stray-1@example.net>\r\n\r\nSin objecion.\r\n";
    let out = ingest(&cli, "stray.eml", stray);
    assert!(out.status.success(), "{}", out.stderr);
    assert_contains(
        &out.stdout,
        &["quarantined", "not a focal point of any Member Country"],
    );
    let out = ingest(&cli, "stray.eml", stray);
    assert!(out.status.success(), "{}", out.stderr);
    assert_contains(&out.stdout, &["already received"]);

    let q = cli.ok(&["quarantine", "list", "--json"]).json();
    let q = q.as_array().expect("a JSON array");
    assert_eq!(q.len(), 1, "{q:?}");
    assert_eq!(q[0]["sender"], "someone@example.net");
    assert_eq!(q[0]["status"], "quarantined");
    let id = q[0]["id"].as_i64().expect("an id").to_string();
    let show = cli.ok(&["inbound", "show", &id]);
    assert_contains(
        &show.stdout,
        &[
            "quarantined",
            "Message-ID: <stray-1@example.net>",
            "not a focal point of any Member Country",
        ],
    );
    let out = cli.fails(&["quarantine", "release", &id, "--country", "HN"]);
    assert_contains(&out.stderr, &["--reference"]);
    cli.ok(&[
        "quarantine",
        "discard",
        &id,
        "--reason",
        "not from a focal point",
    ]);
    assert_eq!(cli.ok(&["quarantine", "list", "--json"]).json(), json!([]));
    let discarded = cli
        .ok(&["inbound", "list", "--status", "discarded", "--json"])
        .json();
    assert_eq!(discarded.as_array().map(Vec::len), Some(1));

    // A report claiming a bounce that refers to no notice changes nothing.
    let forged = String::from_utf8(puebla::mail::simulate::delivery_report(
        "fp1.hn@example.org",
        "[RCM-2026-001] x",
        "<n@rcm-ts.example>",
        DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z")
            .unwrap()
            .into(),
        "<dsn-0@mx.example.org>",
        false,
    ))
    .unwrap();
    let out = ingest(&cli, "forged.eml", &forged);
    assert_contains(
        &out.stdout,
        &["quarantined", "kept for the TS, nothing marked"],
    );
    assert_eq!(
        find(&focal_points(&cli, false), "fp1.hn@example.org").map(|r| &r["bouncing"]),
        Some(&json!(false))
    );

    // A permanent bounce of a notice (its Message-ID returned) marks the focal
    // point bouncing in the directory.
    let (_, message_id, subject) = a_notice_to(&cli, "fp1.hn@example.org");
    let dsn = String::from_utf8(puebla::mail::simulate::delivery_report(
        "fp1.hn@example.org",
        &subject,
        &message_id,
        DateTime::parse_from_rfc3339("2026-11-02T10:00:00Z")
            .unwrap()
            .into(),
        "<dsn-1@mx.example.org>",
        false,
    ))
    .unwrap();
    let out = ingest(&cli, "dsn.eml", &dsn);
    assert_contains(&out.stdout, &["bounce", "marked bouncing"]);
    let rows = focal_points(&cli, false);
    assert_eq!(
        find(&rows, "fp1.hn@example.org").map(|r| &r["bouncing"]),
        Some(&json!(true))
    );
    assert_eq!(
        find(&rows, "fp2.hn@example.org").map(|r| &r["bouncing"]),
        Some(&json!(false))
    );
    assert_contains(
        &cli.ok(&["focal-points", "list", "--country", "HN"]).stdout,
        &["(bouncing)"],
    );

    // Nothing on standard input is an error, not an empty message.
    let out = ingest(&cli, "empty.eml", "");
    assert!(!out.status.success());
    assert_contains(&out.stderr, &["standard input is empty"]);
}

// ---------------------------------------------------------------------------------------
// puebla demo

#[test]
fn demo_runs_a_whole_consultation_and_writes_its_mail() {
    let cli = Cli::new();
    let outbox = cli.path().join("demo-outbox");
    let out = cli.ok(&["demo", "--outbox", outbox.to_str().expect("utf-8 path")]);
    let skipped: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.contains("skipped"))
        .collect();
    assert!(
        skipped.iter().any(|l| l.contains("Maundy Thursday")),
        "{}",
        out.stdout
    );
    assert!(
        skipped.iter().any(|l| l.contains("Good Friday")),
        "{}",
        out.stdout
    );
    assert_contains(
        &out.stdout,
        &["late", "concluded", "daily digest to the PPT and the TS"],
    );
    // The decisions a person makes: two focal points of Panama disagree in round 1,
    // and GT's unclear reply holds the decision of round 2 until the PPT reviews it.
    assert_contains(
        &out.stdout,
        &[
            "conflict flagged; every focal point of PA told",
            "closed → awaiting_decision",
            "no automatic adoption on a doubt: GT read as comments (ambiguous)",
            "confirmed as comments → adopted",
            "adopted under the silence rule: no objection by the deadline",
        ],
    );

    let mails: Vec<PathBuf> = std::fs::read_dir(&outbox)
        .expect("the demo outbox exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "eml"))
        .collect();
    assert!(mails.len() >= 100, "only {} .eml files", mails.len());
    for mail in &mails {
        let text = std::fs::read_to_string(mail).expect("read .eml");
        let text = text.replace("\r\n", "\n");
        let head = text.split("\n\n").next().expect("headers");
        assert!(
            head.lines().any(|l| l.starts_with("Message-ID: <")),
            "{}: no Message-ID",
            mail.display()
        );
        assert!(
            head.lines()
                .any(|l| l.trim_end() == "Auto-Submitted: auto-generated"),
            "{}: no Auto-Submitted",
            mail.display()
        );
    }
    // Nothing lands in the working folder's default places.
    assert!(!cli.path().join("outbox").exists());
}

#[test]
fn demo_delivers_every_notice_to_the_smtp_url_in_the_recipients_languages() {
    // The sink runs on a runtime of its own while the binary runs in the foreground.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let sink = runtime.block_on(crate::smtp_sink::SmtpSink::start(Default::default()));

    // Without PUEBLA_SMTP_URL: .eml files.
    let files = Cli::new();
    let outbox = files.path().join("demo-outbox");
    files.ok(&["demo", "--outbox", outbox.to_str().expect("utf-8 path")]);
    let eml = std::fs::read_dir(&outbox)
        .expect("the demo outbox exists")
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.path().extension().is_some_and(|x| x == "eml"))
        })
        .count();

    // With it: the same notices, over SMTP, and no files.
    let mut cli = Cli::new();
    cli.set_env("PUEBLA_SMTP_URL", &sink.url());
    let outbox = cli.path().join("demo-outbox");
    let out = cli.ok(&["demo", "--outbox", outbox.to_str().expect("utf-8 path")]);
    assert_contains(&out.stdout, &["SMTP relay smtp://127.0.0.1", "concluded"]);
    assert!(!outbox.exists(), "no .eml files when SMTP is configured");
    let received = sink.received();
    assert!(eml >= 100, "only {eml} .eml files");
    assert_eq!(
        received.len(),
        eml,
        "the same notices as the file transport"
    );

    // Each in its recipient's language (the example directory says which).
    let directory: toml::Value = toml::from_str(
        &std::fs::read_to_string(repo().join("examples/focal-points.toml")).unwrap(),
    )
    .unwrap();
    let language_of = |email: &str| -> Option<String> {
        directory["focal_point"]
            .as_array()?
            .iter()
            .find(|f| f["email"].as_str() == Some(email))
            .and_then(|f| f["language"].as_str().map(str::to_string))
    };
    let mut languages = std::collections::BTreeSet::new();
    let mut kinds = std::collections::BTreeSet::new();
    for r in &received {
        let m = mail_parser::MessageParser::default()
            .parse(&r.data)
            .expect("the message parses");
        let language = m
            .header_raw("Content-Language")
            .map(|l| l.trim().to_string())
            .expect("Content-Language");
        let to = r.rcpt_to[0].clone();
        if let Some(expected) = language_of(&to) {
            assert_eq!(language, expected, "{to}");
        }
        languages.insert(language);
        let id = m.message_id().expect("a Message-ID").to_string();
        // <RCM-2027-001.s5.round_invitation.fp3@domain>: the kind is the third field.
        if let Some(kind) = id.split('.').nth(2) {
            kinds.insert(kind.to_string());
        }
        assert!(m.subject().unwrap_or_default().starts_with("[RCM"), "{id}");
    }
    assert_eq!(
        languages.into_iter().collect::<Vec<_>>(),
        ["en", "es", "fr"],
        "Spanish, English and French recipients"
    );
    for kind in [
        "troika_request",
        "round_invitation",
        "reminder",
        "outcome",
        "results",
    ] {
        assert!(
            kinds.iter().any(|k| k.starts_with(kind)),
            "{kind} in {kinds:?}"
        );
    }
    drop(sink);
}

// ---------------------------------------------------------------------------------------
// puebla serve: refuses to start misconfigured (a configured serve would run forever)

#[test]
fn serve_needs_a_token_secret() {
    let mut cli = Cli::new();
    cli.unset_env("PUEBLA_TOKEN_SECRET");
    let out = cli.fails(&["serve"]);
    assert_contains(&out.stderr, &["PUEBLA_TOKEN_SECRET"]);

    let mut cli = Cli::new();
    cli.set_env("PUEBLA_TOKEN_SECRET", "short");
    let out = cli.fails(&["serve"]);
    assert_contains(&out.stderr, &["PUEBLA_TOKEN_SECRET"]);
}

/// A notice that asks for an answer is never sent with a bare Reply-To: without
/// the secret, `consultation start` refuses (and stores nothing), and `check` says so.
#[test]
fn consultation_start_refuses_without_the_token_secret() {
    let mut cli = Cli::new();
    cli.unset_env("PUEBLA_TOKEN_SECRET");
    let example = repo().join("examples/focal-points.toml");
    cli.ok(&[
        "focal-points",
        "import",
        example.to_str().expect("utf-8 path"),
    ]);
    let year = this_year();
    for (y, c) in [(year - 1, "GT"), (year, "MX"), (year + 1, "HN")] {
        cli.ok(&["presidency", "set", &y.to_string(), c]);
    }
    cli.write("text.md", "# Text\n\nOne paragraph.\n");
    let out = cli.fails(&["consultation", "start", "--title", "T", "--text", "text.md"]);
    assert_contains(
        &out.stderr,
        &["PUEBLA_TOKEN_SECRET", "troika_request", "reply token"],
    );
    assert_eq!(
        cli.ok(&["consultation", "list", "--json"]).json(),
        json!([]),
        "nothing was stored"
    );
    let check = cli.ok(&["check"]);
    assert_contains(&check.stderr, &["warning: PUEBLA_TOKEN_SECRET is not set"]);

    // A draft asks nobody anything: it can be written without the secret.
    cli.ok(&[
        "consultation",
        "start",
        "--title",
        "T",
        "--text",
        "text.md",
        "--draft",
    ]);
}

#[test]
fn serve_names_a_bad_http_addr() {
    let mut cli = Cli::new();
    cli.set_env("PUEBLA_TOKEN_SECRET", "0123456789abcdef0123456789abcdef");
    cli.set_env("PUEBLA_HTTP_ADDR", "nowhere");
    let out = cli.fails(&["serve"]);
    assert_contains(&out.stderr, &["http_addr", "`nowhere`"]);
}
