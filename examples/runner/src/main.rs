//! `mmm`: the playbook author's command. Validate, decide, test and simulate playbooks
//! locally, before any service exists.

/// `println!` that ends the program quietly when stdout is closed (`mmm … | head`).
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if writeln!(std::io::stdout().lock(), $($arg)*).is_err() {
            std::process::exit(0);
        }
    }};
}

mod decide;
mod receipts;
mod simulate;
#[expect(
    clippy::indexing_slicing,
    reason = "reads decisions and test files as `serde_json::Value` by key, which never \
              panics (a missing key reads as null)"
)]
mod suite;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: a replay frees on one thread what another
/// allocated, and glibc's `malloc` spent a fifth of a replay's time (see
/// docs/decisions.md, "The `mmm` command's allocator").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "mmm",
    version,
    about = "Validate, decide, test and simulate mmm-engine playbooks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check playbook files: schema, conditions, templates and the nudge-language lint.
    Validate {
        /// Treat lint warnings as errors.
        #[arg(long)]
        strict: bool,
        /// Output format.
        #[arg(long, value_enum, default_value_t = validate::Format::Text)]
        format: validate::Format,
        /// Playbook files or directories.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Decide on one signal and print the decision as JSON.
    Decide {
        /// Playbook directory (or file).
        #[arg(long)]
        playbooks: PathBuf,
        /// The signal envelope (JSON).
        #[arg(long)]
        signal: PathBuf,
        /// The context (JSON).
        #[arg(long)]
        context: Option<PathBuf>,
        /// The decision's `now` (RFC 3339); default: the current time.
        #[arg(long)]
        now: Option<String>,
        /// Include the explain trace.
        #[arg(long)]
        explain: bool,
        /// Sign a receipt with this key (hex seed, from `mmm keygen`).
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// Append the receipt envelope to this JSONL file (continuing its chain).
        #[arg(long)]
        receipts_out: Option<PathBuf>,
    },
    /// Run the `*.test.yaml` suites below the paths (default `playbooks/`).
    Test {
        /// Suite files or directories.
        paths: Vec<PathBuf>,
        /// List the playbooks and actions no case returned.
        #[arg(long)]
        coverage: bool,
    },
    /// Replay recorded signals (JSONL), fatigue carried along, and summarise.
    Simulate {
        /// Playbook directory (or file).
        #[arg(long)]
        playbooks: PathBuf,
        /// Signals, one JSON envelope (or `{"signal", "context"}`) per line, in order.
        #[arg(long)]
        signals: PathBuf,
        /// A second playbook set to compare with (shadow run).
        #[arg(long)]
        against: Option<PathBuf>,
        /// Write every decision (of `--playbooks`) as JSONL here.
        #[arg(long)]
        decisions_out: Option<PathBuf>,
        /// Sign a receipt per decision with this key (hex seed, from `mmm keygen`).
        #[arg(long)]
        signing_key: Option<PathBuf>,
        /// Append the receipt envelopes to this JSONL file (continuing its chain).
        #[arg(long)]
        receipts_out: Option<PathBuf>,
        /// Decide different actors' signals on up to this many threads (default: one per
        /// core, at most 8). The outcome is the same for any number: see docs/cli.md.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
        threads: Option<u16>,
    },
    /// Generate an Ed25519 key pair for receipts: the hex seed to FILE, the hex public
    /// key to FILE.pub.
    Keygen {
        /// Where to write the signing key.
        #[arg(long)]
        out: PathBuf,
        /// Overwrite existing key files.
        #[arg(long)]
        force: bool,
    },
    /// Verify a receipts file (one DSSE envelope per line): signatures and the chains.
    /// By default a chain may start anywhere (a tail verifies on its own).
    Verify {
        /// The public key (hex), from `mmm keygen`.
        #[arg(long)]
        public_key: PathBuf,
        /// Require every chain to begin at seq 1 (catches a cut head).
        #[arg(long)]
        from_start: bool,
        /// Require exactly N receipts (catches a cut tail).
        #[arg(long, value_name = "N")]
        expect_count: Option<u64>,
        /// The receipts file.
        receipts: PathBuf,
    },
    /// Print the JSON Schema of the playbook format.
    Schema,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Validate {
            strict,
            format,
            paths,
        } => validate::run(&paths, strict, format),
        Command::Decide {
            playbooks,
            signal,
            context,
            now,
            explain,
            signing_key,
            receipts_out,
        } => decide::run(
            &playbooks,
            &signal,
            context.as_deref(),
            now.as_deref(),
            explain,
            signing_key.as_deref(),
            receipts_out.as_deref(),
        ),
        Command::Test { paths, coverage } => {
            let paths = if paths.is_empty() {
                vec![PathBuf::from("playbooks")]
            } else {
                paths
            };
            suite::run(&paths, coverage)
        }
        Command::Simulate {
            playbooks,
            signals,
            against,
            decisions_out,
            signing_key,
            receipts_out,
            threads,
        } => simulate::run(
            &playbooks,
            &signals,
            against.as_deref(),
            decisions_out.as_deref(),
            signing_key.as_deref(),
            receipts_out.as_deref(),
            threads.map(usize::from),
        ),
        Command::Keygen { out, force } => receipts::keygen(&out, force),
        Command::Verify {
            public_key,
            from_start,
            expect_count,
            receipts,
        } => receipts::verify(
            &public_key,
            &receipts,
            receipts::Expect {
                from_start,
                count: expect_count,
            },
        ),
        Command::Schema => {
            say!("{:#}", mmm_engine::schema::playbook_schema());
            Ok(true)
        }
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(message) => {
            eprintln!("mmm: {message}");
            ExitCode::FAILURE
        }
    }
}
