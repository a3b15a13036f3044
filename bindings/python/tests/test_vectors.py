"""The shared vectors give the same decisions in Python as in Rust."""

import pytest

import mmm_engine
from conftest import VECTORS, load_vector, normalise

FILES = sorted(VECTORS.glob("*.json"))


def test_the_vectors_are_there():
    assert len(FILES) >= 10


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_vector(path):
    vector = load_vector(path)
    engine = mmm_engine.Engine.from_yaml(vector["playbooks"])
    for i, step in enumerate(vector["steps"]):
        expected = step["expected"]
        kwargs = {"now": step["now"], "explain": step.get("explain", False)}
        if "error" in expected:
            with pytest.raises(mmm_engine.MmmError) as caught:
                engine.decide(step["signal"], step.get("context"), **kwargs)
            assert caught.value.code == expected["error"]["code"], f"step {i}"
            assert caught.value.field == expected["error"].get("field"), f"step {i}"
            assert str(caught.value) == expected["error"]["message"], f"step {i}"
        else:
            got = normalise(engine.decide(step["signal"], step.get("context"), **kwargs))
            assert got == expected, f"{path.name} step {i}"
