//! `glob(pattern, text)`: a glob compiled to a small automaton and matched in time
//! proportional to `pattern × text`, with no backtracking.
//!
//! The syntax and meaning are globset's (0.4) with `literal_separator` on, which is what
//! conditions used before: the pattern is parsed into the same tokens by the same rules
//! (including its treatment of `**`), and each token becomes the automaton fragment of the
//! regular expression globset would have built for it. Two differences, both deliberate:
//! `?`, `*` and classes step over characters where globset's byte regex stepped over bytes
//! (identical for ASCII text), and alternatives nest at most [`MAX_NESTING`] deep (globset's
//! regex refused nesting past 250 levels). A differential test against globset checks the
//! two agree on every ASCII pattern and text it tries.
//!
//! Matching simulates the automaton over the text (Thompson's construction): at each
//! character, the set of live states advances at once, so the work is bounded by the number
//! of states times the length of the text whatever the pattern, and the matcher checks the
//! caller's progress callback every [`CHECK_EVERY`] state steps, so a deadline holds inside
//! one call.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::RwLock;

/// Alternatives (`{a,{b,c}}`) nested deeper than this are refused.
pub(crate) const MAX_NESTING: usize = 32;

/// State steps between two calls of the progress callback while matching.
const CHECK_EVERY: usize = 1 << 14;

/// Why a pattern cannot be compiled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PatternError {
    UnclosedClass,
    InvalidRange(char, char),
    UnopenedAlternates,
    UnclosedAlternates,
    DanglingEscape,
    TooDeep,
}

impl std::fmt::Display for PatternError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PatternError::UnclosedClass => f.write_str("unclosed character class; missing `]`"),
            PatternError::InvalidRange(a, b) => {
                write!(f, "invalid range `{a}-{b}`: `{a}` comes after `{b}`")
            }
            PatternError::UnopenedAlternates => {
                f.write_str("`}` closes no alternative group (write `[}]` for a literal `}`)")
            }
            PatternError::UnclosedAlternates => f.write_str(
                "unclosed alternative group; missing `}` (write `[{]` for a literal `{`)",
            ),
            PatternError::DanglingEscape => f.write_str("`\\` at the end escapes nothing"),
            PatternError::TooDeep => write!(
                f,
                "alternative groups are nested deeper than {MAX_NESTING} levels"
            ),
        }
    }
}

/// globset's tokens.
#[derive(Debug, Clone, PartialEq)]
enum Token {
    Literal(char),
    Any,
    ZeroOrMore,
    RecursivePrefix,
    RecursiveSuffix,
    RecursiveZeroOrMore,
    Class {
        negated: bool,
        ranges: Vec<(char, char)>,
    },
    Alternates(Vec<Vec<Token>>),
}

fn is_separator(c: char) -> bool {
    c == '/'
}

/// globset's parser, rule for rule (`globset::glob::Parser`, without the options conditions
/// never set).
struct Parser<'a> {
    chars: std::iter::Peekable<std::str::Chars<'a>>,
    alternates_stack: Vec<usize>,
    branches: Vec<Vec<Token>>,
    prev: Option<char>,
    cur: Option<char>,
}

