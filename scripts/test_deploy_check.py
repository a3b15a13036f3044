"""Unit tests of scripts/deploy_check.py's helpers (run by scripts/test-deploy.sh with the
.venv-deploy interpreter: `python -m unittest scripts/test_deploy_check.py`)."""

import sys
import unittest
from pathlib import Path
from typing import ClassVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

import deploy_check as dc


class Slug(unittest.TestCase):
    def test_github_anchors(self):
        self.assertEqual(dc.slug("MmmHostDown"), "mmmhostdown")
        self.assertEqual(
            dc.slug("Playbook rollback (seconds)"), "playbook-rollback-seconds"
        )
        self.assertEqual(
            dc.slug("Migrations: additive only"), "migrations-additive-only"
        )


class Substitute(unittest.TestCase):
    def test_builtins_and_dashboard_variables(self):
        expr, missing = dc.substitute(
            'rate(x{t=~"$tenant"}[$__rate_interval]) + y{t=~"${tenant}"} + z{t=~"[[tenant]]"}',
            {"tenant"},
        )
        self.assertEqual(expr, 'rate(x{t=~".*"}[5m]) + y{t=~".*"} + z{t=~".*"}')
        self.assertEqual(missing, [])

    def test_unknown_variable_is_reported(self):
        expr, missing = dc.substitute('x{a="$nope"}', {"tenant"})
        self.assertEqual(missing, ["nope"])
        self.assertIn("$nope", expr)


class Selectors(unittest.TestCase):
    def test_names_through_functions_ranges_offsets_and_name_matchers(self):
        names = dc.selectors(
            "histogram_quantile(0.95, sum by (le) (rate(a_bucket[5m]))) / on() group_left "
            'sum(b) or vector(0) and rate(c[15m] offset 1w) + {__name__="d"} '
            "+ max_over_time(e[5m:1m])"
        )
        self.assertEqual(sorted(names), ["a_bucket", "b", "c", "d", "e"])


class ExportedNames(unittest.TestCase):
    def test_families_become_sample_names(self):
        text = (
            "# HELP mmm_decisions Decisions.\n"
            "# TYPE mmm_decisions counter\n"
            "# TYPE old_style_total counter\n"
            "# TYPE mmm_latency_seconds histogram\n"
            "# TYPE mmm_depth gauge\n"
            "mmm_depth 3\n"
            "# EOF\n"
        )
        names = dc.exported_names(text)
        for name in (
            "mmm_decisions_total",
            "old_style_total",
            "mmm_latency_seconds_bucket",
            "mmm_latency_seconds_count",
            "mmm_latency_seconds_sum",
            "mmm_depth",
        ):
            self.assertIn(name, names)
        self.assertNotIn("mmm_decisions", names)
        self.assertNotIn("mmm_latency_seconds", names)

    def test_registered_in_strips_the_sample_suffix(self):
        binary = b"\x00mmm_intake_messagesBroker messages\x00"
        self.assertTrue(dc.registered_in(binary, "mmm_intake_messages_total"))
        self.assertFalse(dc.registered_in(binary, "mmm_intake_bytes_total"))


class DockerIgnored(unittest.TestCase):
    patterns: ClassVar[list[str]] = ["**/target", ".git", "mmm-data", "!keep/target"]

    def test_patterns_and_parents(self):
        self.assertTrue(dc.dockerignored("target", self.patterns))
        self.assertTrue(dc.dockerignored("examples/host/target/debug/x", self.patterns))
        self.assertTrue(dc.dockerignored(".git/HEAD", self.patterns))
        self.assertFalse(dc.dockerignored("playbooks", self.patterns))
        self.assertFalse(dc.dockerignored("targets", self.patterns))

    def test_a_later_negation_takes_a_match_back(self):
        self.assertFalse(dc.dockerignored("keep/target", self.patterns))


if __name__ == "__main__":
    unittest.main()
