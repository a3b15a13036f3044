//! How much a playbook file may ask of the loader. Every limit is checked before the work it
//! bounds is done (before a file is read past it, before a level of nesting is entered,
//! before an alias is expanded), so a hostile file costs at most the limits, never more.

/// Bounds on reading and parsing one playbook file (or one text given to
/// [`PlaybookSet::from_yaml`](crate::PlaybookSet::from_yaml)). A file over a limit is
/// refused with a diagnostic naming the file, the line and column where the limit was
/// reached, and the limit.
///
/// ```
/// let limits = mmm_engine::playbook::LoadLimits::default();
/// assert_eq!(limits.max_depth, 64);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoadLimits {
    /// Bytes in one file (default 8 MiB; 10,000 playbooks in one text take about 4 MiB). Checked before reading and while reading, so
    /// a file that grows, or a device that never ends, is not read past it.
    pub max_file_bytes: u64,
    /// Levels of nested mappings and sequences, counted through aliases (default 64; a
    /// playbook needs about six, the rest is room for `params`).
    pub max_depth: usize,
    /// Nodes (mappings, sequences and scalars) in one file, every alias counted as the
    /// nodes it stands for (default 1,000,000; a playbook has 30 to 60). This is also the
    /// alias-expansion budget: a "billion laughs" file is refused before anything is
    /// expanded.
    pub max_nodes: u64,
    /// Bytes of scalar text in one file, every alias counted as the text it stands for
    /// (default 32 MiB, four times the file size limit).
    pub max_scalar_bytes: u64,
    /// Documents (`---`) in one file, empty ones included (default 50,000).
    pub max_documents: usize,
}

impl Default for LoadLimits {
    fn default() -> Self {
        LoadLimits {
            max_file_bytes: 8 << 20,
            max_depth: 64,
            max_nodes: 1_000_000,
            max_scalar_bytes: 32 << 20,
            max_documents: 50_000,
        }
    }
}
