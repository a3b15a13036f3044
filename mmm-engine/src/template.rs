//! Templates: literal text with `{{ dotted.path }}` holes into `signal` or `ctx`.
//!
//! The grammar is exactly that one construct (SPEC §3), so it is parsed here rather than
//! handed to a general template engine, whose loops, filters and expressions would widen
//! the contract and the attack surface of text that reaches pull requests and chat.

use serde_json::Value;

use crate::env::{Env, Found, Path, Root, Seg};
use crate::text::{self, Fate};

/// A precompiled template.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Template {
    parts: Vec<Part>,
    source: String,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Hole(Path),
}

/// A template that does not parse, with the 0-based byte offset of the problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TemplateError {
    pub offset: usize,
    pub message: String,
}

/// How values are escaped for the surface they are rendered to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    /// Plain text (IDE, alerts, the `title` and `text` fields): line breaks and control
    /// characters in values become spaces so a value cannot reshape the message, and
    /// invisible or reordering characters become U+FFFD (see [`crate::text`]).
    Plain,
    /// Markdown (pull-request comments, CI summaries, chat): additionally, Markdown and HTML
    /// syntax, `@` mentions and autolinks in values are neutralised.
    Markdown,
}

fn parse_path(text: &str, offset: usize) -> Result<Path, TemplateError> {
    let err = |message: String| TemplateError { offset, message };
    let mut parts = text.split('.');
    let root_name = parts.next().unwrap_or("");
    let root = Root::parse(root_name).ok_or_else(|| {
        err(format!(
            "template path `{text}` must start with `signal` or `ctx`, not `{root_name}`"
        ))
    })?;
    let mut segs = Vec::new();
    for part in parts {
        if part.is_empty() {
            return Err(err(format!("template path `{text}` has an empty segment")));
        }
        if part.bytes().all(|b| b.is_ascii_digit()) {
            let i = part
                .parse()
                .map_err(|_| err(format!("index `{part}` in `{text}` is too large")))?;
            segs.push(Seg::Index(i));
        } else if part
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        {
            segs.push(Seg::Key(part.to_owned()));
        } else {
            return Err(err(format!(
                "template path `{text}` may only contain letters, digits, `_`, `-` and dots"
            )));
        }
    }
    Ok(Path { root, segs })
}

impl Template {
    /// Parses a template.
    pub fn parse(source: &str) -> Result<Template, TemplateError> {
        let mut parts = Vec::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(open) = rest.find("{{") {
            let (before, after_open) = rest.split_at(open);
            if !before.is_empty() {
                parts.push(Part::Text(authored(before)));
            }
            let inner_start = offset + open + 2;
            let after_open = after_open.get(2..).unwrap_or("");
            let close = after_open.find("}}").ok_or(TemplateError {
                offset: offset + open,
                message: "`{{` is never closed with `}}`".to_owned(),
            })?;
            let (inner, after) = after_open.split_at(close);
            let lead = inner.len() - inner.trim_start().len();
            let path_text = inner.trim();
            if path_text.is_empty() {
                return Err(TemplateError {
                    offset: offset + open,
                    message: "`{{ }}` is empty; write a path such as `signal.kind`".to_owned(),
                });
            }
            parts.push(Part::Hole(parse_path(path_text, inner_start + lead)?));
            rest = after.get(2..).unwrap_or("");
            offset = inner_start + close + 2;
        }
        if !rest.is_empty() {
            parts.push(Part::Text(authored(rest)));
        }
        Ok(Template {
            parts,
            source: source.to_owned(),
        })
    }

    /// Whether a hole reads `ctx.<key>` (or below it) or `ctx` whole.
    pub(crate) fn reads_ctx_key(&self, key: &str) -> bool {
        self.parts.iter().any(|part| match part {
            Part::Hole(path) => {
                path.root == Root::Ctx
                    && match path.segs.first() {
                        None => true,
                        Some(Seg::Key(k)) => k == key,
                        Some(Seg::Index(_)) => false,
                    }
            }
            Part::Text(_) => false,
        })
    }

