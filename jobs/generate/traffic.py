"""Seeded, vectorised simulation of WiFi probe traffic in the malls of a ``World``.

Three populations per mall, all on the mall's local wall clock:

* **visitors** arrive on a daily curve (10:00–22:00, peaks at lunch and in the
  evening; Sat/Sun x1.5), enter by an entrance zone, walk through 1–7 shop
  zones (any floor) with log-normal dwell times (median ~8 min, up to 2.5 h;
  15 % pop into one shop for a few minutes only), and most leave by an
  entrance; their phones probe every 10–120 s with a strong, noisy signal
  (≈ -45…-70 dBm in shops). 12 % of stays have a gap of 16–75 min (they split
  into sessions); 1.5 % come late and stay past midnight. 35 % come from a
  persistent pool (returning clients, log-normal loyalty).
* **passers** (most devices): 0–5 min near an entrance or on the ground floor,
  weak signal (≈ -75…-95 dBm, never above -72); 3 % at night (spread over real
  time, so a repeated DST hour sees both offsets); 20 % are commuters from a
  persistent pool.
* **employees**: a fixed pool per mall, 5 work days of 7 (two fixed days off,
  3 % sick days), 8–10 h shifts from ~9:15, strong signal, in one zone (plus a
  lunch break in the food court for 60 %), a probe every 60–180 s.

15 % of visitor and passer stays use a randomised MAC (locally administered bit
set), fresh for every stay. 20 % of probes are also heard by a second sensor
(same zone, else same floor) 6–18 dB weaker, 0–40 ms later.

Segments (one stay at one zone) are drawn for the whole date range at once;
``expand`` turns one day's segments into probes.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import numpy as np

from .world import MallWorld, World

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MIN_MS = 60_000
_M46 = np.uint64((1 << 46) - 1)
_M40 = np.uint64((1 << 40) - 1)


@dataclass(frozen=True)
class Behaviour:
    visitor_share: float = 0.17      # of `devices` per day
    passer_share: float = 0.80
    employee_share: float = 0.02     # pool size as a share of `devices`
    min_employees: int = 3
    weekend_factor: float = 1.5
    randomised_share: float = 0.15
    returning_share: float = 0.35    # visitors drawn from the persistent pool
    commuter_share: float = 0.20     # passers drawn from a persistent pool
    night_share: float = 0.03
    late_visitor_share: float = 0.015
    split_share: float = 0.12
    echo_share: float = 0.20


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence([seed & 0xFFFFFFFF, *keys])))


def _excl_cumsum(n: np.ndarray) -> np.ndarray:
    out = np.zeros(len(n), dtype=np.int64)
    if len(n) > 1:
        np.cumsum(n[:-1], out=out[1:])
    return out


def macs_for(counter: np.ndarray, mall_index: int, randomised: bool, seed: int) -> np.ndarray:
    """Unique 48-bit MACs (as uint64) for per-mall device counters: a bijection of
    46 bits, then the two low bits of the first octet (multicast clear; locally
    administered set for randomised MACs)."""
    c = np.asarray(counter, dtype=np.uint64) + np.uint64(mall_index) * np.uint64(1 << 36)
    key = np.uint64((seed * 0x9E3779B1 + (0x5A5A5 if randomised else 0x33C3)) & ((1 << 46) - 1))
    with np.errstate(over="ignore"):
        x = (c ^ key) & _M46
        x = (x * np.uint64(0x2545F4914F6CDD1D)) & _M46
        x ^= x >> np.uint64(23)
        x = (x * np.uint64(0x9FB21C651E98DF25)) & _M46
        x ^= x >> np.uint64(19)
        x = (x * np.uint64(0xD6E8FEB86659FD93)) & _M46
    first = ((x >> np.uint64(40)) << np.uint64(2)) | np.uint64(2 if randomised else 0)
    return (first << np.uint64(40)) | (x & _M40)


# --------------------------------------------------------------------------- #
# Time zones: UTC offset as a step function of the UTC instant.

class TzTable:
    def __init__(self, tz: str, utc_from_ms: int, utc_to_ms: int):
        z = ZoneInfo(tz)

        def off(t_s: int) -> int:
            return int(datetime.fromtimestamp(t_s, z).utcoffset().total_seconds())

        t0, t1 = utc_from_ms // 1000, utc_to_ms // 1000 + 1
        points, offs = [-(1 << 62)], [off(t0)]
        t = t0
        while t < t1:
            t2 = min(t + 3600, t1)
            o = off(t2)
            if o != offs[-1]:
                lo, hi = t, t2
                while hi - lo > 1:
                    mid = (lo + hi) // 2
                    if off(mid) == offs[-1]:
                        lo = mid
                    else:
                        hi = mid
                points.append(hi * 1000)
                offs.append(o)
            t = t2
        self.points = np.array(points, dtype=np.int64)
        self.offs_ms = np.array(offs, dtype=np.int64) * 1000

    def offset_ms(self, utc_ms: np.ndarray) -> np.ndarray:
        return self.offs_ms[np.searchsorted(self.points, utc_ms, side="right") - 1]

    def to_utc(self, naive_ms: np.ndarray) -> np.ndarray:
        g = naive_ms - self.offset_ms(naive_ms)
        return naive_ms - self.offset_ms(g)


# --------------------------------------------------------------------------- #

@dataclass
class Segments:
    day: np.ndarray     # day index 0..days-1 (local date of the stay's start)
    t0: np.ndarray      # ms after local midnight (may pass 24 h)
    dur: np.ndarray     # ms
    step: np.ndarray    # ms between probes
    zone: np.ndarray    # zone position in the mall
    mac: np.ndarray     # uint64
    rmean: np.ndarray   # float
    rlo: np.ndarray
    rhi: np.ndarray
    elapsed: np.ndarray  # bool: t0 is real time since local midnight, not wall-clock time
                         # (night passers, so that a repeated DST hour sees both offsets)

    @staticmethod
    def concat(parts: list["Segments"]) -> "Segments":
        return Segments(*[np.concatenate([getattr(p, f) for p in parts])
                          for f in Segments.__dataclass_fields__])

    def take(self, idx) -> "Segments":
        return Segments(*[getattr(self, f)[idx] for f in Segments.__dataclass_fields__])


@dataclass
class MallStats:
    employees: int = 0
    visitor_stays: int = 0
    passer_stays: int = 0
    employee_days: int = 0
    randomised_stays: int = 0
    returning_stays: int = 0
    devices: int = 0           # distinct global (not randomised) MACs used


def _mix_hours(rng, n, weekend, lo, hi, wk, we):
    """Arrival hour from a two-normal mixture per day type, truncated to [lo, hi)."""
    (p1, m1, s1, m2, s2), (q1, n1, t1, n2, t2) = wk, we
    pick = rng.random(n)
    first = np.where(weekend, pick < q1, pick < p1)
    mu = np.where(weekend, np.where(first, n1, n2), np.where(first, m1, m2))
    sd = np.where(weekend, np.where(first, t1, t2), np.where(first, s1, s2))
    h = rng.normal(mu, sd)
    bad = (h < lo) | (h >= hi)
    h[bad] = rng.uniform(lo, hi, int(bad.sum()))
    return h


def _pool_picks(rng, weights, k):
    """k distinct indices, weighted (Efraimidis–Spirakis)."""
    k = min(k, len(weights))
    if k <= 0:
        return np.zeros(0, dtype=np.int64)
    keys = rng.exponential(size=len(weights)) / weights
    return np.argpartition(keys, k - 1)[:k].astype(np.int64)


def simulate_segments(mw: MallWorld, start_day: int, days: int, devices: float, seed: int,
                      B: Behaviour = Behaviour()) -> tuple[Segments, MallStats]:
    rng = _rng(seed, mw.id & 0xFFFFFFFF, 1)
    st = MallStats()
    D = float(devices)
    dnum = start_day + np.arange(days)
    dow = (dnum + 3) % 7                      # 1970-01-01 was a Thursday; Monday = 0
    weekend_day = dow >= 5
    f = np.where(weekend_day, B.weekend_factor, 1.0) * rng.lognormal(0.0, 0.08, days)
    n_vis = rng.poisson(D * B.visitor_share * f)
    n_pas = rng.poisson(D * B.passer_share * f)
    counter = 0
    rcounter = 0
    parts: list[Segments] = []

    # ---- employees --------------------------------------------------------
    E = max(B.min_employees, int(round(D * B.employee_share)))
    st.employees = E
    emp_mac = macs_for(np.arange(E), mw.index, False, seed)
    counter += E
    off_days = np.argsort(rng.random((E, 7)), axis=1)[:, :2]
    works = ~((dow[None, :] == off_days[:, :1]) | (dow[None, :] == off_days[:, 1:2]))
    works &= rng.random((E, days)) >= 0.03   # sick days
    base_start = np.clip(rng.normal(9.25, 0.5, E), 8.0, 12.5) * HOUR_MS
    shift_len = rng.uniform(8.0, 10.0, E) * HOUR_MS
    emp_zone = mw.shops[rng.integers(0, len(mw.shops), E)]
    lunch_zone = np.full(E, mw.food if mw.food >= 0 else -1)
    no_food = lunch_zone < 0
    lunch_zone[no_food] = rng.integers(0, len(mw.zone_ids), int(no_food.sum()))
    has_lunch = (rng.random(E) < 0.6) & (lunch_zone != emp_zone)
    emp_step = rng.uniform(60, 180, E) * 1000
    emp_rssi = rng.normal(-55, 4, E)
    ew, dw = np.nonzero(works)
    st.employee_days = len(ew)
    if len(ew):
        s0 = base_start[ew] + rng.normal(0, 8 * MIN_MS, len(ew))
        end = np.minimum(s0 + shift_len[ew], 22.5 * HOUR_MS)
        lunch = has_lunch[ew]
        l0 = s0 + rng.uniform(3.5, 5.0, len(ew)) * HOUR_MS
        l1 = l0 + rng.uniform(25, 45, len(ew)) * MIN_MS
        # one segment [s0, end) or three: [s0, l0) work, [l0, l1) lunch, [l1, end) work
        nseg = np.where(lunch, 3, 1)
        owner = np.repeat(np.arange(len(ew)), nseg)
        pos = np.arange(len(owner)) - np.repeat(_excl_cumsum(nseg), nseg)
        lo_ = lunch[owner]
        a = np.where(~lo_, s0[owner], np.choose(pos, [s0[owner], l0[owner], l1[owner]]))
        b = np.where(~lo_, end[owner], np.choose(pos, [l0[owner], l1[owner], end[owner]]))
        e_o = ew[owner]
        zone = np.where(lo_ & (pos == 1), lunch_zone[e_o], emp_zone[e_o])
        rmean = np.where(lo_ & (pos == 1), emp_rssi[e_o] - 6, emp_rssi[e_o])
        S = len(owner)
        parts.append(Segments(
            day=dw[owner].astype(np.int32), t0=a.astype(np.int64),
            dur=np.maximum(b - a, 0).astype(np.int64), step=emp_step[e_o].astype(np.int64),
            zone=zone.astype(np.int64), mac=emp_mac[e_o], rmean=rmean,
            rlo=np.full(S, -99, np.int16), rhi=np.full(S, -30, np.int16),
            elapsed=np.zeros(S, bool)))

    # ---- persistent pools ---------------------------------------------------
    Pv = max(10, int(round(0.8 * D)))
    vis_pool = macs_for(counter + np.arange(Pv), mw.index, False, seed)
    counter += Pv
    vis_w = rng.lognormal(0.0, 1.0, Pv)
    Pc = max(5, int(round(0.25 * D)))
    com_pool = macs_for(counter + np.arange(Pc), mw.index, False, seed)
    counter += Pc
    com_w = rng.lognormal(0.0, 0.5, Pc)
    used_v = np.zeros(Pv, bool)
    used_c = np.zeros(Pc, bool)

    def identities(n_per_day, pool, weights, used, pool_share):
        nonlocal counter, rcounter
        n = int(n_per_day.sum())
        day = np.repeat(np.arange(days), n_per_day).astype(np.int32)
        u = rng.random(n)
        rand = u < B.randomised_share
        from_pool = (~rand) & (u < B.randomised_share + pool_share)
        mac = np.zeros(n, dtype=np.uint64)
        starts = _excl_cumsum(n_per_day)
        for d in range(days):
            sl = slice(starts[d], starts[d] + n_per_day[d])
            idx = np.flatnonzero(from_pool[sl]) + starts[d]
            picks = _pool_picks(rng, weights, len(idx))
            mac[idx[:len(picks)]] = pool[picks]
            used[picks] = True
            from_pool[idx[len(picks):]] = False
        fresh = ~rand & ~from_pool
        nf, nr = int(fresh.sum()), int(rand.sum())
        mac[fresh] = macs_for(counter + np.arange(nf), mw.index, False, seed)
        counter += nf
        mac[rand] = macs_for(rcounter + np.arange(nr), mw.index, True, seed)
        rcounter += nr
        st.randomised_stays += nr
        st.returning_stays += int(from_pool.sum())
        return day, mac, n, nf

    # ---- visitors ---------------------------------------------------------
    vday, vmac, V, v_fresh = identities(n_vis, vis_pool, vis_w, used_v,
                                        B.returning_share)
    st.visitor_stays = V
    if V:
        wk = weekend_day[vday]
        arr = _mix_hours(rng, V, wk, 10.0, 21.75,
                         (0.45, 13.3, 1.4, 18.6, 1.5), (0.55, 14.5, 2.0, 18.0, 1.8))
        late = rng.random(V) < B.late_visitor_share
        arr[late] = rng.uniform(21.5, 23.0, int(late.sum()))
        arr_ms = arr * HOUR_MS
        quick = rng.random(V) < 0.15           # in and out of one shop
        k_shops = np.where(quick, 1, 1 + np.minimum(rng.poisson(1.3, V), 6))
        has_exit = rng.random(V) < 0.7
        nseg = 1 + k_shops + has_exit
        owner = np.repeat(np.arange(V), nseg)
        first = _excl_cumsum(nseg)
        S = len(owner)
        pos = np.arange(S) - first[owner]
        is_ent = pos == 0
        is_exit = has_exit[owner] & (pos == nseg[owner] - 1)
        is_door = is_ent | is_exit
        attract = rng.dirichlet(np.full(len(mw.shops), 2.0))
        zone = rng.choice(mw.shops, S, p=attract)
        zone[is_door] = mw.entrances[rng.integers(0, len(mw.entrances), int(is_door.sum()))]
        dwell = rng.lognormal(np.log(8.0), 0.85, S).clip(1.0, 150.0)
        quick_shop = quick[owner] & (pos == 1)
        dwell[quick_shop] = rng.uniform(0.3, 4.0, int(quick_shop.sum()))
        dwell[is_ent] = rng.uniform(0.5, 3.0, int(is_ent.sum()))
        dwell[is_exit] = rng.uniform(0.3, 1.5, int(is_exit.sum()))
        late_first = late[owner] & (pos == 1)
        dwell[late_first] = rng.uniform(80, 140, int(late_first.sum()))
        gap = rng.uniform(0.3, 3.0, S)
        split = np.flatnonzero(rng.random(V) < B.split_share)
        if len(split):
            j = first[split] + (rng.random(len(split)) * (nseg[split] - 1)).astype(np.int64)
            gap[j] = rng.uniform(16.0, 75.0, len(split))
        total = (dwell + gap) * MIN_MS
        excl = np.cumsum(total) - total
        t0 = arr_ms[owner] + excl - excl[first][owner]
        step = rng.uniform(10, 120, V)[owner] * 1000
        rmean = np.where(is_door, rng.normal(-71, 3, S), rng.normal(-58, 6, S))
        parts.append(Segments(
            day=vday[owner], t0=t0.astype(np.int64), dur=(dwell * MIN_MS).astype(np.int64),
            step=step.astype(np.int64), zone=zone.astype(np.int64), mac=vmac[owner],
            rmean=rmean, rlo=np.full(S, -99, np.int16), rhi=np.full(S, -30, np.int16),
            elapsed=np.zeros(S, bool)))

    # ---- passers ----------------------------------------------------------
    pday, pmac, Pn, p_fresh = identities(n_pas, com_pool, com_w, used_c, B.commuter_share)
    st.passer_stays = Pn
    if Pn:
        wk = weekend_day[pday]
        h = _mix_hours(rng, Pn, wk, 7.5, 23.0,
                       (0.5, 13.0, 2.5, 18.3, 1.8), (0.6, 14.5, 2.5, 18.0, 2.0))
        night = rng.random(Pn) < B.night_share
        h[night] = rng.uniform(0.0, 24.0, int(night.sum()))
        dur = np.where(rng.random(Pn) < 0.35, 0.0, rng.uniform(5, 300, Pn) * 1000)
        zone = mw.entrances[rng.integers(0, len(mw.entrances), Pn)]
        inside = rng.random(Pn) >= 0.75
        zone[inside] = mw.ground[rng.integers(0, len(mw.ground), int(inside.sum()))]
        parts.append(Segments(
            day=pday, t0=(h * HOUR_MS).astype(np.int64), dur=dur.astype(np.int64),
            step=(rng.uniform(10, 60, Pn) * 1000).astype(np.int64), zone=zone.astype(np.int64),
            mac=pmac, rmean=rng.normal(-85, 4, Pn),
            rlo=np.full(Pn, -99, np.int16), rhi=np.full(Pn, -72, np.int16), elapsed=night))

    st.devices = E + int(used_v.sum()) + int(used_c.sum()) + v_fresh + p_fresh
    segs = Segments.concat(parts)
    order = np.argsort(segs.day, kind="stable")
    return segs.take(order), st


@dataclass
class DayProbes:
    """One mall's probes of one local date (UTC ms, offset ms, local hour)."""
    sensor: np.ndarray   # global sensor index
    mac: np.ndarray      # uint64
    ts: np.ndarray       # UTC epoch ms
    off: np.ndarray      # UTC offset ms at ts
    rssi: np.ndarray     # int16
    hour: np.ndarray     # local hour 0..23

    def __len__(self) -> int:
        return len(self.ts)

    @staticmethod
    def empty() -> "DayProbes":
        z = np.zeros(0, dtype=np.int64)
        return DayProbes(z.astype(np.int32), z.astype(np.uint64), z, z, z.astype(np.int16), z)


