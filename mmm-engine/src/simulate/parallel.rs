//! A replay of NDJSON lines spread over threads by actor, with exactly the outcome of one
//! [`Replay`] stepping through the lines in order.
//!
//! Each actor belongs to one worker (by a hash of tenant and actor), which keeps that
//! actor's history and decides its signals in input order. That equals the sequential
//! replay because nothing on the decision path is shared between actors (see
//! `Engine::independent_actors`), and it is only done while both engines say so for the
//! number of distinct actors seen.
//!
//! A worker reads (parses) its own lines and drops its own decisions: the memory of a
//! signal, its history entry and its decision is allocated and freed on one thread. A line
//! is routed by a scan that reads only its tenant and actor, exactly as the replay's
//! history looks them up in the parsed value (see [`route_key`]).

use std::borrow::Cow;
use std::fmt;

use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;

use super::{signal_of, text, FastMap, Replay, ReplayReport};
use crate::decision::Decision;
use crate::engine::Engine;
use crate::error::{DecideError, ErrorInfo};
use crate::number::JsonTextError;

/// What a replay of NDJSON lines made of one non-blank line (see [`replay_lines`]).
// Nearly every line is a decision: boxing it would cost an allocation per line to save
// space only on the lines that are not JSON.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum LineOutcome {
    /// The line is not JSON the engine reads (recorded as rejected).
    Unreadable(JsonTextError),
    /// The primary engine's decision, or its error (recorded as rejected).
    Decided(Result<Decision, DecideError>),
}

/// Lines [`replay_lines`] reads and decides per round. A round's decisions are held until
/// they are emitted in order, so a smaller round keeps more of them in the cache: on
/// nudge-1k (about 10 kB allocated per decision) 512 replays 4–7 % faster than 2,048, and
/// 256 is no faster again (`docs/perf-notes/round9.md`).
const BATCH: usize = 512;

/// Replays NDJSON `lines` (line 1 first; blank lines skipped) through `primary`,
/// compared with `shadow` when given, on up to `threads` threads, with exactly the outcome
/// of one [`Replay`] stepping through the lines in order. `emit` gets each non-blank
/// line's number and outcome, in input order; its error stops the replay.
///
/// Lines are decided on several threads only while both engines' decisions for one actor
/// cannot depend on another's for the number of distinct actors seen so far (see
/// `Engine::independent_actors`). Once that number is passed, or from the start when an
/// engine shares state between actors (a receipt signer's chain, a port), the workers'
/// histories are gathered into one replay and the rest is decided on this thread, in
/// order. The report counts the same and lists rejections and differences in input order.
///
/// ```
/// use mmm_engine::{simulate::{replay_lines, LineOutcome}, Engine, PlaybookSet};
/// let set = PlaybookSet::from_yaml(r#"
/// apiVersion: mmm/v1
/// kind: Playbook
/// metadata: {id: hello, version: 1, tenant: "*", status: published}
/// spec:
///   triggers: [pr.opened]
///   actions: [{type: mirror, surfaces: [ide], title: Hi, text: "A pull request was opened."}]
/// "#)?;
/// let engine = Engine::builder().playbooks(set).build();
/// let line = r#"{"tenant_id": "acme", "actor_id": "dev-1", "kind": "pr.opened", "occurred_at": "2026-11-22T10:00:00Z"}"#;
/// let mut actions = 0;
/// let report = replay_lines(&engine, None, 2, &[line, "", "not json"], |_, outcome| {
///     if let LineOutcome::Decided(Ok(d)) = outcome {
///         actions += d.actions.len();
///     }
///     Ok::<(), ()>(())
/// }).unwrap();
/// assert_eq!((actions, report.replayed, report.rejected[0].line), (1, 1, 3));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
///
/// # Errors
/// The first error `emit` returns.
pub fn replay_lines<E>(
    primary: &Engine,
    shadow: Option<&Engine>,
    threads: usize,
    lines: &[&str],
    mut emit: impl FnMut(usize, &LineOutcome) -> Result<(), E>,
) -> Result<ReplayReport, E> {
    let limit = shadow.map_or(primary.independent_actors(), |s| {
        primary.independent_actors().min(s.independent_actors())
    });
    let mut local = Replay::new(primary, shadow);
    if limit == 0 || threads <= 1 || lines.len() <= BATCH {
        step_all(&mut local, 0, lines, &mut emit)?;
        return Ok(local.finish());
    }
    std::thread::scope(|scope| {
        let mut workers: Vec<Worker<'_, '_>> = (1..threads)
            .map(|_| Worker::spawn(scope, primary, shadow))
            .collect();
        let result = run(&mut local, &mut workers, limit, lines, &mut emit);
        for worker in workers {
            local.absorb(worker.stop());
        }
        result.map(|()| local.finish())
    })
}

