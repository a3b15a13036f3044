//! Hostile playbook files and directories: each ends in a clean diagnostic that names the
//! file, the line and column or the rule, never a panic, a hang, a stack overflow or
//! unbounded memory. Every load runs on a thread with the default 2 MiB stack (smaller than a
//! main thread's), joined with a 10 s ceiling that only guards against a hang.

use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::Duration;

use mmm_engine::playbook::{LoadLimits, Source};
use mmm_engine::{check_paths, Diagnostic, LoadError, PlaybookSet};

const GOOD: &str = "apiVersion: mmm/v1
kind: Playbook
metadata:
  id: good
  version: 1
  tenant: \"*\"
  status: published
spec:
  triggers: [pr.opened]
  when: signal.payload.lines > 3
  actions:
    - type: multiplier
      surfaces: [ide]
      title: T
      text: \"Creates a draft pull request; nothing is pushed.\"
      operation: split_pr
      reversible: true
      params: {strategy: by_directory}
";

/// Runs `f` on its own thread; fails the test if it panics or has not finished in 10 s.
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(Duration::from_secs(10)) {
        Ok(v) => v,
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("loading did not finish within 10 s"),
        Err(mpsc::RecvTimeoutError::Disconnected) => panic!("loading panicked"),
    }
}

/// Loads `text` as `<yaml>` within `limits` and returns every diagnostic.
fn refuse_with(text: String, limits: LoadLimits) -> Vec<Diagnostic> {
    bounded(move || {
        let sources = [Source {
            name: "<yaml>".to_owned(),
            text,
        }];
        match PlaybookSet::from_sources_with(&sources, &limits) {
            Ok(_) => panic!("should not load"),
            Err(e) => e.diagnostics,
        }
    })
}

/// The only diagnostic of loading `text` with the default limits.
fn refuse(text: String) -> Diagnostic {
    let mut all = refuse_with(text, LoadLimits::default());
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

fn loads(text: String) -> PlaybookSet {
    bounded(move || PlaybookSet::from_yaml(&text).unwrap_or_else(|e| panic!("should load:\n{e}")))
}

fn at(d: &Diagnostic) -> (&str, usize, usize) {
    (d.rule.as_str(), d.line.unwrap(), d.column.unwrap())
}

fn with_params(params: &str) -> String {
    GOOD.replace("{strategy: by_directory}", params)
}

// --- aliases ---------------------------------------------------------------------------

#[test]
fn an_undefined_alias_under_an_unknown_key_is_a_syntax_error_not_a_panic() {
    let d = refuse("apiVersion: mmm/v1\nfoo: *nope\n".to_owned());
    assert_eq!(at(&d), ("yaml", 2, 6), "{d}");
    assert!(d.message.contains("anchor"), "{d}");
    // Under a known key, and in a later document of a good file.
    let d = refuse(GOOD.replace("title: T", "title: *nope"));
    assert_eq!(at(&d), ("yaml", 14, 14), "{d}");
    let mut all = refuse_with(format!("{GOOD}---\nkind: *nope\n"), LoadLimits::default());
    assert_eq!(all.len(), 1, "{all:?}");
    let d = all.remove(0);
    assert_eq!((d.rule.as_str(), d.line), ("yaml", Some(20)), "{d}");
}

#[test]
fn an_anchor_does_not_reach_into_the_next_document() {
    let text = format!(
        "{}---\n{}",
        GOOD.replace("title: T", "title: &t T"),
        GOOD.replace("id: good", "id: other")
            .replace("title: T", "title: *t")
    );
    let d = refuse(text);
    assert_eq!((d.rule.as_str(), d.line), ("yaml", Some(33)), "{d}");
}

#[test]
fn a_billion_laughs_is_refused_before_anything_is_expanded() {
    let mut bomb = GOOD.replace(
        "{strategy: by_directory}",
        "\n        a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]",
    );
    let mut previous = 'a';
    for name in ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'] {
        let refs = vec![format!("*{previous}"); 9].join(", ");
        bomb.push_str(&format!("        {name}: &{name} [{refs}]\n"));
        previous = name;
    }
    let d = refuse(bomb);
    assert_eq!(d.rule, "limit", "{d}");
    assert!(d.message.contains("1000000 nodes"), "{d}");
    // Reported where the budget ran out: at one of the aliases.
    assert!(d.line.unwrap() >= 21, "{d}");
}

