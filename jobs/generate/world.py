"""The synthetic world: an object tree in SPEC §1's ``objects.yaml`` shape.

``make_objects`` builds a seeded tree (the default demo: mall 215 "Galereya" in
Europe/Moscow and mall 1290 "Alexa" in Europe/Berlin); ``write_objects_yaml`` and
``write_pipeline_yaml`` write the two config files; ``load_world`` reads any
``objects.yaml`` back into the flat arrays the traffic simulator needs.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np
import yaml

# Built-in malls, in the order ``make_objects(malls=N)`` takes them.
DEMO_MALLS: list[dict[str, Any]] = [
    {"id": 215, "name": "Galereya", "timezone": "Europe/Moscow"},
    {"id": 1290, "name": "Alexa", "timezone": "Europe/Berlin"},
    {"id": 3070, "name": "Westfield", "timezone": "Europe/London"},
    {"id": 4404, "name": "Dubai Hills", "timezone": "Asia/Dubai"},
    {"id": 5120, "name": "Aventura", "timezone": "America/New_York"},
    {"id": 6001, "name": "Test Arcade", "timezone": "UTC"},
]
_EXTRA_TZ = ["Europe/Moscow", "Europe/Berlin", "Europe/London", "UTC", "Asia/Dubai"]

_SHOPS = [
    "Zara", "H&M", "Uniqlo", "Electronics", "Supermarket", "Kids world", "Sports",
    "Cafe", "Books", "Pharmacy", "Shoes", "Cosmetics", "Cinema", "Home & Deco",
    "Jewellery", "Toys", "Coffee bar", "Optics",
]
_FLOOR_NAMES = ["Ground floor", "1st floor", "2nd floor", "3rd floor", "4th floor"]

# SPEC §1's default pipeline.yaml, verbatim.
def _mall_specs(malls: int | Sequence[Any] | None) -> list[dict[str, Any]]:
    if malls is None:
        return [dict(m) for m in DEMO_MALLS[:2]]
    if isinstance(malls, int):
        if malls < 1:
            raise ValueError("malls must be >= 1")
        specs = [dict(m) for m in DEMO_MALLS[:malls]]
        for k in range(len(specs), malls):
            specs.append({"id": 7001 + 10 * k, "name": f"Mall {k + 1}",
                          "timezone": _EXTRA_TZ[k % len(_EXTRA_TZ)]})
        return specs
    specs = []
    for m in malls:
        if isinstance(m, dict):
            specs.append({"id": int(m["id"]), "name": str(m["name"]),
                          "timezone": str(m.get("timezone", "UTC"))})
        else:  # (id, name, timezone)
            mid, name, tz = m
            specs.append({"id": int(mid), "name": str(name), "timezone": str(tz)})
    return specs


def make_objects(malls: int | Sequence[Any] | None = None, seed: int = 42) -> dict:
    """Build an object tree (SPEC §1 objects.yaml shape) as a plain dict.

    ``malls``: None = the two demo malls (215 Galereya / Europe/Moscow,
    1290 Alexa / Europe/Berlin); an int N = the first N built-in malls (then
    generated ones); or a sequence of ``{"id", "name", "timezone"}`` dicts or
    ``(id, name, timezone)`` tuples.

    Each mall gets 2–3 floors (ids ``mall*10 + k``), 3–4 zones per floor (ids
    ``floor*10 + k``), 1–3 sensors per zone (``s-<mall>-0001`` …). The ground
    floor's first zone is "Main entrance". The first two malls each get one
    sensor with its own ``visitor_rssi_threshold`` (-65, then -72).
    """
    rng = np.random.Generator(np.random.PCG64(seed))
    specs = _mall_specs(malls)
    used: set[int] = set()
    overrides = [-65, -72]

    def take(i: int) -> int:
        if i in used:
            raise ValueError(f"object id {i} is not unique; choose other mall ids")
        used.add(i)
        return i

    tree_malls = []
    for mi, spec in enumerate(specs):
        mall_id = take(spec["id"])
        n_floors = int(rng.integers(2, 4))
        shop_names = list(rng.permutation(_SHOPS))
        sensor_no = 0
        floors = []
        all_sensors = []
        for f in range(n_floors):
            floor_id = take(mall_id * 10 + f + 1)
            n_zones = int(rng.integers(3, 5))
            zones = []
            for z in range(n_zones):
                zone_id = take(floor_id * 10 + z + 1)
                if f == 0 and z == 0:
                    zname = "Main entrance"
                elif f == 0 and z == n_zones - 1 and n_zones == 4:
                    zname = "Parking entrance"
                elif f == n_floors - 1 and z == 0:
                    zname = "Food court"
                else:
                    zname = str(shop_names.pop()) if shop_names else f"Zone {zone_id}"
                sensors = []
                for _ in range(int(rng.integers(1, 4))):
                    sensor_no += 1
                    s = {"id": f"s-{mall_id}-{sensor_no:04d}"}
                    sensors.append(s)
                    all_sensors.append(s)
                zones.append({"id": zone_id, "name": zname, "sensors": sensors})
            floors.append({"id": floor_id, "name": _FLOOR_NAMES[f % len(_FLOOR_NAMES)],
                           "zones": zones})
        if mi < len(overrides):
            s = all_sensors[int(rng.integers(0, len(all_sensors)))]
            s["visitor_rssi_threshold"] = overrides[mi]
        tree_malls.append({"id": mall_id, "name": spec["name"], "timezone": spec["timezone"],
                           "floors": floors})
    return {"malls": tree_malls}


def write_objects_yaml(path: str | Path, tree: dict) -> Path:
    """Write ``tree`` as objects.yaml (creating parent folders)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "# objects.yaml — written by `footfall generate --new-world`\n"
    text += yaml.safe_dump(tree, sort_keys=False, allow_unicode=True, default_flow_style=False)
    path.write_text(text, encoding="utf-8")
    return path


