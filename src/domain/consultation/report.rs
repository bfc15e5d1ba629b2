//! The results report: how the agreed action was implemented, once the text is adopted.

use super::effect::{Effect, NoticeKind, Recipients};
use super::error::TransitionError;
use super::state::{ResultsReport, Stage};
use super::step::{not_allowed, Step};

pub(super) fn report(s: &mut Step<'_>, text: String) -> Result<(), TransitionError> {
    let (c, next, ctx, now, effects) = s.parts();
    if text.trim().is_empty() {
        return Err(TransitionError::Invalid("the report is empty".into()));
    }
    next.report = Some(ResultsReport { text, at: now });
    next.stage = Stage::Concluded;
    effects.push(Effect::Notify {
        kind: NoticeKind::ResultsReport,
        template: ctx.procedure.templates.results_report.clone(),
        to: Recipients::Countries {
            countries: c.participants.clone(),
        },
        round: None,
    });
    Ok(())
}

/// Reporting the same results again is absorbed; different results are refused.
pub(super) fn report_again(s: &mut Step<'_>, text: &str) -> Result<(), TransitionError> {
    let c = s.before;
    if c.report.as_ref().map(|r| r.text.as_str()) != Some(text) {
        return Err(not_allowed(c, "report"));
    }
    Ok(())
}
