//! Rows to port types and back: the decoders and the inserts that several
//! aggregates' transactions share (a step writes audit, notices, timers and
//! attachments).

use anyhow::Context;
use serde_json::json;
use sqlx::any::AnyRow;
use sqlx::{Any, Transaction};

use super::db::*;
use crate::domain::reference::ConsultationRef;
use crate::domain::stage_ref::StageRef;
use crate::domain::CountryCode;
use crate::engine::ports::*;
use crate::mail::inbound::Kind;

pub(super) fn consultation_from_row(row: &AnyRow) -> Result<StoredConsultation, StoreError> {
    // The reference is the row's key: a bad one names itself.
    let key: String = get(row, "reference")?;
    Ok(StoredConsultation {
        reference: reference_value("consultations", &key, "reference", &key)?,
        procedure: get(row, "procedure")?,
        title: get(row, "title")?,
        stage: get_parsed(row, "consultations", &key, "stage")?,
        open: get_bool(row, "open")?,
        state_json: get(row, "state_json")?,
        version: get(row, "version")?,
        created_at: get_time(row, "created_at")?,
        updated_at: get_time(row, "updated_at")?,
    })
}

pub(super) fn audit_from_row(row: &AnyRow) -> Result<AuditEntry, StoreError> {
    let id: i64 = get(row, "id")?;
    Ok(AuditEntry {
        id,
        reference: get_reference_opt(row, "audit_log", &id, "reference")?,
        at: get_time(row, "at")?,
        actor: get(row, "actor")?,
        action: get(row, "action")?,
        detail_json: get(row, "detail_json")?,
    })
}

/// The rows of a listing that read; one that does not is left out and logged with
/// the reason (`StoreError::Corrupt` names table, id, field and value), so that one
/// bad row never empties a page, `/status` or a list. Counts are read apart and
/// still count it; the queues that must act on a row (the outbox's claim, due
/// timers) fail or defer it instead.
pub(super) fn readable<T>(
    rows: &[AnyRow],
    read: fn(&AnyRow) -> Result<T, StoreError>,
    listing: &str,
) -> Vec<T> {
    rows.iter()
        .filter_map(|row| match read(row) {
            Ok(value) => Some(value),
            Err(e) => {
                tracing::error!(error = %e, listing, "a row that cannot be read is left out");
                None
            }
        })
        .collect()
}

pub(super) fn notice_from_row(row: &AnyRow) -> Result<Notice, StoreError> {
    let id: i64 = get(row, "id")?;
    let sent_at: Option<i64> = get(row, "sent_at")?;
    Ok(Notice {
        id,
        status: get_parsed(row, "outbox", &id, "status")?,
        attempts: get(row, "attempts")?,
        next_attempt_at: get_time(row, "next_attempt_at")?,
        last_error: get(row, "last_error")?,
        sent_at: sent_at.map(from_ms).transpose()?,
        server_reply: get(row, "server_reply")?,
        notice: NewNotice {
            reference: get_reference_opt(row, "outbox", &id, "reference")?,
            kind: get_parsed(row, "outbox", &id, "kind")?,
            round: get(row, "round")?,
            country: get_parsed_opt(row, "outbox", &id, "country")?,
            recipient: get(row, "recipient")?,
            recipient_name: get(row, "recipient_name")?,
            language: get_parsed(row, "outbox", &id, "language")?,
            subject: get(row, "subject")?,
            body_text: get(row, "body_text")?,
            body_html: get(row, "body_html")?,
            message_id: get(row, "message_id")?,
            payload_json: get(row, "payload_json")?,
            created_at: get_time(row, "created_at")?,
        },
    })
}

pub(super) fn timer_from_row(row: &AnyRow) -> Result<Timer, StoreError> {
    let id: i64 = get(row, "id")?;
    Ok(Timer {
        id,
        reference: get_reference(row, "timers", &id, "reference")?,
        kind: get(row, "kind")?,
        due_at: get_time(row, "due_at")?,
        event_json: get(row, "event_json")?,
    })
}

