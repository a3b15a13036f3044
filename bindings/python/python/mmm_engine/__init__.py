"""mmm_engine: decide which nudges a developer should see, in-process.

The engine runs in Rust; every ``Engine`` call releases the GIL while it works, so one
``Engine`` serves many threads. Ports are plain Python objects with the methods of
SPEC §5 (``llm.generate(request)``, ``receipts.emit(envelope)``, ``policy.snapshot(tenant_id)``…);
an exception raised by a port means that dependency is down, and the engine's degraded
modes apply. Raise :class:`Rejected` for a business answer (a deny, a not-found).

Every error is an :class:`MmmError` with a stable ``code``; each code has one subclass
(``ERROR_CLASSES`` maps codes to classes).
"""

from ._native import (
    ApprovalError,
    AuditFailedError,
    ConfigError,
    ConflictError,
    ContextError,
    DurationError,
    ERROR_CLASSES,
    Engine,
    ForbiddenError,
    IoError,
    JsonError,
    MmmError,
    NotFoundError,
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
    "ConfigError",
    "ConflictError",
    "ContextError",
    "DurationError",
    "ERROR_CLASSES",
    "Engine",
    "ForbiddenError",
    "IoError",
    "JsonError",
    "MmmError",
    "NotFoundError",
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
