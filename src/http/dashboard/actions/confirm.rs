//! The "are you sure?" page of an action.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use axum::response::Response;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Serialize;

use super::super::env::Env;
use super::super::error::PageError;
use super::super::i18n::label;
use super::super::pages::shared::{
    consultation_path, country_name, diff_lines, local_time, presidency_tz, DiffLine,
};
use super::parse::Action;
use crate::domain::attachment::ValidFile;
use crate::domain::consultation::{text_diff, Event};
use crate::domain::CountryCode;
use crate::http::SharedState;

/// The "are you sure?" page: what will happen, and the same fields again as hidden
/// inputs with `confirm=yes`.
pub(crate) async fn confirm_page(
    state: &SharedState,
    env: &Env,
    kind: &str,
    action: &Action,
    fields: &BTreeMap<String, String>,
    files: &[ValidFile],
) -> Result<Response, PageError> {
    use base64::Engine as _;
    let mut hidden: Vec<HiddenField> = fields
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "csrf" | "confirm") && !k.starts_with("file_"))
        .map(|(k, v)| HiddenField {
            name: k.clone(),
            value: v.clone(),
        })
        .collect();
    // The checked files ride along (their safe names and types), to be stored only
    // when the confirmation comes back.
    for (i, f) in files.iter().enumerate() {
        hidden.push(HiddenField {
            name: format!("file_{i}_name"),
            value: f.filename.clone(),
        });
        hidden.push(HiddenField {
            name: format!("file_{i}_type"),
            value: f.content_type.clone(),
        });
        hidden.push(HiddenField {
            name: format!("file_{i}_b64"),
            value: base64::engine::general_purpose::STANDARD.encode(&f.bytes),
        });
    }
    let file_rows: Vec<FileRow> = files
        .iter()
        .map(|f| FileRow {
            filename: &f.filename,
            content_type: &f.content_type,
            size: f.bytes.len(),
            sha256: &f.sha256,
        })
        .collect();
    // What the user entered, labelled; long texts are shown as blocks.
    let mut rows = Vec::new();
    let mut row = |key: &str, value: String| {
        rows.push(Row {
            label: env.t(key),
            value,
        })
    };
    let mut text: Option<String> = None;
    let mut diff: Option<Vec<DiffLine>> = None;
    let cancel: String;
    match action {
        Action::Start {
            title,
            text: t,
            procedure,
            year,
        } => {
            row("title", title.clone());
            row("procedure", procedure.clone());
            if let Some(y) = year {
                row("year", y.to_string());
            }
            text = Some(t.clone());
            cancel = "/new".into();
        }
        Action::Consultation { reference, event } => {
            let (c, _) = state.engine.load(reference).await?;
            row("reference", reference.clone());
            row("title", c.title.clone());
            cancel = consultation_path(reference);
            match event {
                Event::TroikaFeedback {
                    country,
                    approve,
                    comments,
                } => {
                    row("country", country_name(state, env.lang, *country));
                    row(
                        "position",
                        env.t(if *approve {
                            "approve"
                        } else {
                            "request_changes"
                        }),
                    );
                    if let Some(cm) = comments {
                        row("comments", cm.clone());
                    }
                }
                Event::Submit { text: Some(t) } => {
                    diff = Some(diff_lines(&text_diff(&c.current_version().text, t)));
                }
                Event::Revise { text: t, note } => {
                    match t {
                        Some(t) => {
                            diff = Some(diff_lines(&text_diff(&c.current_version().text, t)));
                        }
                        None => row("no_changes", env.t("yes")),
                    }
                    if let Some(n) = note {
                        row("note", n.clone());
                    }
                }
                Event::Extend {
                    working_days,
                    reason,
                } => {
                    row("working_days", working_days.to_string());
                    row("reason", reason.clone());
                }
                Event::Withdraw { reason } => row("reason", reason.clone()),
                Event::Reclassify {
                    round,
                    country,
                    position,
                    received_at,
                } => {
                    row("round", round.to_string());
                    row("country", country_name(state, env.lang, *country));
                    let answer = c
                        .rounds
                        .iter()
                        .find(|r| r.number == *round)
                        .and_then(|r| r.answers.get(country));
                    if let Some(a) = answer {
                        let tz = presidency_tz(state, &c);
                        row(
                            "received",
                            local_time(tz, received_at.unwrap_or(a.received_at)),
                        );
                        row("review_was", label(env.lang, "state", a.position.as_str()));
                        if !a.text.is_empty() {
                            text = Some(a.text.clone());
                        }
                    }
                    row("position", label(env.lang, "state", position.as_str()));
                    row(
                        "review_outcome",
                        env.t(if answer.is_some_and(|a| a.position == *position) {
                            "review_confirms"
                        } else {
                            "review_changes"
                        }),
                    );
                }
                Event::Report { text: t } => text = Some(t.clone()),
                _ => {}
            }
        }
        Action::AddFocalPoint {
            country,
            name,
            email,
            language,
        } => {
            row("country", country.clone());
            row("name", name.clone());
            row("email", email.clone());
            row(
                "language",
                language
                    .clone()
                    .unwrap_or_else(|| env.t("language_default")),
            );
            cancel = "/directory".into();
        }
        Action::DeactivateFocalPoint { email } | Action::ClearBouncing { email } => {
            row("email", email.clone());
            cancel = "/directory".into();
        }
        Action::SetPresidency { year, country } => {
            row("year", year.to_string());
            row("country", country_name(state, env.lang, *country));
            cancel = "/directory".into();
        }
        Action::RecordAnswer {
            reference,
            country,
            position,
            text: t,
            channel,
        } => {
            let (c, _) = state.engine.load(reference).await?;
            row("reference", reference.clone());
            row("title", c.title.clone());
            if let Ok(code) = CountryCode::parse(country) {
                row("country", country_name(state, env.lang, code));
            }
            row("position", label(env.lang, "state", position));
            row(
                "channel",
                channel.clone().unwrap_or_else(|| env.t("channel_letter")),
            );
            if !t.is_empty() {
                text = Some(t.clone());
            }
            cancel = consultation_path(reference);
        }
        Action::Release {
            id,
            country,
            reference,
        } => {
            row("message", format!("#{id}"));
            if let Ok(code) = CountryCode::parse(country) {
                row("country", country_name(state, env.lang, code));
            }
            if let Some(r) = reference {
                row("reference", r.clone());
            }
            cancel = format!("/inbound/{}", utf8_percent_encode(id, NON_ALPHANUMERIC));
        }
        Action::Discard { id, reason } => {
            row("message", format!("#{id}"));
            row("reason", reason.clone());
            cancel = format!("/inbound/{}", utf8_percent_encode(id, NON_ALPHANUMERIC));
        }
        Action::ImportFocalPoints { text: t, csv } => {
            row(
                "import_format",
                if *csv { "CSV" } else { "TOML" }.to_string(),
            );
            row(
                "lines",
                t.lines()
                    .filter(|l| !l.trim().is_empty())
                    .count()
                    .to_string(),
            );
            text = Some(t.clone());
            cancel = "/directory".into();
        }
    }
    env.page(
        StatusCode::OK,
        "confirm",
        ConfirmPage {
            action_label: env.t(&format!("act_{kind}")),
            rows,
            text,
            diff,
            hidden,
            files: file_rows,
            cancel,
        },
    )
}

/// `templates/dashboard/confirm.hbs`'s data: what the action will do, and its fields
/// again.
#[derive(Serialize)]
struct ConfirmPage<'a> {
    action_label: String,
    rows: Vec<Row>,
    /// A long text the action carries, shown as a block.
    text: Option<String>,
    /// The change the action makes to the consultation's text.
    diff: Option<Vec<DiffLine>>,
    hidden: Vec<HiddenField>,
    files: Vec<FileRow<'a>>,
    cancel: String,
}

/// What the user entered for one field, labelled.
#[derive(Serialize)]
struct Row {
    label: String,
    value: String,
}

/// A field sent again with the confirmation.
#[derive(Serialize)]
struct HiddenField {
    name: String,
    value: String,
}

/// A checked file that rides along with the confirmation.
#[derive(Serialize)]
struct FileRow<'a> {
    filename: &'a str,
    content_type: &'a str,
    size: usize,
    sha256: &'a str,
}
