//! Configuration: flags, each with an `MMM_*` environment variable of the same name
//! (SPEC §13). The engine's own settings are not repeated here: they belong to the core's
//! settings type.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// `mmm-host`: the engine as a multi-tenant HTTP service.
#[derive(Debug, Parser)]
#[command(
    name = "mmm-host",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// What to do (default: `serve`).
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `serve`'s options, when no command is named.
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The commands.
// Parsed once per process: the size of `ServeArgs` does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the API (the default).
    Serve(Box<ServeArgs>),
    /// Mint a token with the host's local key (for local use and tests).
    Token(TokenArgs),
}

/// Log output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable lines.
    Text,
}

/// `serve`'s options.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MMM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Where the host keeps its files (the SQLite database, its token key).
    #[arg(long, env = "MMM_DATA_DIR", default_value = "mmm-data")]
    pub data_dir: PathBuf,
    /// `sqlite://…` or `postgres://…`; default: SQLite at `<data-dir>/mmm.db`.
    #[arg(long, env = "MMM_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Playbooks imported on first start (an empty store); default: `./playbooks` when it
    /// exists.
    #[arg(long, env = "MMM_SEED_PLAYBOOKS")]
    pub seed_playbooks: Option<PathBuf>,
    /// A JWKS file with the keys tokens are verified with.
    #[arg(long, env = "MMM_JWKS_FILE", conflicts_with = "jwks_url")]
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL, fetched at start and again when a token names an unknown key.
    #[arg(long, env = "MMM_JWKS_URL")]
    pub jwks_url: Option<String>,
    /// Minimum seconds between two JWKS fetches caused by unknown keys.
    #[arg(long, env = "MMM_JWKS_REFETCH_SECONDS", default_value_t = 60)]
    pub jwks_refetch_seconds: u64,
    /// Required `iss` of tokens.
    #[arg(long, env = "MMM_JWT_ISSUER")]
    pub jwt_issuer: Option<String>,
    /// Required `aud` of tokens.
    #[arg(long, env = "MMM_JWT_AUDIENCE")]
    pub jwt_audience: Option<String>,
    /// Largest request body in bytes (larger: 413).
    #[arg(long, env = "MMM_BODY_LIMIT", default_value_t = 1024 * 1024)]
    pub body_limit: usize,
    /// Seconds after which a request is abandoned (503).
    #[arg(long, env = "MMM_REQUEST_TIMEOUT_SECONDS", default_value_t = 30)]
    pub request_timeout_seconds: u64,
    /// Most signals one simulate request may replay.
    #[arg(long, env = "MMM_SIMULATE_MAX_SIGNALS", default_value_t = 10_000)]
    pub simulate_max_signals: usize,
    /// Milliseconds between two checks of the playbook-set revision (replicas follow
    /// changes within this, or at once on PostgreSQL notifications).
    #[arg(long, env = "MMM_REVISION_POLL_MS", default_value_t = 1000)]
    pub revision_poll_ms: u64,
    /// Seconds each shutdown step may take after SIGTERM.
    #[arg(long, env = "MMM_SHUTDOWN_GRACE_SECONDS", default_value_t = 8)]
    pub shutdown_grace_seconds: u64,
    /// Log format.
    #[arg(long, env = "MMM_LOG_FORMAT", value_enum, default_value_t = LogFormat::Json)]
    pub log_format: LogFormat,
    /// Export traces over OTLP/HTTP protobuf to this collector (its base URL, to which
    /// `/v1/traces` is appended); default: `OTEL_EXPORTER_OTLP_ENDPOINT`, else no traces.
    #[arg(long, env = "OTLP_EXPORTER_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// The engine's settings: a JSON object of the core's settings keys (deadlines, port
    /// timeouts, breakers, limits; see `EngineConfig::KEYS`).
    #[arg(long, env = "MMM_ENGINE_SETTINGS")]
    pub engine_settings: Option<PathBuf>,
    /// Sign a receipt for every decision with this Ed25519 key (the hex seed `mmm keygen`
    /// writes); default: `<data-dir>/receipts.key`, created on first start.
    #[arg(long, env = "MMM_SIGNING_KEY_FILE", conflicts_with = "unsigned")]
    pub signing_key_file: Option<PathBuf>,
    /// Decide without receipts (`receipt.status: disabled`): for tests and replays only.
    #[arg(long, env = "MMM_UNSIGNED")]
    pub unsigned: bool,
    /// This replica's name, which is also its receipt chain's id; default: an id created
    /// on first start and kept in `<data-dir>/replica-id`.
    #[arg(long, env = "MMM_REPLICA_ID")]
    pub replica_id: Option<String>,
    /// Milliseconds a receipt batch waits for more decisions before it is committed.
    #[arg(long, env = "MMM_RECEIPTS_LINGER_MS", default_value_t = 2)]
    pub receipts_linger_ms: u64,
    /// Redis for fatigue state shared by replicas (`redis://…`); default: the database.
    #[arg(long, env = "MMM_REDIS_URL")]
    pub redis_url: Option<String>,
    /// Milliseconds one fatigue check may take (Redis or the database) before the store
    /// counts as down for that decision.
    #[arg(long, env = "MMM_FATIGUE_TIMEOUT_MS", default_value_t = 500)]
    pub fatigue_timeout_ms: u64,
    /// IAM service (SPEC §5 `iam`); see docs/host.md "Port clients" for the contract.
    #[arg(long, env = "MMM_IAM_URL")]
    pub iam_url: Option<String>,
    /// UBI, the recent-signals service (SPEC §5 `signals`).
    #[arg(long, env = "MMM_UBI_URL", visible_alias = "signals-url")]
    pub ubi_url: Option<String>,
    /// Data governance (SPEC §5 `data_governance`).
    #[arg(
        long,
        env = "MMM_GOVERNANCE_URL",
        visible_alias = "data-governance-url"
    )]
    pub governance_url: Option<String>,
    /// LLM gateway (SPEC §5 `llm`).
    #[arg(long, env = "MMM_LLM_URL")]
    pub llm_url: Option<String>,
    /// Policy service (SPEC §5 `policy`).
    #[arg(long, env = "MMM_POLICY_URL")]
    pub policy_url: Option<String>,
    /// A bearer token sent to every port service (`Authorization: Bearer …`).
    #[arg(long, env = "MMM_PORTS_TOKEN", hide_env_values = true)]
    pub ports_token: Option<String>,
    /// ERIS: receipts in the outbox are forwarded here (POST, one envelope each).
    #[arg(long, env = "MMM_ERIS_URL", visible_alias = "receipts-url")]
    pub eris_url: Option<String>,
    /// Milliseconds one ERIS request may take.
    #[arg(long, env = "MMM_ERIS_TIMEOUT_MS", default_value_t = 5000)]
    pub eris_timeout_ms: u64,
    /// Longest wait, in milliseconds, between two forwarding attempts after failures.
    #[arg(long, env = "MMM_ERIS_MAX_BACKOFF_MS", default_value_t = 60_000)]
    pub eris_max_backoff_ms: u64,
    /// NATS: consume signals from a JetStream durable consumer (`nats://…`).
    #[arg(long, env = "MMM_NATS_URL")]
    pub nats_url: Option<String>,
    /// The JetStream stream signals are published to (created when absent).
    #[arg(long, env = "MMM_NATS_STREAM", default_value = "MMM_SIGNALS")]
    pub nats_stream: String,
    /// The stream's subjects (comma-separated).
    #[arg(long, env = "MMM_NATS_SUBJECTS", default_value = "mmm.signals.>")]
    pub nats_subjects: String,
    /// The durable consumer's name (replicas share it: each message goes to one).
    #[arg(long, env = "MMM_NATS_CONSUMER", default_value = "mmm-host")]
    pub nats_consumer: String,
    /// Where malformed messages go (outside the stream's subjects).
    #[arg(long, env = "MMM_NATS_DLQ_SUBJECT", default_value = "mmm.dlq.signals")]
    pub nats_dlq_subject: String,
    /// The stream keeping the dead letters (created when absent).
    #[arg(long, env = "MMM_NATS_DLQ_STREAM", default_value = "MMM_SIGNALS_DLQ")]
    pub nats_dlq_stream: String,
    /// Seconds NATS waits for an ack before delivering a message again (it must exceed a
    /// decision's time; a consumer that exists keeps its own setting).
    #[arg(long, env = "MMM_NATS_ACK_WAIT_SECONDS", default_value_t = 30)]
    pub nats_ack_wait_seconds: u64,
    /// RabbitMQ: consume signals from a queue (`amqp://…`).
    #[arg(long, env = "MMM_AMQP_URL")]
    pub amqp_url: Option<String>,
    /// The queue signals are taken from (declared durable when absent).
    #[arg(long, env = "MMM_AMQP_QUEUE", default_value = "mmm.signals")]
    pub amqp_queue: String,
    /// Where malformed messages go (declared durable when absent).
    #[arg(long, env = "MMM_AMQP_DLQ_QUEUE", default_value = "mmm.signals.dlq")]
    pub amqp_dlq_queue: String,
    /// Messages a broker hands the host before their acks (RabbitMQ prefetch; NATS batch
    /// and `max_ack_pending`).
    #[arg(long, env = "MMM_INTAKE_PREFETCH", default_value_t = crate::intake::DEFAULT_PREFETCH,
        value_parser = clap::value_parser!(u16).range(1..))]
    pub intake_prefetch: u16,
    /// Most broker messages being decided at once, per broker.
    #[arg(long, env = "MMM_INTAKE_IN_FLIGHT", default_value_t = 16,
        value_parser = clap::value_parser!(u16).range(1..))]
    pub intake_in_flight: u16,
    /// Milliseconds before a message that could not be decided now (the database or a
    /// port away) is delivered again.
    #[arg(long, env = "MMM_INTAKE_RETRY_DELAY_MS", default_value_t = 1000)]
    pub intake_retry_delay_ms: u64,
    /// Milliseconds one webhook delivery may take.
    #[arg(long, env = "MMM_DELIVERY_TIMEOUT_MS", default_value_t = 5000)]
    pub delivery_timeout_ms: u64,
    /// Webhook deliveries in flight at most (per replica).
    #[arg(long, env = "MMM_DELIVERY_CONCURRENCY", default_value_t = 8)]
    pub delivery_concurrency: usize,
    /// The backoff step, in milliseconds, before a delivery's first retry; it doubles
    /// with each attempt, and each wait is drawn from zero to the step (full jitter).
    #[arg(long, env = "MMM_DELIVERY_BASE_BACKOFF_MS", default_value_t = 1000)]
    pub delivery_base_backoff_ms: u64,
    /// The largest backoff step, in milliseconds.
    #[arg(long, env = "MMM_DELIVERY_MAX_BACKOFF_MS", default_value_t = 600_000)]
    pub delivery_max_backoff_ms: u64,
    /// Attempts before a delivery is given up (`dead`).
    #[arg(long, env = "MMM_DELIVERY_MAX_ATTEMPTS", default_value_t = 15)]
    pub delivery_max_attempts: u32,
    /// Milliseconds between two looks at the queue when nothing is due (a decision that
    /// queued deliveries wakes the worker at once).
    #[arg(long, env = "MMM_DELIVERY_POLL_MS", default_value_t = 1000)]
    pub delivery_poll_ms: u64,
    /// Consecutive failures of a webhook that open its circuit breaker.
    #[arg(long, env = "MMM_DELIVERY_BREAKER_FAILURES", default_value_t = 5)]
    pub delivery_breaker_failures: u32,
    /// Milliseconds an open webhook breaker waits before probing again.
    #[arg(long, env = "MMM_DELIVERY_BREAKER_OPEN_MS", default_value_t = 60_000)]
    pub delivery_breaker_open_ms: u64,
    /// Hours delivered (`done`) deliveries are kept; dead ones are kept.
    #[arg(long, env = "MMM_DELIVERY_RETENTION_HOURS", default_value_t = 168)]
    pub delivery_retention_hours: u64,
    /// The console's external origin (`https://mmm.example.com`); default
    /// `http://<listen>`. `https://` makes the session cookie `Secure`, and OpenID Connect
    /// redirects to `<public-url>/ui/oidc/callback`.
    #[arg(long, env = "MMM_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// The key of the console's session cookies (64 bytes, hex); default
    /// `<data-dir>/session.key`, created on first start. Replicas share one.
    #[arg(long, env = "MMM_SESSION_KEY_FILE")]
    pub session_key_file: Option<PathBuf>,
    /// The longest console session (never past the token's own expiry).
    #[arg(long, env = "MMM_SESSION_TTL", default_value = "8h")]
    pub session_ttl: String,
    /// The OpenID Connect issuer the console signs people in with (discovery at
    /// `<issuer>/.well-known/openid-configuration`).
    #[arg(long, env = "MMM_OIDC_ISSUER", requires = "oidc_client_id")]
    pub oidc_issuer: Option<String>,
    /// The console's client id at the OpenID Connect provider.
    #[arg(long, env = "MMM_OIDC_CLIENT_ID", requires = "oidc_issuer")]
    pub oidc_client_id: Option<String>,
    /// The client secret, for a confidential client (`client_secret_post`); a public
    /// client relies on PKCE alone.
    #[arg(long, env = "MMM_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// Scopes asked for.
    #[arg(long, env = "MMM_OIDC_SCOPES", default_value = "openid")]
    pub oidc_scopes: String,
}

