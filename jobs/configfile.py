"""One YAML config file → one validated, immutable pydantic model (``conf/*.yaml``).

:func:`load_model` is the only reader of the six config files: it turns every problem
(not YAML, a top level that is not a mapping, an unknown key, a wrong type, a failed
check) into a :class:`ConfigError` that names the file and the key path in YAML terms,
e.g. ``conf/objects.yaml: malls[0].floors[1].zones[0].sensors[2].id: …``. The field
types and checks several files share are here too. No Spark, no Airflow.
"""

from __future__ import annotations

import datetime as dt
import os
import types
import typing
from pathlib import Path
from typing import Annotated, Any, ClassVar, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Strict, ValidationError


class ConfigError(ValueError):
    """A config file or setting is wrong; the message names which."""


class ConfigModel(BaseModel):
    """Base of every config file's models: an unknown key is an error (a typo must not
    fall back silently to a default), and a loaded config cannot change."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A key whose value names a list entry in error messages: ``exports[0] (daily): …``.
    entry_label: ClassVar[str | None] = None


M = TypeVar("M", bound=BaseModel)


# ---------------------------------------------------------------------------- field types

#: In ``Annotated[…]`` of a list or a section: a key written bare (``floors:``, YAML
#: null) is the same as an empty one.
NullAsEmptyList = BeforeValidator(lambda v: [] if v is None else v)
NullAsEmptyMapping = BeforeValidator(lambda v: {} if v is None else v)


def _no_bool(v: Any) -> Any:
    if isinstance(v, bool):  # YAML's true is no number, though Python's bool is an int
        raise ValueError(f"expected a number, got {v!r}")
    return v


def _scalar_text(v: Any) -> Any:
    if v is None or isinstance(v, str):
        return v
    if isinstance(v, (int, float, dt.date)) and not isinstance(v, bool):
        return str(v)  # YAML reads `note: 2016` as a number; it is meant as text
    raise ValueError(f"expected text, got {v!r}")


def _spark_value(v: Any) -> Any:
    if isinstance(v, bool):
        return str(v).lower()  # Spark spells its booleans true / false
    if isinstance(v, (str, int, float)):
        return str(v)
    raise ValueError(f"expected text, a number or true/false, got {v!r}")


def _time_zone(v: str) -> str:
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r}") from None
    return v


def _location(v: str) -> str:
    if not v:
        raise ValueError("expected a path or URI, got ''")
    return v


def between(lo: float, hi: float, unit: str = "") -> AfterValidator:
    """A check that a number lies in [lo, hi]."""
    def check(v):
        if not lo <= v <= hi:
            raise ValueError(f"{v} is out of range [{lo}, {hi}]{' ' + unit if unit else ''}")
        return v
    return AfterValidator(check)


def at_least(lo: float) -> AfterValidator:
    """A check that a number is ``lo`` or more."""
    def check(v):
        if v < lo:
            raise ValueError(f"must be >= {lo}, got {v}")
        return v
    return AfterValidator(check)


#: An integer that must be written as one (not "12", not 12.0, not true).
Int = Annotated[int, Strict()]
#: A number written as one (an integer is taken; text and true/false are not).
Number = Annotated[float, Strict()]
#: Numbers as airflow.yaml has always taken them: "0.5" is 0.5, but true is no number.
LaxInt = Annotated[int, BeforeValidator(_no_bool)]
LaxNumber = Annotated[float, BeforeValidator(_no_bool)]
Bool = Annotated[bool, Strict()]
#: Free text (a note, a title): a number or date YAML read is taken as its text.
ScalarText = Annotated[str, BeforeValidator(_scalar_text)]
OptionalText = Annotated[str | None, BeforeValidator(_scalar_text)]
TimeZone = Annotated[str, AfterValidator(_time_zone)]
#: A local path or a URI (s3a://, abfss://, …); see :func:`resolve_path`.
Location = Annotated[str, AfterValidator(_location)]
#: A Spark setting's value, as the text Spark takes.
SparkValue = Annotated[str, BeforeValidator(_spark_value)]
#: ``spark.conf``: Spark settings by name (null: none).
SparkConf = Annotated[dict[str, SparkValue], NullAsEmptyMapping]


def resolve_path(path: str, base: str | os.PathLike) -> str:
    """A relative local path resolved against ``base`` (the folder holding conf/);
    absolute paths and URIs are kept as they are."""
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(os.path.join(base, path))


# ---------------------------------------------------------------------------- loading

def read_yaml(path: Path, required: bool = False) -> dict:
    """The top-level mapping of a YAML file (an empty file or, unless ``required``, a
    missing one: ``{}``)."""
    if not path.exists():
        if required:
            raise ConfigError(f"{path}: file not found")
        return {}
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (yaml.YAMLError, ValueError) as exc:  # ValueError: a date like 2016-13-01
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return data


def load_model(path: str | os.PathLike, model: type[M], *, required: bool = False,
               context: dict | None = None) -> M:
    """Read the YAML file ``path`` and validate it as ``model``; ``context`` is handed
    to the model's validators (e.g. the loaded Config, for checks against it). Raises
    ConfigError naming the file and, for each problem, the key path."""
    path = Path(path)
    raw = read_yaml(path, required)
    try:
        return model.model_validate(raw, context=context)
    except ValidationError as exc:
        lines = dict.fromkeys(f"{path}: {m}" for m in describe(exc, model, raw))
        raise ConfigError("\n".join(lines)) from None


_EXPECTED = {
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number",
    "bool_type": "true or false", "bool_parsing": "true or false",
    "string_type": "text", "date_type": "a date YYYY-MM-DD", "date_parsing": "a date YYYY-MM-DD",
    "model_type": "a mapping", "model_attributes_type": "a mapping", "dict_type": "a mapping",
    "list_type": "a list", "tuple_type": "a list", "set_type": "a list", "frozen_set_type": "a list",
}


def describe(exc: ValidationError, model: type[BaseModel], raw: Any) -> list[str]:
    """Each error of ``exc`` as ``key path: problem``. A missing, unknown or empty key is
    told at the mapping that holds it (``malls[0]: timezone is required``)."""
    out = []
    for err in exc.errors(include_url=False):
        loc, kind, ctx = tuple(err["loc"]), err["type"], err.get("ctx") or {}
        if kind in ("missing", "extra_forbidden", "too_short") and loc:
            loc, key = loc[:-1], loc[-1]
            if kind == "missing":
                text = f"{key} is required"
            elif kind == "extra_forbidden":
                keys = _keys(_model_at(model, loc))
                text = f"unknown key {key!r}" + (f" (the keys are: {', '.join(keys)})" if keys else "")
            elif ctx.get("min_length") == 1:
                text = f"{key!r} must be a non-empty list"
            else:
                text = f"{key!r} must have at least {ctx.get('min_length')} items"
        elif kind == "value_error":
            text = str(ctx.get("error", err["msg"]))
        elif kind == "literal_error":
            text = f"expected {ctx['expected']}, got {err['input']!r}"
        elif kind in _EXPECTED:
            text = f"expected {_EXPECTED[kind]}, got {err['input']!r}"
        else:
            text = f"{err['msg']}, got {err.get('input')!r}"
        where = _where(model, raw, loc)
        out.append(f"{where}: {text}" if where else text)
    return out


def _unwrap(annotation: Any) -> Any:
    while typing.get_origin(annotation) is Annotated:
        annotation = typing.get_args(annotation)[0]
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):  # X | None: X
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return _unwrap(args[0]) if args else annotation
    return annotation


def _inner(annotation: Any, key: Any) -> Any:
    """The type at ``key`` inside ``annotation`` (a model's field, a list's item, a
    mapping's value), or None when it cannot be told."""
    annotation = _unwrap(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        field = annotation.model_fields.get(key) if isinstance(key, str) else None
        return field.annotation if field else None
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (tuple, list, set, frozenset) and args and isinstance(key, int):
        return args[0]
    if origin is dict and len(args) == 2 and isinstance(key, str):
        return args[1]
    return None


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    annotation: Any = model
    for key in loc:
        annotation = _inner(annotation, key)
    annotation = _unwrap(annotation)
    return annotation if isinstance(annotation, type) and issubclass(annotation, BaseModel) else None


def _keys(model: type[BaseModel] | None) -> list[str]:
    return sorted(f.alias or name for name, f in model.model_fields.items()) if model else []


def _where(model: type[BaseModel], raw: Any, loc: tuple) -> str:
    """``loc`` in YAML terms: ``malls[0].floors[1].name``; a labelled entry adds its
    label and ends the part with a colon: ``exports[0] (daily): range``."""
    text, annotation, data = "", model, raw
    for key in loc:
        annotation = _inner(annotation, key)
        data = _child(data, key)
        if isinstance(key, int):
            text += f"[{key}]"
            entry = _unwrap(annotation)
            label = getattr(entry, "entry_label", None) if isinstance(entry, type) else None
            if label and isinstance(data, dict) and isinstance(data.get(label), str):
                text += f" ({data[label]}): "
        elif str(key).isidentifier():
            text += ("." if text and not text.endswith(": ") else "") + str(key)
        else:  # a Spark setting's name has dots of its own
            text += f"[{str(key)!r}]"
    return text.removesuffix(": ")


def _child(data: Any, key: Any) -> Any:
    if isinstance(data, dict):
        return data.get(key)
    if isinstance(data, list) and isinstance(key, int) and 0 <= key < len(data):
        return data[key]
    return None
