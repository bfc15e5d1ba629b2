//! What people type: the limits on every value that comes from a person (a title, a
//! text, a comment, a reason, a name, a year, a number of working days) and the one
//! check every edge runs on it — the CLI, the JSON API, the dashboard's forms, the
//! focal point imports and the data files.
//!
//! Two kinds of text:
//! - **one line** ([`line`]): names, titles, subjects, reasons, addresses, channels. No
//!   control character at all (C0, DEL, C1; not even a tab): such a value may end up in
//!   a mail header, where a line break is a forged header and made `lettre` panic.
//! - **multi-line** ([`text`]): the consultation's text, comments, notes, reports. Line
//!   feeds and tabs are kept; CR LF becomes LF; every other control character is
//!   refused.
//!
//! Errors name the field (the API's JSON name, which the CLI and the dashboard share)
//! and say what is wrong and where, e.g. `title: contains a line break (U+000A) at
//! character 12; it must be one line`.
//!
//! Values read from mail are not checked here: inbound mail is read liberally and
//! what it says is recorded as it came (see `mail::inbound`).

use std::ops::RangeInclusive;

use super::consultation::Event;

/// The longest consultation title, in characters. The title is in the subject of
/// every notice, so it is kept to what a subject line can carry.
pub const MAX_TITLE_CHARS: usize = 300;

/// The largest consultation text (Markdown), in bytes: 256 KiB, some fifty pages.
/// It goes into every invitation (in the body and as a `.md` file); longer documents
/// are attached as files instead.
pub const MAX_TEXT_BYTES: usize = 256 * 1024;

/// The largest results report, in bytes (as a text).
pub const MAX_REPORT_BYTES: usize = MAX_TEXT_BYTES;

/// The largest comment, in bytes: a Troika member's comments, a revision's note, the
/// text of an answer staff record from a letter or a call. 64 KiB.
pub const MAX_COMMENT_BYTES: usize = 64 * 1024;

/// The longest reason, in characters: for an extension, a withdrawal, setting an
/// inbound message aside. One line.
pub const MAX_REASON_CHARS: usize = 1000;

/// The longest name, in characters: a focal point's name, an API token's name, how
/// an answer was received (`letter`, `phone`, ...).
pub const MAX_NAME_CHARS: usize = 200;

/// The longest email address, in characters (RFC 5321's path limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// The years a person may give: a consultation's presidency year, a presidency to
/// record, a calendar to show.
pub const YEARS: RangeInclusive<i32> = 1990..=2200;

/// The working days one extension may add: 1 to 60 (about three months).
pub const EXTENSION_WORKING_DAYS: RangeInclusive<u32> = 1..=60;

/// The working days `puebla calendar deadline` counts: 0 to 400 (over a year).
pub const CALENDAR_WORKING_DAYS: RangeInclusive<u32> = 0..=400;

/// A typed value that is refused, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {problem}")]
pub struct InputError {
    /// The field as the API names it (`title`, `comments`, `working_days`, ...).
    pub field: String,
    pub problem: String,
}

impl InputError {
    pub fn new(field: &str, problem: impl Into<String>) -> Self {
        Self {
            field: field.to_string(),
            problem: problem.into(),
        }
    }
}

/// How a control character is named in an error.
fn describe(c: char) -> String {
    let what = match c {
        '\n' => "a line break",
        '\r' => "a carriage return",
        '\t' => "a tab",
        '\0' => "a NUL character",
        _ => "a control character",
    };
    format!("{what} (U+{:04X})", c as u32)
}

/// The first control character of `value` that `allowed` does not let through, with
/// its 1-based character position.
fn first_control(value: &str, allowed: impl Fn(char) -> bool) -> Option<(usize, char)> {
    value
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() && !allowed(*c))
        .map(|(i, c)| (i + 1, c))
}

/// A one-line value, trimmed: no control character, at most `max_chars` characters.
/// An empty value is allowed here; the caller says whether it may be empty.
pub fn line(field: &str, value: &str, max_chars: usize) -> Result<String, InputError> {
    let value = value.trim();
    if let Some((at, c)) = first_control(value, |_| false) {
        return Err(InputError::new(
            field,
            format!(
                "contains {} at character {at}; it must be one line of text",
                describe(c)
            ),
        ));
    }
    let chars = value.chars().count();
    if chars > max_chars {
        return Err(InputError::new(
            field,
            format!("is {chars} characters long; at most {max_chars} are allowed"),
        ));
    }
    Ok(value.to_string())
}

/// A one-line value that must not be empty.
pub fn required_line(field: &str, value: &str, max_chars: usize) -> Result<String, InputError> {
    let v = line(field, value, max_chars)?;
    if v.is_empty() {
        return Err(InputError::new(field, "is empty"));
    }
    Ok(v)
}

