//! Key templates: `copilot:llm:policy:<tenant_id>`, parsed and checked at compile time.
//!
//! A template is literal text and placeholders `<name>` or `<name.field.field>`.
//! `{` and `}` are Redis Cluster hash tags: balanced, not nested, not empty. Two
//! placeholders must be separated by at least one literal character that an encoded
//! value never contains (anything outside `[A-Za-z0-9._%~-]`, the alphabet of
//! `cacheward::key::write_escaped`, defined once in `alphabet.rs` for both crates);
//! otherwise two argument tuples could share a key.

use proc_macro2::Span;
use syn::LitStr;

/// A parsed, checked key template.
#[derive(Debug, Clone)]
pub(crate) struct Template {
    /// The template as written.
    pub text: String,
    pub segments: Vec<Segment>,
    /// The string literal the template came from (errors point here).
    pub span: Span,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Segment {
    Literal(String),
    Placeholder(Placeholder),
}

/// `<root.field.field>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Placeholder {
    pub root: String,
    pub fields: Vec<String>,
}

impl Placeholder {
    /// The placeholder as written, with its angle brackets.
    pub(crate) fn written(&self) -> String {
        let mut s = format!("<{}", self.root);
        for f in &self.fields {
            s.push('.');
            s.push_str(f);
        }
        s.push('>');
        s
    }
}

use crate::alphabet::is_encoded_char;

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && s != "_"
}

impl Template {
    /// Parses and checks the template in `lit`.
    pub(crate) fn parse(lit: &LitStr) -> syn::Result<Template> {
        Self::parse_str(&lit.value(), lit.span())
    }

    pub(crate) fn parse_str(text: &str, span: Span) -> syn::Result<Template> {
        let err = |msg: String| Err(syn::Error::new(span, msg));
        if text.is_empty() {
            return err(
                "empty key template: write the key, e.g. `\"copilot:llm:policy:<tenant_id>\"`"
                    .into(),
            );
        }
        let mut segments = Vec::new();
        let mut literal = String::new();
        let mut in_tag = false;
        let mut tag_empty = true;
        let mut chars = text.char_indices().peekable();
        while let Some((at, c)) = chars.next() {
            match c {
                '<' => {
                    let mut inner = String::new();
                    let mut closed = false;
                    for (_, c) in chars.by_ref() {
                        if c == '>' {
                            closed = true;
                            break;
                        }
                        inner.push(c);
                    }
                    if !closed {
                        return err(format!(
                            "malformed key template `{text}`: `<` at byte {at} is never closed; placeholders are written `<name>`"
                        ));
                    }
                    let placeholder = parse_placeholder(&inner).ok_or_else(|| {
                        syn::Error::new(
                            span,
                            format!(
                                "malformed key template `{text}`: `<{inner}>` is not a placeholder; write `<name>` or `<name.field>` with Rust identifiers"
                            ),
                        )
                    })?;
                    if !literal.is_empty() {
                        segments.push(Segment::Literal(std::mem::take(&mut literal)));
                    }
                    segments.push(Segment::Placeholder(placeholder));
                    tag_empty = false;
                }
                '>' => {
                    return err(format!(
                        "malformed key template `{text}`: `>` at byte {at} closes no placeholder; placeholders are written `<name>`"
                    ));
                }
                '{' => {
                    if in_tag {
                        return err(format!(
                            "malformed key template `{text}`: nested hash tag; `{{` … `}}` marks a Redis Cluster hash tag and cannot contain another"
                        ));
                    }
                    in_tag = true;
                    tag_empty = true;
                    literal.push(c);
                }
                '}' => {
                    if !in_tag {
                        return err(format!(
                            "malformed key template `{text}`: unbalanced hash tag, `}}` at byte {at} has no opening `{{`"
                        ));
                    }
                    if tag_empty {
                        return err(format!(
                            "malformed key template `{text}`: empty hash tag `{{}}`; Redis would hash the whole key, write e.g. `{{<tenant_id>}}`"
                        ));
                    }
                    in_tag = false;
                    literal.push(c);
                }
                c if c.is_whitespace() || c.is_control() => {
                    return err(format!(
                        "malformed key template `{text}`: keys may not contain whitespace or control characters (byte {at})"
                    ));
                }
                c => {
                    tag_empty = false;
                    literal.push(c);
                }
            }
        }
        if in_tag {
            return err(format!(
                "malformed key template `{text}`: unbalanced hash tag, `{{` is never closed by `}}`"
            ));
        }
        if !literal.is_empty() {
            segments.push(Segment::Literal(literal));
        }
        let template = Template {
            text: text.to_owned(),
            segments,
            span,
        };
        template.check_separators()?;
        Ok(template)
    }

