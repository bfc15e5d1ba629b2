//! `POST /actions`: the first post shows the confirmation page, the second acts.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;

use super::super::env::{redirect, Env};
use super::super::error::PageError;
use super::super::pages::shared::consultation_path;
use super::super::session::{check_csrf, web_actor};
use super::confirm::confirm_page;
use super::parse::{carried_files, parse_action, read_action_form, Action};
use crate::directory::{self, FocalPointInput};
use crate::domain::attachment::FileUpload;
use crate::domain::consultation::Event;
use crate::engine::StartRequest;
use crate::http::access;
use crate::http::error::ApiError;
use crate::http::SharedState;

/// `POST /actions`: the first post shows the confirmation page, the second (with
/// `confirm=yes`) acts. Both need the session's CSRF token and the action's role.
pub(crate) async fn action(
    State(state): State<SharedState>,
    request: axum::extract::Request,
) -> Response {
    let env = Env::new(&state, request.headers(), &BTreeMap::new(), "/").await;
    // Without a session nothing more is read: an anonymous upload is refused
    // before its body arrives (hyper then closes the connection).
    if env.session.is_none() {
        return env.error(PageError::Unauthorized);
    }
    let result = match read_action_form(&state, request).await {
        Ok((fields, uploads)) => act(&state, &env, &fields, uploads).await,
        Err(e) => Err(e),
    };
    result.unwrap_or_else(|e| env.error(e))
}

pub(crate) async fn act(
    state: &SharedState,
    env: &Env,
    fields: &BTreeMap<String, String>,
    uploads: Vec<FileUpload>,
) -> Result<Response, PageError> {
    check_csrf(env, fields)?;
    let kind = fields.get("action").map(String::as_str).unwrap_or_default();
    // The role comes from the one table of routes and actions the API reads too.
    let (kind, role) = access::actions()
        .find(|name| *name == kind)
        .and_then(|name| Some((name, access::action_role(name)?)))
        .ok_or_else(|| PageError::Invalid(format!("action: unknown action `{kind}`")))?;
    let session = env.require(role)?;
    // An uploaded focal point list becomes the import's text (and rides along in the
    // confirmation as that text).
    let mut uploads = uploads;
    let mut import_fields;
    let fields = if kind == "fp_import" && !uploads.is_empty() {
        let file = uploads.remove(0);
        let text = String::from_utf8(file.bytes).map_err(|_| {
            PageError::Invalid(format!("files: {} is not UTF-8 text", file.filename))
        })?;
        import_fields = fields.clone();
        import_fields.insert("import_text".into(), text.replace("\r\n", "\n"));
        if import_fields
            .get("format")
            .is_none_or(|f| f.is_empty() || f == "auto")
        {
            let by_name = file.filename.to_ascii_lowercase();
            if by_name.ends_with(".csv") {
                import_fields.insert("format".into(), "csv".into());
            } else if by_name.ends_with(".toml") {
                import_fields.insert("format".into(), "toml".into());
            }
        }
        &import_fields
    } else {
        fields
    };
    let action = parse_action(kind, fields)?;
    let mut files = carried_files(fields)?;
    files.extend(uploads);
    if !files.is_empty() && !matches!(kind, "start" | "submit" | "revise") {
        return Err(PageError::Invalid(format!(
            "files: files can be attached when starting a consultation, submitting its \
             draft or publishing a revision, not with `{kind}`"
        )));
    }
    if fields.get("confirm").map(String::as_str) != Some("yes") {
        // The files are checked now, so that the confirmation shows what will be sent.
        let reference = match &action {
            Action::Consultation { reference, .. } => Some(reference.as_str()),
            _ => None,
        };
        let valid = if files.is_empty() {
            Vec::new()
        } else {
            // An unknown consultation is refused before its files are checked.
            let current = match reference {
                Some(r) => Some(state.engine.load(r).await?.0.reference),
                None => None,
            };
            state
                .engine
                .check_attachments(current.as_ref(), files)
                .await
                .map_err(|e| ApiError::from_engine(e, "files"))?
        };
        return confirm_page(state, env, kind, &action, fields, &valid).await;
    }
    let actor = web_actor(session);
    let engine = &state.engine;
    let back = match action {
        Action::Start {
            title,
            text,
            procedure,
            year,
        } => {
            let c = engine
                .start(
                    StartRequest {
                        title,
                        text,
                        procedure,
                        year,
                        draft_only: false,
                        attachments: files,
                    },
                    &actor,
                )
                .await
                .map_err(|e| ApiError::from_engine(e, "text"))?;
            consultation_path(&c.reference.to_string())
        }
        Action::Consultation { reference, event } => {
            let field = match &event {
                Event::Extend { .. } => "working_days",
                Event::Reclassify { .. } | Event::TroikaFeedback { .. } => "country",
                Event::Withdraw { .. } => "reason",
                _ => "text",
            };
            engine
                .apply_with_files(&reference, event, &actor, files)
                .await
                .map_err(|e| ApiError::from_engine(e, field))?;
            consultation_path(&reference)
        }
        Action::AddFocalPoint {
            country,
            name,
            email,
            language,
        } => {
            directory::add_focal_point(
                state.store.as_ref(),
                &engine.catalog().body,
                FocalPointInput {
                    country: &country,
                    name: &name,
                    email: &email,
                    language: language.as_deref(),
                },
                &actor,
                state.clock.now(),
            )
            .await
            .map_err(ApiError::from)?;
            "/directory".to_string()
        }
        Action::DeactivateFocalPoint { email } => {
            directory::deactivate_focal_point(
                state.store.as_ref(),
                &email,
                &actor,
                state.clock.now(),
            )
            .await
            .map_err(ApiError::from)?;
            "/directory".to_string()
        }
        Action::ClearBouncing { email } => {
            directory::clear_bouncing(state.store.as_ref(), &email, &actor, state.clock.now())
                .await
                .map_err(ApiError::from)?;
            "/directory".to_string()
        }
        Action::SetPresidency { year, country } => {
            engine
                .set_presidency(year, country, &actor)
                .await
                .map_err(|e| ApiError::from_engine(e, "country"))?;
            "/directory".to_string()
        }
        Action::RecordAnswer {
            reference,
            country,
            position,
            text,
            channel,
        } => {
            let answer =
                crate::http::api::staff_answer(state, &country, &position, text, channel, &actor)?;
            engine
                .apply(&reference, Event::Answer { answer }, &actor)
                .await
                .map_err(|e| ApiError::from_engine(e, "text"))?;
            consultation_path(&reference)
        }
        Action::Release {
            id,
            country,
            reference,
        } => {
            let (m, _) = crate::http::inbound::release_message(
                state,
                &id,
                &country,
                reference.as_deref(),
                &actor,
            )
            .await?;
            format!("/inbound/{}", m.id)
        }
        Action::Discard { id, reason } => {
            let m = crate::http::inbound::discard_message(state, &id, &reason, &actor).await?;
            format!("/inbound/{}", m.id)
        }
        Action::ImportFocalPoints { text, csv } => {
            crate::http::api::import_text(state, text, csv, &actor).await?;
            "/directory".to_string()
        }
    };
    tracing::info!(action = kind, caller = %session.caller.name, "dashboard action");
    Ok(redirect(&format!("{back}?done={kind}")))
}
