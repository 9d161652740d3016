"""Finding, downloading and loading Demucs model weights (weights-only: no file runs code).

Where a named model (``htdemucs``, ``htdemucs_6s``, ``htdemucs_ft``) comes from, in order:

1. A model folder given by the user (``--demucs-models DIR`` or ``$SOUNDSTAGE_DEMUCS_MODELS``):
   laid out as demucs' local repository (``.th`` files, named ``SIG-CHECKSUM.th`` as demucs saves
   them, plus an optional ``NAME.yaml`` bag file; when the folder has no bag file, the one shipped
   inside the demucs package is used).
2. Files downloaded before: the HuggingFace cache (demucs 4.1's first choice) or the torch hub
   cache (demucs' legacy download location).
3. A download, only when a model server answers an HTTP request within a couple of seconds
   (probed in background threads, so a dead network or a hanging DNS lookup cannot stall us);
   download progress is reported as stage ``"download"``.

When none of these works, :class:`ModelUnavailable` says which model, which files, where to put
them and how to go on without Demucs, within seconds.

:func:`locate` is cheap (no weights are read, no network); its :attr:`ModelSource.signature`
identifies the weights for the stem cache, so a cached separation needs no model at all.

Loading never hands a file to demucs' pickle loader: packages are read weights-only and the model
is built from demucs' own classes (see :func:`read_package`).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from core.audio import replacing
from core.errors import Cancelled, ParameterError
from core.progress import ProgressFn, check_cancel, report
from core.hashing import sha256_file
from core.settings import Settings, torch_hub_dir
import importlib.util
import sys
import pickle
from fractions import Fraction
from core import lazy
apply = lazy.module("demucs.apply")
auto = lazy.module("tqdm.auto")
hf = lazy.module("demucs.hf")
safetensors = lazy.module("safetensors")
states = lazy.module("demucs.states")
torch = lazy.module("torch")
yaml = lazy.module("yaml")

__all__ = ["ModelUnavailable", "ModelSource", "locate", "load", "official_files", "probe", "download",
           "save_to_folder", "probe_urls", "MODELS", "ENV_MODELS_DIR", "read_package", "load_safetensors",
           "verify_name_checksum", "MODEL_CLASSES"]

ENV_MODELS_DIR = "SOUNDSTAGE_DEMUCS_MODELS"
MODELS = {
    "htdemucs": "Hybrid Transformer Demucs: drums, bass, other, vocals (default)",
    "htdemucs_6s": "6 stems: adds guitar and piano",
    "htdemucs_ft": "fine-tuned bag of 4 models: best quality, about 4x slower",
}
PROBE_TIMEOUT = 2.5
DOWNLOAD_TIMEOUT = 15.0
_HASH_IN_NAME = re.compile(r"-([a-f0-9]+)\.")  # torch.hub's convention: NAME-SHA256PREFIX.ext


class ModelUnavailable(ParameterError):
    """The weights of a Demucs model cannot be had; the message says what to do.

    A :class:`ParameterError` (the chosen model cannot be used), so every command line path
    (``separate``, ``upmix --separator demucs``) prints it as one line and exits with status 2."""


@dataclass(frozen=True)
class OfficialFiles:
    """What the official release of a named model consists of."""
    name: str
    sigs: tuple            # model signatures in the bag, e.g. ("955717e8",)
    files: tuple           # file names, e.g. ("955717e8-8726e21a.th",)
    urls: tuple            # where demucs' legacy repository serves them
    bag_file: Path         # the bag .yaml shipped inside the demucs package
    weights: Optional[list]
    segment: Optional[float]


# locate() must stay cheap: a cache hit should not import torch. So the few lookups it needs
# (demucs' shipped model list and bag files, its HuggingFace names, torch hub's cache folder,
# LocalRepo's folder scan) are read here without importing demucs or torch; tests check that
# they agree with demucs' own functions. Loading always goes through demucs.
ROOT_URL = "https://dl.fbaipublicfiles.com/demucs/"      # demucs.pretrained.ROOT_URL
HF_NAMESPACE = "adefossez"                               # demucs.hf.DEFAULT_NAMESPACE


def _remote_root() -> Path:
    """demucs' ``pretrained.REMOTE_ROOT`` (the package's ``remote/`` folder), found without importing it."""
    spec = importlib.util.find_spec("demucs")
    if spec is None or not spec.submodule_search_locations:
        raise ModelUnavailable("the demucs package is not installed (pip install demucs)")
    return Path(list(spec.submodule_search_locations)[0]) / "remote"


def _parse_remote_files(path: Path) -> dict:
    """Same as ``demucs.pretrained._parse_remote_files``: {signature: url}."""
    root, models = "", {}
    for line in path.read_text().split("\n"):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("root:"):
            root = line.split(":", 1)[1].strip()
        else:
            models[line.split("-", 1)[0]] = ROOT_URL + root + line
    return models


def _hf_repo_name(name: str) -> str:
    """Same as ``demucs.hf.hf_repo_name``."""
    if name == "htdemucs":
        return "HTDemucs"
    if name.startswith("htdemucs_"):
        return "HTDemucs-" + name[len("htdemucs_"):]
    return "Demucs-" + name


def _scan_folder(folder: Path) -> dict:
    """Same as ``demucs.repo.LocalRepo.scan``: {signature: .th path}; duplicates are an error."""
    found = {}
    for file in folder.iterdir():
        if file.suffix == ".th":
            sig = file.stem.rsplit("-", 1)[0] if "-" in file.stem else file.stem
            if sig in found:
                raise ModelUnavailable(f"model folder {folder}: duplicate pre-trained model exist for signature "
                                       f"{sig} ({found[sig].name}, {file.name}); delete all but one")
            found[sig] = file
    return found


def _read_bag(path: Path) -> dict:
    """A demucs bag file (``NAME.yaml``) read as plain data: a tag that would build a Python
    object (``!!python/...``) or broken YAML is refused in one line (:class:`ModelUnavailable`)."""
    try:
        with open(path) as f:
            bag = yaml.safe_load(f) or {}
    except yaml.YAMLError as exc:
        what = getattr(exc, "problem", None) or type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ModelUnavailable(f"{path}: not a demucs bag file: {' '.join(str(what).split())}{where}; bag files "
                               f"are read as plain data") from None
    except UnicodeDecodeError:
        raise ModelUnavailable(f"{path}: not a demucs bag file (not text)") from None
    if not isinstance(bag, dict) or not bag.get("models"):
        raise ModelUnavailable(f"{path}: not a demucs bag file (no 'models' list)")
    return bag


def official_files(name: str) -> Optional[OfficialFiles]:
    """The official files of model ``name`` (from the list shipped with demucs), or None."""
    root = _remote_root()
    bag_file = root / f"{name}.yaml"
    if not bag_file.is_file():
        return None
    bag = _read_bag(bag_file)
    urls = _parse_remote_files(root / "files.txt")
    sigs = tuple(bag["models"])
    if any(s not in urls for s in sigs):
        return None
    return OfficialFiles(name, sigs, tuple(urls[s].rsplit("/", 1)[1] for s in sigs),
                         tuple(urls[s] for s in sigs), bag_file, bag.get("weights"), bag.get("segment"))


@dataclass(frozen=True)
class ModelSource:
    """Where a model's weights will be loaded from, and their signature.

    ``kind``: "local" (a model folder), "hf-cache", "hub-cache" (downloaded before) or
    "download" (needs the network)."""
    name: str
    kind: str
    signature: str
    folder: Optional[Path] = None
    bag_file: Optional[Path] = None       # bag .yaml used with a local folder (None: single model)
    files: tuple = ()                     # weight files (local paths, or cached files)
    official: Optional[OfficialFiles] = None

    def describe(self) -> str:
        where = {"local": f"folder {self.folder}", "hf-cache": "the HuggingFace cache",
                 "hub-cache": "the torch hub cache", "download": "a download"}[self.kind]
        return f"demucs model {self.name} from {where}"


_FILE_HASHES: dict = {}


def _file_id(path: Path) -> str:
    """``SIG-CHECKSUM`` when the name carries demucs' checksum, else a content hash (memoized)."""
    m = _HASH_IN_NAME.search(path.name)
    if m and len(m.group(1)) >= 8:
        return path.stem
    st = path.stat()
    k = (str(path), st.st_size, st.st_mtime_ns)
    if k not in _FILE_HASHES:
        _FILE_HASHES[k] = f"{path.stem}-{sha256_file(path)[:16]}"
    return _FILE_HASHES[k]


