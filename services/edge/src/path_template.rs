//! `google.api.http` path templates: parsing and matching.
//!
//! ```text
//! Template = "/" Segments [ Verb ] ;
//! Segments = Segment { "/" Segment } ;
//! Segment  = "*" | "**" | LITERAL | Variable ;
//! Variable = "{" FieldPath [ "=" Segments ] "}" ;
//! Verb     = ":" LITERAL ;
//! ```
//!
//! Matching works on the raw (still percent-encoded) path so that an encoded
//! `/` inside a value never splits a segment; values are decoded afterwards,
//! as the spec says: fully for a single-segment variable, and all but `%2F`
//! for a multi-segment one (so the segments stay recoverable).

use percent_encoding::percent_decode_str;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Wildcard,
    /// `**`: every remaining segment; only last.
    DoubleWildcard,
}

/// A `{field.path=…}` capture over `segments[start..end]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Variable {
    field_path: String,
    start: usize,
    end: usize,
}

impl Variable {
    pub(crate) fn field_path(&self) -> &str {
        &self.field_path
    }
}

#[derive(Clone, Debug)]
pub(crate) struct PathTemplate {
    text: String,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("invalid path template `{template}`: {reason}")]
pub(crate) struct TemplateError {
    template: String,
    reason: String,
}

/// A captured value that is not valid once decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("path variable `{field_path}` is not valid UTF-8 once percent-decoded")]
pub(crate) struct DecodeError {
    pub(crate) field_path: String,
}

/// How specific a template is, to prefer `/v1/things:search` over
/// `/v1/things/{id}` and literals over variables when both match.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Specificity {
    has_verb: bool,
    segment_ranks: Vec<u8>,
}

impl PathTemplate {
    pub(crate) fn parse(text: &str) -> Result<Self, TemplateError> {
        let error = |reason: &str| TemplateError {
            template: text.to_owned(),
            reason: reason.to_owned(),
        };
        let rest = text
            .strip_prefix('/')
            .ok_or_else(|| error("must start with `/`"))?;
        let (segments_text, verb) = split_verb(rest).map_err(&error)?;
        if let Some(verb) = &verb
            && !is_literal(verb)
        {
            return Err(error("the verb must be a plain literal"));
        }

        let mut segments = Vec::new();
        let mut variables: Vec<Variable> = Vec::new();
        for token in split_top_level(segments_text).map_err(&error)? {
            if let Some(inner) = token.strip_prefix('{') {
                let inner = inner
                    .strip_suffix('}')
                    .ok_or_else(|| error("unbalanced `{`"))?;
                let (field_path, sub_template) = inner.split_once('=').unwrap_or((inner, "*"));
                if !is_field_path(field_path) {
                    return Err(error("a variable must name a field path like `a.b`"));
                }
                if variables.iter().any(|v| v.field_path == field_path) {
                    return Err(error("a field is bound twice"));
                }
                let start = segments.len();
                for sub_token in sub_template.split('/') {
                    if sub_token.contains(['{', '}']) {
                        return Err(error("variables cannot nest"));
                    }
                    segments.push(parse_plain_segment(sub_token).map_err(&error)?);
                }
                variables.push(Variable {
                    field_path: field_path.to_owned(),
                    start,
                    end: segments.len(),
                });
            } else {
                segments.push(parse_plain_segment(token).map_err(&error)?);
            }
        }
        let last = segments.len().saturating_sub(1);
        if segments
            .iter()
            .enumerate()
            .any(|(index, segment)| *segment == Segment::DoubleWildcard && index != last)
        {
            return Err(error("`**` may only be the last segment"));
        }
        Ok(Self {
            text: text.to_owned(),
            segments,
            variables,
            verb,
        })
    }

    pub(crate) fn text(&self) -> &str {
        &self.text
    }

