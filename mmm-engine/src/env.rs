//! The evaluation environment one decision exposes to conditions and templates: the
//! (minimised) signal as `signal`, the context as `ctx` plus `ctx.now`.

use serde_json::{Map, Value};

use crate::signal::Signal;

/// The two roots a path may start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Root {
    Signal,
    Ctx,
}

impl Root {
    pub fn parse(name: &str) -> Option<Root> {
        match name {
            "signal" => Some(Root::Signal),
            "ctx" => Some(Root::Ctx),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Root::Signal => "signal",
            Root::Ctx => "ctx",
        }
    }
}

/// One step of a path: a map key, or (templates only) an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Key(String),
    Index(usize),
}

/// A dotted path from a root.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Path {
    pub root: Root,
    pub segs: Vec<Seg>,
}

impl std::fmt::Display for Path {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.root.as_str())?;
        for seg in &self.segs {
            match seg {
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(i) => write!(f, ".{i}")?,
            }
        }
        Ok(())
    }
}

/// What a path leads to.
#[derive(Debug)]
pub(crate) enum Found<'a> {
    /// The last key is absent from its map (Rhai reads this as `()`).
    Missing,
    /// The path goes through something that is not a map (Rhai raises an error).
    Broken,
    Str(&'a str),
    Json(&'a Value),
    Owned(Value),
}

pub(crate) struct Env<'a> {
    pub signal: &'a Signal,
    pub ctx: &'a Map<String, Value>,
    pub now_text: &'a str,
}

fn opt_str(value: Option<&String>) -> Found<'_> {
    match value {
        Some(s) => Found::Str(s),
        None => Found::Json(&Value::Null),
    }
}

/// Most entries a map may hold for a key to be found by comparing keys in order instead of
/// through the map's hash: payloads and contexts are small, and hashing the key (SipHash,
/// in serde_json's map) costs more than comparing a handful of short keys.
const SCAN_UP_TO: usize = 8;

/// `map.get(key)`, by a scan when the map is small. Keys in a map are unique, so both find
/// the same entry.
pub(crate) fn map_get<'v>(map: &'v Map<String, Value>, key: &str) -> Option<&'v Value> {
    if map.len() <= SCAN_UP_TO {
        map.iter().find_map(|(k, v)| (k == key).then_some(v))
    } else {
        map.get(key)
    }
}

fn walk<'a>(mut current: &'a Value, segs: &[Seg]) -> Found<'a> {
    let mut iter = segs.iter().peekable();
    while let Some(seg) = iter.next() {
        let next = match (seg, current) {
            (Seg::Key(k), Value::Object(map)) => map_get(map, k),
            (Seg::Index(i), Value::Array(items)) => items.get(*i),
            (Seg::Index(i), Value::Object(map)) => map.get(&i.to_string()),
            _ => return Found::Broken,
        };
        match next {
            Some(v) => current = v,
            None if iter.peek().is_none() => return Found::Missing,
            None => return Found::Broken,
        }
    }
    Found::Json(current)
}

impl<'a> Env<'a> {
    pub fn lookup(&self, path: &Path) -> Found<'a> {
        match path.root {
            Root::Ctx => match path.segs.split_first() {
                None => Found::Owned(self.ctx_value()),
                Some((Seg::Key(k), [])) if k == "now" => Found::Str(self.now_text),
                Some((Seg::Key(k), rest)) => match map_get(self.ctx, k) {
                    Some(v) => walk(v, rest),
                    None if rest.is_empty() => Found::Missing,
                    None => Found::Broken,
                },
                Some((Seg::Index(_), _)) => Found::Broken,
            },
            Root::Signal => self.lookup_signal(&path.segs),
        }
    }

    fn lookup_signal(&self, segs: &[Seg]) -> Found<'a> {
        let s = self.signal;
        let Some((first, rest)) = segs.split_first() else {
            return Found::Owned(s.to_json());
        };
        let Seg::Key(first) = first else {
            return Found::Broken;
        };
        let leaf = |found: Found<'a>| {
            if rest.is_empty() {
                found
            } else {
                Found::Broken
            }
        };
        match first.as_str() {
            "payload" => {
                let Some((Seg::Key(k), rest)) = rest.split_first() else {
                    return if rest.is_empty() {
                        Found::Owned(Value::Object(s.payload.clone()))
                    } else {
                        Found::Broken
                    };
                };
                match map_get(&s.payload, k) {
                    Some(v) => walk(v, rest),
                    None if rest.is_empty() => Found::Missing,
                    None => Found::Broken,
                }
            }
            "signal_id" => leaf(Found::Str(&s.signal_id)),
            "tenant_id" => leaf(Found::Str(&s.tenant_id)),
            "actor_id" => leaf(Found::Str(&s.actor_id)),
            "actor_type" => leaf(Found::Str(s.actor_type.as_str())),
            "kind" => leaf(Found::Str(&s.kind)),
            "source" => leaf(opt_str(s.source.as_ref())),
            "occurred_at" => leaf(Found::Str(&s.occurred_at_text)),
            "surface" => leaf(match s.surface {
                Some(surface) => Found::Str(surface.as_str()),
                None => Found::Json(&Value::Null),
            }),
            "repo" => match (&s.repo, rest) {
                (None, []) => Found::Json(&Value::Null),
                (None, _) => Found::Broken,
                (Some(_), []) => match s.to_json() {
                    Value::Object(mut m) => m.remove("repo").map_or(Found::Missing, Found::Owned),
                    _ => Found::Missing,
                },
                (Some(repo), [Seg::Key(k)]) => match k.as_str() {
                    "id" => opt_str(repo.id.as_ref()),
                    "branch" => opt_str(repo.branch.as_ref()),
                    "path" => opt_str(repo.path.as_ref()),
                    _ => Found::Missing,
                },
                (Some(_), _) => Found::Broken,
            },
            _ if rest.is_empty() => Found::Missing,
            _ => Found::Broken,
        }
    }

    /// `ctx` as one JSON object, with `now` added.
    pub fn ctx_value(&self) -> Value {
        let mut map = self.ctx.clone();
        map.insert("now".into(), Value::String(self.now_text.to_owned()));
        Value::Object(map)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan finds what the map's own lookup finds, for maps just below, at and above
    /// the size where the scan stops, and for keys present, absent and near-misses.
    #[test]
    fn map_get_agrees_with_the_maps_own_lookup() {
        for size in [0, 1, 2, SCAN_UP_TO - 1, SCAN_UP_TO, SCAN_UP_TO + 1, 40] {
            let map: Map<String, Value> = (0..size)
                .map(|i| (format!("k{i}"), Value::from(i)))
                .collect();
            let mut keys: Vec<String> = (0..size + 2).map(|i| format!("k{i}")).collect();
            keys.extend([
                "".to_owned(),
                "k".to_owned(),
                "k00".to_owned(),
                "K1".to_owned(),
            ]);
            for key in &keys {
                assert_eq!(map_get(&map, key), map.get(key), "size {size}, key {key:?}");
            }
        }
    }
}
