"""Convert ComfyUI's UI workflow format (frontend save, version 0.4: ``nodes``/``links``) to the API
prompt format, using the node definitions (``INPUT_TYPES``) of the running ComfyUI.

Handled: positional widget values (a seed widget with ``control_after_generate`` carries one extra
value after it; an upload widget carries one too), dict-valued ``widgets_values``, widgets converted
to inputs, links, Reroute nodes, PrimitiveNode, muted nodes (mode 2) and bypassed nodes (mode 4:
downstream inputs are passed through to the bypassed node's upstream input of the same type),
V3 dynamic combos (``COMFY_DYNAMICCOMBO_V3``, e.g. SaveVideo's ``format``/``codec`` in ComfyUI 0.35):
the selected option's widgets follow the combo's value and become ``<combo>.<input>`` API inputs,
the V3 widget types of newer ComfyUIs (0.33: COLOR, CURVE, BOUNDING_BOX...; any input whose options carry
``widgetType``), and workflows saved before a node gained widgets: as the frontend does on
load, trailing widgets that ``widgets_values`` lacks take their schema ``default`` (when it has one).
"""
from __future__ import annotations

from typing import Any, Callable

WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO",
                # V3 ``io.WidgetInput`` types of newer ComfyUIs (0.33's comfy_api/latest/_io.py) that frontend 1.49
                # registers as widgets (its widget store: an input is a widget when ``widgetType ?? type`` is there)
                "COLOR", "COLORS", "BOUNDING_BOX", "BOUNDING_BOXES", "CURVE", "RANGE", "IMAGECOMPARE", "COMPOSITOR"}
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"  # ComfyUI >= 0.3.7x V3 io.DynamicCombo (SaveVideo's format/codec in 0.35)
VIRTUAL_TYPES = {"Note", "MarkdownNote", "Reroute", "PrimitiveNode"}
MODE_MUTED, MODE_BYPASS = 2, 4


class WorkflowError(ValueError):
    pass


def is_ui_format(data: dict) -> bool:
    return isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data


def api_prompt_of(data: dict) -> dict:
    """The API prompt inside ``data`` (bare, or wrapped as ``{"prompt": {...}}``)."""
    if "prompt" in data and isinstance(data["prompt"], dict) and not is_ui_format(data):
        data = data["prompt"]
    bad = [k for k, v in data.items() if not isinstance(v, dict) or "class_type" not in v]
    if bad:
        raise WorkflowError(f"not an API prompt: entries {bad[:5]} have no class_type")
    return data


def ordered_inputs(input_types: dict) -> list[tuple[str, Any, dict]]:
    """A node's inputs (``INPUT_TYPES()``) in the order the frontend lists them: (name, type, options)."""
    out = []
    for section in ("required", "optional"):
        for name, spec in (input_types.get(section) or {}).items():
            if not isinstance(spec, (list, tuple)) or not spec:
                continue
            opts = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
            out.append((name, spec[0], opts))
    return out


def is_widget(type_: Any, opts: dict) -> bool:
    """Whether the frontend shows an input of this type/options as a widget (its value is in ``widgets_values``)."""
    if opts.get("forceInput") or opts.get("rawLink"):
        return False
    if isinstance(type_, (list, tuple)):
        return True
    # a V3 WidgetInput's as_dict: ``widgetType`` names the frontend widget of a multi-type input (0.33's
    # LTXVEmptyLatentAudio frame_rate: "FLOAT,INT" shown as FLOAT; Painter's mask: a STRING shown as PAINTER)
    if opts.get("widgetType"):
        return True
    return isinstance(type_, str) and (type_ in WIDGET_TYPES or type_ == DYNAMIC_COMBO)


def dynamic_children(type_: Any, opts: dict, name: str, value: Any) -> list[tuple[str, list[set], Any, dict]]:
    """A dynamic combo's widgets for the selected ``value`` as (name, extras, type, options): the frontend
    shows the chosen option's inputs right after the combo, and the API prompt names them
    ``<combo>.<input>`` (nested combos nest the prefix)."""
    if type_ != DYNAMIC_COMBO:
        return []
    for option in opts.get("options") or []:
        if isinstance(option, dict) and option.get("key") == value:
            return [(f"{name}.{n}", _extras(n, t, o), t, o)
                    for n, t, o in ordered_inputs(option.get("inputs") or {}) if is_widget(t, o)]
    return []


CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
UPLOAD_VALUES = {"image", "video", "audio", "upload"}


def _extras(name: str, type_: Any, opts: dict) -> list[set]:
    """The extra values the frontend stores after this widget's own value, as sets of their legal values."""
    extra = []
    if type_ in ("INT", "FLOAT"):
        cag = opts.get("control_after_generate")
        if cag is None:
            cag = name in ("seed", "noise_seed")
        if cag:
            extra.append(CONTROL_VALUES)
    if any(k.endswith("_upload") and v for k, v in opts.items()):
        extra.append(UPLOAD_VALUES)
    return extra


def widget_layout(input_types: dict) -> list[tuple[str, list[set]]]:
    """[(input name, the extra values it may carry), ...] in the frontend's widget order (dynamic combos'
    own widgets only; their options' widgets depend on the value, see :func:`dynamic_children`)."""
    return [(n, e) for n, e, _, _ in _widget_specs(input_types)]


def _widget_specs(input_types: dict) -> list[tuple[str, list[set], Any, dict]]:
    return [(n, _extras(n, t, o), t, o) for n, t, o in ordered_inputs(input_types) if is_widget(t, o)]


