#!/usr/bin/env python3
"""Checks of deploy/ that need more than a linter; scripts/test-deploy.sh runs them.

  deploy_check.py dashboards OUT.yaml  validate deploy/grafana/*.json (importable shape,
                                       ${DS_PROMETHEUS} everywhere) and write every panel
                                       query as a recording rule to OUT.yaml, for
                                       `promtool check rules`
  deploy_check.py names METRICS.txt [BINARY]
                                       every metric the alerts and dashboards query is one
                                       the host exports (METRICS.txt: a scrape of
                                       /v1/mmm/metrics; families are read from its `# TYPE`
                                       lines). With BINARY (the host's executable), a name
                                       missing from the scrape is also looked up in it, to
                                       say whether the family exists but had no sample
                                       (prometheus-client 0.26 leaves an empty family out
                                       of the scrape); it is a failure either way
  deploy_check.py runbooks             every alert has a severity and summary, description
                                       and runbook_url, and every runbook anchor is a
                                       heading of docs/operations.md
  deploy_check.py env HELP.txt         every MMM_* variable the Kubernetes manifests set
                                       is one `mmm-host --help` (HELP.txt) documents
  deploy_check.py docker               what the Dockerfile copies from the build context
                                       exists and is not excluded by .dockerignore, and so
                                       is every workspace member cargo needs to build
  deploy_check.py live PROMETHEUS_URL  a Prometheus scraping a running host as job
                                       mmm-host with alerts.yaml loaded: the target is up
                                       and its scrape parses, every rule evaluates without
                                       error, every panel query runs, and no alert fires
  deploy_check.py live-down PROMETHEUS_URL
                                       after the host was stopped: MmmHostDown goes
                                       pending for its instance

Each prints what is wrong, one line per problem, and exits 1 when anything is.
"""

import fnmatch
import json
import re
import sys
import time
import tomllib
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import promql_parser
import yaml

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yaml"
DASHBOARDS = sorted((ROOT / "deploy" / "grafana").glob("*.json"))
K8S = ROOT / "deploy" / "k8s"
OPERATIONS = ROOT / "docs" / "operations.md"

# Series Prometheus itself writes for every scrape target: not the host's to export.
SCRAPE_SERIES = {"up"}

# Grafana's variables, replaced by a value of the same type so that the query parses.
GRAFANA_VARIABLES = {
    "__rate_interval": "5m",
    "__interval": "1m",
    "__range": "1h",
}


def fail(problems):
    for problem in dict.fromkeys(problems):
        print(problem)
    return 1 if problems else 0


def alert_rules():
    doc = yaml.safe_load(ALERTS.read_text())
    for group in doc.get("groups", []):
        for rule in group.get("rules", []):
            if "alert" in rule:
                yield rule


def substitute(expr, variables):
    """Replaces `$name`, `${name}` and `[[name]]` with the value of a Grafana variable:
    its own for the built-in ones, `.*` (the "All" of a multi-value variable, used with
    `=~`) for the dashboard's own."""

    def value(name):
        if name in GRAFANA_VARIABLES:
            return GRAFANA_VARIABLES[name]
        if name in variables:
            return ".*"
        raise KeyError(name)

    pattern = re.compile(r"\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]|\$(\w+)")
    missing = []

    def replace(match):
        name = match.group(1) or match.group(2) or match.group(3)
        try:
            return value(name)
        except KeyError:
            missing.append(name)
            return match.group(0)

    out = pattern.sub(replace, expr)
    return out, missing


def dashboard_queries():
    """(dashboard, panel title, refId, expr with variables substituted, problems)."""
    for path in DASHBOARDS:
        dash = json.loads(path.read_text())
        variables = {v.get("name") for v in dash.get("templating", {}).get("list", [])}
        for panel in dash.get("panels", []):
            for target in panel.get("targets", []):
                expr, missing = substitute(target.get("expr", ""), variables)
                problems = [
                    f"{path.name}: panel `{panel.get('title')}` {target.get('refId')}: "
                    f"unknown variable ${name}"
                    for name in missing
                ]
                yield path.name, panel.get("title"), target.get("refId"), expr, problems


