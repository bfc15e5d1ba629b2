//! `puebla calendar holidays|deadline`.

use std::process::ExitCode;

use anyhow::{bail, Context};
use chrono::{NaiveDate, NaiveDateTime, TimeZone, Utc};
use clap::Subcommand;
use serde::Serialize;

use crate::config::Config;
use crate::domain::calendar::CalendarPolicy;
use crate::domain::input;
use crate::domain::CountryCode;

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// List a country's public holidays in a year.
    Holidays {
        #[arg(long)]
        country: String,
        #[arg(long)]
        year: i32,
        #[arg(long)]
        json: bool,
    },
    /// Compute a deadline: N working days after a dispatch (the dispatch day does not count).
    Deadline {
        /// The presidency's country: its time zone and (by default) its holidays.
        #[arg(long)]
        country: String,
        /// Dispatch time, local to the country, e.g. 2027-03-22T10:00.
        #[arg(long)]
        from: String,
        #[arg(long)]
        working_days: u32,
        /// `presidency` (the country's holidays) or `all_members`.
        #[arg(long, default_value = "presidency")]
        policy: String,
        /// End of the last day, local time.
        #[arg(long, default_value = "23:59:59")]
        end_of_day: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Serialize)]
struct HolidayOut {
    date: NaiveDate,
    name: String,
}

#[derive(Serialize)]
struct SkippedOut {
    date: NaiveDate,
    reason: String,
}

#[derive(Serialize)]
struct DeadlineOut {
    deadline: String,
    working_days: Vec<NaiveDate>,
    skipped: Vec<SkippedOut>,
}

pub fn run(config: Config, cmd: CalendarCommand) -> anyhow::Result<ExitCode> {
    let catalog = crate::app::catalog(&config)?;
    match cmd {
        CalendarCommand::Holidays {
            country,
            year,
            json,
        } => {
            let code = CountryCode::parse(&country)?;
            let year = input::year("--year", year)?;
            let cal = catalog.calendars.get(code).with_context(|| {
                format!(
                    "no calendar for {code} in {}",
                    config.workflows_dir.display()
                )
            })?;
            let list: Vec<HolidayOut> = cal
                .holidays(year)
                .into_iter()
                .map(|h| HolidayOut {
                    date: h.date,
                    name: h.name,
                })
                .collect();
            if json {
                super::print_json(&list)?;
            } else {
                for h in &list {
                    println!("{}  {}  {}", h.date, h.date.format("%a"), h.name);
                }
            }
        }
        CalendarCommand::Deadline {
            country,
            from,
            working_days,
            policy,
            end_of_day,
            json,
        } => {
            let code = CountryCode::parse(&country)?;
            let working_days = input::in_range(
                "--working-days",
                working_days,
                &input::CALENDAR_WORKING_DAYS,
            )?;
            let member = catalog.body.member(code)?;
            let policy: CalendarPolicy =
                serde_json::from_value(serde_json::Value::String(policy.clone())).map_err(
                    |_| anyhow::anyhow!("--policy `{policy}` must be presidency or all_members"),
                )?;
            let countries = policy.countries(code, &catalog.body.member_codes());
            let local = NaiveDateTime::parse_from_str(&from, "%Y-%m-%dT%H:%M")
                .or_else(|_| NaiveDateTime::parse_from_str(&from, "%Y-%m-%dT%H:%M:%S"))
                .with_context(|| {
                    format!("--from `{from}` is not a local time such as 2027-03-22T10:00")
                })?;
            let Some(start) = member.time_zone.from_local_datetime(&local).earliest() else {
                bail!(
                    "--from `{from}` does not exist in {} (a clock change)",
                    member.time_zone
                );
            };
            let end = chrono::NaiveTime::parse_from_str(&end_of_day, "%H:%M:%S")
                .or_else(|_| chrono::NaiveTime::parse_from_str(&end_of_day, "%H:%M"))
                .with_context(|| {
                    format!("--end-of-day `{end_of_day}` is not a time such as 23:59:59")
                })?;
            let d = catalog.calendars.deadline(
                &countries,
                member.time_zone,
                start.with_timezone(&Utc),
                working_days,
                end,
            )?;
            let out = DeadlineOut {
                deadline: d.at.to_rfc3339(),
                working_days: d.working_days,
                skipped: d
                    .skipped
                    .into_iter()
                    .map(|s| SkippedOut {
                        date: s.date,
                        reason: s.reason,
                    })
                    .collect(),
            };
            if json {
                super::print_json(&out)?;
            } else {
                println!("deadline: {}", out.deadline);
                println!(
                    "working days: {}",
                    out.working_days
                        .iter()
                        .map(|d| d.format("%a %Y-%m-%d").to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                );
                for s in &out.skipped {
                    println!("skipped: {} {} ({})", s.date.format("%a"), s.date, s.reason);
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
