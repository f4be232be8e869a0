"""``resildrill schema``: JSON Schema of drills and targets for editors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from typer.testing import CliRunner

from resildrill.cli import app
from resildrill.cli.schema import build_schema

ROOT = Path(__file__).resolve().parents[3]


def keys_in(schema: dict[str, Any], node: Any, where: dict[str, Any]) -> list[str]:
    """Keys of ``node`` (a YAML mapping) missing from the schema ``where`` describes."""
    if "$ref" in where:
        where = schema["$defs"][where["$ref"].split("/")[-1]]
    missing: list[str] = []
    if isinstance(node, dict) and isinstance(where.get("additionalProperties"), dict):
        for value in node.values():  # a dict[str, Model] field such as ``services``
            missing += keys_in(schema, value, where["additionalProperties"])
    elif isinstance(node, dict):
        props = where.get("properties", {})
        for key, value in node.items():
            if key not in props:
                missing.append(key)
            else:
                missing += keys_in(schema, value, _pick(props[key]))
    elif isinstance(node, list) and "items" in where:
        item = where["items"]
        for value in node:
            if "oneOf" in item:
                kind = value.get("kind")
                ref = item["discriminator"]["mapping"][kind]
                missing += keys_in(schema, value, {"$ref": ref})
            else:
                missing += keys_in(schema, value, item)
    return missing


def _pick(prop: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an ``anyOf: [X, null]``."""
    for branch in prop.get("anyOf", []):
        if branch.get("type") != "null":
            return dict(branch)
    return prop


def test_drill_schema_has_the_fault_union_of_registered_kinds() -> None:
    """The drill schema's faults are a discriminated union that includes ``process``."""
    schema = build_schema("drill")
    items = schema["properties"]["faults"]["items"]
    assert items["discriminator"]["propertyName"] == "kind"
    assert "process" in items["discriminator"]["mapping"]
    process = schema["$defs"]["ProcessFaultSpec"]
    assert {"service", "action", "at"} <= set(process["properties"])
    assert process["additionalProperties"] is False


def test_schemas_describe_every_key_of_the_valid_fixtures() -> None:
    """Every key used by the valid fixtures and the target is known to the schemas."""
    drill = build_schema("drill")
    for path in sorted((ROOT / "tests" / "drills" / "valid").glob("*.yaml")):
        assert keys_in(drill, yaml.safe_load(path.read_text()), drill) == [], path.name
    target = build_schema("target")
    doc = yaml.safe_load((ROOT / "tests" / "drills" / "target.yaml").read_text())
    assert keys_in(target, doc, target) == []


def test_durations_are_strings_with_units_in_the_schema() -> None:
    """Editors flag ``at: 30``: a duration's schema is a string with a unit pattern."""
    at = build_schema("drill")["$defs"]["ProcessFaultSpec"]["properties"]["at"]
    assert at["type"] == "string" and at["pattern"].endswith("(ms|s|m|h)$")


def test_schema_command_prints_and_writes(tmp_path: Path) -> None:
    """``schema target`` prints JSON; ``--out`` writes the same JSON to a file."""
    runner = CliRunner()
    printed = runner.invoke(app, ["schema", "target"])
    assert printed.exit_code == 0
    assert json.loads(printed.stdout)["title"].startswith("resildrill target")
    out = tmp_path / "schemas" / "drill.json"
    written = runner.invoke(app, ["schema", "drill", "--out", str(out)])
    assert written.exit_code == 0
    assert json.loads(out.read_text())["$schema"].startswith("https://json-schema.org/")
    assert "yaml-language-server" in runner.invoke(app, ["schema", "--help"]).stdout