def expand(mw: MallWorld, segs: Segments, day_num: int, tzt: TzTable, rng: np.random.Generator,
           B: Behaviour = Behaviour()):
    """Probes of the given segments (all starting on local date ``day_num``).
    Returns (utc_ms, offset_ms, local_day, local_hour, sensor, mac, rssi)."""
    S = len(segs.t0)
    n = np.maximum(1, np.rint(segs.dur / np.maximum(segs.step, 1))).astype(np.int64)
    N = int(n.sum())
    owner = np.repeat(np.arange(S), n)
    k = np.arange(N) - np.repeat(_excl_cumsum(n), n)
    u = rng.uniform(0.25, 0.75, N)
    t = segs.t0[owner] + ((k + u) * (segs.dur[owner] / n[owner])).astype(np.int64)
    zone = segs.zone[owner]
    zf, zn = mw.zone_first[zone], mw.zone_nsens[zone]
    pos = zf + (rng.random(N) * zn).astype(np.int64)
    rssi = np.rint(segs.rmean[owner] + rng.normal(0.0, 4.0, N))
    rssi = np.clip(rssi, segs.rlo[owner], segs.rhi[owner]).astype(np.int16)
    # echoes: the same probe heard by a second sensor of the zone (else of the floor)
    echo = np.flatnonzero(rng.random(N) < B.echo_share)
    r = rng.random(len(echo))
    ez = zone[echo]
    same_zone = zn[echo] >= 2
    fl = mw.zone_floor[ez]
    ff, fn = mw.floor_first[fl], mw.floor_nsens[fl]
    base = np.where(same_zone, zf[echo], ff)
    cnt = np.where(same_zone, zn[echo], fn)
    ok = cnt >= 2
    echo, r, base, cnt = echo[ok], r[ok], base[ok], cnt[ok]
    pos2 = base + (pos[echo] - base + 1 + (r * (cnt - 1)).astype(np.int64)) % cnt
    t2 = t[echo] + rng.integers(0, 40, len(echo))
    rssi2 = np.maximum(rssi[echo] - rng.integers(6, 19, len(echo)), -99).astype(np.int16)

    t_all = np.concatenate([t, t2])
    naive = np.int64(day_num) * DAY_MS + t_all
    utc = tzt.to_utc(naive)
    el = np.concatenate([segs.elapsed[owner], segs.elapsed[owner[echo]]])
    if el.any():
        midnight = tzt.to_utc(np.array([day_num * DAY_MS], dtype=np.int64))[0]
        utc[el] = midnight + t_all[el]
    off = tzt.offset_ms(utc)
    local = utc + off
    lday = local // DAY_MS
    hour = (local % DAY_MS) // HOUR_MS
    sensor = mw.sensors[np.concatenate([pos, pos2])]
    mac = np.concatenate([segs.mac[owner], segs.mac[owner[echo]]])
    rssi = np.concatenate([rssi, rssi2])
    return utc, off, lday, hour, sensor, mac, rssi