    /// Two placeholders need a separator outside the encoded alphabet between them.
    fn check_separators(&self) -> syn::Result<()> {
        let mut previous: Option<&Placeholder> = None;
        let mut separated = true;
        for segment in &self.segments {
            match segment {
                Segment::Literal(text) => {
                    if text.chars().any(|c| !is_encoded_char(c)) {
                        separated = true;
                    }
                }
                Segment::Placeholder(p) => {
                    if let Some(prev) = previous
                        && !separated
                    {
                        return Err(syn::Error::new(
                            self.span,
                            format!(
                                "placeholders `{}` and `{}` in key template `{}` are not separated: put a character such as `:` between them. \
                                 Encoded values may contain letters, digits and `-_.%~`, so without a separator outside that set \
                                 two different argument tuples could produce the same key",
                                prev.written(),
                                p.written(),
                                self.text
                            ),
                        ));
                    }
                    previous = Some(p);
                    separated = false;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn placeholders(&self) -> impl Iterator<Item = &Placeholder> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Placeholder(p) => Some(p),
            Segment::Literal(_) => None,
        })
    }

    /// The template with placeholder names erased: two templates with the same
    /// canonical form produce the same keys.
    pub(crate) fn canonical(&self) -> String {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.as_str(),
                Segment::Placeholder(_) => "<>",
            })
            .collect()
    }

    /// A capacity hint for the built key: the literal text plus room per placeholder.
    pub(crate) fn capacity_hint(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                Segment::Literal(l) => l.len(),
                Segment::Placeholder(_) => 16,
            })
            .sum()
    }
}

fn parse_placeholder(inner: &str) -> Option<Placeholder> {
    let mut parts = inner.split('.');
    let root = parts.next()?;
    if !is_ident(root) {
        return None;
    }
    let mut fields = Vec::new();
    for part in parts {
        let ok = is_ident(part) || (!part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()));
        if !ok {
            return None;
        }
        fields.push(part.to_owned());
    }
    Some(Placeholder {
        root: root.to_owned(),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Template, String> {
        Template::parse_str(s, Span::call_site()).map_err(|e| e.to_string())
    }

    #[test]
    fn parses_literals_and_placeholders() {
        let t = parse("copilot:conv:config:<tenant_id>:<user.id>").unwrap();
        assert_eq!(
            t.segments,
            vec![
                Segment::Literal("copilot:conv:config:".into()),
                Segment::Placeholder(Placeholder {
                    root: "tenant_id".into(),
                    fields: vec![]
                }),
                Segment::Literal(":".into()),
                Segment::Placeholder(Placeholder {
                    root: "user".into(),
                    fields: vec!["id".into()]
                }),
            ]
        );
        assert_eq!(t.canonical(), "copilot:conv:config:<>:<>");
    }

    #[test]
    fn hash_tags() {
        assert!(parse("copilot:{<tenant_id>}:policy").is_ok());
        assert!(parse("a:{x}:{<y>}").is_ok());
        assert!(parse("a:{}").unwrap_err().contains("empty hash tag"));
        assert!(parse("a:{{<x>}}").unwrap_err().contains("nested"));
        assert!(parse("a:{<x>").unwrap_err().contains("never closed"));
        assert!(parse("a:<x>}").unwrap_err().contains("unbalanced"));
    }

    #[test]
    fn malformed() {
        assert!(parse("").unwrap_err().contains("empty"));
        assert!(parse("a:<x").unwrap_err().contains("never closed"));
        assert!(parse("a:x>").unwrap_err().contains("closes no placeholder"));
        assert!(parse("a:<>").unwrap_err().contains("not a placeholder"));
        assert!(parse("a:<1x>").unwrap_err().contains("not a placeholder"));
        assert!(parse("a:<x..y>").unwrap_err().contains("not a placeholder"));
        assert!(parse("a b").unwrap_err().contains("whitespace"));
        assert!(parse("a:<pair.0>").is_ok());
    }

    #[test]
    fn adjacent_placeholders_are_rejected() {
        assert!(parse("a:<x><y>").unwrap_err().contains("not separated"));
        assert!(parse("a:<x>-<y>").unwrap_err().contains("not separated"));
        assert!(
            parse("a:<x>_v.1~%<y>")
                .unwrap_err()
                .contains("not separated")
        );
        assert!(parse("a:<x>:<y>").is_ok());
        assert!(parse("a:<x>/v1-<y>").is_ok());
        assert!(parse("a:{<x>}<y>").is_ok());
    }

    #[test]
    fn encoded_alphabet() {
        for c in (0u8..=127).map(char::from) {
            let expected = c.is_ascii_alphanumeric() || "-_.%~".contains(c);
            assert_eq!(is_encoded_char(c), expected, "{c:?}");
        }
        assert!(!is_encoded_char('é'));
    }
}
