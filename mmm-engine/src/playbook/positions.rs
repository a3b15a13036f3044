//! Where each node of a YAML document is, so that errors found after deserialisation
//! (a bad id, an unknown surface, a Rhai syntax error inside `when`) can name the line and
//! column; and where each document begins and ends, so that each can be deserialised on its
//! own as the type its `kind` names.
//!
//! The index is built in one pass over the events of granit-parser, the parser under
//! serde-saphyr, so positions and deserialisation agree. The same pass enforces the
//! [`LoadLimits`] on depth, documents and alias expansion *before* anything recurses or
//! expands: it keeps an explicit stack (no recursion), does constant work per event (time
//! linear in the input) and stores each node once as a tree, so memory is linear too, even
//! for very long keys.

use std::collections::HashMap;
use std::ops::Range;

use serde_saphyr::granit_parser::{ErrorKind, Event, Options, Parser, ScalarStyle, Span};

use super::limits::LoadLimits;
pub use crate::error::Pos;

impl Pos {
    fn of(span: &Span) -> Pos {
        Pos {
            line: span.start.line().max(1),
            column: span.start.col() + 1,
        }
    }
}

/// How a scalar was written, to map positions inside it back to the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    Plain,
    Quoted,
    Block,
}

#[derive(Debug, Clone, Copy)]
pub(crate) struct ScalarAt {
    pub pos: Pos,
    pub style: Style,
}

/// Where a node hangs in its parent.
#[derive(Debug)]
enum Slot {
    Root,
    /// The key is stored once, in the parent's map.
    Key,
    Index(usize),
    /// A node that is itself a mapping key (`? [a, b] : c`): indexed for the budget, never
    /// looked up.
    Detached,
}

/// Boxed, so that a leaf (most nodes) costs a pointer, not an empty map: the index of a
/// file at the node limit takes about 90 MB instead of 130 MB.
#[derive(Debug)]
#[expect(
    clippy::box_collection,
    reason = "a small enum for the many leaves; the extra allocation is only for collections"
)]
enum Kids {
    Leaf,
    Map(Box<HashMap<Box<str>, usize>>),
    Seq(Box<Vec<usize>>),
}

#[derive(Debug)]
struct Node {
    at: Pos,
    parent: usize,
    slot: Slot,
    style: Option<Style>,
    kids: Kids,
}

/// Positions of one document's nodes, looked up by dotted path (`spec.actions[1].surfaces[0]`).
#[derive(Debug, Default)]
pub(crate) struct DocPositions {
    pub start: Option<Pos>,
    pub empty: bool,
    pub kind: Option<String>,
    /// The document's text in the file (directives and comments before it included).
    pub source: Range<usize>,
    /// Lines of the file before `source` starts.
    pub line_offset: usize,
    nodes: Vec<Node>,
    /// Where the document's `...` ends, when it has one.
    explicit_end: Option<usize>,
    /// Where the parser ended the document (the next `---`, or the end of the text).
    end_byte: usize,
    start_byte: usize,
}

/// The steps of a dotted path: keys and sequence indexes.
enum Step<'a> {
    Key(&'a str),
    Index(usize),
}

fn steps(path: &str) -> impl Iterator<Item = Option<Step<'_>>> {
    path.split('.')
        .filter(|s| !s.is_empty())
        .flat_map(|segment| {
            let mut parts = segment.split('[');
            let key = parts
                .next()
                .filter(|k| !k.is_empty())
                .map(|k| Some(Step::Key(k)));
            let indexes = parts.map(|p| {
                p.strip_suffix(']')
                    .and_then(|n| n.parse().ok())
                    .map(Step::Index)
            });
            key.into_iter().chain(indexes)
        })
}

impl DocPositions {
    /// The deepest node `path` reaches, and whether it reached the end of the path.
    fn find(&self, path: &str) -> Option<(usize, bool)> {
        let mut at = 0;
        self.nodes.first()?;
        for step in steps(path) {
            let next = match (step, self.nodes.get(at).map(|n| &n.kids)) {
                (Some(Step::Key(k)), Some(Kids::Map(map))) => map.get(k).copied(),
                (Some(Step::Index(i)), Some(Kids::Seq(list))) => list.get(i).copied(),
                _ => None,
            };
            match next {
                Some(n) => at = n,
                None => return Some((at, false)),
            }
        }
        Some((at, true))
    }

