"""The tooling on current ComfyUI (0.35.x) as well as 0.3.75: what changed was read from 0.35.1's source.

- ``PromptExecutor.execute_async`` reads ``cache_args["ram"]`` and ``cache_args["ram_inactive"]`` on every run.
- V3 ``io.DynamicCombo`` inputs (``COMFY_DYNAMICCOMBO_V3``) carry their selected option's inputs: SaveVideo's
  ``format`` holds a ``codec`` combo (and, later, ``codec`` an ``encoding`` combo). The frontend stores the
  chosen option's widget values right after the combo's; the API prompt names them ``format.codec``.
"""
from __future__ import annotations

import pytest

# SaveVideo's schema as ComfyUI 0.35.x's /object_info gives it (dynamic combos; shapes from its source)
CODEC = ["COMFY_DYNAMICCOMBO_V3", {"options": [
    {"key": "auto", "inputs": {}},
    {"key": "h264", "inputs": {"optional": {"encoding": ["COMFY_DYNAMICCOMBO_V3", {"options": [
        {"key": "auto", "inputs": {}},
        {"key": "re-encode", "inputs": {"required": {"crf": ["FLOAT", {"default": 23.0, "min": 0.0, "max": 51.0}]}}},
    ]}]}}},
]}]
SAVE_VIDEO_035 = {"required": {
    "video": ["VIDEO", {}],
    "filename_prefix": ["STRING", {"default": "video/ComfyUI"}],
    "format": ["COMFY_DYNAMICCOMBO_V3", {"options": [{"key": "auto", "inputs": {"required": {"codec": CODEC}}},
                                                     {"key": "mp4", "inputs": {"required": {"codec": CODEC}}}]}],
}}


def _types(ctype):
    return {"SaveVideo": SAVE_VIDEO_035, "CreateVideo": {"required": {"fps": ["FLOAT", {}]}}}.get(ctype)


def _wf(widgets):
    return {"nodes": [{"id": 1, "type": "CreateVideo", "mode": 0, "widgets_values": [12.0], "inputs": [],
                       "outputs": [{"name": "VIDEO", "type": "VIDEO", "links": [1]}]},
                      {"id": 2, "type": "SaveVideo", "mode": 0, "widgets_values": widgets,
                       "inputs": [{"name": "video", "type": "VIDEO", "link": 1}]}],
            "links": [[1, 1, 0, 2, 0, "VIDEO"]]}


@pytest.mark.parametrize("widgets,expected", [
    (["out/x", "auto", "auto"], {"format": "auto", "format.codec": "auto"}),
    (["out/x", "mp4", "h264", "re-encode", 20.0],
     {"format": "mp4", "format.codec": "h264", "format.codec.encoding": "re-encode",
      "format.codec.encoding.crf": 20.0}),
])
def test_dynamic_combo_widgets_convert(widgets, expected):
    from runner.workflow_format import ui_to_api

    inputs = ui_to_api(_wf(widgets), _types)["2"]["inputs"]
    assert inputs == {"filename_prefix": "out/x", "video": ["1", 0], **expected}


def test_dynamic_combo_dict_widgets_and_count_check():
    from runner.workflow_format import WorkflowError, ui_to_api

    inputs = ui_to_api(_wf({"filename_prefix": "p", "format": "mp4", "format.codec": "auto"}), _types)["2"]["inputs"]
    assert inputs["format.codec"] == "auto"
    with pytest.raises(WorkflowError, match="SaveVideo"):
        ui_to_api(_wf(["out/x", "auto", "auto", "extra"]), _types)


def test_runner_passes_every_cache_arg_both_versions_read(comfy):
    """0.35.1 reads cache_args["ram_inactive"] on every run (KeyError with the old {"lru", "ram"});
    0.3.75 reads "lru"/"ram". The runner's executor gets all of them."""
    from runner import headless as run_workflow

    assert {"lru", "ram", "ram_inactive"} <= set(run_workflow.CACHE_ARGS)
    import execution

    executor = execution.PromptExecutor(run_workflow.HeadlessServer({}, quiet=True),
                                        cache_type=execution.CacheType.CLASSIC, cache_args=dict(run_workflow.CACHE_ARGS))
    assert executor.cache_args["ram_inactive"] == 0