    pub(crate) fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// Matches a raw request path; on success returns each variable's raw
    /// (still encoded) value, in the order of [`Self::variables`].
    pub(crate) fn matches(&self, path: &str) -> Option<Vec<String>> {
        let mut rest = path.strip_prefix('/')?;
        if let Some(verb) = &self.verb {
            rest = rest.strip_suffix(verb.as_str())?.strip_suffix(':')?;
        }
        let parts: Vec<&str> = rest.split('/').collect();
        let has_tail = self.segments.last() == Some(&Segment::DoubleWildcard);
        let fixed = self.segments.len() - usize::from(has_tail);
        let length_fits = if has_tail {
            parts.len() >= fixed
        } else {
            parts.len() == fixed
        };
        if !length_fits {
            return None;
        }
        for (segment, part) in self.segments[..fixed].iter().zip(&parts) {
            let matched = match segment {
                Segment::Literal(literal) => literal_matches(literal, part),
                Segment::Wildcard => !part.is_empty(),
                Segment::DoubleWildcard => false,
            };
            if !matched {
                return None;
            }
        }
        let values = self
            .variables
            .iter()
            .map(|variable| {
                let end = if has_tail && variable.end == self.segments.len() {
                    parts.len()
                } else {
                    variable.end
                };
                parts[variable.start..end].join("/")
            })
            .collect();
        Some(values)
    }

    /// Decodes the raw value captured for `variables()[index]`.
    pub(crate) fn decode(&self, index: usize, raw: &str) -> Result<String, DecodeError> {
        let variable = &self.variables[index];
        let single_segment = variable.end - variable.start == 1
            && self.segments[variable.start] != Segment::DoubleWildcard;
        let decoded = if single_segment {
            percent_decode_str(raw)
                .decode_utf8()
                .map(|value| value.into_owned())
        } else {
            decode_keeping_slashes(raw)
        };
        decoded.map_err(|_| DecodeError {
            field_path: variable.field_path.clone(),
        })
    }

    pub(crate) fn specificity(&self) -> Specificity {
        Specificity {
            has_verb: self.verb.is_some(),
            segment_ranks: self
                .segments
                .iter()
                .map(|segment| match segment {
                    Segment::Literal(_) => 3,
                    Segment::Wildcard => 2,
                    Segment::DoubleWildcard => 1,
                })
                .collect(),
        }
    }

    /// What the template matches, ignoring variable names: two templates of
    /// one method with the same shape can never be told apart.
    pub(crate) fn shape(&self) -> String {
        let mut shape: String = self
            .segments
            .iter()
            .map(|segment| match segment {
                Segment::Literal(literal) => format!("/{literal}"),
                Segment::Wildcard => "/*".to_owned(),
                Segment::DoubleWildcard => "/**".to_owned(),
            })
            .collect();
        if let Some(verb) = &self.verb {
            shape.push(':');
            shape.push_str(verb);
        }
        shape
    }

    /// The OpenAPI form: each variable becomes `{field.path}`; a wildcard
    /// outside any variable becomes `{wildcardN}`.
    pub(crate) fn openapi_path(&self) -> (String, Vec<String>) {
        let mut path = String::new();
        let mut unnamed = Vec::new();
        let mut index = 0;
        while index < self.segments.len() {
            path.push('/');
            if let Some(variable) = self.variables.iter().find(|v| v.start == index) {
                path.push_str(&format!("{{{}}}", variable.field_path));
                index = variable.end.max(index + 1);
                continue;
            }
            match &self.segments[index] {
                Segment::Literal(literal) => path.push_str(literal),
                Segment::Wildcard | Segment::DoubleWildcard => {
                    let name = format!("wildcard{}", unnamed.len() + 1);
                    path.push_str(&format!("{{{name}}}"));
                    unnamed.push(name);
                }
            }
            index += 1;
        }
        if let Some(verb) = &self.verb {
            path.push(':');
            path.push_str(verb);
        }
        (path, unnamed)
    }
}

