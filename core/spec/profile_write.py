"""Profiles written back as the user's file: the one YAML writer of profiles.

A profile saved unedited is the file it was read from, byte for byte. After an edit, only the keys
that changed are rewritten in the file's round-trip tree (ruamel.yaml), so its comments, key order,
quoting and flow style stay, and its paths stay as written: those the form holds absolute are
written relative to the profile's folder where they lie in the folder above it (a checkout's
`profiles/` and `data/`), so the file still works on a colleague's checkout.
ruamel.yaml is imported inside the functions: the console's first paint does not wait for it.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from energy_console.core.spec.profile_yaml import reads_as_text

PATH_KEYS = ("path", "label_map", "folder")  # of a model entry (folders) and of its dataset


def _yaml() -> Any:
    from ruamel.yaml import YAML
    from ruamel.yaml.representer import RoundTripRepresenter

    class Representer(RoundTripRepresenter):
        """Quotes text the reader (YAML 1.1 rules) would take for a boolean, null or number."""

        def represent_str(self, data: str) -> Any:
            if reads_as_text(data):
                return super().represent_str(data)
            return self.represent_scalar("tag:yaml.org,2002:str", data, style="'")

    Representer.add_representer(str, Representer.represent_str)
    writer = YAML()  # round trip: comments, key order, quotes and flow style kept
    writer.Representer = Representer
    writer.preserve_quotes = True
    writer.width = 4096  # never fold a long line the user wrote on one
    writer.indent(mapping=2, sequence=4, offset=2)  # `  - item`, as the shipped profiles are
    writer.brace_single_entry_mapping_in_flow_sequence = True  # [{a: 1}] stays [{a: 1}]
    writer.default_flow_style = None  # new lists of numbers as [1, 8], as users write them
    writer.representer.ignore_aliases = lambda data: True  # the reader refuses anchors
    return writer


def _dump(writer: Any, data: Any) -> str:
    out = io.StringIO()
    writer.dump(data, out)
    return out.getvalue()


def profile_text(document: dict[str, Any]) -> str:
    """A profile document (Profile.to_dict's shape) as the text of a new file: models and
    techniques one a line, short lists and mappings of values on one line."""
    from ruamel.yaml.comments import CommentedSeq

    out = dict(document)
    for key in ("models", "techniques"):
        if isinstance(out.get(key), list):
            out[key] = CommentedSeq(_block(item) for item in out[key])
            out[key].fa.set_block_style()
    return _dump(_yaml(), out)


def edited_profile_text(original: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    """`original` (a profile file's text, read as the document `before`) with only what differs
    in `after` rewritten; `original` itself where nothing does."""
    if before == after:
        return original
    writer = _yaml()
    tree = writer.load(original)
    _edit_mapping(tree, before, after)
    return _dump(writer, tree)


def _edit_mapping(node: Any, before: dict[str, Any], after: dict[str, Any]) -> None:
    from ruamel.yaml.comments import CommentedMap, CommentedSeq

    for key in [k for k in node if k in before and k not in after]:
        del node[key]
    for key, value in after.items():
        old_value = before.get(key)
        if key in before and old_value == value:
            continue
        written = node.get(key)
        if isinstance(written, CommentedMap) and isinstance(value, dict) and isinstance(
                old_value, dict):
            _edit_mapping(written, old_value, value)
        elif isinstance(written, CommentedSeq) and isinstance(value, list) and isinstance(
                old_value, list):
            _edit_sequence(written, old_value, value)
        elif key == "dataset" and isinstance(written, str) and isinstance(value, dict) and set(
                value) == {"path"}:
            node[key] = value["path"]  # a dataset written as its path alone stays so
        else:
            node[key] = value


def _edit_sequence(node: Any, before: list[Any], after: list[Any]) -> None:
    """Items that did not change keep their text and comments (wherever they moved); a changed
    mapping at the same place is edited key by key; others are written anew."""
    from ruamel.yaml.comments import CommentedMap

    items, comments, used = [], {}, set()
    written = list(node)
    kept = [i for i, old in enumerate(before[:len(written)]) if old in after]  # as they are
    for index, value in enumerate(after):
        same = next((i for i in kept if before[i] == value and i not in used), None)
        if same is None and index < min(len(before), len(written)) and index not in kept and \
                isinstance(value, dict) and isinstance(before[index], dict) and isinstance(
                    written[index], CommentedMap):
            same = index
            _edit_mapping(written[index], before[index], value)
        if same is None:
            items.append(value if node.fa.flow_style() else _block(value))
            continue
        used.add(same)
        items.append(written[same])
        if same in node.ca.items:
            comments[index] = node.ca.items[same]
    list.clear(node)
    list.extend(node, items)
    node.ca.items.clear()
    node.ca.items.update(comments)


def _block(value: Any) -> Any:
    """A new item of a block list: a mapping written as block lines, as its neighbours are."""
    from ruamel.yaml.comments import CommentedMap

    if not isinstance(value, dict):
        return value
    mapping = CommentedMap(value)
    mapping.fa.set_block_style()
    return mapping


def relative_paths(document: dict[str, Any], folder: Path) -> dict[str, Any]:
    """`document` with its models' absolute paths (a model's folder, a factory's module folder,
    its dataset's file and label map) written relative to `folder`, the profile's, where they
    lie inside the folder above it; others as they are. A module folder that is the profile's
    own is left out: the default."""
    models = document.get("models")
    if not isinstance(models, list):
        return document
    return {**document, "models": [_relative_model(m, folder.resolve()) for m in models]}


def _relative_model(entry: Any, folder: Path) -> Any:
    if not isinstance(entry, dict):
        return entry
    out = {k: _relative(v, folder) if k in PATH_KEYS else v for k, v in entry.items()
           if not (k == "folder" and v == str(folder))}  # a factory's module beside the profile
    dataset = out.get("dataset")
    if isinstance(dataset, str):
        out["dataset"] = _relative(dataset, folder)
    elif isinstance(dataset, dict):
        out["dataset"] = {k: _relative(v, folder) if k in PATH_KEYS else v
                          for k, v in dataset.items()}
    return out


def _relative(value: Any, folder: Path) -> Any:
    if not isinstance(value, str) or not Path(value).is_absolute():
        return value
    try:
        Path(value).relative_to(folder.parent)
    except ValueError:
        return value
    return os.path.relpath(value, folder)
