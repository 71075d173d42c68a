"""The lock file: what `.ci/run` and the README's commands install (`pip install -c requirements.lock ...`).

setup.py keeps ranges for people who install the package into their own environment; the lock pins every
package for reproducible runs. Both must agree, and so must the Glue worker, which installs its own modules.
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stedi_assets.glue.pipes import WORKER_MODULES

LOCK = Path(__file__).resolve().parents[1] / "requirements.lock"


def locked() -> dict[str, str]:
    pins = {}
    for line in LOCK.read_text().splitlines():
        if line and not line.startswith((" ", "#")):
            name, version = line.split("==")
            pins[canonicalize_name(name)] = version.strip()
    return pins


def test_the_lock_satisfies_every_requirement_of_setup_py():
    pins = locked()
    for text in importlib.metadata.requires("stedi_assets") or []:
        requirement = Requirement(text)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement} is not in requirements.lock: regenerate it (README, Dependencies)"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{requirement} vs lock {pins[name]}"


def test_the_glue_worker_installs_the_locked_versions():
    pins = locked()
    for module in WORKER_MODULES:
        requirement = Requirement(module)
        assert str(requirement.specifier) == f"=={pins[canonicalize_name(requirement.name)]}", module
