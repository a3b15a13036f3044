//! Finding and reading playbook files. Only regular files are read, never past the size
//! limit; a symlink is followed only to a regular file or a directory; each directory is
//! walked once (by device and inode), and a symlink that leads back into a directory it is in
//! is named as a loop instead of being followed. The walk keeps its own stack, so a deep tree
//! does not deepen the call stack.

use std::collections::{HashMap, HashSet};
use std::fs::{FileType, Metadata};
use std::io::Read;
use std::path::{Path, PathBuf};

use super::limits::LoadLimits;
use super::positions::Pos;
use crate::error::{Diagnostic, LoadError};

/// What makes two paths the same file or directory.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Identity {
    #[cfg(unix)]
    Inode(u64, u64),
    #[cfg(not(unix))]
    Path(PathBuf),
}

#[cfg(unix)]
fn identity(meta: &Metadata, _path: &Path) -> Option<Identity> {
    use std::os::unix::fs::MetadataExt;
    Some(Identity::Inode(meta.dev(), meta.ino()))
}

#[cfg(not(unix))]
fn identity(_meta: &Metadata, path: &Path) -> Option<Identity> {
    std::fs::canonicalize(path).ok().map(Identity::Path)
}

/// What a file that is not a regular file is, in words.
fn kind_of(file_type: FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if file_type.is_fifo() {
            return "a FIFO";
        }
        if file_type.is_socket() {
            return "a socket";
        }
        if file_type.is_block_device() || file_type.is_char_device() {
            return "a device";
        }
    }
    if file_type.is_dir() {
        "a directory"
    } else {
        "not a regular file"
    }
}

fn not_regular(name: &str, file_type: FileType) -> Diagnostic {
    let what = kind_of(file_type);
    let what = what.strip_prefix("not ").map_or_else(
        || format!("is {what}, not a regular file; only regular files are read"),
        |_| "is not a regular file; only regular files are read".to_owned(),
    );
    Diagnostic::error("io", what, name)
}

fn io(name: &str, message: String) -> Diagnostic {
    Diagnostic::error("io", message, name)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.starts_with('.'))
}

struct Walk<'k> {
    keep: &'k dyn Fn(&Path) -> bool,
    files: Vec<PathBuf>,
    diagnostics: Vec<Diagnostic>,
    /// Every directory entered, with the path it was first entered by.
    dirs: HashMap<Identity, PathBuf>,
    seen_files: HashSet<Identity>,
}

impl Walk<'_> {
    fn add_file(&mut self, path: PathBuf, meta: &Metadata) {
        // The same file reached twice (two links to it) is read once.
        if let Some(id) = identity(meta, &path) {
            if !self.seen_files.insert(id) {
                return;
            }
        }
        self.files.push(path);
    }

    /// Whether to enter `dir`: not when it was entered before; and when it was entered by a
    /// path that contains this one, the link is a loop, said once.
    fn enter(&mut self, dir: &Path, meta: &Metadata) -> bool {
        let Some(id) = identity(meta, dir) else {
            return true;
        };
        match self.dirs.get(&id) {
            None => {
                self.dirs.insert(id, dir.to_path_buf());
                true
            }
            Some(first) => {
                if dir.starts_with(first) {
                    self.diagnostics.push(io(
                        &dir.display().to_string(),
                        format!(
                            "symlink loop: this leads back to `{}`, which contains it; not followed",
                            first.display()
                        ),
                    ));
                }
                false
            }
        }
    }

    /// Walks `root` depth first in sorted order, as a recursive walk would, on a stack.
    fn walk(&mut self, root: &Path, meta: &Metadata) {
        if !self.enter(root, meta) {
            return;
        }
        let mut stack: Vec<PathBuf> = Vec::new();
        self.list(root, &mut stack);
        while let Some(path) = stack.pop() {
            let name = path.display().to_string();
            let link = match std::fs::symlink_metadata(&path) {
                Ok(m) => m,
                Err(e) => {
                    self.diagnostics
                        .push(io(&name, format!("cannot read file: {e}")));
                    continue;
                }
            };
            // A symlink is judged by what it points to.
            let meta = if link.file_type().is_symlink() {
                match std::fs::metadata(&path) {
                    Ok(m) => m,
                    Err(e) => {
                        if (self.keep)(&path) {
                            self.diagnostics
                                .push(io(&name, format!("cannot follow the symlink: {e}")));
                        }
                        continue;
                    }
                }
            } else {
                link
            };
            if meta.is_dir() {
                if self.enter(&path, &meta) {
                    self.list(&path, &mut stack);
                }
            } else if (self.keep)(&path) {
                if meta.is_file() {
                    self.add_file(path, &meta);
                } else {
                    self.diagnostics.push(not_regular(&name, meta.file_type()));
                }
            }
        }
    }

    /// Pushes the visible entries of `dir` so that they pop in sorted order.
    fn list(&mut self, dir: &Path, stack: &mut Vec<PathBuf>) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) => {
                self.diagnostics.push(io(
                    &dir.display().to_string(),
                    format!("cannot read directory: {e}"),
                ));
                return;
            }
        };
        let mut paths: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| !is_hidden(p))
            .collect();
        paths.sort();
        stack.extend(paths.into_iter().rev());
    }
}