/// Splits off a trailing `:verb` that sits outside braces and after the last
/// top-level `/`.
fn split_verb(rest: &str) -> Result<(&str, Option<String>), &'static str> {
    let mut depth = 0usize;
    let mut last_slash = None;
    let mut last_colon = None;
    for (index, character) in rest.char_indices() {
        match character {
            '{' => depth += 1,
            '}' => depth = depth.checked_sub(1).ok_or("unbalanced `}`")?,
            '/' if depth == 0 => last_slash = Some(index),
            ':' if depth == 0 => last_colon = Some(index),
            _ => {}
        }
    }
    if depth != 0 {
        return Err("unbalanced `{`");
    }
    match last_colon {
        Some(colon) if last_slash.is_none_or(|slash| colon > slash) => {
            Ok((&rest[..colon], Some(rest[colon + 1..].to_owned())))
        }
        _ => Ok((rest, None)),
    }
}

/// Splits on `/` outside braces.
fn split_top_level(text: &str) -> Result<Vec<&str>, &'static str> {
    let mut tokens = Vec::new();
    let mut depth = 0usize;
    let mut start = 0;
    for (index, character) in text.char_indices() {
        match character {
            '{' => {
                depth += 1;
                if depth > 1 {
                    return Err("variables cannot nest");
                }
            }
            '}' => depth = depth.saturating_sub(1),
            '/' if depth == 0 => {
                tokens.push(&text[start..index]);
                start = index + 1;
            }
            _ => {}
        }
    }
    tokens.push(&text[start..]);
    Ok(tokens)
}

fn parse_plain_segment(token: &str) -> Result<Segment, &'static str> {
    match token {
        "*" => Ok(Segment::Wildcard),
        "**" => Ok(Segment::DoubleWildcard),
        "" => Err("empty segment"),
        literal if is_literal(literal) => Ok(Segment::Literal(literal.to_owned())),
        _ => Err("a literal segment holds a reserved character"),
    }
}

fn is_literal(text: &str) -> bool {
    !text.is_empty() && !text.contains(['{', '}', '*', ':', '/', '=', '?', '#'])
}

fn is_field_path(text: &str) -> bool {
    !text.is_empty()
        && text.split('.').all(|ident| {
            let mut characters = ident.chars();
            characters
                .next()
                .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
                && characters.all(|c| c.is_ascii_alphanumeric() || c == '_')
        })
}

fn literal_matches(literal: &str, raw: &str) -> bool {
    literal == raw
        || (raw.contains('%')
            && percent_decode_str(raw)
                .decode_utf8()
                .is_ok_and(|decoded| decoded == literal))
}

