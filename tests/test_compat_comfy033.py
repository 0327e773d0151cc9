"""The UI-to-API converter on ComfyUI 0.33 (frontend 1.49.6) as well as 0.3.75: what changed was read from 0.33's
source (comfy_api/latest/_io.py, comfy_extras/) and the frontend's widget store.

- V3 ``io.WidgetInput`` types shown as widgets: COLOR, COLORS, BOUNDING_BOX, BOUNDING_BOXES, CURVE, RANGE,
  IMAGECOMPARE (and COMPOSITOR); an input whose options carry ``widgetType`` is shown as that widget (a multi-type
  input such as LTXVEmptyLatentAudio's ``frame_rate``), one with ``forceInput`` is a socket. Their values take a
  slot in ``widgets_values`` like any widget's, so the widgets after them must still line up.
- Nodes gain trailing widgets: 0.33's WanContextWindowsManual has ``freenoise``, ``retain_first_frame`` and
  ``split_conds_to_windows`` after ``fuse_method``. A workflow saved before has fewer ``widgets_values``; the
  frontend gives the new widgets their schema default when it loads it, and so does the converter.

The schemas are INPUT_TYPES() of 0.33.0's nodes, copied (tooltips dropped).
"""
from __future__ import annotations

import pytest

CURVE_DEFAULT = {"points": [[0.0, 0.0], [1.0, 1.0]], "interpolation": "monotone_cubic"}
BBOX_DEFAULT = {"x": 0, "y": 0, "width": 512, "height": 512}
SCHEMAS_033 = {
    "ColorToRGBInt": {"required": {"color": ("COLOR", {"default": "#ffffff", "socketless": True})}},
    "CurveEditor": {"required": {"curve": ("CURVE", {"default": CURVE_DEFAULT, "socketless": True})},
                    "optional": {"histogram": ("HISTOGRAM", {})}},
    "TextOverlay": {"required": {
        "images": ("IMAGE", {}), "text": ("STRING", {"default": "", "multiline": True}),
        "font_size": ("FLOAT", {"default": 5.0, "min": 0.1, "max": 100.0, "step": 0.1}),
        "color": ("COLOR", {"default": "#ffffff", "socketless": True}),
        "position": ("COMBO", {"default": "top", "multiselect": False, "options": ["top", "center", "bottom"]}),
        "align": ("COMBO", {"default": "left", "multiselect": False, "options": ["left", "center", "right"]}),
        "outline": ("BOOLEAN", {"default": True})}},
    # editor_state: a BOUNDING_BOXES widget although not socketless
    "CreateBoundingBoxes": {"required": {
        "width": ("INT", {"default": 1024, "min": 1, "max": 16384}),
        "height": ("INT", {"default": 1024, "min": 1, "max": 16384}),
        "editor_state": ("BOUNDING_BOXES", {"default": [], "socketless": False})},
        "optional": {"background": ("IMAGE", {}), "bboxes": ("BOUNDING_BOX,ARRAY,STRING", {}),
                     "last_incoming": ("BOUNDING_BOXES", {"default": [], "socketless": True})}},
    # frame_rate: a "FLOAT,INT" multi-type input the frontend shows as its widgetType
    "LTXVEmptyLatentAudio": {"required": {
        "frames_number": ("INT", {"default": 97, "min": 1, "max": 1000}),
        "frame_rate": ("FLOAT,INT", {"default": 25.0, "min": 1, "max": 1000, "widgetType": "FLOAT"}),
        "batch_size": ("INT", {"default": 1, "min": 1, "max": 4096}),
        "audio_vae": ("VAE", {})}},
    # bboxes: a BOUNDING_BOX with forceInput, a socket (the widgets after it keep their slots)
    "CropByBBoxes": {"required": {
        "image": ("IMAGE", {}),
        "bboxes": ("BOUNDING_BOX", {"default": BBOX_DEFAULT, "socketless": True, "forceInput": True}),
        "output_width": ("INT", {"default": 512, "min": 64, "max": 4096}),
        "output_height": ("INT", {"default": 512, "min": 64, "max": 4096}),
        "padding": ("INT", {"default": 0, "min": 0, "max": 1024}),
        "keep_aspect": ("COMBO", {"default": "stretch", "multiselect": False, "options": ["stretch", "pad"]})}},
    "WanContextWindowsManual": {"required": {
        "model": ("MODEL", {}),
        "context_length": ("INT", {"default": 81, "min": 1, "max": 16384, "step": 4}),
        "context_overlap": ("INT", {"default": 30, "min": 0}),
        "context_schedule": ("COMBO", {"default": "standard_uniform", "multiselect": False, "options": [
            "standard_static", "standard_uniform", "looped_uniform", "batched"]}),
        "context_stride": ("INT", {"advanced": True, "default": 1, "min": 1}),
        "closed_loop": ("BOOLEAN", {"advanced": True, "default": False}),
        "fuse_method": ("COMBO", {"default": "pyramid", "multiselect": False, "options": [
            "pyramid", "relative", "flat", "overlap-linear"]}),
        "freenoise": ("BOOLEAN", {"advanced": True, "default": True}),
        "retain_first_frame": ("BOOLEAN", {"default": False}),
        "split_conds_to_windows": ("BOOLEAN", {"advanced": True, "default": False})}},
    # a schema input without a default: nothing to fill in
    "NoDefault": {"required": {"a": ("INT", {"default": 1}), "b": ("STRING", {})}},
}


