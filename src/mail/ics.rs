//! The `.ics` entry attached to every invitation: one VEVENT at the round's deadline
//! with an alarm a day before (RFC 5545).
//!
//! Everything here is a pure function of the notice: the same notice always yields
//! the same bytes, so a resent message carries the same calendar entry. The UID names
//! the round and the recipient, not the message, and SEQUENCE counts the round's
//! extensions: the `deadline_extended` notice carries the same event with a higher
//! SEQUENCE, so calendars move the entry the invitation created instead of adding one.

use chrono::{DateTime, Duration, Utc};

/// What the calendar entry says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadlineEvent<'a> {
    /// The event's identity: the same for every notice about one round's deadline to
    /// one recipient (see [`deadline_uid`]).
    pub uid: &'a str,
    /// How many times the event changed (the round's extensions so far).
    pub sequence: u32,
    /// When the notice was enqueued: the DTSTAMP.
    pub created_at: DateTime<Utc>,
    pub deadline: DateTime<Utc>,
    pub summary: &'a str,
    pub description: &'a str,
    /// The alarm's text.
    pub alarm: &'a str,
}

/// The whole VCALENDAR, CRLF line endings, long lines folded at 75 octets.
pub fn deadline_calendar(e: &DeadlineEvent<'_>) -> String {
    // RFC 5545 wants DTEND later than DTSTART; a one-second event sits at the deadline.
    let end = e.deadline + Duration::seconds(1);
    let lines = [
        "BEGIN:VCALENDAR".to_string(),
        "VERSION:2.0".to_string(),
        "PRODID:-//puebla//written consultations//EN".to_string(),
        "CALSCALE:GREGORIAN".to_string(),
        "METHOD:PUBLISH".to_string(),
        "BEGIN:VEVENT".to_string(),
        format!("UID:{}", escape_text(e.uid)),
        format!("SEQUENCE:{}", e.sequence),
        format!("DTSTAMP:{}", utc(e.created_at)),
        format!("DTSTART:{}", utc(e.deadline)),
        format!("DTEND:{}", utc(end)),
        format!("SUMMARY:{}", escape_text(e.summary)),
        format!("DESCRIPTION:{}", escape_text(e.description)),
        "TRANSP:TRANSPARENT".to_string(),
        "BEGIN:VALARM".to_string(),
        "ACTION:DISPLAY".to_string(),
        format!("DESCRIPTION:{}", escape_text(e.alarm)),
        "TRIGGER:-P1D".to_string(),
        "END:VALARM".to_string(),
        "END:VEVENT".to_string(),
        "END:VCALENDAR".to_string(),
    ];
    let mut out = String::new();
    for line in &lines {
        out.push_str(&fold(line));
        out.push_str("\r\n");
    }
    out
}

/// The UID of the deadline event of round `round` for one recipient, derived from
/// the thread that groups a consultation's notices to a country (a Message-ID such
/// as `<RCM-2027-001.hn@rcm-ts.example>`) and the recipient's key (`fp3`, `ts`).
pub fn deadline_uid(thread: &str, round: u32, recipient: &str) -> String {
    let thread = thread.trim().trim_start_matches('<').trim_end_matches('>');
    format!("deadline.r{round}.{recipient}.{thread}")
}

/// The UID of a notice stored before UIDs named the round: one per message.
pub fn legacy_uid(message_id: &str) -> String {
    format!(
        "deadline-{}",
        message_id
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
    )
}

/// A UTC date-time in the basic format, e.g. `20270331T055959Z`.
fn utc(t: DateTime<Utc>) -> String {
    t.format("%Y%m%dT%H%M%SZ").to_string()
}

/// TEXT value escaping (RFC 5545 section 3.3.11): backslash, semicolon, comma, newline.
pub fn escape_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\r' => {
                if chars.peek() != Some(&'\n') {
                    out.push_str("\\n");
                }
            }
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

