//! The simple conditions most playbooks use, parsed for native evaluation: comparisons of
//! `signal.…`/`ctx.…` paths with literals, joined by `&&`, `||` and `!`, plus
//! `path in [literals]`, `path.starts_with("literal")` and `glob("literal", path)`. The
//! expression is compiled into a flat program (`program.rs`) that runs without Rhai.
//!
//! Rhai stays the definition of what a condition means. This subset has the Rhai semantics
//! that were measured (mismatched types compare as unequal and unordered, integers and
//! floats compare numerically, a missing key reads as `()`, `in` is `==` on each element),
//! and whenever evaluation meets anything else at run time (a path through a non-map, an
//! array, a non-boolean operand of `&&`, a method on a non-string) it gives up and the
//! condition runs on Rhai, so results and error messages are Rhai's. The differential test
//! in `condition/mod.rs` checks both agree.

use std::cmp::Ordering;

use serde_json::Value;

use super::glob::Glob;
use crate::env::{Found, Path, Root, Seg};

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Lit(Lit),
    /// A path, with its id in the process-wide interner (equal paths, equal ids).
    Path(u32, Path),
    Not(Box<Expr>),
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Cmp(CmpOp, Box<Expr>, Box<Expr>),
    /// `path OP literal`, the commonest comparison.
    CmpPathLit(CmpOp, u32, Path, Lit),
    /// `path.starts_with("prefix")`.
    StartsWith(u32, Path, String),
    /// `path in [literal, …]`.
    In(u32, Path, Vec<Lit>),
    /// `glob("pattern", path)`.
    Glob(String, u32, Path),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lit {
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CmpOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Dot,
    Int(i64),
    Float(f64),
    Str(String),
    Cmp(CmpOp),
    And,
    Or,
    Not,
    Minus,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
}

