import subprocess
import sys


def test_core_and_separation_import_no_qt():
    code = ("import sys, core, core.audio, core.decoder, core.ps, core.metrics, core.models, separation, app.cli;"
            "import core.models.base as b; b._load_builtin();"
            "import separation.base as s; s._load_builtin();"
            "bad=[m for m in sys.modules if m.startswith(('PyQt6','pyqtgraph'))]; print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