def check_dashboard_shape(path):
    problems = []
    try:
        dash = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        return [f"{path.name}: not JSON: {e}"]
    name = path.name
    for key in ("uid", "title", "schemaVersion", "panels", "templating"):
        if key not in dash:
            problems.append(f"{name}: no `{key}`")
    if not isinstance(dash.get("schemaVersion"), int):
        problems.append(f"{name}: `schemaVersion` is not an integer")
    inputs = {i.get("name") for i in dash.get("__inputs", [])}
    variables = {v.get("name"): v for v in dash.get("templating", {}).get("list", [])}
    ds_var = variables.get("DS_PROMETHEUS")
    if (
        ds_var is None
        or ds_var.get("type") != "datasource"
        or ds_var.get("query") != "prometheus"
    ):
        problems.append(
            f"{name}: no datasource variable `DS_PROMETHEUS` of type prometheus"
        )
    if "DS_PROMETHEUS" not in inputs:
        problems.append(f"{name}: `__inputs` does not declare DS_PROMETHEUS")
    ids = set()
    for panel in dash.get("panels", []):
        title = panel.get("title")
        pid = panel.get("id")
        if not isinstance(pid, int) or pid in ids:
            problems.append(f"{name}: panel `{title}`: id missing or not unique")
        ids.add(pid)
        grid = panel.get("gridPos", {})
        if not all(isinstance(grid.get(k), int) for k in ("h", "w", "x", "y")):
            problems.append(f"{name}: panel `{title}`: gridPos needs h, w, x, y")
        elif grid["x"] + grid["w"] > 24:
            problems.append(f"{name}: panel `{title}`: wider than the 24-column grid")
        if not panel.get("targets"):
            problems.append(f"{name}: panel `{title}`: no query")
        refs = set()
        for target in panel.get("targets", []):
            ref = target.get("refId")
            if not ref or ref in refs:
                problems.append(f"{name}: panel `{title}`: refId missing or not unique")
            refs.add(ref)
            if not target.get("expr"):
                problems.append(f"{name}: panel `{title}` {ref}: no expr")
            for holder in (panel, target):
                if holder.get("datasource", {}).get("uid") != "${DS_PROMETHEUS}":
                    problems.append(
                        f"{name}: panel `{title}`: datasource is not ${{DS_PROMETHEUS}}"
                    )
                    break
    return problems


def cmd_dashboards(out):
    problems = []
    if not DASHBOARDS:
        problems.append("deploy/grafana: no dashboard")
    for path in DASHBOARDS:
        problems += check_dashboard_shape(path)
    rules = []
    for dash, title, ref, expr, missing in dashboard_queries():
        problems += missing
        # A recording rule's name must be a metric name: letters, digits, `_` and `:`.
        record = re.sub(
            r"[^a-zA-Z0-9_:]", "_", f"grafana:{Path(dash).stem}:{title}:{ref}"
        )
        rules.append({"record": record, "expr": expr})
    Path(out).write_text(
        yaml.safe_dump(
            {"groups": [{"name": "grafana-panels", "rules": rules}]}, sort_keys=False
        )
    )
    print(f"{len(rules)} panel queries written to {out}")
    return fail(problems)


def selectors(expr):
    """The metric names an expression selects (by name or by a `__name__` matcher)."""
    names = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            if node.name:
                names.append(node.name)
            for m in node.matchers.matchers:
                if m.name == "__name__":
                    names.append(m.value)
        return True

    promql_parser.walk(promql_parser.parse(expr), visit)
    return names


def exported_names(metrics_text):
    """Sample names the exposition's families produce, from their `# TYPE` lines."""
    suffixes = {
        "counter": ["_total", "_created"],
        "gauge": [""],
        "histogram": ["_bucket", "_sum", "_count", "_created"],
        "summary": ["", "_sum", "_count", "_created"],
        "info": ["_info"],
        "stateset": [""],
        "gaugehistogram": ["_bucket", "_gsum", "_gcount"],
        "unknown": [""],
        "untyped": [""],
    }
    names = set()
    for line in metrics_text.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "#" and parts[1] == "TYPE":
            family, kind = parts[2], parts[3]
            # The classic text format names a counter family with its `_total`.
            if kind == "counter" and family.endswith("_total"):
                family = family[: -len("_total")]
            for suffix in suffixes.get(kind, [""]):
                names.add(family + suffix)
    return names


def registered_in(binary, name):
    """Whether the executable holds the family name of a sample name (the string the
    family is registered with)."""
    family = name
    for suffix in ("_total", "_bucket", "_sum", "_count", "_created"):
        if name.endswith(suffix):
            family = name[: -len(suffix)]
            break
    return family.encode() in binary


def cmd_names(metrics_file, binary_file=None):
    exported = exported_names(Path(metrics_file).read_text())
    binary = Path(binary_file).read_bytes() if binary_file else None
    problems = []
    if not exported:
        problems.append(f"{metrics_file}: no `# TYPE` line: not a scrape of the host")
    used = []
    for rule in alert_rules():
        for name in selectors(rule["expr"]):
            used.append((f"alerts.yaml {rule['alert']}", name))
    for dash, title, ref, expr, missing in dashboard_queries():
        problems += missing
        for name in selectors(expr):
            used.append((f"{dash} `{title}` {ref}", name))
    for where, name in used:
        if name not in exported and name not in SCRAPE_SERIES:
            if binary is not None and registered_in(binary, name):
                problems.append(
                    f"{where}: `{name}` is not in the scrape: the host names its family "
                    "but it had no sample, and prometheus-client leaves an empty family "
                    'out (docs/operations.md "Checks")'
                )
            else:
                problems.append(f"{where}: `{name}` is not exported by the host")
    print(
        f"{len(used)} metric selectors checked against {len(exported)} exported names"
    )
    return fail(problems)