fn tokenize(src: &str) -> Option<Vec<Tok>> {
    let bytes = src.as_bytes();
    let mut toks = Vec::new();
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let next = bytes.get(i + 1).copied();
        match b {
            b' ' | b'\t' | b'\n' | b'\r' => i += 1,
            b'(' => {
                toks.push(Tok::LParen);
                i += 1;
            }
            b')' => {
                toks.push(Tok::RParen);
                i += 1;
            }
            b'[' => {
                toks.push(Tok::LBracket);
                i += 1;
            }
            b']' => {
                toks.push(Tok::RBracket);
                i += 1;
            }
            b',' => {
                toks.push(Tok::Comma);
                i += 1;
            }
            b'.' => {
                toks.push(Tok::Dot);
                i += 1;
            }
            b'-' => {
                toks.push(Tok::Minus);
                i += 1;
            }
            b'&' if next == Some(b'&') => {
                toks.push(Tok::And);
                i += 2;
            }
            b'|' if next == Some(b'|') => {
                toks.push(Tok::Or);
                i += 2;
            }
            b'=' if next == Some(b'=') => {
                toks.push(Tok::Cmp(CmpOp::Eq));
                i += 2;
            }
            b'!' if next == Some(b'=') => {
                toks.push(Tok::Cmp(CmpOp::Ne));
                i += 2;
            }
            b'!' => {
                toks.push(Tok::Not);
                i += 1;
            }
            b'<' | b'>' => {
                let eq = next == Some(b'=');
                toks.push(Tok::Cmp(match (b, eq) {
                    (b'<', false) => CmpOp::Lt,
                    (b'<', true) => CmpOp::Le,
                    (_, false) => CmpOp::Gt,
                    (_, true) => CmpOp::Ge,
                }));
                i += if eq { 2 } else { 1 };
            }
            b'"' => {
                let rest = src.get(i + 1..)?;
                let end = rest.find('"')?;
                let text = rest.get(..end)?;
                // Escapes and line breaks have Rhai-specific meanings: leave them to Rhai.
                if text.contains('\\') || text.contains('\n') {
                    return None;
                }
                toks.push(Tok::Str(text.to_owned()));
                i += end + 2;
            }
            b'0'..=b'9' => {
                let start = i;
                while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                let is_float =
                    bytes.get(i) == Some(&b'.') && bytes.get(i + 1).is_some_and(u8::is_ascii_digit);
                if is_float {
                    i += 1;
                    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                }
                // `1_000`, `1e3`, `0x10`, `1.5e3`: Rhai spellings this subset leaves alone.
                if bytes
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_' || *c == b'.')
                {
                    return None;
                }
                let text = src.get(start..i)?;
                toks.push(if is_float {
                    Tok::Float(text.parse().ok()?)
                } else {
                    Tok::Int(text.parse().ok()?)
                });
            }
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while bytes
                    .get(i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || *c == b'_')
                {
                    i += 1;
                }
                toks.push(Tok::Ident(src.get(start..i)?.to_owned()));
            }
            _ => return None,
        }
    }
    Some(toks)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }

    fn bump(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn or(&mut self, depth: usize) -> Option<Expr> {
        let mut left = self.and(depth)?;
        while self.peek() == Some(&Tok::Or) {
            self.pos += 1;
            let right = self.and(depth)?;
            left = Expr::Or(Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn and(&mut self, depth: usize) -> Option<Expr> {
        let mut left = self.cmp(depth)?;
        while self.peek() == Some(&Tok::And) {
            self.pos += 1;
            let right = self.cmp(depth)?;
            left = Expr::And(Box::new(left), Box::new(right));
        }
        Some(left)
    }

    fn cmp(&mut self, depth: usize) -> Option<Expr> {
        let left = self.unary(depth)?;
        if matches!(self.peek(), Some(Tok::Ident(word)) if word == "in") {
            self.pos += 1;
            let Expr::Path(id, path) = left else {
                return None;
            };
            let list = self.list(depth)?;
            // Rhai gives `in` and the comparisons their own precedences: leave mixes to it.
            if matches!(self.peek(), Some(Tok::Cmp(_))) {
                return None;
            }
            return Some(Expr::In(id, path, list));
        }
        if let Some(Tok::Cmp(op)) = self.peek().cloned() {
            self.pos += 1;
            let right = self.unary(depth)?;
            // Chained comparisons have Rhai-specific meaning: not in this subset.
            if matches!(self.peek(), Some(Tok::Cmp(_))) {
                return None;
            }
            return Some(match (left, right) {
                (Expr::Path(id, path), Expr::Lit(lit)) => Expr::CmpPathLit(op, id, path, lit),
                (left, right) => Expr::Cmp(op, Box::new(left), Box::new(right)),
            });
        }
        Some(left)
    }

    /// `[literal, …]`, the right operand of `in`.
    fn list(&mut self, depth: usize) -> Option<Vec<Lit>> {
        if self.bump()? != Tok::LBracket {
            return None;
        }
        let mut items = Vec::new();
        if self.peek() == Some(&Tok::RBracket) {
            self.pos += 1;
            return Some(items);
        }
        loop {
            match self.unary(depth)? {
                Expr::Lit(lit) => items.push(lit),
                _ => return None,
            }
            match self.bump()? {
                Tok::Comma => {}
                Tok::RBracket => return Some(items),
                _ => return None,
            }
        }
    }

    fn unary(&mut self, depth: usize) -> Option<Expr> {
        if depth > 32 {
            return None;
        }
        match self.peek()? {
            Tok::Not => {
                self.pos += 1;
                Some(Expr::Not(Box::new(self.unary(depth + 1)?)))
            }
            Tok::Minus => {
                self.pos += 1;
                match self.bump()? {
                    Tok::Int(n) => Some(Expr::Lit(Lit::Int(n.checked_neg()?))),
                    Tok::Float(f) => Some(Expr::Lit(Lit::Float(-f))),
                    _ => None,
                }
            }
            _ => self.primary(depth),
        }
    }

    fn primary(&mut self, depth: usize) -> Option<Expr> {
        match self.bump()? {
            Tok::LParen => {
                let inner = self.or(depth + 1)?;
                (self.bump()? == Tok::RParen).then_some(inner)
            }
            Tok::Int(n) => Some(Expr::Lit(Lit::Int(n))),
            Tok::Float(f) => Some(Expr::Lit(Lit::Float(f))),
            Tok::Str(s) => Some(Expr::Lit(Lit::Str(s))),
            Tok::Ident(name) if name == "true" => Some(Expr::Lit(Lit::Bool(true))),
            Tok::Ident(name) if name == "false" => Some(Expr::Lit(Lit::Bool(false))),
            Tok::Ident(name) if name == "glob" => {
                if self.bump()? != Tok::LParen {
                    return None;
                }
                let Tok::Str(pattern) = self.bump()? else {
                    return None;
                };
                if self.bump()? != Tok::Comma {
                    return None;
                }
                let Expr::Path(id, path) = self.primary(depth)? else {
                    return None;
                };
                // An invalid pattern is an error only Rhai words.
                (self.bump()? == Tok::RParen && Glob::new(&pattern).is_ok())
                    .then_some(Expr::Glob(pattern, id, path))
            }
            Tok::Ident(name) => {
                let root = Root::parse(&name)?;
                let mut segs = Vec::new();
                while self.peek() == Some(&Tok::Dot) {
                    self.pos += 1;
                    match self.bump()? {
                        Tok::Ident(key) => segs.push(Seg::Key(key)),
                        _ => return None,
                    }
                }
                // `x.starts_with("…")` is the one method call in the subset; other methods
                // and indexing are Rhai's business.
                if self.peek() == Some(&Tok::LParen) {
                    self.pos += 1;
                    let Some(Seg::Key(method)) = segs.pop() else {
                        return None;
                    };
                    let Tok::Str(prefix) = self.bump()? else {
                        return None;
                    };
                    if method != "starts_with" || segs.is_empty() || self.bump()? != Tok::RParen {
                        return None;
                    }
                    let path = Path { root, segs };
                    return Some(Expr::StartsWith(intern(&path), path, prefix));
                }
                if segs.is_empty() {
                    return None;
                }
                let path = Path { root, segs };
                Some(Expr::Path(intern(&path), path))
            }
            _ => None,
        }
    }
}

/// Parses `src` if it lies entirely within the native subset.
pub(crate) fn parse(src: &str) -> Option<Expr> {
    let toks = tokenize(src)?;
    let mut parser = Parser { toks, pos: 0 };
    let expr = parser.or(0)?;
    (parser.pos == parser.toks.len()).then_some(expr)
}

/// A value during native evaluation.
#[derive(Debug, Clone, Copy)]
pub(super) enum V<'a> {
    Unit,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

/// Native evaluation met something outside the subset: evaluate on Rhai instead.
pub(crate) struct GiveUp;

fn from_json(v: &Value) -> Result<V<'_>, GiveUp> {
    match v {
        Value::Null => Ok(V::Unit),
        Value::Bool(b) => Ok(V::Bool(*b)),
        Value::Number(n) => match n.as_i64() {
            Some(i) => Ok(V::Int(i)),
            None if n.is_f64() => n.as_f64().map(V::Float).ok_or(GiveUp),
            None => Err(GiveUp),
        },
        Value::String(s) => Ok(V::Str(s)),
        Value::Array(_) | Value::Object(_) => Err(GiveUp),
    }
}

#[expect(
    clippy::cast_precision_loss,
    reason = "Rhai compares INT with FLOAT by converting the INT to FLOAT; so must we"
)]
#[inline(always)]
pub(super) fn compare(op: CmpOp, a: V<'_>, b: V<'_>) -> bool {
    let ord: Option<Ordering> = match (a, b) {
        (V::Int(x), V::Int(y)) => Some(x.cmp(&y)),
        (V::Int(x), V::Float(y)) => (x as f64).partial_cmp(&y),
        (V::Float(x), V::Int(y)) => x.partial_cmp(&(y as f64)),
        (V::Float(x), V::Float(y)) => x.partial_cmp(&y),
        (V::Str(x), V::Str(y)) => Some(x.cmp(y)),
        (V::Bool(x), V::Bool(y)) => Some(x.cmp(&y)),
        (V::Unit, V::Unit) => {
            // Measured: `() == ()` is true, `() != ()` false, orderings false.
            return op == CmpOp::Eq;
        }
        // Measured: values of different types are unequal and unordered.
        _ => return op == CmpOp::Ne,
    };
    match ord {
        None => op == CmpOp::Ne,
        Some(ord) => match op {
            CmpOp::Eq => ord == Ordering::Equal,
            CmpOp::Ne => ord != Ordering::Equal,
            CmpOp::Lt => ord == Ordering::Less,
            CmpOp::Le => ord != Ordering::Greater,
            CmpOp::Gt => ord == Ordering::Greater,
            CmpOp::Ge => ord != Ordering::Less,
        },
    }
}

