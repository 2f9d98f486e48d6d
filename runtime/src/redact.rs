//! Keeping passwords out of logs, `Debug` output and health reports.

/// `redis://user:secret@host:6379/0` → `redis://user:***@host:6379/0`.
///
/// Anything between `://` and the last `@` of the authority that follows a `:` is the
/// password. Text that is not a URL is returned unchanged.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest_start = scheme_end + 3;
    let rest = &url[rest_start..];
    // The authority ends at the first '/', '?' or '#' (or whitespace, in a message).
    let authority_len = rest
        .find(|c: char| matches!(c, '/' | '?' | '#') || c.is_whitespace())
        .unwrap_or(rest.len());
    let authority = &rest[..authority_len];
    let Some(at) = authority.rfind('@') else {
        return url.to_owned();
    };
    let userinfo = &authority[..at];
    let redacted_userinfo = match userinfo.find(':') {
        Some(colon) => format!("{}:***", &userinfo[..colon]),
        None => userinfo.to_owned(),
    };
    format!(
        "{}{}{}",
        &url[..rest_start],
        redacted_userinfo,
        &url[rest_start + at..]
    )
}

/// Redacts the password of every URL that appears in a free-form message.
pub(crate) fn redact_urls(msg: &str) -> String {
    if !msg.contains("://") {
        return msg.to_owned();
    }
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(pos) = rest.find("://") {
        // Back up to the start of the scheme (letters, digits, '+', '-', '.').
        let scheme_start = rest[..pos]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.')))
            .map_or(0, |i| i + 1);
        out.push_str(&rest[..scheme_start]);
        let url_part = &rest[scheme_start..];
        let end = url_part[pos - scheme_start + 3..]
            .find(char::is_whitespace)
            .map_or(url_part.len(), |i| i + pos - scheme_start + 3);
        out.push_str(&redact_url(&url_part[..end]));
        rest = &url_part[end..];
    }
    out.push_str(rest);
    out
}

/// Replaces each non-empty secret in `msg` with `***`, and redacts URL passwords.
pub(crate) fn scrub(msg: &str, secrets: &[String]) -> String {
    let mut out = redact_urls(msg);
    for s in secrets {
        if !s.is_empty() && out.contains(s.as_str()) {
            out = out.replace(s.as_str(), "***");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_redacted_from_urls() {
        assert_eq!(
            redact_url("redis://user:secret@host:6379/0"),
            "redis://user:***@host:6379/0"
        );
        assert_eq!(redact_url("redis://:secret@host"), "redis://:***@host");
        assert_eq!(redact_url("rediss://p%40ss:x@h/"), "rediss://p%40ss:***@h/");
        assert_eq!(redact_url("redis://host:6379"), "redis://host:6379");
        assert_eq!(redact_url("redis://user@host"), "redis://user@host");
        assert_eq!(redact_url("not a url"), "not a url");
        // A password holding '@' or ':' is still covered (the last '@' ends it).
        assert_eq!(redact_url("redis://u:a@b:c@host"), "redis://u:***@host");
    }

    #[test]
    fn urls_inside_messages_are_redacted() {
        assert_eq!(
            redact_urls("failed to connect to redis://:hunter2@10.0.0.1:6379 (refused)"),
            "failed to connect to redis://:***@10.0.0.1:6379 (refused)"
        );
        assert_eq!(
            redact_urls("a redis://u:p@h and rediss://:q@i/1"),
            "a redis://u:***@h and rediss://:***@i/1"
        );
        assert_eq!(
            scrub("WRONGPASS for hunter2", &["hunter2".into()]),
            "WRONGPASS for ***"
        );
        assert_eq!(scrub("nothing", &[String::new()]), "nothing");
    }
}