/// A multi-line text as typed (not trimmed), with CR LF made LF: line feeds and tabs
/// are kept, any other control character is refused; at most `max_bytes` bytes.
pub fn text(field: &str, value: &str, max_bytes: usize) -> Result<String, InputError> {
    if value.len() > max_bytes {
        return Err(InputError::new(
            field,
            format!(
                "is {} bytes; at most {max_bytes} ({} KB) are allowed",
                value.len(),
                max_bytes / 1024
            ),
        ));
    }
    let value = value.replace("\r\n", "\n");
    if let Some((at, c)) = first_control(&value, |c| c == '\n' || c == '\t') {
        return Err(InputError::new(
            field,
            format!(
                "contains {} at character {at}; only line breaks and tabs are allowed",
                describe(c)
            ),
        ));
    }
    Ok(value)
}

/// A year a person gave: within [`YEARS`].
pub fn year(field: &str, year: i32) -> Result<i32, InputError> {
    if YEARS.contains(&year) {
        Ok(year)
    } else {
        Err(InputError::new(
            field,
            format!(
                "{year} is not a year between {} and {}",
                YEARS.start(),
                YEARS.end()
            ),
        ))
    }
}

/// A year given as text (a path segment, a form field).
pub fn year_text(field: &str, value: &str) -> Result<i32, InputError> {
    let v = value.trim();
    let y: i32 = v
        .parse()
        .map_err(|_| InputError::new(field, format!("`{}` is not a year", quoted(v))))?;
    year(field, y)
}

/// A number within `range`.
pub fn in_range<T>(field: &str, value: T, range: &RangeInclusive<T>) -> Result<T, InputError>
where
    T: PartialOrd + std::fmt::Display + Copy,
{
    if range.contains(&value) {
        Ok(value)
    } else {
        Err(InputError::new(
            field,
            format!(
                "{value} is not between {} and {}",
                range.start(),
                range.end()
            ),
        ))
    }
}

/// A refused value as an error quotes it: its first 60 characters, control
/// characters escaped, so that an error never carries a line break or a megabyte.
pub fn quoted(v: &str) -> String {
    let mut out = visible(&v.chars().take(60).collect::<String>());
    if v.chars().nth(60).is_some() {
        out.push('…');
    }
    out
}

/// Checks and normalises what a person typed into an event: the texts, comments,
/// notes, reasons and numbers of working days the PPT's actions carry. Called by the
/// engine for every event it applies, whichever edge it came from.
///
/// Answers and Troika replies are left as they are: they are usually read from an
/// email, whose text is recorded as it came (the answer page bounds its own comments); the edges where staff type an answer check it with
/// [`staff_answer`].
pub fn check_event(event: Event) -> Result<Event, InputError> {
    let optional_text =
        |field: &str, v: Option<String>, max: usize| v.map(|v| text(field, &v, max)).transpose();
    Ok(match event {
        Event::Submit { text: t } => Event::Submit {
            text: optional_text("text", t, MAX_TEXT_BYTES)?,
        },
        Event::TroikaFeedback {
            country,
            approve,
            comments,
        } => Event::TroikaFeedback {
            country,
            approve,
            comments: optional_text("comments", comments, MAX_COMMENT_BYTES)?,
        },
        Event::Revise { text: t, note } => Event::Revise {
            text: optional_text("text", t, MAX_TEXT_BYTES)?,
            note: optional_text("note", note, MAX_COMMENT_BYTES)?,
        },
        Event::Extend {
            working_days,
            reason,
        } => Event::Extend {
            working_days: in_range("working_days", working_days, &EXTENSION_WORKING_DAYS)?,
            reason: line("reason", &reason, MAX_REASON_CHARS)?,
        },
        Event::Withdraw { reason } => Event::Withdraw {
            reason: line("reason", &reason, MAX_REASON_CHARS)?,
        },
        Event::Report { text: t } => Event::Report {
            text: text("text", &t, MAX_REPORT_BYTES)?,
        },
        e @ (Event::Answer { .. }
        | Event::TroikaReply { .. }
        | Event::Reclassify { .. }
        | Event::DeadlineReached { .. }
        | Event::ReminderDue { .. }) => e,
    })
}

/// The text and channel of an answer staff record by hand (from a letter, a call, a
/// meeting): the text multi-line, the channel one line.
pub fn staff_answer(text_value: &str, channel: &str) -> Result<(String, String), InputError> {
    Ok((
        text("text", text_value, MAX_COMMENT_BYTES)?,
        line("channel", channel, MAX_NAME_CHARS)?,
    ))
}

