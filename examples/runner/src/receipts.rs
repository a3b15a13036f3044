//! `mmm keygen`, `mmm verify`, and the receipts file behind `--receipts-out`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mmm_engine::ports::{PortError, Receipts};
use mmm_engine::receipt::{
    generate_key, public_key_from_bytes, signing_key_from_bytes, ChainTip, ChainVerifier, Envelope,
    ReceiptSigner,
};

pub fn keygen(out: &Path, force: bool) -> Result<bool, String> {
    let public_path = PathBuf::from(format!("{}.pub", out.display()));
    for path in [out, public_path.as_path()] {
        if path.exists() && !force {
            return Err(format!(
                "{} exists; refusing to overwrite a key (use --force)",
                path.display()
            ));
        }
    }
    let (seed, public) = generate_key();
    write_private(out, &format!("{seed}\n"))?;
    std::fs::write(&public_path, format!("{public}\n"))
        .map_err(|e| format!("{}: {e}", public_path.display()))?;
    say!("signing key (hex seed): {}", out.display());
    say!("public key (hex):       {}", public_path.display());
    Ok(true)
}

#[cfg(unix)]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    file.write_all(text.as_bytes())
        .map_err(|e| format!("{}: {e}", path.display()))
}

#[cfg(not(unix))]
fn write_private(path: &Path, text: &str) -> Result<(), String> {
    std::fs::write(path, text).map_err(|e| format!("{}: {e}", path.display()))
}

fn read_key_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_start_matches('\u{FEFF}').trim().to_owned())
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// The longest line a receipts file may have. An envelope is a few kilobytes; a longer
/// line is refused before it is read whole, so memory stays bounded whatever the file.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// One line of a receipts file, read with a bounded length.
enum Line {
    /// A line's text (without its line break).
    Text(String),
    /// Why the line cannot be read as text.
    Bad(String),
}

/// Reads a receipts file line by line, never more than [`MAX_LINE_BYTES`] of a line.
struct Lines<R> {
    reader: R,
    buffer: Vec<u8>,
    number: usize,
}

impl<R: BufRead> Lines<R> {
    fn new(reader: R) -> Self {
        Lines {
            reader,
            buffer: Vec::new(),
            number: 0,
        }
    }

    /// The next line and its 1-based number; `None` at the end of the file. A line over
    /// the limit stops the reading where the limit was passed.
    fn next_line(&mut self) -> std::io::Result<Option<(usize, Line)>> {
        self.buffer.clear();
        let mut read_any = false;
        loop {
            let available = self.reader.fill_buf()?;
            if available.is_empty() {
                if !read_any {
                    return Ok(None);
                }
                break;
            }
            read_any = true;
            let (chunk, used, ended) = match available.iter().position(|b| *b == b'\n') {
                Some(at) => (available.split_at(at).0, at + 1, true),
                None => (available, available.len(), false),
            };
            if self.buffer.len() + chunk.len() > MAX_LINE_BYTES {
                self.number += 1;
                return Ok(Some((
                    self.number,
                    Line::Bad(format!(
                        "line is longer than {MAX_LINE_BYTES} bytes; a receipt envelope is never that long"
                    )),
                )));
            }
            self.buffer.extend_from_slice(chunk);
            self.reader.consume(used);
            if ended {
                break;
            }
        }
        self.number += 1;
        if self.buffer.last() == Some(&b'\r') {
            self.buffer.pop();
        }
        // A byte-order mark may open the file; it is not part of the first envelope.
        let bytes = match self.buffer.strip_prefix("\u{FEFF}".as_bytes()) {
            Some(rest) if self.number == 1 => rest,
            _ => &self.buffer,
        };
        let line = match std::str::from_utf8(bytes) {
            Ok(text) => Line::Text(text.to_owned()),
            Err(e) => Line::Bad(format!("line is not UTF-8: {e}")),
        };
        Ok(Some((self.number, line)))
    }
}

