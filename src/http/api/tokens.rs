//! `/api/tokens`: API tokens (never the tokens themselves, except once at creation).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::{Extension, Json};

use super::shapes::*;
use crate::http::auth::{self, Caller, Role};
use crate::http::error::{ApiError, ApiJson};
use crate::http::SharedState;

pub async fn list_tokens(
    State(state): State<SharedState>,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> ApiResult<Json<Vec<TokenOut>>> {
    let Query(q) = query?;
    let rows = state.store.api_tokens(q.all).await?;
    Ok(Json(rows.into_iter().map(TokenOut::from).collect()))
}

pub async fn create_token(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<TokenIn>,
) -> ApiResult<(StatusCode, Json<CreatedTokenOut>)> {
    let role = Role::parse(&body.role).ok_or_else(|| {
        ApiError::validation(
            "role",
            format!("`{}` must be admin, ppt, viewer or ingest", body.role),
        )
    })?;
    let (token, row) = auth::create_token(
        state.store.as_ref(),
        &body.name,
        role,
        &caller.actor(),
        state.clock.now(),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedTokenOut {
            token,
            name: row.name,
            role: row.role.to_string(),
        }),
    ))
}

pub async fn revoke_token(
    State(state): State<SharedState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<TokenOut>> {
    let row = state
        .store
        .revoke_api_token(&name, &caller.actor(), state.clock.now())
        .await?;
    Ok(Json(row.into()))
}
