"""Flapping dependencies: one mmm-host whose LLM, Policy and ERIS are a local server that is
up, then down, on a schedule; decisions are driven through it the whole time. Driven by
benches/host/flapping.sh (which builds the binary and prepares the virtualenv); see there
for the usage.

Checks, each failing the run (exit 1) when broken:
  breakers   `mmm_circuit_state{name}` of `llm` and `policy`, scraped every 100 ms, goes
             closed → open (1) while the dependency is down, half-open (2) once
             `breaker_open_ms` has passed, and closed (0) again after it recovers (SPEC §6);
  degraded   while down (from 1 s into the phase): every decision carries `policy_cached`
             (snapshot younger than `policy_max_age_ms`) with `llm_unavailable` and its
             mentor action on the fallback text, or `policy_unavailable` (older) with
             mirror actions only (SPEC §6); both policy codes are seen. After recovery (once the breakers
             may have closed): no degraded code at all, the mentor text is the LLM's;
  receipts   every decision's receipt is `emitted` (ERIS being down never degrades a
             decision: the host stores receipts and forwards them in the background), the
             forwarder counts failures while ERIS is down, and by the end ERIS has every
             receipt (deduplicated by `Idempotency-Key`).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
from aiohttp import web

FALLBACK = "A flaky test fails now and then without a code change; rerunning it alone shows whether it is the test."
LLM_TEXT = "The generated text of the stand-in LLM."
SETTINGS = {
    # The LLM (300 ms here) fits in a decision's deadline.
    "default_deadline_ms": 2000,
    "llm_timeout_ms": 1000,
    # The policy is asked about once a second, and a snapshot stands in for 8 s when the
    # port is down: a 20 s outage shows both `policy_cached` and `policy_unavailable`.
    "policy_ttl_ms": 1000,
    "policy_max_age_ms": 8000,
    # Half-open 3 s after opening (SPEC §6: 60 s by default), so a short run shows it.
    "breaker_open_ms": 3000,
}
OPEN_MS = SETTINGS["breaker_open_ms"] / 1000
MAX_AGE = SETTINGS["policy_max_age_ms"] / 1000
# After a recovery the breakers may stay open up to `breaker_open_ms`, then need two
# successful probes; decisions in that window may still be degraded.
SETTLE = OPEN_MS + 2.0
CIRCUIT = re.compile(r'^mmm_circuit_state\{name="([a-z_]+)"\} (\d+)', re.M)
ERIS_FAILED = re.compile(r'^mmm_eris_receipt_emission_total\{[^}]*result="failed"[^}]*\} (\d+)', re.M)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Schedule:
    """Up `up` s, down `down` s, repeated for `duration` s; then up `tail` s to recover."""

    def __init__(self, up: float, down: float, duration: float, tail: float) -> None:
        self.up, self.down, self.duration, self.tail = up, down, duration, tail
        self.start = time.monotonic()

    def at(self, t: float) -> tuple[bool, float]:
        """(is up, seconds since the current phase began) at run time `t`."""
        if t < self.duration:
            return self._up_at(t), t - self._phase_start(t)
        # The tail: up from `duration` on (or from the up phase `duration` falls in).
        start = self._phase_start(self.duration) if self._up_at(self.duration) else self.duration
        return True, t - start

    def _up_at(self, t: float) -> bool:
        return (t % (self.up + self.down)) < self.up

    def _phase_start(self, t: float) -> float:
        cycle = t - t % (self.up + self.down)
        return cycle if self._up_at(t) else cycle + self.up

    def now(self) -> float:
        return time.monotonic() - self.start

    def is_up(self) -> bool:
        return self.at(self.now())[0]


class Dependencies:
    """The stand-in LLM, Policy and ERIS, failing (503) while the schedule says down."""

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule
        self.calls: dict[str, int] = {"llm ok": 0, "llm 503": 0, "policy ok": 0,
                                      "policy 503": 0, "eris ok": 0, "eris 503": 0}
        self.eris_keys: set[str] = set()
        self.snapshots = 0

    async def llm(self, request: web.Request) -> web.Response:
        await request.read()
        if not self.schedule.is_up():
            self.calls["llm 503"] += 1
            return web.Response(status=503, text="down")
        # Real time: a language model takes a while; 300 ms also keeps the breaker's
        # half-open state (two probes in flight) longer than the 100 ms scrape interval.
        await asyncio.sleep(0.3)
        self.calls["llm ok"] += 1
        return web.json_response({"text": LLM_TEXT, "safety": {
            "status": "pass", "risk_flags": [], "redaction_summary": None}})

    async def policy(self, request: web.Request) -> web.Response:
        await request.read()
        if not self.schedule.is_up():
            self.calls["policy 503"] += 1
            return web.Response(status=503, text="down")
        # Real time: 150 ms per snapshot keeps half-open visible to the scraper too.
        await asyncio.sleep(0.15)
        self.calls["policy ok"] += 1
        self.snapshots += 1
        return web.json_response({"snapshot_id": f"pol-flap-{self.snapshots}",
                                  "denied_action_types": [], "denied_operations": [],
                                  "denied_playbooks": []})

    async def eris(self, request: web.Request) -> web.Response:
        await request.read()
        if not self.schedule.is_up():
            self.calls["eris 503"] += 1
            return web.Response(status=503, text="down")
        self.calls["eris ok"] += 1
        key = request.headers.get("Idempotency-Key")
        if key:
            self.eris_keys.add(key)
        return web.json_response({})


PLAYBOOK = """apiVersion: mmm/v1
kind: Playbook
metadata:
  id: flap-mentor
  version: 1
  tenant: {tenant}
  status: draft
  category: testing
  description: A mirror and an LLM mentor action on every tick (flapping test).
