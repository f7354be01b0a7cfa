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

/// Reads the regular file at `path` as UTF-8 text, refusing anything else: a FIFO (opening it
/// would wait for a writer), a device such as `/dev/zero` (endless), a folder, or a file larger
/// than `limit` bytes. The file is opened non-blocking and checked on the open handle, so it
/// cannot be swapped for something else between the check and the read.
pub fn read_regular_file(path: &Path, limit: u64) -> std::io::Result<String> {
    use std::io::Read as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(O_NONBLOCK)
        .open(path)?;
    let metadata = file.metadata()?;
    if !metadata.is_file() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "not a regular file",
        ));
    }
    if metadata.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {}", human_size(limit)),
        ));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1).read_to_end(&mut bytes)?;
    if u64::try_from(bytes.len()).unwrap_or(u64::MAX) > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {}", human_size(limit)),
        ));
    }
    String::from_utf8(bytes)
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::InvalidData, "not UTF-8 text"))
}

/// `O_NONBLOCK` on Linux (the same value on x86-64 and arm64).
const O_NONBLOCK: i32 = 0o4000;

fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else {
        format!("{} KiB", bytes / 1024)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_bounded_regular_files_are_read() {
        let dir = tempfile::tempdir().expect("dir");
        let file = dir.path().join("t");
        std::fs::write(&file, "hello").expect("write");
        assert_eq!(read_regular_file(&file, 10).expect("read"), "hello");
        assert!(read_regular_file(&file, 3).is_err(), "too large");
        assert!(read_regular_file(dir.path(), 10).is_err(), "a folder");
        assert!(
            read_regular_file(Path::new("/dev/zero"), 10).is_err(),
            "a device"
        );
        let fifo = dir.path().join("fifo");
        let made = std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .expect("mkfifo runs");
        assert!(made.success());
        let error = read_regular_file(&fifo, 10).expect_err("a FIFO is refused without waiting");
        assert_eq!(error.to_string(), "not a regular file");
    }
}
