"""Scheduled exports: ``conf/exports.yaml`` → CSV, JSON and PNG files, one set per run date.

``python -m reports export --date D`` (the ``footfall_exports`` DAG runs it after each
nightly gold update) writes every export that is due on D to
``<output>/<name>/<name>_<D>.<format>``: a rerun for D overwrites that day's files and
nothing else. CSV and JSON are exactly what the CLI and the API answer; PNG is a chart
of one metric per user type over the range, for people.
"""

from __future__ import annotations

import calendar
import datetime as dt
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Callable, ClassVar

from pydantic import BeforeValidator, Field, ValidationInfo, field_validator, model_validator

from jobs.config import Config, ConfigError, Obj
from jobs.configfile import (ConfigModel, Int, Location, NullAsEmptyList, OptionalText, ScalarText,
                             load_model, resolve_path)
from jobs.spec import REPORT_DEFAULTS
from reports.files import write_atomically
from reports.params import ReportError, ReportRequest, parse, resolve_objects
from reports.query import METRICS, Gold, Report, report

EXPORTS_FILE = "exports.yaml"
FORMATS = ("csv", "json", "png")
WHEN = ("daily", "weekly", "monthly")
DEFAULT_OUTPUT = "data/exports"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_DAY = dt.timedelta(days=1)

#: Chart labels a mall manager reads, per metric and per user type.
METRIC_LABELS = {
    "count_session": "Sessions",
    "count_client": "Clients (unique devices)",
    "avg_session_duration": "Average session duration, minutes",
    "count_comeback_client": "Returning clients",
    "sum_session_duration": "Gross shopping hours",
}
TYPE_STYLES = {  # label, colour, width, dashes
    "all": ("All", "black", 2.4, "-"),
    "visitor": ("Visitors", "tab:blue", 1.8, "-"),
    "passer": ("Passers-by", "tab:gray", 1.6, "-"),
    "employee": ("Employees", "tab:purple", 1.6, "-"),
    "engaged": ("Engaged visitors", "tab:green", 1.4, "--"),
    "half engaged": ("Half-engaged visitors", "tab:olive", 1.4, "--"),
    "bounced": ("Bounced visitors", "tab:red", 1.4, "--"),
}
#: Chart size: 12 in wide, a header plus 3.6 in per object, at 100 dpi.
CHART_DPI, CHART_WIDTH, CHART_HEADER, CHART_PER_OBJECT = 100, 12.0, 1.4, 3.6


def chart_size(n_objects: int) -> tuple[int, int]:
    """The PNG's size in pixels for a chart of ``n_objects`` objects."""
    return (round(CHART_WIDTH * CHART_DPI),
            round((CHART_HEADER + CHART_PER_OBJECT * max(n_objects, 1)) * CHART_DPI))


# ---------------------------------------------------------------------------- relative ranges

_RANGE = re.compile(r"(last (?P<n>[1-9]\d{0,3}) (?P<unit>day|week|month)s?|previous (?P<prev>week|month)"
                    r"|(?P<todate>week|month|year) to date)")


def resolve_range(text: str, date: dt.date) -> tuple[dt.date, dt.date]:
    """The local dates [from, to] that a relative range means on run date ``date`` (the
    last local date the nightly run completed):

    ``last N days`` — the N days ending on ``date``; ``last N weeks`` / ``previous week``
    — the N whole ISO weeks ending on the latest Sunday ≤ ``date``; ``last N months`` /
    ``previous month`` — the N whole months ending on the latest month end ≤ ``date``;
    ``week|month|year to date`` — from that period's first day to ``date``.
    """
    m = _RANGE.fullmatch(text.strip())
    if not m:
        raise ValueError(f"expected 'last N days|weeks|months', 'previous week|month' or "
                         f"'week|month|year to date'; got {text!r}")
    if m["todate"]:
        first = {"week": date - _DAY * date.weekday(), "month": date.replace(day=1),
                 "year": date.replace(month=1, day=1)}[m["todate"]]
        return first, date
    n, unit = (int(m["n"]), m["unit"]) if m["n"] else (1, m["prev"])
    if unit == "day":
        return date - _DAY * (n - 1), date
    if unit == "week":
        end = date - _DAY * ((date.weekday() + 1) % 7)  # the latest Sunday, `date` itself if one
        return end - _DAY * (7 * n - 1), end
    end = date if date.day == calendar.monthrange(date.year, date.month)[1] else date.replace(day=1) - _DAY
    y, mo = end.year, end.month - (n - 1)
    while mo < 1:
        y, mo = y - 1, mo + 12
    return dt.date(y, mo, 1), end


