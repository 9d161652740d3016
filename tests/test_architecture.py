import subprocess
import sys


def test_core_and_separation_import_no_qt():
    code = ("import sys, core, core.audio, core.decoder, core.ps, core.metrics, core.models, separation, cli.main;"
            "import core.models.base as b; b._load_builtin();"
            "import separation.base as s; s._load_builtin();"
            "bad=[m for m in sys.modules if m.startswith(('PyQt6','pyqtgraph'))]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


HEAVY = ("torch", "scipy", "dask", "distributed", "PyQt6", "pyqtgraph", "faiss", "demucs")


def _modules_after(argv, cwd=None):
    """The top-level modules a fresh process has imported after ``soundstage ARGV`` (and its exit code)."""
    code = ("import sys\nfrom cli.main import main\n"
            f"try:\n    rc = main({argv!r})\nexcept SystemExit as e:\n    rc = e.code\n"
            "print(rc)\nprint(' '.join(sorted({m.split('.')[0] for m in sys.modules})))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=cwd)
    lines = r.stdout.strip().splitlines()
    return int(lines[-2]), set(lines[-1].split()), r.stderr


def test_cli_help_version_and_bad_input_import_nothing_heavy(tmp_path):
    """`--help`, `--version` and a bad input answer without loading torch, scipy, dask or Qt (their
    wall-clock times are in bench/bench_cli.py), and no POSIX-only module is needed on the way."""
    for argv in (["--help"], ["--version"], ["upmix", "--help"], ["batch", "--help"]):
        rc, mods, err = _modules_after(argv)
        assert rc == 0, err
        assert not mods & set(HEAVY), (argv, sorted(mods & set(HEAVY)))
        assert not mods & {"fcntl", "resource"}, argv
    rc, mods, err = _modules_after(["upmix", str(tmp_path / "missing.wav"), "-o", str(tmp_path / "x.wav")])
    assert rc == 2 and "missing.wav: no such file" in err
    assert not mods & set(HEAVY), sorted(mods & set(HEAVY))


def test_version_is_the_package_version():
    from app import __version__
    r = subprocess.run([sys.executable, "-m", "cli", "--version"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == f"soundstage {__version__}"


def test_project_module_does_not_import_the_session():
    """app.project reads and writes plain data; only app.session imports it (no cycle)."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    tree = ast.parse((root / "app" / "project.py").read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            names.add(("." * node.level) + (node.module or ""))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
    assert not {n for n in names if n.endswith("session") or n.startswith(("app.ui", "ui"))}, names


def _imported_modules(path):
    """Every module a Python file imports (absolute names; relative ones resolved against its package)."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    pkg = list(path.relative_to(root).with_suffix("").parts)[:-1]
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = pkg[:len(pkg) - node.level + 1] if node.level else []
            names.add(".".join(base + ([node.module] if node.module else [])))
        elif isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif _lazy_target(node):
            names.add(_lazy_target(node))
    return names


def _lazy_target(node):
    """The module a ``lazy.module("NAME")`` declaration (core/lazy.py) loads on first use, else None."""
    import ast
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "module"
            and getattr(node.func.value, "id", "") == "lazy" and len(node.args) == 1
            and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
        return node.args[0].value
    return None


def test_runtime_path_imports_no_training_code_and_core_no_separation():
    """Training, evaluation and dataset code lives in `training/`: core, separation, app and ui never
    import it (only the command line's `train` and `eval` do), and core never imports separation."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    bad = []
    for layer in ("core", "separation", "app", "ui"):
        for f in sorted((root / layer).rglob("*.py")):
            mods = _imported_modules(f)
            if any(m == "training" or m.startswith("training.") for m in mods):
                bad.append(f"{f.relative_to(root)} imports training")
            if layer == "core" and any(m == "separation" or m.startswith("separation.") for m in mods):
                bad.append(f"{f.relative_to(root)} imports separation")
    assert not bad, bad


LAYERS = {"core": 0, "separation": 1, "training": 2, "app": 2, "ui": 3, "cli": 4}


def _runtime_imports(root):
    """{module: the project modules it imports at run time} (imports under ``if TYPE_CHECKING:``
    are for annotations only and do not count)."""
    import ast
    mods = {}
    for pkg in LAYERS:
        for f in sorted((root / pkg).rglob("*.py")):
            parts = list(f.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join(parts)] = f
    graph = {}
    for name, f in mods.items():
        tree = ast.parse(f.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.If) and getattr(node.test, "id", getattr(node.test, "attr", "")) == "TYPE_CHECKING":
                node.body = []
        pkg = name.split(".") if f.name == "__init__.py" else name.split(".")[:-1]
        found = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = ".".join((pkg[:len(pkg) - node.level + 1] if node.level else []) + ([node.module] if node.module else []))
                found.add(base)
                found.update(f"{base}.{a.name}" for a in node.names)
            elif _lazy_target(node):
                found.add(_lazy_target(node))
        targets = set()
        for m in found:
            while m and m not in mods:
                m = m.rpartition(".")[0]
            if m and m != name:
                targets.add(m)
        graph[name] = targets
    return graph


def _violations(graph):
    """(upward edges, cycles) of an import graph: an edge to a higher layer (or between app and
    training), and loops found by a depth-first search for back edges."""
    up = sorted((a, b) for a, ts in graph.items() for b in ts
                if LAYERS[b.split(".")[0]] > LAYERS[a.split(".")[0]]
                or {a.split(".")[0], b.split(".")[0]} == {"app", "training"})
    state, cycles = {}, []

    def visit(v, path):
        state[v] = 1
        for w in sorted(graph[v]):
            if state.get(w) == 1:
                cycles.append(path[path.index(w):] + [w])
            elif w not in state:
                visit(w, path + [w])
        state[v] = 2

    for v in sorted(graph):
        if v not in state:
            visit(v, [v])
    return up, cycles


def test_layers_run_one_way_and_modules_form_no_cycle():
    """core < separation < (app, training) < ui < cli: no module imports a layer above its own (nor
    app and training each other), and no two modules import each other, directly or round a loop."""
    from pathlib import Path
    up, cycles = _violations(_runtime_imports(Path(__file__).resolve().parents[1]))
    assert not up, up
    assert not cycles, cycles


def test_the_import_graph_check_sees_a_cycle_and_an_upward_edge(tmp_path):
    """The check itself, on a tiny tree: core.a -> core.b -> core.a, core.b -> ui.c, and a typing-only
    import that does not count."""
    for pkg, files in {"core": {"a.py": "from . import b\n",
                                "b.py": "from typing import TYPE_CHECKING\nfrom core import a, lazy\n"
                                        "c = lazy.module('ui.c')\n"
                                        "if TYPE_CHECKING:\n    import cli.d\n"},
                       "ui": {"c.py": ""}, "cli": {"d.py": ""}}.items():
        (tmp_path / pkg).mkdir()
        (tmp_path / pkg / "__init__.py").write_text("")
        for name, text in files.items():
            (tmp_path / pkg / name).write_text(text)
    for pkg in set(LAYERS) - {"core", "ui", "cli"}:
        (tmp_path / pkg).mkdir()
    up, cycles = _violations(_runtime_imports(tmp_path))
    assert up == [("core.b", "ui.c")]
    assert ["core.a", "core.b", "core.a"] in cycles


def test_only_the_settings_module_reads_the_environment():
    """Every environment variable is read in core/settings.py (the user's settings, the display,
    torch's hub folder, training's caches): nowhere else in the code."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    bad = []
    for pkg in LAYERS:
        for f in sorted((root / pkg).rglob("*.py")):
            if f == root / "core" / "settings.py":
                continue
            for node in ast.walk(ast.parse(f.read_text())):
                if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv", "environb") \
                        and getattr(node.value, "id", "") == "os":
                    bad.append(f"{f.relative_to(root)}:{node.lineno}")
    assert not bad, bad


# The modules of ui/ that may read the session: the controller and its parts, which own it and set
# the view models from it. Every other module (widgets, dialogs, the app's script) binds to view
# models (ui/viewmodels/) and writes through the controller's methods.
SESSION_OWNERS = {
    "controller.py": "the session's one owner: adopts jobs' results, makes the cheap edits, syncs the view models",
    "output_actions.py": "a part of the controller (export, projects, the output stage)",
    "recording_actions.py": "a part of the controller (open, separate, the reference)",
    "rendition_actions.py": "a part of the controller (new rendition, the gallery's recall, undo and redo)",
    "edit_actions.py": "the controller's part for source edits (runs them as jobs, A/B, a region's shares)",
}


def _session_reads(text: str) -> list[str]:
    """``line: .name`` for each ``.session`` or ``.session_event`` attribute in Python ``text``."""
    import ast
    return [f"{node.lineno}: .{node.attr}" for node in ast.walk(ast.parse(text))
            if isinstance(node, ast.Attribute) and node.attr in ("session", "session_event")]


def test_widgets_read_view_models_not_the_session():
    """No module of ui/ outside the controller and its parts reads ``.session`` or listens to the
    session's events (``session_event``): widgets read their view model and act through the
    controller; view models take the session only as the controller hands it to ``sync``."""
    from pathlib import Path
    ui = Path(__file__).resolve().parents[1] / "ui"
    bad = [f"{f.relative_to(ui.parent)}:{hit}" for f in sorted(ui.rglob("*.py"))
           if not (f.parent == ui and f.name in SESSION_OWNERS) for hit in _session_reads(f.read_text())]
    assert not bad, bad
    assert all((ui / name).exists() for name in SESSION_OWNERS), "an allowed module is gone: drop it from the list"
    # the check itself: a read through the controller, a subscription, and a model's own field (allowed)
    assert _session_reads("p = self.ctl.session.placements[0]\nctl.session_event.connect(f)\nself._session = s\n") \
        == ["1: .session", "2: .session_event"]

# In-function imports that stay, each for its reason: an optional or platform-only dependency whose
# absence the code answers (the import is the test), or an import made for its side effect.
KEPT_LOCAL_IMPORTS = {
    ("core/atomic.py", "fcntl"): "POSIX only: file locks are skipped where it is missing",
    ("app/batch.py", "bokeh"): "optional: the dask dashboard",
    ("app/playback.py", "sounddevice"): "PortAudio may be missing: playback says so instead of failing",
    ("separation/demucs_weights.py", "huggingface_hub"): "optional: the HuggingFace download path",
    ("cli/commands/gui.py", "ui.app"): "Qt may be missing: `soundstage gui` says so in one line",
    ("app/project.py", "separation.grouping"): "imported for its side effect: registers the grouping model",
}


def test_imports_are_declared_once_at_the_top():
    """Modules declare what they import at their top (expensive modules through ``core.lazy``, loaded
    on first use), not inside functions; the few in-function imports left are listed with their reason."""
    import ast
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    found = set()
    for pkg in LAYERS:
        for f in sorted((root / pkg).rglob("*.py")):
            tree = ast.parse(f.read_text())
            for fn in ast.walk(tree):
                if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                    continue
                for node in ast.walk(fn):
                    if isinstance(node, ast.Import):
                        mods = [a.name for a in node.names]
                    elif isinstance(node, ast.ImportFrom):
                        mods = [node.module or ""]
                    else:
                        continue
                    found.update((f.relative_to(root).as_posix(), m) for m in mods)
    unexpected = sorted(found - set(KEPT_LOCAL_IMPORTS))
    assert not unexpected, unexpected
    assert not set(KEPT_LOCAL_IMPORTS) - found, "stale entries"


def test_a_lazy_module_loads_on_first_use_and_stays_out_of_sys_modules_until_then(tmp_path, monkeypatch):
    """core.lazy: declaring a module imports nothing; the first attribute read imports the real
    module; writes go to it (so a test's monkeypatch of the real module is seen through the proxy)."""
    import sys
    from core import lazy
    (tmp_path / "lazy_probe_mod.py").write_text("VALUE = 41\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("lazy_probe_mod", None)
    probe = lazy.module("lazy_probe_mod")
    assert "lazy_probe_mod" not in sys.modules and "not loaded" in repr(probe)
    assert probe.VALUE == 41 and "lazy_probe_mod" in sys.modules
    monkeypatch.setattr(sys.modules["lazy_probe_mod"], "VALUE", 42)
    assert probe.VALUE == 42
    probe.OTHER = 7
    assert sys.modules["lazy_probe_mod"].OTHER == 7
    sys.modules.pop("lazy_probe_mod", None)