#[test]
fn a_long_text_repeated_by_aliases_is_refused_by_its_size() {
    let text = "x".repeat(1 << 20);
    let refs = vec!["*t"; 40].join(", ");
    let d = refuse(with_params(&format!(
        "{{t: &t \"{text}\", copies: [{refs}]}}"
    )));
    assert_eq!(d.rule, "limit", "{d}");
    assert!(d.message.contains("33554432 bytes"), "{d}");
}

#[test]
fn nesting_reached_through_aliases_counts_as_nesting() {
    let deep = format!("{}1{}", "[".repeat(40), "]".repeat(40));
    let d = refuse(with_params(&format!(
        "{{a: &a {deep}, b: [[[[[[[[[[[[[[[[[[[[[[[[[*a]]]]]]]]]]]]]]]]]]]]]]]]]}}"
    )));
    assert_eq!(d.rule, "limit", "{d}");
    assert!(d.message.contains("64 levels"), "{d}");
}

#[test]
fn a_few_aliases_are_still_plain_yaml() {
    let set = loads(
        GOOD.replace("surfaces: [ide]", "surfaces: &s [ide]")
            .replace(
                "{strategy: by_directory}",
                "{strategy: by_directory, again: *s}",
            ),
    );
    assert_eq!(set.len(), 1);
}

// --- byte-order mark and encoding ---------------------------------------------------------

#[test]
fn a_byte_order_mark_is_not_content_and_does_not_move_columns() {
    assert_eq!(loads(format!("\u{feff}{GOOD}")).len(), 1);
    // The input that looped forever: a BOM and two keys.
    let d = refuse("\u{feff}a: 1\nb: 2\n".to_owned());
    assert_eq!(at(&d), ("unknown-field", 1, 1), "{d}");
    let d = refuse(format!(
        "\u{feff}{}",
        GOOD.replace("  version: 1\n", "  version: 1\n  colour: red\n")
    ));
    assert_eq!(at(&d), ("unknown-field", 6, 3), "{d}");
    // A BOM before document markers.
    let two = format!(
        "\u{feff}---\n{GOOD}---\n{}",
        GOOD.replace("id: good", "id: other")
    );
    assert_eq!(loads(two).len(), 2);
}

// --- nesting ---------------------------------------------------------------------------

fn deep_block_mapping(levels: usize) -> String {
    let mut text = String::from("apiVersion: mmm/v1\nspec:\n");
    for i in 0..levels {
        text.push_str(&" ".repeat(i + 1));
        text.push_str("k:\n");
    }
    text.push_str(&" ".repeat(levels + 1));
    text.push_str("v\n");
    text
}

#[test]
fn a_block_mapping_nested_ten_thousand_levels_is_refused_at_the_limit() {
    // 10,000 levels take 50 MB of indentation: allow the size, so the depth is what is met.
    let limits = LoadLimits {
        max_file_bytes: 64 << 20,
        ..LoadLimits::default()
    };
    let mut all = refuse_with(deep_block_mapping(10_000), limits);
    let d = all.remove(0);
    assert_eq!(d.rule, "limit", "{d}");
    assert!(d.message.contains("64 levels"), "{d}");
    // Level 64 is the mapping on line 65 (the root mapping is level 1).
    assert_eq!(d.line, Some(66), "{d}");
    // With the default limits the same file is refused by its size, before it is parsed.
    let d = refuse(deep_block_mapping(10_000));
    assert_eq!(at(&d), ("limit", 1, 1), "{d}");
    assert!(d.message.contains("8388608 bytes"), "{d}");
}

#[test]
fn flow_nesting_of_a_hundred_thousand_levels_is_refused_at_once() {
    for (open, close) in [("[", "]"), ("{a: ", "}")] {
        let text = format!(
            "apiVersion: mmm/v1\nspec: {}1{}\n",
            open.repeat(100_000),
            close.repeat(100_000)
        );
        let d = refuse(text);
        assert_eq!((d.rule.as_str(), d.line), ("limit", Some(2)), "{d}");
        assert!(d.message.contains("64 levels"), "{d}");
    }
}

#[test]
fn block_sequences_nested_deeply_are_refused() {
    let mut text = String::from("apiVersion: mmm/v1\nspec:\n");
    for i in 0..1_000 {
        text.push_str(&" ".repeat(2 * i + 1));
        text.push_str("-\n");
    }
    let d = refuse(text);
    assert_eq!(d.rule, "limit", "{d}");
}