pub(super) fn schedule_from_row(row: &AnyRow) -> Result<ScheduleRow, StoreError> {
    let last_due_at: Option<i64> = get(row, "last_due_at")?;
    let last_fired_at: Option<i64> = get(row, "last_fired_at")?;
    Ok(ScheduleRow {
        name: get(row, "name")?,
        spec: get(row, "spec")?,
        next_due_at: get_time(row, "next_due_at")?,
        last_due_at: last_due_at.map(from_ms).transpose()?,
        last_fired_at: last_fired_at.map(from_ms).transpose()?,
        updated_at: get_time(row, "updated_at")?,
    })
}

/// A text column read as a domain value, once, here: a value that does not parse
/// is [`StoreError::Corrupt`], naming the row.
pub(super) fn get_parsed<T: std::str::FromStr>(
    row: &AnyRow,
    table: &'static str,
    id: &dyn std::fmt::Display,
    column: &'static str,
) -> Result<T, StoreError> {
    let value: String = get(row, column)?;
    parse_value(table, id, column, &value)
}

/// A nullable text column read as a domain value (see [`get_parsed`]).
pub(super) fn get_parsed_opt<T: std::str::FromStr>(
    row: &AnyRow,
    table: &'static str,
    id: &dyn std::fmt::Display,
    column: &'static str,
) -> Result<Option<T>, StoreError> {
    let value: Option<String> = get(row, column)?;
    value
        .map(|v| parse_value(table, id, column, &v))
        .transpose()
}

/// The `stage` column of an inbound message (see [`StageRef::key`]).
fn get_stage(row: &AnyRow, id: &i64) -> Result<Option<StageRef>, StoreError> {
    let value: Option<String> = get(row, "stage")?;
    value
        .map(|v| {
            StageRef::parse_key(&v).ok_or_else(|| StoreError::Corrupt {
                table: "inbound_messages",
                id: id.to_string(),
                field: "stage",
                value: v.clone(),
            })
        })
        .transpose()
}

/// `value` of `field` of a row as a domain value, or [`StoreError::Corrupt`].
pub(super) fn parse_value<T: std::str::FromStr>(
    table: &'static str,
    id: &dyn std::fmt::Display,
    field: &'static str,
    value: &str,
) -> Result<T, StoreError> {
    value.parse().map_err(|_| StoreError::Corrupt {
        table,
        id: id.to_string(),
        field,
        value: value.to_string(),
    })
}

/// A reference column read as a [`ConsultationRef`]. Only its canonical form (the
/// one the store writes) is one: the liberal forms a person may type (`[rcm-…]`)
/// would name another row's key, so they are [`StoreError::Corrupt`] here.
pub(super) fn reference_value(
    table: &'static str,
    id: &dyn std::fmt::Display,
    field: &'static str,
    value: &str,
) -> Result<ConsultationRef, StoreError> {
    match ConsultationRef::parse_canonical(value) {
        Ok(r) => Ok(r),
        Err(_) => Err(StoreError::Corrupt {
            table,
            id: id.to_string(),
            field,
            value: value.to_string(),
        }),
    }
}

/// A reference column (see [`reference_value`]).
pub(super) fn get_reference(
    row: &AnyRow,
    table: &'static str,
    id: &dyn std::fmt::Display,
    column: &'static str,
) -> Result<ConsultationRef, StoreError> {
    let value: String = get(row, column)?;
    reference_value(table, id, column, &value)
}

/// A nullable reference column (see [`reference_value`]).
pub(super) fn get_reference_opt(
    row: &AnyRow,
    table: &'static str,
    id: &dyn std::fmt::Display,
    column: &'static str,
) -> Result<Option<ConsultationRef>, StoreError> {
    let value: Option<String> = get(row, column)?;
    value
        .map(|v| reference_value(table, id, column, &v))
        .transpose()
}

pub(super) fn focal_point_from_row(row: &AnyRow) -> Result<FocalPointRow, StoreError> {
    let id: i64 = get(row, "id")?;
    Ok(FocalPointRow {
        id,
        country: get_parsed(row, "focal_points", &id, "country")?,
        name: get(row, "name")?,
        email: get_parsed(row, "focal_points", &id, "email")?,
        language: get_parsed(row, "focal_points", &id, "language")?,
        active: get_bool(row, "active")?,
    })
}

