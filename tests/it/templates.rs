//! Notice templates: every template in every language rendered with the fixed sample
//! context and compared with the checked-in snapshot in `tests/fixtures/templates/`,
//! so that a template change shows up in review. `UPDATE_SNAPSHOTS=1 cargo test --test
//! it templates` rewrites the snapshots; a missing snapshot fails.

use std::path::{Path, PathBuf};

use puebla::domain::Language;
use puebla::engine::samples::{sample_context, sample_contexts};
use puebla::engine::system_notice::{self, ENGINE_TEMPLATE_NAMES};
use puebla::mail::locale::format_deadline;
use puebla::mail::templates::{escape_html, Templates};
use puebla::workflow::procedure::TEMPLATE_NAMES;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn templates() -> Templates {
    Templates::load(&repo().join("templates"))
        .unwrap_or_else(|e| panic!("the shipped templates load:\n{e}"))
}

/// Compares `actual` with the snapshot at `path`, or rewrites it when asked to.
/// Returns a description of the difference, if any.
fn compare(path: &Path, actual: &str) -> Option<String> {
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, actual).unwrap();
        return None;
    }
    let expected = match std::fs::read_to_string(path) {
        Ok(s) => s,
        Err(_) => {
            return Some(format!(
                "{}: no snapshot (run UPDATE_SNAPSHOTS=1 cargo test --test it templates)",
                path.display()
            ))
        }
    };
    if expected == actual {
        return None;
    }
    let diff = similar::TextDiff::from_lines(expected.as_str(), actual)
        .unified_diff()
        .context_radius(2)
        .header("snapshot", "rendered")
        .to_string();
    Some(format!("{} differs:\n{diff}", path.display()))
}

