"""The variant cache trusts nobody else (core/worker/variant_cache.py): an entry planted by
another user, in a folder others can write, or changed since it was written is never unpickled;
a link planted at a temporary name is never written through. The other user is uid 65534
(nobody), which the test makes the owner of what it plants: that needs root."""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from types import SimpleNamespace
from typing import TYPE_CHECKING

import pytest
from energy_console.core.models.size import measure_size
from energy_console.core.worker.variant_cache import VariantCache

if TYPE_CHECKING:
    import torch

OTHER_UID = 65534
KEY = "ab" * 32
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="planting a file as another user "
                                 "(uid 65534) needs root")


def context() -> SimpleNamespace:
    return SimpleNamespace(device="cpu", warnings=[], input_dtype=None, needs_no_grad=True,
                           extra_result={})


class _Planted:
    """A pickle that, once loaded, leaves a file behind: what a co-user would plant."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "ran"))


def plant(cache: VariantCache, marker: Path, uid: int = OTHER_UID) -> None:
    cache.folder.mkdir(parents=True, exist_ok=True)
    path = cache.path(KEY)
    path.write_bytes(pickle.dumps(_Planted(marker)))
    os.chown(path, uid, uid)


def saved(cache: VariantCache) -> torch.nn.Module:
    import torch

    module = torch.nn.Linear(4, 2)
    cache.save(KEY, module, context(), measure_size(module))
    return module


@needs_root
def test_an_entry_in_a_folder_others_can_write_is_not_unpickled(tmp_path):
    cache = VariantCache(tmp_path / "shared")
    plant(cache, tmp_path / "marker")
    cache.folder.chmod(0o777)
    ctx = context()
    assert cache.load(KEY, ctx) is None
    assert not (tmp_path / "marker").exists()
    assert any("writable by other users (mode 777)" in w for w in ctx.warnings)


@needs_root
def test_an_entry_of_another_user_in_your_own_folder_is_not_unpickled(tmp_path):
    cache = VariantCache(tmp_path / "mine")
    saved(cache)
    plant(cache, tmp_path / "marker")  # replaces the entry, owned by uid 65534
    ctx = context()
    assert cache.load(KEY, ctx) is None
    assert not (tmp_path / "marker").exists()
    assert any(f"belongs to uid {OTHER_UID}" in w for w in ctx.warnings)


def test_an_entry_changed_since_it_was_written_is_not_unpickled(tmp_path):
    cache = VariantCache(tmp_path / "mine")
    saved(cache)
    plant(cache, tmp_path / "marker", uid=os.geteuid())  # yours, but not what was written
    ctx = context()
    assert cache.load(KEY, ctx) is None
    assert not (tmp_path / "marker").exists()
    assert any("does not match its recorded SHA-256" in w for w in ctx.warnings)


def test_a_link_at_the_entry_is_not_followed(tmp_path):
    cache = VariantCache(tmp_path / "mine")
    module = saved(cache)
    elsewhere = tmp_path / "elsewhere.pt"
    cache.path(KEY).rename(elsewhere)
    cache.path(KEY).symlink_to(elsewhere)
    ctx = context()
    assert cache.load(KEY, ctx) is None
    assert any("not read" in w for w in ctx.warnings)
    cache.path(KEY).unlink()
    module = saved(cache)  # written again: a file of its own, which loads
    loaded, _ = cache.load(KEY, context())
    assert loaded.weight.equal(module.weight)


def test_links_planted_at_temporary_names_are_never_written_through(tmp_path):
    cache = VariantCache(tmp_path / "mine")
    cache.folder.mkdir(mode=0o700)
    victim = tmp_path / "victim"
    victim.write_text("precious")
    name = cache.path(KEY).name
    for pid in range(os.getpid() - 50, os.getpid() + 50):  # the old predictable names
        (cache.folder / f".{name}.{pid}.tmp").symlink_to(victim)
    module = saved(cache)
    assert victim.read_text() == "precious"
    loaded, _ = cache.load(KEY, context())
    assert loaded.weight.equal(module.weight)
