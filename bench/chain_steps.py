"""CPU seconds and peak memory of the separator chain's steps, run one after another.

    .venv/bin/python bench/chain_steps.py FILE

The same calls on any tree since session 6 (a headless ``app.session.Session``): open, one PS-MTM
sample, formation, prepare (decorrelate every source), a rendition (places, tile parameters), its
export (mix, measure, write), a second rendition and its export. Prints a table of process CPU
seconds (all threads) and the peak RSS after each step: what each step costs, whatever the load
(the chain itself runs the PS-MTM sample beside formation: bench/bench_audition.py times it).
"""
from __future__ import annotations

import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from app.export import export  # noqa: E402
from app.plans import Rendition  # noqa: E402
from app.session import Session  # noqa: E402
from core.settings import Settings  # noqa: E402
import separation  # noqa: E402


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> int:
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    out = Path(tempfile.mkdtemp(prefix="soundstage-steps-"))
    t0 = time.process_time()

    def step(name, fn):
        c0 = time.process_time()
        res = fn()
        print(f"| {name} | {time.process_time() - c0:.2f} | {rss_mb():.0f} |", flush=True)
        return res

    s = Session(Settings.resolve())
    s.memory.keep_bytes = 0
    s.pairs = False
    print("| step | CPU s | peak RSS MB |\n|---|---|---|")
    step("open", lambda: s.open(sys.argv[1]))
    s.model = "ps-mtm"
    first = Rendition(0, "ps-mtm", None, None, s.placement, 0.0)
    s.keep_params(first, step("PS-MTM sample", lambda: s.predict(first)))
    backend = separation.get("formation", **s.settings.backend_options("formation"))
    sources = step("formation", lambda: backend.separate(s.mono))
    s.adopt_sources(step("prepare (decorrelate)", lambda src=sources: s._plan_install(src, "formation", {})))
    sources = None
    for k in range(2):
        step(f"rendition {k + 1} (places, tiles)",
             lambda: s.new_rendition(k, model="ps-mtm", placement=s.placement, variety=0.0, detail=0))
        step(f"export {k + 1} (mix, measure, write)",
             lambda: export(s, out / f"out{k}.wav", stems=False, overwrite=True, project=True))
    print(f"| total | {time.process_time() - t0:.2f} | {rss_mb():.0f} |  ({len(s.sources)} sources)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
