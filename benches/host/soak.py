"""Soak of mmm-host: two replicas on one PostgreSQL + Redis, mixed load, one replica killed
with SIGKILL and restarted twice. Driven by benches/host/soak.sh (which builds the binary,
prepares the virtualenv and creates the scratch database); see there for the usage.

Checks, printed as figures, each failing the run (exit 1) when broken:
  lost receipts     every decision answered 200 has its receipt_id in the `GET /receipts`
                    export, and each replica's chain has no gap in its sequence numbers;
  double nudges     no actor got more than one action of the `max: 1` playbook;
  memory            the RSS of the replica that is never killed, at the end, is within
                    10 % of its RSS at minute 2 (runs under 10 minutes first warm the
                    replicas with 30 s of the same load, then compare with the RSS at
                    20 % of the rest of the run, and say so: the first minute of load is
                    the replicas' warm-up, pools and caches filling);
  server errors     no 500 from a replica that is up.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import collections
import json
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

# The engine remembers returned actions for their outcomes, up to `remembered_actions`
# (100,000 by default): at this load that memory fills for half an hour, and RSS grows with
# it. The soak bounds it small, so that the memory check measures leaks, not a bounded
# memory still filling (docs/performance.md, "Host proof").
ENGINE_SETTINGS = {"remembered_actions": 2000}
PING_ACTORS = 40  # actors of the `max: 1` playbook: each gets many pings, one nudge
OUTCOMES_KEPT = 256  # action ids remembered for outcomes (bounded)
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class Replica:
    """One mmm-host process; restartable with the same flags."""

    def __init__(self, name: str, args: argparse.Namespace, work: Path) -> None:
        self.name = name
        self.args = args
        self.data = work / f"data-{name}"
        self.data.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = work / f"{name}.log"
        self.settings = work / "engine-settings.json"
        self.settings.write_text(json.dumps(ENGINE_SETTINGS))
        self.proc: subprocess.Popen | None = None
        self.up = False

    def start(self) -> None:
        cmd = [
            self.args.bin,
            "--listen", f"127.0.0.1:{self.port}",
            "--data-dir", str(self.data),
            "--database-url", self.args.postgres_url,
            "--redis-url", self.args.redis_url,
            "--seed-playbooks", str(Path(self.args.root) / "playbooks"),
            "--signing-key-file", self.args.signing_key,
            "--replica-id", f"soak-{self.name}",
            "--engine-settings", str(self.settings),
            # A loaded 2-core machine can keep a fatigue check waiting for a thread; a
            # held-back action is safe but not what a soak measures.
            "--fatigue-timeout-ms", "5000",
            "--log-format", "text",
        ]
        env = dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn"))
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=log, env=env)

    async def wait_ready(self, session: aiohttp.ClientSession, seconds: float = 120) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise SystemExit(f"replica {self.name} exited: see {self.log}")
            try:
                async with session.get(f"{self.base}/v1/mmm/ready") as r:
                    if r.status == 200:
                        self.up = True
                        return
            except aiohttp.ClientError:
                pass
            # Real time: the replica's start (migrations, playbook load) is waited for.
            await asyncio.sleep(0.2)
        raise SystemExit(f"replica {self.name} not ready within {seconds} s: see {self.log}")

    def kill(self) -> None:
        self.up = False
        if self.proc is not None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> int | None:
        self.up = False
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()


def playbook(tenant: str, pid: str, version: int, status: str, trigger: str, fatigue: str,
             text: str) -> str:
    return f"""apiVersion: mmm/v1
kind: Playbook
metadata:
  id: {pid}
  version: {version}
  tenant: {tenant}
  status: {status}
  category: soak
  description: Soak test playbook.
spec:
  triggers: [{trigger}]
  priority: 50
  fatigue: {fatigue}
  actions:
    - type: mirror
      surfaces: [ide]
      title: Soak
      text: "{text}"
