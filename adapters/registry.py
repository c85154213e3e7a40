"""Adapters by name: the built-in ones, and third-party ones from the ``lienthong.adapters``
entry-point group.

A third-party package registers its adapter class in its own ``pyproject.toml``::

    [project.entry-points."lienthong.adapters"]
    qlvb = "qlvb_lienthong:QlvbAdapter"

Built-in names are listed here as ``module:Class`` strings, imported only when asked for, so
that a broken or slow optional adapter never costs the others anything.
"""

from __future__ import annotations

import difflib
import importlib
from importlib.metadata import entry_points

from adapters.base import Adapter

__all__ = ["BUILT_IN", "ENTRY_POINT_GROUP", "UnknownAdapter", "load", "names"]

ENTRY_POINT_GROUP = "lienthong.adapters"

BUILT_IN: dict[str, str] = {
    "sdk": "adapters.sdk_adapter:SdkAdapter",
    "webhook": "adapters.webhook:WebhookAdapter",
    "folder": "adapters.folder:FolderAdapter",
}


class UnknownAdapter(LookupError):
    """No adapter of that name; the message suggests the closest known name."""

    def __init__(self, name: str, known: list[str]) -> None:
        self.name, self.known = name, known
        close = difflib.get_close_matches(name, known, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        super().__init__(
            f"There is no adapter called {name!r}.{hint} Known adapters: {', '.join(known)}."
        )


def _third_party() -> dict[str, str]:
    return {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}


def names() -> list[str]:
    """Every adapter name, built-in first; a third party cannot shadow a built-in name."""
    return [*BUILT_IN, *sorted(set(_third_party()) - set(BUILT_IN))]


def _import(target: str) -> object:
    module, _, attr = target.partition(":")
    obj: object = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def load(name: str) -> type[Adapter]:
    """The adapter class registered as *name*, or :class:`UnknownAdapter`."""
    target = BUILT_IN.get(name) or _third_party().get(name)
    if target is None:
        raise UnknownAdapter(name, names())
    cls = _import(target)
    if not (isinstance(cls, type) and issubclass(cls, Adapter)):
        raise TypeError(f"adapter {name!r} ({target}) is not a subclass of adapters.base.Adapter")
    return cls
