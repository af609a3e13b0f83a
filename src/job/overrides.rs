//! `--set key=value`: override any key of the job file, as schedulers do to pass the logical
//! window (`--set window.start=…`). Dotted keys walk tables; a number walks an array
//! (`source.0.shards=…`).

use super::JobError;

/// Applies one `key=value` to the parsed job file.
pub fn apply(table: &mut toml::Table, arg: &str) -> Result<(), JobError> {
    let err = |reason: &str| JobError::Override {
        arg: arg.to_string(),
        reason: reason.to_string(),
    };
    let (key, value) = arg
        .split_once('=')
        .ok_or_else(|| err("expected key=value"))?;
    let parts: Vec<&str> = key.trim().split('.').collect();
    if parts.iter().any(|p| p.is_empty()) {
        return Err(err("empty key segment"));
    }
    let (last, walk) = parts.split_last().ok_or_else(|| err("empty key"))?;
    let mut node: &mut toml::Value = {
        let first = walk.first().copied().unwrap_or(last);
        if walk.is_empty() {
            let existing = table.get(first);
            let v = typed_value(value, existing);
            table.insert(first.to_string(), v);
            return Ok(());
        }
        table
            .entry(first.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
    };
    for part in &walk[1..] {
        node = step(node, part).ok_or_else(|| err(&format!("no table or array at '{part}'")))?;
    }
    match node {
        toml::Value::Table(t) => {
            let v = typed_value(value, t.get(*last));
            t.insert(last.to_string(), v);
        }
        toml::Value::Array(a) => {
            let i: usize = last
                .parse()
                .map_err(|_| err("array index must be a number"))?;
            let slot = a
                .get_mut(i)
                .ok_or_else(|| err("array index out of range"))?;
            *slot = typed_value(value, Some(slot));
        }
        _ => return Err(err("cannot set a key inside a plain value")),
    }
    Ok(())
}

fn step<'a>(node: &'a mut toml::Value, part: &str) -> Option<&'a mut toml::Value> {
    match node {
        toml::Value::Table(t) => Some(
            t.entry(part.to_string())
                .or_insert_with(|| toml::Value::Table(toml::Table::new())),
        ),
        toml::Value::Array(a) => a.get_mut(part.parse::<usize>().ok()?),
        _ => None,
    }
}

/// Keeps strings strings; otherwise reads the value as TOML (numbers, booleans), falling
/// back to a string.
fn typed_value(raw: &str, existing: Option<&toml::Value>) -> toml::Value {
    if let Some(toml::Value::String(_)) = existing {
        return toml::Value::String(raw.to_string());
    }
    let parsed: Result<toml::Table, _> = toml::from_str(&format!("v = {raw}"));
    match parsed.ok().and_then(|mut t| t.remove("v")) {
        Some(v @ (toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_))) => v,
        _ => toml::Value::String(raw.to_string()),
    }
}
