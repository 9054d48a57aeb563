//! Reading an object key by key while remembering which keys were used, so that every key a
//! format offers and aienv does not act on is reported to the user instead of dropped.

use std::cell::RefCell;
use std::collections::BTreeSet;

use aienv_core::ManifestError;
use serde_json::{Map, Value};

use crate::source::Source;

#[derive(Debug)]
pub(crate) struct Keys<'a> {
    pub src: &'a Source,
    map: &'a Map<String, Value>,
    used: RefCell<BTreeSet<String>>,
}

static EMPTY: std::sync::LazyLock<Map<String, Value>> = std::sync::LazyLock::new(Map::new);

impl<'a> Keys<'a> {
    /// The keys of `v`, which must be an object (`what` names it in the error).
    pub fn of(src: &'a Source, v: &'a Value, what: &str) -> Result<Keys<'a>, ManifestError> {
        let map = match v {
            Value::Object(m) => m,
            Value::Null => &*EMPTY,
            _ => {
                return Err(src.error_at(
                    0,
                    format!("{}: {what} must be an object (a table of keys)", src.rel),
                ));
            }
        };
        Ok(Keys {
            src,
            map,
            used: RefCell::default(),
        })
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.used.borrow_mut().insert(key.to_string());
        self.map.get(key).filter(|v| !v.is_null())
    }

    /// Marks keys that need no action (metadata such as `$schema`, or what the format's own tool
    /// reads from the file, such as conda's `channels`), so they are not reported.
    pub fn understood(&self, keys: &[&str]) {
        self.used
            .borrow_mut()
            .extend(keys.iter().map(|k| k.to_string()));
    }

    pub fn str(&self, key: &str) -> Result<Option<String>, ManifestError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(Value::Number(n)) => Ok(Some(n.to_string())),
            Some(_) => Err(self.src.key_error(key, format!("`{key}` must be a string"))),
        }
    }

    /// A string, or a list of strings.
    pub fn strings(&self, key: &str) -> Result<Vec<String>, ManifestError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::String(s)) => Ok(vec![s.clone()]),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    _ => Err(self
                        .src
                        .key_error(key, format!("`{key}` must list strings"))),
                })
                .collect(),
            Some(_) => Err(self.src.key_error(
                key,
                format!("`{key}` must be a string or a list of strings"),
            )),
        }
    }

    /// An object of string values (`{"A": "1"}`), or a list of `A=1` strings.
    pub fn vars(&self, key: &str) -> Result<Vec<(String, String)>, ManifestError> {
        match self.get(key) {
            None => Ok(Vec::new()),
            Some(Value::Object(m)) => Ok(m
                .iter()
                .map(|(k, v)| {
                    let v = match v {
                        Value::String(s) => s.clone(),
                        Value::Null => String::new(),
                        other => other.to_string(),
                    };
                    (k.clone(), v)
                })
                .collect()),
            Some(Value::Array(_)) => Ok(self
                .strings(key)?
                .into_iter()
                .map(|s| match s.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (s, String::new()),
                })
                .collect()),
            Some(_) => Err(self
                .src
                .key_error(key, format!("`{key}` must be a table of variables"))),
        }
    }

    pub fn keys(&self, key: &str) -> Result<Option<Keys<'a>>, ManifestError> {
        self.get(key)
            .map(|v| Keys::of(self.src, v, &format!("`{key}`")))
            .transpose()
    }

    /// Keys present and never asked for: what aienv does not act on.
    pub fn unused(&self) -> Vec<String> {
        let used = self.used.borrow();
        self.map
            .keys()
            .filter(|k| !used.contains(*k))
            .cloned()
            .collect()
    }
}