fn open_lines(path: &Path) -> Result<Lines<BufReader<File>>, String> {
    File::open(path)
        .map(|f| Lines::new(BufReader::new(f)))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// One line read as the core reads envelopes (`envelope.md`: unknown fields ignored,
/// numbers by the engine's rules); the message is the core's, the caller adds the line.
fn parse_envelope(text: &str) -> Result<Envelope, String> {
    Envelope::parse(text).map_err(|e| e.to_string())
}

/// The last envelope of a receipts file (blank lines skipped), read line by line.
fn last_envelope(path: &Path) -> Result<Option<Envelope>, String> {
    let mut lines = open_lines(path)?;
    let mut last = None;
    while let Some((number, line)) = lines
        .next_line()
        .map_err(|e| format!("{}: {e}", path.display()))?
    {
        match line {
            Line::Text(text) if text.trim().is_empty() => {}
            Line::Text(text) => last = Some((number, text)),
            Line::Bad(why) => return Err(format!("{}:{number}: {why}", path.display())),
        }
    }
    last.map(|(number, text)| {
        parse_envelope(&text).map_err(|e| format!("{}:{number}: {e}", path.display()))
    })
    .transpose()
}

/// What `mmm verify` requires beyond each receipt and its chain links.
#[derive(Debug, Clone, Copy, Default)]
pub struct Expect {
    /// Every chain begins at `seq` 1.
    pub from_start: bool,
    /// Exactly this many receipts.
    pub count: Option<u64>,
}

/// How many chains the summary lists one by one.
const CHAINS_LISTED: usize = 20;

pub fn verify(public_key: &Path, file: &Path, expect: Expect) -> Result<bool, String> {
    let key = public_key_from_bytes(read_key_file(public_key)?.as_bytes())
        .map_err(|e| format!("{}: {e}", public_key.display()))?;
    let mut lines = open_lines(file)?;
    let mut verifier = ChainVerifier::new(&key).from_start(expect.from_start);
    let mut last_line = 0;
    let fail = |line: usize, why: &dyn std::fmt::Display| {
        say!("{}:{line}: error[RECEIPT_INVALID]: {why}", file.display());
        Ok(false)
    };
    while let Some((number, line)) = lines
        .next_line()
        .map_err(|e| format!("{}: {e}", file.display()))?
    {
        last_line = number;
        let text = match line {
            Line::Text(text) if text.trim().is_empty() => continue,
            Line::Text(text) => text,
            Line::Bad(why) => return fail(number, &why),
        };
        let envelope = match parse_envelope(&text) {
            Ok(envelope) => envelope,
            Err(why) => return fail(number, &why),
        };
        if let Some(expected) = expect.count {
            if verifier.receipts() >= expected {
                return fail(
                    number,
                    &format!("more receipts than the {expected} expected"),
                );
            }
        }
        if let Err(e) = verifier.verify(&envelope) {
            return fail(number, &e);
        }
    }
    let found = verifier.receipts();
    if let Some(expected) = expect.count {
        if found != expected {
            return fail(
                last_line + 1,
                &format!("{found} receipt(s), {expected} expected: the end of the file is missing"),
            );
        }
    }
    let chains: Vec<&ChainTip> = verifier.chains().collect();
    match chains.as_slice() {
        [] => say!("no receipts in {}", file.display()),
        [one] => say!(
            "{found} receipt(s) verified: chain {}, seq {} to {}, no gaps",
            one.id,
            one.first_seq,
            one.last_seq
        ),
        many => {
            say!(
                "{found} receipt(s) verified in {} chains, no gaps:",
                many.len()
            );
            for tip in many.iter().take(CHAINS_LISTED) {
                say!(
                    "  chain {}: seq {} to {} ({} receipt(s))",
                    tip.id,
                    tip.first_seq,
                    tip.last_seq,
                    tip.receipts
                );
            }
            if many.len() > CHAINS_LISTED {
                say!("  … and {} more chains", many.len() - CHAINS_LISTED);
            }
        }
    }
    Ok(true)
}

/// A receipts port appending each envelope as one JSON line.
pub struct JsonlReceipts {
    file: Mutex<std::fs::File>,
}

impl Receipts for JsonlReceipts {
    fn emit(&self, envelope: &Envelope) -> Result<(), PortError> {
        let line =
            serde_json::to_string(envelope).map_err(|e| PortError::Unavailable(e.to_string()))?;
        let mut file = self
            .file
            .lock()
            .map_err(|_| PortError::Unavailable("receipts file lock poisoned".into()))?;
        writeln!(file, "{line}").map_err(|e| PortError::Unavailable(e.to_string()))
    }
}

/// The signer and receipts port for `--signing-key` / `--receipts-out`. A receipts file
/// that already holds receipts is continued: new receipts extend its chain.
pub fn setup(
    signing_key: Option<&Path>,
    receipts_out: Option<&Path>,
) -> Result<(Option<ReceiptSigner>, Option<JsonlReceipts>), String> {
    let Some(key_path) = signing_key else {
        if receipts_out.is_some() {
            return Err("--receipts-out needs --signing-key".into());
        }
        return Ok((None, None));
    };
    let key = signing_key_from_bytes(read_key_file(key_path)?.as_bytes())
        .map_err(|e| format!("{}: {e}", key_path.display()))?;
    let Some(out) = receipts_out else {
        return Ok((Some(ReceiptSigner::new(key)), None));
    };
    let last = if out.exists() {
        last_envelope(out)?
    } else {
        None
    };
    let signer = match last {
        Some(env) => ReceiptSigner::resume(key, &env).map_err(|e| {
            format!(
                "{}: cannot continue its chain: {e} (was it signed with another key?)",
                out.display()
            )
        })?,
        None => ReceiptSigner::new(key),
    };
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(out)
        .map_err(|e| format!("{}: {e}", out.display()))?;
    Ok((
        Some(signer),
        Some(JsonlReceipts {
            file: Mutex::new(file),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_all(bytes: &[u8]) -> Vec<(usize, Result<String, String>)> {
        // A tiny buffer, so lines cross buffer boundaries.
        let mut lines = Lines::new(BufReader::with_capacity(7, bytes));
        let mut out = Vec::new();
        while let Some((n, line)) = lines.next_line().unwrap() {
            let bad = matches!(line, Line::Bad(_));
            out.push((
                n,
                match line {
                    Line::Text(t) => Ok(t),
                    Line::Bad(why) => Err(why),
                },
            ));
            if bad {
                break;
            }
        }
        out
    }

    #[test]
    fn lines_are_numbered_and_crlf_and_a_missing_last_break_are_fine() {
        assert_eq!(
            read_all(b"one\r\n\ntwo words here\nlast"),
            [
                (1, Ok("one".to_owned())),
                (2, Ok(String::new())),
                (3, Ok("two words here".to_owned())),
                (4, Ok("last".to_owned()))
            ]
        );
        assert!(read_all(b"").is_empty());
    }

    #[test]
    fn a_line_at_the_limit_is_read_and_one_byte_more_is_refused() {
        let at_limit = "x".repeat(MAX_LINE_BYTES);
        let read = read_all(format!("a\n{at_limit}\nb").as_bytes());
        assert_eq!(read.len(), 3);
        assert_eq!(read[1].1.as_ref().map(String::len), Ok(MAX_LINE_BYTES));
        let over = format!("a\n{at_limit}x\nb");
        let read = read_all(over.as_bytes());
        assert_eq!(read.len(), 2);
        assert_eq!(read[1].0, 2);
        assert!(read[1].1.as_ref().is_err_and(|e| e.contains("longer than")));
    }
}
