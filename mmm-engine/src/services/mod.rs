//! The services the pipeline's stages use, split out of the engine so that each stage is
//! given only what it needs: the port hub (ports, breakers, call pool, caches), the
//! experiments (assignment, arm state, status, statistics), the receipt trail (signer,
//! outbox, outbox worker) and the action memory (returned actions, outcome counts).

pub(crate) mod action_memory;
pub(crate) mod experiments;
pub(crate) mod port_hub;
pub(crate) mod receipt_trail;
