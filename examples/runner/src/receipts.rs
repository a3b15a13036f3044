//! `mmm keygen`, `mmm verify`, and the receipts file behind `--receipts-out`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mmm_engine::ports::{PortError, Receipts};
use mmm_engine::receipt::{
    generate_key, public_key_from_bytes, signing_key_from_bytes, verify_chain, Envelope,
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

/// One line of a receipts file: its number and the envelope (or why it is not one).
type Line = (usize, Result<Envelope, String>);

/// The lines of a receipts file.
fn read_envelopes(path: &Path) -> Result<Vec<Line>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(text
        .strip_prefix('\u{FEFF}')
        .unwrap_or(&text)
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            (
                i + 1,
                serde_json::from_str::<Envelope>(l).map_err(|e| {
                    format!(
                        "not a receipt envelope: {}",
                        mmm_engine::clean_message(&e.to_string())
                    )
                }),
            )
        })
        .collect())
}

pub fn verify(public_key: &Path, file: &Path) -> Result<bool, String> {
    let key = public_key_from_bytes(read_key_file(public_key)?.as_bytes())
        .map_err(|e| format!("{}: {e}", public_key.display()))?;
    let lines = read_envelopes(file)?;
    let mut envelopes = Vec::with_capacity(lines.len());
    let mut line_of = Vec::with_capacity(lines.len());
    for (line, parsed) in lines {
        match parsed {
            Ok(env) => {
                envelopes.push(env);
                line_of.push(line);
            }
            Err(why) => {
                say!("{}:{line}: error[RECEIPT_INVALID]: {why}", file.display());
                return Ok(false);
            }
        }
    }
    match verify_chain(&envelopes, &key) {
        Ok(payloads) => {
            let first = payloads.first().map(|p| p["chain"]["seq"].clone());
            let last = payloads.last().map(|p| p["chain"]["seq"].clone());
            let chain = payloads
                .first()
                .map(|p| p["chain"]["id"].as_str().unwrap_or("?").to_owned());
            match (chain, first, last) {
                (Some(chain), Some(first), Some(last)) => {
                    say!(
                        "{} receipt(s) verified: chain {chain}, seq {first} to {last}, no gaps",
                        payloads.len()
                    )
                }
                _ => say!("no receipts in {}", file.display()),
            }
            Ok(true)
        }
        Err(fault) => {
            let line = line_of.get(fault.index).copied().unwrap_or(0);
            say!(
                "{}:{line}: error[RECEIPT_INVALID]: {}",
                file.display(),
                fault.error
            );
            Ok(false)
        }
    }
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
        read_envelopes(out)?
            .into_iter()
            .last()
            .map(|(line, env)| env.map_err(|e| format!("{}:{line}: {e}", out.display())))
    } else {
        None
    };
    let signer = match last {
        Some(env) => ReceiptSigner::resume(key, &env?).map_err(|e| {
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