def _signature(name: str, ids, weights, segment) -> str:
    blob = json.dumps({"name": name, "models": list(ids), "weights": weights,
                       "segment": None if segment is None else float(segment)}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:24]


def models_dir_from_env() -> Optional[Path]:
    """The user's Demucs model folder (:class:`core.settings.Settings`: ``$SOUNDSTAGE_DEMUCS_MODELS``)."""
    return Settings.resolve().demucs_models


def _hf_repo_id(name: str) -> str:
    return f"{HF_NAMESPACE}/{_hf_repo_name(name)}"


def _hub_checkpoints() -> Path:
    """torch hub's checkpoint folder (``torch.hub.get_dir()/checkpoints``)."""
    if "torch" in sys.modules:      # respects torch.hub.set_dir()
        return Path(torch.hub.get_dir()) / "checkpoints"
    return _hub_dir_from_env() / "checkpoints"


_hub_dir_from_env = torch_hub_dir     # (core.settings: the one reader of the environment)


def locate(name: str, models_dir=None) -> ModelSource:
    """Decide where model ``name`` comes from, without reading weights or touching the network.

    ``models_dir`` (or ``$SOUNDSTAGE_DEMUCS_MODELS``) forces a local folder."""
    folder = Path(models_dir).expanduser() if models_dir else models_dir_from_env()
    official = official_files(name)
    if folder is not None:
        return _locate_local(name, folder, official)
    if official is None:
        raise ParameterError(f"unknown demucs model {name!r}; choose one of {', '.join(MODELS)} "
                             "(or give a model folder holding it with --demucs-models DIR)")
    ids = [Path(f).stem for f in official.files]
    sig = _signature(name, ids, official.weights, official.segment)
    # Downloaded before through demucs 4.1's HuggingFace path?
    try:
        from huggingface_hub import try_to_load_from_cache
        repo = _hf_repo_id(name)
        cached = [try_to_load_from_cache(repo, f"{name}.yaml")]
        cached += [try_to_load_from_cache(repo, f"{s}.safetensors") for s in official.sigs]
        if all(isinstance(c, str) for c in cached):
            return ModelSource(name, "hf-cache", sig, bag_file=Path(cached[0]),
                               files=tuple(Path(c) for c in cached[1:]), official=official)
    except ImportError:
        pass
    # Or through the legacy torch hub download?
    hub = _hub_checkpoints()
    if all((hub / f).is_file() for f in official.files):
        return ModelSource(name, "hub-cache", sig, files=tuple(hub / f for f in official.files),
                           official=official)
    return ModelSource(name, "download", sig, official=official)


