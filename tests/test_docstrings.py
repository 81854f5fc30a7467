"""Every public function and method of the library says in one line what it does (a habit of the
codebases we learn from: the reader of a call should not have to open the body)."""
import ast
import glob
import os

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _undocumented(path):
    tree = ast.parse(open(path, encoding="utf-8").read())
    out = []

    def walk(node, in_function):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                # closures are a function's own business; public names are the API
                if not in_function and not child.name.startswith("_") and not ast.get_docstring(child):
                    out.append(f"{os.path.relpath(path, ROOT)}:{child.lineno} {child.name}")
                walk(child, True)
            else:
                walk(child, in_function)
    walk(tree, False)
    return out


def test_every_public_function_of_the_library_has_a_docstring():
    files = sorted(glob.glob(os.path.join(ROOT, "paddle_cnns", "**", "*.py"), recursive=True))
    assert len(files) > 20
    missing = [m for f in files for m in _undocumented(f)]
    assert missing == [], "no docstring: " + ", ".join(missing)


def test_the_check_sees_a_missing_docstring(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("def public(x):\n    def inner():\n        return x\n    return inner\n\n"
                   "class K:\n    def method(self):\n        '''Documented.'''\n\n    def other(self):\n        pass\n")
    assert [m.split(" ")[1] for m in _undocumented(str(bad))] == ["public", "other"]
