//! The topology file as text, and positions inside it.

use std::fmt;
use std::path::{Path, PathBuf};

/// A 1-based line and column in a source file; `0:0` means "the whole file".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Position {
    /// 1-based line, 0 when unknown.
    pub line: u32,
    /// 1-based column in characters, 0 when unknown.
    pub column: u32,
}

impl Position {
    /// A position that points at the file as a whole.
    pub const UNKNOWN: Position = Position { line: 0, column: 0 };

    /// Builds a position from a YAML location, clamping absurd values.
    pub fn from_location(location: &serde_saphyr::Location) -> Position {
        Position {
            line: u32::try_from(location.line()).unwrap_or(u32::MAX),
            column: u32::try_from(location.column()).unwrap_or(u32::MAX),
        }
    }
}

/// A loaded source file: its path as the user named it and its whole text.
#[derive(Debug, Clone)]
pub struct SourceFile {
    path: PathBuf,
    text: String,
}

impl SourceFile {
    /// Wraps text that was read from `path`.
    pub fn new(path: impl Into<PathBuf>, text: impl Into<String>) -> SourceFile {
        SourceFile {
            path: path.into(),
            text: text.into(),
        }
    }

    /// The path as given by the user (used in every message).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The full text of the file.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The text of 1-based line `line`, without its line break.
    pub fn line(&self, line: u32) -> Option<&str> {
        let index = usize::try_from(line).ok()?.checked_sub(1)?;
        self.text.lines().nth(index)
    }

    /// Where `path:line:col` messages point for `position`.
    pub fn locate(&self, position: Position) -> Located<'_> {
        Located {
            path: &self.path,
            position,
        }
    }
}

/// A `file:line:col` triple ready to print.
pub struct Located<'a> {
    path: &'a Path,
    position: Position,
}

impl fmt::Display for Located<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.position.line == 0 {
            write!(f, "{}", self.path.display())
        } else {
            write!(
                f,
                "{}:{}:{}",
                self.path.display(),
                self.position.line,
                self.position.column
            )
        }
    }
}
