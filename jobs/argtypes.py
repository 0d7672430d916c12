"""argparse value types shared by the command lines (``python -m jobs``, ``python -m reports``)."""

from __future__ import annotations

import argparse
import datetime as dt


def date_arg(text: str) -> dt.date:
    """A local date ``YYYY-MM-DD``."""
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date YYYY-MM-DD, got {text!r}") from None


def mall_ids_arg(text: str) -> list[int]:
    """Comma-separated mall ids, e.g. ``215,1290``."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected mall ids like 215,1290, got {text!r}") from None
