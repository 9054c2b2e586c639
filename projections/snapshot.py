"""Read-model snapshots: the folded state in a local file, so that a restart folds only the
log's tail.

Loading the state a long log folds to is several times faster than folding the log again
(figures: bench/README.md). A snapshot is only a cache of the fold:

* It lives in a file of the service's data directory, never in the database: it is a
  pickle, and only the machine's own files are trusted to hold code-bearing data.
* It records the last event it folded (id, type, object id, commit time), and is used only
  if the log still holds that very event (`matches`): a restored, truncated or different
  log is folded from the start. Everything after it is folded from the log as usual.
* Its format is a fingerprint of the code that folds and of the value types (`FORMAT`): a
  snapshot written by other code is ignored.
"""

from __future__ import annotations

import contextlib
import copyreg
import gc
import hashlib
import logging
import operator
import os
import pickle
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from domain import events, objects, states
from eventstore.record import RecordedEvent
from projections import idempotency
from projections import state as state_module
from projections.memory import MemoryReadModel
from projections.state import DeploymentProgress, State

logger = logging.getLogger(__name__)


def _fingerprint() -> str:
    digest = hashlib.sha256(f"{sys.version}|{attrs.__version__}".encode())
    for module in (objects, states, events, state_module, idempotency, sys.modules[__name__]):
        digest.update(Path(str(module.__file__)).read_bytes())
    return digest.hexdigest()[:16]


FORMAT = _fingerprint()
FILE_NAME = "read-model.snapshot"


def _reduce_by_fields(cls: type) -> Callable[[Any], tuple[type, tuple[Any, ...]]]:
    """Pickle an attrs value as its class and field values (C attrgetter): a third faster
    to write and twice as fast to load as attrs' own per-field __getstate__/__setstate__."""
    names = [field.name for field in attrs.fields(cls)]
    get = operator.attrgetter(*names)
    if len(names) == 1:
        return lambda obj: (cls, (get(obj),))
    return lambda obj: (cls, get(obj))


_VALUE_TYPES = [
    *(c for c in vars(objects).values() if isinstance(c, type) and attrs.has(c)),
    DeploymentProgress,
]
_TABLE: dict[type, Any] = {cls: _reduce_by_fields(cls) for cls in _VALUE_TYPES}


def marker(record: RecordedEvent | None) -> tuple[Any, ...] | None:
    """What identifies the event a snapshot ends at."""
    if record is None:
        return None
    return (record.id, record.type, record.object_id, record.created_at)


def save(path: Path, model: MemoryReadModel, last: RecordedEvent) -> None:
    """Write the model's state, folded up to `last`, to `path` (atomically)."""
    assert last.id == model.last_id
    # The service's alone: it holds every release's env, and jobs may traverse the data
    # directory.
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    was_enabled = gc.isenabled()
    gc.disable()  # the pickler's temporaries would trigger collections all along
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "wb") as f:
            pickler = pickle.Pickler(f, protocol=pickle.HIGHEST_PROTOCOL)
            pickler.dispatch_table = copyreg.dispatch_table | _TABLE
            pickler.dump((FORMAT, marker(last), model.state))
        temporary.replace(path)
    finally:
        if was_enabled:
            gc.enable()
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def load(path: Path) -> tuple[tuple[Any, ...], State] | None:
    """(marker, state) from `path`; None if there is none, or of another format."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return None
    was_enabled = gc.isenabled()
    gc.disable()  # millions of objects, none of them garbage (see memory.collector_paused)
    try:
        with f:
            found = pickle.load(f)
    except Exception as exc:  # a partial or foreign file: fold from the start instead
        logger.warning("ignoring the read-model snapshot %s: %r", path, exc)
        return None
    finally:
        if was_enabled:
            gc.enable()
    if not (isinstance(found, tuple) and len(found) == 3 and found[0] == FORMAT):
        logger.info("ignoring the read-model snapshot %s: written by other code", path)
        return None
    _, at, state = found
    return at, state


def restore(at: tuple[Any, ...], state: State) -> MemoryReadModel:
    """A model holding `state`, folded up to the event `at` names."""
    model = MemoryReadModel()
    model.state = state
    model.last_id, model.last_at = at[0], at[3]
    gc.freeze()  # as after a big fold: no collection walks the loaded state again
    return model


def remove(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        path.unlink()