/// Ids for paths, shared by every compiled condition, so that a decision can resolve a
/// path once however many candidates read it.
static INTERNER: std::sync::LazyLock<parking_lot::Mutex<std::collections::HashMap<String, u32>>> =
    std::sync::LazyLock::new(Default::default);

fn intern(path: &Path) -> u32 {
    let mut ids = INTERNER.lock();
    let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
    *ids.entry(path.to_string()).or_insert(next)
}

/// What a path found in the environment is to native evaluation (`None`: outside the
/// native subset, so Rhai's business).
pub(super) fn resolve(found: Found<'_>) -> Option<V<'_>> {
    match found {
        Found::Missing => Some(V::Unit),
        Found::Str(s) => Some(V::Str(s)),
        Found::Json(v) => from_json(v).ok(),
        Found::Broken | Found::Owned(_) => None,
    }
}

#[inline]
pub(super) fn lit_value(lit: &Lit) -> V<'_> {
    match lit {
        Lit::Bool(b) => V::Bool(*b),
        Lit::Int(i) => V::Int(*i),
        Lit::Float(f) => V::Float(*f),
        Lit::Str(s) => V::Str(s),
    }
}

/// At least the number of operations Rhai counts when it evaluates `expr` (one per
/// expression node it visits, one per property step of a path, and one for the statement;
/// the differential test in `condition/mod.rs` checks the bound against Rhai's count).
pub(crate) fn operations_bound(expr: &Expr) -> u64 {
    fn path(p: &Path) -> u64 {
        2 + 2 * u64::try_from(p.segs.len()).unwrap_or(u64::MAX / 4)
    }
    fn nodes(expr: &Expr) -> u64 {
        match expr {
            Expr::Lit(_) => 2,
            Expr::Path(_, p) => path(p),
            Expr::CmpPathLit(_, _, p, _) => 4 + path(p),
            Expr::StartsWith(_, p, _) | Expr::Glob(_, _, p) => 8 + path(p),
            Expr::In(_, p, list) => {
                8 + path(p) + 4 * u64::try_from(list.len()).unwrap_or(u64::MAX / 8)
            }
            Expr::Not(e) => 2 + nodes(e),
            Expr::And(l, r) | Expr::Or(l, r) | Expr::Cmp(_, l, r) => {
                2 + nodes(l).saturating_add(nodes(r))
            }
        }
    }
    2 + nodes(expr)
}