def is_due(when: str, date: dt.date) -> bool:
    """``daily``: every run; ``weekly``: when ``date`` is a Sunday (a week is complete);
    ``monthly``: when ``date`` is the last day of its month."""
    if when == "weekly":
        return date.weekday() == 6
    if when == "monthly":
        return date.day == calendar.monthrange(date.year, date.month)[1]
    return True


# ---------------------------------------------------------------------------- exports.yaml

def _as_list(v: Any) -> Any:
    return [v] if isinstance(v, (int, str)) else v  # `objects: 215`, `formats: csv`


#: A day on which every range and its report can be checked: a leap day, a month end.
_CHECK_DATE = dt.date(2016, 2, 29)


class Export(ConfigModel):
    """One export of exports.yaml, checked; with a Config in the validation context, its
    report too (object ids, one object type), as an export that cannot run should fail
    when it is configured. ``output`` None: the file's top-level ``output``."""

    entry_label: ClassVar[str] = "name"

    name: str
    title: OptionalText = None
    objects: Annotated[tuple[Int, ...], BeforeValidator(_as_list), Field(min_length=1)]
    interval: ScalarText
    range: str
    comeback: ScalarText = REPORT_DEFAULTS["comeback"]
    bounce_threshold: ScalarText = REPORT_DEFAULTS["bounce_threshold"]
    engagement_threshold: ScalarText = REPORT_DEFAULTS["engagement_threshold"]
    formats: Annotated[tuple[str, ...], BeforeValidator(_as_list)] = FORMATS
    output: Location | None = None
    metric: str = "count_client"
    when: str = "daily"

    @field_validator("objects", "formats")
    @classmethod
    def _once(cls, v: tuple) -> tuple:
        return tuple(dict.fromkeys(v))  # a repeat adds nothing: keep the first

    @field_validator("range")
    @classmethod
    def _range(cls, v: str) -> str:
        resolve_range(v, _CHECK_DATE)  # ValueError: names what is wrong
        return v

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "Export":
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"name must be 1-64 letters, digits, '.', '_' or '-' (it names the "
                             f"files); got {self.name!r}")
        if not self.formats or any(f not in FORMATS for f in self.formats):
            raise ValueError(f"formats must be a list of {', '.join(FORMATS)}; got {list(self.formats)!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {', '.join(METRICS)}; got {self.metric!r}")
        if self.when not in WHEN:
            raise ValueError(f"when must be one of {', '.join(WHEN)}; got {self.when!r}")
        # The report's own checks (allowed values, object types, thresholds), with the
        # export's wording.
        try:
            req = self.request(_CHECK_DATE)
            cfg = (info.context or {}).get("cfg")
            if cfg is not None:
                resolve_objects(cfg, req)
        except ReportError as exc:
            raise ValueError(exc.message(exc.parameter if exc.parameter not in ("from", "to")
                                         else "range")) from None
        return self

    def request(self, date: dt.date) -> ReportRequest:
        """The report request this export makes on run date ``date``."""
        start, end = resolve_range(self.range, date)
        return parse({"from": [start.isoformat()], "to": [end.isoformat()],
                      "objects": [",".join(str(i) for i in self.objects)], "interval": [self.interval],
                      "comeback": [self.comeback], "bounce_threshold": [self.bounce_threshold],
                      "engagement_threshold": [self.engagement_threshold]})

    def path(self, date: dt.date, fmt: str) -> str:
        """Where this export's ``fmt`` file for run date ``date`` goes."""
        return f"{self.output.rstrip('/')}/{self.name}/{self.name}_{date.isoformat()}.{fmt}"


class ExportsFile(ConfigModel):
    """exports.yaml: the default output folder and the exports; names are unique."""

    output: Location = DEFAULT_OUTPUT
    exports: Annotated[tuple[Export, ...], NullAsEmptyList] = ()

    @model_validator(mode="after")
    def _unique(self) -> "ExportsFile":
        names = set()
        for i, e in enumerate(self.exports):
            if e.name in names:
                raise ValueError(f"exports[{i}] ({e.name}): the name is used twice")
            names.add(e.name)
        return self


def load_exports(path: Path, cfg: Config) -> tuple[Export, ...]:
    """Read and check exports.yaml (a missing file: no exports). Relative output folders
    are resolved against the folder that holds ``conf/``, as in storage.yaml."""
    f = load_model(path, ExportsFile, context={"cfg": cfg})
    base = Path(cfg.conf_dir).parent
    return tuple(e.model_copy(update={"output": resolve_path(e.output or f.output, base)})
                 for e in f.exports)


# ---------------------------------------------------------------------------- writing

def _write(target: str, data: bytes) -> None:
    """Write ``data`` to a local path (atomically: a reader never sees half a file) or
    to a URI through fsspec (object stores need their fsspec package, e.g. s3fs)."""
    if "://" in target and not target.startswith("file://"):
        import fsspec
        with fsspec.open(target, "wb") as f:
            f.write(data)
        return
    write_atomically(Path(target.removeprefix("file://")), data)


