"""mmm_engine: decide which nudges a developer should see, in-process.

The engine runs in Rust; ``Engine.decide`` releases the GIL while it works, so one
``Engine`` serves many threads. Ports are plain Python objects with the methods of
SPEC §5 (``llm.generate(request)``, ``receipts.emit(envelope)``, ``policy.snapshot(tenant_id)``…);
an exception raised by a port means that dependency is down, and the engine's degraded
modes apply. Raise :class:`Rejected` for a business answer (a deny, a not-found).
"""

from ._native import (
    ApprovalError,
    AuditFailedError,
    ContextError,
    Engine,
    ForbiddenError,
    MmmError,
    OutcomeError,
    PlaybookError,
    ReceiptError,
    Rejected,
    SignalError,
    UnavailableError,
    __version__,
    generate_key,
    validate,
    verify_chain,
    verify_receipt,
)

__all__ = [
    "ApprovalError",
    "AuditFailedError",
    "ContextError",
    "Engine",
    "ForbiddenError",
    "MmmError",
    "OutcomeError",
    "PlaybookError",
    "ReceiptError",
    "Rejected",
    "SignalError",
    "UnavailableError",
    "__version__",
    "generate_key",
    "validate",
    "verify_chain",
    "verify_receipt",
]