def _locate_local(name: str, folder: Path, official: Optional[OfficialFiles]) -> ModelSource:
    if not folder.is_dir():
        raise ModelUnavailable(_missing_message(name, official, f"the model folder {folder} does not exist",
                                                folder=folder))
    found = _scan_folder(folder)
    bag_file = folder / f"{name}.yaml"
    if bag_file.is_file():
        bag = _read_bag(bag_file)
        sigs, weights, segment = list(bag["models"]), bag.get("weights"), bag.get("segment")
    elif name in found:
        bag_file, sigs, weights, segment = None, [name], None, None
    elif official is not None:
        bag_file, sigs, weights, segment = official.bag_file, list(official.sigs), official.weights, official.segment
    else:
        raise ModelUnavailable(f"model folder {folder} holds no demucs model {name!r} (no {name}.yaml and no "
                               f"{name}.th); it has: {', '.join(sorted(found)) or 'no .th files'}")
    missing = [s for s in sigs if s not in found]
    if missing:
        raise ModelUnavailable(_missing_message(
            name, official, f"{folder} lacks the weights of {', '.join(missing)}", folder=folder))
    ids = [_file_id(Path(found[s])) for s in sigs]
    return ModelSource(name, "local", _signature(name, ids, weights, segment), folder=folder,
                       bag_file=bag_file, files=tuple(Path(found[s]) for s in sigs), official=official)


