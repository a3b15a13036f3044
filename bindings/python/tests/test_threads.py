"""One Engine shared by many threads, and the GIL released while Rust works.

The proofs are deterministic: each test passes only when the engine call has let go of the
GIL, and a held GIL ends in a barrier that breaks (or a child process that never ends),
never in a slower run. Throughput is measured by the benchmarks, not here."""

import random
import subprocess
import sys
import textwrap
import threading

import mmm_engine
from conftest import NOW, signal

# How long a barrier waits. Only a held GIL reaches it; a passing run never waits.
PATIENCE = 20


def nudge(n=300, kinds=5, seed=7):
    rng = random.Random(seed)
    docs = []
    for i in range(n):
        docs.append(
            "apiVersion: mmm/v1\nkind: Playbook\n"
            f"metadata: {{id: nudge-{i:04d}, version: 1, tenant: '*', status: published}}\n"
            f"spec:\n  triggers: [kind.k{i % kinds}]\n"
            f"  when: signal.payload.lines > {rng.randint(0, 1000)} && signal.payload.files > {rng.randint(0, 50)}\n"
            "  actions: [{type: mirror, surfaces: [ide], title: Size, text: 'Lines: {{ signal.payload.lines }}'}]\n")
    return "---\n".join(docs)


def signals(count=200, kinds=5, seed=3, max_lines=1200):
    rng = random.Random(seed)
    return [{"tenant_id": "acme", "actor_id": f"dev-{i % 17}", "kind": f"kind.k{rng.randrange(kinds)}",
             "occurred_at": NOW, "payload": {"lines": rng.randint(0, max_lines), "files": rng.randint(0, 60)}}
            for i in range(count)]


def test_four_threads_decide_without_errors():
    engine = mmm_engine.Engine.from_yaml(nudge())
    batch = signals()
    errors = []

    def work():
        try:
            for s in batch:
                d = engine.decide(s, {"tenant_policy": {"max_actions_per_decision": 2}}, now=NOW)
                assert len(d["actions"]) <= 2
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []


PLAYBOOK = """apiVersion: mmm/v1
kind: Playbook
metadata: {id: any, version: 1, tenant: "*", status: published}
spec:
  triggers: [pr.opened]
  actions: [{type: mirror, surfaces: [ide], title: T, text: t}]
"""

# Deadlines and port timeouts beyond the barrier's patience: only the barrier decides.
PATIENT = {"default_deadline_ms": 2000 * PATIENCE, "ide_deadline_ms": 2000 * PATIENCE,
           "iam_timeout_ms": 2000 * PATIENCE}


def test_decide_releases_the_gil_while_its_port_waits_for_another_python_thread():
    # The engine calls IAM from one of its own threads, which must take the GIL to run
    # this method. It waits there for a Python thread started beside `decide`. Both meet
    # only if `decide` let go of the GIL while it waited for IAM; had it kept it, the
    # port could not run, the barrier would break and the decision would be degraded.
    barrier = threading.Barrier(2, timeout=PATIENCE)
    met = []

    class Iam:
        def validate_actor(self, tenant_id, actor_id):
            barrier.wait()
            return {"active": True}

    def other():
        barrier.wait()
        met.append(True)

    engine = mmm_engine.Engine.from_yaml(PLAYBOOK, iam=Iam(), config=PATIENT)
    t = threading.Thread(target=other)
    t.start()
    d = engine.decide(signal(), now=NOW)
    t.join(PATIENCE)
    assert met == [True]
    assert d["degraded"] == [] and len(d["actions"]) == 1