def write_pipeline_yaml(path: str | Path) -> Path:
    """Write a pipeline.yaml with every key at its default (the config model's: SPEC §1's)."""
    from jobs.config import Settings

    # 15, not 15.0: the file a person reads.
    values = {k: int(v) if isinstance(v, float) and v.is_integer() else v
              for k, v in Settings().model_dump().items()}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("# pipeline.yaml — the defaults\n" + yaml.safe_dump(values, sort_keys=False),
                    encoding="utf-8")
    return path


# --------------------------------------------------------------------------- #
# Flat view of a tree, for the simulator.

@dataclass
class MallWorld:
    index: int                 # position in the tree
    id: int
    name: str
    tz: str
    sensors: np.ndarray        # global sensor indices, grouped by zone, zones by floor
    zone_ids: np.ndarray       # (Z,)
    zone_floor: np.ndarray     # (Z,) floor position 0.. within the mall
    zone_first: np.ndarray     # (Z,) first position in ``sensors`` of the zone's sensors
    zone_nsens: np.ndarray     # (Z,)
    floor_first: np.ndarray    # (F,) first position in ``sensors`` of the floor's sensors
    floor_nsens: np.ndarray    # (F,)
    entrances: np.ndarray      # zone positions people enter by
    shops: np.ndarray          # zone positions visitors walk to
    food: int                  # zone position of a food court (employees' lunch), -1 if none
    ground: np.ndarray         # zone positions of the first floor


@dataclass
class World:
    malls: list[MallWorld]
    sensor_ids: list[str]      # global sensor index -> id text

    def sensor_set(self) -> set[str]:
        return set(self.sensor_ids)


def load_tree(conf_dir: str | Path) -> dict:
    path = Path(conf_dir) / "objects.yaml"
    with open(path, encoding="utf-8") as f:
        tree = yaml.safe_load(f)
    if not isinstance(tree, dict) or not tree.get("malls"):
        raise ValueError(f"{path}: no malls")
    return tree


def world_from_tree(tree: dict) -> World:
    sensor_ids: list[str] = []
    malls: list[MallWorld] = []
    for mi, m in enumerate(tree["malls"]):
        sens: list[int] = []
        zone_ids, zone_floor, zone_first, zone_nsens, names = [], [], [], [], []
        floor_first, floor_nsens = [], []
        for fi, fl in enumerate(m.get("floors") or []):
            floor_first.append(len(sens))
            for z in fl.get("zones") or []:
                ss = [str(s["id"]).strip() for s in (z.get("sensors") or [])]
                if not ss:
                    continue  # a zone without sensors sees no traffic
                zone_ids.append(int(z["id"]))
                zone_floor.append(fi)
                zone_first.append(len(sens))
                zone_nsens.append(len(ss))
                names.append(str(z.get("name", "")).lower())
                for s in ss:
                    sens.append(len(sensor_ids))
                    sensor_ids.append(s)
            floor_nsens.append(len(sens) - floor_first[-1])
        if not zone_ids:
            raise ValueError(f"mall {m.get('id')} has no sensors")
        Z = len(zone_ids)
        ent = [i for i, n in enumerate(names) if "entrance" in n]
        if not ent:
            ent = [0]
        shops = [i for i in range(Z) if i not in ent] or list(range(Z))
        food = next((i for i, n in enumerate(names) if "food" in n), -1)
        zf = np.array(zone_floor)
        first_floor = int(zf.min())
        malls.append(MallWorld(
            index=mi, id=int(m["id"]), name=str(m.get("name", m["id"])),
            tz=str(m.get("timezone") or "UTC"),
            sensors=np.array(sens, dtype=np.int32),
            zone_ids=np.array(zone_ids, dtype=np.int64), zone_floor=zf,
            zone_first=np.array(zone_first, dtype=np.int64),
            zone_nsens=np.array(zone_nsens, dtype=np.int64),
            floor_first=np.array(floor_first, dtype=np.int64),
            floor_nsens=np.array(floor_nsens, dtype=np.int64),
            entrances=np.array(ent, dtype=np.int64), shops=np.array(shops, dtype=np.int64),
            food=food, ground=np.flatnonzero(zf == first_floor),
        ))
    if len(set(sensor_ids)) != len(sensor_ids):
        raise ValueError("sensor ids must be unique across the tree")
    return World(malls=malls, sensor_ids=sensor_ids)


def load_world(conf_dir: str | Path) -> World:
    return world_from_tree(load_tree(conf_dir))


def iter_objects(tree: dict) -> Iterable[tuple[int, str]]:
    """(id, type) of every object of the tree."""
    for m in tree["malls"]:
        yield int(m["id"]), "mall"
        for fl in m.get("floors") or []:
            yield int(fl["id"]), "floor"
            for z in fl.get("zones") or []:
                yield int(z["id"]), "zone"
