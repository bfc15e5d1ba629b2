//! `GET /consultations/{reference}`: one consultation, its rounds, the matrix of
//! countries, the answers, the timeline and the forms its stage offers; and its
//! attachments as downloads.

use std::collections::{BTreeMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde::Serialize;

use super::super::actions::offered;
use super::super::env::{redirect, Env};
use super::super::error::PageError;
use super::super::i18n::{label, tr};
use super::shared::{
    consultation_path, country_name, diff_lines, local_time, position_state, presidency_tz,
    query_flash, review_item_view, state_symbol, to_review_here, working_days_left, Choice,
    Country, DiffLine, PageQuery, ReviewItemView, TimeLeft,
};
use crate::domain::consultation::{Answer, AnswerSource, Context, Position, Stage};
use crate::http::SharedState;
use crate::report::{self};

/// `GET /consultations/{reference}`.
pub(crate) async fn consultation_page(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path(reference): Path<String>,
    Query(query): PageQuery,
) -> Response {
    let path = format!(
        "/consultations/{}",
        utf8_percent_encode(&reference, NON_ALPHANUMERIC)
    );
    let env = Env::new(&state, &headers, &query, &path).await;
    if env.session.is_none() {
        return redirect("/");
    }
    let result = consultation_view(&state, &env, &reference, &query).await;
    result.unwrap_or_else(|e| env.error(e))
}

pub(crate) async fn consultation_view(
    state: &SharedState,
    env: &Env,
    reference: &str,
    query: &BTreeMap<String, String>,
) -> Result<Response, PageError> {
    let view = report::consultation_view(&state.engine, reference).await?;
    let c = &view.consultation;
    let evidence = report::Evidence::read(&state.engine, c, None).await?;
    let tz = presidency_tz(state, c);
    let lang = env.lang;
    let stage = c.stage_name();

    let rounds: Vec<RoundView> = c
        .rounds
        .iter()
        .map(|r| RoundView {
            number: r.number,
            stage_label: label(lang, "stage", &r.stage),
            version: r.version,
            deadline: local_time(tz, r.deadline),
            open: r.is_open(),
        })
        .collect();
    let matrix: Vec<MatrixRow> = c
        .participants
        .iter()
        .map(|country| {
            let cells: Vec<MatrixCell> = c
                .rounds
                .iter()
                .map(|r| {
                    let s = report::round_state(r, *country, &evidence);
                    // An answer still in doubt is marked in the matrix too.
                    let doubt = to_review_here(c, r.number, *country);
                    MatrixCell {
                        state: s.as_str(),
                        label: label(lang, "state", s.as_str()),
                        symbol: state_symbol(s),
                        doubt: doubt.then(|| tr(lang, "needs_review")),
                    }
                })
                .collect();
            MatrixRow {
                code: country.to_string(),
                name: country_name(state, lang, *country),
                cells,
            }
        })
        .collect();

    // Answers that came by email (or the answer page) link to their raw message when
    // it is stored.
    let wanted: HashSet<&str> = c
        .rounds
        .iter()
        .flat_map(|r| r.answers.values().chain(&r.superseded).chain(&r.late))
        .filter_map(|a| match &a.source {
            AnswerSource::Email {
                message_id: Some(m),
                ..
            }
            | AnswerSource::Web {
                message_id: Some(m),
                ..
            } => Some(m.as_str()),
            AnswerSource::Email { .. } | AnswerSource::Web { .. } | AnswerSource::Staff { .. } => {
                None
            }
        })
        .collect();
    let mut inbound_ids: BTreeMap<String, i64> = BTreeMap::new();
    for id in wanted {
        if let Some(m) = state.store.inbound_by_message_id(id).await? {
            inbound_ids.insert(m.message_id, m.id);
        }
    }
    let answer = |r: u32, a: &Answer, kind: &'static str| -> AnswerView {
        let (from, inbound, recorded_by, channel) = match &a.source {
            AnswerSource::Email { from, message_id } => (
                Some(from.clone()),
                message_id
                    .as_ref()
                    .and_then(|m| inbound_ids.get(m))
                    .copied(),
                None,
                None,
            ),
            AnswerSource::Web {
                focal_point,
                message_id,
            } => (
                Some(format!("{focal_point} (web)")),
                message_id
                    .as_ref()
                    .and_then(|m| inbound_ids.get(m))
                    .copied(),
                None,
                None,
            ),
            AnswerSource::Staff {
                recorded_by,
                channel,
            } => (None, None, Some(recorded_by.clone()), Some(channel.clone())),
        };
        let s = position_state(a.position);
        AnswerView {
            round: r,
            country: a.country.to_string(),
            country_name: country_name(state, lang, a.country),
            state: s.as_str(),
            label: label(lang, "state", s.as_str()),
            symbol: state_symbol(s),
            text: a.text.clone(),
            received: local_time(tz, a.received_at),
            from,
            inbound,
            recorded_by,
            channel,
            flags: a
                .review_reasons()
                .iter()
                .map(|r| tr(lang, &format!("review_{}", r.as_str())))
                .collect(),
            needs_review: a.needs_review() && kind == "counts",
            reviewed: a.review.is_some(),
            kind,
            kind_label: env.t(kind),
        }
    };
    let mut answers = Vec::new();
    for r in c.rounds.iter().rev() {
        for a in r.answers.values() {
            answers.push(answer(r.number, a, "counts"));
        }
        for a in &r.late {
            answers.push(answer(r.number, a, "late"));
        }
        for a in &r.superseded {
            answers.push(answer(r.number, a, "superseded"));
        }
    }

    let timeline: Vec<TimelineEntry> = view
        .timeline
        .iter()
        .map(|e| TimelineEntry {
            at: local_time(tz, e.at),
            actor: e.actor.clone(),
            action: e.action.clone(),
            detail: if e.detail_json == "{}" || e.detail_json == "null" {
                String::new()
            } else {
                e.detail_json.clone()
            },
        })
        .collect();

    let current = c.current_version();
    let diff = c.diff_of_version(current.number).map(|d| diff_lines(&d));
    // The round whose answers can be reviewed: the open one, or the last one while
    // the decision waits.
    let open_round = match c.stage {
        Stage::AwaitingDecision => c.rounds.last().map(|r| r.number),
        _ => c.rounds.last().filter(|r| r.is_open()).map(|r| r.number),
    };
    let to_review: Vec<ReviewItemView> = report::review_items(c)
        .iter()
        .map(|i| review_item_view(state, lang, tz, i))
        .collect();
    // The forms offered are the actions the state machine takes in this stage.
    let catalog = state.engine.catalog();
    let offered = catalog
        .procedure(&c.procedure)
        .map(|procedure| {
            let ctx = Context {
                procedure,
                body: &catalog.body,
                calendars: &catalog.calendars,
            };
            offered::offered(c, &ctx, state.clock.now())
        })
        .unwrap_or_default();
    let forms: BTreeMap<String, bool> = offered::CONSULTATION_ACTIONS
        .iter()
        .map(|a| (a.to_string(), offered.contains(a)))
        .collect();
    let any_form = !offered.is_empty();
    let troika_countries: Vec<Country> = c
        .troika
        .reviewers()
        .into_iter()
        .map(|code| Country {
            code: code.to_string(),
            name: country_name(state, lang, code),
        })
        .collect();
    let participants: Vec<Country> = c
        .participants
        .iter()
        .map(|code| Country {
            code: code.to_string(),
            name: country_name(state, lang, *code),
        })
        .collect();
    let positions: Vec<Choice> = [
        Position::NoObjection,
        Position::Objection,
        Position::Comments,
    ]
    .iter()
    .map(|p| Choice {
        value: p.as_str(),
        label: label(lang, "state", p.as_str()),
    })
    .collect();
    let procedure_name = state
        .engine
        .catalog()
        .procedure(&c.procedure)
        .map_or_else(|| c.procedure.clone(), |p| p.name.clone());
    let attachments: Vec<AttachmentView> = state
        .engine
        .attachments(&c.reference)
        .await?
        .into_iter()
        .map(|a| AttachmentView {
            href: format!("{}/attachments/{}", consultation_path(reference), a.id),
            filename: a.filename,
            content_type: a.content_type,
            size: a.size,
            sha256: a.sha256,
            version: a.version,
        })
        .collect();

    env.page(
        StatusCode::OK,
        "consultation",
        ConsultationPage {
            flash: query_flash(env, query),
            c: ConsultationHead {
                reference: c.reference.to_string(),
                title: c.title.clone(),
                stage_label: label(lang, "stage", &stage),
                stage,
                procedure: procedure_name,
                presidency: country_name(state, lang, c.presidency),
                troika: c.troika.describe(),
                version: current.number,
                deadline: c.rounds.last().map(|r| local_time(tz, r.deadline)),
                time_left: working_days_left(state, c),
            },
            rounds,
            matrix,
            text: current.text.clone(),
            diff,
            answers,
            timeline,
            forms,
            any_form,
            open_round,
            troika_countries,
            participants,
            positions,
            attachments,
            to_review,
            awaiting_decision: c.stage == Stage::AwaitingDecision,
        },
    )
}