"""


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tenant = args.tenant
        self.counts: collections.Counter = collections.Counter()
        self.receipts: set[str] = set()
        self.max1_actions: collections.Counter = collections.Counter()
        self.action_ids: collections.deque = collections.deque(maxlen=OUTCOMES_KEPT)
        self.published = 0
        self.stop_at = 0.0
        self.kills: list[str] = []
        self.rss: list[tuple[float, int]] = []
        self.examples = [
            json.loads((Path(args.root) / "examples" / "signals" / name).read_text())
            for name in ("large-pr.json", "ci-failed.json", "flaky-test.json",
                         "secret-detected.json")
        ]

    def headers(self, content_type: str | None = "application/json") -> dict:
        h = {"Authorization": f"Bearer {self.token}"}
        if content_type:
            h["Content-Type"] = content_type
        return h

    async def call(self, session, replica: Replica, method: str, path: str, label: str,
                   body: str | None = None, content_type: str | None = "application/json"):
        """One request; returns (status, json or None). A replica that is down (refused
        or reset connection) counts as `unanswered`, never as a failure."""
        try:
            async with session.request(method, f"{replica.base}/v1/mmm{path}", data=body,
                                       headers=self.headers(content_type)) as r:
                text = await r.text()
                self.counts[f"{label} {r.status}"] += 1
                if r.status >= 500 and replica.up:
                    self.counts["server errors while up"] += 1
                    if r.status == 500:
                        self.counts["500 while up"] += 1
                    print(f"  {label} on {replica.name} answered {r.status}: {text[:200]}",
                          file=sys.stderr)
                try:
                    return r.status, json.loads(text) if text else None
                except json.JSONDecodeError:
                    return r.status, None
        except (aiohttp.ClientError, asyncio.TimeoutError):
            self.counts[f"{label} unanswered"] += 1
            return None, None

    def record_decision(self, decision: dict, actor: str) -> None:
        receipt = decision.get("receipt") or {}
        if receipt.get("receipt_id"):
            self.receipts.add(receipt["receipt_id"])
        else:
            self.counts["decisions without a receipt id"] += 1
        for action in decision.get("actions", []):
            self.action_ids.append(action["action_id"])
            if action.get("playbook", {}).get("id") == "soak-max1":
                self.max1_actions[actor] += 1

    async def decide(self, session, replica: Replica, signal_: dict, label: str) -> None:
        status, decision = await self.call(session, replica, "POST", "/decide", label,
                                           json.dumps({"signal": signal_}))
        if status == 200 and decision is not None:
            self.record_decision(decision, signal_["actor_id"])

    def now(self) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    async def worker(self, session, wid: int) -> None:
        n = 0
        while time.monotonic() < self.stop_at:
            n += 1
            up = [r for r in self.replicas if r.up] or self.replicas
            replica = up[(wid + n) % len(up)]
            step = n % 5
            if step == 0:
                actor = f"ping-{random.randrange(PING_ACTORS)}"
                sig = {"tenant_id": self.tenant, "actor_id": actor, "kind": "soak.ping",
                       "occurred_at": self.now(), "surface": "ide"}
                await self.decide(session, replica, sig, "decide(max1)")
            elif step in (1, 3):
                sig = dict(self.examples[n % len(self.examples)])
                sig.update(tenant_id=self.tenant, actor_id=f"dev-{wid}-{n}",
                           occurred_at=self.now())
                await self.decide(session, replica, sig, "decide")
            elif step == 2:
                actor = f"dev-{wid}-{n % 50}"
                prefs = {"opt_out_categories": [random.choice(["style", "build", "soak"])]}
                await self.call(session, replica, "PUT", f"/actors/{actor}/preferences",
                                "preferences PUT", json.dumps(prefs))
                await self.call(session, replica, "GET", f"/actors/{actor}/preferences",
                                "preferences GET", content_type=None)
            else:
                if self.action_ids:
                    action_id = self.action_ids.popleft()
                    body = json.dumps({"result": random.choice(["accepted", "dismissed"])})
                    await self.call(session, replica, "POST", f"/actions/{action_id}/outcome",
                                    "outcome", body)

    async def publisher(self, session) -> None:
        """A new version of a playbook published every 20 s, on either replica."""
        version = 1
        while time.monotonic() < self.stop_at:
            # Real time: publishing is periodic over the soak's wall-clock duration.
            await asyncio.sleep(20)
            version += 1
            up = [r for r in self.replicas if r.up]
            if not up:
                continue
            replica = up[version % len(up)]
            doc = playbook(self.tenant, "soak-rotating", version, "draft", "soak.rotate",
                           "{cooldown: 1m}", f"Version {version} of the rotating playbook.")
            status, _ = await self.call(session, replica, "POST", "/playbooks",
                                        "publish: draft", doc, "application/yaml")
            if status == 201:
                status, _ = await self.call(
                    session, replica, "POST",
                    f"/playbooks/soak-rotating/versions/{version}/publish",
                    "publish: publish", None, None)
                if status == 200:
                    self.published += 1

    async def killer(self, session) -> None:
        """SIGKILL replica b at 30 % and 60 % of the run, each time restarted at once."""
        victim = self.replicas[1]
        for fraction in (0.3, 0.6):
            at = self.started + fraction * self.total
            # Real time: the kills are placed in the soak's wall-clock duration.
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            t0 = time.monotonic()
            victim.kill()
            victim.start()
            await victim.wait_ready(session)
            self.kills.append(f"at {fraction:.0%}: down {time.monotonic() - t0:.1f} s")

    async def sampler(self) -> None:
        pid = self.replicas[0].proc.pid
        while time.monotonic() < self.stop_at:
            kib = rss_kib(pid)
            if kib is not None:
                self.rss.append((time.monotonic() - self.started, kib))
            # Real time: memory is sampled over the run's wall-clock duration.
            await asyncio.sleep(2)
        kib = rss_kib(pid)
        if kib is not None:
            self.rss.append((time.monotonic() - self.started, kib))

    async def export(self, session) -> tuple[set[str], int, int]:
        """Every receipt of the tenant in the store, chain by chain; and the gaps found
        in each chain's sequence numbers."""
        ids: set[str] = set()
        gaps = 0
        envelopes = 0
        replica = self.replicas[0]
        for chain in ("soak-a", "soak-b"):
            after = 0
            last_seq = None
            while True:
                url = (f"{replica.base}/v1/mmm/receipts?chain_id={chain}"
                       f"&after_seq={after}&limit=10000")
                async with session.get(url, headers=self.headers(None)) as r:
                    if r.status != 200:
                        raise SystemExit(f"export answered {r.status}: {await r.text()}")
                    text = await r.text()
                    next_after = r.headers.get("x-mmm-last-seq")
                lines = [line for line in text.splitlines() if line.strip()]
                for line in lines:
                    env = json.loads(line)
                    payload = json.loads(base64.b64decode(env["payload"] + "=" * (-len(env["payload"]) % 4)))
                    ids.add(payload["receipt_id"])
                    envelopes += 1
                    seq = (payload.get("chain") or {}).get("seq")
                    if isinstance(seq, int):
                        if last_seq is not None and seq != last_seq + 1:
                            gaps += 1
                        last_seq = seq
                if not lines or next_after is None:
                    break
                after = int(next_after)
        return ids, gaps, envelopes

    async def run(self) -> int:
        work = Path(self.args.work)
        self.replicas = [Replica("a", self.args, work), Replica("b", self.args, work)]
        async with aiohttp.ClientSession(timeout=REQUEST_TIMEOUT) as session:
            a, b = self.replicas
            a.start()
            await a.wait_ready(session)
            # Both replicas verify tokens with one key: b gets a's before its first start.
            (b.data / "jwt-ed25519.pem").write_bytes((a.data / "jwt-ed25519.pem").read_bytes())
            os.chmod(b.data / "jwt-ed25519.pem", 0o600)
            b.start()
            await b.wait_ready(session)
            self.token = subprocess.run(
                [self.args.bin, "token", "--tenant", self.tenant, "--role", "admin",
                 "--actor", "soak", "--ttl", "24h", "--data-dir", str(a.data)],
                check=True, capture_output=True, text=True).stdout.strip()
            for pid, trigger, fatigue in (("soak-max1", "soak.ping", "{max: 1, window: 7d}"),
                                          ("soak-rotating", "soak.rotate", "{cooldown: 1m}")):
                doc = playbook(self.tenant, pid, 1, "draft", trigger, fatigue,
                               "A soak signal arrived.")
                status, body = await self.call(session, a, "POST", "/playbooks", "setup",
                                               doc, "application/yaml")
                if status != 201:
                    raise SystemExit(f"creating {pid} answered {status}: {body}")
                status, body = await self.call(session, a, "POST",
                                               f"/playbooks/{pid}/versions/1/publish",
                                               "setup", None, None)
                if status != 200:
                    raise SystemExit(f"publishing {pid} answered {status}: {body}")
            # Real time: every replica decides with a publish within 2 s (SPEC §13).
            await asyncio.sleep(2.5)

            print(f"== soak: {self.args.duration:.0f} s (+30 s warm-up when shorter than "
                  f"10 minutes), {self.args.workers} workers, "
                  f"replicas a (kept) and b (killed twice), tenant {self.tenant}, "
                  f"engine settings {json.dumps(ENGINE_SETTINGS)}")
            self.warmup = 0.0 if self.args.duration >= 600 else 30.0
            self.total = self.warmup + self.args.duration
            self.started = time.monotonic()
            self.stop_at = self.started + self.total
            tasks = [self.worker(session, w) for w in range(self.args.workers)]
            tasks += [self.publisher(session), self.killer(session), self.sampler()]
            await asyncio.gather(*tasks)

            # Real time: the group commit's last batch settles before the export.
            await asyncio.sleep(1)
            exported, gaps, envelopes = await self.export(session)

        codes = [self.replicas[0].stop(), self.replicas[1].stop()]
        return self.report(exported, gaps, envelopes, codes)

    def report(self, exported: set[str], gaps: int, envelopes: int, codes) -> int:
        failures = []
        print("-- requests (label status: count)")
        for key in sorted(self.counts):
            print(f"   {key}: {self.counts[key]}")
        lost = self.receipts - exported
        print(f"-- receipts: {len(self.receipts)} decisions answered 200, {envelopes} "
              f"envelopes exported, {len(lost)} lost, {gaps} gaps in the chains")
        if lost or gaps:
            failures.append(f"{len(lost)} lost receipts, {gaps} chain gaps")
        doubles = {a: n for a, n in self.max1_actions.items() if n > 1}
        print(f"-- fatigue max 1: {len(self.max1_actions)} of {PING_ACTORS} actors nudged, "
              f"most nudges for one actor {max(self.max1_actions.values(), default=0)}, "
              f"{len(doubles)} double nudges")
        if doubles:
            failures.append(f"double nudges: {doubles}")
        print(f"-- kills of replica b: {'; '.join(self.kills) or 'none'}; "
              f"playbook versions published during the run: {self.published}")
        if len(self.kills) != 2:
            failures.append("replica b was not killed and restarted twice")
        if self.args.duration >= 600:
            mark, what = 120.0, "minute 2"
        else:
            mark = self.warmup + 0.2 * self.args.duration
            what = (f"{mark:.0f} s: 20 % of the run after a {self.warmup:.0f} s warm-up "
                    "(short run)")
        before = [kib for t, kib in self.rss if t <= mark]
        if before and self.rss:
            ref = before[-1]
            end = self.rss[-1][1]
            growth = (end - ref) / ref * 100
            minutes = {}
            for t, kib in self.rss:
                minutes.setdefault(int(t // 60), kib)
            print("-- RSS of replica a per minute (MiB): "
                  + ", ".join(f"{m}: {k / 1024:.1f}" for m, k in sorted(minutes.items())))
            print(f"-- memory of replica a: {ref / 1024:.1f} MiB at {what}, "
                  f"{end / 1024:.1f} MiB at the end ({growth:+.1f} %), "
                  f"peak {max(k for _, k in self.rss) / 1024:.1f} MiB")
            if growth > 10:
                failures.append(f"RSS grew {growth:.1f} % (limit 10 %)")
        else:
            failures.append("no RSS samples")
        if self.counts["500 while up"]:
            failures.append(f"{self.counts['500 while up']} answers 500 from a live replica")
        print(f"-- replica exit codes on SIGTERM: a {codes[0]}, b {codes[1]}")
        if codes[0] != 0 or codes[1] != 0:
            failures.append("a replica did not exit 0 on SIGTERM")
        if failures:
            print("soak: FAILED: " + "; ".join(failures), file=sys.stderr)
            return 1
        print("soak: passed (0 lost receipts, 0 double nudges, memory flat)")
        return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--postgres-url", required=True)
    p.add_argument("--redis-url", required=True)
    p.add_argument("--signing-key", required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--tenant", required=True, help="a fresh tenant id: its Redis keys are the run's")
    p.add_argument("--workers", type=int, default=16)
    args = p.parse_args()
    soak = Soak(args)
    try:
        return asyncio.run(soak.run())
    finally:
        for r in getattr(soak, "replicas", []):
            if r.proc is not None and r.proc.poll() is None:
                r.proc.kill()
                r.proc.wait()


if __name__ == "__main__":
    sys.exit(main())
