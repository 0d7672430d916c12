"""One generated world written twice, as SPEC's files and with the demo feeds
(conf/feeds.yaml: two sensors as pcap and pcapng captures, a zone's sensors as a vendor
CSV in Berlin wall-clock time): both backfills give identical silver and gold.

The days cover Berlin's change to summer time (2016-03-27): a wall-clock export has no
time in the skipped hour, and every record keeps its instant."""

from __future__ import annotations

import datetime as dt
import shutil

import pytest
from chispa import assert_df_equality

from jobs import run
from jobs.config import load_config
from jobs.feeds import load_feeds
from jobs.spec import GROUP_DATETIME, SESSIONS
from jobs.tables import Lakehouse
from tests.helpers import ROOT, generated_world

START, DAYS = dt.date(2016, 3, 25), 4
END = START + dt.timedelta(days=DAYS - 1)
NOW = dt.datetime(2016, 4, 20, tzinfo=dt.timezone.utc)

pytestmark = pytest.mark.heavy  # two backfills of a generated world: minutes


def test_the_same_world_through_feeds_gives_the_same_gold(spark, tmp_path):
    feeds = load_feeds(ROOT / "conf")
    lakes, summaries = {}, {}
    for name, options in (("spec", {}), ("feeds", {"feeds": feeds})):
        root = generated_world(tmp_path / name, start=START, days=DAYS, devices=25, seed=11, **options)
        if options:
            shutil.copy(ROOT / "conf" / "feeds.yaml", root / "conf" / "feeds.yaml")
        cfg = load_config(root / "conf").with_storage(str(root / "landing"), str(root / "lake"))
        summaries[name] = run.backfill(spark, cfg, START, END, now=NOW)
        lakes[name] = Lakehouse(spark, cfg.storage.lakehouse)
    s = summaries["feeds"]
    # The feeds world holds captures and exports, and nothing was left unread.
    assert s.frames_probes > 0 and s.frames_other > 0 and not s.files_skipped
    assert s.frames_unusable == 0
    assert s.records_valid == summaries["spec"].records_valid
    assert s.rejected == summaries["spec"].rejected
    for table in (SESSIONS, GROUP_DATETIME):
        spec, feed = (lakes[n].read(table) for n in ("spec", "feeds"))
        assert spec.count() > 0
        # source_file and line_no of bronze differ by design; no later table holds them.
        assert_df_equality(spec, feed, ignore_row_order=True, ignore_column_order=True)
