"""Static check that every Python file of the repo runs on Python 3.8: vermin, told what Python evaluates.

vermin alone cannot get annotations right for us: without --eval-annotations it skips them, so a
`def f(x: int | None)` in a module WITHOUT `from __future__ import annotations` (an import-time
TypeError on 3.8/3.9) passes; with it, it also flags modules that DO have the import, where the
annotations are never evaluated. So: in a module with the import, blank out each annotation
(same lines, same columns), then let vermin evaluate what is left, union types included.
Every violation prints as `path:line: ...` and the exit code is 1.

    python .ci/check_min_python.py [--target 3.8] [FILES...]    # default: every .py git knows of
"""
from __future__ import annotations

import argparse
import ast
import os
import subprocess
import sys
import tempfile

# Methods of builtin and stdlib types that vermin only sees on a literal (`"a".removeprefix`), not
# on a name whose type it cannot infer (`path.removeprefix`); their names are distinctive enough
# to flag on any receiver. `x.str.removeprefix` is pandas' accessor (pandas 1.4+), not Python's.
NEW_METHODS = {"removeprefix": "3.9", "removesuffix": "3.9", "is_relative_to": "3.9", "with_stem": "3.9",
               "randbytes": "3.9", "bit_count": "3.10", "hardlink_to": "3.10"}

VERMIN_FLAGS = ["--no-tips", "--violations", "--eval-annotations", "--feature", "union-types",
                "--format", "parsable", "--no-config-file"]


def repo_python_files(root: str) -> list[str]:
    """Tracked and new (not ignored) .py files, so a module someone has just split off is checked too."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.py"],
                         cwd=root, capture_output=True, text=True, check=True).stdout
    return sorted(p for p in set(out.split()) if os.path.isfile(os.path.join(root, p)))


def has_future_annotations(tree: ast.Module) -> bool:
    return any(isinstance(node, ast.ImportFrom) and node.module == "__future__"
               and any(a.name == "annotations" for a in node.names) for node in tree.body)


def annotation_nodes(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            a = node.args
            for arg in a.posonlyargs + a.args + a.kwonlyargs + [a.vararg, a.kwarg]:
                if arg is not None and arg.annotation is not None:
                    yield arg.annotation
            if node.returns is not None:
                yield node.returns
        elif isinstance(node, ast.AnnAssign):
            yield node.annotation


def blank_annotations(source: bytes) -> bytes:
    """The source with every annotation replaced by `0` (or `(0 ... )` across lines), lines kept."""
    tree = ast.parse(source)
    if not has_future_annotations(tree):
        return source
    lines = source.splitlines(keepends=True)
    starts = [0]
    for line in lines:
        starts.append(starts[-1] + len(line))
    out = bytearray(source)
    for node in annotation_nodes(tree):
        # ast offsets are UTF-8 byte columns, so work on bytes
        begin = starts[node.lineno - 1] + node.col_offset
        end = starts[node.end_lineno - 1] + node.end_col_offset
        span = bytearray(c if c == 10 else 32 for c in out[begin:end])  # keep newlines, blank the rest
        if node.lineno == node.end_lineno:
            span[0:1] = b"0"
        else:  # brackets keep the line breaks legal
            span[0:2], span[-1:] = b"(0", b")"
        out[begin:end] = span
    return bytes(out)


def _is_dict(node: ast.AST) -> bool:
    return isinstance(node, (ast.Dict, ast.DictComp)) or (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict")


def beyond_vermin(tree: ast.AST, target: tuple[int, ...]):
    """(line, message) for what vermin misses on untyped names: NEW_METHODS calls (pandas' .str
    accessor aside) and `|` / `|=` on a dict display, comprehension or dict(...) call (3.9)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in NEW_METHODS:
            since = NEW_METHODS[node.attr]
            pandas_str = isinstance(node.value, ast.Attribute) and node.value.attr == "str"
            if not pandas_str and tuple(map(int, since.split("."))) > target:
                yield node.lineno, f"needs Python {since}: '.{node.attr}()' (a str/bytes, pathlib, random or int method)"
        elif target < (3, 9) and (
                (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)
                 and (_is_dict(node.left) or _is_dict(node.right)))
                or (isinstance(node, ast.AugAssign) and isinstance(node.op, ast.BitOr) and _is_dict(node.value))):
            yield node.lineno, "needs Python 3.9: dict union with | (use {**a, **b})"


def main(argv=None) -> int:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="3.8", help="oldest Python to support (default: 3.8)")
    beside = os.path.join(os.path.dirname(sys.executable), "vermin")
    parser.add_argument("--vermin", default=beside if os.path.exists(beside) else "vermin",
                        help="vermin executable (default: the one beside this python, else on PATH)")
    parser.add_argument("--root", default=root, help="the tree to check (default: this repo)")
    parser.add_argument("files", nargs="*", help="files relative to --root (default: every .py git knows of)")
    args = parser.parse_args(argv)
    root = args.root
    files = args.files or repo_python_files(root)
    target = tuple(int(x) for x in args.target.split("."))
    violations = []
    with tempfile.TemporaryDirectory(prefix="min-python-") as tmp:
        for rel in files:
            with open(os.path.join(root, rel), "rb") as f:
                source = f.read()
            try:
                blanked = blank_annotations(source)
            except SyntaxError as e:  # a syntax error on 3.11 is one on 3.8 too
                print(f"{rel}:{e.lineno}: does not parse: {e.msg}")
                return 1
            violations += [f"{rel}:{line}: {msg}" for line, msg in beyond_vermin(ast.parse(source), target)]
            dest = os.path.join(tmp, rel)
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with open(dest, "wb") as f:
                f.write(blanked)
        proc = subprocess.run([args.vermin, f"-t={args.target}-", *VERMIN_FLAGS, *files],
                              cwd=tmp, capture_output=True, text=True)
        tmp_real = os.path.realpath(tmp)
    # parsable lines: path:line:col:py2:py3:feature; the per-file and overall verdicts have no line
    vermin_found = 0
    for line in proc.stdout.splitlines():
        parts = line.split(":", 5)
        if len(parts) == 6 and parts[1]:
            path, lineno, _, _, py3, feature = parts
            path = os.path.relpath(path, tmp_real)  # vermin prints the copy's absolute path
            violations.append(f"{path}:{lineno}: needs Python {py3}: {feature}")
            vermin_found += 1
    if proc.returncode not in (0, 1) or (proc.returncode == 1 and not vermin_found):
        print(proc.stdout + proc.stderr, file=sys.stderr)
        print(f"error: vermin failed (exit {proc.returncode})", file=sys.stderr)
        return 2
    for v in sorted(violations, key=lambda v: (v.split(":")[0], int(v.split(":")[1]))):
        print(v)
    print(f"{len(files)} files checked for Python {args.target}: {len(violations)} violations"
          + ("" if not violations else " (in a module without `from __future__ import annotations`, "
             "annotations count as code; add that import after the docstring, or avoid the feature)"))
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