impl Parser<'_> {
    fn bump(&mut self) -> Option<char> {
        self.prev = self.cur;
        self.cur = self.chars.next();
        self.cur
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn push_token(&mut self, token: Token) -> Result<(), PatternError> {
        match self.branches.last_mut() {
            Some(branch) => {
                branch.push(token);
                Ok(())
            }
            None => Err(PatternError::UnopenedAlternates),
        }
    }

    fn pop_token(&mut self) -> Option<Token> {
        self.branches.last_mut().and_then(Vec::pop)
    }

    fn have_tokens(&self) -> bool {
        self.branches.last().is_some_and(|b| !b.is_empty())
    }

    fn parse(&mut self) -> Result<(), PatternError> {
        while let Some(c) = self.bump() {
            match c {
                '?' => self.push_token(Token::Any)?,
                '*' => self.parse_star()?,
                '[' => self.parse_class()?,
                '{' => {
                    if self.alternates_stack.len() >= MAX_NESTING {
                        return Err(PatternError::TooDeep);
                    }
                    self.alternates_stack.push(self.branches.len());
                    self.branches.push(Vec::new());
                }
                '}' => {
                    let start = self
                        .alternates_stack
                        .pop()
                        .ok_or(PatternError::UnopenedAlternates)?;
                    let alternates: Vec<Vec<Token>> = self.branches.drain(start..).collect();
                    self.push_token(Token::Alternates(alternates))?;
                }
                ',' if !self.alternates_stack.is_empty() => self.branches.push(Vec::new()),
                '\\' => match self.bump() {
                    None => return Err(PatternError::DanglingEscape),
                    Some(c) => self.push_token(Token::Literal(c))?,
                },
                c => self.push_token(Token::Literal(c))?,
            }
        }
        Ok(())
    }

    fn parse_star(&mut self) -> Result<(), PatternError> {
        let prev = self.prev;
        if self.peek() != Some('*') {
            return self.push_token(Token::ZeroOrMore);
        }
        self.bump();
        if !self.have_tokens() {
            if self.peek().is_some_and(|c| !is_separator(c)) {
                self.push_token(Token::ZeroOrMore)?;
                return self.push_token(Token::ZeroOrMore);
            }
            self.push_token(Token::RecursivePrefix)?;
            self.bump();
            return Ok(());
        }
        if !prev.is_some_and(is_separator)
            && (self.branches.len() <= 1 || (prev != Some(',') && prev != Some('{')))
        {
            self.push_token(Token::ZeroOrMore)?;
            return self.push_token(Token::ZeroOrMore);
        }
        let is_suffix = match self.peek() {
            None => {
                self.bump();
                true
            }
            Some(',' | '}') if self.branches.len() >= 2 => true,
            Some(c) if is_separator(c) => {
                self.bump();
                false
            }
            Some(_) => {
                self.push_token(Token::ZeroOrMore)?;
                return self.push_token(Token::ZeroOrMore);
            }
        };
        let token = match self.pop_token() {
            Some(Token::RecursivePrefix) => Token::RecursivePrefix,
            Some(Token::RecursiveSuffix) => Token::RecursiveSuffix,
            _ if is_suffix => Token::RecursiveSuffix,
            _ => Token::RecursiveZeroOrMore,
        };
        self.push_token(token)
    }

    fn parse_class(&mut self) -> Result<(), PatternError> {
        let mut ranges: Vec<(char, char)> = Vec::new();
        let negated = matches!(self.chars.peek(), Some('!' | '^'));
        if negated {
            self.bump();
        }
        let mut first = true;
        let mut in_range = false;
        loop {
            let c = self.bump().ok_or(PatternError::UnclosedClass)?;
            match c {
                ']' if !first => break,
                '-' if !first && !in_range => in_range = true,
                c => {
                    match ranges.last_mut() {
                        Some(range) if in_range => {
                            if c < range.0 {
                                return Err(PatternError::InvalidRange(range.0, c));
                            }
                            range.1 = c;
                        }
                        _ => ranges.push((c, c)),
                    }
                    in_range = false;
                }
            }
            first = false;
        }
        if in_range {
            // A `-` just before `]` is literal.
            ranges.push(('-', '-'));
        }
        self.push_token(Token::Class { negated, ranges })
    }
}

fn parse(pattern: &str) -> Result<Vec<Token>, PatternError> {
    let mut parser = Parser {
        chars: pattern.chars().peekable(),
        alternates_stack: Vec::new(),
        branches: vec![Vec::new()],
        prev: None,
        cur: None,
    };
    parser.parse()?;
    if parser.branches.len() > 1 {
        return Err(PatternError::UnclosedAlternates);
    }
    Ok(parser.branches.pop().unwrap_or_default())
}