def slug(heading):
    """GitHub's anchor for a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def cmd_runbooks():
    anchors = set()
    for line in OPERATIONS.read_text().splitlines():
        match = re.match(r"#{1,6}\s+(.*)", line)
        if match:
            anchors.add(slug(match.group(1)))
    problems = []
    count = 0
    for rule in alert_rules():
        count += 1
        name = rule["alert"]
        if rule.get("labels", {}).get("severity") not in (
            "critical",
            "warning",
            "info",
        ):
            problems.append(
                f"alerts.yaml {name}: severity is not critical, warning or info"
            )
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook_url"):
            if not annotations.get(key):
                problems.append(f"alerts.yaml {name}: no `{key}` annotation")
        url = annotations.get("runbook_url", "")
        page, _, anchor = url.partition("#")
        if page != "docs/operations.md" or anchor not in anchors:
            problems.append(
                f"alerts.yaml {name}: runbook_url `{url}` is not a heading of docs/operations.md"
            )
    print(f"{count} alerts: labels, annotations and runbook anchors checked")
    return fail(problems)


def cmd_env(help_file):
    # `[env: MMM_X=default]`, or `[env: MMM_X]` for a flag whose value is hidden.
    documented = set(
        re.findall(r"\[env: (MMM_[A-Z0-9_]+)[=\]]", Path(help_file).read_text())
    )
    problems = []
    if not documented:
        problems.append(f"{help_file}: no `[env: MMM_…]`: not `mmm-host --help` output")
    used = []
    for path in sorted(K8S.glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not doc:
                continue
            if doc.get("kind") == "ConfigMap":
                used += [(path.name, key) for key in doc.get("data", {})]
            if doc.get("kind") in ("Secret",):
                used += [(path.name, key) for key in doc.get("stringData", {})]
            spec = doc.get("spec", {}).get("template", {}).get("spec", {})
            for container in spec.get("containers", []) + spec.get(
                "initContainers", []
            ):
                used += [(path.name, env["name"]) for env in container.get("env", [])]
    for where, name in used:
        if name.startswith("MMM_") and name not in documented:
            problems.append(f"{where}: `{name}` is not a variable of `mmm-host --help`")
    print(f"{len(used)} environment names checked against {len(documented)} documented")
    return fail(problems)


def dockerignored(path, patterns):
    """Whether .dockerignore's patterns exclude `path` (relative to the context): a pattern
    matches the path or one of its parent directories, `**/` matches any depth, a later
    `!pattern` takes a match back."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pattern = pattern.lstrip("!").strip("/")
        candidates = [pattern]
        if pattern.startswith("**/"):
            candidates.append(pattern[3:])
        for prefix in prefixes:
            for candidate in candidates:
                if fnmatch.fnmatchcase(prefix, candidate) or (
                    candidate.startswith("**/")
                    and fnmatch.fnmatchcase(prefix.split("/")[-1], candidate[3:])
                ):
                    excluded = not negate
    return excluded


def cmd_docker():
    patterns = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    problems = []
    sources = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        words = line.split()
        if words[:1] == ["COPY"] and not any(w.startswith("--from") for w in words):
            args = [w for w in words[1:] if not w.startswith("--")]
            sources += [a for a in args[:-1] if a != "."]
    workspace = tomllib.loads((ROOT / "Cargo.toml").read_text())["workspace"]
    needed = ["Cargo.toml", "Cargo.lock"] + workspace["members"]
    needed += ["examples/host/migrations/sqlite", "examples/host/migrations/postgres"]
    for path in sources + needed:
        if not (ROOT / path).exists():
            problems.append(f"Dockerfile: `{path}` does not exist")
        elif dockerignored(path, patterns):
            problems.append(
                f".dockerignore excludes `{path}`, which the image build needs"
            )
    for path in ("target", ".git", "examples/host/target", "mmm-data"):
        if not dockerignored(path, patterns):
            problems.append(f".dockerignore lets `{path}` into the build context")
    print(f"{len(sources + needed)} build inputs checked against .dockerignore")
    return fail(problems)


