"""The parts of `bench studio` that need no live studio: endpoint discovery and filling, the checks, the figures."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from knowledge_helpers import entry, make_store
from reason_iad.bench.studio_api import Endpoint, Parameter, find_endpoint, hidden_endpoints
from reason_iad.bench.studio_bench import Edit, LoadPlan, LoadResult, Overflow
from reason_iad.bench.studio_checks import check_banks, check_edits, run_checks
from reason_iad.errors import UserError

INSPECT = Endpoint(
    "/inspect",
    (
        Parameter("img", "Query image", "Image"),
        Parameter("choice", "Category", "Dropdown", True, "auto-detect"),
        Parameter("question_text", "Question", "Textbox"),
        Parameter("tmpl", "Normal template (optional)", "Image"),
        Parameter("auto", "Use the nearest exemplar", "Checkbox", True, True),
        Parameter("mode_", "Mode", "Radio", True, "full"),
        Parameter("steps_", "Steps", "Slider", True, 15),
        Parameter("pinned", "Knowledge to use", "CheckboxGroup"),
    ),
)


def test_wanted_inputs_fill_by_name_or_label_and_the_rest_keep_defaults_or_neutral_values():
    values = INSPECT.arguments({"image": "q.png", "mode": "latent"})
    assert values == ["q.png", "auto-detect", "", None, True, "latent", 15, []]
    assert INSPECT.keywords({"category": "Test / wood"})["choice"] == "Test / wood"


def test_renamed_parameters_are_still_found_and_an_unknown_wish_is_refused():
    renamed = Endpoint("/inspect", (Parameter("query_image", "Query", "Image"), Parameter("mode", "How", "Radio")))
    assert renamed.keywords({"image": "q.png", "mode": "plain"}) == {"query_image": "q.png", "mode": "plain"}
    shadowed = Endpoint(
        "/inspect", (Parameter("evidence_mode", "Evidence", "Radio"), Parameter("mode", "Mode", "Radio"))
    )
    assert shadowed.keywords({"mode": "full"}) == {"evidence_mode": None, "mode": "full"}
    with pytest.raises(UserError, match="no parameter matching 'seed'"):
        INSPECT.arguments({"seed": 3})


def test_hidden_endpoints_come_from_the_config_and_public_ones_win():
    config = {
        "components": [
            {"id": 1, "type": "image", "props": {"label": "Add a normal image"}},
            {"id": 2, "type": "dropdown", "props": {"label": "Category"}},
            {"id": 3, "type": "state", "props": {}},
        ],
        "dependencies": [
            {"api_name": "add_exemplar_fn", "api_visibility": "private", "inputs": [1, 2, 3]},
            {"api_name": "inspect", "api_visibility": "public", "inputs": [1]},
        ],
    }
    hidden = hidden_endpoints(config)
    assert list(hidden) == ["/add_exemplar_fn"]
    endpoint = hidden["/add_exemplar_fn"]
    assert not endpoint.public and [p.component for p in endpoint.parameters] == ["Image", "Dropdown"]
    assert endpoint.arguments({"category": "Test / wood"}) == [None, "Test / wood"]
    public = Endpoint("/add_exemplar", endpoint.parameters)
    assert find_endpoint(hidden | {"/add_exemplar": public}, "add", "exemplar") is public
    assert find_endpoint(hidden, "add", "exemplar") is endpoint
    assert find_endpoint(hidden, "remove", "exemplar") is None


def test_check_edits_finds_lost_unrecorded_and_misversioned_edits(tmp_path):
    store = make_store(tmp_path / "kb")
    edits = [Edit(e.id, store.add([e], "ana")) for e in (entry("gear", f"d{i}", dataset="Load") for i in range(3))]
    assert check_edits(store, edits) == []
    assert "missing" in check_edits(store, edits + [Edit("load/gear/never", edits[-1].version + 1)])[0]
    wrong = [Edit(edits[0].id, edits[1].version)]
    assert check_edits(store, wrong) == [
        f"edit {edits[0].id}: the history has no 'add' of it at version {edits[1].version}"
    ]
    assert "same version" in check_edits(store, [edits[0], edits[0]])[-1]


class FakeMemory:
    """The reads `check_banks` makes of a `VisualMemory`, over plain data."""

    def __init__(self, exemplars, recorded, bank_ids, num_patches, version=3):
        self.records = [SimpleNamespace(id=i) for i in exemplars]
        self.info = SimpleNamespace(exemplar_ids=tuple(recorded), num_patches=num_patches, version=version)
        self.store = SimpleNamespace(read_bank=lambda d, c: (None, np.asarray(bank_ids, dtype=object), None))

    def categories(self):
        return [("Test", "wood")]

    def exemplars(self, dataset, category):
        return self.records

    def bank_info(self, dataset, category):
        return self.info


def test_check_banks_finds_a_bank_that_does_not_match_its_exemplars():
    assert check_banks(FakeMemory(["a", "b"], ["a", "b"], ["a", "a", "b"], 3)) == []
    assert "built from 1 exemplars, the category has 2" in check_banks(FakeMemory(["a", "b"], ["a"], ["a"], 1))[0]
    assert "not the category's" in check_banks(FakeMemory(["a"], ["a"], ["a", "gone"], 2))[0]
    assert "record says 5" in check_banks(FakeMemory(["a"], ["a"], ["a"], 5))[0]
    assert check_banks(FakeMemory(["a", "b"], [], [], 0, version=0)) == []  # never built: built on first use


def test_check_banks_follows_exemplars_changed_through_the_studio():
    memory = FakeMemory(["a"], ["a"], ["a"], 1)
    assert check_banks(memory, {"a": True}) == []
    assert "expected removed" in check_banks(memory, {"a": False})[0]
    assert "exemplar table False, bank False" in check_banks(memory, {"x": True})[0]
    stale = FakeMemory(["a", "b"], ["a"], ["a"], 1)  # b stored, its bank not updated
    assert "exemplar table True, bank False" in check_banks(stale, {"b": True})[-1]


def _result(**overflow) -> LoadResult:
    plan = LoadPlan(image=Path("q.png"), exemplar=Path("e.png"), choice="Test / wood")
    fields = {
        "submitted": 23,
        "accepted": 17,
        "refusals": ("Queue is full! Please try again.",),
        "refusal_ms": (40.0,),
        "other_errors": (),
        "next_inspect_ms": 900.0,
        "probe_ms": 12.0,
        "probe_reply": 'HTTP 503: {"detail":"Queue is full. Max size is 16 and size is 16."}',
    } | overflow
    return LoadResult(
        plan, inspect_ms=[100.0, 300.0, 200.0, 400.0], answers=["### Answer: A"] * 4, overflow=Overflow(**fields)
    )


def test_run_checks_wants_clear_fast_refusals_and_a_studio_that_still_answers():
    assert run_checks(_result(), None) == []
    assert "no bound" in run_checks(_result(refusals=(), refusal_ms=()), None)[0]
    assert "took 12000 ms" in run_checks(_result(refusal_ms=(12000.0,)), None)[0]
    assert "did not answer" in run_checks(_result(next_inspect_ms=None), None)[0]
    assert "direct call into the full queue was not refused" in run_checks(_result(probe_ms=None), None)[0]
    assert "not refused within 1000 ms" in run_checks(_result(probe_ms=4000.0), None)[0]


def test_latency_percentiles_and_the_report():
    result = _result()
    assert (result.percentile_ms(50), result.percentile_ms(95)) == (200.0, 400.0)
    report = result.report()
    assert "p50 200 ms, p95 400 ms" in report and "1 refused within 40 ms" in report


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--category", "wood"], "'dataset / category'"),
        (["--image", "/no/such.png"], "--image: no file"),
        (["--rebuilds", "-1"], "must not be negative"),
    ],
)
def test_bench_studio_refuses_bad_flags_in_one_line_before_starting_anything(argv, message, capsys, monkeypatch):
    from reason_iad.bench import studio_checks
    from reason_iad.cli import main

    monkeypatch.setattr(studio_checks.StudioProcess, "__enter__", lambda self: pytest.fail("no studio may start"))
    assert main(["bench", "studio", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_a_studio_that_cannot_start_is_one_clear_error_and_its_folder_is_removed(tmp_path, monkeypatch):
    from reason_iad.bench import studio_checks

    script = tmp_path / "app.py"
    script.write_text("import sys\nprint('the model could not be loaded')\nsys.exit(3)\n")
    monkeypatch.setattr(studio_checks, "APP", script)
    process = studio_checks.StudioProcess("embedded", None, 16, startup_s=30)
    with pytest.raises(UserError, match="exited with code 3: the model could not be loaded"):
        with process:
            pytest.fail("the block must not run")
    assert not process.folder.exists()