#[test]
fn params_nest_up_to_the_limit_and_no_further() {
    // The action's params mapping is level 5; 50 more levels load and come back as JSON.
    let nested = |levels: usize| format!("{}1{}", "{a: ".repeat(levels), "}".repeat(levels));
    let set = loads(with_params(&nested(50)));
    assert_eq!(set.len(), 1);
    let d = refuse(with_params(&nested(70)));
    assert_eq!((d.rule.as_str(), d.line), ("limit", Some(18)), "{d}");
}

#[test]
fn deep_conditions_and_templates_inside_a_playbook_end_in_a_load_error() {
    let parens = format!("'{}true{}'", "(".repeat(100_000), ")".repeat(100_000));
    let d = refuse(GOOD.replace("signal.payload.lines > 3", &parens));
    assert_eq!((d.rule.as_str(), d.line), ("condition", Some(10)), "{d}");
    // A template path of 100,000 segments: a long path, not a deep one.
    let path = vec!["a"; 100_000].join(".");
    let d = refuse(GOOD.replace("title: T", &format!("title: \"{{{{ user.{path} }}}}\"")));
    assert_eq!((d.rule.as_str(), d.line), ("template", Some(14)), "{d}");
}

// --- sizes and counts ------------------------------------------------------------------

#[test]
fn very_many_nodes_are_refused_at_the_limit() {
    // A lower limit than the default million keeps this quick in a debug build.
    let limits = LoadLimits {
        max_nodes: 100_000,
        ..LoadLimits::default()
    };
    let items = vec!["1"; 150_000].join(",");
    let mut all = refuse_with(with_params(&format!("{{list: [{items}]}}")), limits);
    let d = all.remove(0);
    assert_eq!((d.rule.as_str(), d.line), ("limit", Some(18)), "{d}");
    assert!(d.message.contains("100000 nodes"), "{d}");
}

#[test]
fn very_many_documents_are_refused_at_the_limit() {
    let d = refuse("---\n".repeat(60_000));
    assert_eq!(at(&d), ("limit", 50_001, 1), "{d}");
    assert!(d.message.contains("50000 documents"), "{d}");
}

#[test]
fn a_text_over_the_size_limit_is_refused_before_parsing() {
    let text = format!("{GOOD}# {}\n", "x".repeat(9 << 20));
    let d = refuse(text);
    assert_eq!(at(&d), ("limit", 1, 1), "{d}");
}

#[test]
fn a_very_long_key_is_named_briefly_and_costs_linear_memory() {
    let key = "k".repeat(1 << 20);
    let d = refuse(format!("{key}: 1\n"));
    assert_eq!(d.line, Some(1), "{d}");
    assert!(
        d.message.len() < 400,
        "message of {} bytes",
        d.message.len()
    );
    // A key the length a simple key may have, over many children: every path below it would
    // repeat it if paths were strings.
    let key = "q".repeat(1_000);
    let children = (0..20_000)
        .map(|i| format!("  c{i}: 1\n"))
        .collect::<String>();
    let d = refuse(format!("{GOOD}{key}:\n{children}"));
    assert_eq!(at(&d), ("unknown-field", 19, 1), "{d}");
    assert!(
        d.message.len() < 400,
        "message of {} bytes",
        d.message.len()
    );
}

#[test]
fn a_long_text_value_within_the_limits_loads() {
    let long = "word ".repeat(600_000);
    let set = loads(GOOD.replace(
        "text: \"Creates a draft pull request; nothing is pushed.\"",
        &format!("text: \"Creates a draft pull request; nothing is pushed. {long}\""),
    ));
    assert_eq!(set.len(), 1);
}

// --- numbers ---------------------------------------------------------------------------

#[test]
fn nan_and_infinity_in_params_are_refused_naming_the_field() {
    for value in [".nan", ".inf", "-.inf", "1e400"] {
        let d = refuse(with_params(&format!(
            "{{strategy: by_directory, x: {value}}}"
        )));
        assert_eq!(d.rule, "invalid-number", "{value}: {d}");
        assert_eq!(d.line, Some(18), "{value}: {d}");
        assert!(
            d.message.contains("`spec.actions[0].params.x`"),
            "{value}: {d}"
        );
    }
    // Quoted, it is text.
    assert_eq!(loads(with_params("{x: \".nan\"}")).len(), 1);
}

