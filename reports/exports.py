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
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import yaml

from jobs.config import Config, ConfigError, Obj
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

@dataclass(frozen=True)
class Export:
    """One export of exports.yaml, checked."""

    name: str
    objects: tuple[int, ...]
    interval: str
    range: str
    comeback: str
    bounce_threshold: str
    engagement_threshold: str
    formats: tuple[str, ...]
    output: str
    metric: str = "count_client"
    when: str = "daily"
    title: str | None = None

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


def _resolve(path: str, base: Path) -> str:
    if "://" in path or os.path.isabs(path):
        return path
    return os.path.normpath(base / path)


def load_exports(path: Path, cfg: Config) -> tuple[Export, ...]:
    """Read and check exports.yaml (a missing file: no exports). Relative output folders
    are resolved against the folder that holds ``conf/``, as in storage.yaml."""
    if not path.exists():
        return ()
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping with 'exports'")
    base = Path(cfg.conf_dir).parent
    default_output = raw.get("output", DEFAULT_OUTPUT)
    entries = raw.get("exports") or []
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'exports' must be a list")
    out, names = [], set()
    for i, e in enumerate(entries):
        where = f"{path}: exports[{i}]"
        if not isinstance(e, dict):
            raise ConfigError(f"{where}: expected a mapping")
        name = e.get("name")
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise ConfigError(f"{where}: name must be 1-64 letters, digits, '.', '_' or '-' "
                              f"(it names the files); got {name!r}")
        where = f"{where} ({name})"
        if name in names:
            raise ConfigError(f"{where}: the name is used twice")
        names.add(name)
        known = {"name", "title", "objects", "interval", "range", "metric", "formats", "output",
                 "when", "comeback", "bounce_threshold", "engagement_threshold"}
        extra = sorted(set(e) - known)
        if extra:
            raise ConfigError(f"{where}: unknown key {extra[0]!r}; the keys are {', '.join(sorted(known))}")
        objects = e.get("objects")
        if isinstance(objects, int) and not isinstance(objects, bool):
            objects = [objects]
        if (not isinstance(objects, list) or not objects
                or any(isinstance(x, bool) or not isinstance(x, int) for x in objects)):
            raise ConfigError(f"{where}: objects must be a list of object ids")
        formats = e.get("formats", list(FORMATS))
        if isinstance(formats, str):
            formats = [formats]
        if not isinstance(formats, list) or not formats or any(f not in FORMATS for f in formats):
            raise ConfigError(f"{where}: formats must be a list of {', '.join(FORMATS)}; got {formats!r}")
        output = e.get("output", default_output)
        if not isinstance(output, str) or not output:
            raise ConfigError(f"{where}: output must be a folder or URI")
        metric = e.get("metric", "count_client")
        if metric not in METRICS:
            raise ConfigError(f"{where}: metric must be one of {', '.join(METRICS)}; got {metric!r}")
        when = e.get("when", "daily")
        if when not in WHEN:
            raise ConfigError(f"{where}: when must be one of {', '.join(WHEN)}; got {when!r}")
        rng = e.get("range")
        if not isinstance(rng, str):
            raise ConfigError(f"{where}: range is required, e.g. 'last 7 days' or 'previous month'")
        try:
            resolve_range(rng, dt.date(2016, 2, 29))
        except ValueError as exc:
            raise ConfigError(f"{where}: range: {exc}") from None
        title = e.get("title")
        exp = Export(name=name, objects=tuple(dict.fromkeys(objects)), interval=str(e.get("interval")),
                     range=rng, comeback=str(e.get("comeback", "2 week")),
                     bounce_threshold=str(e.get("bounce_threshold", "5 minute")),
                     engagement_threshold=str(e.get("engagement_threshold", "20 minute")),
                     formats=tuple(dict.fromkeys(formats)), output=_resolve(output, base),
                     metric=metric, when=when, title=None if title is None else str(title))
        # The report's own checks (allowed values, object types, thresholds), with the
        # export's wording: an export that cannot run should fail when it is configured.
        try:
            req = exp.request(dt.date(2016, 2, 29))
            resolve_objects(cfg, req)
        except ReportError as exc:
            key = exc.parameter if exc.parameter not in ("from", "to") else "range"
            raise ConfigError(f"{where}: {exc.message(key)}") from None
        out.append(exp)
    return tuple(out)


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
    gold = gold or Gold(cfg.storage.lakehouse, refresh_seconds=0)
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
