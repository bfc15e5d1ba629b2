//! The action forms: the form (URL-encoded or
//! multipart) read into fields and files, and the fields parsed into an [`Action`]
//! checked as the engine will check it.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::http::header;
use chrono::{DateTime, Utc};

use super::super::env::form;
use super::super::error::PageError;
use crate::domain::attachment::FileUpload;
use crate::domain::consultation::{Event, Position};
use crate::domain::{input, CountryCode};
use crate::http::SharedState;

/// A parsed action form.
#[derive(Debug)]
pub(crate) enum Action {
    Start {
        title: String,
        text: String,
        procedure: String,
        year: Option<i32>,
    },
    Consultation {
        reference: String,
        event: Event,
    },
    AddFocalPoint {
        country: String,
        name: String,
        email: String,
        language: Option<String>,
    },
    DeactivateFocalPoint {
        email: String,
    },
    ClearBouncing {
        email: String,
    },
    SetPresidency {
        year: i32,
        country: CountryCode,
    },
    RecordAnswer {
        reference: String,
        country: String,
        position: String,
        text: String,
        channel: Option<String>,
    },
    Release {
        id: String,
        country: String,
        reference: Option<String>,
    },
    Discard {
        id: String,
        reason: String,
    },
    ImportFocalPoints {
        text: String,
        csv: bool,
    },
}

/// Whether a focal point list is CSV: `format` when given (`csv`/`toml`), else the
/// TOML table header decides.
pub(crate) fn import_is_csv(format: Option<&str>, text: &str) -> Result<bool, PageError> {
    match format {
        Some("csv") => Ok(true),
        Some("toml") => Ok(false),
        None | Some("auto") => Ok(!text.contains("[[focal_point]]")),
        Some(other) => Err(PageError::Invalid(format!(
            "format: `{other}` must be toml or csv"
        ))),
    }
}

pub(crate) struct Fields<'a>(&'a BTreeMap<String, String>);

impl Fields<'_> {
    /// A field's trimmed value; `None` when absent or blank.
    fn opt(&self, name: &str) -> Option<String> {
        self.0
            .get(name)
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
            .map(str::to_string)
    }

    fn req(&self, name: &str) -> Result<String, PageError> {
        self.opt(name)
            .ok_or_else(|| PageError::Invalid(format!("{name}: is empty")))
    }

    /// A text kept as typed (only trailing blanks removed), required.
    fn text(&self, name: &str) -> Result<String, PageError> {
        self.req(name)?;
        Ok(self.0[name].trim_end().to_string())
    }

    fn country(&self, name: &str) -> Result<CountryCode, PageError> {
        CountryCode::parse(&self.req(name)?).map_err(|e| PageError::Invalid(format!("{name}: {e}")))
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<T, PageError> {
        let v = self.req(name)?;
        v.parse()
            .map_err(|_| PageError::Invalid(format!("{name}: `{v}` is not a number")))
    }
}

/// A typed value refused by [`input`]: a form error naming the field.
pub(crate) fn invalid(e: input::InputError) -> PageError {
    PageError::Invalid(e.to_string())
}