/// What one character step accepts.
#[derive(Debug, Clone, Copy)]
enum Step {
    Char(char),
    /// Any character but `/` (globset's `[^/]`).
    NotSeparator,
    /// Any character (globset's `.` with `dot_matches_new_line`).
    Any,
    /// Class number `n` in [`Glob::classes`].
    Class(u32),
}

#[derive(Debug, Clone, Copy)]
enum State {
    /// Consume one character accepted by the step, then go to the state.
    Consume(Step, u32),
    /// Go to both states without consuming.
    Split(u32, u32),
    Match,
}

#[derive(Debug)]
struct Class {
    negated: bool,
    ranges: Vec<(char, char)>,
}

/// A compiled pattern.
#[derive(Debug)]
pub(crate) struct Glob {
    states: Vec<State>,
    classes: Vec<Class>,
    start: u32,
}

/// The progress callback said to stop.
#[derive(Debug)]
pub(crate) struct Stopped<E>(pub E);

struct Builder {
    states: Vec<State>,
    classes: Vec<Class>,
}

impl Builder {
    fn push(&mut self, state: State) -> u32 {
        self.states.push(state);
        u32::try_from(self.states.len() - 1).unwrap_or(u32::MAX)
    }

    fn set(&mut self, id: u32, state: State) {
        if let Some(slot) = self.states.get_mut(id as usize) {
            *slot = state;
        }
    }

    /// `step*` followed by `next`.
    fn repeat(&mut self, step: Step, next: u32) -> u32 {
        let split = self.push(State::Split(0, next));
        let body = self.push(State::Consume(step, split));
        self.set(split, State::Split(body, next));
        split
    }

    /// Compiles `tokens` followed by `next`; returns the entry state.
    fn tokens(&mut self, tokens: &[Token], mut next: u32) -> u32 {
        for token in tokens.iter().rev() {
            next = self.token(token, next);
        }
        next
    }

    fn token(&mut self, token: &Token, next: u32) -> u32 {
        match token {
            Token::Literal(c) => self.push(State::Consume(Step::Char(*c), next)),
            Token::Any => self.push(State::Consume(Step::NotSeparator, next)),
            Token::ZeroOrMore => self.repeat(Step::NotSeparator, next),
            // `(?:/?|.*/)`
            Token::RecursivePrefix => {
                let slash = self.push(State::Consume(Step::Char('/'), next));
                let optional = self.push(State::Split(slash, next));
                let slash_after = self.push(State::Consume(Step::Char('/'), next));
                let anything = self.repeat(Step::Any, slash_after);
                self.push(State::Split(optional, anything))
            }
            // `/.*`
            Token::RecursiveSuffix => {
                let anything = self.repeat(Step::Any, next);
                self.push(State::Consume(Step::Char('/'), anything))
            }
            // `(?:/|/.*/)`
            Token::RecursiveZeroOrMore => {
                let one = self.push(State::Consume(Step::Char('/'), next));
                let closing = self.push(State::Consume(Step::Char('/'), next));
                let anything = self.repeat(Step::Any, closing);
                let opening = self.push(State::Consume(Step::Char('/'), anything));
                self.push(State::Split(one, opening))
            }
            Token::Class { negated, ranges } => {
                self.classes.push(Class {
                    negated: *negated,
                    ranges: ranges.clone(),
                });
                let n = u32::try_from(self.classes.len() - 1).unwrap_or(u32::MAX);
                self.push(State::Consume(Step::Class(n), next))
            }
            // globset drops alternatives whose regex is empty, and the whole group when
            // none is left (so `{a,}` is `a`, and `x{}y` is `xy`).
            Token::Alternates(branches) => {
                let entries: Vec<u32> = branches
                    .iter()
                    .filter(|b| !renders_empty(b))
                    .map(|b| self.tokens(b, next))
                    .collect();
                let mut iter = entries.into_iter().rev();
                let Some(last) = iter.next() else {
                    return next;
                };
                iter.fold(last, |rest, entry| self.push(State::Split(entry, rest)))
            }
        }
    }
}

