"""The extension loads wherever Python loads it at run time. Its allocator (mimalloc) keeps
its thread-local state in dynamic TLS: with the static kind, a module loaded by `dlopen`
takes from glibc's small static reserve, and a process that has already loaded other
such modules fails to import it ("cannot allocate memory in static TLS block")."""

import shutil
import subprocess
import sys
from pathlib import Path

import mmm_engine._native as native

LOAD_COPY = """
import importlib.util, sys
spec = importlib.util.spec_from_file_location("_native", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
engine = module.Engine.from_yaml(sys.argv[2])
print(len(engine.decide({"tenant_id": "acme", "actor_id": "dev", "kind": "pr.opened",
                         "occurred_at": "2026-11-22T10:00:00Z", "payload": {"lines": 500}},
                        now="2026-11-22T10:00:00Z")["actions"]))
"""


def test_the_extension_loads_next_to_other_copies_of_itself(tmp_path, three):
    # Each copy is a separate library to the dynamic loader, with its own TLS; three of
    # them exhaust the static reserve if the allocator asks for static TLS.
    copies = []
    for i in range(3):
        target = tmp_path / f"copy{i}" / Path(native.__file__).name
        target.parent.mkdir()
        shutil.copy(native.__file__, target)
        copies.append(target)
    script = "import mmm_engine\n" + "".join(
        f"sys.argv[1:] = [{str(c)!r}, {three!r}]\n" + LOAD_COPY for c in copies)
    run = subprocess.run([sys.executable, "-c", "import sys\n" + script], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["3", "3", "3"]