def render_png(rep: Report, objects: list[Obj], cfg: Config, request: ReportRequest, metric: str,
               title: str) -> bytes:
    """A chart of ``metric`` per user type over the report's buckets: one panel per
    object, local dates on the x axis, a legend, for a mall manager."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    width, height = chart_size(len(objects))
    fig = Figure(figsize=(width / CHART_DPI, height / CHART_DPI), dpi=CHART_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    zones = sorted({cfg.mall(o.mall_id).timezone for o in objects})
    fig.suptitle(f"{title}\n{METRIC_LABELS[metric]} per user type, {request.interval} buckets, "
                 f"{request.start:%d %b %Y} – {request.end:%d %b %Y} (local time, {', '.join(zones)})",
                 fontsize=13)
    axes = fig.subplots(len(objects), 1, squeeze=False)[:, 0]
    frame = rep.frame
    for ax, obj in zip(axes, objects):
        rows = frame.filter(frame["object_id"] == str(obj.id))
        mall = cfg.mall(obj.mall_id)
        where = obj.name if obj.type == "mall" else f"{obj.name}, {mall.name}"
        ax.set_title(f"{where} ({obj.type} {obj.id})", loc="left", fontsize=11)
        if rows.height == 0:
            ax.text(0.5, 0.5, "no buckets in this range", ha="center", va="center", transform=ax.transAxes)
        for t in ("all", "visitor", "passer", "employee", "engaged", "half engaged", "bounced"):
            part = rows.filter(rows["user_type"] == t)
            if part.height == 0:
                continue
            # The label's wall clock: local time, as the manager lives it.
            x = [dt.datetime.fromisoformat(s[:19]) for s in part["datetime"].to_list()]
            label, colour, lw, dashes = TYPE_STYLES[t]
            ax.plot(x, part[metric].to_list(), dashes, color=colour, linewidth=lw, label=label,
                    marker="o" if len(x) <= 31 else None, markersize=3.5)
        locator = AutoDateLocator(minticks=4, maxticks=12)
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
        ax.yaxis.set_major_locator(MaxNLocator(integer=metric != "sum_session_duration"))
        ax.set_ylabel(METRIC_LABELS[metric])
        ax.set_xlabel("Local time" if request.interval == "hourly" else "Local date")
        ax.set_ylim(bottom=0)
        ax.grid(True, alpha=0.3)
        if rows.height:
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=CHART_DPI)
    return buf.getvalue()


@dataclass
class Outcome:
    """What one export did on one run date."""

    name: str
    files: list[str]
    skipped: str | None = None
    error: str | None = None


def run(cfg: Config, date: dt.date, gold: Gold | None = None, names: list[str] | None = None,
        say: Callable[[str], None] = print) -> list[Outcome]:
    """Write every export of ``cfg``'s exports.yaml that is due on ``date`` (or only
    ``names``). One export's failure does not stop the others; it is in its Outcome."""
    exports = load_exports(Path(cfg.conf_dir) / EXPORTS_FILE, cfg)
    if names:
        unknown = sorted(set(names) - {e.name for e in exports})
        if unknown:
            raise ConfigError(f"--name: no export named {unknown[0]!r} in {cfg.conf_dir}/{EXPORTS_FILE}")
        exports = tuple(e for e in exports if e.name in names)
    gold = gold or Gold(cfg.storage.lakehouse, refresh_seconds=0,
                   storage_options=cfg.storage.delta_rs_options)
    outcomes = []
    for e in exports:
        if not is_due(e.when, date):
            outcomes.append(Outcome(e.name, [], skipped=f"when: {e.when}, not due on {date}"))
            say(f"{e.name}: skipped ({outcomes[-1].skipped})")
            continue
        try:
            req = e.request(date)
            objs = resolve_objects(cfg, req)
            rep = report(gold, cfg, objs, req)
            files = []
            for fmt in e.formats:
                if fmt == "csv":
                    data = rep.csv_text().encode()
                elif fmt == "json":
                    data = rep.json_bytes()
                else:
                    data = render_png(rep, objs, cfg, req, e.metric, e.title or e.name)
                target = e.path(date, fmt)
                _write(target, data)
                files.append(target)
            outcomes.append(Outcome(e.name, files))
            say(f"{e.name}: {req.start} – {req.end}, {req.interval}: " + ", ".join(files))
        except (ReportError, OSError) as exc:
            text = exc.message() if isinstance(exc, ReportError) else f"cannot write: {exc}"
            outcomes.append(Outcome(e.name, [], error=text))
            say(f"{e.name}: FAILED: {text}")
    return outcomes