/// Whether globset would render these tokens as an empty regex.
fn renders_empty(tokens: &[Token]) -> bool {
    tokens.iter().all(|t| match t {
        Token::Alternates(branches) => branches.iter().all(|b| renders_empty(b)),
        _ => false,
    })
}

impl Glob {
    /// Compiles a pattern.
    pub fn new(pattern: &str) -> Result<Glob, PatternError> {
        let tokens = parse(pattern)?;
        let mut builder = Builder {
            states: Vec::new(),
            classes: Vec::new(),
        };
        let done = builder.push(State::Match);
        // globset's special case: the glob `**` (also `**/`) matches everything.
        let start = if tokens == [Token::RecursivePrefix] {
            builder.repeat(Step::Any, done)
        } else {
            builder.tokens(&tokens, done)
        };
        builder.states.shrink_to_fit();
        Ok(Glob {
            states: builder.states,
            classes: builder.classes,
            start,
        })
    }

    /// Heap and inline bytes this matcher holds, for the cache's byte bound.
    pub fn bytes(&self) -> usize {
        std::mem::size_of::<Glob>()
            + self.states.capacity() * std::mem::size_of::<State>()
            + self
                .classes
                .iter()
                .map(|c| std::mem::size_of::<Class>() + c.ranges.capacity() * 8)
                .sum::<usize>()
    }

    fn accepts(&self, step: Step, c: char) -> bool {
        match step {
            Step::Char(want) => c == want,
            Step::NotSeparator => c != '/',
            Step::Any => true,
            Step::Class(n) => self.classes.get(n as usize).is_some_and(|class| {
                class.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi) != class.negated
            }),
        }
    }

    /// Adds `from` and every state reachable from it without consuming to `list`.
    fn close(
        &self,
        from: u32,
        list: &mut Vec<u32>,
        seen: &mut [u32],
        mark: u32,
        stack: &mut Vec<u32>,
    ) {
        stack.push(from);
        while let Some(id) = stack.pop() {
            let Some(slot) = seen.get_mut(id as usize) else {
                continue;
            };
            if *slot == mark {
                continue;
            }
            *slot = mark;
            match self.states.get(id as usize) {
                Some(State::Split(a, b)) => {
                    stack.push(*b);
                    stack.push(*a);
                }
                Some(State::Consume(..) | State::Match) => list.push(id),
                None => {}
            }
        }
    }

    /// Whether the whole `text` matches. `progress` is called every [`CHECK_EVERY`] state
    /// steps; an error from it stops the match.
    pub fn is_match<E>(
        &self,
        text: &str,
        mut progress: impl FnMut() -> Result<(), E>,
    ) -> Result<bool, Stopped<E>> {
        let mut seen = vec![0_u32; self.states.len()];
        let mut current = Vec::new();
        let mut next = Vec::new();
        let mut stack = Vec::new();
        let mut mark = 1;
        self.close(self.start, &mut current, &mut seen, mark, &mut stack);
        let mut steps = 0;
        for c in text.chars() {
            mark += 1;
            next.clear();
            for &id in &current {
                if let Some(State::Consume(step, to)) = self.states.get(id as usize) {
                    if self.accepts(*step, c) {
                        self.close(*to, &mut next, &mut seen, mark, &mut stack);
                    }
                }
            }
            std::mem::swap(&mut current, &mut next);
            if current.is_empty() {
                return Ok(false);
            }
            steps += current.len();
            if steps >= CHECK_EVERY {
                steps = 0;
                progress().map_err(Stopped)?;
            }
        }
        Ok(current
            .iter()
            .any(|&id| matches!(self.states.get(id as usize), Some(State::Match))))
    }
}