/// Every file under `paths` that `keep` accepts (directories walked recursively in sorted
/// order, hidden entries skipped; a file named in `paths` is taken whatever its name), and a
/// diagnostic for each path that cannot be used.
///
/// ```
/// let dir = std::env::temp_dir().join(format!("mmm-doc-find-{}", std::process::id()));
/// std::fs::create_dir_all(dir.join("sub")).unwrap();
/// std::fs::write(dir.join("sub/a.yaml"), "").unwrap();
/// std::fs::write(dir.join("notes.txt"), "").unwrap();
/// let (files, problems) =
///     mmm_engine::playbook::find_files(&[&dir], mmm_engine::playbook::is_playbook_file);
/// assert_eq!(files, [dir.join("sub/a.yaml")]);
/// assert!(problems.is_empty());
/// # std::fs::remove_dir_all(&dir).unwrap();
/// ```
pub fn find_files(
    paths: &[impl AsRef<Path>],
    keep: impl Fn(&Path) -> bool,
) -> (Vec<PathBuf>, Vec<Diagnostic>) {
    let mut walk = Walk {
        keep: &keep,
        files: Vec::new(),
        diagnostics: Vec::new(),
        dirs: HashMap::new(),
        seen_files: HashSet::new(),
    };
    for path in paths {
        let path = path.as_ref();
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_dir() => walk.walk(path, &meta),
            Ok(meta) => walk.add_file(path.to_path_buf(), &meta),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => walk.diagnostics.push(io(
                &path.display().to_string(),
                "no such file or directory".to_owned(),
            )),
            Err(e) => walk.diagnostics.push(io(
                &path.display().to_string(),
                format!("cannot read file: {e}"),
            )),
        }
    }
    (walk.files, walk.diagnostics)
}

/// Opens `path` for reading without blocking on a FIFO that was swapped in after the check.
fn open(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

fn too_large(name: &str, limits: &LoadLimits) -> Diagnostic {
    Diagnostic::error(
        "limit",
        format!(
            "the file is larger than the limit of {} bytes",
            limits.max_file_bytes
        ),
        name,
    )
    .at(Some(Pos { line: 1, column: 1 }))
}

/// Reads a regular file as UTF-8 text, refusing anything else before reading it and never
/// reading past `limits.max_file_bytes`.
///
/// # Errors
/// A [`LoadError`] with one diagnostic: `io` when the path is not a regular file or cannot
/// be read; `limit` when the file is too large; `encoding`, at the line and column of the
/// first bad byte, when it is not UTF-8.
pub fn read_text(path: &Path, limits: &LoadLimits) -> Result<String, LoadError> {
    read_checked(path, limits).map_err(|d| LoadError {
        diagnostics: vec![d],
    })
}

#[expect(
    clippy::result_large_err,
    reason = "one diagnostic, made once per refused file; read_text wraps it"
)]
fn read_checked(path: &Path, limits: &LoadLimits) -> Result<String, Diagnostic> {
    let name = path.display().to_string();
    let meta = std::fs::metadata(path).map_err(|e| io(&name, format!("cannot read file: {e}")))?;
    if !meta.is_file() {
        return Err(not_regular(&name, meta.file_type()));
    }
    if meta.len() > limits.max_file_bytes {
        return Err(too_large(&name, limits));
    }
    let file = open(path).map_err(|e| io(&name, format!("cannot read file: {e}")))?;
    // The file opened may not be the one checked: check again what is open.
    let meta = file
        .metadata()
        .map_err(|e| io(&name, format!("cannot read file: {e}")))?;
    if !meta.is_file() {
        return Err(not_regular(&name, meta.file_type()));
    }
    let capacity = usize::try_from(meta.len().min(limits.max_file_bytes)).unwrap_or(0);
    let mut bytes = Vec::with_capacity(capacity);
    // A file that grows while it is read still stops one byte past the limit.
    file.take(limits.max_file_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io(&name, format!("cannot read file: {e}")))?;
    if bytes.len() as u64 > limits.max_file_bytes {
        return Err(too_large(&name, limits));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = e.utf8_error().valid_up_to();
        let before = e
            .as_bytes()
            .get(..valid)
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        let byte = e.as_bytes().get(valid).copied().unwrap_or(0);
        Diagnostic::error(
            "encoding",
            format!("the file is not UTF-8 text: byte 0x{byte:02x} cannot start a character here"),
            &name,
        )
        .at(Some(Pos { line, column }))
    })
}