    /// Where the value at `path` starts (falling back to its parents, then the document).
    pub fn value(&self, path: &str) -> Option<Pos> {
        match self.find(path) {
            Some((0, _)) | None => self.start,
            Some((n, _)) => self.nodes.get(n).map(|n| n.at),
        }
    }

    pub fn scalar(&self, path: &str) -> Option<ScalarAt> {
        let (n, true) = self.find(path)? else {
            return None;
        };
        let node = self.nodes.get(n)?;
        node.style.map(|style| ScalarAt {
            pos: node.at,
            style,
        })
    }

    /// The key a node is the value of (a scan of its parent's keys: for messages only).
    fn key_of(&self, child: usize) -> Option<&str> {
        let parent = self.nodes.get(child)?.parent;
        match &self.nodes.get(parent)?.kids {
            Kids::Map(map) => map.iter().find(|(_, v)| **v == child).map(|(k, _)| &**k),
            _ => None,
        }
    }

    /// The dotted path of the value that starts at `pos`, if one does.
    pub fn path_at(&self, pos: Pos) -> Option<String> {
        let mut n = self.nodes.iter().position(|node| node.at == pos)?;
        let mut parts = Vec::new();
        // Each node's parent was created before it, so this walk ends at the root.
        while let Some(node) = self.nodes.get(n) {
            match &node.slot {
                Slot::Root | Slot::Detached => break,
                Slot::Key => parts.push(format!(".{}", self.key_of(n).unwrap_or("?"))),
                Slot::Index(i) => parts.push(format!("[{i}]")),
            }
            if node.parent >= n {
                break;
            }
            n = node.parent;
        }
        let path: String = parts.into_iter().rev().collect();
        Some(path.strip_prefix('.').unwrap_or(&path).to_owned())
    }

    /// Maps a 1-based (line, column) inside the scalar at `path` to the file.
    pub fn inside(&self, path: &str, line: usize, column: usize) -> Option<Pos> {
        let scalar = self.scalar(path)?;
        let line = line.max(1);
        let column = column.max(1);
        Some(match scalar.style {
            // Block scalars: the marker is the first content character; every content
            // line starts at the same indentation.
            Style::Block => Pos {
                line: scalar.pos.line + line - 1,
                column: scalar.pos.column + column - 1,
            },
            Style::Quoted if line == 1 => Pos {
                line: scalar.pos.line,
                column: scalar.pos.column + column,
            },
            Style::Plain if line == 1 => Pos {
                line: scalar.pos.line,
                column: scalar.pos.column + column - 1,
            },
            // A folded multi-line flow scalar: the line inside cannot be mapped exactly.
            _ => Pos {
                line: scalar.pos.line + line - 1,
                column: 1,
            },
        })
    }
}

/// Why the index stopped: a syntax error or a limit, at a position.
#[derive(Debug)]
pub(crate) struct IndexError {
    /// `yaml` for a syntax error, `limit` for a limit, `invalid-number` for a number that
    /// cannot be represented.
    pub rule: &'static str,
    pub message: String,
    pub pos: Pos,
}

/// The documents indexed, and the error that stopped indexing, if any. Documents completed
/// before a syntax error are kept (they can still be checked); after a limit, none are.
#[derive(Debug, Default)]
pub(crate) struct Index {
    pub docs: Vec<DocPositions>,
    pub error: Option<IndexError>,
}

/// What a node costs once its aliases are expanded.
#[derive(Debug, Clone, Copy, Default)]
struct Cost {
    nodes: u64,
    bytes: u64,
    /// Levels of collections in it (0 for a scalar).
    height: usize,
}

struct Frame {
    node: usize,
    anchor: usize,
    cost: Cost,
    map: bool,
    /// In a mapping: the key whose value comes next (`None` while the key is awaited).
    key: Option<Box<str>>,
    /// In a mapping: the node of the value being read (for messages).
    current: Option<usize>,
    /// In a sequence: the index of the next item.
    next: usize,
}

struct Indexer<'l> {
    limits: &'l LoadLimits,
    docs: Vec<DocPositions>,
    doc: Option<DocPositions>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Cost>,
    nodes: u64,
    bytes: u64,
}

pub(crate) fn depth_message(limits: &LoadLimits) -> String {
    format!(
        "nesting is deeper than the limit of {} levels",
        limits.max_depth
    )
}

