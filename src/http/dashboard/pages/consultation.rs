//! `GET /consultations/{reference}`: one consultation, its rounds, the matrix of
//! countries, the answers, the timeline and the forms its stage offers; and its
//! attachments as downloads.

use std::collections::{BTreeMap, HashSet};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use super::super::actions::offered;
use super::super::env::{redirect, Env};
use super::super::error::PageError;
use super::super::i18n::{label, tr};
use super::shared::{
    consultation_path, country_name, diff_lines, local_time, position_state, presidency_tz,
    query_flash, review_item_json, state_symbol, to_review_here, working_days_left, PageQuery,
    ReviewItemView,
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

    let rounds: Vec<Value> = c
        .rounds
        .iter()
        .map(|r| {
            json!({
                "number": r.number,
                "stage_label": label(lang, "stage", &r.stage),
                "version": r.version,
                "deadline": local_time(tz, r.deadline),
                "open": r.is_open(),
            })
        })
        .collect();
    let matrix: Vec<Value> = c
        .participants
        .iter()
        .map(|country| {
            let cells: Vec<Value> = c
                .rounds
                .iter()
                .map(|r| {
                    let s = report::round_state(r, *country, &evidence);
                    // An answer still in doubt is marked in the matrix too.
                    let doubt = to_review_here(c, r.number, *country);
                    json!({
                        "state": s.as_str(),
                        "label": label(lang, "state", s.as_str()),
                        "symbol": state_symbol(s),
                        "doubt": doubt.then(|| tr(lang, "needs_review")),
                    })
                })
                .collect();
            json!({
                "code": country.to_string(),
                "name": country_name(state, lang, *country),
                "cells": cells,
            })
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
    let answer = |r: u32, a: &Answer, kind: &str| -> Value {
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
        json!({
            "round": r,
            "country": a.country.to_string(),
            "country_name": country_name(state, lang, a.country),
            "state": s.as_str(),
            "label": label(lang, "state", s.as_str()),
            "symbol": state_symbol(s),
            "text": a.text,
            "received": local_time(tz, a.received_at),
            "from": from,
            "inbound": inbound,
            "recorded_by": recorded_by,
            "channel": channel,
            "flags": a.review_reasons().iter().map(|r| tr(lang, &format!("review_{}", r.as_str()))).collect::<Vec<_>>(),
            "needs_review": a.needs_review() && kind == "counts",
            "reviewed": a.review.is_some(),
            "kind": kind,
            "kind_label": env.t(kind),
        })
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

    let timeline: Vec<Value> = view
        .timeline
        .iter()
        .map(|e| {
            json!({
                "at": local_time(tz, e.at),
                "actor": e.actor,
                "action": e.action,
                "detail": if e.detail_json == "{}" || e.detail_json == "null" { String::new() } else { e.detail_json.clone() },
            })
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
        .map(|i| review_item_json(state, lang, tz, i))
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
    let forms: Map<String, Value> = offered::CONSULTATION_ACTIONS
        .iter()
        .map(|a| (a.to_string(), json!(offered.contains(a))))
        .collect();
    let any_form = !offered.is_empty();
    let troika_countries: Vec<Value> = c
        .troika
        .reviewers()
        .into_iter()
        .map(|code| json!({"code": code.to_string(), "name": country_name(state, lang, code)}))
        .collect();
    let participants: Vec<Value> = c
        .participants
        .iter()
        .map(|code| json!({"code": code.to_string(), "name": country_name(state, lang, *code)}))
        .collect();
    let positions: Vec<Value> = [
        Position::NoObjection,
        Position::Objection,
        Position::Comments,
    ]
    .iter()
    .map(|p| json!({"value": p.as_str(), "label": label(lang, "state", p.as_str())}))
    .collect();
    let procedure_name = state
        .engine
        .catalog()
        .procedure(&c.procedure)
        .map_or_else(|| c.procedure.clone(), |p| p.name.clone());
    let attachments: Vec<Value> = state
        .engine
        .attachments(reference)
        .await?
        .into_iter()
        .map(|a| {
            json!({
                "href": format!("{}/attachments/{}", consultation_path(reference), a.id),
                "filename": a.filename,
                "content_type": a.content_type,
                "size": a.size,
                "sha256": a.sha256,
                "version": a.version,
            })
        })
        .collect();

    env.page(
        StatusCode::OK,
        "consultation",
        json!({
            "flash": query_flash(env, query),
            "c": {
                "reference": c.reference.to_string(),
                "title": c.title,
                "stage": stage,
                "stage_label": label(lang, "stage", &stage),
                "procedure": procedure_name,
                "presidency": country_name(state, lang, c.presidency),
                "troika": c.troika.describe(),
                "version": current.number,
                "deadline": c.rounds.last().map(|r| local_time(tz, r.deadline)),
                "time_left": working_days_left(state, c),
            },
            "rounds": rounds,
            "matrix": matrix,
            "text": current.text,
            "diff": diff,
            "answers": answers,
            "timeline": timeline,
            "forms": forms,
            "any_form": any_form,
            "open_round": open_round,
            "troika_countries": troika_countries,
            "participants": participants,
            "positions": positions,
            "attachments": attachments,
            "to_review": to_review,
            "awaiting_decision": c.stage == Stage::AwaitingDecision,
        }),
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
