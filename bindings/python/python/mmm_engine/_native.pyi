"""Type stubs and documentation of the native module (see ``mmm_engine``)."""

from datetime import datetime
from os import PathLike
from typing import Any, Dict, List, Optional, Protocol, Tuple, Type, Union, final

_JSON = Any
_Key = Union[bytes, str]
_Path = Union[str, "PathLike[str]"]

__version__: str
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

class MmmError(Exception):
    """Base class of every mmm-engine error. Each code has one subclass (``ERROR_CLASSES``);
    attributes carry the structured error (the core's ``ErrorInfo``)."""

    code: str
    message: str
    field: Optional[str]
    rule: Optional[str]
    file: Optional[str]
    line: Optional[int]
    column: Optional[int]
    playbook: Optional[str]

class PlaybookError(MmmError):
    """A playbook or experiment document is invalid (code PLAYBOOK_INVALID).

    ``diagnostics`` lists every problem as ``file:line:col: error[rule]: message``."""

    diagnostics: List[str]

class IoError(PlaybookError):
    """A playbook file or directory cannot be read (code IO)."""

class SignalError(MmmError):
    """The signal envelope is invalid (code SIGNAL_INVALID); ``field`` names the field."""

class ContextError(SignalError):
    """The context is invalid (code CONTEXT_INVALID); ``field`` is a dotted path."""

class UnavailableError(MmmError):
    """A dependency the call cannot do without is down (code UNAVAILABLE; HTTP 503 in a host)."""

class ForbiddenError(MmmError):
    """IAM says the actor is inactive or unknown (code FORBIDDEN; HTTP 403 in a host)."""

class ReceiptError(MmmError):
    """A receipt, chain or key does not verify (code RECEIPT_INVALID)."""

    index: int

class OutcomeError(MmmError):
    """The outcome is invalid (code OUTCOME_INVALID)."""

class ApprovalError(MmmError):
    """The action cannot be approved: it is not a dual-channel multiplier (code APPROVAL_REFUSED)."""

class AuditFailedError(MmmError):
    """The audit sink could not record a change, so the change did not happen (code AUDIT_FAILED)."""

class ConfigError(MmmError):
    """An engine setting is invalid (code CONFIG_INVALID); ``field`` names the key."""

class NotFoundError(MmmError):
    """No approval or experiment has this id (code NOT_FOUND)."""

class ConflictError(MmmError):
    """The approval's state does not allow the change: terminal, or the same channel twice (code CONFLICT)."""

class Rejected(MmmError):
    """Raise from a port for a business answer (code REJECTED): the dependency is up, the breaker counts nothing."""

class DurationError(MmmError):
    """A duration is invalid (code DURATION_INVALID)."""

class JsonError(MmmError):
    """JSON text cannot be read (code JSON_INVALID)."""

ERROR_CLASSES: Dict[str, Type[MmmError]]
"""The exception class of each error code."""

class _IamPort(Protocol):
    def validate_actor(self, tenant_id: str, actor_id: str) -> Dict[str, Any]: ...

class _SignalsPort(Protocol):
    def recent(self, tenant_id: str, actor_id: str, limit: int) -> List[Dict[str, Any]]: ...

class _DataGovernancePort(Protocol):
    def tenant_config(self, tenant_id: str) -> Dict[str, Any]: ...

class _PolicyPort(Protocol):
    def snapshot(self, tenant_id: str) -> Dict[str, Any]: ...

class _LlmPort(Protocol):
    def generate(self, request: Dict[str, Any]) -> Dict[str, Any]: ...

class _ReceiptsPort(Protocol):
    def emit(self, envelope: Dict[str, Any]) -> None: ...

class _DeliveryPort(Protocol):
    def deliver(self, action: Dict[str, Any], surface: str, rendered: str) -> None: ...

class _FatiguePort(Protocol):
    def check_and_record(self, request: Dict[str, Any]) -> Dict[str, Any]: ...
    def record(self, tenant_id: str, actor_id: str, playbook_id: str, at: str, actions: int) -> None: ...

class _AuditPort(Protocol):
    def record(self, event: Dict[str, Any]) -> None: ...