pub(super) fn api_token_from_row(row: &AnyRow) -> Result<ApiTokenRow, StoreError> {
    let revoked_at: Option<i64> = get(row, "revoked_at")?;
    let id: i64 = get(row, "id")?;
    Ok(ApiTokenRow {
        id,
        name: get(row, "name")?,
        role: get_parsed(row, "api_tokens", &id, "role")?,
        token_hash: get(row, "token_hash")?,
        created_by: get(row, "created_by")?,
        created_at: get_time(row, "created_at")?,
        revoked_at: revoked_at.map(from_ms).transpose()?,
    })
}

pub(super) fn focal_point_detail(fp: &FocalPointRow) -> serde_json::Value {
    json!({
        "country": fp.country,
        "email": fp.email,
        "name": fp.name,
        "language": fp.language.as_str(),
        "active": fp.active,
    })
}

pub(super) async fn insert_audit(
    tx: &mut Transaction<'static, Any>,
    entry: &NewAudit,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO audit_log (reference, at, actor, action, detail_json) VALUES ($1, $2, $3, $4, $5)")
        .bind(entry.reference.as_ref().map(ConsultationRef::to_string))
        .bind(ms(entry.at))
        .bind(&entry.actor)
        .bind(&entry.action)
        .bind(&entry.detail_json)
        .execute(&mut **tx)
        .await
        .context("writing an audit entry")?;
    Ok(())
}

pub(super) async fn insert_notice(
    tx: &mut Transaction<'static, Any>,
    n: &NewNotice,
) -> Result<(), StoreError> {
    let result = sqlx::query_scalar(
        "INSERT INTO outbox (reference, kind, round, country, recipient, recipient_name, language, subject, \
         message_id, status, attempts, next_attempt_at, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 'pending', 0, $10, $10) RETURNING id",
    )
    .bind(n.reference.as_ref().map(ConsultationRef::to_string))
    .bind(n.kind.as_str())
    .bind(n.round)
    .bind(n.country.as_ref().map(CountryCode::as_str))
    .bind(&n.recipient)
    .bind(&n.recipient_name)
    .bind(n.language.as_str())
    .bind(&n.subject)
    .bind(&n.message_id)
    .bind(ms(n.created_at))
    .fetch_one(&mut **tx)
    .await;
    let id: i64 = match result {
        Ok(id) => id,
        Err(e) if is_unique_violation(&e) => {
            return Err(StoreError::Duplicate(format!("notice {}", n.message_id)))
        }
        Err(e) => return Err(anyhow::Error::new(e).context("writing a notice").into()),
    };
    sqlx::query(
        "INSERT INTO outbox_bodies (notice_id, body_text, body_html, payload_json) \
         VALUES ($1, $2, $3, $4)",
    )
    .bind(id)
    .bind(&n.body_text)
    .bind(n.body_html.as_deref())
    .bind(&n.payload_json)
    .execute(&mut **tx)
    .await
    .context("writing a notice's content")?;
    Ok(())
}

pub(super) async fn insert_timer(
    tx: &mut Transaction<'static, Any>,
    t: &NewTimer,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO timers (reference, kind, due_at, event_json) VALUES ($1, $2, $3, $4)")
        .bind(t.reference.to_string())
        .bind(&t.kind)
        .bind(ms(t.due_at))
        .bind(&t.event_json)
        .execute(&mut **tx)
        .await
        .context("writing a timer")?;
    Ok(())
}

pub(super) const ATTACHMENT_COLUMNS: &str =
    "id, reference, version, filename, content_type, size, sha256, actor, created_at";

pub(super) fn attachment_from_row(row: &AnyRow) -> Result<AttachmentRow, StoreError> {
    let id: i64 = get(row, "id")?;
    let version: i64 = get(row, "version")?;
    Ok(AttachmentRow {
        id,
        reference: get_reference(row, "attachments", &id, "reference")?,
        version: u32::try_from(version).context("stored attachment version out of range")?,
        filename: get(row, "filename")?,
        content_type: get(row, "content_type")?,
        size: get(row, "size")?,
        sha256: get(row, "sha256")?,
        actor: get(row, "actor")?,
        created_at: get_time(row, "created_at")?,
    })
}

