"""Label lists in the AI Studio / PaddleClas format: one `relative/path.jpg label` per line."""
from __future__ import annotations

import os

from ..errors import DataError

SPLITS = ("train", "eval", "test")
# File names tried for each split, first match wins (case-insensitive): the AI Studio layout
# the article used, then PaddleClas's names.
LIST_NAMES = {
    "train": ("Train.txt", "train_list.txt"),
    "eval": ("Eval.txt", "val_list.txt", "Val.txt"),
    "test": ("Test.txt", "test_list.txt"),
}
CLASS_FILE = "labels.txt"


def find_list(data_dir: str, split: str) -> str | None:
    """The label list file for `split` in data_dir, or None."""
    try:
        present = {name.lower(): name for name in os.listdir(data_dir)}
    except OSError:
        return None
    for name in LIST_NAMES[split]:
        if name.lower() in present:
            return os.path.join(data_dir, present[name.lower()])
    return None


def parse_list(text: str, where: str) -> list[tuple[str, int]]:
    """Parse a label list; `where` names the file in errors. Paths use '/' whatever the OS."""
    entries = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        parts = line.strip().rsplit(None, 1)
        if len(parts) != 2:
            raise DataError(f"label list {where} line {number}: expected 'relative/path.jpg label', "
                            f"got {line.strip()[:60]!r}; fix the list")
        path, label = parts
        try:
            label = int(label)
        except ValueError:
            raise DataError(f"label list {where} line {number}: label {label!r} is not an integer; "
                            "fix the list") from None
        path = path.replace("\\", "/")
        entries.append((path[2:] if path.startswith("./") else path, label))  # no str.removeprefix: 3.8
    return entries


def read_list(path: str, num_classes: int | None) -> list[tuple[str, int]]:
    """Read and check a label list: labels in 0..num_classes-1, at least one entry."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read label list {path} ({e.__class__.__name__}); fix or regenerate it") from None
    entries = parse_list(text, path)
    if not entries:
        raise DataError(f"label list {path} is empty: the split has no images; regenerate the lists")
    for number, (_, label) in enumerate(entries, 1):
        if label < 0 or (num_classes is not None and label >= num_classes):
            top = "" if num_classes is None else f"..{num_classes - 1}"
            raise DataError(f"label list {path} entry {number}: label {label} out of range 0{top}; "
                            f"fix the list or {CLASS_FILE}")
    return entries


def format_list(entries: list[tuple[str, int]]) -> str:
    """A label list's text: 'relative/path.jpg label' per line."""
    return "".join(f"{path} {label}\n" for path, label in entries)


def read_class_names(path: str) -> list[str]:
    """labels.txt: one class per line, either `name` or PaddleClas's `id name` (ids 0, 1, ...)."""
    try:
        with open(path, encoding="utf-8") as f:
            lines = [line.strip() for line in f if line.strip()]
    except (OSError, UnicodeDecodeError) as e:
        raise DataError(f"cannot read class list {path} ({e.__class__.__name__}); fix or regenerate it") from None
    names = []
    for i, line in enumerate(lines):
        first, _, rest = line.partition(" ")
        if rest.strip() and first.isdigit():
            if int(first) != i:
                raise DataError(f"class list {path} line {i + 1}: id {first}, expected {i}; "
                                "ids must count 0, 1, 2, ... in order")
            line = rest.strip()
        names.append(line)
    if len(names) < 2:
        raise DataError(f"class list {path} names {len(names)} class(es); a classifier needs at least 2")
    if len(set(names)) != len(names):
        raise DataError(f"class list {path} names a class twice; fix it")
    return names


def format_class_names(names: list[str]) -> str:
    """labels.txt's text: 'id name' per line."""
    return "".join(f"{i} {name}\n" for i, name in enumerate(names))


def first_per_class(labels, k: int | None) -> list[int]:
    """Indices of the first k entries of each class, in list order (all when k is None)."""
    if k is None:
        return list(range(len(labels)))
    seen: dict[int, int] = {}
    keep = []
    for i, label in enumerate(labels):
        if seen.get(label, 0) < k:
            seen[label] = seen.get(label, 0) + 1
            keep.append(i)
    return keep
