"""Who local jobs run as: each app its own unprivileged uid, when the service runs as root.

An app's jobs run as a uid (and a gid of the same number, with no supplementary groups) of
its own, taken from a configured range when its first job starts here and kept in
`<state dir>/uids.json`, so that it stays the app's across restarts. No user database entry
is needed. One app's jobs then cannot read another's `/proc/<pid>/environ`, signal its
processes or enter its working trees.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path

from host.jobdir import write_atomically

logger = logging.getLogger(__name__)

#: The default JOB_UID_RANGE: above every range distributions and systemd hand out (regular
#: users, dynamic users, containers' 65536-uid blocks up to 1879048191) and below 2^31, where
#: some tools read uids as signed numbers.
DEFAULT_RANGE = (2_000_000_000, 2_000_065_535)


class AppUids:
    """The uid of each app, allocated from `first`..`last` and kept in the file `path`."""

    def __init__(self, path: Path, first: int, last: int) -> None:
        self._path = path
        self._first, self._last = first, last
        self._by_app: dict[str, int] = {}
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            doc = {}
        except (OSError, ValueError) as exc:
            logger.warning("local host: ignoring %s (%r); uids of running jobs are kept", path, exc)
            doc = {}
        for app_id, uid in doc.items() if isinstance(doc, dict) else ():
            self.adopt(app_id, uid)

    def adopt(self, app_id: str, uid: object) -> None:
        """Keep what a job directory says: `app_id`'s jobs run as `uid` (if it is free)."""
        if not isinstance(uid, int) or not self._first <= uid <= self._last:
            return
        holder = next((a for a, u in self._by_app.items() if u == uid), None)
        if app_id not in self._by_app and holder is None:
            self._by_app[app_id] = uid
        elif self._by_app.get(app_id) != uid:
            logger.warning("local host: uid %d of app %s is taken by app %s", uid, app_id, holder)

    def owner(self, app_id: str) -> tuple[int, int]:
        """The (uid, gid) `app_id`'s jobs run as; a new app gets the lowest free uid, written
        down (and synced) before any process runs as it."""
        uid = self._by_app.get(app_id)
        if uid is None:
            taken = set(self._by_app.values())
            uid = next((u for u in range(self._first, self._last + 1) if u not in taken), None)
            if uid is None:
                raise ValueError(
                    f"no uid left in JOB_UID_RANGE {self._first}-{self._last} for a new app"
                )
            self._by_app[app_id] = uid
            self.save()
        return uid, uid

    def save(self) -> None:
        write_atomically(self._path, json.dumps(self._by_app).encode(), sync=True)


def check_mapped(first: int, last: int, maps: Iterable[Path] = ()) -> None:
    """Refuse a uid range this user namespace cannot switch to (a container's user namespace
    maps only some uids); without /proc there is nothing to check."""
    for path in maps or (Path("/proc/self/uid_map"), Path("/proc/self/gid_map")):
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        spans = [(int(inside), int(inside) + int(count) - 1)
                 for inside, _, count in (line.split() for line in lines)]  # fmt: skip
        if not any(low <= first and last <= high for low, high in spans):
            raise ValueError(
                f"JOB_UID_RANGE {first}-{last} is not mapped in this user namespace ({path}): "
                "choose a range inside it"
            )


def warn_if_unreachable(path: Path) -> None:
    """Say so when jobs' uids (others, to every file here) cannot traverse to `path`."""
    for parent in [path, *path.parents]:
        mode = parent.stat().st_mode
        if mode & 0o001:
            continue
        logger.warning(
            "jobs run as uids of their own cannot enter %s (mode %o): make it traversable "
            "(chmod o+x) or choose another data directory or ARTIFACT_ROOT",
            parent, mode & 0o777,
        )  # fmt: skip
        return
