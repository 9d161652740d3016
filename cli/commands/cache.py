"""``soundstage cache info|clear``: show or empty the stem cache (separated stems kept on disk, and the
sources' decorrelated copies: :mod:`app.decorrelated_cache`)."""
from __future__ import annotations
from core import lazy
stem_cache = lazy.module("separation.stem_cache")

NAME = "cache"
HELP = "show (info) or empty (clear) the stem cache (separations and decorrelated copies)"


def add_arguments(p) -> None:
    p.add_argument("action", choices=("info", "clear"), help="info: location, entries, size; clear: remove all")
    p.add_argument("--dir", metavar="DIR", help="cache folder (default $SOUNDSTAGE_CACHE_DIR or the user cache)")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def run(args) -> int:

    s = args.user
    cache = stem_cache.StemCache(args.dir or s.stem_cache_dir, max_bytes=s.cache_max_bytes)
    if args.action == "clear":
        n, size = cache.clear()
        print(f"removed {n} cached entr{'ies' if n != 1 else 'y'} (separations and decorrelated copies, "
              f"{_size(size)}) from {cache.directory}")
        return 0
    info = cache.info()
    print(f"directory: {info.directory}")
    print(f"entries:   {info.entries}")
    print(f"size:      {_size(info.total_bytes)} of {_size(info.max_bytes)} "
          f"(limit: ${stem_cache.ENV_CACHE_MAX_MB}; least recently used entries go first)")
    for e in reversed(cache.entries()):
        meta = (cache.read_meta(e.key) or {}).get("meta", {})
        what = " ".join(str(meta[k]) for k in ("backend", "model") if k in meta)
        secs = f" {meta['seconds']:.1f} s" if isinstance(meta.get("seconds"), (int, float)) else ""
        print(f"  {e.key[:12]}  {_size(e.size):>10s}  {what}{secs}")
    return 0
