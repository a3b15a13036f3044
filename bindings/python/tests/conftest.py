"""Shared paths and helpers. Paths are resolved from this file, not the working directory."""

import json
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
VECTORS = REPO / "mmm-engine" / "tests" / "vectors"
PLAYBOOKS = REPO / "playbooks"
NOW = "2026-11-22T10:00:00Z"


def normalise(decision: dict) -> dict:
    """What the shared vectors compare: the decision minus per-run ids and timings."""
    d = dict(decision)
    for key in ("decision_id", "latency_us", "latency_warning"):
        d.pop(key, None)
    d["receipt"] = {k: v for k, v in d["receipt"].items() if k != "receipt_id"}
    d["actions"] = [{k: v for k, v in a.items() if k != "action_id"} for a in d["actions"]]
    return d


def signal(kind="pr.opened", payload=None, **extra):
    s = {"signal_id": "s-1", "tenant_id": "acme", "actor_id": "dev-42", "kind": kind,
         "occurred_at": NOW, "repo": {"id": "acme/api", "branch": "feat/x"}, "payload": payload or {}}
    s.update(extra)
    return s


THREE = """apiVersion: mmm/v1
kind: Playbook
metadata: {id: large-pr, version: 1, tenant: "*", status: published, category: code-review}
spec:
  triggers: [pr.opened]
  when: signal.payload.lines > 400
  actions:
    - {type: mirror, surfaces: [ide, pr_comment], title: Large, text: "{{ signal.payload.lines }} lines"}
    - {type: mentor, surfaces: [ide], title: Split, prompt: "split {{ signal.payload.lines }}", fallback: Smaller changes are reviewed faster.}
    - {type: multiplier, surfaces: [ide], title: Stack, text: Creates one draft pull request per directory., operation: split_pr, reversible: true}
---
apiVersion: mmm/v1
kind: Playbook
metadata: {id: repeated-ci, version: 1, tenant: "*", status: published}
spec:
  triggers: [ci.failed]
  when: recent_count("ci.failed", "1h") >= 2
  actions:
    - {type: mirror, surfaces: [ide], title: Again, text: CI failed again.}
"""


@pytest.fixture
def three() -> str:
    return THREE


def load_vector(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))
