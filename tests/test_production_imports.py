"""The package's layering (design §2): production code never imports
``lrq.reference``, and ``lrq.reference`` needs nothing but numpy, msgpack and
``lrq.errors`` — it works where the compiled extension is absent."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
import textwrap

import lrq

PACKAGE = os.path.dirname(lrq.__file__)
REFERENCE = os.path.join(PACKAGE, "reference")
# The repository (tests/ and conformance/ beside it), wherever lrq is installed.
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
VECTORS = os.path.join(ROOT, "conformance", "v1", "valid")

# The one allowed use: `lrq verify --reference` imports it inside the command.
LAZY_IMPORT_ALLOWED = {"cli.py"}


def _imports(path: str, *, top_level_only: bool) -> set:
    """Absolute names of the modules ``path`` imports (relative ones resolved within lrq)."""
    package = "lrq.reference" if os.path.dirname(path) == REFERENCE else "lrq"
    with open(path, encoding="utf-8") as fh:
        tree = ast.parse(fh.read(), path)
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module
            found.add(module)
            found.update(f"{module}.{alias.name}" for alias in node.names)
    return found


def _uses_reference(names: set) -> bool:
    return any(n == "lrq.reference" or n.startswith("lrq.reference.") for n in names)


def test_production_modules_do_not_import_the_reference():
    importing = set()
    for name in sorted(os.listdir(PACKAGE)):
        if not name.endswith(".py"):
            continue
        path = os.path.join(PACKAGE, name)
        if _uses_reference(_imports(path, top_level_only=True)):
            importing.add(name)
        elif name not in LAZY_IMPORT_ALLOWED:
            assert not _uses_reference(_imports(path, top_level_only=False)), f"{name} imports lrq.reference"
    assert not importing, f"production modules import lrq.reference at import time: {sorted(importing)}"


def test_the_reference_imports_only_numpy_msgpack_and_lrq_errors():
    stdlib = set(sys.stdlib_module_names)
    for name in sorted(os.listdir(REFERENCE)):
        if name.endswith(".py"):
            for module in _imports(os.path.join(REFERENCE, name), top_level_only=False):
                top = module.split(".")[0]
                assert (top in stdlib or top in ("numpy", "msgpack") or module.startswith("lrq.reference")
                        or module in ("lrq.errors",) or module.startswith("lrq.errors.")), (name, module)


HIDE_EXTENSION = textwrap.dedent("""
    import importlib.abc, sys
    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "lrq._lrq_cffi":
                raise ModuleNotFoundError(f"No module named {name!r}", name=name)
            return None
    sys.meta_path.insert(0, Hide())
""")


def _run(script: str) -> str:
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_reference_decodes_without_the_compiled_extension():
    out = _run(HIDE_EXTENSION + textwrap.dedent(f"""
        import os, sys
        import lrq.reference
        assert "lrq._native" not in sys.modules and "lrq._lrq_cffi" not in sys.modules
        folder = {VECTORS!r}
        names = sorted(n for n in os.listdir(folder) if n.endswith(".lrq"))
        decoded = 0
        for n in names:
            decoded += len(lrq.reference.decode(open(os.path.join(folder, n), "rb").read()))
        try:
            lrq.encode
        except ImportError as exc:
            assert "compiled C core" in str(exc)
        else:
            raise SystemExit("lrq.encode should say the extension is missing")
        print(len(names), decoded)
    """))
    files, tensors = map(int, out.split())
    assert files >= 10 and tensors >= files


BLOCK_REFERENCE = textwrap.dedent("""
    import importlib.abc, sys
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "lrq.reference" or name.startswith("lrq.reference."):
                raise ImportError(f"production imported {name}")
            return None
    sys.meta_path.insert(0, Block())
""")


def test_encode_save_open_products_and_decode_never_import_the_reference(tmp_path):
    _run(BLOCK_REFERENCE + textwrap.dedent(f"""
        import numpy as np
        import lrq
        rng = np.random.default_rng(0)
        a = rng.standard_normal((100, 140)).astype(np.float32)
        matrices = {{"s": lrq.encode(a, "signcut", width=8), "l": lrq.encode(a, "lplr", rank=4),
                     "d": lrq.encode(a, "dense"), "auto": lrq.encode(a, bits=4.0, tile_shape=(64, 64))}}
        path = {str(tmp_path / "m.lrq")!r}
        lrq.save(path, dict(matrices, bias=np.arange(3)), metadata={{"k": "v"}})
        x = rng.standard_normal(140).astype(np.float32)
        with lrq.open(path) as f:
            for name, m in matrices.items():
                assert np.array_equal(f[name] @ x, m @ x)
                assert np.array_equal(lrq.decode(f[name]), lrq.decode(m))
                f[name].T @ rng.standard_normal(100).astype(np.float32)
            lrq.loads(lrq.dumps(f["s"]))
        import sys
        assert "lrq.reference" not in sys.modules
    """))
