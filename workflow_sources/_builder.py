"""Build UI-format workflow JSON (what the ComfyUI frontend saves, version 0.4) from a compact spec,
using the live node definitions for input/output names and types (through the runner's public converter
helpers). _template.py lays the result out into a bundled template.

    spec = [
        {"id": 1, "type": "CheckpointLoaderSimple", "widgets": ["random_sd15.safetensors"], "pos": [0, 0]},
        {"id": 2, "type": "CLIPTextEncode", "widgets": ["a cat"], "inputs": {"clip": (1, 1)}},
    ]
    build_ui_workflow(spec)   # needs runner.bootstrap() + runner.init_all_nodes() first
"""
from __future__ import annotations

from runner import is_widget, ordered_inputs


def _node_def(ctype: str):
    import nodes

    cls = nodes.NODE_CLASS_MAPPINGS[ctype]
    it = cls.INPUT_TYPES()
    if hasattr(cls, "GET_SCHEMA"):
        schema = cls.GET_SCHEMA()
        outs = [(o.display_name or o.id or o.io_type, o.io_type) for o in schema.outputs]
    else:
        names = getattr(cls, "RETURN_NAMES", None) or cls.RETURN_TYPES
        outs = [(n, str(t)) for n, t in zip(names, cls.RETURN_TYPES)]
    return it, outs


def build_ui_workflow(spec: list[dict]) -> dict:
    links, nodes_out = [], []
    by_id = {n["id"]: n for n in spec}
    defs = {n["id"]: _node_def(n["type"]) for n in spec}
    out_links: dict[tuple[int, int], list[int]] = {}
    link_id = 0
    node_inputs: dict[int, list[dict]] = {}
    for n in spec:
        it, _ = defs[n["id"]]
        inputs = []
        for name, type_, opts in ordered_inputs(it):
            widget = is_widget(type_, opts)
            src = (n.get("inputs") or {}).get(name)
            if src is None and widget:
                continue
            tname = "COMBO" if isinstance(type_, (list, tuple)) else str(type_)
            entry = {"name": name, "type": tname, "link": None}
            if widget:
                entry["widget"] = {"name": name}
            if src is not None:
                link_id += 1
                src_id, slot = src
                _, src_outs = defs[src_id]
                ltype = src_outs[slot][1]
                links.append([link_id, src_id, slot, n["id"], len(inputs), ltype])
                out_links.setdefault((src_id, slot), []).append(link_id)
                entry["link"] = link_id
            inputs.append(entry)
        node_inputs[n["id"]] = inputs
    for order, n in enumerate(spec):
        _, outs = defs[n["id"]]
        node = {
            "id": n["id"], "type": n["type"], "pos": n.get("pos", [300 * order, 100]), "size": [300, 120],
            "flags": {}, "order": order, "mode": n.get("mode", 0),
            "inputs": node_inputs[n["id"]],
            "outputs": [{"name": name, "type": t, "links": out_links.get((n["id"], k), []), "slot_index": k}
                        for k, (name, t) in enumerate(outs)],
            "properties": {"Node name for S&R": n["type"]},
            "widgets_values": n.get("widgets", []),
        }
        if n.get("title"):
            node["title"] = n["title"]
        nodes_out.append(node)
    return {"last_node_id": max(by_id), "last_link_id": link_id, "nodes": nodes_out, "links": links,
            "groups": [], "config": {}, "extra": {}, "version": 0.4}