#[test]
fn every_template_matches_its_snapshot_in_every_language() {
    let t = templates();
    let dir = repo().join("tests/fixtures/templates");
    let mut failures = Vec::new();
    for lang in Language::ALL {
        for name in TEMPLATE_NAMES {
            let ctx = sample_context(name, lang).expect("a sample for every notice");
            let r = t
                .render(name, lang, &ctx)
                .unwrap_or_else(|e| panic!("{name} ({lang}) renders: {e}"));
            let base = dir.join(lang.as_str());
            for (ext, actual) in [
                ("subject", format!("{}\n", r.subject)),
                ("txt", r.text),
                ("html", r.html),
            ] {
                failures.extend(compare(&base.join(format!("{name}.{ext}")), &actual));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The engine's own notices (digest, quarantine and oversized explanations, bounce
/// alert), from their `full` samples, in the same snapshot folder.
#[test]
fn every_engine_template_matches_its_snapshot_in_every_language() {
    let t = templates();
    let dir = repo().join("tests/fixtures/templates");
    let mut failures = Vec::new();
    for lang in Language::ALL {
        let samples = system_notice::samples(lang);
        for name in ENGINE_TEMPLATE_NAMES {
            let (_, _, data) = samples
                .iter()
                .find(|(n, label, _)| *n == name && *label == "full")
                .expect("a full sample for every engine template");
            let r = t
                .render_with(name, lang, data)
                .unwrap_or_else(|e| panic!("{name} ({lang}) renders: {e}"));
            let base = dir.join(lang.as_str());
            for (ext, actual) in [
                ("subject", format!("{}\n", r.subject)),
                ("txt", r.text),
                ("html", r.html),
            ] {
                failures.extend(compare(&base.join(format!("{name}.{ext}")), &actual));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn engine_notices_start_with_a_bracketed_reference_and_escape_user_text() {
    let t = templates();
    for lang in Language::ALL {
        for (name, variant, data) in system_notice::samples(lang) {
            let r = t.render_with(name, lang, &data).unwrap();
            let expected = if variant == "full" && name != "digest" {
                "[RCM-2026-007] "
            } else {
                "[RCM"
            };
            assert!(
                r.subject.starts_with(expected),
                "{name} ({lang}, {variant}): {}",
                r.subject
            );
            assert!(
                !r.html.contains("<consulares>"),
                "{name} ({lang}, {variant})"
            );
            assert!(!r.html.contains("<Consular"), "{name} ({lang}, {variant})");
            assert!(
                !r.text.contains("&lt;"),
                "{name} ({lang}, {variant}): {}",
                r.text
            );
        }
        let samples = system_notice::samples(lang);
        let full = |name: &str| {
            let (_, _, d) = samples
                .iter()
                .find(|(n, l, _)| *n == name && *l == "full")
                .unwrap();
            t.render_with(name, lang, d).unwrap()
        };
        let q = full("quarantine_notice");
        assert!(
            q.html
                .contains("Lineamientos &lt;consulares&gt; &amp; datos"),
            "{lang}: {}",
            q.html
        );
        assert!(
            q.text.contains("Lineamientos <consulares> & datos"),
            "{lang}"
        );
        assert!(q.html.contains("&lt;ana@ministerio.example&gt;"), "{lang}");
        let b = full("bounce_alert");
        assert!(
            b.html
                .contains("Jordan O&#39;Neil &lt;Consular &amp; Migration&gt;"),
            "{lang}: {}",
            b.html
        );
        assert!(b.text.contains("fp2.bz@example.org"), "{lang}");
        let o = full("oversized");
        let (size, limit) = match lang {
            Language::En => ("12.4 MB", "10.0 MB"),
            Language::Es => ("12,4 MB", "10,0 MB"),
            Language::Fr => ("12,4 Mo", "10,0 Mo"),
        };
        for part in [&o.text, &o.html] {
            assert!(
                part.contains(size) && part.contains(limit),
                "{lang}: {part}"
            );
        }
    }
}

#[test]
fn a_missing_variable_in_an_engine_template_fails_check() {
    for (file, from, to) in [
        ("es/quarantine_notice.txt.hbs", "{{reason}}", "{{motivo}}"),
        ("fr/bounce_alert.html.hbs", "{{report}}", "{{rapport}}"),
        (
            "en/oversized.subject.hbs",
            "{{tag}}",
            "{{#if reference}}{{reference}}{{/if}}{{tga}}",
        ),
        ("en/digest.txt.hbs", "{{date}}", "{{day}}"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(&repo().join("templates"), dir.path());
        let path = dir.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(from), "{file} uses {from}");
        std::fs::write(&path, text.replacen(from, to, 1)).unwrap();
        let err = Templates::load(dir.path())
            .expect("the templates still parse")
            .check()
            .expect_err("a missing variable fails check")
            .to_string();
        assert!(err.contains(file), "{file}: {err}");
    }
}

#[test]
fn confirmations_quote_the_answer_without_its_keyword() {
    let t = templates();
    for lang in Language::ALL {
        for name in ["reply_confirmation", "late_reply"] {
            let ctx = sample_context(name, lang).unwrap();
            let answer = ctx.answer.as_ref().expect("the sample has an answer");
            assert!(
                !answer.quote.starts_with("SIN OBJECI") && !answer.quote.starts_with("COMENTARIOS"),
                "{name} ({lang}): {}",
                answer.quote
            );
            assert!(answer.quote.starts_with("Honduras"), "{}", answer.quote);
            let r = t.render(name, lang, &ctx).unwrap();
            for (part, esc) in [(&r.text, false), (&r.html, true)] {
                let shown = |s: &str| if esc { escape_html(s) } else { s.to_string() };
                assert!(part.contains("Honduras"), "{name} ({lang}): country named");
                assert!(
                    part.contains(&shown(&answer.position)),
                    "{name} ({lang}): position"
                );
                assert!(
                    part.contains(&shown(&answer.quote)),
                    "{name} ({lang}): quote"
                );
                assert!(part.contains('2'), "{name} ({lang}): round");
            }
            // An answer that is only the keyword has no quote to show.
            let mut bare = ctx.clone();
            bare.answer.as_mut().unwrap().quote = String::new();
            let r = t.render(name, lang, &bare).unwrap();
            assert!(
                !r.text.contains("«»") && !r.text.contains("\"\""),
                "{}",
                r.text
            );
        }
    }
}

#[test]
fn the_shipped_templates_pass_check() {
    templates()
        .check()
        .unwrap_or_else(|e| panic!("check of the shipped templates:\n{e}"));
}

#[test]
fn every_subject_starts_with_the_reference() {
    let t = templates();
    for lang in Language::ALL {
        for (variant, ctx) in sample_contexts(lang) {
            for name in TEMPLATE_NAMES.iter().filter(|n| ctx.for_template(n)) {
                let r = t.render(name, lang, &ctx).unwrap();
                assert!(
                    r.subject.starts_with("[RCM-2026-007] "),
                    "{name} ({lang}, {variant}): {}",
                    r.subject
                );
                assert!(!r.subject.contains('\n'));
            }
        }
    }
}

#[test]
fn user_text_is_escaped_in_html_and_verbatim_in_text() {
    let t = templates();
    let nasty = "<script>alert('x')</script> & Co";
    for lang in Language::ALL {
        for name in [
            "round2_invitation",
            "withdrawn",
            "results_report",
            "changes_requested",
        ] {
            let mut ctx = sample_context(name, lang).unwrap();
            ctx.title = nasty.to_string();
            ctx.text = format!("1. {nasty}\n2. Fin");
            ctx.diff = Some(format!("+1. {nasty}"));
            ctx.withdrawal_reason = Some(nasty.to_string());
            ctx.report = Some(nasty.to_string());
            for c in &mut ctx.troika_comments {
                c.text = nasty.to_string();
            }
            let r = t.render(name, lang, &ctx).unwrap();
            assert!(
                !r.html.contains("<script>"),
                "{name} ({lang}): raw <script> in HTML"
            );
            assert!(
                r.html
                    .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; Co"),
                "{name} ({lang}): escaped text in HTML:\n{}",
                r.html
            );
            assert!(
                r.text.contains(nasty),
                "{name} ({lang}): verbatim in text:\n{}",
                r.text
            );
            assert!(r.subject.contains(nasty), "{name} ({lang}): {}", r.subject);
        }
    }
}

#[test]
fn a_missing_variable_fails_check_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("templates"), dir.path());
    let file = dir.path().join("en/reminder.txt.hbs");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("{{deadline}}", "{{dedline}}")).unwrap();
    let t = Templates::load(dir.path()).expect("the templates still parse");
    let err = t
        .check()
        .expect_err("a misspelt variable fails check")
        .to_string();
    assert!(err.contains("en/reminder.txt.hbs"), "{err}");
    assert!(err.contains("dedline"), "{err}");

    // The same inside an `if`, which handlebars would otherwise treat as false.
    std::fs::write(
        &file,
        text.replace("{{deadline}}", "{{#if extenson}}x{{/if}}"),
    )
    .unwrap();
    let err = Templates::load(dir.path())
        .unwrap()
        .check()
        .expect_err("a misspelt condition fails check")
        .to_string();
    assert!(
        err.contains("en/reminder.txt.hbs") && err.contains("extenson"),
        "{err}"
    );
}

#[test]
fn a_syntax_error_names_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("templates"), dir.path());
    let file = dir.path().join("fr/outcome.html.hbs");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("{{/if}}", "{{/iff}}", 1)).unwrap();
    let err = Templates::load(dir.path()).unwrap_err();
    let e = &err.0[0];
    assert!(e.file.ends_with("fr/outcome.html.hbs"), "{err}");
    assert!(e.line > 0, "a line number: {err}");
}

#[test]
fn a_missing_file_fails_check() {
    let dir = tempfile::tempdir().unwrap();
    copy_dir(&repo().join("templates"), dir.path());
    std::fs::remove_file(dir.path().join("es/late_reply.html.hbs")).unwrap();
    let t = Templates::load(dir.path()).unwrap();
    assert!(!t.has("late_reply"));
    let err = t.check().unwrap_err().to_string();
    assert!(err.contains("es/late_reply.html.hbs"), "{err}");
}

#[test]
fn the_deadline_is_localized_in_each_language() {
    let t = templates();
    let expected = [
        (
            Language::Es,
            "lunes 7 de diciembre de 2026, 23:59 (hora de Tegucigalpa)",
        ),
        (
            Language::En,
            "Monday, December 7, 2026, 23:59 (Tegucigalpa time)",
        ),
        (
            Language::Fr,
            "lundi 7 décembre 2026, 23 h 59 (heure de Tegucigalpa)",
        ),
    ];
    for (lang, deadline) in expected {
        for name in ["round2_invitation", "reminder", "deadline_extended"] {
            let ctx = sample_context(name, lang).unwrap();
            assert_eq!(ctx.deadline.as_deref(), Some(deadline));
            assert_eq!(
                ctx.deadline_iso.as_deref(),
                Some("2026-12-07T23:59:00-06:00")
            );
            let r = t.render(name, lang, &ctx).unwrap();
            assert!(r.text.contains(deadline), "{name} ({lang}):\n{}", r.text);
            assert!(r.html.contains(deadline), "{name} ({lang}):\n{}", r.html);
        }
    }
    // The same instant, in Toronto, is already the next day.
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-08T05:59:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    assert_eq!(
        format_deadline(at, chrono_tz::America::Toronto, Language::Fr),
        "mardi 8 décembre 2026, 00 h 59 (heure de Toronto)"
    );
}

#[test]
fn invitations_carry_mailto_links_that_prefill_the_answer_and_keep_the_subject() {
    let t = templates();
    let ctx = sample_context("round_invitation", Language::Es).unwrap();
    let r = t.render("round_invitation", Language::Es, &ctx).unwrap();
    let link =
        "mailto:consultas+AEBAGBAFAYDQQ@rcm-ts.example?subject=Re%3A%20%5BRCM-2026-007%5D%20";
    assert!(r.html.contains(&format!("href=\"{link}")), "{}", r.html);
    assert!(
        r.html.contains("&amp;body=SIN%20OBJECI%C3%93N%0D%0A"),
        "{}",
        r.html
    );
    assert!(r.text.contains("&body=OBJECI%C3%93N%0D%0A"), "{}", r.text);
    assert!(r.text.contains("&body=COMENTARIOS%0D%0A"), "{}", r.text);
    // The round-2 diff shows what changed, without the diff's file headers.
    let ctx = sample_context("round2_invitation", Language::En).unwrap();
    let r = t.render("round2_invitation", Language::En, &ctx).unwrap();
    assert!(r.text.contains("\n+3. Los datos consulares"), "{}", r.text);
    assert!(!r.text.contains("+++ this version"), "{}", r.text);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}