def _missing_message(name: str, official: Optional[OfficialFiles], reason: str, folder=None) -> str:
    if official is not None:
        files = ", ".join(f"{f} ({u})" for f, u in zip(official.files, official.urls))
        what = f"its weights {files}"
    else:
        what = f"{name}.yaml and the .th files it lists"
    where = f"into {folder}" if folder is not None else "into a folder"
    return (f"demucs model '{name}' is not available: {reason}. Download {what} {where} (a {name}.yaml "
            f"bag file is optional, demucs ships it), then give that folder with --demucs-models DIR or "
            f"{ENV_MODELS_DIR}=DIR. To go on without Demucs, use the source-formation backend "
            f"(--separator formation).")


# -- network ------------------------------------------------------------------------------------

def probe_urls(source: "ModelSource") -> dict:
    """The URLs a download of ``source`` would start with: {"huggingface": ..., "legacy": ...}."""
    urls = {"huggingface": f"https://huggingface.co/{_hf_repo_id(source.name)}/resolve/main/{source.name}.yaml"}
    if source.official is not None:
        urls["legacy"] = source.official.urls[0]
    return urls


def probe(urls: dict, timeout: float = PROBE_TIMEOUT) -> dict:
    """Which of ``urls`` ({label: url}) answer an HTTP HEAD request with a status below 400,
    within ``timeout`` seconds overall.

    A TCP connection alone proves little (proxies and sandboxes accept anything), so this asks
    the real server. Each request runs in a daemon thread (name lookups have no timeout of their
    own), so this returns after at most ``timeout`` seconds whatever the network does."""
    result = {label: False for label in urls}

    def one(label, url):
        try:
            req = urllib.request.Request(url, method="HEAD", headers={"User-Agent": "soundstage"})
            with urllib.request.urlopen(req, timeout=timeout) as r:
                result[label] = r.status < 400
        except Exception:
            pass

    threads = [threading.Thread(target=one, args=item, daemon=True, name=f"probe-{item[0]}")
               for item in urls.items()]
    for t in threads:
        t.start()
    deadline = time.monotonic() + timeout
    for t in threads:
        t.join(max(0.0, deadline - time.monotonic()))
    return dict(result)