/// Folds a content line so that no physical line exceeds 75 octets (RFC 5545
/// section 3.1): CRLF then one space, never inside a UTF-8 character.
pub fn fold(line: &str) -> String {
    const LIMIT: usize = 75;
    let mut out = String::with_capacity(line.len() + line.len() / LIMIT * 3);
    // The first physical line holds 75 octets; continuations start with a space, so 74.
    let mut room = LIMIT;
    let mut used = 0;
    for c in line.chars() {
        let n = c.len_utf8();
        if used + n > room {
            out.push_str("\r\n ");
            room = LIMIT - 1;
            used = 0;
        }
        out.push(c);
        used += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn event<'a>(summary: &'a str, description: &'a str) -> DeadlineEvent<'a> {
        DeadlineEvent {
            uid: "deadline.r1.fp3.RCM-2027-001.hn@rcm-ts.example",
            sequence: 0,
            created_at: Utc.with_ymd_and_hms(2027, 3, 19, 17, 0, 0).unwrap(),
            deadline: Utc.with_ymd_and_hms(2027, 3, 31, 5, 59, 59).unwrap(),
            summary,
            description,
            alarm: "Plazo mañana",
        }
    }

    #[test]
    fn the_event_sits_at_the_deadline_with_an_alarm_a_day_before() {
        let ics = deadline_calendar(&event("[RCM-2027-001] Plazo", "hasta el martes"));
        assert!(ics.ends_with("END:VCALENDAR\r\n"));
        assert!(!ics.replace("\r\n", "").contains('\n'), "CRLF only");
        for line in [
            "METHOD:PUBLISH",
            "UID:deadline.r1.fp3.RCM-2027-001.hn@rcm-ts.example",
            "SEQUENCE:0",
            "DTSTAMP:20270319T170000Z",
            "DTSTART:20270331T055959Z",
            "DTEND:20270331T060000Z",
            "TRIGGER:-P1D",
            "BEGIN:VALARM",
        ] {
            assert!(ics.split("\r\n").any(|l| l == line), "{line} in\n{ics}");
        }
    }

    #[test]
    fn the_uid_names_consultation_country_round_and_recipient() {
        let thread = "<RCM-2027-001.hn@rcm-ts.example>";
        assert_eq!(
            deadline_uid(thread, 2, "fp3"),
            "deadline.r2.fp3.RCM-2027-001.hn@rcm-ts.example"
        );
        // Another round, recipient or country is another event.
        assert_ne!(
            deadline_uid(thread, 1, "fp3"),
            deadline_uid(thread, 2, "fp3")
        );
        assert_ne!(
            deadline_uid(thread, 2, "fp4"),
            deadline_uid(thread, 2, "fp3")
        );
        assert_ne!(
            deadline_uid("<RCM-2027-001.gt@rcm-ts.example>", 2, "fp3"),
            deadline_uid(thread, 2, "fp3")
        );
        assert_eq!(
            legacy_uid("<a.b@x.example>"),
            "deadline-a.b@x.example".to_string()
        );
    }

    #[test]
    fn an_extension_moves_the_same_event_with_a_higher_sequence() {
        let invitation = deadline_calendar(&event("x", "y"));
        let moved = deadline_calendar(&DeadlineEvent {
            sequence: 1,
            deadline: Utc.with_ymd_and_hms(2027, 4, 2, 5, 59, 59).unwrap(),
            ..event("x", "y")
        });
        let field = |ics: &str, name: &str| {
            ics.split("\r\n")
                .find(|l| l.starts_with(name))
                .unwrap()
                .to_string()
        };
        assert_eq!(field(&invitation, "UID:"), field(&moved, "UID:"));
        assert_eq!(field(&invitation, "SEQUENCE:"), "SEQUENCE:0");
        assert_eq!(field(&moved, "SEQUENCE:"), "SEQUENCE:1");
        assert_eq!(field(&moved, "DTSTART:"), "DTSTART:20270402T055959Z");
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(
            escape_text("a,b;c\\d\ne\r\nf"),
            "a\\,b\\;c\\\\d\\ne\\nf".to_string()
        );
        let ics = deadline_calendar(&event("x", "one, two; three\nfour"));
        assert!(
            ics.contains("DESCRIPTION:one\\, two\\; three\\nfour\r\n"),
            "{ics}"
        );
    }

    #[test]
    fn long_lines_fold_at_75_octets_without_splitting_characters() {
        let long = "Consulta a los Países Miembros: Política regional de asistencia consular — versión 3 ñññññññññññ";
        let folded = fold(&format!("SUMMARY:{long}"));
        let physical: Vec<&str> = folded.split("\r\n").collect();
        assert!(physical.len() > 1, "{folded}");
        for (i, line) in physical.iter().enumerate() {
            assert!(line.len() <= 75, "line {i} has {} octets", line.len());
            if i > 0 {
                assert!(line.starts_with(' '));
            }
        }
        // Unfolding gives the original back.
        assert_eq!(folded.replace("\r\n ", ""), format!("SUMMARY:{long}"));
        assert_eq!(fold("short"), "short");
        let exactly = "x".repeat(75);
        assert_eq!(fold(&exactly), exactly);
        assert_eq!(fold(&"x".repeat(76)), format!("{exactly}\r\n x"));
    }
}