    /// Renders the template; `Err` names the first path that is missing (or null).
    pub fn render(&self, env: &Env<'_>, format: Format) -> Result<String, String> {
        let mut out = String::with_capacity(self.source.len() + 16);
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Hole(path) => {
                    let written = match env.lookup(path) {
                        Found::Str(s) => {
                            escape_into(&mut out, s, format);
                            true
                        }
                        Found::Json(v) => display_into(&mut out, v, format),
                        Found::Owned(v) => display_into(&mut out, &v, format),
                        Found::Missing | Found::Broken => false,
                    };
                    if !written {
                        return Err(path.to_string());
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A playbook's own text as every surface shows it: its line breaks kept, and invisible
/// or reordering characters replaced as in values (the lint warns about them too).
fn authored(text: &str) -> String {
    if text::first_hidden(text).is_none() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    text::neutralise(text, false, |c| out.push(c));
    out
}

/// Appends how `value` reads inside text, escaped for `format`; `false` for null (a
/// hole, not a value). Strings, numbers and booleans, what templates mostly show, are
/// written without an intermediate `String`.
fn display_into(out: &mut String, value: &Value, format: Format) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => {
            escape_into(out, s, format);
            true
        }
        Value::Bool(b) => {
            escape_into(out, if *b { "true" } else { "false" }, format);
            true
        }
        Value::Number(n) => {
            // Integers, what templates mostly show, through itoa (no formatting machinery,
            // no allocation); floats as serde_json prints them.
            let mut digits = itoa::Buffer::new();
            match (n.as_u64(), n.as_i64()) {
                (Some(u), _) => escape_into(out, digits.format(u), format),
                (None, Some(i)) => escape_into(out, digits.format(i), format),
                (None, None) => escape_into(out, &n.to_string(), format),
            }
            true
        }
        other => match display(other) {
            Some(text) => {
                escape_into(out, &text, format);
                true
            }
            None => false,
        },
    }
}

/// How a JSON value reads inside text; `None` for null (a hole, not a value).
fn display(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Array(items) if items.iter().all(|v| !v.is_array() && !v.is_object()) => Some(
            items
                .iter()
                .filter_map(display)
                .collect::<Vec<_>>()
                .join(", "),
        ),
        other => Some(other.to_string()),
    }
}

/// Appends `value` to `out`, escaped for `format`: on every surface, line breaks and
/// controls become spaces and each run of invisible or reordering characters becomes one
/// U+FFFD; on Markdown surfaces, Markdown and HTML syntax is escaped too.
pub(crate) fn escape_into(out: &mut String, value: &str, format: Format) {
    let mut chars = value.chars().peekable();
    let mut prev = None;
    let mut in_run = false;
    while let Some(c) = chars.next() {
        let fate = text::fate(prev, c, chars.peek().copied());
        prev = Some(c);
        match fate {
            Fate::Keep => in_run = false,
            Fate::Space => {
                in_run = false;
                out.push(' ');
                continue;
            }
            Fate::Replace => {
                if !in_run {
                    out.push(text::REPLACEMENT);
                }
                in_run = true;
                continue;
            }
        }
        if format == Format::Plain {
            out.push(c);
            continue;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            // A zero-width space after `@` stops mentions; one after the `:` of `://`
            // stops autolinks, without changing what a reader sees.
            '@' => out.push_str("@&#8203;"),
            ':' if chars.peek() == Some(&'/') => out.push_str(":&#8203;"),
            '\\' | '`' | '*' | '_' | '{' | '}' | '[' | ']' | '(' | ')' | '#' | '+' | '-' | '.'
            | '!' | '|' | '~' | '"' | '\'' => {
                out.push('\\');
                out.push(c);
            }
            _ => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Signal;
    use serde_json::json;

    fn signal() -> Signal {
        Signal::from_json(
            &json!({"tenant_id": "acme", "actor_id": "dev", "kind": "pr.opened",
                "occurred_at": "2026-11-22T10:00:00Z",
                "repo": {"id": "acme/api", "branch": "feat/[x](http://evil.example) @all <b>"},
                "payload": {"lines": 420, "files": ["a.rs", "b.rs"], "nested": {"n": null},
                            "list": [{"name": "first"}]}}),
            1 << 16,
        )
        .unwrap()
    }

    fn render(src: &str, format: Format) -> Result<String, String> {
        let s = signal();
        let ctx = json!({"actor": {"name": "Ada"}});
        let env = Env {
            signal: &s,
            ctx: ctx.as_object().unwrap(),
            now_text: "2026-11-22T10:00:00Z",
        };
        Template::parse(src).unwrap().render(&env, format)
    }

    #[test]
    fn numbers_read_as_serde_json_prints_them() {
        let s = signal();
        let template = Template::parse("{{ ctx.n }}").unwrap();
        for n in [
            json!(0),
            json!(7),
            json!(-7),
            json!(u64::MAX),
            json!(i64::MIN),
            json!(1.5),
            json!(-0.25),
            json!(1e300),
        ] {
            let ctx = json!({ "n": n });
            let env = Env {
                signal: &s,
                ctx: ctx.as_object().unwrap(),
                now_text: "2026-11-22T10:00:00Z",
            };
            assert_eq!(template.render(&env, Format::Plain).unwrap(), n.to_string());
        }
    }

    #[test]
    fn renders_paths_into_signal_and_ctx() {
        assert_eq!(
            render(
                "{{ signal.payload.lines }} lines by {{ctx.actor.name}} at {{ ctx.now }}",
                Format::Plain
            )
            .unwrap(),
            "420 lines by Ada at 2026-11-22T10:00:00Z"
        );
        assert_eq!(
            render("{{ signal.payload.files }}", Format::Plain).unwrap(),
            "a.rs, b.rs"
        );
        assert_eq!(
            render("{{ signal.payload.list.0.name }}", Format::Plain).unwrap(),
            "first"
        );
        assert_eq!(
            render("{{ signal.repo.id }}", Format::Plain).unwrap(),
            "acme/api"
        );
    }

    #[test]
    fn a_missing_or_null_path_is_an_error_naming_it() {
        assert_eq!(
            render("{{ signal.payload.nope }}", Format::Plain).unwrap_err(),
            "signal.payload.nope"
        );
        assert_eq!(
            render("{{ signal.payload.nested.n }}", Format::Plain).unwrap_err(),
            "signal.payload.nested.n"
        );
        assert_eq!(
            render("{{ ctx.tenant.config.x }}", Format::Plain).unwrap_err(),
            "ctx.tenant.config.x"
        );
        assert!(render("{{ signal.source }}", Format::Plain).is_err());
    }

    #[test]
    fn markdown_values_cannot_inject_links_mentions_or_html() {
        let out = render("Branch {{ signal.repo.branch }}", Format::Markdown).unwrap();
        assert_eq!(
            out,
            "Branch feat/\\[x\\]\\(http:&#8203;//evil\\.example\\) @&#8203;all &lt;b&gt;"
        );
        // The author's own Markdown is kept; only values are escaped.
        assert!(render("**{{ signal.kind }}**", Format::Markdown)
            .unwrap()
            .starts_with("**pr\\.opened**"));
    }

    #[test]
    fn plain_values_cannot_add_lines() {
        let s = "a\nb\u{7}c";
        let mut out = String::new();
        escape_into(&mut out, s, Format::Plain);
        assert_eq!(out, "a b c");
    }

    #[test]
    fn hidden_characters_are_neutralised_on_every_format() {
        let hostile = "feat/\u{202E}txt.exe\u{2066}x\u{2069} ma\u{200B}in\u{E0041}\u{2028}end";
        for format in [Format::Plain, Format::Markdown] {
            let mut out = String::new();
            escape_into(&mut out, hostile, format);
            assert!(
                !out.chars().any(|c| text::is_hidden(c) || text::is_break(c)),
                "{format:?}: {out:?}"
            );
            assert_eq!(out.matches('\u{FFFD}').count(), 5, "{format:?}: {out:?}");
        }
        let mut out = String::new();
        escape_into(&mut out, "Café 漢字 👩‍💻 ❤️", Format::Markdown);
        assert_eq!(out, "Café 漢字 👩‍💻 ❤️");
    }

    #[test]
    fn a_playbooks_own_hidden_characters_are_replaced_but_its_lines_kept() {
        let t = Template::parse("Line\u{202E}one\n{{ signal.kind }}\u{200B}").unwrap();
        assert_eq!(
            t.parts.first(),
            Some(&Part::Text("Line\u{FFFD}one\n".to_owned()))
        );
        assert_eq!(t.parts.last(), Some(&Part::Text("\u{FFFD}".to_owned())));
    }

    #[test]
    fn parse_errors_point_at_the_problem() {
        let e = Template::parse("ab {{ user.name }}").unwrap_err();
        assert_eq!(e.offset, 6);
        assert!(e.message.contains("must start with `signal` or `ctx`"));
        let e = Template::parse("x {{ signal.kind").unwrap_err();
        assert_eq!(e.offset, 2);
        assert!(Template::parse("{{ }}").is_err());
        assert!(Template::parse("{{ signal..kind }}").is_err());
        assert!(Template::parse("{{ signal.kind | upper }}").is_err());
        assert_eq!(Template::parse("no holes }} here").unwrap().parts.len(), 1);
    }
}
