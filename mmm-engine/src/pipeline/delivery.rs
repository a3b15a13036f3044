//! The delivery stage: with a delivery port, each returned action is handed to it once
//! per surface, through the port hub, without waiting for the answers (they go to the
//! observer from a pool thread).

use std::sync::Arc;
use std::time::Instant;

use crate::decision::Action;
use crate::observe::{Event, Observer};
use crate::ports::{Delivery, PortName};
use crate::services::port_hub::PortHub;

/// Starts one delivery call per action and surface.
pub(crate) fn deliver(
    hub: &PortHub,
    port: &Arc<dyn Delivery>,
    actions: &[Action],
    deadline: Instant,
    observer: &Arc<dyn Observer>,
) {
    let timeout = hub.timeouts.delivery;
    let mut calls = Vec::new();
    for action in actions {
        for surface in action.surfaces.iter() {
            let rendered = action.rendered.get(surface).cloned().unwrap_or_default();
            let (p, a, s) = (Arc::clone(port), action.clone(), *surface);
            let call = hub.start(
                PortName::Delivery,
                timeout,
                deadline.max(Instant::now() + timeout),
                move || p.deliver(&a, s, &rendered),
            );
            calls.push((s, call));
        }
    }
    // Outcomes are reported from a pool thread so that the decision does not wait.
    let observer = Arc::clone(observer);
    // With no thread at all the delivery calls were refused the same way, and their
    // outcomes go unreported.
    let _ = hub.spawn(move || {
        for (surface, call) in calls {
            let ok = call.wait().is_ok();
            observer.on_event(&Event::Delivery { surface, ok });
        }
    });
}