fn limit(pos: Pos, message: String) -> IndexError {
    IndexError {
        rule: "limit",
        message,
        pos,
    }
}

/// Whether a plain scalar is written as an integer (YAML 1.2 core: decimal, `0o` octal,
/// `0x` hexadecimal; also `0b` and `_` separators, which the deserialiser accepts) that does
/// not fit in 64 bits. Such a number would otherwise become a rounded float.
fn integer_beyond_64_bits(text: &str) -> bool {
    let negative = text.starts_with('-');
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (digits, radix) = if let Some(d) = unsigned.strip_prefix("0x") {
        (d, 16)
    } else if let Some(d) = unsigned.strip_prefix("0o") {
        (d, 8)
    } else if let Some(d) = unsigned.strip_prefix("0b") {
        (d, 2)
    } else {
        (unsigned, 10)
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || !digits.chars().all(|c| c == '_' || c.is_digit(radix))
    {
        return false;
    }
    let digits: String = digits.chars().filter(|c| *c != '_').collect();
    match u128::from_str_radix(&digits, radix) {
        Ok(v) if negative => v > u128::from(i64::MAX.unsigned_abs()) + 1,
        Ok(v) => v > u128::from(u64::MAX),
        Err(_) => true,
    }
}

impl Indexer<'_> {
    /// The dotted path of the node about to be added (for messages).
    fn path_here(&self) -> String {
        let mut path = String::new();
        let last = self.stack.len().saturating_sub(1);
        for (i, frame) in self.stack.iter().enumerate() {
            if frame.map {
                let key = if i == last {
                    frame.key.as_deref()
                } else {
                    frame
                        .current
                        .and_then(|n| self.doc.as_ref().and_then(|d| d.key_of(n)))
                };
                if let Some(k) = key {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&crate::error::field_name(k));
                }
            } else {
                let index = if i == last {
                    frame.next
                } else {
                    frame.next.saturating_sub(1)
                };
                path.push_str(&format!("[{index}]"));
            }
        }
        path
    }

    /// Charges a node's cost to the file's budget and to its parent.
    fn charge(&mut self, cost: Cost, pos: Pos) -> Result<(), IndexError> {
        self.nodes = self.nodes.saturating_add(cost.nodes);
        self.bytes = self.bytes.saturating_add(cost.bytes);
        let depth = self.stack.len().saturating_add(cost.height);
        if depth > self.limits.max_depth {
            return Err(limit(pos, depth_message(self.limits)));
        }
        if self.nodes > self.limits.max_nodes {
            return Err(limit(
                pos,
                format!(
                    "the file has more than the limit of {} nodes (aliases counted as the nodes they repeat)",
                    self.limits.max_nodes
                ),
            ));
        }
        if self.bytes > self.limits.max_scalar_bytes {
            return Err(limit(
                pos,
                format!(
                    "the file's text values exceed the limit of {} bytes (aliases counted as the text they repeat)",
                    self.limits.max_scalar_bytes
                ),
            ));
        }
        if let Some(parent) = self.stack.last_mut() {
            parent.cost.nodes = parent.cost.nodes.saturating_add(cost.nodes);
            parent.cost.bytes = parent.cost.bytes.saturating_add(cost.bytes);
            parent.cost.height = parent.cost.height.max(cost.height);
        }
        Ok(())
    }

    /// Adds a node to the tree where the parser is; `key` is the scalar's text. Returns the
    /// node's index, or `None` when the node is a mapping key (a scalar key is remembered for
    /// the value that follows).
    fn attach(&mut self, pos: Pos, key: Option<&str>, style: Option<Style>) -> Option<usize> {
        let doc = self.doc.as_mut()?;
        let index = doc.nodes.len();
        let (parent, slot) = match self.stack.last_mut() {
            None if doc.nodes.is_empty() => (0, Slot::Root),
            None => return None,
            Some(frame) if frame.map => match frame.key.take() {
                None => {
                    // A key. Collection and alias keys cannot be looked up; they stand as `?`.
                    frame.key = Some(Box::from(key.unwrap_or("?")));
                    if key.is_some() {
                        return None;
                    }
                    (frame.node, Slot::Detached)
                }
                Some(k) => {
                    frame.current = Some(index);
                    if let Some(Node {
                        kids: Kids::Map(map),
                        ..
                    }) = doc.nodes.get_mut(frame.node)
                    {
                        map.entry(k).or_insert(index);
                    }
                    (frame.node, Slot::Key)
                }
            },
            Some(frame) => {
                let i = frame.next;
                frame.next += 1;
                if let Some(Node {
                    kids: Kids::Seq(list),
                    ..
                }) = doc.nodes.get_mut(frame.node)
                {
                    list.push(index);
                }
                (frame.node, Slot::Index(i))
            }
        };
        doc.nodes.push(Node {
            at: pos,
            parent,
            slot,
            style,
            kids: Kids::Leaf,
        });
        Some(index)
    }

    fn on_event(&mut self, text: &str, event: Event<'_>, span: &Span) -> Result<(), IndexError> {
        let pos = Pos::of(span);
        let byte = span.start.byte_offset().unwrap_or(0);
        match event {
            Event::DocumentStart(..) => {
                if self.docs.len() >= self.limits.max_documents {
                    return Err(limit(
                        pos,
                        format!(
                            "the file has more than the limit of {} documents",
                            self.limits.max_documents
                        ),
                    ));
                }
                self.doc = Some(DocPositions {
                    start: Some(pos),
                    empty: true,
                    start_byte: byte,
                    ..DocPositions::default()
                });
                self.stack.clear();
            }
            Event::DocumentEnd => {
                if let Some(mut doc) = self.doc.take() {
                    let end = span.end.byte_offset().unwrap_or(byte);
                    if text.get(byte..end) == Some("...") {
                        doc.explicit_end = Some(end);
                    }
                    doc.end_byte = byte;
                    self.docs.push(doc);
                }
            }
            Event::Scalar(value, style, anchor, _) => {
                let cost = Cost {
                    nodes: 1,
                    bytes: value.len() as u64,
                    height: 0,
                };
                self.charge(cost, pos)?;
                if anchor != 0 {
                    self.anchors.insert(anchor, cost);
                }
                let root = self.stack.is_empty();
                let awaiting_key = self.stack.last().is_some_and(|f| f.map && f.key.is_none());
                if style == ScalarStyle::Plain && !awaiting_key && integer_beyond_64_bits(&value) {
                    let path = self.path_here();
                    let at = if path.is_empty() {
                        String::new()
                    } else {
                        format!(" at `{path}`")
                    };
                    return Err(IndexError {
                        rule: "invalid-number",
                        message: format!(
                            "the integer {}{at} does not fit in 64 bits; quote it to keep it as text",
                            crate::error::Quoted(&value)
                        ),
                        pos,
                    });
                }
                let is_kind = self.stack.len() == 1
                    && self
                        .stack
                        .last()
                        .is_some_and(|f| f.map && f.key.as_deref() == Some("kind"));
                let scalar_style = match style {
                    ScalarStyle::Literal | ScalarStyle::Folded => Style::Block,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    _ => Style::Plain,
                };
                let key = awaiting_key.then_some(&*value);
                let attached = self.attach(pos, key, Some(scalar_style));
                if let Some(doc) = self.doc.as_mut() {
                    // A document that is only a null (`---` at the end of a file) is empty.
                    doc.empty &= root
                        && style == ScalarStyle::Plain
                        && matches!(&*value, "" | "~" | "null" | "Null" | "NULL");
                    if is_kind && attached.is_some() {
                        doc.kind = Some(value.into_owned());
                    }
                }
            }
            Event::Alias(id) => {
                let cost = self.anchors.get(&id).copied().unwrap_or(Cost {
                    nodes: 1,
                    bytes: 0,
                    height: 0,
                });
                self.charge(cost, pos)?;
                self.attach(pos, None, None);
                if let Some(doc) = self.doc.as_mut() {
                    doc.empty = false;
                }
            }
            Event::MappingStart(_, anchor, _) | Event::SequenceStart(_, anchor, _) => {
                let map = matches!(event, Event::MappingStart(..));
                // Entering one more level: checked before the level exists.
                self.charge(
                    Cost {
                        nodes: 1,
                        bytes: 0,
                        height: 1,
                    },
                    pos,
                )?;
                let node = self.attach(pos, None, None).unwrap_or(usize::MAX);
                if let Some(doc) = self.doc.as_mut() {
                    doc.empty = false;
                    if let Some(n) = doc.nodes.get_mut(node) {
                        n.kids = if map {
                            Kids::Map(Box::default())
                        } else {
                            Kids::Seq(Box::default())
                        };
                    }
                }
                self.stack.push(Frame {
                    node,
                    anchor,
                    cost: Cost {
                        nodes: 1,
                        bytes: 0,
                        height: 0,
                    },
                    map,
                    key: None,
                    current: None,
                    next: 0,
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                if let Some(frame) = self.stack.pop() {
                    let cost = Cost {
                        height: frame.cost.height + 1,
                        ..frame.cost
                    };
                    if frame.anchor != 0 {
                        self.anchors.insert(frame.anchor, cost);
                    }
                    // The nodes were charged to the file as they came; only the parent's
                    // running cost (for anchors around it) needs this one.
                    if let Some(parent) = self.stack.last_mut() {
                        parent.cost.nodes = parent.cost.nodes.saturating_add(cost.nodes - 1);
                        parent.cost.bytes = parent.cost.bytes.saturating_add(cost.bytes);
                        parent.cost.height = parent.cost.height.max(cost.height);
                    }
                }
            }
            _ => {}
        }
        Ok(())
    }
}

/// Indexes every document of `text` (which must not start with a byte-order mark: the
/// caller strips it, so columns on the first line are as the user sees them).
pub(crate) fn index(text: &str, limits: &LoadLimits) -> Index {
    let mut options = Options::default();
    // The parser's own nesting limits sit just above ours, so ours is the one reported.
    options.flow_nesting_limit = limits.max_depth.saturating_add(1);
    options.block_nesting_limit = limits.max_depth.saturating_add(1);
    let mut parser = Parser::new_from_str_with_options(text, options);
    let mut indexer = Indexer {
        limits,
        docs: Vec::new(),
        doc: None,
        stack: Vec::new(),
        anchors: HashMap::new(),
        nodes: 0,
        bytes: 0,
    };
    let mut error = None;
    for event in parser.by_ref() {
        match event {
            Ok((event, span)) => {
                if let Err(e) = indexer.on_event(text, event, &span) {
                    // A limit: nothing of this file is used.
                    return Index {
                        docs: Vec::new(),
                        error: Some(e),
                    };
                }
            }
            Err(e) => {
                let m = e.marker();
                let pos = Pos {
                    line: m.line().max(1),
                    column: m.col() + 1,
                };
                // The scanner looks ahead of the events, so it can meet the nesting limit
                // (set just above ours) first.
                if matches!(e.kind(), ErrorKind::RecursionLimitExceeded) {
                    return Index {
                        docs: Vec::new(),
                        error: Some(limit(pos, depth_message(limits))),
                    };
                }
                error = Some(IndexError {
                    rule: "yaml",
                    message: e.info().replace('\n', "; "),
                    pos,
                });
                break;
            }
        }
    }
    let mut docs = indexer.docs;
    cut(text, &mut docs);
    Index { docs, error }
}

/// Gives each document its own stretch of the text: from where the previous one ended (after
/// its `...`, or at the line where this one starts) to where the next begins.
fn cut(text: &str, docs: &mut [DocPositions]) {
    let line_start = |byte: usize| {
        text.get(..byte)
            .and_then(|before| before.rfind('\n'))
            .map_or(0, |i| i + 1)
    };
    let after_line = |byte: usize| {
        text.get(byte..)
            .and_then(|rest| rest.find('\n'))
            .map_or(text.len(), |i| byte + i + 1)
    };
    let mut begin = 0;
    let mut ends: Vec<usize> = Vec::with_capacity(docs.len());
    for (i, doc) in docs.iter().enumerate() {
        let end = match (doc.explicit_end, docs.get(i + 1)) {
            (Some(end), _) => after_line(end),
            (None, Some(next)) => line_start(next.start_byte),
            // The last document read: it ends with the line where the parser ended it,
            // unless that is the `---` of a broken document that follows.
            (None, None) => {
                let rest = text.get(doc.end_byte..).unwrap_or("");
                let at_marker = line_start(doc.end_byte) == doc.end_byte
                    && (rest.starts_with("---") || rest.starts_with("..."));
                if at_marker {
                    doc.end_byte
                } else {
                    after_line(doc.end_byte)
                }
            }
        };
        ends.push(end.max(begin));
        begin = end.max(begin);
    }
    let mut begin = 0;
    let mut lines = 0;
    for (doc, end) in docs.iter_mut().zip(ends) {
        doc.source = begin..end;
        doc.line_offset = lines;
        lines += text.get(begin..end).map_or(0, |s| s.matches('\n').count());
        begin = end;
    }
    // Whatever follows the last document's `...` (comments) belongs to no document.
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index_ok(text: &str) -> Vec<DocPositions> {
        let index = index(text, &LoadLimits::default());
        assert!(index.error.is_none(), "{:?}", index.error);
        index.docs
    }

    #[test]
    fn finds_values_keys_and_positions_inside_scalars() {
        let text = "a: 1\nspec:\n  list: [x, y]\n  when: |\n    foo\n    bar > (\n---\nkind: Playbook\nb: 'q'\n";
        let docs = index_ok(text);
        assert_eq!(docs.len(), 2);
        let d = &docs[0];
        assert_eq!(d.value("a"), Some(Pos { line: 1, column: 4 }));
        assert_eq!(d.value("spec.list"), Some(Pos { line: 3, column: 9 }));
        assert_eq!(
            d.value("spec.list[1]"),
            Some(Pos {
                line: 3,
                column: 13
            })
        );
        assert_eq!(
            d.path_at(Pos {
                line: 3,
                column: 13
            })
            .as_deref(),
            Some("spec.list[1]")
        );
        // Unknown children fall back to their parent.
        assert_eq!(d.value("spec.list[7]"), Some(Pos { line: 3, column: 9 }));
        assert_eq!(
            d.inside("spec.when", 2, 5),
            Some(Pos { line: 6, column: 9 })
        );
        let d = &docs[1];
        assert_eq!(d.kind.as_deref(), Some("Playbook"));
        assert_eq!(d.inside("b", 1, 1), Some(Pos { line: 9, column: 5 }));
        assert_eq!(
            &text[docs[1].source.clone()],
            "---\nkind: Playbook\nb: 'q'\n"
        );
        assert_eq!(docs[1].line_offset, 6);
    }

    #[test]
    fn documents_are_cut_after_their_end_marker_with_the_next_ones_directives() {
        let text = "a: 1\n...\n%YAML 1.2\n---\nb: 2\n--- c\n";
        let docs = index_ok(text);
        let parts: Vec<&str> = docs.iter().map(|d| &text[d.source.clone()]).collect();
        assert_eq!(parts, ["a: 1\n...\n", "%YAML 1.2\n---\nb: 2\n", "--- c\n"]);
        assert_eq!(
            docs.iter().map(|d| d.line_offset).collect::<Vec<_>>(),
            [0, 2, 5]
        );
    }

    #[test]
    fn the_last_good_document_ends_before_a_broken_one_and_at_the_end_of_the_text() {
        let text = "a: 1\n# c\n---\nb: [\n";
        let index = index(text, &LoadLimits::default());
        assert_eq!(index.error.as_ref().map(|e| e.rule), Some("yaml"));
        assert_eq!(&text[index.docs[0].source.clone()], "a: 1\n# c\n");
        let docs = index_ok("a: 1");
        assert_eq!(&"a: 1"[docs[0].source.clone()], "a: 1");
    }

    #[test]
    fn integers_beyond_64_bits_are_recognised() {
        for big in [
            "18446744073709551616",
            "-9223372036854775809",
            "123456789012345678901234567890",
            "0x1_0000_0000_0000_0000",
            "+99999999999999999999999999999999999999999",
        ] {
            assert!(integer_beyond_64_bits(big), "{big}");
        }
        for fine in [
            "18446744073709551615",
            "-9223372036854775808",
            "0x10",
            "1e400",
            "12.5",
            "abc",
            "",
            "-",
            "0x",
            "1_000",
        ] {
            assert!(!integer_beyond_64_bits(fine), "{fine}");
        }
    }

    #[test]
    fn alias_expansion_is_counted_before_it_happens() {
        let limits = LoadLimits {
            max_nodes: 1_000,
            ..LoadLimits::default()
        };
        let bomb = "a: &a [x, x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n";
        let e = index(bomb, &limits).error.unwrap();
        assert_eq!((e.rule, e.pos.line), ("limit", 3), "{e:?}");
        // Depth through aliases counts too.
        let limits = LoadLimits {
            max_depth: 4,
            ..LoadLimits::default()
        };
        let deep = "a: &a [[[1]]]\nb: [*a]\n";
        let e = index(deep, &limits).error.unwrap();
        assert_eq!((e.rule, e.pos.line), ("limit", 2), "{e:?}");
    }
}