def download(url: str, dest: Path, *, progress: Optional[ProgressFn] = None, cancel=None,
             timeout: float = DOWNLOAD_TIMEOUT, label: str = "") -> Path:
    """Download ``url`` to ``dest`` (through a temporary file; nothing is left on failure),
    checking the SHA-256 prefix that torch hub names carry (``NAME-PREFIX.th``). Reports stage
    "download" in bytes and checks ``cancel`` between 1 MiB blocks."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    m = _HASH_IN_NAME.search(dest.name)
    sha = hashlib.sha256()
    with replacing(dest) as tmp:
        req = urllib.request.Request(url, headers={"User-Agent": "soundstage"})
        with open(tmp, "wb") as f, urllib.request.urlopen(req, timeout=timeout) as r:
            total = int(r.headers.get("Content-Length") or 0)
            done = 0
            report(progress, "download", 0, total or 1, label)
            while True:
                check_cancel(cancel)
                buf = r.read(1 << 20)
                if not buf:
                    break
                f.write(buf)
                sha.update(buf)
                done += len(buf)
                report(progress, "download", done, max(total, done), label)
        if m and not sha.hexdigest().startswith(m.group(1)):
            raise ModelUnavailable(f"download of {url} is corrupt (checksum mismatch); try again")
    return dest


def _tqdm_adapter(progress: Optional[ProgressFn], label: str):
    """A tqdm class for ``hf_hub_download(tqdm_class=...)`` that forwards to ``progress``."""

    class _Forward(auto.tqdm):
        def __init__(self, *args, **kwargs):
            kwargs["file"] = open(os.devnull, "w")
            kwargs["disable"] = False
            super().__init__(*args, **kwargs)

        def update(self, n=1):
            out = super().update(n)
            if progress is not None and self.total:
                report(progress, "download", self.n, self.total, label)
            return out

        def close(self):
            f = self.fp
            super().close()
            try:
                f.close()
            except Exception:
                pass

    return _Forward


# -- loading ------------------------------------------------------------------------------------
#
# A demucs ``.th`` file is a pickle, and demucs' own loader unpickles it with
# ``torch.load(weights_only=False)``: a crafted file would run code. So no demucs loader ever sees a
# file here. ``.th`` packages are read with ``torch.load(weights_only=True)``, which only rebuilds
# tensors and plain containers, plus the few classes a demucs package names (its model classes and
# ``fractions.Fraction`` for HTDemucs' segment); a file naming anything else is refused. When the
# file name carries demucs' SHA-256 prefix (``SIG-CHECKSUM.th``), the content must match it.
# safetensors files (the HuggingFace path) hold no code, but their JSON metadata names classes:
# the model class and any ``_class`` node of the state structure must be one of demucs' model
# classes, checked on the decoded JSON (demucs' own loader would import and call anything named).

MODEL_CLASSES = ("demucs.htdemucs.HTDemucs", "demucs.hdemucs.HDemucs", "demucs.demucs.Demucs")


def _model_classes() -> dict:
    """{qualified name: class} of the model classes a demucs package may name."""
    out = {}
    for qual in MODEL_CLASSES:
        module, name = qual.rsplit(".", 1)
        out[qual] = getattr(importlib.import_module(module), name)
    return out




def verify_name_checksum(path) -> None:
    """Check a ``NAME-SHA256PREFIX.ext`` file against the prefix in its name (at least 8 hex
    digits, demucs' and torch hub's convention); names without one pass unchecked."""
    path = Path(path)
    m = _HASH_IN_NAME.search(path.name)
    if m and len(m.group(1)) >= 8 and not sha256_file(path).startswith(m.group(1)):
        raise ModelUnavailable(f"{path}: the content does not match the checksum in its name "
                               f"({m.group(1)}); the file is damaged or not the one published")


def read_package(path) -> dict:
    """A demucs ``.th`` model package ``{klass, args, kwargs, state}`` read weights-only.

    Refuses (:class:`ModelUnavailable`, one line) a file whose checksum does not match its name,
    a pickle that names anything beyond tensors, plain containers, demucs' model classes and
    ``Fraction``, and a package whose class is not one of :data:`MODEL_CLASSES`. Nothing in the
    file is executed."""

    path = Path(path)
    verify_name_checksum(path)
    classes = _model_classes()
    try:
        with torch.serialization.safe_globals([*classes.values(), Fraction]):
            package = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = re.search(r"GLOBAL (\S+)", str(exc))
        what = f" (it names {named.group(1)})" if named else ""
        raise ModelUnavailable(f"refusing to load {path}: it is not a plain demucs weights file{what}; "
                               f"model files are loaded weights-only, never as code") from None
    if not isinstance(package, dict) or not {"klass", "args", "kwargs", "state"} <= set(package):
        raise ModelUnavailable(f"{path}: not a demucs model package (expected klass, args, kwargs, state)")
    if not any(package["klass"] is c for c in classes.values()):
        raise ModelUnavailable(f"{path}: model class {package['klass']!r} is not a demucs model class")
    if not isinstance(package["args"], (list, tuple)) or not isinstance(package["kwargs"], dict) \
            or not isinstance(package["state"], dict):
        raise ModelUnavailable(f"{path}: malformed demucs model package")
    return package


def _model_from_package(package: dict):
    return states.load_model(package)            # a dict: demucs builds the class and sets the state


def _load_th_files(bag_file: Optional[Path], files):
    """The model (``bag_file`` None: the single file) or ``BagOfModels`` of ``.th`` ``files``."""
    models = [_model_from_package(read_package(f)) for f in files]
    if bag_file is None:
        return models[0]
    bag = _read_bag(Path(bag_file))
    return apply.BagOfModels(models, bag.get("weights"), bag.get("segment"))


def _metadata_json(path, metadata: dict, key: str):
    """The decoded JSON of metadata entry ``key``; :class:`ModelUnavailable` when it is not JSON."""
    try:
        return json.loads(metadata[key])
    except KeyError:
        raise ModelUnavailable(f"{path}: not a demucs safetensors file (no {key!r} in its metadata)") from None
    except (ValueError, RecursionError) as exc:
        raise ModelUnavailable(f"{path}: the {key!r} metadata is not valid JSON ({type(exc).__name__})") from None


def _unflatten_state(path, tensors: dict, structure):
    """The nested model state that ``structure`` (the DECODED JSON of the metadata, so however
    its keys were spelled) describes: ``demucs.hf._unflatten_state`` limited to data. A node is
    one of ``{"_tensor": name}``, ``{"_dict": [[key, node], ...]}``, ``{"_list": [...]}``,
    ``{"_tuple": [...]}``, ``{"_class": name}`` with a name in :data:`MODEL_CLASSES` (an
    allow-list: demucs' loader would import any module it names), or a plain value. Anything
    else is refused with :class:`ModelUnavailable` before anything is imported or built."""
    classes = None

    def bad(why):
        return ModelUnavailable(f"{path}: the state structure {why}; refused (only tensors, containers and "
                                f"demucs' model classes are read)")

    def node(n):
        nonlocal classes
        if n is None or isinstance(n, (bool, int, float, str)):
            return n
        if isinstance(n, list):                 # an untagged list is a value (as demucs reads it)
            if not all(v is None or isinstance(v, (bool, int, float, str, list)) for v in n):
                raise bad("has a plain list holding other nodes")
            return [node(v) for v in n]
        if not isinstance(n, dict) or len(n) != 1:
            raise bad("has a node that is not a single tagged value")
        (tag, value), = n.items()
        if tag == "_tensor":
            if not isinstance(value, str) or value not in tensors:
                raise bad(f"names a tensor {value!r} the file does not hold")
            return tensors[value]
        if tag in ("_list", "_tuple", "_dict") and not isinstance(value, list):
            raise bad(f"has a {tag} that is not a list")
        if tag == "_list":
            return [node(v) for v in value]
        if tag == "_tuple":
            return tuple(node(v) for v in value)
        if tag == "_dict":
            if not all(isinstance(kv, list) and len(kv) == 2 and isinstance(kv[0], str) for kv in value):
                raise bad("has a _dict that is not a list of [name, value] pairs")
            return {k: node(v) for k, v in value}
        if tag == "_class":
            if value not in MODEL_CLASSES:
                raise bad(f"names the class {value!r}, which is not a demucs model class")
            classes = classes or _model_classes()
            return classes[value]
        raise bad(f"has an unknown node {tag!r}")
    try:
        return node(structure)
    except RecursionError:
        raise bad("is nested too deeply") from None


def load_safetensors(path):
    """One demucs model from a safetensors file (as ``demucs.hf.load_safetensors_model``), with
    the model class named in its metadata limited to :data:`MODEL_CLASSES` and its state
    structure read as data only (:func:`_unflatten_state`)."""
    with safetensors.safe_open(str(path), framework="pt") as file:
        metadata = file.metadata() or {}
        tensors = {key: file.get_tensor(key) for key in file.keys()}
    klass = _model_classes().get(metadata.get("klass"))
    if klass is None:
        raise ModelUnavailable(f"{path}: model class {metadata.get('klass')!r} is not a demucs model class")
    state = _unflatten_state(path, tensors, _metadata_json(path, metadata, "structure")) \
        if "structure" in metadata else tensors
    return _model_from_package({"klass": klass, "args": hf._decode_json(_metadata_json(path, metadata, "args")),
                                "kwargs": hf._decode_json(_metadata_json(path, metadata, "kwargs")), "state": state})


def load(source: ModelSource, *, progress: Optional[ProgressFn] = None, cancel=None):
    """Load the model ``source`` describes (a demucs model or ``BagOfModels``, in eval mode),
    weights-only (see :func:`read_package`)."""
    try:
        if source.kind in ("local", "hub-cache"):
            bag = source.bag_file if source.kind == "local" else source.official.bag_file
            model = _load_th_files(bag, source.files)
        elif source.kind == "hf-cache":
            model = _load_hf_files(source.bag_file, source.files)
        else:
            model = _download_and_load(source, progress, cancel)
    except ModelUnavailable:
        raise
    except Exception as exc:
        if isinstance(exc, Cancelled):
            raise
        raise ModelUnavailable(f"cannot load {source.describe()}: {type(exc).__name__}: {exc}") from exc
    model.eval()
    return model


def _load_hf_files(bag_file: Path, files):
    # Same steps as demucs.hf.get_hf_model, from files already on disk.
    bag = _read_bag(Path(bag_file))
    models = [load_safetensors(f) for f in files]
    return apply.BagOfModels(models, bag.get("weights"), bag.get("segment"))


def _download_and_load(source: ModelSource, progress, cancel):
    official = source.official
    urls = probe_urls(source)
    up = probe(urls)
    if not any(up.values()):
        hosts = ", ".join(urllib.parse.urlsplit(u).hostname or u for u in urls.values())
        raise ModelUnavailable(_missing_message(
            source.name, official, f"it was never downloaded and the model servers ({hosts}) cannot be reached"))
    errors = []
    if up.get("huggingface"):      # demucs 4.1's first choice
        try:
            from huggingface_hub import hf_hub_download
            repo = _hf_repo_id(source.name)
            n = len(official.sigs)
            bag_path = hf_hub_download(repo, f"{source.name}.yaml")
            files = []
            for i, s in enumerate(official.sigs):
                check_cancel(cancel)
                tq = _tqdm_adapter(progress, f"{source.name} weights {i + 1}/{n}")
                files.append(hf_hub_download(repo, f"{s}.safetensors", tqdm_class=tq))
            return _load_hf_files(Path(bag_path), files)
        except Exception as exc:
            if isinstance(exc, Cancelled):
                raise
            errors.append(f"HuggingFace: {type(exc).__name__}: {exc}")
    if up.get("legacy"):           # demucs' legacy repository, into the torch hub cache
        hub = _hub_checkpoints()
        try:
            for i, (f, u) in enumerate(zip(official.files, official.urls)):
                if not (hub / f).is_file():
                    download(u, hub / f, progress=progress, cancel=cancel,
                             label=f"{source.name} weights {i + 1}/{len(official.files)}")
            return _load_th_files(official.bag_file, [hub / f for f in official.files])
        except Exception as exc:
            if isinstance(exc, Cancelled):
                raise
            errors.append(f"{type(exc).__name__}: {exc}")
    raise ModelUnavailable(_missing_message(source.name, official, "the download failed (" + "; ".join(errors) + ")"))


def save_to_folder(model, folder, *, name: str, sig: Optional[str] = None, half: bool = True) -> Path:
    """Save a demucs model into a model folder the way demucs publishes its models: a package
    ``{klass, args, kwargs, state, training_args}`` (as ``demucs.states.serialize_model`` makes,
    half-precision state) written by ``demucs.states.save_with_checksum`` as ``SIG-CHECKSUM.th``,
    plus a bag file ``NAME.yaml`` listing it. Returns the ``.th`` path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    sig = sig or hashlib.sha256(name.encode()).hexdigest()[:8]
    args, kwargs = model._init_args_kwargs
    package = {"klass": model.__class__, "args": args, "kwargs": kwargs,
               "state": states.get_state(model, None, half=half), "training_args": {}}
    for old in folder.glob(f"{sig}-*.th"):
        old.unlink()
    states.save_with_checksum(package, folder / f"{sig}.th")
    (folder / f"{name}.yaml").write_text(yaml.safe_dump({"models": [sig]}))
    return next(folder.glob(f"{sig}-*.th"))
