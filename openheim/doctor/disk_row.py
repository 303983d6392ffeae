"""The doctor's row for what openheim keeps on disk: conversations, tenants' data and logs
should be readable by their owner only (folders 0700, files 0600)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import trio

from openheim.config.paths import Paths
from openheim.doctor.rows import Row, Status

#: Files looked at per folder: enough to catch a loose umask, bounded on a big history.
_SAMPLE = 50


async def check_private_files(paths: Paths) -> list[Row]:
    folders = [paths.history_dir, paths.home / "tenants", paths.logs_dir]
    loose = await trio.to_thread.run_sync(_loose, folders)
    if not loose:
        return [Row("disk", "", Status.OK, "history, tenants and logs: owner only")]
    shown = ", ".join(f"{path} ({mode:o})" for path, mode in loose[:3])
    more = f" and {len(loose) - 3} more" if len(loose) > 3 else ""
    folders_text = " ".join(str(folder) for folder in folders if folder.exists())
    return [
        Row(
            "disk",
            "",
            Status.WARN,
            f"other users can read or enter {shown}{more}",
            f"chmod -R go-rwx {folders_text}",
            data={"loose": [str(path) for path, _ in loose]},
        )
    ]


def _loose(folders: list[Path]) -> list[tuple[Path, int]]:
    """(path, mode) of the folders, and a sample of what lies under them, open to others."""
    found = []
    for folder in folders:
        try:
            info = folder.stat()
        except OSError:
            continue
        if stat.S_IMODE(info.st_mode) & 0o077:
            found.append((folder, stat.S_IMODE(info.st_mode)))
        for count, (root, _dirs, files) in enumerate(os.walk(folder)):
            if count >= _SAMPLE:
                break
            for name in [*_dirs, *files][:_SAMPLE]:
                path = Path(root) / name
                try:
                    mode = stat.S_IMODE(path.lstat().st_mode)
                except OSError:
                    continue
                if mode & 0o077 and not path.is_symlink():
                    found.append((path, mode))
    return found