/// Compiled patterns shared by every evaluation of one engine, bounded in entries and in
/// bytes (pattern text plus the compiled matcher). When an insertion would pass either
/// bound the cache is emptied first: conditions that build patterns from payload text
/// cannot grow it, and the constant patterns of playbooks come back on their next use.
pub(crate) struct GlobCache {
    inner: RwLock<CacheInner>,
    max_entries: usize,
    max_bytes: usize,
}

#[derive(Default)]
struct CacheInner {
    map: HashMap<String, Arc<Glob>>,
    bytes: usize,
}

/// Bookkeeping per entry beyond the pattern and matcher (the map's slot, the `Arc`).
const ENTRY_OVERHEAD: usize = 64;

impl GlobCache {
    pub fn new(max_entries: usize, max_bytes: usize) -> GlobCache {
        GlobCache {
            inner: RwLock::new(CacheInner::default()),
            max_entries,
            max_bytes,
        }
    }

    /// The compiled pattern, from the cache or compiled now (and cached if it fits).
    pub fn get(&self, pattern: &str) -> Result<Arc<Glob>, PatternError> {
        if let Some(glob) = self.inner.read().map.get(pattern) {
            return Ok(Arc::clone(glob));
        }
        let glob = Arc::new(Glob::new(pattern)?);
        let cost = pattern.len() + glob.bytes() + ENTRY_OVERHEAD;
        if cost <= self.max_bytes && self.max_entries > 0 {
            let mut inner = self.inner.write();
            if inner.map.len() >= self.max_entries || inner.bytes + cost > self.max_bytes {
                inner.map.clear();
                inner.bytes = 0;
            }
            if inner
                .map
                .insert(pattern.to_owned(), Arc::clone(&glob))
                .is_none()
            {
                inner.bytes += cost;
            }
        }
        Ok(glob)
    }

    /// (entries, bytes) held now.
    #[cfg(test)]
    pub fn usage(&self) -> (usize, usize) {
        let inner = self.inner.read();
        (inner.map.len(), inner.bytes)
    }
}

#[cfg(test)]
mod tests {
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;

    fn glob(pattern: &str, text: &str) -> bool {
        Glob::new(pattern)
            .unwrap_or_else(|e| panic!("{pattern}: {e}"))
            .is_match(text, || Ok::<(), ()>(()))
            .unwrap_or_else(|_| panic!("{pattern} stopped"))
    }

    #[test]
    fn matches_like_the_documented_examples() {
        assert!(glob("release/*", "release/1.2"));
        assert!(!glob("*", "a/b"));
        assert!(glob("release/**", "release/2026/11"));
        assert!(!glob("release/**", "release"));
        assert!(glob("**", "a/b/c"));
        assert!(glob("**/x", "x"));
        assert!(glob("**/x", "a/b/x"));
        assert!(glob("a/**/b", "a/b"));
        assert!(glob("a/**/b", "a/x/y/b"));
        assert!(glob("feat/{x,y}-*", "feat/y-2"));
        assert!(glob("[a-c]?", "bz"));
        assert!(!glob("[!a-c]?", "bz"));
        assert!(glob("\\*", "*"));
        assert!(!glob("\\*", "a"));
    }

    #[test]
    fn steps_over_characters_not_bytes() {
        assert!(glob("?", "é"));
        assert!(glob("[é]", "é"));
        assert!(glob("*-ß", "straße-ß"));
    }

