//! Workloads shared by the benchmarks.
//!
//! Every generator is deterministic: randomness comes from a [`StdRng`] seeded with a fixed
//! value ([`SEED`] unless the caller gives another), so every run, on every machine, decides
//! on the same playbooks and signals and the numbers in `docs/performance.md` can be
//! reproduced.
//!
//! The main workload is **nudge-1k** ([`NudgeSpec::NUDGE_1K`]): 1,000 playbooks spread evenly
//! over 20 signal kinds, each `when: signal.payload.lines > T && signal.payload.files > F`
//! with random thresholds (a condition the engine evaluates natively, without Rhai), one
//! mirror action and no fatigue limits; and 20,000 random signals.

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

use jiff::Timestamp;
use mmm_engine::{FatigueError, FatigueRequest, FatigueStore, FatigueVerdict, InMemoryFatigue};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// The seed every workload is drawn from unless told otherwise.
pub const SEED: u64 = 0x6d6d_6d2d_6265_6e63;

/// The tenant every generated signal belongs to.
pub const TENANT: &str = "acme";

/// The instant generated signals occur at and decisions are made at, as RFC 3339.
pub const NOW_TEXT: &str = "2026-11-22T10:00:00Z";

/// [`NOW_TEXT`] as a timestamp, given to `DecideOptions::now` so that deciding reads no
/// clock for `now`.
pub const NOW: Timestamp = Timestamp::constant(1_795_341_600, 0);

/// Signal payloads draw `lines` from `0..LINES_MAX`, and thresholds `T` from the same range.
pub const LINES_MAX: u32 = 1_000;

/// Signal payloads draw `files` from `0..FILES_MAX`, and thresholds `F` from the same range.
pub const FILES_MAX: u32 = 40;

/// The shape of a nudge workload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NudgeSpec {
    /// Number of playbooks, assigned to kinds round-robin (so each kind gets the same share).
    pub playbooks: usize,
    /// Number of distinct signal kinds, named by [`kind`].
    pub kinds: usize,
    /// Number of signals.
    pub signals: usize,
    /// Number of distinct actors the signals come from.
    pub actors: usize,
}

impl NudgeSpec {
    /// nudge-1k: 1,000 playbooks over 20 kinds (50 candidates per kind), 20,000 signals from
    /// 100 actors.
    pub const NUDGE_1K: NudgeSpec = NudgeSpec {
        playbooks: 1_000,
        kinds: 20,
        signals: 20_000,
        actors: 100,
    };
}

/// Generated playbooks, the signals to decide on, and the context to pass with them.
#[derive(Debug, Clone)]
pub struct Workload {
    /// Every playbook, as one multi-document YAML text for `PlaybookSet::from_yaml`.
    pub yaml: String,
    /// Signals, as the JSON envelopes `Engine::decide` takes.
    pub signals: Vec<Value>,
    /// The context to decide with (`None`: no context).
    pub context: Option<Value>,
}

/// The name of the `i`-th signal kind: `kind.k00`, `kind.k01`, …
pub fn kind(i: usize) -> String {
    format!("kind.k{i:02}")
}

/// The id of the `i`-th generated playbook: `nudge-00000`, `nudge-00001`, …
pub fn playbook_id(i: usize) -> String {
    format!("nudge-{i:05}")
}

