"""File -> YAML nodes -> models, with every problem located as ``file:line:col: path``.

Owns reading drill and target files safely and turning every problem into a
:class:`~resildrill.errors.Problem` (1-based line and column, a path like
``faults[2].duration``). The YAML is read event by event, so each value keeps its
position, and hostile input is refused before it can cost anything: files over 1 MiB,
non-UTF-8 bytes, anchors and aliases (the "billion laughs" bomb), nesting deeper than 50
levels, several documents, and a root that is not a mapping. Every problem is collected,
then sorted by position; nothing here raises anything but
:class:`~resildrill.errors.InvalidInput`.

The drill model's ``faults`` is a discriminated union on ``kind`` over the spec models of
the registered fault kinds, so fault-specific fields are validated and located too.
Cross-field checks (references, overlaps, windows) live in :mod:`resildrill.drill.validate`.

``${VAR}`` references are left as they are: secrets are written as references, and the
component that needs the value reads the environment itself, at the last moment.
"""

from __future__ import annotations

import difflib
import functools
import hashlib
import json
import os
import re
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import yaml
from pydantic import BaseModel, Field, TypeAdapter, ValidationError, create_model
from pydantic.fields import FieldInfo
from yaml.constructor import SafeConstructor
from yaml.nodes import ScalarNode

from resildrill.drill import validate
from resildrill.drill.model import DrillSpec, FaultSpec, TargetSpec
from resildrill.errors import InvalidInput, Problem

if typing.TYPE_CHECKING:
    from resildrill.plugins import FaultRegistry

__all__ = [
    "MAX_BYTES",
    "MAX_DEPTH",
    "LoadedDrill",
    "LoadedTarget",
    "SourceMap",
    "drill_model",
    "format_path",
    "load_document",
    "load_drill",
    "load_target",
    "target_model",
]

#: Drill and target files are a few kilobytes; anything past this is refused unread.
MAX_BYTES = 1 << 20
#: Deeper nesting than this is no drill (the models nest about six levels).
MAX_DEPTH = 50
#: Values (scalars, lists, mappings) per file: a large drill has a few hundred.
MAX_VALUES = 5_000
#: Problems reported per file before the rest are summarised in one line.
MAX_PROBLEMS = 50

Loc = tuple[str | int, ...]

