"""rxconfig.py points Reflex at the project's tools, so plain ``reflex run`` needs no Makefile.

Each case imports a copy of the real rxconfig.py in a fresh interpreter with a clean
environment (no ``REFLEX_*``, no user npm configuration) and asks Reflex itself what it will
use, the way ``reflex run`` does after loading the config.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# What `reflex run` reads once it has loaded rxconfig.py.
PROBE = """
import json, os
from reflex.config import environment, get_config
from reflex.utils import path_ops
from reflex.utils.registry import get_npm_registry

get_config()
print(json.dumps({
    "bun": str(path_ops.get_bun_path()),
    "reflex_dir": str(environment.REFLEX_DIR.get()),
    "check_latest_version": environment.REFLEX_CHECK_LATEST_VERSION.get(),
    "bun_cache": os.environ.get("BUN_INSTALL_CACHE_DIR"),
    "registry": get_npm_registry() if os.environ.get("NPM_CONFIG_REGISTRY") else None,
}))
"""


def fake_bun(path: Path) -> Path:
    """An executable named bun (Reflex only checks that the configured one exists)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("#!/bin/sh\necho 1.4.4\n")
    path.chmod(0o755)
    return path


def project(tmp_path: Path, *, with_tools_bun: bool) -> Path:
    """A project folder holding the real rxconfig.py and, if asked, a bun in its .tools."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy(ROOT / "rxconfig.py", root / "rxconfig.py")
    if with_tools_bun:
        fake_bun(root / ".tools" / "node_modules" / ".bin" / "bun")
    return root


def probe(root: Path, tmp_path: Path, **extra: str) -> dict[str, object]:
    """Load ``root``'s rxconfig as ``reflex run`` does, in a clean environment."""
    path_bun = fake_bun(tmp_path / "bin" / "bun")
    # npm (and the node it runs on) stay reachable: npm's configuration names the registry.
    node_dirs = [
        os.path.dirname(found) for tool in ("npm", "node") if (found := shutil.which(tool))
    ]
    env = {
        "PATH": os.pathsep.join([str(path_bun.parent), *node_dirs]),
        "HOME": str(tmp_path / "home"),
        "ONBOARD_DATABASE_URL": f"sqlite:///{tmp_path / 'probe.db'}",
        "ONBOARD_DEV_KEY_FILE": str(tmp_path / "dev-key"),
        **extra,
    }
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_reflex_uses_the_bun_in_tools_and_keeps_its_files_there(tmp_path: Path) -> None:
    root = project(tmp_path, with_tools_bun=True)
    seen = probe(root, tmp_path)
    assert seen["bun"] == str(root / ".tools" / "node_modules" / ".bin" / "bun")
    assert seen["reflex_dir"] == str(root / ".tools" / "reflex")
    assert seen["bun_cache"] == str(root / ".tools" / "bun-cache")
    assert seen["check_latest_version"] is False


def test_reflex_falls_back_to_a_bun_on_path(tmp_path: Path) -> None:
    seen = probe(project(tmp_path, with_tools_bun=False), tmp_path)
    assert seen["bun"] == str(tmp_path / "bin" / "bun")


def test_what_the_user_set_wins(tmp_path: Path) -> None:
    own_bun = fake_bun(tmp_path / "own" / "bun")
    seen = probe(
        project(tmp_path, with_tools_bun=True),
        tmp_path,
        REFLEX_BUN_PATH=str(own_bun),
        REFLEX_DIR=str(tmp_path / "own-reflex"),
        REFLEX_CHECK_LATEST_VERSION="1",
        NPM_CONFIG_REGISTRY="http://registry.example/",
    )
    assert seen["bun"] == str(own_bun)
    assert seen["reflex_dir"] == str(tmp_path / "own-reflex")
    assert seen["check_latest_version"] is True
    assert seen["registry"] == "http://registry.example/"


@pytest.mark.skipif(shutil.which("npm") is None, reason="needs npm (it installs bun)")
def test_the_registry_is_the_one_npm_is_configured_with(tmp_path: Path) -> None:
    """Reflex writes this registry into .web/bunfig.toml; a mirror in an .npmrc must win."""
    npmrc = tmp_path / "npmrc"
    npmrc.write_text("registry=http://mirror.example/npm/\n")
    seen = probe(project(tmp_path, with_tools_bun=True), tmp_path, NPM_CONFIG_USERCONFIG=str(npmrc))
    assert seen["registry"] == "http://mirror.example/npm/"


def test_the_committed_frontend_lock_names_no_registry() -> None:
    """bun.lock leaves the resolved URL empty ("" = the configured registry) for packages
    from the default registry, but writes absolute URLs when it rewrites the lock behind a
    mirror; committed, those would send every other checkout to that mirror."""
    lock = (ROOT / "reflex.lock" / "bun.lock").read_text()
    assert '"packages"' in lock
    assert re.findall(r'"(?:https?|git\+\w+)://[^"]*"', lock) == []
