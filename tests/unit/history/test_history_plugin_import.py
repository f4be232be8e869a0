"""Loading the pytest plugin keeps Locust and gevent out of the test process."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points


def test_plugin_import_does_not_load_locust_or_gevent() -> None:
    """A fresh interpreter importing the plugin has neither gevent nor locust in sys.modules."""
    code = (
        "import sys, resildrill.pytest_plugin\n"
        "leaked = {'gevent', 'locust'} & {m.split('.')[0] for m in sys.modules}\n"
        "assert not leaked, leaked\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_plugin_is_registered_as_pytest11() -> None:
    """The plugin is an entry point pytest loads by itself."""
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("resildrill") == "resildrill.pytest_plugin"