# Approvals and experiment changes call no port on another thread, so their proof uses a
# lock inside the engine: thread 1 holds it (the audit sink waits on a barrier inside an
# audited change), the main thread's call waits for that lock, and thread 3 must reach
# the barrier while the main thread waits. With the GIL released by the waiting call,
# thread 3 runs and all finish; with it held, thread 3 cannot run, nothing can finish,
# and the child process is stopped at its timeout. The switch interval is raised so that
# the GIL changes hands only when a thread lets go of it.
CHILD = textwrap.dedent("""
    import sys, threading
    import mmm_engine
    sys.setswitchinterval(30)
    PATIENCE = 20
    NOW = "2026-11-22T10:00:00Z"
    YAML = '''apiVersion: mmm/v1
    kind: Playbook
    metadata: {id: secret, version: 1, tenant: "*", status: published}
    spec:
      triggers: [secret.detected]
      critical: true
      actions:
        - {type: multiplier, surfaces: [ide], title: Rotate, text: Rotates the key and revokes the old one., operation: rotate_secret, dual_channel: true, reversible: false}
    ---
    apiVersion: mmm/v1
    kind: Playbook
    metadata: {id: large-pr, version: 1, tenant: "*", status: published}
    spec:
      triggers: [pr.opened]
      actions: [{type: mirror, surfaces: [ide], title: T, text: t}]
    ---
    apiVersion: mmm/v1
    kind: Experiment
    metadata: {id: copy, tenant: "*", status: active}
    spec:
      playbook: large-pr
      variants: [{name: a, weight: 1}, {name: b, weight: 1, set: {title: Big}}]
    ---
    apiVersion: mmm/v1
    kind: Playbook
    metadata: {id: small-pr, version: 1, tenant: "*", status: published}
    spec:
      triggers: [pr.closed]
      actions: [{type: mirror, surfaces: [ide], title: T, text: t}]
    ---
    apiVersion: mmm/v1
    kind: Experiment
    metadata: {id: other, tenant: "*", status: active}
    spec:
      playbook: small-pr
      variants: [{name: a, weight: 1}, {name: b, weight: 1}]
    '''

    class Audit:
        hold = None  # (entered, barrier) while a change is to be held

        def record(self, event):
            held, Audit.hold = Audit.hold, None
            if held is not None:
                entered, barrier = held
                entered.set()
                barrier.wait()

    engine = mmm_engine.Engine.from_yaml(YAML, audit=Audit())
    signal = {"signal_id": "s", "tenant_id": "acme", "actor_id": "dev", "kind": "secret.detected",
              "occurred_at": NOW, "payload": {}}
    action = engine.decide(signal, now=NOW)["actions"][0]
    ids = [engine.request_approval(action, "acme", "dev")["approval_id"] for _ in range(6)]

    def proof(name, hold_with, call):
        entered, barrier, calling = threading.Event(), threading.Barrier(2, timeout=PATIENCE), threading.Event()
        Audit.hold = (entered, barrier)
        holder = threading.Thread(target=hold_with)
        holder.start()
        assert entered.wait(PATIENCE), name

        def third():
            calling.wait(PATIENCE)
            barrier.wait()

        t = threading.Thread(target=third)
        t.start()
        calling.set()
        call()  # waits for the engine's lock, which `holder` holds until `third` runs
        holder.join(PATIENCE)
        t.join(PATIENCE)
        print(name, "released the GIL", flush=True)

    # The approval calls wait for the approval store's lock.
    proof("get_approval", lambda: engine.approve(ids[0], "chat", "x"), lambda: engine.get_approval(ids[1]))
    proof("approve", lambda: engine.approve(ids[2], "chat", "x"), lambda: engine.approve(ids[1], "chat", "y"))
    proof("reject", lambda: engine.approve(ids[3], "chat", "x"), lambda: engine.reject(ids[4], "y", "no"))
    proof("request_approval", lambda: engine.approve(ids[5], "chat", "x"),
          lambda: engine.request_approval(action, "acme", "dev"))
    # Experiment changes wait for one another (the audit log keeps their order).
    proof("set_experiment_status", lambda: engine.set_experiment_status("copy", "paused", "a"),
          lambda: engine.set_experiment_status("other", "paused", "b"))
    print("done", flush=True)
""")


def test_approval_and_experiment_calls_release_the_gil():
    try:
        run = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=4 * PATIENCE)
    except subprocess.TimeoutExpired as e:
        done = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        raise AssertionError(f"a call kept the GIL while it waited; passed before it: {done!r}") from None
    assert run.returncode == 0, run.stderr
    assert run.stdout.split("\n") == [
        "get_approval released the GIL", "approve released the GIL", "reject released the GIL",
        "request_approval released the GIL", "set_experiment_status released the GIL", "done", ""], run.stdout
