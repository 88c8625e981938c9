"""Provenance of a run: fingerprints of its resolved config and of the code that ran it.

A finished run is reused by a resumed sweep or study only when both
fingerprints match the ones asked for (README, "Resume"): the config
fingerprint is the SHA-256 of the resolved config as sorted JSON, leaving out
keys that cannot change any output (:data:`OUTPUT_NEUTRAL_KEYS`); the code
fingerprint is the SHA-256 of the package version and of every source file of
the simulated world (``sim``, ``agents``, ``margin`` and the ``conf`` YAML),
so a run made by other code is never taken for one of this code.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from importlib import metadata
from importlib.resources import files
from typing import Any

__all__ = ["OUTPUT_NEUTRAL_KEYS", "code_fingerprint", "config_fingerprint", "package_version",
           "provenance_matches", "provenance_record"]

OUTPUT_NEUTRAL_KEYS = ("progress",)
"""Top-level run-config keys that change no output file (the progress bar)."""

_SOURCE_PACKAGES = (("sim", ".py"), ("agents", ".py"), ("margin", ".py"), ("conf", ".yaml"))


def package_version() -> str:
    """The installed ``marginsim`` version (``"unknown"`` when run from a bare tree)."""
    try:
        return metadata.version("marginsim")
    except metadata.PackageNotFoundError:
        return "unknown"


@lru_cache(maxsize=1)
def code_fingerprint() -> str:
    """SHA-256 (hex, 16 characters) of the package version and the world's source files.

    Files are hashed in sorted path order with their relative path, so a
    renamed, added or removed file changes the fingerprint as an edit does.
    Cached per process: the code of a running process does not change.
    """
    h = hashlib.sha256(package_version().encode())
    for package, suffix in _SOURCE_PACKAGES:
        root = files(package)
        stack = [root]
        found = []
        while stack:
            node = stack.pop()
            for child in node.iterdir():
                if child.is_dir():
                    if child.name != "__pycache__":
                        stack.append(child)
                elif child.name.endswith(suffix):
                    found.append(child)
        for f in sorted(found, key=lambda f: str(f)):
            rel = str(f)[len(str(root)):]
            h.update(f"\0{package}{rel}\0".encode())
            h.update(f.read_bytes())
    return h.hexdigest()[:16]


def _plain(x: Any) -> Any:
    return x.item() if hasattr(x, "item") else str(x)


def config_fingerprint(cfg: Any) -> str:
    """SHA-256 (hex, 16 characters) of a resolved run config as sorted JSON.

    Args:
        cfg: A run config (DictConfig, ``RunConfig``) or its plain-dict form.
            Keys in :data:`OUTPUT_NEUTRAL_KEYS` are left out.
    """
    if not isinstance(cfg, dict):
        from sim.config import to_container

        cfg = to_container(cfg)
    plain = {k: v for k, v in cfg.items() if k not in OUTPUT_NEUTRAL_KEYS}
    text = json.dumps(plain, sort_keys=True, default=_plain)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def provenance_record(cfg: Any) -> dict[str, str]:
    """``{"config_sha256", "code_sha256", "version"}`` of a run, for its completion marker."""
    return {"config_sha256": config_fingerprint(cfg), "code_sha256": code_fingerprint(),
            "version": package_version()}


def provenance_matches(recorded: Any, expected: Any) -> bool:
    """Whether a recorded provenance carries the config and code fingerprints expected.

    Args:
        recorded: The provenance a finished run recorded (None: none recorded).
        expected: The provenance asked for (None: the run's config did not resolve).

    Returns:
        True only if ``config_sha256`` and ``code_sha256`` are both present and
        equal (the package version is part of the code fingerprint).
    """
    if not isinstance(recorded, dict) or not expected:
        return False
    return all(recorded.get(k) is not None and recorded.get(k) == expected.get(k)
               for k in ("config_sha256", "code_sha256"))
