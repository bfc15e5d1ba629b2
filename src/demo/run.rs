//! The demo's script: a consultation from start to results, with the summary it returns.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use chrono::{TimeZone, Utc};

use crate::clock::{Clock, SimulatedClock};
use crate::config::Config;
use crate::domain::consultation::{Event, Position, Stage};
use crate::domain::CountryCode;
use crate::engine::outbox::{FileTransport, Transport};
use crate::engine::ports::{prelude::*, NewFocalPoint};
use crate::engine::StartRequest;
use crate::workflow::focal_points::parse_focal_points;
use crate::workflow::SourceFile;

use super::stage::Demo;

/// The example directory the demo imports (all addresses on example.org).
const EXAMPLE_FOCAL_POINTS: &str = include_str!("../../examples/focal-points.toml");

#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Where the `.eml` files go.
    pub outbox_dir: PathBuf,
    /// The database; a fresh SQLite file in a temporary folder when `None`.
    pub database_url: Option<String>,
}

/// What the demo did, for tests and the closing lines.
#[derive(Debug, Clone)]
pub struct DemoSummary {
    pub reference: String,
    pub final_stage: String,
    pub notices_sent: usize,
    pub notices_failed: usize,
    pub timeline: Vec<String>,
}

/// Runs the demo and writes its timeline to `out`.
pub async fn run(config: &Config, opts: DemoOptions, out: &mut dyn Write) -> Result<DemoSummary> {
    // Reply tokens are signed with a secret generated for this run unless one is configured.
    let mut config = config.clone();
    if config.token_secret.is_none() {
        config.token_secret = Some(random_secret()?);
    }
    let config = &config;
    let catalog = crate::app::catalog(config)?;
    let hn = CountryCode::parse("HN")?;
    let tz = catalog.body.member(hn)?.time_zone;

    let temp = tempfile::Builder::new()
        .prefix("puebla-demo-")
        .tempdir()
        .context("temporary folder")?;
    let url = opts
        .database_url
        .clone()
        .unwrap_or_else(|| format!("sqlite://{}", temp.path().join("demo.db").display()));
    let store: Arc<dyn Store> = crate::store::connect(&url).await?;

    // The demo starts on Thursday 18 March 2027 in Tegucigalpa: round 1 crosses Holy Week.
    let start = tz
        .with_ymd_and_hms(2027, 3, 18, 9, 0, 0)
        .earliest()
        .expect("valid")
        .with_timezone(&Utc);
    let clock = Arc::new(SimulatedClock::new(start));
    let engine = crate::app::engine(
        config,
        store.clone(),
        clock.clone() as Arc<dyn Clock>,
        catalog.clone(),
    )?;

    // The demo honours PUEBLA_SMTP_URL like `serve`; without it, .eml files.
    let (transport, destination): (Arc<dyn Transport>, String) = match &config.smtp_url {
        Some(_) => (
            crate::app::transport(config)?,
            crate::app::transport_description(config),
        ),
        None => {
            clear_eml_files(&opts.outbox_dir)?;
            (
                Arc::new(FileTransport::new(opts.outbox_dir.clone())),
                opts.outbox_dir.display().to_string(),
            )
        }
    };
    let worker = crate::app::worker(config, store.clone(), clock.clone(), transport, "demo");

    writeln!(
        out,
        "puebla demo: one RCM written consultation on simulated time (rcm-five-day procedure)"
    )?;
    match &config.smtp_url {
        Some(_) => writeln!(
            out,
            "database {}; notices sent to the {destination}",
            crate::redact::redact_url(&url)
        )?,
        None => writeln!(
            out,
            "database {}; notices written as .eml files into {destination}",
            crate::redact::redact_url(&url)
        )?,
    }
    // Presidency years after 2016 are not in the data file: the TS sets them. These are demo values.
    for (year, country) in [(2026, "CR"), (2027, "HN"), (2028, "GT")] {
        engine
            .set_presidency(year, CountryCode::parse(country)?, "demo:ts")
            .await?;
    }
    let src = SourceFile::new("examples/focal-points.toml", EXAMPLE_FOCAL_POINTS);
    let entries = parse_focal_points(&src, &catalog.body).map_err(|e| anyhow::anyhow!("{e}"))?;
    let count = entries.len();
    for e in entries {
        store
            .upsert_focal_point(
                NewFocalPoint {
                    country: e.country,
                    name: e.name,
                    email: e.email,
                    language: e.language,
                    active: e.active,
                },
                "demo:ts",
                start,
            )
            .await?;
    }
    writeln!(
        out,
        "{count} focal points imported (example.org); presidency 2027 = HN (demo value)"
    )?;
    writeln!(out, "times below are Tegucigalpa time (the PPT's)")?;
    writeln!(out)?;

    let mut demo = Demo {
        engine: engine.clone(),
        worker,
        clock: clock.clone(),
        tz,
        out,
        timeline: Vec::new(),
        sent: 0,
        failed: 0,
        last_stage: "draft".into(),
    };

    let text_v1 = "# Regional guidelines on consular assistance\n\n1. Member Countries share consular contact points.\n2. The TS keeps the list current.\n";
    let c = engine
        .start(
            StartRequest {
                title: "Regional guidelines on consular assistance".into(),
                text: text_v1.into(),
                procedure: "rcm-five-day".into(),
                year: Some(2027),
                draft_only: false,
                attachments: Vec::new(),
            },
            "ppt:hn",
        )
        .await?;
    let reference = c.reference.to_string();
    let sent = demo.deliver().await?;
    demo.line(
        start,
        &format!(
            "{reference} started by the PPT (HN); {} [{sent} notice(s)]",
            c.troika.describe()
        ),
    )?;
    demo.last_stage = c.stage_name();

    let gt = CountryCode::parse("GT")?;
    demo.troika_email(
        &reference,
        demo.local(2027, 3, 18, 14, 0),
        "GT",
        "CAMBIOS\n\nPlease say who maintains the list in point 2.",
    )
    .await?;
    let text_v2 = text_v1.replace(
        "2. The TS keeps the list current.",
        "2. The Technical Secretariat keeps the list current and circulates it each quarter.",
    );
    demo.act(
        &reference,
        demo.local(2027, 3, 19, 9, 30),
        "ppt:hn",
        Event::Submit {
            text: Some(text_v2.clone()),
        },
        "PPT resubmits version 2 to the Troika",
    )
    .await?;
    demo.troika_email(&reference, demo.local(2027, 3, 19, 11, 0), "CR", "APROBAR")
        .await?;
    // GT's approval is entered by the PPT's staff (GT said so on a call).
    demo.act(
        &reference,
        demo.local(2027, 3, 19, 12, 0),
        "ppt:hn",
        Event::TroikaFeedback {
            country: gt,
            approve: true,
            comments: None,
        },
        "Troika: GT agrees (entered by staff)",
    )
    .await?;

    // Round 1: some members answer by email, others stay silent; one mailbox is
    // away, and one address no longer exists.
    demo.out_of_office(&reference, demo.local(2027, 3, 19, 12, 5), "BZ")
        .await?;
    demo.bounce(
        &reference,
        demo.local(2027, 3, 19, 12, 10),
        "fp2.ni@example.org",
    )
    .await?;
    demo.forged_bounce(
        &reference,
        demo.local(2027, 3, 19, 12, 15),
        "fp1.sv@example.org",
    )
    .await?;
    for (day, hour, country, text, gmail) in [
        (22, 10, "MX", "COMENTARIOS\n\nProponemos añadir un punto sobre la protección de los datos consulares.", false),
        (22, 16, "US", "No objection.", true),
        (23, 9, "CA", "COMMENTAIRES\n\nNous suggérons de préciser le calendrier de mise à jour de la liste.", false),
        (24, 11, "PA", "Sin objeción.", false),
    ] {
        let at = demo.local(2027, 3, day, hour, 0);
        demo.email(&reference, at, country, text, gmail, None).await?;
    }

    // Panama's second focal point answers differently from the first: the latest
    // answer stands, flagged as a conflict, and both of Panama's focal points are told.
    demo.email_from(
        &reference,
        demo.local(2027, 3, 26, 10, 0),
        "PA",
        2,
        "OBJECIÓN\n\nPanamá necesita consultar el punto 2 con su Cancillería.",
        false,
        None,
    )
    .await?;

    for (day, hour, country, text, gmail) in [
        (29, 15, "SV", "Sin objeción.", true),
        (30, 10, "MX", "COMENTARIOS\n\nActualizamos nuestra propuesta: protección de datos y una cláusula de revisión.", false),
    ] {
        let at = demo.local(2027, 3, day, hour, 0);
        demo.email(&reference, at, country, text, gmail, None).await?;
    }

    // Revision after round 1 closes at its deadline.
    let text_v3 = format!("{text_v2}3. Consular data is protected under each country's law.\n4. The guidelines are reviewed after two years.\n");
    demo.act(
        &reference,
        demo.local(2027, 3, 31, 10, 0),
        "ppt:hn",
        Event::Revise {
            text: Some(text_v3),
            note: Some("Comments of MX and CA".into()),
        },
        "PPT publishes version 3 (diff in the invitation)",
    )
    .await?;
    // NI answers the round 1 notice after that round closed: its token names round 1.
    let late_at = demo.local(2027, 3, 31, 12, 0);
    demo.email(
        &reference,
        late_at,
        "NI",
        "COMENTARIOS\n\nComentarios de Nicaragua a la versión 1 del texto.",
        false,
        Some(1),
    )
    .await?;
    demo.fresh_email_then_confirm(
        &reference,
        demo.local(2027, 4, 1, 10, 0),
        "DO",
        "COMENTARIOS\n\nAgradecemos la inclusión del punto 3.",
        demo.local(2027, 4, 1, 16, 0),
    )
    .await?;
    for (day, hour, country, text, gmail) in [
        (
            2,
            11,
            "GT",
            "Gracias por el envío. Lo estamos consultando con la Cancillería.",
            false,
        ),
        (5, 9, "MX", "NO OBJECTION to version 3.", true),
    ] {
        let at = demo.local(2027, 4, day, hour, 0);
        demo.email(&reference, at, country, text, gmail, None)
            .await?;
    }
    demo.act(
        &reference,
        demo.local(2027, 4, 6, 9, 0),
        "ppt:hn",
        Event::Extend {
            working_days: 2,
            reason: "Request of BZ: consultations with its ministries".into(),
        },
        "PPT extends round 2 by 2 working days",
    )
    .await?;
    let at = demo.local(2027, 4, 8, 11, 0);
    demo.email(&reference, at, "BZ", "No objection.", false, None)
        .await?;
    // Round 2 closes with GT's reply unclear: the decision waits for the PPT, who
    // reads it and confirms it as comments; the decision then follows the rule.
    // (Advanced first, so that the decision has been reached when it is looked at.)
    demo.advance_to(&reference, demo.local(2027, 4, 13, 10, 0))
        .await?;
    let now = demo.engine.load(&reference).await?.0;
    let gt_answer = now
        .rounds
        .last()
        .filter(|_| now.stage == Stage::AwaitingDecision)
        .and_then(|r| r.answers.get(&gt).map(|a| (r.number, a.received_at)));
    if let Some((round, received_at)) = gt_answer {
        demo.act(
            &reference,
            demo.local(2027, 4, 13, 10, 0),
            "ppt:hn",
            Event::Reclassify {
                round,
                country: gt,
                position: Position::Comments,
                received_at: Some(received_at),
            },
            "PPT reviews GT's unclear reply: confirmed as comments",
        )
        .await?;
    }
    let report_at = demo.local(2027, 4, 14, 10, 0);
    let c = demo
        .act(
            &reference,
            report_at,
            "ppt:hn",
            Event::Report { text: "The guidelines were published and the TS circulated the first list of consular contact points.".into() },
            "PPT reports the results to all members",
        )
        .await?;

    let notices = store.notices(Some(&c.reference)).await?;
    writeln!(demo.out)?;
    writeln!(
        demo.out,
        "{reference}: final stage {}; {} notices delivered to {destination} ({} failed)",
        c.stage_name(),
        demo.sent,
        demo.failed
    )?;
    writeln!(
        demo.out,
        "{} notices in the outbox table, {} audit entries",
        notices.len(),
        store.audit_log(Some(&c.reference)).await?.len()
    )?;
    Ok(DemoSummary {
        reference,
        final_stage: c.stage_name(),
        notices_sent: demo.sent,
        notices_failed: demo.failed,
        timeline: demo.timeline,
    })
}

/// 32 random bytes from the operating system, hex-encoded.
fn random_secret() -> Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom for the demo's token secret")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Removes the `.eml` files of an earlier run so that the folder shows this run only.
fn clear_eml_files(dir: &std::path::Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.extension().is_some_and(|x| x == "eml") {
            std::fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        }
    }
    Ok(())
}