#[test]
fn integers_beyond_64_bits_are_refused_naming_the_field_never_rounded() {
    for value in [
        "123456789012345678901234567890",
        "18446744073709551616",
        "-9223372036854775809",
        "0x1FFFFFFFFFFFFFFFF",
    ] {
        let d = refuse(with_params(&format!("{{deep: [1, {{x: {value}}}]}}")));
        assert_eq!(d.rule, "invalid-number", "{value}: {d}");
        assert!(
            d.message
                .contains("`spec.actions[0].params.deep[1].x` does not fit in 64 bits"),
            "{value}: {d}"
        );
    }
    let d = refuse(GOOD.replace("version: 1", "version: 99999999999999999999"));
    assert_eq!(at(&d), ("invalid-number", 5, 12), "{d}");
    // The largest 64-bit integers still load exactly.
    assert_eq!(
        loads(with_params(
            "{u: 18446744073709551615, i: -9223372036854775808}"
        ))
        .len(),
        1
    );
}

// --- syntax ----------------------------------------------------------------------------

#[test]
fn unclosed_flow_collections_and_quotes_are_syntax_errors_with_positions() {
    for (text, line) in [
        ("apiVersion: mmm/v1\nspec: {a: [1, 2\n", 2),
        ("apiVersion: mmm/v1\nkind: \"Playbook\n", 2),
        ("apiVersion: mmm/v1\n  kind: x\n", 2),
    ] {
        let d = refuse(text.to_owned());
        assert_eq!(
            (d.rule.as_str(), d.line),
            ("yaml", Some(line)),
            "{text:?}: {d}"
        );
    }
}

#[test]
fn a_key_twice_in_one_mapping_is_named() {
    let d = refuse(GOOD.replace(
        "  status: published\n",
        "  status: published\n  status: draft\n",
    ));
    assert_eq!(at(&d), ("duplicate-key", 8, 3), "{d}");
    let d = refuse(with_params("{x: 1, x: 2}"));
    assert_eq!(
        (d.rule.as_str(), d.line),
        ("duplicate-key", Some(18)),
        "{d}"
    );
}

// --- files and directories (Unix) --------------------------------------------------------

struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("mmm-hostile-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.path(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load_dir(path: &Path) -> Result<PlaybookSet, LoadError> {
    let path = path.to_path_buf();
    bounded(move || PlaybookSet::from_path(&path))
}

#[cfg(unix)]
fn symlink(target: impl AsRef<Path>, link: &Path) {
    std::os::unix::fs::symlink(target, link).unwrap();
}

