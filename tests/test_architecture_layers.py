"""The architecture the README describes (issue 13), checked on the source text: no ComfyUI needed.

- the pure modules of model_patches/ import no ComfyUI module;
- no module in model_patches/ or nodes/ is over 350 lines;
- below nodes/ nothing names a node (no ``NODE`` constant, ``node`` parameter or attribute, no node name in a
  string other than a docstring);
- each video convention is written once (model_patches/video.py).
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATCHES = ROOT / "model_patches"
COMFY_MODULES = {"comfy", "comfy_api", "comfy_execution", "comfy_extras", "folder_paths", "latent_preview", "nodes",
                 "server", "execution"}


def _py(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _imports(tree: ast.AST) -> set[str]:
    roots = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.Import):
            roots.update(a.name.split(".")[0] for a in n.names)
        elif isinstance(n, ast.ImportFrom) and n.level == 0 and n.module:
            roots.add(n.module.split(".")[0])
    return roots


def _docstrings(tree: ast.AST) -> set[int]:
    ids = set()
    for n in ast.walk(tree):
        if isinstance(n, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and n.body:
            first = n.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):
                ids.add(id(first.value))
    return ids


def _node_names() -> set[str]:
    names = set()
    for p in _py(ROOT / "nodes"):
        text = p.read_text()
        names.update(re.findall(r'node_id\("([A-Za-z0-9_]+)"\)', text))
        names.update(re.findall(r'^(?:NODE|LOADER)\s*=\s*"([A-Za-z0-9_]+)"', text, re.M))
    return names


def test_pure_modules_import_no_comfyui():
    pure = [p for p in _py(PATCHES) if "hooks" not in p.relative_to(PATCHES).parts]
    assert len(pure) >= 10
    bad = {str(p.relative_to(ROOT)): sorted(_imports(ast.parse(p.read_text())) & COMFY_MODULES) for p in pure}
    assert not {k: v for k, v in bad.items() if v}


def test_no_module_over_350_lines():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in _py(PATCHES) + _py(ROOT / "nodes")}
    assert not {k: n for k, n in sizes.items() if n > 350}


def test_no_node_name_below_nodes():
    names = _node_names()
    assert {"CrossStreamAttention", "BaseResidualNoise", "IterativeReuseSampler", "RIFELoader"} <= names
    found = []
    for p in _py(PATCHES):
        tree = ast.parse(p.read_text())
        docs = _docstrings(tree)
        where = str(p.relative_to(ROOT))
        for n in ast.walk(tree):
            if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
                found += [(where, n.lineno, name) for name in names if re.search(rf"\b{name}\b", n.value)]
            elif isinstance(n, ast.Name) and n.id == "NODE":
                found.append((where, n.lineno, "NODE"))
            elif isinstance(n, ast.Attribute) and n.attr == "node":
                found.append((where, n.lineno, ".node"))
            elif isinstance(n, ast.arg) and n.arg == "node":
                found.append((where, n.lineno, "node="))
            elif isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name) and n.target.id == "node":
                found.append((where, n.lineno, "node field"))
    assert not found


def test_video_conventions_written_once():
    rules = {"frame axis": re.compile(r"2 if [\w.\[\]\"']+\.ndim == 5 else 0|shape\[2\] if .*ndim == 5 else"),
             "percent to sigma": re.compile(r"percent_to_sigma\("),
             "anchor resolution": re.compile(r"^def (resolve_anchor|anchor_index)\(", re.M)}
    for what, rule in rules.items():
        where = [str(p.relative_to(ROOT)) for p in _py(PATCHES) + _py(ROOT / "nodes")
                 for _ in rule.finditer(p.read_text())]
        assert set(where) == {"model_patches/video.py"}, (what, where)


# What names a model family: its class and module names, the attributes only one family has, its ComfyUI node and
# latent-format names. Case-sensitive, so that words like "want" or "swan" do not count.
FAMILY_NAMES = re.compile(
    r"\bWan|\bwan(?:_|\b)|Hunyuan|hunyuan|LTX|ltxv|ltxav|MiniMax|minimax|\bH3\b|flipped_img_txt|rope_embedder|"
    r"pe_embedder|patch_embedding|double_blocks|transformer_blocks|SD15|SDXL|\bSD1|UNetModel|SpatialTransformer|"
    r"BasicTransformerBlock|use_middle_indices_grid|vae_scale_factors")


def _family_mentions(path: Path) -> list[tuple]:
    """Where ``path`` names a model family in code: identifiers (names, attributes, parameters, functions, classes,
    imports) and string constants that are not docstrings. Comments and docstrings may explain."""
    tree = ast.parse(path.read_text())
    docs = _docstrings(tree)
    found = []
    for n in ast.walk(tree):
        words = []
        if isinstance(n, ast.Constant) and isinstance(n.value, str) and id(n) not in docs:
            words.append(n.value)
        elif isinstance(n, ast.Name):
            words.append(n.id)
        elif isinstance(n, ast.Attribute):
            words.append(n.attr)
        elif isinstance(n, ast.arg):
            words.append(n.arg)
        elif isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            words.append(n.name)
        elif isinstance(n, ast.alias):
            words += [n.name, n.asname or ""]
        elif isinstance(n, ast.ImportFrom):
            words.append(n.module or "")
        found += [(n.lineno if hasattr(n, "lineno") else 0, m.group(0)) for w in words for m in FAMILY_NAMES.finditer(w)]
    return found


def test_family_detector_sees_family_names(tmp_path):
    """The check below can fail: a module that reads a family's attribute or names it in a message is caught."""
    p = tmp_path / "m.py"
    p.write_text('"""Wan in a docstring is fine."""\n# Hunyuan in a comment too\n'
                 'def f(dm):\n    return dm.rope_embedder, "LTX-Video", getattr(dm, "flipped_img_txt")\n'
                 'def g(x):\n    return "want", x.swan\n')
    assert sorted(w for _, w in _family_mentions(p)) == ["LTX", "flipped_img_txt", "rope_embedder"]


def test_no_family_named_in_hooks_outside_adapters():
    """Technique modules under model_patches/hooks/ ask the family's adapter (hooks/adapters/) and never name a
    model family. Fails e.g. when ``getattr(dm, "flipped_img_txt")`` or a ``"HunyuanVideo 1.5 ..."`` message moves
    back into hooks/dit.py."""
    hooks = PATCHES / "hooks"
    adapters = hooks / "adapters"
    assert len(_py(adapters)) >= 6   # the registry, the interface and one module per family
    found = {str(p.relative_to(ROOT)): _family_mentions(p) for p in _py(hooks) if adapters not in p.parents}
    assert not {k: v for k, v in found.items() if v}


def test_every_family_has_its_adapter_module():
    names = {p.stem for p in _py(PATCHES / "hooks" / "adapters")}
    assert {"sd_unet", "wan", "hunyuan_video", "ltxv", "minimax_h3"} <= names
