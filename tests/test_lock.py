"""The installed environment is the locked one: every package pinned in ``constraints.txt`` is installed at
exactly that version, and nothing is installed that the lock does not name (a drift means a fresh machine
would not get what the tests ran on)."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

LOCK = Path(__file__).resolve().parents[1] / "constraints.txt"
NOT_LOCKED = {"mmcrs", "pip", "setuptools", "wheel", "llama-cpp-python"}  # ourselves, the installer, optional


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _locked() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt: {line!r} is not NAME==VERSION"
            pins[_norm(name)] = version
    return pins


def _installed() -> dict[str, str]:
    return {_norm(d.metadata["Name"]): d.version for d in metadata.distributions() if d.metadata["Name"]}


def test_every_installed_package_is_at_its_locked_version() -> None:
    locked, installed = _locked(), _installed()
    drift = {n: (installed[n], v) for n, v in locked.items() if n in installed and installed[n] != v}
    assert drift == {}, f"installed != locked (installed, locked): {drift}"


def test_every_locked_package_is_installed_and_nothing_else() -> None:
    locked, installed = _locked(), _installed()
    assert sorted(set(locked) - set(installed)) == []
    assert sorted(set(installed) - set(locked) - NOT_LOCKED) == []


def test_the_lock_pins_what_the_scheduler_needs() -> None:
    locked = _locked()
    assert locked["prefect"] == "3.8.8" and locked["sqlalchemy"].startswith("2.0.")  # 2.1 breaks the scheduler
