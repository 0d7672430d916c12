"""API tokens: ``conf/tokens.yaml`` holds the SHA-256 of each token and the malls it may
see, never a token itself (SPEC §10).

A token is shown once, by ``python -m reports token create``; whoever holds it sees the
listed malls and their floors and zones. To revoke one, delete its entry: the API reads
the file again when it changes, without a restart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
import threading
from pathlib import Path
from typing import Annotated, ClassVar

import yaml
from pydantic import Field, ValidationInfo, model_validator

from jobs.config import Config, ConfigError
from jobs.configfile import ConfigModel, Int, NullAsEmptyList, OptionalText, load_model
from reports.files import write_atomically

TOKENS_FILE = "tokens.yaml"
#: Tokens made here start with this, so that a leaked one is easy to recognise in logs.
TOKEN_PREFIX = "ff_"
_HEX64 = re.compile(r"[0-9a-f]{64}")
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

HEADER = """\
# tokens.yaml — who may call the report API (GET /reports/group_datetime).
# Each entry: a name, the SHA-256 (hex) of the token, never the token itself, and the
# malls (with their floors and zones) that the token may see. Add one with
#   python -m reports token create --malls 215 --name acme
# which prints the new token once. Delete an entry to revoke it; the API notices.
# This file is rewritten by `token create`: keep notes in an entry's `note` field.
"""


class Token(ConfigModel):
    """One stored token: its name, the hex SHA-256 of the token text, its malls. With a
    Config in the validation context, each mall must be one of its malls."""

    entry_label: ClassVar[str] = "name"

    name: str
    sha256: str
    malls: Annotated[frozenset[Int], Field(min_length=1)]
    created: OptionalText = None
    note: OptionalText = None

    @model_validator(mode="after")
    def _check(self, info: ValidationInfo) -> "Token":
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"name must be 1-64 letters, digits, '.', '_' or '-'; got {self.name!r}")
        if not _HEX64.fullmatch(self.sha256):
            raise ValueError("sha256 must be 64 lower-case hex digits")
        cfg = (info.context or {}).get("cfg")
        missing = sorted(self.malls - {m.id for m in cfg.malls}) if cfg else []
        if missing:
            raise ValueError(f"mall {missing[0]} is not a mall of objects.yaml")
        return self


class TokensFile(ConfigModel):
    """tokens.yaml: the stored tokens; names and hashes are unique."""

    tokens: Annotated[tuple[Token, ...], NullAsEmptyList] = ()

    @model_validator(mode="after")
    def _unique(self) -> "TokensFile":
        names, hashes = set(), set()
        for i, t in enumerate(self.tokens):
            if t.name in names:
                raise ValueError(f"tokens[{i}]: the name {t.name!r} is used twice")
            if t.sha256 in hashes:
                raise ValueError(f"tokens[{i}] ({t.name}): the same token hash is stored twice")
            names.add(t.name)
            hashes.add(t.sha256)
        return self


def digest(token: str) -> str:
    """The hex SHA-256 of a token's UTF-8 text: what tokens.yaml stores."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load_tokens(path: Path, cfg: Config | None = None) -> tuple[Token, ...]:
    """Read and check tokens.yaml (a missing file: no tokens). With ``cfg``, every mall
    id must be one of the config's malls. Raises ConfigError naming the problem."""
    return load_model(path, TokensFile, context={"cfg": cfg}).tokens


def find(tokens: tuple[Token, ...], presented: str) -> Token | None:
    """The stored token whose hash matches ``presented``, else None. Every stored hash is
    compared, in constant time, so the answer's timing does not tell how close a guess was."""
    h = digest(presented)
    match = None
    for t in tokens:
        if hmac.compare_digest(t.sha256, h):
            match = t
    return match


class TokenStore:
    """tokens.yaml as the API sees it, read again when the file changes."""

    def __init__(self, path: Path, cfg: Config):
        self.path, self.cfg = Path(path), cfg
        self._lock = threading.Lock()
        self._stamp: tuple | None = None
        self._tokens: tuple[Token, ...] = ()
        self.tokens()  # a broken file stops the API at start, not at the first request

    def tokens(self) -> tuple[Token, ...]:
        try:
            st = self.path.stat()
            stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        except FileNotFoundError:
            stamp = None
        with self._lock:
            if stamp != self._stamp:
                # A broken edit while running keeps the last good set (and is reported at the
                # next start); raising here would lock every caller out.
                try:
                    self._tokens = load_tokens(self.path, self.cfg)
                except ConfigError:
                    if self._stamp is None:
                        raise
                self._stamp = stamp
            return self._tokens

    def find(self, presented: str) -> Token | None:
        return find(self.tokens(), presented)


def create(conf_dir: Path, name: str, malls: list[int], cfg: Config, note: str | None = None) -> str:
    """Make a new token for ``malls``, store its hash under ``name`` and return the token
    (the only time it is seen). Raises ConfigError for a bad name or mall, or a name in use."""
    path = Path(conf_dir) / TOKENS_FILE
    tokens = list(load_tokens(path, cfg))
    if not _NAME.fullmatch(name):
        raise ConfigError(f"token name must be 1-64 letters, digits, '.', '_' or '-'; got {name!r}")
    if any(t.name == name for t in tokens):
        raise ConfigError(f"{path}: a token named {name!r} exists already; delete it first to replace it")
    known = {m.id for m in cfg.malls}
    if not malls:
        raise ConfigError("--malls: give at least one mall id")
    for m in malls:
        if m not in known:
            raise ConfigError(f"--malls: {m} is not a mall of {cfg.conf_dir}/objects.yaml "
                              f"(malls: {', '.join(str(k) for k in sorted(known))})")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    created = dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    tokens.append(Token(name=name, sha256=digest(token), malls=frozenset(malls), created=created,
                        note=note))
    _write(path, tokens)
    return token


def _write(path: Path, tokens: list[Token]) -> None:
    entries = []
    for t in tokens:
        e = {"name": t.name, "sha256": t.sha256, "malls": sorted(t.malls)}
        if t.created:
            e["created"] = t.created
        if t.note:
            e["note"] = t.note
        entries.append(e)
    text = HEADER + yaml.safe_dump({"tokens": entries}, sort_keys=False, default_flow_style=None)
    # Secret-adjacent: only the owner may read it. The running API re-reads it: atomic.
    write_atomically(path, text.encode("utf-8"), mode=0o600)