/// `GET /consultations/{reference}/attachments/{id}`: the file as a download, for
/// any logged-in role (the same response as the API's).
pub(crate) async fn attachment_download(
    State(state): State<SharedState>,
    headers: HeaderMap,
    Path((reference, id)): Path<(String, String)>,
) -> Response {
    let env = Env::new(&state, &headers, &BTreeMap::new(), "/").await;
    if env.session.is_none() {
        return redirect("/");
    }
    match crate::http::api::attachment_response(&state, &reference, &id).await {
        Ok(r) => r,
        Err(e) => env.error(e.into()),
    }
}

/// `templates/dashboard/consultation.hbs`'s data: one consultation and its forms.
#[derive(Serialize)]
struct ConsultationPage {
    flash: Option<String>,
    c: ConsultationHead,
    rounds: Vec<RoundView>,
    matrix: Vec<MatrixRow>,
    text: String,
    diff: Option<Vec<DiffLine>>,
    answers: Vec<AnswerView>,
    timeline: Vec<TimelineEntry>,
    /// Each of the consultation's actions, and whether its form is offered.
    forms: BTreeMap<String, bool>,
    any_form: bool,
    open_round: Option<u32>,
    troika_countries: Vec<Country>,
    participants: Vec<Country>,
    positions: Vec<Choice>,
    attachments: Vec<AttachmentView>,
    to_review: Vec<ReviewItemView>,
    awaiting_decision: bool,
}