/// One playbook document: for `trigger`, when `condition` holds, a mirror action on the IDE
/// that reports the change's size. No fatigue limits.
pub fn playbook_yaml(id: &str, trigger: &str, condition: &str) -> String {
    // The condition is quoted as a YAML string: `'…'` with `'` doubled.
    let when = condition.replace('\'', "''");
    format!(
        "apiVersion: mmm/v1
kind: Playbook
metadata: {{id: {id}, version: 1, tenant: \"*\", status: published, category: size}}
spec:
  triggers: [{trigger}]
  when: '{when}'
  actions:
    - type: mirror
      surfaces: [ide]
      title: Size
      text: \"This change touches {{{{ signal.payload.lines }}}} lines in {{{{ signal.payload.files }}}} files.\"
"
    )
}

/// The nudge condition `signal.payload.lines > T && signal.payload.files > F`, which the
/// engine evaluates natively.
pub fn size_condition(lines: u32, files: u32) -> String {
    format!("signal.payload.lines > {lines} && signal.payload.files > {files}")
}

/// Joins YAML documents into one multi-document text.
fn join_documents(documents: impl IntoIterator<Item = String>) -> String {
    let mut yaml = String::new();
    for doc in documents {
        if !yaml.is_empty() {
            yaml.push_str("---\n");
        }
        yaml.push_str(&doc);
    }
    yaml
}

/// `count` nudge playbooks on `trigger`, with random thresholds, ids starting at `first_id`.
fn size_playbooks(rng: &mut StdRng, first_id: usize, count: usize, trigger: &str) -> Vec<String> {
    (first_id..first_id + count)
        .map(|i| {
            let condition = size_condition(
                rng.random_range(0..LINES_MAX),
                rng.random_range(0..FILES_MAX),
            );
            playbook_yaml(&playbook_id(i), trigger, &condition)
        })
        .collect()
}

/// A signal of `kind` from `actor` with a random size payload.
fn size_signal(rng: &mut StdRng, kind: &str, actor: usize) -> Value {
    json!({
        "tenant_id": TENANT,
        "actor_id": format!("dev-{actor}"),
        "kind": kind,
        "occurred_at": NOW_TEXT,
        "payload": {
            "lines": rng.random_range(0..LINES_MAX),
            "files": rng.random_range(0..FILES_MAX),
        },
    })
}

/// A nudge workload: `spec.playbooks` playbooks assigned to kinds round-robin, each with
/// random thresholds, and `spec.signals` signals of a random kind, size and actor. With the
/// thresholds and payloads drawn from the same ranges, about a quarter of a kind's
/// playbooks match a signal.
pub fn nudge(spec: NudgeSpec, seed: u64) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let kinds = spec.kinds.max(1);
    let actors = spec.actors.max(1);
    let documents = (0..spec.playbooks).map(|i| {
        let condition = size_condition(
            rng.random_range(0..LINES_MAX),
            rng.random_range(0..FILES_MAX),
        );
        playbook_yaml(&playbook_id(i), &kind(i % kinds), &condition)
    });
    let yaml = join_documents(documents.collect::<Vec<_>>());
    let signals = (0..spec.signals)
        .map(|_| {
            let k = kind(rng.random_range(0..kinds));
            let actor = rng.random_range(0..actors);
            size_signal(&mut rng, &k, actor)
        })
        .collect();
    Workload {
        yaml,
        signals,
        context: None,
    }
}

/// The nudge-1k workload with the standard seed.
pub fn nudge_1k() -> Workload {
    nudge(NudgeSpec::NUDGE_1K, SEED)
}

/// The scaling workload: `per_kind` playbooks on `kind.k00` (the benchmarked kind) and
/// `total - per_kind` more, `per_kind` per kind, on other kinds; `signals` signals, all of
/// `kind.k00`, from 100 actors.
///
/// The `kind.k00` playbooks and the signals depend only on `per_kind`, `signals` and
/// `seed`, never on `total`, so two sizes decide on exactly the same candidates and the
/// only difference is how many other playbooks are loaded.
pub fn scaling(total: usize, per_kind: usize, signals: usize, seed: u64) -> Workload {
    let hot = kind(0);
    let mut hot_rng = StdRng::seed_from_u64(seed);
    let mut documents = size_playbooks(&mut hot_rng, 0, per_kind.min(total), &hot);
    // Separate streams, so that the hot playbooks and the signals are the same whatever the
    // number of other playbooks.
    let mut other_rng = StdRng::seed_from_u64(seed.wrapping_add(1));
    let others = total.saturating_sub(per_kind);
    let share = per_kind.max(1);
    let mut done = 0;
    while done < others {
        let count = share.min(others - done);
        let trigger = kind(1 + done / share);
        documents.extend(size_playbooks(
            &mut other_rng,
            per_kind + done,
            count,
            &trigger,
        ));
        done += count;
    }
    let mut signal_rng = StdRng::seed_from_u64(seed.wrapping_add(2));
    let signals = (0..signals)
        .map(|_| {
            let actor = signal_rng.random_range(0..100);
            size_signal(&mut signal_rng, &hot, actor)
        })
        .collect();
    Workload {
        yaml: join_documents(documents),
        signals,
        context: None,
    }
}

/// How a benchmarked condition is evaluated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConditionPath {
    /// `signal.payload.lines > T && signal.payload.files > F`: the native evaluator.
    Native,
    /// `signal.payload.lines > T && signal.repo.branch.starts_with("release/")`: a method
    /// call. Named for the path it took until `starts_with` on a literal joined the native
    /// subset (issue 11); it now runs natively, and the name keeps its figures comparable.
    RhaiStartsWith,
    /// `signal.payload.lines > T && recent_count("ci.failed", "1h") > 2`: a helper call
    /// over the context's recent signals, on Rhai.
    RhaiRecentCount,
}

