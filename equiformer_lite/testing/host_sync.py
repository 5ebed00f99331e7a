"""Catch host syncs: the operations that read a tensor's value back into Python.

A model's ``forward`` on validated inputs should be pure tensor code. Reading a value (``.item()``,
``bool(tensor)``, ``if tensor.any():``, ``.tolist()``, a shape that depends on values) stops the
host until the device has caught up, and it is exactly what ``torch.compile`` breaks its graph on
and ``torch.export`` refuses. Every such read reaches the dispatcher as one of a few ATen
operations, which :func:`no_host_sync` turns into an error that names the operation.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["HostSyncError", "no_host_sync", "SYNC_OPERATIONS"]

# What Python reads of a tensor's value goes through: .item(), float(), int() and bool() call
# _local_scalar_dense; nonzero / masked_select / unique have output shapes that depend on the
# values. (.tolist() and .numpy() read the memory without the dispatcher: the package's test of
# pure forwards looks for them in the source instead.)
SYNC_OPERATIONS = {
    "aten::_local_scalar_dense",
    "aten::is_nonzero",
    "aten::item",
    "aten::nonzero",
    "aten::masked_select",
    "aten::_unique2",
    "aten::unique_dim",
    "aten::unique_consecutive",
    "aten::repeat_interleave",
}


class HostSyncError(RuntimeError):
    """An operation read a tensor's value back into Python inside :func:`no_host_sync`."""


class _NoSyncMode(TorchDispatchMode):
    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        if name in SYNC_OPERATIONS:
            raise HostSyncError(
                f"{name} reads a tensor value back to the host (.item(), float/int/bool(tensor), a tensor "
                f"in an `if`, or a value-dependent shape): not allowed in a pure forward"
            )
        return func(*args, **(kwargs or {}))


@contextmanager
def no_host_sync() -> Iterator[None]:
    """Raise :class:`HostSyncError` at the first operation that reads a tensor value to the host.

    >>> x = torch.ones(3)  # doctest: +ELLIPSIS
    >>> with no_host_sync():
    ...     y = (x * 2).sum()
    >>> with no_host_sync():
    ...     bool(x.any())
    Traceback (most recent call last):
    ...
    equiformer_lite.testing.host_sync.HostSyncError: aten::_local_scalar_dense reads a tensor value ...
    """
    with _NoSyncMode():
        yield