/// The replay on this thread and `workers`, until every line is decided or `emit` fails.
fn run<'l, 'e: 'l, E>(
    local: &mut Replay<'e>,
    workers: &mut Vec<Worker<'l, 'e>>,
    limit: usize,
    lines: &'l [&'l str],
    emit: &mut impl FnMut(usize, &LineOutcome) -> Result<(), E>,
) -> Result<(), E> {
    let mut seen = Actors::default();
    // What each worker returned last round, handed back to be dropped where it was made.
    let mut returned: Vec<Vec<(usize, LineOutcome)>> = workers.iter().map(|_| Vec::new()).collect();
    // Lines before this one were decided on several threads.
    let mut rest = lines.len();
    for (batch, chunk) in lines.chunks(BATCH).enumerate() {
        let first = batch * BATCH + 1;
        let n = workers.len() + 1;
        // Per worker (0 is this thread): positions in the chunk.
        let mut queues: Vec<Vec<usize>> = (0..n).map(|_| Vec::new()).collect();
        for (i, key) in route_on(workers, chunk).into_iter().enumerate() {
            let Some((tenant, actor)) = key else { continue };
            seen.add(&tenant, &actor);
            if let Some(queue) = queues.get_mut(worker_of(&tenant, &actor, n)) {
                queue.push(i);
            }
        }
        if seen.count > limit {
            // From this chunk on, one thread: every actor's history comes here.
            for worker in workers.drain(..) {
                local.absorb(worker.stop());
            }
            // The workers have stopped: what they returned last round is dropped here,
            // before the rest is replayed, rather than held until the end.
            drop(returned);
            rest = first - 1;
            break;
        }
        let mut queues = queues.into_iter();
        let mine = queues.next().unwrap_or_default();
        for ((worker, queue), garbage) in workers.iter().zip(queues).zip(returned.iter_mut()) {
            worker.send(Job::Decide {
                first,
                chunk,
                positions: queue,
                garbage: std::mem::take(garbage),
            });
        }
        let decided_here = decide_at(local, first, chunk, mine);
        let mut outcomes: Vec<Option<(usize, usize)>> = (0..chunk.len()).map(|_| None).collect();
        let mut answers: Vec<Vec<(usize, LineOutcome)>> = Vec::with_capacity(n);
        answers.push(decided_here);
        for worker in workers.iter() {
            answers.push(worker.receive());
        }
        for (w, answer) in answers.iter().enumerate() {
            for (k, (i, _)) in answer.iter().enumerate() {
                if let Some(slot) = outcomes.get_mut(*i) {
                    *slot = Some((w, k));
                }
            }
        }
        for (i, slot) in outcomes.into_iter().enumerate() {
            let Some((w, k)) = slot else { continue };
            if let Some((_, outcome)) = answers.get(w).and_then(|a| a.get(k)) {
                emit(first + i, outcome)?;
            }
        }
        let mut answers = answers.into_iter();
        drop(answers.next());
        returned = answers.collect();
    }
    step_all(local, rest, lines.get(rest..).unwrap_or_default(), emit)
}

/// Reads and decides `lines` in order, the first being input line `before + 1`, and emits
/// each outcome.
fn step_all<E>(
    replay: &mut Replay<'_>,
    before: usize,
    lines: &[&str],
    emit: &mut impl FnMut(usize, &LineOutcome) -> Result<(), E>,
) -> Result<(), E> {
    for (i, line) in lines.iter().enumerate() {
        if let Some(outcome) = replay.step_line(before + i + 1, line) {
            emit(before + i + 1, &outcome)?;
        }
    }
    Ok(())
}