def _types(ctype):
    return SCHEMAS_033.get(ctype)


def _one(ctype, widgets):
    from runner.workflow_format import ui_to_api

    wf = {"nodes": [{"id": 1, "type": ctype, "mode": 0, "widgets_values": widgets, "inputs": [], "outputs": []}],
          "links": []}
    return ui_to_api(wf, _types)["1"]["inputs"]


@pytest.mark.parametrize("ctype,widgets,expected", [
    ("ColorToRGBInt", ["#ff8000"], {"color": "#ff8000"}),
    ("CurveEditor", [{"points": [[0, 0], [0.5, 0.8], [1, 1]], "interpolation": "linear"}],
     {"curve": {"points": [[0, 0], [0.5, 0.8], [1, 1]], "interpolation": "linear"}}),
    # COLOR between FLOAT and COMBO: the widgets after it keep their values
    ("TextOverlay", ["hi", 12.0, "#00ff00", "bottom", "center", False],
     {"text": "hi", "font_size": 12.0, "color": "#00ff00", "position": "bottom", "align": "center", "outline": False}),
    ("CreateBoundingBoxes", [64, 32, [{"x": 1, "y": 2, "width": 3, "height": 4}], []],
     {"width": 64, "height": 32, "editor_state": [{"x": 1, "y": 2, "width": 3, "height": 4}], "last_incoming": []}),
    ("LTXVEmptyLatentAudio", [33, 24.0, 2], {"frames_number": 33, "frame_rate": 24.0, "batch_size": 2}),
    ("CropByBBoxes", [256, 128, 8, "pad"], {"output_width": 256, "output_height": 128, "padding": 8, "keep_aspect": "pad"}),
])
def test_v3_widget_types_take_their_widgets_values_slot(ctype, widgets, expected):
    assert _one(ctype, widgets) == expected


def test_v3_widget_type_rules():
    from runner.workflow_format import is_widget

    for name in ("COLOR", "COLORS", "BOUNDING_BOX", "BOUNDING_BOXES", "CURVE", "RANGE", "IMAGECOMPARE"):
        assert is_widget(name, {}), name
    assert is_widget("FLOAT,INT", {"widgetType": "FLOAT"})
    assert not is_widget("BOUNDING_BOX", {"socketless": True, "forceInput": True})
    assert not is_widget("BOUNDING_BOX,ARRAY,STRING", {}) and not is_widget("HISTOGRAM", {})


def test_trailing_widgets_missing_from_an_older_save_take_their_defaults():
    saved_before = [81, 30, "standard_uniform", 1, False, "pyramid"]  # 0.3.75's seven inputs: model + six widgets
    inputs = _one("WanContextWindowsManual", saved_before)
    assert inputs == {"context_length": 81, "context_overlap": 30, "context_schedule": "standard_uniform",
                      "context_stride": 1, "closed_loop": False, "fuse_method": "pyramid",
                      "freenoise": True, "retain_first_frame": False, "split_conds_to_windows": False}
    saved_now = saved_before + [False, True, True]  # a save that has them keeps its values
    assert _one("WanContextWindowsManual", saved_now)["freenoise"] is False
    assert _one("WanContextWindowsManual", saved_now)["split_conds_to_windows"] is True
    # no widgets_values at all (a node saved before it had widgets), and a dict-valued save
    assert _one("ColorToRGBInt", [])["color"] == "#ffffff"
    assert _one("CurveEditor", {})["curve"] == CURVE_DEFAULT
    # no schema default: left unset (validation names the missing input)
    assert _one("NoDefault", []) == {"a": 1}


def test_filled_defaults_do_not_hide_too_many_values():
    from runner.workflow_format import WorkflowError

    with pytest.raises(WorkflowError, match="ColorToRGBInt"):
        _one("ColorToRGBInt", ["#000000", "extra"])


def test_definitions_null_as_frontend_149_saves_it():
    """app.graph.serialize() in frontend 1.49.6 writes "definitions": null when the graph has no subgraphs."""
    from runner.workflow_format import ui_to_api

    wf = {"nodes": [{"id": 1, "type": "ColorToRGBInt", "mode": 0, "widgets_values": ["#102030"], "inputs": [],
                     "outputs": []}], "links": [], "definitions": None}
    assert ui_to_api(wf, _types)["1"]["inputs"] == {"color": "#102030"}