def iter_mall_days(world: World, start_day: int, days: int, devices: float, seed: int,
                   B: Behaviour = Behaviour(), stats: dict | None = None):
    """Yield (mall, day_index, DayProbes) for every mall and local date of the range,
    mall by mall, date by date. ``stats`` (if given) receives {mall_id: MallStats}."""
    for mw in world.malls:
        segs, st = simulate_segments(mw, start_day, days, devices, seed, B)
        if stats is not None:
            stats[mw.id] = st
        tzt = TzTable(mw.tz, (start_day - 2) * DAY_MS, (start_day + days + 2) * DAY_MS)
        bounds = np.searchsorted(segs.day, np.arange(days + 1))
        carry: list[np.ndarray] | None = None
        for d in range(days):
            rng = _rng(seed, mw.id & 0xFFFFFFFF, 2, d)
            sl = segs.take(slice(bounds[d], bounds[d + 1]))
            cols = list(expand(mw, sl, start_day + d, tzt, rng, B))
            if carry is not None:
                cols = [np.concatenate([a, b]) for a, b in zip(carry, cols)]
            utc, off, lday, hour, sensor, mac, rssi = cols
            today = lday == start_day + d
            later = lday > start_day + d
            carry = [c[later] for c in cols]
            yield mw, d, DayProbes(sensor=sensor[today].astype(np.int32), mac=mac[today],
                                   ts=utc[today], off=off[today], rssi=rssi[today],
                                   hour=hour[today])