impl ConditionPath {
    /// Every path, in the order they are benchmarked.
    pub const ALL: [ConditionPath; 3] = [
        ConditionPath::Native,
        ConditionPath::RhaiStartsWith,
        ConditionPath::RhaiRecentCount,
    ];

    /// A short name for benchmark ids.
    pub fn name(self) -> &'static str {
        match self {
            ConditionPath::Native => "native",
            ConditionPath::RhaiStartsWith => "rhai_starts_with",
            ConditionPath::RhaiRecentCount => "rhai_recent_count",
        }
    }

    /// Whether the condition runs natively (without Rhai).
    pub fn is_native(self) -> bool {
        self != ConditionPath::RhaiRecentCount
    }

    /// The condition with thresholds `lines` and `files`.
    pub fn condition(self, lines: u32, files: u32) -> String {
        match self {
            ConditionPath::Native => size_condition(lines, files),
            ConditionPath::RhaiStartsWith => format!(
                "signal.payload.lines > {lines} && signal.repo.branch.starts_with(\"release/\")"
            ),
            ConditionPath::RhaiRecentCount => {
                format!("signal.payload.lines > {lines} && recent_count(\"ci.failed\", \"1h\") > 2")
            }
        }
    }
}

/// A context whose `recent_signals` hold three `ci.failed` signals in the hour before
/// [`NOW`], one older, and one of another kind: `recent_count("ci.failed", "1h")` is 3.
pub fn recent_context() -> Value {
    let recent = |kind: &str, at: &str| {
        json!({"tenant_id": TENANT, "actor_id": "dev-0", "kind": kind, "occurred_at": at,
               "payload": {"pipeline": "build-and-test"}})
    };
    json!({
        "recent_signals": [
            recent("ci.failed", "2026-11-22T09:55:00Z"),
            recent("ci.failed", "2026-11-22T09:40:00Z"),
            recent("pr.updated", "2026-11-22T09:35:00Z"),
            recent("ci.failed", "2026-11-22T09:20:00Z"),
            recent("ci.failed", "2026-11-22T07:00:00Z"),
        ]
    })
}

