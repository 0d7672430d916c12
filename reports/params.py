"""The report's parameters (SPEC §10): parsing, validation and the errors they raise.

Shared by the API, the command line and the exports, so that the three accept the same
values and refuse the others with the same error codes and messages. No Spark here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Mapping, Sequence

from jobs.config import Config, Obj
from jobs.spec import COMEBACK_COLUMNS, INTERVALS, REPORT_DEFAULTS, THRESHOLDS

#: Query parameters in the order the original page lists them (also the order in
#: which they are checked, so a request with two bad values names the first one).
PARAMETERS = ("from", "to", "objects", "interval", "comeback", "bounce_threshold",
              "engagement_threshold")
REQUIRED = ("from", "to", "objects", "interval")
THRESHOLD_VALUES = tuple(f"{m} minute" for m in THRESHOLDS)

#: Limits SPEC leaves open (docs/decisions.md, "Report API").
MAX_OBJECTS = 100
MAX_OBJECT_BUCKETS = 50_000
MIN_DATE, MAX_DATE = dt.date(1970, 1, 1), dt.date(9998, 12, 31)

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_IDS = re.compile(r"\d{1,18}(,\d{1,18})*")


class ReportError(Exception):
    """A request the report cannot answer: HTTP ``status``, a stable ``code``, the
    ``parameter`` at fault (None when it is not about one) and a ``detail`` text."""

    def __init__(self, status: int, code: str, parameter: str | None, detail: str):
        super().__init__(detail)
        self.status, self.code, self.parameter, self.detail = status, code, parameter, detail

    def message(self, name: str | None = None) -> str:
        """The detail prefixed with the parameter, under ``name`` if given (the CLI
        says ``--bounce-threshold`` where the API says ``bounce_threshold``)."""
        label = name or self.parameter
        return f"{label}: {self.detail}" if label else self.detail


def bad(parameter: str, detail: str, code: str = "invalid_parameter") -> ReportError:
    return ReportError(400, code, parameter, detail)


@dataclass(frozen=True)
class ReportRequest:
    """A valid request: object ids (request order, no repeats), interval, local date
    range (both included), comeback window and thresholds in minutes."""

    objects: tuple[int, ...]
    interval: str
    start: dt.date
    end: dt.date
    comeback: str = REPORT_DEFAULTS["comeback"]
    bounce: int = int(REPORT_DEFAULTS["bounce_threshold"].split()[0])
    engagement: int = int(REPORT_DEFAULTS["engagement_threshold"].split()[0])

    @property
    def comeback_column(self) -> str:
        return COMEBACK_COLUMNS[self.comeback]


def _one_of(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise bad(name, f"expected one of {', '.join(repr(a) for a in allowed)}; got {value!r}")
    return value


def _date(name: str, value: str) -> dt.date:
    # date.fromisoformat alone would also take 20160201 or 2016-W05-1 on Python 3.11.
    try:
        if not _DATE.fullmatch(value):
            raise ValueError
        d = dt.date.fromisoformat(value)
    except ValueError:
        raise bad(name, f"expected a local date YYYY-MM-DD; got {value!r}") from None
    if not MIN_DATE <= d <= MAX_DATE:
        raise bad(name, f"must be between {MIN_DATE} and {MAX_DATE}; got {value}")
    return d


def _objects(value: str) -> tuple[int, ...]:
    if not _IDS.fullmatch(value):
        raise bad("objects", f"expected comma-separated object ids such as 215,1290; got {value!r}")
    ids = tuple(dict.fromkeys(int(x) for x in value.split(",")))  # repeats add nothing: keep the first
    if len(ids) > MAX_OBJECTS:
        raise bad("objects", f"at most {MAX_OBJECTS} objects per request; got {len(ids)}")
    return ids


def _minutes(name: str, value: str) -> int:
    return int(_one_of(name, value, THRESHOLD_VALUES).split()[0])


def parse(query: Mapping[str, Sequence[str]]) -> ReportRequest:
    """Check the parameters' names and values (not the objects' existence).

    :param query: each parameter name with every value it was given (a query string
        may repeat a name; that is refused, as is any name SPEC does not define).
    """
    for name, values in query.items():
        if name not in PARAMETERS:
            raise bad(name, f"unknown parameter; the parameters are {', '.join(PARAMETERS)}",
                      "unknown_parameter")
        if len(values) > 1:
            raise bad(name, "given more than once")
    raw = {name: values[0] for name, values in query.items()}
    for name in PARAMETERS:
        if name not in raw:
            if name in REQUIRED:
                raise bad(name, "missing (required)", "missing_parameter")
            raw[name] = REPORT_DEFAULTS[name]
    start, end = _date("from", raw["from"]), _date("to", raw["to"])
    objects = _objects(raw["objects"])
    interval = _one_of("interval", raw["interval"], INTERVALS)
    comeback = _one_of("comeback", raw["comeback"], tuple(COMEBACK_COLUMNS))
    bounce = _minutes("bounce_threshold", raw["bounce_threshold"])
    engagement = _minutes("engagement_threshold", raw["engagement_threshold"])
    if start > end:
        raise bad("from", f"{start} is after to ({end})", "invalid_range")
    if engagement < bounce:
        raise bad("engagement_threshold", f"{engagement} minute is less than bounce_threshold "
                  f"({bounce} minute)", "invalid_thresholds")
    return ReportRequest(objects, interval, start, end, comeback, bounce, engagement)


def resolve_objects(cfg: Config, request: ReportRequest) -> list[Obj]:
    """The requested objects from the config, in request order: 400 for an unknown id
    or for objects of more than one type (mall / floor / zone)."""
    by_id = {o.id: o for o in cfg.objects}
    unknown = [i for i in request.objects if i not in by_id]
    if unknown:
        raise bad("objects", f"unknown object {unknown[0]}" + (
            f" (and {len(unknown) - 1} more)" if len(unknown) > 1 else ""), "unknown_object")
    objs = [by_id[i] for i in request.objects]
    types = dict.fromkeys(o.type for o in objs)
    if len(types) > 1:
        first = {t: next(o.id for o in objs if o.type == t) for t in types}
        raise bad("objects", "objects must all be of one type (only malls, only floors or only "
                  "zones); got " + ", ".join(f"{t} {i}" for t, i in first.items()),
                  "mixed_object_types")
    return objs
