//! The one redaction of every URL shown to people (logs, errors, `puebla check`).

/// What replaces a secret in a URL shown to people.
const REDACTED: &str = "***";

/// A URL fit for logs, error messages and `puebla check`: the password of
/// `user:password@` and the value of every query parameter that names a secret
/// (`password=`, `pass=`, `pwd=`, `secret=`, `token=`, `sslpassword=`, `api_key=`, …)
/// replaced by `***`. A URL that does not parse is redacted as well as its text
/// allows: everything between the scheme and the last `@` that looks like
/// credentials goes. Every place that shows a configured URL goes through this one
/// function.
pub fn redact_url(url: &str) -> String {
    if let Ok(mut parsed) = url::Url::parse(url) {
        if !parsed.cannot_be_a_base() {
            // A password with an unencoded `/`, `?` or `#` ends the authority early
            // (`postgres://u:12/34@h/db` parses as host `u`, port 12): an `@` left
            // after the host means the text's own credentials must go as well.
            let misread =
                parsed.password().is_none() && parsed[url::Position::BeforePath..].contains('@');
            if parsed.password().is_some() {
                // Setting a password only fails on URLs without a host, which have none.
                let _ = parsed.set_password(Some(REDACTED));
            }
            if parsed.query_pairs().any(|(k, _)| is_secret_parameter(&k)) {
                let pairs: Vec<(String, String)> = parsed
                    .query_pairs()
                    .map(|(k, v)| {
                        let v = if is_secret_parameter(&k) {
                            REDACTED.to_string()
                        } else {
                            v.into_owned()
                        };
                        (k.into_owned(), v)
                    })
                    .collect();
                parsed.query_pairs_mut().clear().extend_pairs(pairs);
            }
            return if misread {
                redact_text(parsed.as_str())
            } else {
                parsed.to_string()
            };
        }
    }
    redact_text(url)
}

/// Whether a query parameter's name says its value is a secret.
fn is_secret_parameter(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "pass",
        "pwd",
        "secret",
        "token",
        "key",
        "auth",
        "credential",
    ]
    .iter()
    .any(|word| name.contains(word))
}

/// The best effort for text that is not a URL with a host: credentials before the
/// last `@`, and secret `name=value` pairs anywhere after a `?`, `&` or `;`.
fn redact_text(text: &str) -> String {
    let scheme_end = match text.find("://") {
        Some(i) => i + 3,
        None => text.find(':').map_or(0, |i| i + 1),
    };
    let mut out = text.to_string();
    if let Some(at) = out[scheme_end..].rfind('@').map(|i| i + scheme_end) {
        let credentials = &out[scheme_end..at];
        if let Some(colon) = credentials.find(':') {
            out.replace_range(scheme_end + colon + 1..at, REDACTED);
        } else if scheme_end > 0 && !text.contains("://") {
            // `scheme:user:password@host` without slashes: the part after the
            // scheme's colon may itself be the password.
            out.replace_range(scheme_end..at, REDACTED);
        }
    }
    let mut redacted = String::with_capacity(out.len());
    let mut rest = out.as_str();
    while let Some(i) = rest.find(['?', '&', ';']) {
        redacted.push_str(&rest[..=i]);
        rest = &rest[i + 1..];
        let end = rest.find(['&', ';', '#']).unwrap_or(rest.len());
        match rest[..end].split_once('=') {
            Some((name, _)) if is_secret_parameter(name) => {
                redacted.push_str(name);
                redacted.push('=');
                redacted.push_str(REDACTED);
                rest = &rest[end..];
            }
            _ => {}
        }
    }
    redacted.push_str(rest);
    redacted
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_secrets_and_keep_the_rest() {
        for (url, shown) in [
            ("smtps://user:hunter2@host:465", "smtps://user:***@host:465"),
            (
                "postgres://puebla:hunter2@db.example.org/puebla",
                "postgres://puebla:***@db.example.org/puebla",
            ),
            (
                "postgres://db.example.org/puebla?user=p&password=hunter2&sslmode=require",
                "postgres://db.example.org/puebla?user=p&password=***&sslmode=require",
            ),
            (
                "imap://u@h/INBOX?PASS=hunter2&pwd=hunter2&secret=hunter2&token=hunter2",
                "imap://u@h/INBOX?PASS=***&pwd=***&secret=***&token=***",
            ),
            ("mysql://root:hunter2@db/x", "mysql://root:***@db/x"),
            ("sqlite://puebla.db", "sqlite://puebla.db"),
            (
                "sqlite:puebla.db?password=hunter2",
                "sqlite:puebla.db?password=***",
            ),
            // Not URLs with a host: the text's own credentials go.
            ("postgres://u:12/34hunter2@h/db", "postgres://u:***@h/db"),
            ("postgres://u:hun#ter2@h/db", "postgres://u:***@h/db"),
            (
                "postgres://u:p@ss hunter2@h:x/db",
                "postgres://u:***@h:x/db",
            ),
            ("mysql:root:hunter2@db", "mysql:root:***@db"),
            ("nonsense u:hunter2@h", "nonsense u:***@h"),
            ("host;password=hunter2", "host;password=***"),
        ] {
            let got = redact_url(url);
            assert_eq!(got, shown, "{url}");
            assert!(!got.contains("hunter2") && !got.contains("12/34"), "{url}");
        }
    }
}