def ui_to_api(workflow: dict, input_types_of: Callable[[str], dict | None]) -> dict:
    """Convert a UI-format workflow to an API prompt. ``input_types_of(class)`` returns INPUT_TYPES or None."""
    if (workflow.get("definitions") or {}).get("subgraphs"):  # frontend 1.49 saves "definitions": null
        raise WorkflowError("workflows with subgraphs are not supported by the headless runner yet")
    nodes = {int(n["id"]): n for n in workflow["nodes"]}
    links: dict[int, tuple[int, int, str]] = {}
    for link in workflow.get("links") or []:
        if isinstance(link, dict):
            links[int(link["id"])] = (int(link["origin_id"]), int(link["origin_slot"]), link.get("type"))
        else:
            links[int(link[0])] = (int(link[1]), int(link[2]), link[5] if len(link) > 5 else None)

    def primitive_value(node: dict):
        vals = node.get("widgets_values") or []
        if not vals:
            raise WorkflowError(f"node {node['id']} (PrimitiveNode) has no value")
        return vals[0]

    def resolve(link_id: int, seen=None):
        """Follow a link upstream through reroutes and bypassed nodes.
        Returns ("link", [node_id, slot]) or ("value", v) or None (muted/absent source)."""
        seen = seen or set()
        if link_id in seen:
            raise WorkflowError(f"link {link_id} forms a cycle through reroutes or bypassed nodes")
        seen.add(link_id)
        if link_id not in links:
            return None
        origin_id, slot, ltype = links[link_id]
        src = nodes.get(origin_id)
        if src is None:
            return None
        stype = src.get("type")
        if stype == "Reroute":
            inputs = src.get("inputs") or []
            if not inputs or inputs[0].get("link") is None:
                return None
            return resolve(inputs[0]["link"], seen)
        if stype == "PrimitiveNode":
            return ("value", primitive_value(src))
        mode = src.get("mode", 0)
        if mode == MODE_MUTED:
            return None
        if mode == MODE_BYPASS:
            out_type = None
            outs = src.get("outputs") or []
            if slot < len(outs):
                out_type = outs[slot].get("type")
            out_type = out_type or ltype
            candidates = [i for i in (src.get("inputs") or []) if i.get("link") is not None]
            same_slot = [i for k, i in enumerate(src.get("inputs") or []) if k == slot and i.get("link") is not None]
            for inp in same_slot + candidates:
                if inp.get("type") == out_type:
                    return resolve(inp["link"], seen)
            return None
        return ("link", [str(origin_id), slot])

    prompt: dict[str, dict] = {}
    for nid, node in sorted(nodes.items()):
        ctype = node.get("type")
        if ctype in VIRTUAL_TYPES or node.get("mode", 0) in (MODE_MUTED, MODE_BYPASS):
            continue
        input_types = input_types_of(ctype)
        if input_types is None:
            raise WorkflowError(f"node {nid}: unknown node class '{ctype}' (is the custom node pack installed?)")
        inputs: dict[str, Any] = {}
        wv = node.get("widgets_values")
        layout = _widget_specs(input_types)
        if isinstance(wv, dict):
            for name, _, type_, opts in layout:  # the list grows by the chosen options' widgets
                if name in wv:
                    inputs[name] = wv[name]
                elif "default" in opts:  # a widget the saving frontend's node did not have yet
                    inputs[name] = opts["default"]
                else:
                    continue
                layout += dynamic_children(type_, opts, name, inputs[name])
        else:
            wv = wv or []
            pos, i = 0, 0
            while i < len(layout):
                name, extras, type_, opts = layout[i]
                i += 1
                if pos < len(wv):
                    inputs[name] = wv[pos]
                    pos += 1
                elif "default" in opts:
                    # Saved before the node gained this (trailing) widget, e.g. 0.33's WanContextWindowsManual
                    # freenoise/retain_first_frame/split_conds_to_windows: the frontend fills in the default.
                    inputs[name] = opts["default"]
                else:
                    continue
                layout[i:i] = dynamic_children(type_, opts, name, inputs[name])
                for legal in extras:  # e.g. "fixed" after a seed, "image" after an upload combo
                    if pos < len(wv) and isinstance(wv[pos], str) and wv[pos] in legal:
                        pos += 1
            if pos < len(wv):
                raise WorkflowError(f"node {nid} ({ctype}): widgets_values has {len(wv)} values but the node's "
                                    f"widgets {[w[0] for w in layout]} take only {pos}")
        for inp in node.get("inputs") or []:
            name = inp.get("name")
            if inp.get("widget") and isinstance(inp["widget"], dict):
                name = inp["widget"].get("name", name)
            if inp.get("link") is None:
                continue
            link_id = int(inp["link"])
            if link_id not in links or links[link_id][0] not in nodes:
                why = "is not in the workflow's links" if link_id not in links else \
                    f"comes from node {links[link_id][0]}, which is not in the workflow"
                raise WorkflowError(f"node {nid} ({ctype}) input '{name}': broken link {link_id} {why}")
            got = resolve(link_id)
            if got is None:  # source muted or missing: as the frontend, keep any widget value, else unset
                continue
            inputs[name] = got[1]
        prompt[str(nid)] = {"class_type": ctype, "inputs": inputs, "_meta": {"title": node.get("title") or ctype}}
    return prompt
