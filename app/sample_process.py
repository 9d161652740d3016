"""A PS model's sample made in a process of its own, beside the separation.

The chain and the app sample the PS model (PS-MTM: some 500 transformer passes for a 3-minute song,
one after another) while the recording is separated. In a thread of the same process the two share
one interpreter lock: formation's window-by-window clustering is many small numpy calls that hold
it most of the time, and the sampler's torch calls queue behind them, so on two cores the pair ran
at about 1.5 cores (some 125,000 thread switches for one song). In a process of its own the sample
has a core to itself.

:func:`predict` runs ``load_model(model).predict(mono, ...)`` in a new interpreter (``python -m
app.sample_process``: not forked, as the parent has threads and possibly torch's pools, and not
through :mod:`multiprocessing`, which would import the parent's main script again) and returns its
:class:`PSParams`: the same values the same call gives in this process (the same code, one torch
thread). The recording
goes to the child through a temporary file it maps read-only (no copy in a pipe, whatever the
length); progress reports come back as they are made; a set ``cancel`` ends the child at once.
Where no process can be started the sample is made here, as before; a child that ends without a result
(killed, out of memory) is an error that says so, with the last line it wrote.
"""
from __future__ import annotations

import os
import pickle
import queue
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Optional

import numpy as np

from core.errors import Cancelled, ParameterError
from core.models import load_model
from core.progress import ProgressFn
from core.ps import PSParams
from core.settings import child_environment

__all__ = ["predict"]

_POLL_S = 0.05           # how often the parent looks at ``cancel`` while it waits
_BLOCK = 1 << 20         # samples written to the child's file at a time
_ROOT = Path(__file__).resolve().parents[1]


def predict(model: str, mono: np.ndarray, *, models_dir=None, seed: int = 0, temperature=None, guidance=None,
            progress: Optional[ProgressFn] = None, cancel: Optional[threading.Event] = None,
            folder=None) -> PSParams:
    """``load_model(model, models_dir).predict(mono, seed=..., temperature=..., guidance=...)``, made in a
    process of its own (``python -m app.sample_process``). ``folder``: where the recording's temporary
    file goes (default: the system's)."""
    x = mono if isinstance(mono, np.ndarray) else np.asarray(mono, dtype=np.float32)
    if x.ndim != 1 or len(x) == 0:
        raise ParameterError(f"a PS model expects a non-empty mono signal [shape=(n,)], got {x.shape}")
    if folder is not None:
        Path(folder).mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="soundstage-sample-", suffix=".f32", dir=folder)
    try:
        with os.fdopen(fd, "wb") as fh:
            for a in range(0, len(x), _BLOCK):
                fh.write(np.ascontiguousarray(x[a:a + _BLOCK], dtype=np.float32).tobytes())
        request = {"path": name, "n": len(x), "model": model, "seed": int(seed), "temperature": temperature,
                   "guidance": guidance, "models_dir": None if models_dir is None else str(models_dir)}
        env = child_environment(_ROOT)
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.Popen([sys.executable, "-m", "app.sample_process"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=err, env=env, cwd=str(_ROOT))
            except OSError:                     # no process can be started here: the sample made in this one
                return load_model(model, models_dir).predict(x, seed=seed, temperature=temperature,
                                                             guidance=guidance, progress=progress, cancel=cancel)
            try:
                pickle.dump(request, proc.stdin)
                proc.stdin.close()
                return _wait(proc, progress, cancel, err)
            finally:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
                proc.stdout.close()
    finally:
        try:
            os.unlink(name)
        except OSError:
            pass


def _wait(proc, progress, cancel, err) -> PSParams:
    messages: queue.Queue = queue.Queue()

    def read() -> None:                      # the child's messages, as they come
        try:
            while True:
                messages.put(pickle.load(proc.stdout))
        except Exception:                    # end of the stream (or a broken one): the child is done
            messages.put(None)

    threading.Thread(target=read, name="sample-reader", daemon=True).start()
    while True:
        if cancel is not None and cancel.is_set():
            proc.kill()
            raise Cancelled("cancelled")
        try:
            msg = messages.get(timeout=_POLL_S)
        except queue.Empty:
            continue
        if msg is None:
            proc.wait()
            err.seek(0)
            lines = err.read().decode(errors="replace").strip().splitlines()
            raise RuntimeError("the PS model's sampling process ended without a result (exit code "
                               f"{proc.returncode}){': ' + lines[-1] if lines else ''}")
        kind, value = msg
        if kind == "progress":
            if progress is not None:
                progress(value)
        elif kind == "done":
            return PSParams(*value)
        else:                                   # the child's exception, as it was raised there
            raise value


def _serve() -> None:
    """In the child: read the request, map the recording, sample, send the parameters (or the error)."""
    out = sys.stdout.buffer
    sys.stdout = sys.stderr                     # (nothing else may write to the message stream)

    def send(msg) -> None:
        pickle.dump(msg, out)
        out.flush()

    try:
        req = pickle.load(sys.stdin.buffer)
        mono = np.memmap(req["path"], dtype=np.float32, mode="r", shape=(req["n"],))
        params = load_model(req["model"], req["models_dir"]).predict(
            mono, seed=req["seed"], temperature=req["temperature"], guidance=req["guidance"],
            progress=lambda p: send(("progress", p)))
        send(("done", (params.iid, params.ic)))
    except BaseException as e:       # noqa: BLE001 - every failure goes back to the parent, which raises it
        try:
            send(("error", e))
        except Exception:            # (an exception that cannot be pickled: its text)
            send(("error", RuntimeError(f"{type(e).__name__}: {e}")))


if __name__ == "__main__":
    _serve()