impl ServeArgs {
    /// The database URL: the flag's, else SQLite in the data directory.
    pub fn database_url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("mmm.db").display()))
    }

    /// The seed directory: the flag's, else `./playbooks` when it exists.
    pub fn seed_dir(&self) -> Option<PathBuf> {
        self.seed_playbooks.clone().or_else(|| {
            let default = PathBuf::from("playbooks");
            default.is_dir().then_some(default)
        })
    }

    /// The routes' limits.
    pub fn settings(&self) -> crate::Settings {
        crate::Settings {
            body_limit: self.body_limit,
            request_timeout: Duration::from_secs(self.request_timeout_seconds),
            simulate_max_signals: self.simulate_max_signals,
        }
    }
}

/// `token`'s options.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// The tenant (`*` for the platform operator).
    #[arg(long)]
    pub tenant: String,
    /// A role (repeat for several): admin, author, approver, service, developer.
    #[arg(long = "role", required = true)]
    pub roles: Vec<String>,
    /// The token's `sub` (an actor id); default `<role>@<tenant>`.
    #[arg(long)]
    pub actor: Option<String>,
    /// How long the token is valid (`30m`, `1h`, `7d`).
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// The data directory holding the key.
    #[arg(long, env = "MMM_DATA_DIR", default_value = "mmm-data")]
    pub data_dir: PathBuf,
}