# libyaml when present (faster, no Python recursion); the pure-Python parser otherwise.
_Parser: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_CORE_TAG = "tag:yaml.org,2002:"
_ALLOWED_TAGS = {f"{_CORE_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}
_SIMPLE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


@dataclass(frozen=True)
class LoadedTarget:
    """A validated target and where it came from."""

    spec: TargetSpec
    path: Path
    sha256: str
    #: The file name as the user gave it (relative stays relative), used in problems.
    display: str = ""
    warnings: list[Problem] = field(default_factory=list)


@dataclass(frozen=True)
class LoadedDrill:
    """A validated drill, its target, checksums and any warnings."""

    spec: DrillSpec
    path: Path
    sha256: str
    target: LoadedTarget
    warnings: list[Problem] = field(default_factory=list)
    #: The file name as the user gave it (relative stays relative), used in problems.
    display: str = ""


# ---------------------------------------------------------------------------------------
# Paths and positions


def format_path(loc: Loc) -> str:
    """Write a location as ``faults[2].duration`` (``<root>`` when empty)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _SIMPLE_KEY.match(part):
            out += f".{part}" if out else part
        else:
            # Odd keys are quoted; spaces escaped so the path stays one word on the line.
            out += "[" + json.dumps(part).replace(" ", "\\u0020") + "]"
    return out or "<root>"


@dataclass
class SourceMap:
    """Where each value (and each mapping key) of one YAML document starts, 1-based."""

    file: str
    values: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    #: The text of scalars YAML read as something else than written (``no`` -> false).
    texts: dict[Loc, str] = field(default_factory=dict)

    def position(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        """The position of ``loc``'s value (or key), else of its nearest located parent."""
        if key and loc in self.keys:
            return self.keys[loc]
        for end in range(len(loc), -1, -1):
            found = self.values.get(loc[:end])
            if found is not None:
                return found
        return (1, 1)

    def problem(
        self, loc: Loc, message: str, severity: str = "error", *, key: bool = False
    ) -> Problem:
        """A problem located at ``loc`` in this file."""
        line, col = self.position(loc, key=key)
        return Problem(self.file, line, col, format_path(loc), message, severity)


# ---------------------------------------------------------------------------------------
# Bytes -> text -> Python values with positions


class _Fatal(Exception):
    """Stops reading a file whose structure cannot be trusted any further."""


class _Reader:
    """Builds plain Python values from YAML events, recording where each one starts."""

    def __init__(self, text: str, smap: SourceMap) -> None:
        self.smap = smap
        self.problems: list[Problem] = []
        self._parser = _Parser(text)
        self._constructor = SafeConstructor()
        self._count = 0

    def _add(self, mark: Any, message: str, loc: Loc = ()) -> None:
        self.problems.append(
            Problem(self.smap.file, mark.line + 1, mark.column + 1, format_path(loc), message)
        )
        if len(self.problems) > MAX_PROBLEMS:
            raise _Fatal  # _sorted says the rest were not shown

    def _next(self) -> Any:
        return self._parser.get_event()

    def read(self) -> Any:
        """The single document's root value (problems are collected on the side)."""
        self._next()  # StreamStart
        event = self._next()
        if isinstance(event, yaml.StreamEndEvent):
            self._add(event.start_mark, "the file is empty: expected a mapping with 'kind'")
            raise _Fatal
        value = self._value((), 0)
        self._next()  # DocumentEnd
        event = self._next()
        if not isinstance(event, yaml.StreamEndEvent):
            self._add(
                event.start_mark,
                "a file holds one document; remove the second one (after '---')",
            )
        return value

    def _check_anchor(self, event: Any, loc: Loc) -> None:
        if getattr(event, "anchor", None) is not None:
            self._add(
                event.start_mark,
                f"YAML anchors are not allowed (&{event.anchor}): write the value out",
                loc,
            )

    def _value(self, loc: Loc, depth: int) -> Any:
        event = self._next()
        mark = event.start_mark
        self.smap.values.setdefault(loc, (mark.line + 1, mark.column + 1))
        self._count += 1
        if self._count > MAX_VALUES:
            self._add(mark, f"more than {MAX_VALUES} values in one file; a drill has a few hundred")
            raise _Fatal
        if isinstance(event, yaml.AliasEvent):
            self._add(
                mark, f"YAML aliases are not allowed (*{event.anchor}): write the value out", loc
            )
            return None
        self._check_anchor(event, loc)
        tag = getattr(event, "tag", None)
        if tag is not None and tag != "!" and tag not in _ALLOWED_TAGS:
            self._add(mark, f"YAML tag {tag!r} is not allowed", loc)
        if isinstance(event, yaml.ScalarEvent):
            value = self._scalar(event)
            if isinstance(value, bool) and event.value.lower() not in ("true", "false"):
                # YAML 1.1 reads yes/no/on/off as booleans: remember what was written.
                self.smap.texts[loc] = event.value
            return value
        if depth >= MAX_DEPTH:
            self._add(mark, f"nesting is deeper than {MAX_DEPTH} levels", loc)
            raise _Fatal
        if isinstance(event, yaml.SequenceStartEvent):
            items: list[Any] = []
            while not isinstance(self._parser.peek_event(), yaml.SequenceEndEvent):
                items.append(self._value((*loc, len(items)), depth + 1))
            self._next()
            return items
        return self._mapping(loc, depth)

    def _mapping(self, loc: Loc, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        while not isinstance(self._parser.peek_event(), yaml.MappingEndEvent):
            event = self._parser.peek_event()
            mark = event.start_mark
            if not isinstance(event, yaml.ScalarEvent):
                self._value((*loc, "<key>"), depth + 1)  # read and drop
                self._add(mark, "mapping keys must be plain names", loc)
                self._value((*loc, "<value>"), depth + 1)
                continue
            self._next()
            self._check_anchor(event, loc)
            name = str(event.value)
            child = (*loc, name)
            if name in result or child in self.smap.keys:
                first = self.smap.keys.get(child, (0, 0))[0]
                self._add(mark, f"duplicate key {name!r} (first at line {first})", child)
                self._value((*loc, f"<duplicate {name}>"), depth + 1)
                continue
            self.smap.keys[child] = (mark.line + 1, mark.column + 1)
            result[name] = self._value(child, depth + 1)
        self._next()
        return result

    def _scalar(self, event: Any) -> Any:
        tag = event.tag
        if tag is None or tag == "!":
            tag = self._parser.resolve(ScalarNode, event.value, event.implicit)
        value: str = event.value
        node = ScalarNode(tag, value, event.start_mark, event.end_mark, event.style)
        kind = tag[len(_CORE_TAG) :] if tag.startswith(_CORE_TAG) else "str"
        # YAML 1.1 reads "1:30" as the sexagesimal number 90; keep the text so the
        # duration grammar can name what was written.
        if kind in ("int", "float") and ":" in value:
            return value
        try:
            if kind == "null":
                return None
            if kind == "bool":
                return self._constructor.construct_yaml_bool(node)
            if kind == "int":
                return self._constructor.construct_yaml_int(node)
            if kind == "float":
                return self._constructor.construct_yaml_float(node)
        except Exception:  # PyYAML's constructors fail in many ways on odd text
            # "!!bool maybe", "!!int ''", numbers with thousands of digits: keep the text,
            # which the models then reject with a located message.
            return value
        return value


def _position_of(text: str, index: int) -> tuple[int, int]:
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _parse(raw: bytes, display: str) -> tuple[Any, SourceMap, list[Problem]]:
    """Bytes -> (root value, source map, problems). The value is None when unusable."""
    smap = SourceMap(display)
    if len(raw) > MAX_BYTES:
        message = f"the file is larger than {MAX_BYTES // 1024 // 1024} MiB; a drill is a few KB"
        return None, smap, [Problem(display, 1, 1, "<root>", message)]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = len(raw[raw.rfind(b"\n", 0, exc.start) + 1 : exc.start].decode("utf-8", "replace"))
        message = f"not valid UTF-8 (byte 0x{raw[exc.start]:02x}); save the file as UTF-8"
        return None, smap, [Problem(display, line, col + 1, "<root>", message)]
    reader = _Reader(text, smap)
    value: Any = None
    try:
        value = reader.read()
    except _Fatal:
        value = None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        context = f" ({exc.context})" if exc.context else ""
        message = f"YAML syntax: {exc.problem}{context}"
        reader.problems.append(Problem(display, line, col, "<root>", message))
        value = None
    except yaml.YAMLError as exc:
        line, col = _position_of(text, int(getattr(exc, "position", 0) or 0))
        reader.problems.append(Problem(display, line, col, "<root>", f"YAML: {exc}".split("\n")[0]))
        value = None
    if reader.problems:
        return None, smap, reader.problems
    if not isinstance(value, dict):
        message = "expected a mapping with 'apiVersion' and 'kind' at the top of the file"
        return None, smap, [smap.problem((), message)]
    return value, smap, []


def _read(path: Path, display: str) -> tuple[bytes, list[Problem]]:
    if path.exists() and not path.is_file():
        # A FIFO or device could block or never end; a directory cannot be read.
        return b"", [Problem(display, 1, 1, "<root>", "not a regular file")]
    try:
        with path.open("rb") as fh:
            raw = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        return b"", [Problem(display, 1, 1, "<root>", f"cannot read: {exc.strerror or exc}")]
    return raw, []


# ---------------------------------------------------------------------------------------
# Models


class _Drill(DrillSpec):
    """The drill model as the loader validates it (ids are checked with their location)."""

    def _ids_unique(self) -> _Drill:  # type: ignore[override]
        return self  # validate.check_drill reports duplicates where they are


class _Target(TargetSpec):
    """The target model as the loader validates it (names are checked with their location)."""

    def _probe_names_unique(self) -> _Target:  # type: ignore[override]
        return self  # validate.check_target reports duplicates where they are


@functools.lru_cache(maxsize=16)
def _drill_model_for(specs: tuple[type[FaultSpec], ...]) -> type[DrillSpec]:
    if specs:
        union: Any = Annotated[Union[specs], Field(discriminator="kind")]  # noqa: UP007
    else:
        union = FaultSpec
    model = create_model(
        "Drill",
        __base__=_Drill,
        __module__=__name__,
        faults=(list[union], Field(default_factory=list)),
    )
    return typing.cast(type[DrillSpec], model)


def drill_model(registry: FaultRegistry) -> type[DrillSpec]:
    """The ``kind: Drill`` model whose ``faults`` is a union over the registered kinds."""
    return _drill_model_for(tuple(registry.spec_models()))


def target_model() -> type[TargetSpec]:
    """The ``kind: Target`` model the loader validates with."""
    return _Target


def _is_model(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, BaseModel)


def _unwrap(tp: Any) -> tuple[list[Any], bool]:
    """The candidate types behind Annotated / Optional / Union, and whether pydantic will
    put a tag (a union member's discriminator value or class name) in error locations."""
    if typing.get_origin(tp) is Annotated:
        inner, tagged = _unwrap(typing.get_args(tp)[0])
        marked = any(getattr(m, "discriminator", None) for m in typing.get_args(tp)[1:])
        return inner, tagged or marked
    if typing.get_origin(tp) in (Union, types.UnionType):
        members: list[Any] = []
        for arg in typing.get_args(tp):
            if arg is not type(None):
                members += _unwrap(arg)[0]
        return members, sum(map(_is_model, members)) > 1
    return [tp], False


def _kind_tag(model: type[BaseModel]) -> str | None:
    info = model.model_fields.get("kind")
    if info is not None and typing.get_origin(info.annotation) is Literal:
        args = typing.get_args(info.annotation)
        return str(args[0]) if args else None
    return None


@functools.lru_cache(maxsize=256)
def _fields_by_key(model: type[BaseModel]) -> dict[str, FieldInfo]:
    """A model's fields by the key written in YAML (the alias, such as ``for``)."""
    return {info.alias or name: info for name, info in model.model_fields.items()}


def _descend(candidates: list[Any], elem: str | int) -> tuple[list[Any], bool]:
    found: list[Any] = []
    tagged = False
    for cand in candidates:
        origin = typing.get_origin(cand)
        inner: list[Any] = []
        tag = False
        if _is_model(cand):
            info = _fields_by_key(cand).get(str(elem))
            if info is not None:
                inner, tag = _unwrap(info.annotation)
        elif origin in (list, tuple) and isinstance(elem, int):
            inner, tag = _unwrap(typing.get_args(cand)[0])
        elif origin is dict and isinstance(elem, str):
            inner, tag = _unwrap(typing.get_args(cand)[1])
        found += inner
        tagged = tagged or tag
    return found, tagged


@dataclass(frozen=True)
class _Where:
    loc: Loc
    is_key: bool
    #: The model validating the mapping that holds the last element, when known.
    owner: type[BaseModel] | None


def _walk(root: type[BaseModel], loc: Loc, data: Any) -> _Where:
    """Follow a pydantic error ``loc`` through the model types and the data together,
    dropping the tags pydantic adds for unions, so the result names a place in the file."""
    out: list[str | int] = []
    cur: Any = data
    candidates: list[Any] = [root]
    tagged = False
    owner: type[BaseModel] | None = root
    for i, elem in enumerate(loc):
        if elem == "[key]":
            return _Where(tuple(out), True, owner)
        if tagged:
            tagged = False
            members = [c for c in candidates if _is_model(c) and elem in (c.__name__, _kind_tag(c))]
            if members:
                candidates = members
                continue
        models = [c for c in candidates if _is_model(c)]
        owner = models[0] if len(models) == 1 else None
        in_dict = isinstance(cur, dict) and isinstance(elem, str) and elem in cur
        in_list = isinstance(cur, list) and isinstance(elem, int) and 0 <= elem < len(cur)
        if in_dict or in_list:
            out.append(elem)
            cur = cur[elem]
        elif i == len(loc) - 1 and isinstance(cur, dict):
            out.append(elem)  # a missing key
            cur = None
        else:
            continue  # a tag pydantic put in the loc that the types did not predict
        candidates, tagged = _descend(candidates, elem)
    return _Where(tuple(out), False, owner)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


#: The pattern of ids and names in the models (drill.model.NAME_PATTERN).
NAME_PATTERN = r"^[A-Za-z0-9_.-]+$"
_FRIENDLY = {
    "model_attributes_type": "expected a mapping",
    "model_type": "expected a mapping",
    "dict_type": "expected a mapping",
    "list_type": "expected a list",
    "int_parsing": "expected a whole number",
    "int_from_float": "expected a whole number",
    "float_parsing": "expected a number",
}


def _unknown_key_message(name: str, allowed: list[str]) -> str:
    close = difflib.get_close_matches(name, allowed, n=1, cutoff=0.6)
    if close:
        return f"unknown key {name!r} (did you mean {close[0]!r}?)"
    if allowed:
        return f"unknown key {name!r} (expected one of: {', '.join(allowed)})"
    return f"unknown key {name!r}"


def _problems_from(
    exc: ValidationError, model: type[BaseModel], data: Any, smap: SourceMap, kinds: list[str]
) -> list[Problem]:
    from resildrill.plugins import unknown_kind_message

    problems: list[Problem] = []
    # Only MAX_PROBLEMS lines are printed; locating thousands more would only cost time.
    # Pydantic lists errors field by field and item by item, close to file order.
    for err in exc.errors(include_url=False)[: 20 * MAX_PROBLEMS]:
        raw_loc: Loc = tuple(err["loc"])
        kind = err["type"]
        where = _walk(model, raw_loc, data)
        loc, is_key = where.loc, where.is_key
        ctx = err.get("ctx") or {}
        if kind == "union_tag_invalid":
            loc = (*loc, "kind")
            message = unknown_kind_message(str(ctx.get("tag", "")), kinds)
        elif kind == "union_tag_not_found":
            message = f"missing required key 'kind' (one of: {', '.join(kinds) or 'none'})"
            line, col = smap.position(loc)
            problems.append(Problem(smap.file, line, col, format_path((*loc, "kind")), message))
            continue
        elif kind == "missing":
            message = f"missing required key {loc[-1]!r}" if loc else "missing value"
            problems.append(Problem(smap.file, *smap.position(loc[:-1]), format_path(loc), message))
            continue
        elif kind == "extra_forbidden":
            allowed = sorted(_fields_by_key(where.owner)) if where.owner is not None else []
            problems.append(
                smap.problem(loc, _unknown_key_message(str(loc[-1]), allowed), key=True)
            )
            continue
        elif kind == "value_error" and "error" in ctx:
            message = str(ctx["error"])
        elif kind == "string_pattern_mismatch" and ctx.get("pattern") == NAME_PATTERN:
            message = (
                f"{_describe(err.get('input'))} is not a usable name: use letters, digits, "
                "'_', '.' and '-' only (it becomes part of file names and run ids)"
            )
        elif kind == "too_short" and "min_length" in ctx:
            n = ctx["min_length"]
            message = (
                f"needs at least {n} item{'s' if n != 1 else ''}, got {ctx.get('actual_length', 0)}"
            )
        elif kind in ("greater_than_equal", "greater_than", "less_than_equal", "less_than"):
            bound = {"greater_than_equal": ">=", "greater_than": ">",
                     "less_than_equal": "<=", "less_than": "<"}[kind]  # fmt: skip
            limit = next(iter(ctx.values()), "?")
            message = f"must be {bound} {limit}, got {_describe(err.get('input'))}"
        elif kind in _FRIENDLY:
            message = f"{_FRIENDLY[kind]}, got {_describe(err.get('input'))}"
        else:
            message = str(err["msg"])
            if kind.endswith(("_type", "_parsing")) or kind in ("literal_error", "enum"):
                written = smap.texts.get(loc)
                if written is not None:
                    message += f", got {written} (YAML reads it as a boolean: quote it)"
                else:
                    message += f", got {_describe(err.get('input'))}"
        problems.append(smap.problem(loc, message, key=is_key))
    return problems


def _sorted(problems: list[Problem]) -> list[Problem]:
    unique = sorted(dict.fromkeys(problems), key=lambda p: (p.line, p.col, p.path, p.message))
    if len(unique) <= MAX_PROBLEMS:
        return unique
    last = unique[MAX_PROBLEMS - 1]
    more = f"too many problems: only the first {MAX_PROBLEMS} are shown"
    return [*unique[:MAX_PROBLEMS], Problem(last.file, last.line, last.col, "<root>", more)]


# ---------------------------------------------------------------------------------------
# Public loaders


def _validate(
    raw: bytes, display: str, model: type[BaseModel], kinds: list[str]
) -> tuple[BaseModel | None, Any, SourceMap, list[Problem]]:
    data, smap, problems = _parse(raw, display)
    if data is None:
        return None, None, smap, problems
    try:
        spec = model.model_validate(data)
    except ValidationError as exc:
        return None, data, smap, _problems_from(exc, model, data, smap, kinds)
    return spec, data, smap, []


@functools.lru_cache(maxsize=64)
def _item_adapter(model: type[BaseModel], name: str) -> TypeAdapter[Any]:
    info = model.model_fields[name]
    return TypeAdapter(typing.get_args(info.annotation)[0])


def _valid_items(data: dict[str, Any], model: type[BaseModel], name: str) -> list[tuple[int, Any]]:
    """The items of list field ``name`` that validate on their own, with their index."""
    raw = data.get(name)
    if not isinstance(raw, list):
        return []
    adapter = _item_adapter(model, name)
    valid = []
    for i, item in enumerate(raw):
        try:
            valid.append((i, adapter.validate_python(item)))
        except ValidationError:
            continue  # already reported by the whole-model validation
    return valid


def _target_display(drill_display: str, value: str) -> str:
    return os.path.normpath(os.path.join(os.path.dirname(drill_display), value))


def _load_target(raw: bytes, path: Path, display: str) -> tuple[LoadedTarget | None, list[Problem]]:
    spec, data, smap, problems = _validate(raw, display, _Target, [])
    if spec is None:
        if isinstance(data, dict):
            # The probes that are valid still get their checks: every problem at once.
            services = data.get("services")
            known = sorted(services) if isinstance(services, dict) else None
            problems += validate.check_probes(_valid_items(data, _Target, "probes"), known, smap)
        return None, _sorted(problems)
    assert isinstance(spec, TargetSpec)
    checked = validate.check_target(spec, smap)
    errors = [p for p in checked if p.severity == "error"]
    warnings = [p for p in checked if p.severity != "error"]
    if errors:
        return None, _sorted(checked)
    digest = hashlib.sha256(raw).hexdigest()
    return LoadedTarget(spec, path, digest, display, _sorted(warnings)), []


def load_target(path: str | Path) -> LoadedTarget:
    """Load and validate a ``kind: Target`` file.

    Raises:
        InvalidInput: with every problem found, each located in the file.
    """
    display = str(path)
    raw, problems = _read(Path(path), display)
    if problems:
        raise InvalidInput(problems=problems)
    loaded, problems = _load_target(raw, Path(path).resolve(), display)
    if loaded is None:
        raise InvalidInput(problems=problems)
    return loaded


def _load_drill(
    raw: bytes, path: Path, display: str, registry: FaultRegistry
) -> tuple[LoadedDrill | None, list[Problem]]:
    model = drill_model(registry)
    spec, data, smap, problems = _validate(raw, display, model, registry.kinds)
    target: LoadedTarget | None = None
    target_problems: list[Problem] = []
    target_ref = data.get("target") if isinstance(data, dict) else None
    if isinstance(target_ref, str):
        target_path = path.parent / target_ref
        target_display = _target_display(display, target_ref)
        if not target_ref.strip():
            problems.append(smap.problem(("target",), "target must name the target file"))
        elif not target_path.exists():
            problems.append(smap.problem(("target",), f"target file {target_ref!r} not found"))
        elif not target_path.is_file():
            problems.append(smap.problem(("target",), f"target {target_ref!r} is not a file"))
        else:
            traw, target_problems = _read(target_path, target_display)
            if not target_problems:
                target, target_problems = _load_target(traw, target_path.resolve(), target_display)
    target_spec = target.spec if target else None
    if spec is not None:
        assert isinstance(spec, DrillSpec)
        problems += validate.check_drill(spec, target_spec, smap, drill_dir=path.parent)
    elif isinstance(data, dict):
        # The items that are valid still get their checks: every problem at once.
        parts = validate.DrillParts(
            _valid_items(data, model, "slos"),
            _valid_items(data, model, "faults"),
            _valid_items(data, model, "manual"),
            _valid_items(data, model, "abort_when"),
        )
        problems += validate.check_drill_parts(parts, target_spec, smap)
    errors = [p for p in problems + target_problems if p.severity == "error"]
    if errors or spec is None or target is None:
        return None, _sorted(problems) + target_problems
    assert isinstance(spec, DrillSpec)
    warnings = _sorted(problems)
    digest = hashlib.sha256(raw).hexdigest()
    return LoadedDrill(spec, path, digest, target, warnings, display), []


def _registry(registry: FaultRegistry | None) -> FaultRegistry:
    if registry is not None:
        return registry
    from resildrill.plugins import FaultRegistry

    return FaultRegistry.discover()


def load_drill(path: str | Path, registry: FaultRegistry | None = None) -> LoadedDrill:
    """Load and validate a ``kind: Drill`` file and the target file it names.

    Args:
        path: the drill file; problems name it as given (relative stays relative).
        registry: the fault kinds the drill may use; discovered from entry points if None.

    Raises:
        InvalidInput: with every problem found in the drill and its target, each located.
    """
    display = str(path)
    raw, problems = _read(Path(path), display)
    if problems:
        raise InvalidInput(problems=problems)
    loaded, problems = _load_drill(raw, Path(path).resolve(), display, _registry(registry))
    if loaded is None:
        raise InvalidInput(problems=problems)
    return loaded


def load_document(
    path: str | Path, registry: FaultRegistry | None = None
) -> LoadedDrill | LoadedTarget:
    """Load a drill or a target file, whichever its ``kind`` says it is.

    Raises:
        InvalidInput: with every problem found, each located.
    """
    display = str(path)
    raw, problems = _read(Path(path), display)
    if problems:
        raise InvalidInput(problems=problems)
    data, smap, problems = _parse(raw, display)
    if data is None:
        raise InvalidInput(problems=problems)
    kind = data.get("kind")
    if kind == "Target":
        loaded_target, problems = _load_target(raw, Path(path).resolve(), display)
        if loaded_target is None:
            raise InvalidInput(problems=problems)
        return loaded_target
    if kind == "Drill":
        loaded, problems = _load_drill(raw, Path(path).resolve(), display, _registry(registry))
        if loaded is None:
            raise InvalidInput(problems=problems)
        return loaded
    if "kind" not in data:
        message = "missing required key 'kind' ('Drill' or 'Target')"
        raise InvalidInput(problems=[Problem(display, *smap.position(()), "kind", message)])
    message = f"kind must be 'Drill' or 'Target', got {_describe(kind)}"
    raise InvalidInput(problems=[smap.problem(("kind",), message)])