/// The condition-path workload: `candidates` playbooks on `kind.k00` whose conditions take
/// `path`, with random thresholds; `signals` signals of `kind.k00` with a random size and a
/// branch that is a release branch about one time in three; the context of
/// [`recent_context`]. The thresholds and signals are the same for every path.
pub fn condition_workload(
    path: ConditionPath,
    candidates: usize,
    signals: usize,
    seed: u64,
) -> Workload {
    let trigger = kind(0);
    let mut rng = StdRng::seed_from_u64(seed);
    let documents: Vec<String> = (0..candidates)
        .map(|i| {
            let condition = path.condition(
                rng.random_range(0..LINES_MAX),
                rng.random_range(0..FILES_MAX),
            );
            playbook_yaml(&playbook_id(i), &trigger, &condition)
        })
        .collect();
    let mut signal_rng = StdRng::seed_from_u64(seed.wrapping_add(1));
    let signals = (0..signals)
        .map(|_| {
            let actor = signal_rng.random_range(0..100);
            let mut signal = size_signal(&mut signal_rng, &trigger, actor);
            let branch = match signal_rng.random_range(0..3) {
                0 => "release/2026.11".to_owned(),
                1 => "main".to_owned(),
                _ => format!("feat/change-{}", signal_rng.random_range(0..10_000)),
            };
            if let Value::Object(map) = &mut signal {
                map.insert(
                    "repo".to_owned(),
                    json!({"id": "acme/api", "branch": branch}),
                );
            }
            signal
        })
        .collect();
    Workload {
        yaml: join_documents(documents),
        signals,
        context: Some(recent_context()),
    }
}

/// The workspace root (the parent of this crate).
fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().map(PathBuf::from).unwrap_or(manifest)
}

/// The bundled playbooks directory, `playbooks/` at the workspace root.
pub fn bundled_playbooks_dir() -> PathBuf {
    workspace_root().join("playbooks")
}

/// Reads one of the example inputs under `examples/signals/` at the workspace root.
///
/// # Errors
/// A message naming the file when it cannot be read or is not JSON.
pub fn example_json(name: &str) -> Result<Value, String> {
    let path = workspace_root().join("examples").join("signals").join(name);
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// The example large pull request (`examples/signals/large-pr.json`: `pr.opened`, 420 lines
/// in 12 files on a feature branch) and the example context (`examples/signals/context.json`:
/// recent CI failures, tenant policy with quiet hours and a budget, preferences, a policy
/// snapshot), with the instant to decide at: the signal's `occurred_at`.
///
/// # Errors
/// As [`example_json`], or when the signal has no valid `occurred_at`.
pub fn large_pr_example() -> Result<(Value, Value, Timestamp), String> {
    let signal = example_json("large-pr.json")?;
    let context = example_json("context.json")?;
    let now = signal
        .get("occurred_at")
        .and_then(Value::as_str)
        .ok_or("large-pr.json has no `occurred_at`")?
        .parse::<Timestamp>()
        .map_err(|e| format!("large-pr.json `occurred_at`: {e}"))?;
    Ok((signal, context, now))
}

/// A fatigue store that can be emptied between iterations: an [`InMemoryFatigue`] behind
/// a swappable pointer. Benchmarks use it to measure, again and again, a decision whose
/// fatigue checks pass (the actor's first nudge) without rebuilding the engine, which would
/// also drop what a long-running engine keeps warm (compiled globs, for instance). The
/// pointer costs one uncontended read lock per check.
#[derive(Debug, Default)]
pub struct ResettableFatigue {
    current: RwLock<Arc<InMemoryFatigue>>,
}

impl ResettableFatigue {
    /// An empty store.
    pub fn new() -> Self {
        ResettableFatigue::default()
    }

    /// Forgets every firing.
    pub fn reset(&self) {
        // A poisoned lock still holds a valid pointer: keep going.
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        *current = Arc::new(InMemoryFatigue::new());
    }

    fn store(&self) -> Arc<InMemoryFatigue> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }
}

impl FatigueStore for ResettableFatigue {
    fn check_and_record(
        &self,
        request: &FatigueRequest<'_>,
    ) -> Result<FatigueVerdict, FatigueError> {
        self.store().check_and_record(request)
    }