#[cfg(unix)]
fn mkfifo(path: &Path) {
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[cfg(unix)]
#[test]
fn two_dot_symlinks_are_two_loops_named_once_each_and_the_playbook_is_read_once() {
    let dir = TempDir::new("dots");
    dir.write("a.yaml", GOOD);
    symlink(".", &dir.path("here"));
    symlink(".", &dir.path("there"));
    let err = load_dir(&dir.0).unwrap_err();
    let rules: Vec<(&str, &str)> = err
        .diagnostics
        .iter()
        .map(|d| (d.rule.as_str(), d.file.rsplit('/').next().unwrap()))
        .collect();
    assert_eq!(rules, [("io", "here"), ("io", "there")], "{err}");
    assert!(err.diagnostics[0].message.contains("symlink loop"), "{err}");
}

#[cfg(unix)]
#[test]
fn a_directory_loop_is_one_diagnostic_not_forty_duplicates() {
    let dir = TempDir::new("loop");
    dir.write("team/a.yaml", GOOD);
    symlink("..", &dir.path("team/up"));
    let err = load_dir(&dir.0).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!(d.rule, "io");
    assert!(d.file.ends_with("team/up"), "{d}");
    assert!(
        d.message.contains("symlink loop") && d.message.contains(&dir.0.display().to_string()),
        "{d}"
    );
}

#[cfg(unix)]
#[test]
fn the_same_directory_or_file_reached_twice_is_read_once() {
    let dir = TempDir::new("twice");
    dir.write("real/a.yaml", GOOD);
    symlink("real", &dir.path("alias"));
    symlink("real/a.yaml", &dir.path("b.yaml"));
    assert_eq!(load_dir(&dir.0).unwrap().len(), 1);
}

#[cfg(unix)]
#[test]
fn a_yaml_symlink_to_dev_zero_is_refused_without_reading() {
    let dir = TempDir::new("zero");
    dir.write("a.yaml", GOOD);
    symlink("/dev/zero", &dir.path("zero.yaml"));
    let err = load_dir(&dir.0).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert_eq!((d.rule.as_str(), d.info().code.as_str()), ("io", "IO"));
    assert!(
        d.file.ends_with("zero.yaml") && d.message.contains("a device"),
        "{d}"
    );
    // Named explicitly, too.
    let err = load_dir(Path::new("/dev/zero")).unwrap_err();
    assert!(
        err.diagnostics[0].message.contains("not a regular file"),
        "{err}"
    );
}

#[cfg(unix)]
#[test]
fn a_fifo_named_like_a_playbook_is_refused_without_blocking() {
    let dir = TempDir::new("fifo");
    dir.write("a.yaml", GOOD);
    mkfifo(&dir.path("pipe.yaml"));
    let err = load_dir(&dir.0).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    assert!(err.diagnostics[0].message.contains("a FIFO"), "{err}");
    let err = load_dir(&dir.path("pipe.yaml")).unwrap_err();
    assert!(err.diagnostics[0].message.contains("a FIFO"), "{err}");
    // Through a symlink.
    symlink(dir.path("pipe.yaml"), &dir.path("link.yml"));
    let err = load_dir(&dir.0).unwrap_err();
    assert_eq!(err.diagnostics.len(), 2, "{err}");
}

#[cfg(unix)]
#[test]
fn a_socket_named_like_a_playbook_is_refused() {
    let dir = TempDir::new("socket");
    let _listener = std::os::unix::net::UnixListener::bind(dir.path("s.yaml")).unwrap();
    let err = load_dir(&dir.0).unwrap_err();
    assert!(err.diagnostics[0].message.contains("a socket"), "{err}");
}

#[cfg(unix)]
#[test]
fn symlinks_out_of_the_directory_are_followed_only_to_regular_files_and_directories() {
    let outside = TempDir::new("outside");
    let shared = outside.write("shared.yaml", &GOOD.replace("id: good", "id: shared"));
    let dir = TempDir::new("inside");
    dir.write("a.yaml", GOOD);
    symlink(&shared, &dir.path("shared.yaml"));
    symlink(&outside.0, &dir.path("more"));
    // The file is reached twice (directly and through `more`), and read once.
    assert_eq!(load_dir(&dir.0).unwrap().len(), 2);
    symlink(outside.path("gone.yaml"), &dir.path("gone.yaml"));
    let err = load_dir(&dir.0).unwrap_err();
    assert_eq!(err.diagnostics.len(), 1, "{err}");
    let d = &err.diagnostics[0];
    assert!(d.file.ends_with("gone.yaml") && d.rule == "io", "{d}");
    // A dangling link that is not a playbook name is not a playbook: skipped.
    std::fs::remove_file(dir.path("gone.yaml")).unwrap();
    symlink(outside.path("gone"), &dir.path("notes"));
    assert_eq!(load_dir(&dir.0).unwrap().len(), 2);
}

#[cfg(unix)]
#[test]
fn an_unreadable_file_is_an_io_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = TempDir::new("perm");
    let file = dir.write("a.yaml", GOOD);
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    if std::fs::read(&file).is_ok() {
        // Running as root: permissions do not stop reading, so there is nothing to test.
        return;
    }
    let err = load_dir(&dir.0).unwrap_err();
    assert_eq!(err.diagnostics[0].rule, "io", "{err}");
    assert!(
        err.diagnostics[0].message.contains("cannot read file"),
        "{err}"
    );
}

#[test]
fn a_file_over_the_size_limit_is_refused_naming_the_limit() {
    let dir = TempDir::new("big");
    dir.write("big.yaml", &format!("{GOOD}# {}\n", "x".repeat(9 << 20)));
    let err = load_dir(&dir.0).unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(
        (d.rule.as_str(), d.line, d.info().code.as_str()),
        ("limit", Some(1), "PLAYBOOK_INVALID")
    );
    assert!(d.message.contains("8388608 bytes"), "{d}");
}

#[test]
fn a_file_that_is_not_utf8_is_refused_at_the_first_bad_byte() {
    let dir = TempDir::new("latin1");
    let path = dir.path("a.yaml");
    let mut bytes = GOOD.replace("title: T", "title: Caf").into_bytes();
    let at_title = GOOD.find("title: T").unwrap() + "title: Caf".len();
    bytes.insert(at_title, 0xe9);
    std::fs::write(&path, bytes).unwrap();
    let err = load_dir(&dir.0).unwrap_err();
    let d = &err.diagnostics[0];
    assert_eq!(at(d), ("encoding", 14, 17), "{d}");
    assert!(d.message.contains("0xe9"), "{d}");
}

#[test]
fn check_paths_reports_the_same_refusals() {
    let dir = TempDir::new("check");
    dir.write("a.yaml", "apiVersion: mmm/v1\nfoo: *nope\n");
    let path = dir.0.clone();
    let found = bounded(move || check_paths(&[&path]));
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!((found[0].rule.as_str(), found[0].line), ("yaml", Some(2)));
}