/// The paths an expression reads, in order of appearance.
pub(crate) fn paths(expr: &Expr, out: &mut Vec<Path>) {
    match expr {
        Expr::Lit(_) => {}
        Expr::Path(_, p) => {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        Expr::CmpPathLit(_, _, p, _)
        | Expr::StartsWith(_, p, _)
        | Expr::In(_, p, _)
        | Expr::Glob(_, _, p) => {
            if !out.contains(p) {
                out.push(p.clone());
            }
        }
        Expr::Not(e) => paths(e, out),
        Expr::And(l, r) | Expr::Or(l, r) | Expr::Cmp(_, l, r) => {
            paths(l, out);
            paths(r, out);
        }
    }
}

/// The `signal.…`/`ctx.…` property chains a Rhai script reads, found by a lexical scan
/// that skips string literals (used for the evidence of conditions outside the subset).
pub(crate) fn scan_paths(src: &str) -> Vec<Path> {
    let mut out: Vec<Path> = Vec::new();
    let bytes = src.as_bytes();
    let mut i = 0;
    let is_ident = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
    while let Some(&b) = bytes.get(i) {
        if b == b'"' || b == b'`' || b == b'\'' {
            i += 1;
            while let Some(&c) = bytes.get(i) {
                i += 1;
                if c == b'\\' {
                    i += 1;
                } else if c == b {
                    break;
                }
            }
            continue;
        }
        if is_ident(b) && (i == 0 || !bytes.get(i - 1).is_some_and(|c| is_ident(*c) || *c == b'.'))
        {
            let start = i;
            // `?.` (Rhai's null-safe access) reads the same path as `.`.
            while bytes.get(i).is_some_and(|c| {
                is_ident(*c) || *c == b'.' || (*c == b'?' && bytes.get(i + 1) == Some(&b'.'))
            }) {
                i += 1;
            }
            let raw = src.get(start..i).unwrap_or("").replace("?.", ".");
            let chain = raw.trim_end_matches('.');
            // A trailing method name (`branch.starts_with(`) is not part of the path.
            let chain = if bytes.get(i) == Some(&b'(') {
                chain.rsplit_once('.').map_or("", |(head, _)| head)
            } else {
                chain
            };
            let mut parts = chain.split('.');
            if let Some(root) = parts.next().and_then(Root::parse) {
                let segs: Vec<Seg> = parts.map(|p| Seg::Key(p.to_owned())).collect();
                let path = Path { root, segs };
                if !path.segs.is_empty() && !out.contains(&path) {
                    out.push(path);
                }
            }
            continue;
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_subset() {
        assert!(parse("signal.payload.lines > 400 && signal.payload.files > 3").is_some());
        assert!(
            parse("!(ctx.tenant.config.freeze == true) || signal.kind == \"pr.opened\"").is_some()
        );
        assert!(parse("signal.payload.delta >= -1.5").is_some());
        assert!(parse("signal.payload.flag").is_some());
        assert!(parse("signal.repo.branch.starts_with(\"release/\")").is_some());
        assert!(parse("signal.kind in [\"a\", -1, 2.5, true] && signal.kind in []").is_some());
        assert!(parse("glob(\"feat/{x,y}-*\", signal.repo.branch)").is_some());
    }

    #[test]
    fn leaves_everything_else_to_rhai() {
        for src in [
            "signal.repo.branch.ends_with(\"release/\")",
            "signal.repo.branch.starts_with(signal.kind)",
            "signal.starts_with(\"a\")",
            "signal.kind.starts_with(\"a\").len() > 0",
            "\"a\" in signal.payload.labels",
            "signal.kind in signal.payload.labels",
            "signal.kind in [signal.repo.branch]",
            "signal.kind in [1, 2,]",
            "signal.kind in [1] == true",
            "!signal.kind in [1]",
            "glob(signal.kind, \"x\")",
            "glob(\"[\", signal.kind)",
            "glob(\"a\", \"b\")",
            "recent_count(\"ci.failed\", \"1h\") > 2",
            "signal.payload.files[0] == \"a\"",
            "1 < 2 < 3",
            "let x = 1; x > 0",
            "signal.payload.n > 1_000",
            "signal.payload.n > 0x10",
            "\"a\\nb\" == signal.kind",
            "signal.payload.n + 1 > 2",
            "foo.bar > 1",
            "signal > 1",
        ] {
            assert!(parse(src).is_none(), "{src}");
        }
    }

    #[test]
    fn scans_paths_for_evidence() {
        let p = scan_paths(
            "!signal.repo?.branch.starts_with(\"signal.x\") && ctx.tenant.config.freeze",
        );
        let shown: Vec<String> = p.iter().map(ToString::to_string).collect();
        assert_eq!(shown, ["signal.repo.branch", "ctx.tenant.config.freeze"]);
    }
}