/// Decodes everything but `%2F`, which stays encoded so that a segment that
/// held a `/` is not confused with two segments.
fn decode_keeping_slashes(raw: &str) -> Result<String, std::str::Utf8Error> {
    let normalized = raw.replace("%2f", "%2F");
    let pieces = normalized
        .split("%2F")
        .map(|piece| {
            percent_decode_str(piece)
                .decode_utf8()
                .map(|p| p.into_owned())
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(pieces.join("%2F"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn template(text: &str) -> PathTemplate {
        PathTemplate::parse(text).expect("template parses")
    }

    #[test]
    fn single_variables_are_captured_and_decoded() {
        let members = template("/v1/workspaces/{workspace_id}/members");
        let raw = members
            .matches("/v1/workspaces/ws%201/members")
            .expect("matches");
        assert_eq!(raw, vec!["ws%201"]);
        assert_eq!(members.decode(0, &raw[0]).unwrap(), "ws 1");
        assert!(members.matches("/v1/workspaces/ws1").is_none());
        assert!(members.matches("/v1/workspaces//members").is_none());
        assert!(members.matches("/v1/workspaces/a/b/members").is_none());
    }

    #[test]
    fn an_encoded_slash_stays_inside_one_segment() {
        let workspace = template("/v1/workspaces/{workspace_id}");
        let raw = workspace.matches("/v1/workspaces/a%2Fb").expect("matches");
        assert_eq!(workspace.decode(0, &raw[0]).unwrap(), "a/b");
    }

    #[test]
    fn verbs_must_match_and_do_not_leak_into_variables() {
        let rotate = template("/v1/workspaces/{workspace_id}/api-keys/{api_key_id}:rotate");
        let raw = rotate
            .matches("/v1/workspaces/w1/api-keys/k1:rotate")
            .expect("matches");
        assert_eq!(raw, vec!["w1", "k1"]);
        assert!(rotate.matches("/v1/workspaces/w1/api-keys/k1").is_none());
        assert!(
            rotate
                .matches("/v1/workspaces/w1/api-keys/k1:revoke")
                .is_none()
        );

        let accept = template("/v1/invitations:accept");
        assert_eq!(accept.matches("/v1/invitations:accept"), Some(vec![]));
        assert!(accept.matches("/v1/invitations").is_none());
        assert!(
            template("/v1/invitations")
                .matches("/v1/invitations:accept")
                .is_none()
        );
    }

    #[test]
    fn multi_segment_variables_and_double_wildcards() {
        let book = template("/v1/{name=shelves/*/books/*}");
        let raw = book.matches("/v1/shelves/s1/books/b%2F1").expect("matches");
        assert_eq!(raw, vec!["shelves/s1/books/b%2F1"]);
        assert_eq!(book.decode(0, &raw[0]).unwrap(), "shelves/s1/books/b%2F1");
        assert!(book.matches("/v1/shelves/s1/tomes/b1").is_none());

        let files = template("/v1/files/{path=**}:download");
        let raw = files
            .matches("/v1/files/a/b%20c/d.txt:download")
            .expect("matches");
        assert_eq!(files.decode(0, &raw[0]).unwrap(), "a/b c/d.txt");
        let raw = files.matches("/v1/files/x:download").expect("one segment");
        assert_eq!(raw, vec!["x"]);

        let anything = template("/static/**");
        assert!(anything.matches("/static/a/b/c").is_some());
        assert!(anything.variables().is_empty());
    }

    #[test]
    fn nested_field_paths_are_variables() {
        let nested = template("/v1/{book.shelf_id}/books");
        assert_eq!(nested.variables()[0].field_path(), "book.shelf_id");
        assert!(nested.matches("/v1/s1/books").is_some());
    }

    #[test]
    fn malformed_templates_are_rejected() {
        for bad in [
            "v1/things",
            "/v1/{id",
            "/v1/id}",
            "/v1/{a={b}}",
            "/v1/**/x",
            "/v1//x",
            "/v1/{1abc}",
            "/v1/{a}/{a}",
            "/v1/things:",
        ] {
            assert!(
                PathTemplate::parse(bad).is_err(),
                "{bad} should be rejected"
            );
        }
    }

    #[test]
    fn invalid_utf8_after_decoding_is_an_error() {
        let workspace = template("/v1/workspaces/{workspace_id}");
        let raw = workspace
            .matches("/v1/workspaces/%FF")
            .expect("matches raw");
        assert!(workspace.decode(0, &raw[0]).is_err());
    }

    #[test]
    fn literals_and_verbs_are_more_specific_than_variables() {
        let by_id = template("/v1/workspaces/{workspace_id}");
        let literal = template("/v1/workspaces/current");
        let verb = template("/v1/workspaces:search");
        assert!(literal.specificity() > by_id.specificity());
        assert!(verb.specificity() > by_id.specificity());
        assert_eq!(by_id.shape(), template("/v1/workspaces/{other}").shape());
    }

    #[test]
    fn openapi_paths_name_variables() {
        let rotate = template("/v1/workspaces/{workspace_id}/api-keys/{api_key_id}:rotate");
        assert_eq!(
            rotate.openapi_path().0,
            "/v1/workspaces/{workspace_id}/api-keys/{api_key_id}:rotate"
        );
        let book = template("/v1/{name=shelves/*/books/*}/x/*");
        assert_eq!(
            book.openapi_path(),
            (
                "/v1/{name}/x/{wildcard1}".to_owned(),
                vec!["wildcard1".to_owned()]
            )
        );
    }
}
