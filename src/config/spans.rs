//! Between byte offsets and key paths in TOML text, so every error can name both a line and a key.
use std::ops::Range;

use toml_edit::{ImDocument, Item, Table, Value};

pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.chars().rev().take_while(|c| *c != '\n').count() + 1;
    (line, column)
}

/// The span of the value (or, failing that, the deepest key) at `path`.
pub fn span_of(text: &str, path: &[String]) -> Option<Range<usize>> {
    let doc = ImDocument::parse(text).ok()?;
    let mut best = None;
    let mut node = Node::Item(doc.as_item());
    for segment in path {
        let (key_span, next) = match node.child(segment) {
            Some(found) => found,
            None => break,
        };
        best = next.span().or(key_span).or(best);
        node = next;
    }
    best
}

/// The key path of the innermost key whose key or value contains `offset`.
pub fn path_at(text: &str, offset: usize) -> Vec<String> {
    let Ok(doc) = ImDocument::parse(text) else {
        return Vec::new();
    };
    let mut path = Vec::new();
    descend_table(doc.as_table(), offset, &mut path);
    path
}

fn descend_table(table: &Table, offset: usize, path: &mut Vec<String>) -> bool {
    for (key, item) in table.iter() {
        let key_span = table.key(key).and_then(|k| k.span());
        path.push(key.to_string());
        if descend_item(item, offset, path) || contains(key_span, offset) {
            return true;
        }
        path.pop();
    }
    false
}

fn descend_item(item: &Item, offset: usize, path: &mut Vec<String>) -> bool {
    match item {
        Item::Table(t) => descend_table(t, offset, path) || contains(t.span(), offset),
        Item::ArrayOfTables(a) => a.iter().enumerate().any(|(i, t)| {
            path.push(i.to_string());
            let hit = descend_table(t, offset, path) || contains(t.span(), offset);
            if !hit {
                path.pop();
            }
            hit
        }),
        Item::Value(v) => descend_value(v, offset, path),
        Item::None => false,
    }
}

fn descend_value(value: &Value, offset: usize, path: &mut Vec<String>) -> bool {
    match value {
        Value::InlineTable(t) => {
            for (key, v) in t.iter() {
                path.push(key.to_string());
                let key_span = t.key(key).and_then(|k| k.span());
                if descend_value(v, offset, path) || contains(key_span, offset) {
                    return true;
                }
                path.pop();
            }
            contains(t.span(), offset)
        }
        Value::Array(a) => {
            for (i, v) in a.iter().enumerate() {
                path.push(i.to_string());
                if descend_value(v, offset, path) {
                    return true;
                }
                path.pop();
            }
            contains(a.span(), offset)
        }
        other => contains(other.span(), offset),
    }
}

fn contains(span: Option<Range<usize>>, offset: usize) -> bool {
    span.is_some_and(|s| s.start <= offset && offset < s.end.max(s.start + 1))
}

#[derive(Clone, Copy)]
enum Node<'a> {
    Item(&'a Item),
    Table(&'a Table),
    Value(&'a Value),
}

impl<'a> Node<'a> {
    fn span(&self) -> Option<Range<usize>> {
        match *self {
            Node::Item(Item::Value(v)) | Node::Value(v) => v.span(),
            Node::Item(Item::Table(t)) | Node::Table(t) => t.span(),
            Node::Item(_) => None,
        }
    }

    fn child(&self, segment: &str) -> Option<(Option<Range<usize>>, Node<'a>)> {
        match *self {
            Node::Item(Item::Table(t)) | Node::Table(t) => {
                let (k, item) = t.get_key_value(segment)?;
                Some((k.span(), Node::Item(item)))
            }
            Node::Item(Item::ArrayOfTables(a)) => {
                let t = a.get(segment.parse().ok()?)?;
                Some((t.span(), Node::Table(t)))
            }
            Node::Item(Item::Value(v)) | Node::Value(v) => match v {
                Value::InlineTable(t) => {
                    let (k, v) = t.get_key_value(segment)?;
                    Some((k.span(), Node::Item(v)))
                }
                Value::Array(a) => {
                    let v = a.get(segment.parse().ok()?)?;
                    Some((v.span(), Node::Value(v)))
                }
                _ => None,
            },
            Node::Item(Item::None) => None,
        }
    }
}