pub(super) async fn insert_attachment(
    tx: &mut Transaction<'static, Any>,
    a: &NewAttachment,
) -> Result<(), StoreError> {
    let result = sqlx::query(
        "INSERT INTO attachments (reference, version, filename, content_type, size, sha256, content, \
         actor, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.reference.to_string())
    .bind(i64::from(a.version))
    .bind(&a.filename)
    .bind(&a.content_type)
    .bind(i64::try_from(a.content.len()).context("attachment size")?)
    .bind(&a.sha256)
    .bind(a.content.clone())
    .bind(&a.actor)
    .bind(ms(a.created_at))
    .execute(&mut **tx)
    .await;
    match result {
        Ok(_) => Ok(()),
        Err(e) if is_unique_violation(&e) => Err(StoreError::Duplicate(format!(
            "an attachment of {} with the content of `{}`",
            a.reference, a.filename
        ))),
        Err(e) => Err(anyhow::Error::new(e)
            .context(format!("storing the attachment `{}`", a.filename))
            .into()),
    }
}

pub(super) const INBOUND_COLUMNS: &str =
    "id, message_id, sha256, raw, size, truncated, source, received_at, status, sender, subject, \
     kind, reference, round, country, focal_point_id, position, ambiguous, reason, text, trimmed, \
     error, processed_at, stage, conditional";

pub(super) fn inbound_from_row(row: &AnyRow) -> Result<InboundMessage, StoreError> {
    let id: i64 = get(row, "id")?;
    let processed_at: Option<i64> = get(row, "processed_at")?;
    Ok(InboundMessage {
        id,
        message_id: get(row, "message_id")?,
        sha256: get(row, "sha256")?,
        raw: get(row, "raw")?,
        size: get(row, "size")?,
        truncated: get_bool(row, "truncated")?,
        source: get_parsed(row, "inbound_messages", &id, "source")?,
        received_at: get_time(row, "received_at")?,
        status: get_parsed(row, "inbound_messages", &id, "status")?,
        reading: InboundReading {
            sender: get(row, "sender")?,
            subject: get(row, "subject")?,
            kind: get_parsed_opt(row, "inbound_messages", &id, "kind")?,
            reference: get_parsed_opt(row, "inbound_messages", &id, "reference")?,
            round: get(row, "round")?,
            country: get_parsed_opt(row, "inbound_messages", &id, "country")?,
            focal_point_id: get(row, "focal_point_id")?,
            position: get_parsed_opt(row, "inbound_messages", &id, "position")?,
            ambiguous: get_bool(row, "ambiguous")?,
            reason: get(row, "reason")?,
            text: get(row, "text")?,
            trimmed: get(row, "trimmed")?,
            stage: get_stage(row, &id)?,
            conditional: get_bool(row, "conditional")?,
        },
        error: get(row, "error")?,
        processed_at: processed_at.map(from_ms).transpose()?,
    })
}

/// Writes one inbound message's step (status, reading, bouncing marks, audit,
/// notices) inside `tx`. `false`, with nothing written, when the row's status is
/// not one of `only_from`.
pub(super) async fn write_inbound_step(
    tx: &mut Transaction<'static, Any>,
    step: &InboundStep,
) -> Result<bool, StoreError> {
    let current: Option<String> =
        sqlx::query_scalar("SELECT status FROM inbound_messages WHERE id = $1")
            .bind(step.id)
            .fetch_optional(&mut **tx)
            .await
            .context("reading an inbound message's status")?;
    let Some(current) = current else {
        return Err(StoreError::NotFound(format!("inbound message {}", step.id)));
    };
    if !step.only_from.is_empty() && !step.only_from.iter().any(|s| s.as_str() == current) {
        return Ok(false);
    }
    let r = &step.reading;
    let updated = sqlx::query(
        "UPDATE inbound_messages SET status = $2, sender = $3, subject = $4, kind = $5, reference = $6, \
         round = $7, country = $8, focal_point_id = $9, position = $10, ambiguous = $11, reason = $12, \
         text = $13, trimmed = $14, error = $15, processed_at = $16, stage = $17, conditional = $19 \
         WHERE id = $1 AND status = $18",
    )
    .bind(step.id)
    .bind(step.status.as_str())
    .bind(r.sender.as_deref())
    .bind(r.subject.as_deref())
    .bind(r.kind.as_ref().map(Kind::as_str))
    .bind(r.reference.as_ref().map(ConsultationRef::to_string))
    .bind(r.round)
    .bind(r.country.as_ref().map(CountryCode::as_str))
    .bind(r.focal_point_id)
    .bind(r.position.as_ref().map(RecordedPosition::as_str))
    .bind(i64::from(r.ambiguous))
    .bind(r.reason.as_deref())
    .bind(r.text.as_deref())
    .bind(r.trimmed.as_deref())
    .bind(step.error.as_deref())
    .bind(ms(step.at))
    .bind(r.stage.as_ref().map(StageRef::key))
    .bind(&current)
    .bind(i64::from(r.conditional))
    .execute(&mut **tx)
    .await
    .context("recording how an inbound message was read")?;
    // Another transaction changed the row between the read and this update (it
    // waited on the row lock, then found the status moved): nothing is written.
    if updated.rows_affected() == 0 {
        return Ok(false);
    }
    for id in &step.bouncing {
        sqlx::query("UPDATE focal_points SET bouncing = 1, updated_at = $2 WHERE id = $1")
            .bind(id)
            .bind(ms(step.at))
            .execute(&mut **tx)
            .await
            .context("marking a focal point bouncing")?;
    }
    for entry in &step.audit {
        insert_audit(tx, entry).await?;
    }
    for notice in &step.notices {
        insert_notice(tx, notice).await?;
    }
    Ok(true)
}

/// Writes a procedure step (state, audit, notices, timers, attachments) inside `tx`:
/// what `commit_step` commits on its own and `commit_inbound_decision` with the
/// inbound messages it decided about.
pub(super) async fn write_step(
    tx: &mut Transaction<'static, Any>,
    step: &Step,
) -> Result<(), StoreError> {
    let c = &step.consultation;
    let reference = c.reference.to_string();
    let conflict = || StoreError::Conflict {
        reference: reference.clone(),
        expected: step.expected_version,
    };

    if step.expected_version == 0 {
        let result = sqlx::query(
            "INSERT INTO consultations (reference, body, year, seq, procedure, title, stage, open, \
             state_json, version, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 1, $10, $11)",
        )
        .bind(&reference)
        .bind(c.reference.body())
        .bind(i64::from(c.reference.year()))
        .bind(i64::from(c.reference.seq()))
        .bind(&c.procedure)
        .bind(&c.title)
        .bind(c.stage.as_str())
        .bind(i64::from(c.open))
        .bind(&c.state_json)
        .bind(ms(c.created_at))
        .bind(ms(c.updated_at))
        .execute(&mut **tx)
        .await;
        match result {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate(format!(
                    "consultation {}",
                    c.reference
                )))
            }
            Err(e) => {
                return Err(anyhow::Error::new(e)
                    .context("creating the consultation")
                    .into())
            }
        }
    } else {
        let updated = sqlx::query(
            "UPDATE consultations SET procedure = $1, title = $2, stage = $3, open = $4, state_json = $5, \
             version = version + 1, updated_at = $6 WHERE reference = $7 AND version = $8",
        )
        .bind(&c.procedure)
        .bind(&c.title)
        .bind(c.stage.as_str())
        .bind(i64::from(c.open))
        .bind(&c.state_json)
        .bind(ms(c.updated_at))
        .bind(&reference)
        .bind(step.expected_version)
        .execute(&mut **tx)
        .await
        .context("updating the consultation")?;
        if updated.rows_affected() == 0 {
            return Err(conflict());
        }
    }

    // The fired timer goes first: `replace_timers` would delete it too and hide
    // that another replica had already fired it.
    if let Some(id) = step.fired_timer {
        let deleted = sqlx::query("DELETE FROM timers WHERE id = $1")
            .bind(id)
            .execute(&mut **tx)
            .await
            .context("deleting the fired timer")?;
        if deleted.rows_affected() == 0 {
            return Err(conflict());
        }
    }

    for entry in &step.audit {
        insert_audit(tx, entry).await?;
    }
    for notice in &step.notices {
        insert_notice(tx, notice).await?;
    }
    if step.replace_timers {
        sqlx::query("DELETE FROM timers WHERE reference = $1")
            .bind(&reference)
            .execute(&mut **tx)
            .await
            .context("deleting the consultation's timers")?;
    }
    for timer in &step.timers {
        insert_timer(tx, timer).await?;
    }
    for attachment in &step.attachments {
        insert_attachment(tx, attachment).await?;
    }
    Ok(())
}
