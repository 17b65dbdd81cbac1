"""JSON-lines reading shared by every data file the project reads (datasets, demonstrations,
episode logs): blank lines are skipped and a line that is not JSON is reported as
``path:line``. Callers validate the records themselves, prefixing errors with the same place."""

from __future__ import annotations

import json
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def read_json_lines(path: str | Path, error: type[Exception] = ValueError,
                    unterminated_tail_ok: bool = False) -> Iterator[tuple[str, Any]]:
    """Yield ``("path:line", parsed value)`` for each non-blank line; bad JSON raises ``error``.

    ``unterminated_tail_ok``: a log appended to by a process that may have been killed; its
    last line, when it has no newline and is not JSON, is a cut-off write and is skipped with
    a warning instead of failing the whole file.
    """
    path = Path(path)
    with path.open(encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{path}:{line_no}"
            try:
                yield where, json.loads(line)
            except json.JSONDecodeError as err:
                if unterminated_tail_ok and not line.endswith("\n"):
                    warnings.warn(f"{where}: skipped a last line cut short ({len(line)} characters, no newline): "
                                  "the writer was stopped mid-line", stacklevel=2)
                    return
                raise error(f"{where}: not valid JSON ({err.msg})") from err