def prometheus_get(base, path, **params):
    url = f"{base}{path}"
    if params:
        url += "?" + urllib.parse.urlencode(params)
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            body = json.load(response)
    except urllib.error.HTTPError as e:
        # Prometheus answers a bad query with 400/422 and its reason in the body.
        body = json.load(e)
    if body.get("status") != "success":
        raise RuntimeError(f"{path}: {body.get('error')}")
    return body["data"]


def wait_for(what, predicate, seconds):
    """Polls `predicate` (returning a problem string, or None when satisfied) until it is
    satisfied or `seconds` have passed; returns the last problem."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            problem = predicate()
        except (OSError, RuntimeError, ValueError) as e:
            problem = f"{what}: {e}"
        if problem is None or time.monotonic() > deadline:
            return problem
        # Real time: Prometheus scrapes and evaluates once a second in this check.
        time.sleep(0.5)


def cmd_live(base):
    def target_up():
        targets = prometheus_get(base, "/api/v1/targets")["activeTargets"]
        mine = [t for t in targets if t["labels"].get("job") == "mmm-host"]
        if not mine:
            return "no target of job mmm-host"
        bad = [
            f"{t['scrapeUrl']}: {t['health']} {t['lastError']}"
            for t in mine
            if t["health"] != "up"
        ]
        return f"target not up: {bad}" if bad else None

    def rules_evaluated():
        groups = prometheus_get(base, "/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        if not rules:
            return "no rule loaded"
        pending = [
            r["name"] for r in rules if r.get("lastEvaluation", "").startswith("0001")
        ]
        if pending:
            return f"not evaluated yet: {pending}"
        bad = [f"{r['name']}: {r['lastError']}" for r in rules if r["health"] != "ok"]
        return f"rules failing: {bad}" if bad else None

    def host_series():
        result = prometheus_get(
            base, "/api/v1/query", query='count({job="mmm-host",__name__=~"mmm_.+"})'
        )["result"]
        return (
            None
            if result and float(result[0]["value"][1]) > 0
            else "no mmm_ series scraped yet"
        )

    problems = []
    for what, predicate in (
        ("target", target_up),
        ("series", host_series),
        ("rules", rules_evaluated),
    ):
        problem = wait_for(what, predicate, 30)
        if problem:
            problems.append(problem)
    # Each rule's expression once more through the query API, which reports an execution
    # error (a many-to-many match, say) that a rule's health may not show.
    for rule in alert_rules():
        try:
            prometheus_get(base, "/api/v1/query", query=rule["expr"])
        except (OSError, RuntimeError, ValueError) as e:
            problems.append(f"alerts.yaml {rule['alert']}: {e}")
    queries = 0
    for dash, title, ref, expr, missing in dashboard_queries():
        problems += missing
        queries += 1
        try:
            prometheus_get(base, "/api/v1/query", query=expr)
        except (OSError, RuntimeError, ValueError) as e:
            problems.append(f"{dash} `{title}` {ref}: {e}")

    # Before the first scrape `absent(up)` holds, so MmmHostAllDown may be pending for a
    # moment: what counts is that every alert is quiet once the host has been scraped.
    def quiet():
        alerts = prometheus_get(base, "/api/v1/alerts")["alerts"]
        active = [f"{a['labels'].get('alertname')} ({a['state']})" for a in alerts]
        return f"alerts active on a healthy host: {active}" if active else None

    problem = wait_for("alerts", quiet, 15)
    if problem:
        problems.append(problem)
    print(f"target, rules, {queries} panel queries and active alerts checked")
    return fail(problems)


def cmd_live_down(base):
    def host_down_pending():
        alerts = prometheus_get(base, "/api/v1/alerts")["alerts"]
        down = [a for a in alerts if a["labels"].get("alertname") == "MmmHostDown"]
        if not down:
            return "MmmHostDown is not pending after the host stopped"
        if not down[0]["labels"].get("instance"):
            return "MmmHostDown has no instance label"
        return None

    problem = wait_for("alerts", host_down_pending, 20)
    print("MmmHostDown pending after the host stopped" if problem is None else "")
    return fail([problem] if problem else [])


def main(argv):
    commands = {
        "dashboards": (cmd_dashboards, (1,)),
        "names": (cmd_names, (1, 2)),
        "runbooks": (cmd_runbooks, (0,)),
        "env": (cmd_env, (1,)),
        "docker": (cmd_docker, (0,)),
        "live": (cmd_live, (1,)),
        "live-down": (cmd_live_down, (1,)),
    }
    if (
        len(argv) < 2
        or argv[1] not in commands
        or len(argv) - 2 not in commands[argv[1]][1]
    ):
        print(__doc__, file=sys.stderr)
        return 2
    command, _ = commands[argv[1]]
    return command(*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