pub(crate) fn parse_action(
    kind: &str,
    fields: &BTreeMap<String, String>,
) -> Result<Action, PageError> {
    let f = Fields(fields);
    let on = |name: &str| fields.get(name).is_some_and(|v| v == "on" || v == "yes");
    // Checked here with the engine's own check, so that the confirmation page never
    // shows a value the action would refuse.
    let event = |event: Event| -> Result<Action, PageError> {
        Ok(Action::Consultation {
            reference: f.req("reference")?,
            event: input::check_event(event).map_err(invalid)?,
        })
    };
    match kind {
        "start" => Ok(Action::Start {
            title: input::title(&f.req("title")?).map_err(invalid)?,
            text: input::text("text", &f.text("text")?, input::MAX_TEXT_BYTES).map_err(invalid)?,
            procedure: f.opt("procedure").unwrap_or_else(|| "rcm-five-day".into()),
            year: f
                .opt("year")
                .map(|_| {
                    f.number("year")
                        .and_then(|y| input::year("year", y).map_err(invalid))
                })
                .transpose()?,
        }),
        "submit" => event(Event::Submit {
            // Left empty, the draft goes as it is.
            text: f.opt("text").map(|_| f.text("text")).transpose()?,
        }),
        "troika" => event(Event::TroikaFeedback {
            country: f.country("country")?,
            approve: match f.req("approve")?.as_str() {
                "yes" => true,
                "no" => false,
                other => {
                    return Err(PageError::Invalid(format!(
                        "approve: `{other}` must be yes or no"
                    )))
                }
            },
            comments: f.opt("comments"),
        }),
        "revise" => {
            let text = if on("no_changes") {
                None
            } else {
                Some(f.text("text")?)
            };
            event(Event::Revise {
                text,
                note: f.opt("note"),
            })
        }
        "extend" => event(Event::Extend {
            working_days: f.number("working_days")?,
            reason: f.req("reason")?,
        }),
        "withdraw" => event(Event::Withdraw {
            reason: f.req("reason")?,
        }),
        "reclassify" => event(Event::Reclassify {
            round: f.number("round")?,
            country: f.country("country")?,
            position: Position::parse(&f.req("position")?).ok_or_else(|| {
                PageError::Invalid("position: must be no_objection, objection or comments".into())
            })?,
            // The review forms name the answer shown, so that a newer one is not
            // reviewed unseen.
            received_at: f
                .opt("received_at")
                .map(|v| {
                    DateTime::parse_from_rfc3339(&v)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            PageError::Invalid(format!("received_at: `{v}` is not a time"))
                        })
                })
                .transpose()?,
        }),
        "report" => event(Event::Report {
            text: f.text("text")?,
        }),
        "fp_add" => Ok(Action::AddFocalPoint {
            country: f.req("country")?,
            name: input::name("name", &f.req("name")?).map_err(invalid)?,
            email: f.req("email")?,
            language: f.opt("language"),
        }),
        "fp_deactivate" => Ok(Action::DeactivateFocalPoint {
            email: f.req("email")?,
        }),
        "fp_clear_bouncing" => Ok(Action::ClearBouncing {
            email: f.req("email")?,
        }),
        "answer" => {
            // Checked here so the confirmation never shows a value the action refuses.
            let country = f.country("country")?.to_string();
            let position = f.req("position")?;
            if Position::parse(&position).is_none() {
                return Err(PageError::Invalid(
                    "position: must be no_objection, objection or comments".into(),
                ));
            }
            let text =
                f.0.get("text")
                    .map(|t| t.trim_end().to_string())
                    .unwrap_or_default();
            let channel = f.opt("channel");
            input::staff_answer(&text, channel.as_deref().unwrap_or_default()).map_err(invalid)?;
            Ok(Action::RecordAnswer {
                reference: f.req("reference")?,
                country,
                position,
                text,
                channel,
            })
        }
        "release" => Ok(Action::Release {
            id: f.req("id")?,
            country: f.country("country")?.to_string(),
            reference: f.opt("reference"),
        }),
        "discard" => Ok(Action::Discard {
            id: f.req("id")?,
            reason: input::required_line("reason", &f.req("reason")?, input::MAX_REASON_CHARS)
                .map_err(invalid)?,
        }),
        "fp_import" => {
            let text = f.text("import_text")?;
            let csv = import_is_csv(f.opt("format").as_deref(), &text)?;
            Ok(Action::ImportFocalPoints { text, csv })
        }
        "presidency" => Ok(Action::SetPresidency {
            year: f
                .number("year")
                .and_then(|y: i32| input::year("year", y).map_err(invalid))?,
            country: f.country("country")?,
        }),
        other => Err(PageError::Invalid(format!(
            "action: unknown action `{other}`"
        ))),
    }
}

/// The fields of an action form, and the files of a `multipart/form-data` one (its
/// `files` inputs; an empty file input is skipped). URL-encoded forms have no files.
pub(crate) async fn read_action_form(
    state: &SharedState,
    request: axum::extract::Request,
) -> Result<(BTreeMap<String, String>, Vec<FileUpload>), PageError> {
    use axum::extract::FromRequest as _;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("multipart/form-data"));
    if !multipart {
        let body = Bytes::from_request(request, state)
            .await
            .map_err(|e| PageError::Invalid(format!("body: {}", e.body_text())))?;
        return Ok((form(&body), Vec::new()));
    }
    let bad = |e: axum::extract::multipart::MultipartError| {
        PageError::Invalid(format!("body: {}", e.body_text()))
    };
    let mut parts = axum::extract::Multipart::from_request(request, state)
        .await
        .map_err(|e| PageError::Invalid(format!("body: {}", e.body_text())))?;
    let mut fields = BTreeMap::new();
    let mut files = Vec::new();
    while let Some(field) = parts.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_string();
        match field.file_name().map(str::to_string) {
            Some(filename) => {
                let content_type = field.content_type().map(str::to_string);
                let bytes = field.bytes().await.map_err(bad)?;
                if filename.is_empty() && bytes.is_empty() {
                    continue;
                }
                if name != "files" {
                    return Err(PageError::Invalid(format!(
                        "{name}: a file where none is expected"
                    )));
                }
                files.push(FileUpload {
                    filename,
                    content_type,
                    bytes: bytes.to_vec(),
                });
            }
            None => {
                let value = field.text().await.map_err(bad)?;
                fields.insert(name, value.replace("\r\n", "\n"));
            }
        }
    }
    Ok((fields, files))
}

/// The files a confirmation page carried over as hidden fields (`file_N_name`,
/// `file_N_type`, `file_N_b64`): the first post's files come back with the second,
/// so nothing is stored before the confirmation and nothing is stored twice.
pub(crate) fn carried_files(
    fields: &BTreeMap<String, String>,
) -> Result<Vec<FileUpload>, PageError> {
    use base64::Engine as _;
    let mut out = Vec::new();
    for i in 0.. {
        let Some(name) = fields.get(&format!("file_{i}_name")) else {
            break;
        };
        let b64 = fields
            .get(&format!("file_{i}_b64"))
            .map(String::as_str)
            .unwrap_or_default();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b64.trim())
            .map_err(|e| PageError::Invalid(format!("file_{i}_b64: {e}")))?;
        out.push(FileUpload {
            filename: name.clone(),
            content_type: fields.get(&format!("file_{i}_type")).cloned(),
            bytes,
        });
    }
    Ok(out)
}