/// Reads and decides the lines of `chunk` at `positions` (the chunk's first line is input
/// line `first`): each non-blank line's position and outcome.
fn decide_at(
    replay: &mut Replay<'_>,
    first: usize,
    chunk: &[&str],
    positions: Vec<usize>,
) -> Vec<(usize, LineOutcome)> {
    positions
        .into_iter()
        .filter_map(|i| {
            let line = chunk.get(i)?;
            replay.step_line(first + i, line).map(|o| (i, o))
        })
        .collect()
}

/// The rejection of a line that is not JSON the engine reads.
pub(crate) fn unreadable(e: &JsonTextError) -> ErrorInfo {
    let message = match &e.field {
        Some(f) => format!("field `{f}`: {}", e.message),
        None => e.message.clone(),
    };
    ErrorInfo::new(crate::error::codes::SIGNAL_INVALID, message)
}

/// A line read as JSON: `None` when blank.
pub(crate) fn parse_line(line: &str) -> Option<Result<Value, JsonTextError>> {
    (!line.trim().is_empty()).then(|| crate::number::parse_json(line))
}

/// The distinct (tenant, actor) pairs of a replay, counted.
#[derive(Default)]
struct Actors {
    by_tenant: FastMap<String, FastMap<String, ()>>,
    count: usize,
}

impl Actors {
    fn add(&mut self, tenant: &str, actor: &str) {
        let actors = match self.by_tenant.get_mut(tenant) {
            Some(actors) => actors,
            None => self.by_tenant.entry(tenant.to_owned()).or_default(),
        };
        if !actors.contains_key(actor) {
            actors.insert(actor.to_owned(), ());
            self.count += 1;
        }
    }
}

/// The worker (of `workers`) an actor belongs to.
fn worker_of(tenant: &str, actor: &str, workers: usize) -> usize {
    let hasher = foldhash::fast::FixedState::with_seed(0);
    let h = std::hash::BuildHasher::hash_one(&hasher, (tenant, actor));
    usize::try_from(h % workers.max(1) as u64).unwrap_or(0)
}

/// A line's tenant and actor, as the replay looks its history up: `None` for a blank line.
type RouteKey<'l> = Option<(Cow<'l, str>, Cow<'l, str>)>;

/// The tenant and actor of a non-blank line, exactly as `text(signal_of(value), ..)` reads
/// them from the parsed value: the input's `signal` member when it has one (the last, as
/// for a parsed object) and the input otherwise; a member that is absent or not a string
/// is `""`. Only those members are decoded; the rest of the line is skipped. A line this
/// scan cannot read is parsed in full and read from its value, so every line that could be
/// decided gets the key its history is kept under.
fn route_key(line: &str) -> RouteKey<'_> {
    if line.trim().is_empty() {
        return None;
    }
    let text_only = line.strip_prefix('\u{FEFF}').unwrap_or(line);
    let mut de = serde_json::Deserializer::from_str(text_only);
    let scanned = Scan { nested: false }
        .deserialize(&mut de)
        .and_then(|s| de.end().map(|()| s));
    let scanned = match scanned {
        Ok(s) => s,
        Err(_) => {
            let value = crate::number::parse_json(line).ok();
            let key = value.as_ref().map_or(("", ""), |v| {
                let signal = signal_of(v);
                (text(signal, "tenant_id"), text(signal, "actor_id"))
            });
            return Some((Cow::Owned(key.0.to_owned()), Cow::Owned(key.1.to_owned())));
        }
    };
    let (tenant, actor) = match scanned {
        Scanned::Object {
            signal: Some(signal),
            ..
        } => match *signal {
            Scanned::Object { tenant, actor, .. } => (tenant, actor),
            Scanned::Other => (None, None),
        },
        Scanned::Object { tenant, actor, .. } => (tenant, actor),
        Scanned::Other => (None, None),
    };
    Some((
        tenant.unwrap_or(Cow::Borrowed("")),
        actor.unwrap_or(Cow::Borrowed("")),
    ))
}

