//! A manifest problem with its file, line and column.

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// What is wrong with a manifest, and where. Lines and columns count from 1; a problem with the
/// whole file (unreadable, missing) points at 1:1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema, thiserror::Error)]
pub struct ManifestError {
    #[schema(value_type = String)]
    pub file: PathBuf,
    pub line: usize,
    pub column: usize,
    pub message: String,
}

impl fmt::Display for ManifestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        )
    }
}

impl ManifestError {
    pub fn whole_file(file: &Path, message: String) -> Self {
        ManifestError {
            file: file.to_path_buf(),
            line: 1,
            column: 1,
            message,
        }
    }

    /// An error at byte offset `at` of `text`.
    pub fn at(file: &Path, text: &str, at: usize, message: String) -> Self {
        let (line, column) = line_column(text, at);
        ManifestError {
            file: file.to_path_buf(),
            line,
            column,
            message,
        }
    }

    pub(crate) fn from_toml(file: &Path, text: &str, e: &toml::de::Error) -> Self {
        let at = e.span().map_or(0, |Range { start, .. }| start);
        // toml's message is good ("unknown field `foo`, expected one of ..."); drop its trailing
        // newline and its own rendering of the position, which we give in the prefix.
        ManifestError::at(file, text, at, e.message().trim_end().to_string())
    }
}

/// 1-based line and column (in characters) of byte offset `at`.
fn line_column(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..floor_char_boundary(text, at)];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn floor_char_boundary(text: &str, mut at: usize) -> usize {
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    at
}

#[cfg(test)]
mod tests {
    use super::line_column;

    #[test]
    fn positions_count_lines_and_characters_from_one() {
        let text = "a = 1\nbé = 2\n";
        assert_eq!(line_column(text, 0), (1, 1));
        assert_eq!(line_column(text, 6), (2, 1));
        // 'é' is two bytes; the '=' at byte 10 is the 4th character of line 2.
        assert_eq!(line_column(text, 10), (2, 4));
        assert_eq!(line_column(text, 999), (3, 1));
    }
}
