//! `Authentication-Results` (RFC 8601) as the operator's own receiving server wrote
//! them. Pure: no IO.
//!
//! Anyone can write an `Authentication-Results` header into a message, so only the
//! ones carrying the operator's authserv-id (`PUEBLA_TRUSTED_AUTHSERV_ID`) are read,
//! and of those only the topmost run: a receiving server adds its header above every
//! header the message arrived with. Headers with other authserv-ids, and ones with
//! ours further down, are the sender's and are ignored. Only failures are acted on
//! (`dmarc=fail`, `spf=fail`): a forged header can make its own message look worse,
//! never better.

/// One failed check the operator's server reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthFailure {
    /// `dmarc` or `spf`.
    pub method: String,
    /// `fail`.
    pub result: String,
}

impl std::fmt::Display for AuthFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.method, self.result)
    }
}

/// The methods whose failure quarantines a message.
const FAILING: [(&str, &str); 2] = [("dmarc", "fail"), ("spf", "fail")];

/// The failures reported by the topmost `Authentication-Results` headers carrying
/// `authserv_id`, from a message's header fields in order (lowercase names, as
/// [`super::envelope::header_fields`] gives them).
pub fn trusted_failures(fields: &[(String, String)], authserv_id: &str) -> Vec<AuthFailure> {
    let ours = authserv_id.trim();
    let mut failures = Vec::new();
    let mut in_run = false;
    for (name, value) in fields {
        if name != "authentication-results" {
            continue;
        }
        let Some((id, results)) = parse(value) else {
            continue;
        };
        if !id.eq_ignore_ascii_case(ours) {
            if in_run {
                // The run of our server's headers ended: the rest came with the message.
                break;
            }
            continue;
        }
        in_run = true;
        for (method, result) in results {
            if FAILING.iter().any(|(m, r)| *m == method && *r == result) {
                failures.push(AuthFailure { method, result });
            }
        }
    }
    failures
}

/// The authserv-id and the (method, result) pairs of one header value.
fn parse(value: &str) -> Option<(String, Vec<(String, String)>)> {
    let clean = without_comments(value);
    let mut parts = split_outside_quotes(&clean, ';').into_iter();
    let id = parts.next()?.split_whitespace().next()?.to_string();
    let results = parts
        .filter_map(|resinfo| {
            let first = resinfo.split_whitespace().next()?;
            let (method, result) = first.split_once('=')?;
            let method = method.split('/').next().unwrap_or(method);
            Some((method.to_ascii_lowercase(), result.to_ascii_lowercase()))
        })
        .collect();
    Some((id, results))
}

/// The value with its (nested) comments removed; quoted strings are kept.
fn without_comments(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let (mut depth, mut quoted, mut escaped) = (0usize, false, false);
    for c in value.chars() {
        if escaped {
            escaped = false;
            if depth == 0 {
                out.push(c);
            }
            continue;
        }
        match c {
            '\\' => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth += 1,
            ')' if !quoted && depth > 0 => depth -= 1,
            _ if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

fn split_outside_quotes(s: &str, sep: char) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        if escaped {
            escaped = false;
            continue;
        }
        match c {
            '\\' => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                out.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(headers: &[&str]) -> Vec<(String, String)> {
        headers
            .iter()
            .map(|h| {
                let (n, v) = h.split_once(':').unwrap();
                (n.trim().to_ascii_lowercase(), v.trim().to_string())
            })
            .collect()
    }

    #[test]
    fn our_servers_failures_are_read() {
        let f = fields(&[
            "Received: from x by mx.rcm-ts.example",
            "Authentication-Results: mx.rcm-ts.example; spf=pass smtp.mailfrom=gob.example; \
             dkim=none (no signature); dmarc=fail (p=reject dis=none) header.from=gob.example",
            "From: a@gob.example",
        ]);
        assert_eq!(
            trusted_failures(&f, "mx.rcm-ts.example"),
            vec![AuthFailure {
                method: "dmarc".into(),
                result: "fail".into()
            }]
        );
        let spf =
            fields(&["Authentication-Results: MX.RCM-TS.example 1; SPF=Fail smtp.mailfrom=x"]);
        assert_eq!(
            trusted_failures(&spf, "mx.rcm-ts.example")[0].to_string(),
            "spf=fail"
        );
    }

    #[test]
    fn other_servers_and_buried_headers_are_ignored() {
        // The same failure from another authserv-id: the sender's (or a relay's) claim.
        let f = fields(&["Authentication-Results: evil.example; dmarc=fail header.from=x"]);
        assert!(trusted_failures(&f, "mx.rcm-ts.example").is_empty());
        // Our id below another server's header, after our own run: written by the sender.
        let f = fields(&[
            "Authentication-Results: mx.rcm-ts.example; dmarc=pass header.from=gob.example",
            "Authentication-Results: relay.gob.example; spf=pass",
            "Authentication-Results: mx.rcm-ts.example; dmarc=fail header.from=gob.example",
        ]);
        assert!(trusted_failures(&f, "mx.rcm-ts.example").is_empty());
        // Softfail, none and a failure hidden in a comment are not failures.
        let f = fields(&[
            "Authentication-Results: mx.rcm-ts.example; spf=softfail (dmarc=fail) smtp.mailfrom=x; \
             dmarc=none reason=\"a; dmarc=fail\"",
        ]);
        assert!(trusted_failures(&f, "mx.rcm-ts.example").is_empty());
        assert!(trusted_failures(
            &fields(&["Authentication-Results: mx.rcm-ts.example; none"]),
            "mx.rcm-ts.example"
        )
        .is_empty());
    }

    #[test]
    fn garbage_never_panics() {
        for v in ["", ";", "((", "\"", "x; =", "x; a=\\", "x;(;)"] {
            let f = vec![("authentication-results".to_string(), v.to_string())];
            let _ = trusted_failures(&f, "x");
        }
    }
}