@final
class Engine:
    """The engine. Safe to share between threads; every call releases the GIL while the engine works."""

    @staticmethod
    def from_path(
        path: _Path,
        *,
        signing_key: Optional[_Key] = None,
        llm: Optional[_LlmPort] = None,
        receipts: Optional[_ReceiptsPort] = None,
        policy: Optional[_PolicyPort] = None,
        iam: Optional[_IamPort] = None,
        signals: Optional[_SignalsPort] = None,
        data_governance: Optional[_DataGovernancePort] = None,
        delivery: Optional[_DeliveryPort] = None,
        fatigue: Optional[_FatiguePort] = None,
        audit: Optional[_AuditPort] = None,
        config: Optional[Dict[str, int]] = None,
    ) -> "Engine":
        """Loads the playbooks under ``path`` (a file or a directory); raises PlaybookError."""
    @staticmethod
    def from_yaml(
        text: str,
        *,
        signing_key: Optional[_Key] = None,
        llm: Optional[_LlmPort] = None,
        receipts: Optional[_ReceiptsPort] = None,
        policy: Optional[_PolicyPort] = None,
        iam: Optional[_IamPort] = None,
        signals: Optional[_SignalsPort] = None,
        data_governance: Optional[_DataGovernancePort] = None,
        delivery: Optional[_DeliveryPort] = None,
        fatigue: Optional[_FatiguePort] = None,
        audit: Optional[_AuditPort] = None,
        config: Optional[Dict[str, int]] = None,
    ) -> "Engine":
        """Loads playbooks from YAML text; raises PlaybookError.

        ``config`` is a dict of the core's engine settings (``EngineConfig``: ``ide_deadline_ms``,
        ``max_context_bytes``, ``max_deny_keys``, ``fatigue_max_actors``, …; the full list is in
        docs/python.md); an unknown key or a bad value raises ConfigError naming the key.
        ``audit`` receives every audited change (``record(event)``); an exception stops the change."""
    def decide(
        self,
        signal: Dict[str, Any],
        context: Optional[Dict[str, Any]] = None,
        *,
        now: Union[str, datetime, None] = None,
        explain: bool = False,
    ) -> Dict[str, Any]:
        """Decides what to show for one signal; returns the decision (SPEC §4) as a dict.

        ``now`` is an RFC 3339 string or an aware datetime (default: the current time)."""
    def record_outcome(self, outcome: Dict[str, Any]) -> None:
        """Records what the actor did with an action (SPEC §9); raises OutcomeError."""
    def reload(self, path: _Path) -> None:
        """Replaces the playbooks atomically; a failed reload keeps the old set."""
    def outcome_counts(self, tenant_id: str) -> List[Dict[str, Any]]:
        """Outcome counts for a tenant by playbook, action type and result (never per actor)."""
    def request_approval(self, action: Dict[str, Any], tenant_id: str, actor_id: str) -> Dict[str, Any]:
        """Opens a dual-channel approval for a multiplier action taken from a decision."""
    def approve(self, approval_id: str, channel: str, approver: str) -> Dict[str, Any]:
        """Approves on ``channel``; the second approval must come through another channel."""
    def reject(self, approval_id: str, by: str, reason: str) -> Dict[str, Any]:
        """Rejects a non-terminal approval."""
    def get_approval(self, approval_id: str) -> Dict[str, Any]:
        """The approval, expired when past ``expires_at``."""
    def experiment_weights(self, tenant_id: str, experiment_id: str) -> Optional[Dict[str, float]]:
        """Current variant weights (normalised to 1) of an experiment for a tenant."""
    def set_experiment_status(self, experiment_id: str, status: str, by: str) -> None:
        """Sets ``active``, ``paused`` or ``completed``; audited."""
    def flush_outbox(self) -> None:
        """Tries now to deliver the receipts waiting in the outbox."""
    @property
    def outbox_len(self) -> int:
        """Receipts waiting for the receipts port: in the outbox, or being delivered from it."""
    def breaker_state(self, port: str) -> str:
        """A port's circuit breaker: ``closed``, ``open`` or ``half_open``."""
    @property
    def receipt_public_key(self) -> Optional[str]:
        """The hex public key receipts are signed with, when signing is on."""

def validate(path: _Path) -> List[Dict[str, Any]]:
    """Checks playbook files: every error and lint warning (severity, rule, message, file, line, column, playbook)."""

def verify_receipt(envelope: Union[Dict[str, Any], str], public_key: _Key) -> Dict[str, Any]:
    """Verifies one receipt envelope (strict Ed25519) and returns its payload; raises ReceiptError.

    The envelope is read as DSSE's envelope.md says: ``payload`` and ``sig`` in standard or
    URL-safe base64, with or without padding; ``keyid`` optional; unknown fields ignored;
    any one signature that verifies suffices.
    """

def verify_chain(envelopes: List[Union[Dict[str, Any], str]], public_key: _Key) -> List[Dict[str, Any]]:
    """Verifies envelopes in order, each chain (by chain.id) on its own; ReceiptError.index names the first bad one."""

def generate_key() -> Tuple[str, str]:
    """A new Ed25519 key: (hex seed, hex public key)."""
