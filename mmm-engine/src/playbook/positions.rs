//! Where each node of a YAML document is, so that errors found after deserialisation
//! (a bad id, an unknown surface, a Rhai syntax error inside `when`) can name the line and
//! column. serde_yaml gives positions only for its own errors; this index, built from
//! yaml-rust2's marked events, gives them for every value.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::{Marker, TScalarStyle};

/// A 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
}

impl Pos {
    fn from_marker(m: Marker) -> Pos {
        Pos {
            line: m.line().max(1),
            column: m.col() + 1,
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

/// Positions of one document's nodes, keyed by dotted path (`spec.actions[1].surfaces[0]`).
#[derive(Debug, Default)]
pub(crate) struct DocPositions {
    pub start: Option<Pos>,
    pub empty: bool,
    pub kind: Option<String>,
    values: HashMap<String, Pos>,
    keys: HashMap<String, Pos>,
    scalars: HashMap<String, ScalarAt>,
}

impl DocPositions {
    /// Where the value at `path` starts (falling back to its key, then its parents).
    pub fn value(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.values.get(p).or_else(|| self.keys.get(p)) {
                return Some(*pos);
            }
            match p.rfind(['.', '[']) {
                Some(i) => p = p.get(..i).unwrap_or(""),
                None => return self.start,
            }
        }
    }

    pub fn scalar(&self, path: &str) -> Option<ScalarAt> {
        self.scalars.get(path).copied()
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

enum Frame {
    Map { path: String, key: Option<String> },
    Seq { path: String, next: usize },
}

#[derive(Default)]
struct Indexer {
    docs: Vec<DocPositions>,
    current: Option<DocPositions>,
    stack: Vec<Frame>,
    pending_key_pos: Option<Pos>,
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl Indexer {
    /// Registers a node; returns its path when it is a value (not a mapping key).
    fn node(&mut self, pos: Pos, scalar: Option<&str>) -> Option<String> {
        let doc = self.current.as_mut()?;
        match self.stack.last_mut() {
            None => Some(String::new()),
            Some(Frame::Map { path, key }) => match key.take() {
                None => {
                    let name = scalar.unwrap_or("?").to_owned();
                    doc.keys.insert(join(path, &name), pos);
                    *key = Some(name);
                    self.pending_key_pos = Some(pos);
                    None
                }
                Some(name) => {
                    let full = join(path, &name);
                    doc.values.insert(full.clone(), pos);
                    Some(full)
                }
            },
            Some(Frame::Seq { path, next }) => {
                let full = format!("{path}[{next}]");
                *next += 1;
                doc.values.insert(full.clone(), pos);
                Some(full)
            }
        }
    }
}

impl MarkedEventReceiver for Indexer {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        let pos = Pos::from_marker(mark);
        match ev {
            Event::DocumentStart => {
                self.current = Some(DocPositions {
                    start: Some(pos),
                    empty: true,
                    ..DocPositions::default()
                });
                self.stack.clear();
            }
            Event::DocumentEnd => {
                if let Some(doc) = self.current.take() {
                    self.docs.push(doc);
                }
            }
            Event::Scalar(value, style, ..) => {
                // A document that is only a null (`---` at the end of a file) is empty.
                let null_root = self.stack.is_empty()
                    && style == TScalarStyle::Plain
                    && matches!(value.as_str(), "" | "~" | "null" | "Null" | "NULL");
                if let Some(doc) = self.current.as_mut() {
                    doc.empty &= null_root;
                }
                if let Some(path) = self.node(pos, Some(&value)) {
                    if let Some(doc) = self.current.as_mut() {
                        let style = match style {
                            TScalarStyle::Literal | TScalarStyle::Folded => Style::Block,
                            TScalarStyle::SingleQuoted | TScalarStyle::DoubleQuoted => {
                                Style::Quoted
                            }
                            _ => Style::Plain,
                        };
                        if path == "kind" {
                            doc.kind = Some(value);
                        }
                        doc.scalars.insert(path, ScalarAt { pos, style });
                    }
                }
            }
            Event::MappingStart(..) => {
                if let Some(doc) = self.current.as_mut() {
                    doc.empty = false;
                }
                let path = self.node(pos, None).unwrap_or_else(|| "?".to_owned());
                self.stack.push(Frame::Map { path, key: None });
            }
            Event::SequenceStart(..) => {
                if let Some(doc) = self.current.as_mut() {
                    doc.empty = false;
                }
                let path = self.node(pos, None).unwrap_or_else(|| "?".to_owned());
                self.stack.push(Frame::Seq { path, next: 0 });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Alias(_) => {
                self.node(pos, None);
            }
            _ => {}
        }
    }
}

/// Indexes every document of `text`. `None` when yaml-rust2 cannot parse it (serde_yaml
/// then reports the syntax error with its own position).
pub(crate) fn index(text: &str) -> Option<Vec<DocPositions>> {
    let mut indexer = Indexer::default();
    let mut parser = Parser::new_from_str(text);
    parser.load(&mut indexer, true).ok()?;
    Some(indexer.docs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_values_keys_and_positions_inside_scalars() {
        let text = "a: 1\nspec:\n  list: [x, y]\n  when: |\n    foo\n    bar > (\n---\nkind: Playbook\nb: 'q'\n";
        let docs = index(text).unwrap();
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
        // Unknown children fall back to their parent.
        assert_eq!(d.value("spec.list[7]"), Some(Pos { line: 3, column: 9 }));
        assert_eq!(
            d.inside("spec.when", 2, 5),
            Some(Pos { line: 6, column: 9 })
        );
        let d = &docs[1];
        assert_eq!(d.kind.as_deref(), Some("Playbook"));
        assert_eq!(d.inside("b", 1, 1), Some(Pos { line: 9, column: 5 }));
    }
}
