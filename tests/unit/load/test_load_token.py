"""Unit tests of the bearer token's source: the drill's check, the file watch, the path."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from resildrill.drill.loader import load_drill
from resildrill.drill.model import LoadSpec
from resildrill.errors import InvalidInput, ToolFailed
from resildrill.load import LoadDriver
from resildrill.load.driver import TokenFile

SECRET = "s3cr3t-token-value"


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def test_both_token_sources_are_refused_at_the_file_key() -> None:
    with pytest.raises(ValidationError) as exc:
        LoadSpec(users=1, bearer_token_env="T", bearer_token_file="token")
    (err,) = exc.value.errors()
    assert err["loc"] == ("bearer_token_file",) and "not both" in err["msg"]
    with pytest.raises(ValidationError):
        LoadSpec(users=1, bearer_token_file=" ")
    assert LoadSpec(users=1, bearer_token_file="token").bearer_token_file == "token"


def test_both_token_sources_are_a_located_problem_in_the_drill_file(tmp_path: Path) -> None:
    (tmp_path / "target.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "resildrill/v1",
                "kind": "Target",
                "name": "t",
                "environment": "test",
                "probes": [
                    {"name": "api", "http": {"url": "http://127.0.0.1:9/"}, "role": "clinical"}
                ],
            }
        )
    )
    drill = tmp_path / "drill.yaml"
    drill.write_text(
        "apiVersion: resildrill/v1\n"
        "kind: Drill\n"
        "name: d\n"
        "target: target.yaml\n"
        "slos:\n"
        "  - probe: api\n"
        "    expect: success_rate >= 0.9\n"
        "load:\n"
        "  users: 2\n"
        "  bearer_token_env: FHIR_TOKEN\n"
        "  bearer_token_file: secrets/token\n"
    )
    with pytest.raises(InvalidInput) as exc:
        load_drill(drill)
    text = str(exc.value)
    assert f"{drill}:11:22: load.bearer_token_file:" in text and "not both" in text


def test_token_file_first_read_fails_without_quoting_the_file(tmp_path: Path) -> None:
    path = tmp_path / "token"
    with pytest.raises(ToolFailed, match="No such file"):
        TokenFile(path).first()
    path.write_text("\n")
    with pytest.raises(ToolFailed, match="empty"):
        TokenFile(path).first()
    path.write_text(f"{SECRET}\nsecond line\n")
    with pytest.raises(ToolFailed, match="more than one line") as exc:
        TokenFile(path).first()
    assert SECRET not in str(exc.value)
    path.write_text(f"  {SECRET}\n")
    assert TokenFile(path).first() == SECRET


def test_token_file_change_is_seen_and_a_missing_file_keeps_the_last_token(
    tmp_path: Path,
) -> None:
    path = tmp_path / "token"
    _write(path, "one\n")
    tf = TokenFile(path, every_s=3600)
    assert tf.first() == "one"
    assert tf.check() is None  # unchanged
    _write(path, "two\n")  # a helper renames a new file over it
    assert tf.check() == "two" and tf.token == "two" and tf.refreshes == 1
    path.unlink()  # between a helper's unlink and rename
    assert tf.check() is None and tf.check() is None
    assert tf.token == "two" and tf.read_failures == 1 and tf.last_error
    _write(path, "")  # an empty file is not a token either
    assert tf.check() is None and tf.read_failures == 1
    _write(path, "two\n")  # the same token again: nothing to send
    assert tf.check() is None and tf.last_error is None
    _write(path, "three")
    assert tf.check() == "three" and tf.refreshes == 2


def test_token_file_is_re_read_periodically_even_when_its_stat_looks_the_same(
    tmp_path: Path,
) -> None:
    path = tmp_path / "token"
    path.write_text("aaaa")
    tf = TokenFile(path, every_s=0.2)
    tf.first()
    st = os.stat(path)
    with open(path, "r+") as f:  # rewritten in place, same size, mtime put back
        f.write("bbbb")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert tf.check() is None  # the stat says nothing changed
    time.sleep(0.25)
    assert tf.check() == "bbbb"


def _driver(tmp_path: Path, spec: LoadSpec, **kw: object) -> LoadDriver:
    return LoadDriver(
        spec,
        host="http://127.0.0.1:9",
        run_dir=tmp_path / "run",
        monotonic_t0=time.monotonic(),
        **kw,  # type: ignore[arg-type]
    )


def test_relative_token_file_is_found_next_to_the_drill(tmp_path: Path) -> None:
    spec = LoadSpec(users=1, bearer_token_file="secrets/token")
    given = _driver(tmp_path, spec, drill_dir=tmp_path / "x")
    assert given.token_path() == tmp_path / "x" / "secrets" / "token"
    absolute = LoadSpec(users=1, bearer_token_file=str(tmp_path / "abs"))
    assert _driver(tmp_path, absolute).token_path() == tmp_path / "abs"
    assert _driver(tmp_path, LoadSpec(users=1)).token_path() is None


def test_start_without_the_token_file_starts_nothing(tmp_path: Path) -> None:
    spec = LoadSpec(users=1, bearer_token_file="missing-token")
    driver = _driver(tmp_path, spec, drill_dir=tmp_path)
    with pytest.raises(ToolFailed, match=r"load\.bearer_token_file: .*missing-token"):
        driver.start()
    assert driver.pids == [] and not (tmp_path / "run" / "load").exists()
    driver.stop()


def test_summary_says_where_the_token_came_from_never_what_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The variable is read once, when load starts (here: that read, without Locust)."""
    monkeypatch.setenv("RD_UNIT_TOKEN", SECRET)
    driver = _driver(tmp_path, LoadSpec(users=1, bearer_token_env="RD_UNIT_TOKEN"))
    driver._token = driver._first_token()
    assert driver._token == SECRET
    assert driver.summary()["bearer_token"] == {"source": "env", "present": True}
    assert SECRET not in json.dumps(driver.summary())
    monkeypatch.delenv("RD_UNIT_TOKEN")
    unset = _driver(tmp_path, LoadSpec(users=1, bearer_token_env="RD_UNIT_TOKEN"))
    unset._token = unset._first_token()
    assert unset.summary()["bearer_token"] == {"source": "env", "present": False}
    path = tmp_path / "token"
    path.write_text(SECRET)
    by_file = _driver(tmp_path, LoadSpec(users=1, bearer_token_file=str(path)))
    by_file._token = by_file._first_token()
    assert SECRET not in json.dumps(by_file.summary())
    assert by_file.summary()["bearer_token"]["source"] == "file"