    fn record(
        &self,
        tenant_id: &str,
        actor_id: &str,
        playbook_id: &str,
        at: Timestamp,
        actions: u32,
    ) -> Result<(), FatigueError> {
        self.store()
            .record(tenant_id, actor_id, playbook_id, at, actions)
    }
}

/// The limits and playbooks of the fatigue benchmark: eight playbooks used in turn, each
/// with a 1 h cooldown and at most 3 firings per 7 days, and an actor budget of 10 actions
/// per day.
#[derive(Debug, Clone)]
pub struct FatigueLoad {
    /// Eight playbook ids (requests borrow them).
    pub playbooks: Vec<String>,
    /// Cooldown per playbook.
    pub cooldown: mmm_engine::Duration,
    /// Firings per window, per playbook.
    pub max: (u32, mmm_engine::Duration),
    /// Actions per window, per actor.
    pub budget: (u32, mmm_engine::Duration),
}

impl FatigueLoad {
    /// The benchmark's limits.
    ///
    /// # Errors
    /// When a duration does not parse (it always does).
    pub fn new() -> Result<FatigueLoad, String> {
        let parse =
            |text: &str| mmm_engine::Duration::parse(text).map_err(|e| format!("`{text}`: {e}"));
        Ok(FatigueLoad {
            playbooks: (0..8).map(playbook_id).collect(),
            cooldown: parse("1h")?,
            max: (3, parse("7d")?),
            budget: (10, parse("1d")?),
        })
    }

    /// The `n`-th request of a run for `actor`: the playbooks in turn, `n` minutes after
    /// [`NOW`] (a busy actor with a signal a minute), so history both grows and is pruned
    /// and every verdict (allowed, cooldown, max, budget) occurs.
    pub fn request<'a>(&'a self, actor: &'a str, n: u64) -> FatigueRequest<'a> {
        let slot = usize::try_from(n % 8).unwrap_or(0);
        let playbook_id = self
            .playbooks
            .get(slot)
            .map_or("nudge-00000", String::as_str);
        let minutes = i64::try_from(n).unwrap_or(i64::MAX);
        let now = NOW
            .checked_add(jiff::SignedDuration::from_mins(minutes))
            .unwrap_or(NOW);
        FatigueRequest {
            tenant_id: TENANT,
            actor_id: actor,
            playbook_id,
            now,
            actions: 1,
            cooldown: Some(self.cooldown),
            max: Some(self.max),
            budget: Some(self.budget),
            critical: false,
        }
    }
}

/// The workload's signals in turn, round and round: each call gives the next one. The
/// criterion loops decide one signal per iteration with it.
pub fn in_turn<'a>(signals: &'a [Value]) -> impl FnMut() -> &'a Value {
    let mut next = 0;
    move || {
        let signal = signals.get(next % signals.len().max(1));
        next = next.wrapping_add(1);
        signal.unwrap_or(&Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_now_text() {
        assert_eq!(NOW.to_string(), NOW_TEXT);
    }

    #[test]
    fn workloads_are_deterministic() {
        let a = nudge(
            NudgeSpec {
                playbooks: 40,
                kinds: 4,
                signals: 10,
                actors: 3,
            },
            7,
        );
        let b = nudge(
            NudgeSpec {
                playbooks: 40,
                kinds: 4,
                signals: 10,
                actors: 3,
            },
            7,
        );
        assert_eq!(a.yaml, b.yaml);
        assert_eq!(a.signals, b.signals);
    }

    #[test]
    fn scaling_keeps_the_benchmarked_kind_identical() {
        let small = scaling(200, 50, 20, SEED);
        let large = scaling(1_000, 50, 20, SEED);
        let hot = |w: &Workload| {
            w.yaml
                .split("---\n")
                .filter(|d| d.contains("[kind.k00]"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        assert_eq!(hot(&small).len(), 50);
        assert_eq!(hot(&small), hot(&large));
        assert_eq!(small.signals, large.signals);
        assert_eq!(large.yaml.matches("apiVersion:").count(), 1_000);
    }
}
