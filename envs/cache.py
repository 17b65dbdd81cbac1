"""Where posttrain-gym keeps derived data between runs (Wordle pattern matrices and openers,
converted language models): ``$POSTTRAIN_GYM_CACHE``, else the user cache folder."""

from __future__ import annotations

import os
from pathlib import Path

from platformdirs import user_cache_dir


def cache_dir() -> Path:
    override = os.environ.get("POSTTRAIN_GYM_CACHE")
    return Path(override) if override else Path(user_cache_dir("posttrain-gym"))