    #[test]
    fn refuses_what_globset_refuses() {
        for (pattern, error) in [
            ("[", PatternError::UnclosedClass),
            ("[z-a]", PatternError::InvalidRange('z', 'a')),
            ("a}", PatternError::UnopenedAlternates),
            ("{a", PatternError::UnclosedAlternates),
            ("a\\", PatternError::DanglingEscape),
        ] {
            assert_eq!(Glob::new(pattern).err(), Some(error), "{pattern}");
        }
        let deep = format!(
            "{}a{}",
            "{".repeat(MAX_NESTING + 1),
            "}".repeat(MAX_NESTING + 1)
        );
        assert_eq!(Glob::new(&deep).err(), Some(PatternError::TooDeep));
        let fine = format!("{}a{}", "{".repeat(MAX_NESTING), "}".repeat(MAX_NESTING));
        assert!(glob(&fine, "a"));
    }

    /// The pattern that took globset 22 s is decided in one pass, and a progress callback
    /// that says stop ends the match.
    #[test]
    fn many_stars_do_not_backtrack() {
        let pattern = format!("{}ab", "*a".repeat(200));
        let text = "a".repeat(4_096);
        assert!(!glob(&pattern, &text));
        let g = Glob::new(&pattern).unwrap();
        let mut calls = 0;
        let stopped = g.is_match(&text, || {
            calls += 1;
            if calls == 3 {
                Err("stop")
            } else {
                Ok(())
            }
        });
        assert!(matches!(stopped, Err(Stopped("stop"))));
    }

    fn random_pattern(rng: &mut StdRng) -> String {
        const PIECES: [&str; 16] = [
            "a", "b", "/", "*", "**", "?", "[ab]", "[!a]", "[a-b]", "{", "}", ",", "\\*", "-", "]",
            "[",
        ];
        (0..rng.random_range(0..7))
            .map(|_| PIECES[rng.random_range(0..PIECES.len())])
            .collect()
    }

    fn random_text(rng: &mut StdRng) -> String {
        (0..rng.random_range(0..7))
            .map(|_| ['a', 'b', '/', '-', '*', ','][rng.random_range(0..6)])
            .collect()
    }

    /// The parser and the automaton agree with globset, the matcher conditions used before,
    /// on ASCII: same patterns refused, same texts matched.
    #[test]
    fn agrees_with_globset() {
        let mut rng = StdRng::seed_from_u64(11);
        let (mut compared, mut matched) = (0, 0);
        for _ in 0..20_000 {
            let pattern = random_pattern(&mut rng);
            let theirs = globset::GlobBuilder::new(&pattern)
                .literal_separator(true)
                .build()
                .map(|g| g.compile_matcher());
            let ours = Glob::new(&pattern);
            match (&theirs, &ours) {
                (Err(_), Err(_)) => continue,
                (Ok(_), Ok(_)) => {}
                _ => panic!("`{pattern}`: globset {theirs:?}, ours {ours:?}"),
            }
            let (Ok(theirs), Ok(ours)) = (theirs, ours) else {
                continue;
            };
            for _ in 0..8 {
                let text = random_text(&mut rng);
                let want = theirs.is_match(&text);
                let got = ours.is_match(&text, || Ok::<(), ()>(())).unwrap();
                assert_eq!(got, want, "`{pattern}` against `{text}`");
                compared += 1;
                matched += usize::from(got);
            }
        }
        assert!(compared > 50_000 && matched > 5_000, "{compared} {matched}");
    }

    #[test]
    fn the_cache_is_bounded_in_entries_and_bytes() {
        let cache = GlobCache::new(8, 4_096);
        for i in 0..100 {
            cache.get(&format!("p{i}/*")).unwrap();
            let (entries, bytes) = cache.usage();
            assert!(entries <= 8 && bytes <= 4_096, "{entries} {bytes}");
        }
        // A pattern larger than the whole budget is compiled but not kept.
        let big = "a".repeat(5_000);
        cache.get(&big).unwrap();
        assert!(cache.usage().1 <= 4_096);
        // A repeated pattern is served from the cache.
        let first = cache.get("x/*").unwrap();
        let again = cache.get("x/*").unwrap();
        assert!(Arc::ptr_eq(&first, &again));
    }
}