/// What the scan of a value kept.
enum Scanned<'l> {
    Object {
        tenant: Option<Cow<'l, str>>,
        actor: Option<Cow<'l, str>>,
        /// The `signal` member (only read at the top).
        signal: Option<Box<Scanned<'l>>>,
    },
    Other,
}

/// Scans a value: of an object, its `tenant_id`, `actor_id` and (at the top) `signal`.
struct Scan {
    nested: bool,
}

impl<'de> DeserializeSeed<'de> for Scan {
    type Value = Scanned<'de>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// A member name, as far as the scan cares.
enum Member {
    Tenant,
    Actor,
    Signal,
    Other,
}

impl<'de> de::Deserialize<'de> for Member {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Member;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Member, E> {
                Ok(match s {
                    "tenant_id" => Member::Tenant,
                    "actor_id" => Member::Actor,
                    "signal" => Member::Signal,
                    _ => Member::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A member's value when it is a string (borrowed from the line when it has no escape).
struct MaybeText<'l>(Option<Cow<'l, str>>);

impl<'de> de::Deserialize<'de> for MaybeText<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MaybeText<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(MaybeText(Some(Cow::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(MaybeText(Some(Cow::Owned(s.to_owned()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(MaybeText(None))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(MaybeText(None))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(MaybeText(None))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(MaybeText(None))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(MaybeText(None))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_seq(seq).map(|_| MaybeText(None))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                IgnoredAny.visit_map(map).map(|_| MaybeText(None))
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Visitor<'de> for Scan {
    type Value = Scanned<'de>;
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Scanned::Other)
    }
    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Scanned::Other)
    }
    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Scanned::Other)
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Scanned::Other)
    }
    fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
        Ok(Scanned::Other)
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(Scanned::Other)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        IgnoredAny.visit_seq(seq).map(|_| Scanned::Other)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let (mut tenant, mut actor, mut signal) = (None, None, None);
        // A member given twice counts with its last value, as in a parsed object.
        while let Some(member) = map.next_key::<Member>()? {
            match member {
                Member::Tenant => tenant = map.next_value::<MaybeText<'de>>()?.0,
                Member::Actor => actor = map.next_value::<MaybeText<'de>>()?.0,
                Member::Signal if !self.nested => {
                    signal = Some(Box::new(map.next_value_seed(Scan { nested: true })?));
                }
                Member::Signal | Member::Other => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(Scanned::Object {
            tenant,
            actor,
            signal,
        })
    }
}

/// Work for a worker thread.
enum Job<'l> {
    /// Read and decide the lines of `chunk` at `positions` (the chunk's first line is
    /// input line `first`); drop `garbage`, the worker's outcomes of the round before.
    Decide {
        first: usize,
        chunk: &'l [&'l str],
        positions: Vec<usize>,
        garbage: Vec<(usize, LineOutcome)>,
    },
    /// The route keys of these lines.
    Route(&'l [&'l str]),
}

/// A worker thread's answer.
enum Answer<'l> {
    Decided(Vec<(usize, LineOutcome)>),
    Routed(Vec<RouteKey<'l>>),
}

/// A thread with its own [`Replay`] of the actors that belong to it. It lives as long as
/// the replay, so that its allocator's thread caches do too.
struct Worker<'l, 'e> {
    jobs: std::sync::mpsc::Sender<Job<'l>>,
    answers: std::sync::mpsc::Receiver<Answer<'l>>,
    thread: std::thread::ScopedJoinHandle<'l, Replay<'e>>,
}

impl<'l, 'e: 'l> Worker<'l, 'e> {
    fn spawn<'env>(
        scope: &'l std::thread::Scope<'l, 'env>,
        primary: &'e Engine,
        shadow: Option<&'e Engine>,
    ) -> Self {
        let (jobs, job_rx) = std::sync::mpsc::channel::<Job<'l>>();
        let (answer_tx, answers) = std::sync::mpsc::channel();
        let thread = scope.spawn(move || {
            let mut replay = Replay::new(primary, shadow);
            for job in job_rx {
                let answer = match job {
                    Job::Decide {
                        first,
                        chunk,
                        positions,
                        garbage,
                    } => {
                        drop(garbage);
                        Answer::Decided(decide_at(&mut replay, first, chunk, positions))
                    }
                    Job::Route(lines) => {
                        Answer::Routed(lines.iter().map(|l| route_key(l)).collect())
                    }
                };
                if answer_tx.send(answer).is_err() {
                    break;
                }
            }
            replay
        });
        Worker {
            jobs,
            answers,
            thread,
        }
    }
}