/// The consultation's heading: what it is, where it stands, how long is left.
#[derive(Serialize)]
struct ConsultationHead {
    reference: String,
    title: String,
    stage: String,
    stage_label: String,
    procedure: String,
    presidency: String,
    troika: String,
    version: u32,
    deadline: Option<String>,
    time_left: Option<TimeLeft>,
}

/// A round of the consultation.
#[derive(Serialize)]
struct RoundView {
    number: u32,
    stage_label: String,
    version: u32,
    deadline: String,
    open: bool,
}

/// A participant's line of the matrix: its state in each round.
#[derive(Serialize)]
struct MatrixRow {
    code: String,
    name: String,
    cells: Vec<MatrixCell>,
}

/// A participant's state in one round.
#[derive(Serialize)]
struct MatrixCell {
    state: &'static str,
    label: String,
    symbol: &'static str,
    /// Set when the answer is still to review.
    doubt: Option<String>,
}

/// An answer as the answers table shows it.
#[derive(Serialize)]
struct AnswerView {
    round: u32,
    country: String,
    country_name: String,
    state: &'static str,
    label: String,
    symbol: &'static str,
    text: String,
    received: String,
    from: Option<String>,
    /// The stored raw message the answer came in, when there is one.
    inbound: Option<i64>,
    recorded_by: Option<String>,
    channel: Option<String>,
    flags: Vec<String>,
    needs_review: bool,
    reviewed: bool,
    /// `counts`, `late` or `superseded`.
    kind: &'static str,
    kind_label: String,
}

/// An entry of the consultation's audit trail.
#[derive(Serialize)]
struct TimelineEntry {
    at: String,
    actor: String,
    action: String,
    detail: String,
}

/// An attachment of the consultation, with its download link.
#[derive(Serialize)]
struct AttachmentView {
    href: String,
    filename: String,
    content_type: String,
    size: i64,
    sha256: String,
    version: u32,
}
