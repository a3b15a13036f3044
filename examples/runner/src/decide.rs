//! `mmm decide`.

use std::path::Path;

use mmm_engine::{DecideOptions, Engine, PlaybookSet};
use serde_json::Value;

/// Reads a JSON file as the engine reads input (a byte-order mark skipped, integers
/// beyond 64 bits refused, `-0` read as `0`), naming the file and position on error.
pub fn read_json(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    mmm_engine::number::parse_json(&text).map_err(|e| format!("{}:{e}", path.display()))
}

/// Loads playbooks, printing every error.
pub fn load(path: &Path) -> Result<PlaybookSet, String> {
    PlaybookSet::from_path(path).map_err(|e| format!("cannot load playbooks:\n{e}"))
}

/// `--now`, read by the engine's one timestamp parser.
pub fn parse_now(now: Option<&str>) -> Result<Option<jiff::Timestamp>, String> {
    now.map(|n| mmm_engine::parse_timestamp(n).map_err(|e| format!("--now: {e}")))
        .transpose()
}

pub fn run(
    playbooks: &Path,
    signal: &Path,
    context: Option<&Path>,
    now: Option<&str>,
    explain: bool,
    signing_key: Option<&Path>,
    receipts_out: Option<&Path>,
) -> Result<bool, String> {
    let set = load(playbooks)?;
    let signal = read_json(signal)?;
    let context = context.map(read_json).transpose()?;
    let now = parse_now(now)?;
    let engine = engine(set, signing_key, receipts_out)?;
    let decision = engine
        .decide(&signal, context.as_ref(), &DecideOptions { now, explain })
        .map_err(|e| {
            let info = e.info();
            format!("error[{}]: {}", info.code, info.message)
        })?;
    let json = serde_json::to_string_pretty(&decision).map_err(|e| e.to_string())?;
    say!("{json}");
    finish(&engine)?;
    Ok(true)
}

/// An engine for the CLI, signing receipts into `receipts_out` when asked.
pub fn engine(
    set: PlaybookSet,
    signing_key: Option<&Path>,
    receipts_out: Option<&Path>,
) -> Result<Engine, String> {
    let (signer, port) = crate::receipts::setup(signing_key, receipts_out)?;
    // The CLI reports no outcomes: nothing reads what an action memory would keep.
    let mut builder = Engine::builder()
        .playbooks(set)
        .background_outbox(false)
        .remember_actions(false);
    if let Some(signer) = signer {
        builder = builder.receipt_signer(signer);
    }
    if let Some(port) = port {
        builder = builder.receipts(std::sync::Arc::new(port));
    }
    Ok(builder.build())
}

/// Writes out any receipt still waiting; a receipt that cannot be written is an error.
pub fn finish(engine: &Engine) -> Result<(), String> {
    engine.flush_outbox();
    match engine.outbox_len() {
        0 => Ok(()),
        n => Err(format!(
            "{n} receipt(s) could not be written to the receipts file"
        )),
    }
}
