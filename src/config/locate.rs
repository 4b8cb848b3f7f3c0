//! Finds where a key path (`groups.mappings[1].to`) stands in the YAML text, so that every config error
//! can name a line and column. yaml_serde does not keep positions once a value is built; yaml-rust2's
//! event parser does, so the text is walked once more.

use std::collections::HashMap;

use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// One step of a key path.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    Key(String),
    Index(usize),
}

/// A key path into the config, rendered as `groups.mappings[1].to`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct KeyPath(pub Vec<Seg>);

impl KeyPath {
    #[must_use]
    pub fn key(&self, k: &str) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Key(k.to_string()));
        KeyPath(v)
    }

    #[must_use]
    pub fn index(&self, i: usize) -> KeyPath {
        let mut v = self.0.clone();
        v.push(Seg::Index(i));
        KeyPath(v)
    }

    /// Parses a JSON pointer (`/groups/mappings/1/to`): numeric steps are indexes.
    #[must_use]
    pub fn from_pointer(pointer: &str) -> KeyPath {
        KeyPath(
            pointer
                .split('/')
                .skip(1)
                .map(|s| {
                    let s = s.replace("~1", "/").replace("~0", "~");
                    match s.parse::<usize>() {
                        Ok(i) => Seg::Index(i),
                        Err(_) => Seg::Key(s),
                    }
                })
                .collect(),
        )
    }

    /// Builds a path from dotted text such as `groups.mappings[1].to` (keys must not contain dots).
    #[must_use]
    pub fn parse(text: &str) -> KeyPath {
        let mut segs = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(b) = rest.find('[') {
                if b > 0 {
                    segs.push(Seg::Key(rest[..b].to_string()));
                }
                rest = &rest[b..];
                while let Some(stripped) = rest.strip_prefix('[') {
                    let end = stripped.find(']').unwrap_or(stripped.len());
                    if let Ok(i) = stripped[..end].parse() {
                        segs.push(Seg::Index(i));
                    }
                    rest = stripped.get(end + 1..).unwrap_or("");
                }
            } else {
                segs.push(Seg::Key(rest.to_string()));
            }
        }
        KeyPath(segs)
    }
}

impl std::fmt::Display for KeyPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_empty() {
            return f.write_str("(top level)");
        }
        for (i, s) in self.0.iter().enumerate() {
            match s {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// Line and column (both 1-based) of every key and sequence item in a YAML text.
#[derive(Debug, Default)]
pub(super) struct Locator {
    spots: HashMap<KeyPath, (usize, usize)>,
    /// The first key that repeats an earlier key of the same mapping (the YAML parser reports the
    /// mapping's start instead).
    duplicate: Option<(usize, usize)>,
}

impl Locator {
    /// Walks the text; a text that does not parse gives an empty locator.
    #[must_use]
    pub(super) fn new(text: &str) -> Locator {
        let mut rec = Recorder::default();
        let mut parser = Parser::new_from_str(text);
        if parser.load(&mut rec, false).is_err() {
            return Locator::default();
        }
        Locator {
            spots: rec.spots,
            duplicate: rec.duplicate,
        }
    }

    /// Where the first repeated key of a mapping stands.
    #[must_use]
    pub(super) fn duplicate(&self) -> Option<(usize, usize)> {
        self.duplicate
    }

    /// Where `path` stands, or where its nearest ancestor that is in the text stands.
    #[must_use]
    pub(super) fn find(&self, path: &KeyPath) -> Option<(usize, usize)> {
        let mut segs = path.0.clone();
        loop {
            if let Some(spot) = self.spots.get(&KeyPath(segs.clone())) {
                return Some(*spot);
            }
            segs.pop()?;
        }
    }
}

enum Frame {
    Map { path: KeyPath, key: Option<String> },
    Seq { path: KeyPath, next: usize },
}

#[derive(Default)]
struct Recorder {
    stack: Vec<Frame>,
    spots: HashMap<KeyPath, (usize, usize)>,
    duplicate: Option<(usize, usize)>,
}

impl Recorder {
    /// The path of the node that starts now, or None when it is a mapping key (recorded here).
    fn node_path(&mut self, ev: &Event, mark: Marker) -> Option<KeyPath> {
        let spot = (mark.line(), mark.col() + 1);
        match self.stack.last_mut() {
            None => Some(KeyPath::default()),
            Some(Frame::Seq { path, next }) => {
                let p = path.index(*next);
                *next += 1;
                // A mapping item is placed at its first key (the marker of a block mapping's
                // start is not where a reader looks).
                if !matches!(ev, Event::MappingStart(..)) {
                    self.spots.entry(p.clone()).or_insert(spot);
                }
                Some(p)
            }
            Some(Frame::Map { path, key }) => match key.take() {
                Some(k) => Some(path.key(&k)),
                None => {
                    let k = match ev {
                        Event::Scalar(s, ..) => s.clone(),
                        _ => String::from("?"),
                    };
                    if self.spots.contains_key(&path.key(&k)) {
                        self.duplicate = self.duplicate.or(Some(spot));
                    }
                    self.spots.entry(path.key(&k)).or_insert(spot);
                    self.spots.entry(path.clone()).or_insert(spot);
                    *key = Some(k);
                    None
                }
            },
        }
    }
}

impl MarkedEventReceiver for Recorder {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        match ev {
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            Event::Scalar(..) | Event::Alias(_) => {
                let _ = self.node_path(&ev, mark);
            }
            Event::MappingStart(..) => {
                if let Some(path) = self.node_path(&ev, mark) {
                    self.stack.push(Frame::Map { path, key: None });
                }
            }
            Event::SequenceStart(..) => {
                if let Some(path) = self.node_path(&ev, mark) {
                    self.stack.push(Frame::Seq { path, next: 0 });
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_items() {
        let text = "version: 1\ngroups:\n  mappings:\n    - from: a\n      to: b\n    - from_regex: x\n      to: y\n";
        let loc = Locator::new(text);
        assert_eq!(loc.find(&KeyPath::parse("version")), Some((1, 1)));
        assert_eq!(
            loc.find(&KeyPath::parse("groups.mappings[1].from_regex")),
            Some((6, 7))
        );
        assert_eq!(
            loc.find(&KeyPath::parse("groups.mappings[0].to")),
            Some((5, 7))
        );
        // A path below a scalar falls back to the nearest ancestor.
        assert_eq!(
            loc.find(&KeyPath::parse("groups.mappings[1].nope")),
            Some((6, 7))
        );
    }

    #[test]
    fn paths_render_and_parse() {
        let p = KeyPath::from_pointer("/groups/mappings/3/to");
        assert_eq!(p.to_string(), "groups.mappings[3].to");
        assert_eq!(KeyPath::parse("groups.mappings[3].to"), p);
    }
}
