"""Fixtures for the docker fault tests: a real engine, the skeleton image, labelled containers.

The engine is started by ``scripts/start-docker.sh`` (``.ci/run`` calls it). When it could not
start, the script leaves its reason in a marker file and every test here is reported as
skipped with that reason, also repeated in the terminal summary, never silently.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from docker_support import MARKER, Containers

_why_skipped: list[str] = []


def _engine_problem() -> str | None:
    if MARKER.exists():
        return f"Docker engine unavailable: {MARKER.read_text().strip()}"
    try:
        import docker
    except ImportError:
        return "the docker SDK is not installed (pip install -e '.[dev]')"
    host = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    try:
        docker.from_env(timeout=5).ping()
    except Exception as exc:  # any failure to reach the engine means the same thing
        return f"no Docker engine at {host} ({type(exc).__name__}); run scripts/start-docker.sh"
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip every docker test, with the engine's problem as the reason, when it is down."""
    here = Path(__file__).parent
    mine = [i for i in items if here in Path(str(i.fspath)).parents]
    if not mine:
        return
    problem = _engine_problem()
    if problem is None:
        return
    _why_skipped.append(problem)
    for item in mine:
        item.add_marker(pytest.mark.skip(reason=problem))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say why the docker tests were skipped, even without ``-rs``."""
    for problem in _why_skipped:
        terminalreporter.write_line(f"docker tests SKIPPED: {problem}", yellow=True)


# --- engine, image, containers ---------------------------------------------------------------


@pytest.fixture(scope="session")
def client() -> Any:
    """An SDK client of the local engine, for setting up and removing test containers."""
    import docker

    return docker.from_env(timeout=30)


@pytest.fixture(scope="session")
def image(client: Any) -> str:
    """The skeleton image every test container runs (built once, cached outside git)."""
    from wardehr.docker_stack import ensure_image

    return ensure_image(client)


@pytest.fixture
def containers(client: Any, image: str) -> Iterator[Containers]:
    """A factory of test containers, all removed at teardown."""
    made = Containers(client, image)
    yield made
    made.remove_all()