/// A consultation's title: one line, not empty, at most [`MAX_TITLE_CHARS`].
pub fn title(value: &str) -> Result<String, InputError> {
    required_line("title", value, MAX_TITLE_CHARS)
}

/// A person's name (a focal point): one line, not empty, at most [`MAX_NAME_CHARS`].
pub fn name(field: &str, value: &str) -> Result<String, InputError> {
    required_line(field, value, MAX_NAME_CHARS)
}

/// A value written into a mail header verbatim (a recipient's name, a subject): the
/// first control character in it, if any, named. The outbox refuses such a notice
/// rather than let the mail library fail on it.
pub fn header_problem(value: &str) -> Option<String> {
    first_control(value, |_| false)
        .map(|(at, c)| format!("contains {} at character {at}", describe(c)))
}

/// `value` with its control characters shown as escapes (`\n`, `\u{0}`), for a
/// message to a person about a value that was refused.
pub fn visible(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_values_refuse_every_control_character() {
        assert_eq!(line("name", "  Ana Pérez ", 200).unwrap(), "Ana Pérez");
        for (bad, what) in [
            ("Ana\nPérez", "a line break (U+000A) at character 4"),
            ("Ana\r\nBcc: x@example.org", "a carriage return (U+000D)"),
            ("Ana\0", "a NUL character (U+0000)"),
            ("A\tB", "a tab (U+0009)"),
            ("A\u{7f}B", "a control character (U+007F)"),
            ("A\u{85}B", "a control character (U+0085)"),
            ("A\u{1b}[31mB", "a control character (U+001B)"),
        ] {
            let e = line("name", bad, 200).unwrap_err();
            assert_eq!(e.field, "name");
            assert!(e.to_string().contains(what), "{bad:?}: {e}");
        }
        assert!(required_line("title", "  ", 10).is_err());
    }

    #[test]
    fn lengths_are_counted_in_characters_for_lines_and_bytes_for_texts() {
        assert!(line("title", &"é".repeat(300), MAX_TITLE_CHARS).is_ok());
        let e = line("title", &"é".repeat(301), MAX_TITLE_CHARS).unwrap_err();
        assert!(e.to_string().contains("301 characters"), "{e}");
        let e = text("text", &"x".repeat(MAX_TEXT_BYTES + 1), MAX_TEXT_BYTES).unwrap_err();
        assert_eq!(e.field, "text");
        assert!(e.to_string().contains("256 KB"), "{e}");
    }

    #[test]
    fn texts_keep_line_breaks_and_tabs_and_refuse_the_rest() {
        assert_eq!(
            text("text", "# A\r\n\r\n1.\tUno\n", 100).unwrap(),
            "# A\n\n1.\tUno\n"
        );
        for bad in ["a\rb", "a\0b", "a\u{c}b", "a\u{9b}b"] {
            let e = text("comments", bad, 100).unwrap_err();
            assert_eq!(e.field, "comments", "{bad:?}");
        }
    }

    #[test]
    fn years_and_working_days_have_ranges() {
        assert_eq!(year("year", 2027).unwrap(), 2027);
        for bad in [10_000, 1989, -1, i32::MAX] {
            let e = year("year", bad).unwrap_err();
            assert!(e.to_string().starts_with("year: "), "{e}");
        }
        assert!(year_text("year", "20x7").is_err());
        let e = check_event(Event::Extend {
            working_days: 4_000_000_000,
            reason: "x".into(),
        })
        .unwrap_err();
        assert_eq!(e.field, "working_days");
        assert!(check_event(Event::Extend {
            working_days: 0,
            reason: "x".into()
        })
        .is_err());
    }

    #[test]
    fn events_are_normalised_or_refused_naming_the_field() {
        let e = check_event(Event::Withdraw {
            reason: "no\nlonger".into(),
        })
        .unwrap_err();
        assert_eq!(e.field, "reason");
        let e = check_event(Event::TroikaFeedback {
            country: crate::domain::CountryCode::parse("CR").unwrap(),
            approve: false,
            comments: Some("ok\0".into()),
        })
        .unwrap_err();
        assert_eq!(e.field, "comments");
        assert_eq!(
            check_event(Event::Revise {
                text: Some("a\r\nb".into()),
                note: None
            })
            .unwrap(),
            Event::Revise {
                text: Some("a\nb".into()),
                note: None
            }
        );
    }

    #[test]
    fn refused_values_are_shown_with_their_control_characters_escaped() {
        assert_eq!(visible("Ana\nBcc: x"), "Ana\\nBcc: x");
        assert_eq!(header_problem("ok"), None);
        assert!(header_problem("a\r\nb").is_some());
    }
}