spec:
  triggers: [flap.tick]
  priority: 50
  actions:
    - type: mirror
      surfaces: [ci_summary]
      title: Tick
      text: "A tick arrived."
    - type: mentor
      surfaces: [ci_summary]
      title: Flaky tests
      prompt: "Explain how to tell a flaky test from a broken one."
      fallback: "{fallback}"
"""


class Flapping:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.tenant = f"flap-{random.getrandbits(32):08x}"
        self.decisions: list[tuple[float, bool, float, dict]] = []
        self.states: dict[str, list[tuple[float, int]]] = {"llm": [], "policy": []}
        self.failures: list[str] = []
        self.other_answers: dict[str, int] = {}
        self.straddling = 0
        self.receipts_unjudged: set = set()

    async def run(self) -> int:
        args = self.args
        work = Path(args.work)
        self.schedule = Schedule(args.up, args.down, args.duration, args.tail)
        deps = Dependencies(self.schedule)
        app = web.Application()
        app.router.add_post("/llm/generate", deps.llm)
        app.router.add_post("/policy/snapshot", deps.policy)
        app.router.add_post("/eris", deps.eris)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        dep_port = free_port()
        await web.TCPSite(runner, "127.0.0.1", dep_port).start()
        dep = f"http://127.0.0.1:{dep_port}"

        (work / "settings.json").write_text(json.dumps(SETTINGS))
        data = work / "data"
        data.mkdir()
        port = free_port()
        base = f"http://127.0.0.1:{port}/v1/mmm"
        log = open(work / "host.log", "wb")
        host = subprocess.Popen([
            args.bin, "--listen", f"127.0.0.1:{port}", "--data-dir", str(data),
            "--seed-playbooks", str(Path(args.root) / "playbooks"),
            "--engine-settings", str(work / "settings.json"),
            "--llm-url", f"{dep}/llm", "--policy-url", f"{dep}/policy",
            "--eris-url", f"{dep}/eris", "--eris-max-backoff-ms", "2000",
            "--log-format", "text",
        ], stdout=log, stderr=log, env=dict(os.environ, RUST_LOG=os.environ.get("RUST_LOG", "warn")))
        try:
            return await self.drive(base, data, deps, host)
        finally:
            if host.poll() is None:
                host.send_signal(signal.SIGTERM)
                try:
                    host.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    host.kill()
                    host.wait()
            await runner.cleanup()

    async def drive(self, base: str, data: Path, deps: Dependencies, host) -> int:
        args = self.args
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
            for _ in range(600):
                if host.poll() is not None:
                    raise SystemExit(f"mmm-host exited: see {args.work}/host.log")
                try:
                    async with session.get(f"{base}/ready") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                # Real time: the host's start is waited for.
                await asyncio.sleep(0.1)
            token = subprocess.run(
                [args.bin, "token", "--tenant", self.tenant, "--role", "admin", "--actor",
                 "flapping", "--ttl", "24h", "--data-dir", str(data)],
                check=True, capture_output=True, text=True).stdout.strip()
            self.headers = {"Authorization": f"Bearer {token}"}
            doc = PLAYBOOK.format(tenant=self.tenant, fallback=FALLBACK)
            for method, path, body, ctype, want in (
                ("POST", "/playbooks", doc, "application/yaml", 201),
                ("POST", "/playbooks/flap-mentor/versions/1/publish", None, None, 200),
            ):
                h = dict(self.headers, **({"Content-Type": ctype} if ctype else {}))
                async with session.request(method, base + path, data=body, headers=h) as r:
                    if r.status != want:
                        raise SystemExit(f"{method} {path} answered {r.status}: {await r.text()}")

            print(f"== flapping: LLM, Policy and ERIS up {args.up:.0f} s / down "
                  f"{args.down:.0f} s for {args.duration:.0f} s, then up {args.tail:.0f} s; "
                  f"{args.workers} clients; settings {json.dumps(SETTINGS)}")
            self.schedule.start = time.monotonic()
            end = args.duration + args.tail
            tasks = [self.worker(session, base, w, end) for w in range(args.workers)]
            tasks.append(self.scraper(session, base, end))
            await asyncio.gather(*tasks)

            # ERIS is up again: the forwarder drains what waited (backoff at most 2 s).
            receipts = {d["receipt"]["receipt_id"] for _, _, _, d in self.decisions
                        if (d.get("receipt") or {}).get("receipt_id")}
            receipts |= {r for r in self.receipts_unjudged if r}
            for _ in range(300):
                if receipts <= deps.eris_keys:
                    break
                # Real time: the forwarder's background retries are waited for.
                await asyncio.sleep(0.1)
            async with session.get(f"{base}/metrics") as r:
                metrics = await r.text()
        eris_failed = sum(int(m) for m in ERIS_FAILED.findall(metrics))
        return self.report(deps, receipts, eris_failed)

    async def worker(self, session, base: str, wid: int, end: float) -> None:
        n = 0
        while self.schedule.now() < end:
            n += 1
            sent = self.schedule.now()
            body = {"signal": {"tenant_id": self.tenant, "actor_id": f"dev-{wid}-{n}",
                               "kind": "flap.tick", "surface": "ci_summary",
                               "occurred_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}}
            try:
                async with session.post(f"{base}/decide", json=body, headers=self.headers) as r:
                    text = await r.text()
                    if r.status != 200:
                        key = f"decide {r.status}"
                        self.other_answers[key] = self.other_answers.get(key, 0) + 1
                        continue
                    decision = json.loads(text)
            except aiohttp.ClientError as e:
                self.other_answers[f"decide error {type(e).__name__}"] = \
                    self.other_answers.get(f"decide error {type(e).__name__}", 0) + 1
                continue
            answered = self.schedule.now()
            up, into = self.schedule.at(sent)
            # A decision whose request straddles a switch of the schedule is not judged:
            # its port calls may have seen either side.
            up_after, into_after = self.schedule.at(answered)
            if up_after == up and abs((into_after - into) - (answered - sent)) < 0.01:
                self.decisions.append((sent, up, into, decision))
            else:
                self.straddling += 1
                self.receipts_unjudged.add((decision.get("receipt") or {}).get("receipt_id"))
            # Real time: a steady trickle of decisions, about 5 per second per worker.
            await asyncio.sleep(0.2)

    async def scraper(self, session, base: str, end: float) -> None:
        last: dict[str, int] = {}
        while self.schedule.now() < end:
            try:
                async with session.get(f"{base}/metrics") as r:
                    text = await r.text()
                for name, value in CIRCUIT.findall(text):
                    if name in self.states and last.get(name) != int(value):
                        last[name] = int(value)
                        self.states[name].append((self.schedule.now(), int(value)))
            except aiohttp.ClientError:
                pass
            # Real time: the gauge is sampled every 100 ms over the run.
            await asyncio.sleep(0.1)

    def report(self, deps: Dependencies, receipts: set[str], eris_failed: int) -> int:
        args = self.args
        names = {0: "closed", 1: "open", 2: "half-open"}
        print("-- circuit state changes (s into the run: state)")
        for port, changes in self.states.items():
            print(f"   {port}: " + ", ".join(f"{t:.1f}: {names.get(v, v)}" for t, v in changes))
            seq = [v for _, v in changes]
            # closed → open → half-open → closed, in that order, at least once.
            it = iter(seq)
            if not all(any(v == want for v in it) for want in (1, 2, 0)):
                self.failures.append(f"{port} breaker never went open → half-open → closed")

        down_checked = up_checked = 0
        cached = unavailable = 0
        for sent, up, into, d in self.decisions:
            codes = set(d.get("degraded") or [])
            mentors = [a for a in d.get("actions", []) if a.get("type") == "mentor"]
            if (d.get("receipt") or {}).get("status") != "emitted":
                self.failures.append(f"a decision at {sent:.1f} s has receipt {d.get('receipt')}")
            first = sent < args.up
            if not up and into >= 1.0:
                down_checked += 1
                if "policy_unavailable" in codes:
                    # §6: a snapshot older than the max age; mirror actions only.
                    unavailable += 1
                    if mentors:
                        self.failures.append(f"decision at {sent:.1f} s: policy unavailable, yet a mentor action")
                elif "policy_cached" in codes:
                    cached += 1
                    if "llm_unavailable" not in codes:
                        self.failures.append(f"decision at {sent:.1f} s (down {into:.1f} s): degraded {sorted(codes)}")
                    if not mentors or any(a.get("text") != FALLBACK for a in mentors):
                        self.failures.append(f"decision at {sent:.1f} s: mentor text is not the fallback")
                else:
                    self.failures.append(f"decision at {sent:.1f} s (down {into:.1f} s): no policy code in {sorted(codes)}")
            elif up and into >= (1.0 if first else SETTLE):
                up_checked += 1
                if codes:
                    self.failures.append(f"decision at {sent:.1f} s (up {into:.1f} s): degraded {sorted(codes)}")
                if not mentors or any(a.get("text") != LLM_TEXT for a in mentors):
                    self.failures.append(f"decision at {sent:.1f} s (up): mentor text is not the LLM's")
        if args.duration > args.up and not (cached and unavailable):
            self.failures.append(f"down phases showed policy_cached {cached}× and policy_unavailable {unavailable}× (both expected)")
        missing = receipts - deps.eris_keys
        print(f"-- decisions: {len(self.decisions) + self.straddling} answered 200, "
              f"{self.straddling} straddling a switch not judged ({down_checked} checked while "
              f"down: policy_cached {cached}, policy_unavailable {unavailable}; {up_checked} "
              f"checked while up); other answers: {self.other_answers or 'none'}")
        print(f"-- dependency calls: {deps.calls}")
        print(f"-- ERIS: {len(receipts)} receipts, {len(receipts & deps.eris_keys)} forwarded "
              f"by the end, {len(missing)} missing; forwarder failures counted {eris_failed}")
        if missing:
            self.failures.append(f"{len(missing)} receipts never reached ERIS")
        if args.duration > args.up and eris_failed == 0:
            self.failures.append("mmm_eris_receipt_emission_total{result=failed} stayed 0 while ERIS was down")
        if self.other_answers:
            self.failures.append(f"answers other than 200: {self.other_answers}")
        if not down_checked or not up_checked:
            self.failures.append("no decision fell in a down or in an up phase")
        if self.failures:
            shown = self.failures[:15]
            print("flapping: FAILED:\n  " + "\n  ".join(shown)
                  + (f"\n  … and {len(self.failures) - 15} more" if len(self.failures) > 15 else ""),
                  file=sys.stderr)
            return 1
        print("flapping: passed (breakers open → half-open → closed; degraded codes while down, none after recovery)")
        return 0


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--bin", required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--up", type=float, default=20)
    p.add_argument("--down", type=float, default=20)
    p.add_argument("--tail", type=float, default=15)
    p.add_argument("--workers", type=int, default=4)
    args = p.parse_args()
    return asyncio.run(Flapping(args).run())


if __name__ == "__main__":
    sys.exit(main())
