//! The last stage, the report: the observer gets each stage's span and one `Decision`
//! event. Stages are timed only when an observer wants events.

use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use crate::model::ActionType;
use crate::observe::{spans, Event, Observer};
use crate::pipeline::record::DecisionRecord;
use crate::signal::Signal;

/// The spans of one decision, reported at its end.
pub(crate) struct Spans {
    pub started: Instant,
    done: Vec<(&'static str, StdDuration, StdDuration)>,
    on: bool,
}

impl Spans {
    /// Starts the clock of a decision; stages are timed when `observer` wants events.
    pub fn start(observer: &dyn Observer) -> Spans {
        Spans {
            started: Instant::now(),
            done: Vec::new(),
            on: observer.enabled(),
        }
    }

    /// Runs one stage, timing it as the span `name`.
    pub fn time<T>(&mut self, name: &'static str, f: impl FnOnce() -> T) -> T {
        if !self.on {
            return f();
        }
        let start = self.started.elapsed();
        let out = f();
        self.done
            .push((name, start, self.started.elapsed().saturating_sub(start)));
        out
    }
}

/// Reports the decision and its spans to the observer.
pub(crate) fn report(
    observer: &Arc<dyn Observer>,
    signal: &Signal,
    record: &DecisionRecord,
    latency: StdDuration,
    spans: &Spans,
) {
    if !spans.on {
        return;
    }
    let mut by_type: Vec<(ActionType, usize)> = Vec::new();
    for a in &record.actions {
        match by_type.iter_mut().find(|(t, _)| *t == a.kind) {
            Some((_, n)) => *n += 1,
            None => by_type.push((a.kind, 1)),
        }
    }
    for (name, start, duration) in &spans.done {
        observer.on_event(&Event::Span {
            name,
            start: *start,
            duration: *duration,
        });
    }
    observer.on_event(&Event::Span {
        name: spans::DECIDE,
        start: StdDuration::ZERO,
        duration: latency,
    });
    observer.on_event(&Event::Decision {
        tenant_id: &signal.tenant_id,
        actor_type: signal.actor_type,
        degraded: &record.degraded,
        latency,
        actions: &by_type,
    });
}
