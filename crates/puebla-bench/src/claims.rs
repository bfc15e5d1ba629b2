//! claims: Store::claim_notices + mark_notice_sent on PostgreSQL against a bare
//! `UPDATE … FOR UPDATE SKIP LOCKED … RETURNING` loop.

use anyhow::{bail, Context};
use serde_json::{json, Value};

use puebla::clock::{Clock, Stopwatch};

use crate::figures::{median, ratio, round3};
use crate::world::{reset_outbox, world};

/// `claims`' options.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Notices claimed per repetition (rounded up to whole consultations of 23).
    #[arg(long, default_value_t = 5000)]
    pub size: usize,
    /// Repetitions.
    #[arg(long, default_value_t = 5)]
    pub reps: usize,
    /// An admin URL of the PostgreSQL server: the bench makes a database of its own
    /// there and drops it at the end.
    #[arg(
        long,
        env = "PUEBLA_BENCH_POSTGRES_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres: String,
}

async fn pg_database(admin: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    let mut conn = sqlx::postgres::PgConnection::connect(admin)
        .await
        .with_context(|| format!("PostgreSQL at {admin}"))?;
    let name = format!("puebla_bench_{}", std::process::id());
    sqlx::query(&format!("DROP DATABASE IF EXISTS {name}"))
        .execute(&mut conn)
        .await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let base = admin.rsplit_once('/').map_or(admin, |(b, _)| b);
    Ok(format!("{base}/{name}"))
}

async fn drop_pg_database(admin: &str, url: &str) {
    use sqlx::Connection;
    if let (Ok(mut conn), Some((_, name))) = (
        sqlx::postgres::PgConnection::connect(admin).await,
        url.rsplit_once('/'),
    ) {
        let _ = sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .execute(&mut conn)
            .await;
    }
}

pub async fn run(a: &Args) -> anyhow::Result<Value> {
    let url = pg_database(&a.postgres).await?;
    let out = claims_on(a, &url).await;
    drop_pg_database(&a.postgres, &url).await;
    out
}

async fn claims_on(a: &Args, url: &str) -> anyhow::Result<Value> {
    let consultations = a.size.div_ceil(23);
    let w = world(Some(url.to_string()), consultations, 1_000_000).await?;
    let total = w.store.notices(None).await?.len();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(8)
        .connect(url)
        .await?;
    let mut figures = serde_json::Map::new();
    for workers in [1usize, 4] {
        let (mut ours, mut base) = (Vec::new(), Vec::new());
        for _ in 0..a.reps.max(1) {
            reset_outbox(url).await?;
            let sw = Stopwatch::start();
            let mut tasks = Vec::new();
            for k in 0..workers {
                let store = w.store.clone();
                let now = w.clock.now();
                tasks.push(tokio::spawn(async move {
                    let mut done = 0usize;
                    loop {
                        let claimed = store
                            .claim_notices(
                                &format!("bench-{k}"),
                                now,
                                now + chrono::Duration::minutes(5),
                                50,
                            )
                            .await?;
                        if claimed.is_empty() {
                            return anyhow::Ok(done);
                        }
                        for n in claimed {
                            store.mark_notice_sent(n.id, now, "250 ok").await?;
                            done += 1;
                        }
                    }
                }));
            }
            let mut done = 0;
            for t in tasks {
                done += t.await??;
            }
            ours.push(done as f64 / sw.elapsed().as_secs_f64());
            if done != total {
                bail!("claimed {done} of {total}");
            }

            reset_outbox(url).await?;
            let sw = Stopwatch::start();
            let mut tasks = Vec::new();
            for k in 0..workers {
                let pool = pool.clone();
                tasks.push(tokio::spawn(async move {
                    let mut done = 0usize;
                    loop {
                        let ids: Vec<i64> = sqlx::query_scalar(
                            "UPDATE outbox SET status = 'sending', claimed_by = $1 WHERE id IN \
                             (SELECT id FROM outbox WHERE status = 'pending' ORDER BY id LIMIT 50 \
                              FOR UPDATE SKIP LOCKED) RETURNING id",
                        )
                        .bind(format!("bare-{k}"))
                        .fetch_all(&pool)
                        .await?;
                        if ids.is_empty() {
                            return anyhow::Ok(done);
                        }
                        for id in ids {
                            sqlx::query(
                                "UPDATE outbox SET status = 'sent', sent_at = 0 WHERE id = $1",
                            )
                            .bind(id)
                            .execute(&pool)
                            .await?;
                            done += 1;
                        }
                    }
                }));
            }
            let mut done = 0;
            for t in tasks {
                done += t.await??;
            }
            base.push(done as f64 / sw.elapsed().as_secs_f64());
        }
        let (o, b) = (median(&ours), median(&base));
        figures.insert(
            format!("workers_{workers}"),
            json!({
                "store_notices_per_second": round3(o),
                "bare_sql_notices_per_second": round3(b),
                "ratio": ratio(o / b),
                "runs": {"store": ours.iter().map(|x| round3(*x)).collect::<Vec<_>>(),
                         "bare_sql": base.iter().map(|x| round3(*x)).collect::<Vec<_>>()},
            }),
        );
    }
    Ok(json!({
        "bench": "claims",
        "database": "postgres",
        "notices": total,
        "repetitions": a.reps.max(1),
        "batch": 50,
        "figures": figures,
        "setup_seconds": round3(w.setup_seconds),
    }))
}
