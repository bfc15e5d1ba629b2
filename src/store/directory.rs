//! The focal point directory and the presidency years set by the TS.

use anyhow::Context;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::{Any, Transaction};

use super::db::*;
use super::rows::*;
use crate::domain::focal_point::FocalPointEmail;
use crate::domain::CountryCode;
use crate::engine::ports::*;

impl SqlStore {
    /// Sets `assignment` (fixed SQL, such as `active = 0`) on every focal point row
    /// with this address, in `tx`; the rows as they are after, oldest first.
    /// `NotFound` when no row has the address.
    async fn update_focal_points_by_email(
        tx: &mut Transaction<'static, Any>,
        assignment: &str,
        email: &FocalPointEmail,
        at: DateTime<Utc>,
        doing: &str,
    ) -> Result<Vec<FocalPointRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "UPDATE focal_points SET {assignment}, updated_at = $2 WHERE email = $1 \
             RETURNING {FOCAL_POINT_COLUMNS}"
        ))
        .bind(email.as_str())
        .bind(ms(at))
        .fetch_all(&mut **tx)
        .await
        .with_context(|| format!("{doing} a focal point"))?;
        let mut points = rows
            .iter()
            .map(focal_point_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        if points.is_empty() {
            return Err(StoreError::NotFound(format!("focal point {email}")));
        }
        points.sort_by_key(|p| p.id);
        Ok(points)
    }

    async fn focal_point_audit(
        tx: &mut Transaction<'static, Any>,
        action: &str,
        actor: &str,
        at: DateTime<Utc>,
        detail: serde_json::Value,
    ) -> Result<(), StoreError> {
        insert_audit(
            tx,
            &NewAudit {
                reference: None,
                at,
                actor: actor.to_string(),
                action: action.to_string(),
                detail_json: detail.to_string(),
            },
        )
        .await
    }
}