impl<'l, 'e> Worker<'l, 'e> {
    /// Gives the worker a job. A worker that is gone has panicked, which `stop` passes on.
    fn send(&self, job: Job<'l>) {
        let _ = self.jobs.send(job);
    }

    /// The decisions of the job last given (none when the worker is gone).
    fn receive(&self) -> Vec<(usize, LineOutcome)> {
        match self.answers.recv() {
            Ok(Answer::Decided(d)) => d,
            Ok(Answer::Routed(_)) | Err(_) => Vec::new(),
        }
    }

    /// Ends the thread and takes its replay back.
    fn stop(self) -> Replay<'e> {
        drop(self.jobs);
        match self.thread.join() {
            Ok(replay) => replay,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}

/// Each line's route key, the chunk shared between this thread and the workers.
fn route_on<'l>(workers: &[Worker<'l, '_>], chunk: &'l [&'l str]) -> Vec<RouteKey<'l>> {
    let size = chunk.len().div_ceil(workers.len() + 1).max(1);
    let mut parts = chunk.chunks(size);
    let mine = parts.next().unwrap_or_default();
    let theirs: Vec<(&Worker<'l, '_>, &'l [&'l str])> = workers.iter().zip(parts).collect();
    for (worker, part) in &theirs {
        worker.send(Job::Route(part));
    }
    let mut out: Vec<RouteKey<'l>> = mine.iter().map(|l| route_key(l)).collect();
    for (worker, part) in theirs {
        match worker.answers.recv() {
            Ok(Answer::Routed(keys)) => out.extend(keys),
            // The worker is gone (it panicked, which `stop` passes on): read its part here.
            _ => out.extend(part.iter().map(|l| route_key(l))),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::sync::{Arc, Mutex};
    use std::thread::ThreadId;

    use serde_json::json;

    use super::super::tests::{engine, stable, READERS};
    use super::*;
    use crate::observe::{Event, Observer};
    use crate::{EngineConfig, PlaybookSet};

    /// The READERS set plus a cooldown and a cap, so that fatigue carries from one signal
    /// of an actor to the next.
    fn playbooks() -> String {
        format!(
            "{READERS}---\n{}",
            r#"
apiVersion: mmm/v1
kind: Playbook
metadata: {id: cooled, version: 1, tenant: "*", status: published}
spec:
  triggers: [deploy.done, ci.failed]
  when: signal.payload.n >= 1
  fatigue: {cooldown: 20m, max: 2, window: 2h}
  actions: [{type: mirror, surfaces: [ide], title: Cool, text: "Deployed {{ signal.payload.n }}."}]
"#
        )
    }

    /// `n` input lines from `actors` actors over about three days, with blank lines, lines
    /// that are not JSON, signals the engine refuses, wrapped inputs and contexts.
    fn lines(n: usize, actors: usize) -> Vec<String> {
        let kinds = ["ci.failed", "pr.opened", "pr.merged", "deploy.done"];
        (0..n)
            .map(|i| {
                let actor = format!("dev-{}", (i * 7 + i / 13) % actors);
                let at = format!(
                    "2026-11-{:02}T{:02}:{:02}:00Z",
                    20 + i * 3 / n.max(1),
                    (i / 60) % 24,
                    i % 60
                );
                let signal = json!({"tenant_id": if i % 5 == 0 { "globex" } else { "acme" },
                    "actor_id": actor, "kind": kinds[i % 4], "occurred_at": at,
                    "signal_id": format!("s-{i}"), "payload": {"n": i % 6}});
                match i % 97 {
                    3 => String::new(),
                    5 => "{not json".to_owned(),
                    7 => r#"{"tenant_id": "acme", "actor_id": "dev-1", "kind": "ci.failed"}"#
                        .to_owned(),
                    11 => json!({"signal": signal, "context": {"recent_signals": []}}).to_string(),
                    13 => json!({"signal": signal, "context": {"actor": {"roles": ["dev"]}}})
                        .to_string(),
                    17 => {
                        r#"{"tenant_id": "acme", "n": 123456789012345678901234567890}"#.to_owned()
                    }
                    _ => signal.to_string(),
                }
            })
            .collect()
    }

    /// What a replay emitted, comparable across runs, and its report.
    type Run = (Vec<(usize, Result<Value, String>)>, ReplayReport);

    fn replay(primary: &Engine, shadow: Option<&Engine>, threads: usize, lines: &[String]) -> Run {
        let lines: Vec<&str> = lines.iter().map(String::as_str).collect();
        let mut out = Vec::new();
        let report = replay_lines(primary, shadow, threads, &lines, |line, outcome| {
            out.push((
                line,
                match outcome {
                    LineOutcome::Unreadable(e) => Err(e.message.clone()),
                    LineOutcome::Decided(Ok(d)) => Ok(stable(d, primary)),
                    LineOutcome::Decided(Err(e)) => Err(e.to_string()),
                },
            ));
            Ok::<(), ()>(())
        });
        (out, report.unwrap())
    }

    /// The threads decisions were made on, and each decision's thread in order.
    #[derive(Default)]
    struct Threads(Mutex<BTreeSet<ThreadIdKey>>, Mutex<Vec<String>>);

    #[derive(PartialEq, Eq, PartialOrd, Ord)]
    struct ThreadIdKey(String);

    impl Observer for Threads {
        fn on_event(&self, event: &Event<'_>) {
            if let Event::Decision { .. } = event {
                let id: ThreadId = std::thread::current().id();
                if let Ok(mut ids) = self.0.lock() {
                    ids.insert(ThreadIdKey(format!("{id:?}")));
                }
                if let Ok(mut order) = self.1.lock() {
                    order.push(format!("{id:?}"));
                }
            }
        }
    }

    fn observed(yaml: &str, config: EngineConfig, threads: &Arc<Threads>) -> Engine {
        Engine::builder()
            .playbooks(PlaybookSet::from_yaml(yaml).unwrap())
            .config(config)
            .observer(Arc::clone(threads) as Arc<dyn Observer>)
            .build()
    }

    /// The first difference between two runs, for the failure message.
    fn first_difference(a: &Run, b: &Run) -> String {
        let at = a.0.iter().zip(&b.0).find(|(x, y)| x != y);
        format!("{at:?} / reports equal: {}", a.1 == b.1)
    }

    #[test]
    fn any_number_of_threads_gives_the_one_thread_replay() {
        let yaml = playbooks();
        let shadow_yaml = yaml.replace("> 1", "> 2").replace("20m", "30m");
        let input = lines(3 * BATCH + 100, 12);
        // Fresh engines for each run: fatigue state carries within a replay only.
        let run = |threads: usize| {
            let (primary, shadow) = (engine(&yaml), engine(&shadow_yaml));
            replay(&primary, Some(&shadow), threads, &input)
        };
        let one = run(1);
        // The replay exercises what it should: rejections of both kinds, differences,
        // fatigue suppressions, history read by `recent_count`.
        let (decided, report) = &one;
        assert!(report
            .rejected
            .iter()
            .any(|r| r.error.message.contains("invalid JSON")));
        assert!(report
            .rejected
            .iter()
            .any(|r| r.error.field.as_deref() == Some("occurred_at")));
        assert!(report.differences.len() > 100);
        assert!(report.primary["cooled"]
            .suppressed
            .contains_key("fatigue_cooldown"));
        assert!(report.primary["counts"].actions["mirror"] > 10);
        assert_eq!(
            decided.len(),
            input.iter().filter(|l| !l.trim().is_empty()).count()
        );
        for threads in [2, 3, 8] {
            let many = run(threads);
            assert!(
                many == one,
                "{threads} threads: {}",
                first_difference(&one, &many)
            );
        }
        // Without a shadow too, and against the step-by-step replay.
        let primary = engine(&yaml);
        let mut step = Replay::new(&primary, None);
        let stepped: Vec<(usize, Result<Value, String>)> = input
            .iter()
            .enumerate()
            .filter_map(|(i, l)| {
                step.step_line(i + 1, l).map(|o| {
                    (
                        i + 1,
                        match o {
                            LineOutcome::Unreadable(e) => Err(e.message),
                            LineOutcome::Decided(Ok(d)) => Ok(stable(&d, &primary)),
                            LineOutcome::Decided(Err(e)) => Err(e.to_string()),
                        },
                    )
                })
            })
            .collect();
        let two = replay(&engine(&yaml), None, 2, &input);
        assert!(two.0 == stepped);
        assert_eq!(two.1, step.finish());
    }

    #[test]
    fn the_decisions_are_spread_over_threads_while_actors_are_independent() {
        let threads = Arc::new(Threads::default());
        let e = observed(&playbooks(), EngineConfig::default(), &threads);
        replay(&e, None, 2, &lines(2 * BATCH + 1, 40));
        assert_eq!(threads.0.lock().unwrap().len(), 2);
    }

    #[test]
    fn past_the_actors_a_fatigue_shard_holds_the_replay_goes_on_one_thread() {
        // 320 actors in all is 5 per shard: past 5 actors, one shard could fill up, and a
        // full shard sweeps every actor in it.
        let config = EngineConfig {
            fatigue_max_actors: 64 * 5,
            ..EngineConfig::default()
        };
        let yaml = playbooks();
        // One actor for two batches, then six, with their histories carried over.
        let mut input: Vec<String> = lines(2 * BATCH, 1);
        input.extend(lines(2 * BATCH, 6));
        let one = replay(&e_fresh(&yaml, &config), None, 1, &input);
        assert!(one.1.primary["counts"].actions["mirror"] > 10);
        let threads = Arc::new(Threads::default());
        let e = observed(&yaml, config, &threads);
        assert_eq!(e.independent_actors(), 5);
        let two = replay(&e, None, 2, &input);
        assert!(two == one, "{}", first_difference(&one, &two));
        // From the batch that brought the sixth actor on, every decision was made here.
        let here = format!("{:?}", std::thread::current().id());
        let order = threads.1.lock().unwrap();
        let decided_later = one
            .0
            .iter()
            .filter(|(line, d)| *line > 2 * BATCH && d.is_ok())
            .count();
        assert!(decided_later > BATCH);
        let later = order.len() - decided_later;
        assert!(order[later..].iter().all(|t| *t == here));
        // Before it, the one actor's decisions were all made on one thread.
        assert_eq!(order[..later].iter().collect::<BTreeSet<_>>().len(), 1);
    }

    fn e_fresh(yaml: &str, config: &EngineConfig) -> Engine {
        Engine::builder()
            .playbooks(PlaybookSet::from_yaml(yaml).unwrap())
            .config(config.clone())
            .build()
    }

    #[test]
    fn an_engine_that_shares_state_between_actors_replays_on_one_thread() {
        let threads = Arc::new(Threads::default());
        let signed = Engine::builder()
            .playbooks(PlaybookSet::from_yaml(&playbooks()).unwrap())
            .signing_key(ed25519_dalek::SigningKey::from_bytes(&[7; 32]))
            .observer(Arc::clone(&threads) as Arc<dyn Observer>)
            .build();
        assert_eq!(signed.independent_actors(), 0);
        let input = lines(2 * BATCH + 1, 40);
        let lines: Vec<&str> = input.iter().map(String::as_str).collect();
        let mut seqs = Vec::new();
        replay_lines(&signed, None, 4, &lines, |_, o| {
            if let LineOutcome::Decided(Ok(d)) = o {
                let envelope = d.receipt.envelope.as_ref().unwrap();
                let key = signed.receipt_public_key().unwrap();
                let payload = crate::receipt::verify_receipt(envelope, &key).unwrap();
                seqs.push(payload["chain"]["seq"].as_u64().unwrap());
            }
            Ok::<(), ()>(())
        })
        .unwrap();
        // One chain, in input order, decided on this thread.
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
        assert_eq!(threads.0.lock().unwrap().len(), 1);
        // A shadow that shares state makes the pair sequential too.
        assert!(engine(READERS).independent_actors() > 0);
    }

    #[test]
    fn an_error_of_emit_stops_the_replay() {
        let e = engine(&playbooks());
        let input = lines(3 * BATCH, 40);
        let lines: Vec<&str> = input.iter().map(String::as_str).collect();
        let mut calls = 0;
        let err = replay_lines(&e, None, 2, &lines, |line, _| {
            calls += 1;
            if line > BATCH + 10 {
                Err(line)
            } else {
                Ok(())
            }
        })
        .unwrap_err();
        assert!(err > BATCH + 10 && err < 2 * BATCH);
        assert!(calls < 2 * BATCH);
    }

    #[test]
    fn a_line_is_routed_by_the_tenant_and_actor_its_history_is_kept_under() {
        let cases = [
            r#"{"tenant_id": "acme", "actor_id": "dev-1", "kind": "x"}"#,
            r#"{"actor_id": "dev-1", "tenant_id": "acme", "actor_id": "dev-2"}"#,
            r#"{"signal": {"tenant_id": "t", "actor_id": "a"}, "tenant_id": "x", "actor_id": "y"}"#,
            r#"{"tenant_id": "x", "signal": {"tenant_id": "t", "actor_id": "a"}, "signal": {"actor_id": "b"}}"#,
            r#"{"signal": "text", "tenant_id": "x", "actor_id": "y"}"#,
            r#"{"signal": null, "actor_id": "y"}"#,
            r#"{"signal": [1, {"actor_id": "a"}], "actor_id": "y"}"#,
            r#"{"signal": {"signal": {"actor_id": "deep"}, "actor_id": "a"}}"#,
            r#"{"tenant_id": "ac\u006de", "actor_id": "d\"ev\\1\ud83d\ude00"}"#,
            r#"{"tenant_id": 7, "actor_id": {"id": "a"}, "x": [[[{"actor_id": "no"}]]]}"#,
            r#"{"tenant_id": true, "actor_id": null}"#,
            "\u{FEFF}{\"tenant_id\": \"bom\", \"actor_id\": \"a\"}",
            r#"  {"tenant_id": "ws", "actor_id": "a"}   "#,
            r#"[{"tenant_id": "arr", "actor_id": "a"}]"#,
            r#""just a string""#,
            "42",
            r#"{"tenant_id": "big", "actor_id": "a", "n": 123456789012345678901234567890}"#,
            r#"{"tenant_id": "x", "actor_id": "a"} trailing"#,
            r#"{"tenant_id": "x", "actor_id": "a""#,
            "{\"tenant_id\": \"x\", \"actor_id\": \"a\", \"n\": -0.0, \"f\": 1e400}",
        ];
        for line in cases {
            let key = route_key(line).unwrap();
            let expected = crate::number::parse_json(line).ok().map_or_else(
                || (String::new(), String::new()),
                |v| {
                    let signal = signal_of(&v);
                    (
                        text(signal, "tenant_id").to_owned(),
                        text(signal, "actor_id").to_owned(),
                    )
                },
            );
            // A line that does not parse is rejected whatever its route.
            if crate::number::parse_json(line).is_ok() {
                assert_eq!(
                    (key.0.as_ref(), key.1.as_ref()),
                    (expected.0.as_str(), expected.1.as_str()),
                    "{line}"
                );
            }
        }
        assert_eq!(route_key("   "), None);
        assert_eq!(route_key(""), None);
        // An escape-free member is borrowed from the line.
        let line = r#"{"tenant_id": "acme", "actor_id": "dev-1"}"#;
        assert!(matches!(
            route_key(line),
            Some((Cow::Borrowed(_), Cow::Borrowed(_)))
        ));
    }
}
