#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod approval;
pub mod audit;
mod builder;
mod clock;
mod condition;
mod context;
mod decision;
mod duration;
mod engine;
mod env;
mod error;
pub mod experiment;
mod fatigue;
mod ids;
mod kind_index;
pub mod lint;
mod minimise;
mod model;
pub mod number;
pub mod observe;
pub mod outbox;
pub mod outcome;
mod pipeline;
mod plan;
pub mod playbook;
pub mod pool;
pub mod ports;
pub mod receipt;
mod registry;
pub mod schema;
mod services;
mod settings;
mod signal;
pub mod simulate;
mod template;
mod text;
mod trigger;

pub use builder::EngineBuilder;
pub use clock::{Clock, ManualClock, SystemClock};
pub use condition::ConditionLimits;
pub use context::{Context, PolicySnapshot, DEFAULT_MAX_ACTIONS};
pub use decision::{
    Action, ConditionResult, Decision, Detail, Evidence, ExperimentRef, ExplainAction,
    ExplainEntry, Rationale, ReceiptRef, Rendered, RenderedIter, Suppressed,
};
pub use duration::{Duration, DurationError};
pub use engine::{DecideOptions, Engine};
pub use error::{
    clean_message, codes, field_name, ContextError, DecideArgument, DecideError, Diagnostic,
    ErrorInfo, LoadError, Quoted, Severity, SignalError, QUOTED_MAX_CHARS,
};
pub use fatigue::{
    FatigueError, FatigueRequest, FatigueStore, FatigueVerdict, InMemoryFatigue,
    DEFAULT_FATIGUE_MAX_ACTORS,
};
pub use ids::{Hex256, Id, InlineStr, SharedStr};
pub use minimise::{DenyList, DEFAULT_DENY_KEYS};
pub use model::{
    ActionType, ActorType, BreakerState, Degraded, PlaybookRef, PortName, Reason, ReceiptStatus,
    Status, Surface,
};
pub use pipeline::compose::fingerprint;
pub use plan::{FatigueSpec, Plan, SourceRef};
pub use ports::{BreakerConfig, PortError, PortTimeouts};
pub use registry::{check_paths, check_sources, PlaybookSet};
pub use settings::{EngineConfig, SettingsError, DEFAULT_MAX_CONTEXT_BYTES};
pub use signal::{
    parse_timestamp, GivenSignal, Repo, Signal, DEFAULT_MAX_PAYLOAD_BYTES, SIGNAL_FIELDS,
};

/// The engine's version, as recorded in receipts.
pub const ENGINE_VERSION: &str = env!("CARGO_PKG_VERSION");