#[async_trait]
impl DirectoryStore for SqlStore {
    async fn focal_points(
        &self,
        country: Option<CountryCode>,
        active_only: bool,
    ) -> Result<Vec<FocalPointRow>, StoreError> {
        let mut filters = Vec::new();
        if country.is_some() {
            filters.push("country = $1");
        }
        if active_only {
            filters.push("active = 1");
        }
        let filter = if filters.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", filters.join(" AND "))
        };
        let query = format!("SELECT {FOCAL_POINT_COLUMNS} FROM focal_points{filter}");
        let mut q = sqlx::query(&query);
        if let Some(c) = &country {
            q = q.bind(c.as_str());
        }
        let rows = q
            .fetch_all(&self.pool)
            .await
            .context("reading focal points")?;
        let mut points = rows
            .iter()
            .map(focal_point_from_row)
            .collect::<Result<Vec<_>, _>>()?;
        // Sorted here rather than in SQL: PostgreSQL's collation would order
        // addresses differently from SQLite's byte order.
        points.sort_by(|a, b| (&a.country, &a.email).cmp(&(&b.country, &b.email)));
        Ok(points)
    }

    async fn add_focal_point(
        &self,
        fp: NewFocalPoint,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<FocalPointRow, StoreError> {
        let mut tx = self.begin().await?;
        let result = insert_focal_point(&mut tx, &fp, at).await;
        let row = match result {
            Ok(row) => focal_point_from_row(&row)?,
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::Duplicate(format!(
                    "focal point {} for {}",
                    fp.email, fp.country
                )))
            }
            Err(e) => return Err(anyhow::Error::new(e).context("adding a focal point").into()),
        };
        Self::focal_point_audit(
            &mut tx,
            "focal_point.added",
            actor,
            at,
            focal_point_detail(&row),
        )
        .await?;
        tx.commit().await.context("committing a new focal point")?;
        Ok(row)
    }

    async fn upsert_focal_point(
        &self,
        fp: NewFocalPoint,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<ImportOutcome, StoreError> {
        let mut tx = self.begin().await?;
        let existing = sqlx::query(&format!(
            "SELECT {FOCAL_POINT_COLUMNS} FROM focal_points WHERE country = $1 AND email = $2"
        ))
        .bind(fp.country.as_str())
        .bind(fp.email.as_str())
        .fetch_optional(&mut *tx)
        .await
        .context("looking up a focal point")?;
        let outcome = match existing.as_ref().map(focal_point_from_row).transpose()? {
            None => {
                let row = insert_focal_point(&mut tx, &fp, at)
                    .await
                    .context("adding a focal point")?;
                let row = focal_point_from_row(&row)?;
                Self::focal_point_audit(
                    &mut tx,
                    "focal_point.added",
                    actor,
                    at,
                    focal_point_detail(&row),
                )
                .await?;
                ImportOutcome::Added
            }
            Some(old)
                if old.name == fp.name
                    && old.language == fp.language
                    && old.active == fp.active =>
            {
                ImportOutcome::Unchanged
            }
            Some(old) => {
                sqlx::query("UPDATE focal_points SET name = $1, language = $2, active = $3, updated_at = $4 WHERE id = $5")
                    .bind(&fp.name)
                    .bind(fp.language.as_str())
                    .bind(i64::from(fp.active))
                    .bind(ms(at))
                    .bind(old.id)
                    .execute(&mut *tx)
                    .await
                    .context("updating a focal point")?;
                let new = FocalPointRow {
                    id: old.id,
                    country: old.country,
                    name: fp.name.clone(),
                    email: fp.email.clone(),
                    language: fp.language,
                    active: fp.active,
                };
                let mut detail = focal_point_detail(&new);
                detail["previous"] = focal_point_detail(&old);
                Self::focal_point_audit(&mut tx, "focal_point.updated", actor, at, detail).await?;
                ImportOutcome::Updated
            }
        };
        tx.commit()
            .await
            .context("committing a focal point import")?;
        Ok(outcome)
    }

    async fn deactivate_focal_point(
        &self,
        email: &FocalPointEmail,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<FocalPointRow, StoreError> {
        let mut tx = self.begin().await?;
        let points =
            Self::update_focal_points_by_email(&mut tx, "active = 0", email, at, "deactivating")
                .await?;
        for p in &points {
            Self::focal_point_audit(
                &mut tx,
                "focal_point.deactivated",
                actor,
                at,
                focal_point_detail(p),
            )
            .await?;
        }
        tx.commit()
            .await
            .context("committing a focal point removal")?;
        Ok(points[0].clone())
    }

    async fn clear_bouncing(
        &self,
        email: &FocalPointEmail,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<BouncingCleared, StoreError> {
        let mut tx = self.begin().await?;
        let marked: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM focal_points WHERE email = $1 AND bouncing = 1")
                .bind(email.as_str())
                .fetch_all(&mut *tx)
                .await
                .context("reading a focal point's bouncing mark")?;
        let points = Self::update_focal_points_by_email(
            &mut tx,
            "bouncing = 0",
            email,
            at,
            "clearing the bouncing mark of",
        )
        .await?;
        for p in &points {
            let mut detail = focal_point_detail(p);
            detail["was_bouncing"] = json!(marked.contains(&p.id));
            Self::focal_point_audit(&mut tx, "focal_point.bouncing_cleared", actor, at, detail)
                .await?;
        }
        tx.commit()
            .await
            .context("committing a cleared bouncing mark")?;
        Ok(BouncingCleared {
            focal_point: points[0].clone(),
            was_bouncing: !marked.is_empty(),
        })
    }

    async fn presidency_overrides(&self) -> Result<Vec<(i32, CountryCode)>, StoreError> {
        let rows = sqlx::query("SELECT year, country FROM presidency ORDER BY year")
            .fetch_all(&self.pool)
            .await
            .context("reading presidency overrides")?;
        rows.iter()
            .map(|row| {
                let year: i64 = get(row, "year")?;
                let year = i32::try_from(year).context("stored presidency year out of range")?;
                Ok((year, get_parsed(row, "presidency", &year, "country")?))
            })
            .collect()
    }

    async fn set_presidency(
        &self,
        year: i32,
        country: CountryCode,
        actor: &str,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await?;
        let previous: Option<String> =
            sqlx::query_scalar("SELECT country FROM presidency WHERE year = $1")
                .bind(i64::from(year))
                .fetch_optional(&mut *tx)
                .await
                .context("reading the presidency override")?;
        sqlx::query(
            "INSERT INTO presidency (year, country, set_by, set_at) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (year) DO UPDATE SET country = excluded.country, set_by = excluded.set_by, \
             set_at = excluded.set_at",
        )
        .bind(i64::from(year))
        .bind(country.as_str())
        .bind(actor)
        .bind(ms(at))
        .execute(&mut *tx)
        .await
        .context("setting the presidency")?;
        insert_audit(
            &mut tx,
            &NewAudit {
                reference: None,
                at,
                actor: actor.to_string(),
                action: "presidency.set".to_string(),
                detail_json: json!({ "year": year, "country": country, "previous": previous })
                    .to_string(),
            },
        )
        .await?;
        tx.commit().await.context("committing the presidency")?;
        Ok(())
    }

    // HTTP API: readiness, outbox health and bearer tokens.

    async fn bouncing_focal_points(&self) -> Result<Vec<i64>, StoreError> {
        let ids: Vec<i64> =
            sqlx::query_scalar("SELECT id FROM focal_points WHERE bouncing = 1 ORDER BY id")
                .fetch_all(&self.pool)
                .await
                .context("reading bouncing focal points")?;
        Ok(ids)
    }
}

/// Inserts a focal point and returns its row as stored (`add_focal_point` and the
/// import's `upsert_focal_point`).
async fn insert_focal_point(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    fp: &NewFocalPoint,
    at: DateTime<Utc>,
) -> Result<sqlx::any::AnyRow, sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO focal_points (country, name, email, language, active, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {FOCAL_POINT_COLUMNS}"
    ))
    .bind(fp.country.as_str())
    .bind(&fp.name)
    .bind(fp.email.as_str())
    .bind(fp.language.as_str())
    .bind(i64::from(fp.active))
    .bind(ms(at))
    .fetch_one(&mut **tx)
    .await
}
