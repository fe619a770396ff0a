"""The scheduler lease of several aiwatch instances: one row of a KeeperMap table in Keeper.

ClickHouse's KeeperMap engine stores each row as a Keeper node; with `keeper_map_strict_mode = 1`
an INSERT creates (fails if the key exists) and an `ALTER TABLE ... UPDATE` sets the node only if
its version is still the one read, so every change below is Keeper's compare-and-set, not a
read-then-write on a plain table.

The row: `holder` (an instance id, '' when released; `token`, random per process, tells two
processes given the same id apart), `epoch` (+1 at each change of holder: the
fencing token) and `beat` (+1 at each renewal). Timing uses no shared clock (as Kubernetes' leader
election): the holder renews every `ttl/4`; another instance notes, on its own monotonic clock, when
it last saw the row change (when the read that returned the change ended: however slow Keeper is,
that is after the holder began that renewal), and takes the lease over (compare-and-set on the row
it saw) once it has seen no change for `ttl`. The holder stops acting `ttl/5` before that could
happen: it holds the lease until `start + 0.8 * ttl`, `start` being when it began its last successful renewal. So after
the holder dies, another instance holds the lease 0.75-1.5x `ttl` later (it saw the last renewal up
to a poll after it was made, the holder died up to a poll after that, and it notices a poll late).
A renewal that fails or times out extends nothing, so a holder cut off from Keeper stops acting on
its own. The tables in Keeper are created by the first step Keeper answers, not at start-up.
"""
from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from store.clickhouse import KEEPER_PROBE_S
from store.clickhouse_alerts import keeper_path

if TYPE_CHECKING:
    from store.clickhouse import ClickHouseStore, Transport

log = logging.getLogger(__name__)

LEASE_TABLE = "aiwatch_lease"
STRICT = "SETTINGS keeper_map_strict_mode = 1"
HOLD_SHARE = 0.8          # the holder acts until start of its last renewal + HOLD_SHARE * ttl
POLL_SHARE = 0.25         # renew / observe every POLL_SHARE * ttl


@dataclass(frozen=True)
class LeaseRow:
    holder: str
    token: str
    epoch: int
    beat: int


class KeeperLease:
    """One instance's view of the lease named `name`; `step()` is called every `poll_s`."""

    def __init__(self, store: ClickHouseStore, instance_id: str, ttl_s: float, *, name: str = "scheduler",
                 clock: Callable[[], float] = time.monotonic, transport: Transport | None = None) -> None:
        if not store.keeper_map:
            raise ValueError("the lease needs KeeperMap (store opened with keeper_map)")
        self.instance_id, self.ttl_s, self.name, self.clock = instance_id, ttl_s, name, clock
        self.token = secrets.token_hex(8)
        self._store = store
        self._table = store.table(LEASE_TABLE)
        # its own connection: a renewal never waits behind an analyzer's query on the store's
        self._db = transport or store.new_transport(query_timeout_s=max(2.0, ttl_s * POLL_SHARE))
        self._ready = False                # the tables in Keeper exist (created by the first step Keeper answers)
        self._lock = threading.Lock()
        self._until = float("-inf")        # this instance holds the lease until then (monotonic)
        self.epoch = 0                     # the epoch this instance holds (0: none)
        self.row: LeaseRow | None = None   # the row as last read
        self._seen: LeaseRow | None = None
        self._seen_at = 0.0
        self.acquired = 0                  # times this instance took the lease

    @property
    def poll_s(self) -> float:
        return self.ttl_s * POLL_SHARE

    def held(self) -> bool:
        """Whether this instance may act as the holder now (the fence for jobs and notifications)."""
        return self.clock() < self._until

    @property
    def holder(self) -> str | None:
        """The holder as last read ('' or None: nobody)."""
        return self.row.holder if self.row else None

    def step(self) -> bool:
        """Create, renew, or (after `ttl` without a change) take over the lease; whether held."""
        with self._lock:
            self._store.check_keeper(min(KEEPER_PROBE_S, self.poll_s))
            self._ensure_tables()
            start = self.clock()
            row = self._read()
            read_at = self.clock()   # the row was current at least until here (a slow read ends late)
            try:
                if row is None:
                    self._db.command(f"INSERT INTO {self._table} {STRICT} VALUES "
                                     "({n:String}, {me:String}, {t:String}, 1, 0)", self._params())
                elif row.token == self.token and row.epoch == self.epoch:
                    self._cas(row, "beat = beat + 1")
                elif row.holder == "" or self._unchanged_for_ttl(row, start, read_at):
                    self._cas(row, "holder = {me:String}, token = {t:String}, epoch = epoch + 1, beat = 0")
            except Exception as exc:  # noqa: BLE001 - another instance changed the row first: read again
                log.debug("lease %s: compare-and-set lost (%s)", self.name, str(exc).splitlines()[0][:200])
            row = self._read()
            self.row = row
            mine = row is not None and row.token == self.token and (row.epoch == self.epoch or row.beat == 0)
            if mine and row is not None:
                if row.epoch != self.epoch:
                    self.acquired += 1
                    log.warning("lease %s: instance %s holds it now (epoch %d)", self.name, self.instance_id, row.epoch)
                self.epoch = row.epoch
                self._until = start + HOLD_SHARE * self.ttl_s
            else:
                if self.epoch and self.held():
                    log.warning("lease %s: lost to %s", self.name, row.holder if row else "nobody")
                self.epoch, self._until = 0, float("-inf")
            return mine

    def release(self) -> None:
        """On a clean stop: hand the lease back at once (others need not wait `ttl`)."""
        if not self._lock.acquire(timeout=self.poll_s):   # a step still waiting on Keeper: others wait out ttl
            log.warning("lease %s: not released (a lease step is still waiting on Keeper)", self.name)
            return
        try:
            if self.epoch:
                try:
                    self._store.check_keeper(min(KEEPER_PROBE_S, self.poll_s))
                    self._db.command(f"ALTER TABLE {self._table} UPDATE holder = '', token = '', beat = beat + 1 "
                                     "WHERE name = {n:String} AND token = {t:String} AND epoch = {e:UInt64} " + STRICT,
                                     {**self._params(), "e": self.epoch})
                except Exception:  # noqa: BLE001 - Keeper away: the others take over after ttl
                    log.warning("lease %s: could not release it", self.name, exc_info=True)
            self.epoch, self._until = 0, float("-inf")
        finally:
            self._lock.release()

    def close(self) -> None:
        self._db.close()

    # --- helpers
    def _params(self) -> dict[str, Any]:
        return {"n": self.name, "me": self.instance_id, "t": self.token}

    def _ensure_tables(self) -> None:
        """Here, not at start-up: an instance starts (ingests, serves reads) while Keeper is away and
        contends once it answers; until then each step raises and held() stays False."""
        if self._ready:
            return
        self._store.ensure_keeper(self._db)
        on = f" ON CLUSTER {self._store.cluster}" if self._store.cluster else ""
        self._db.command(f"""CREATE TABLE IF NOT EXISTS {self._table}{on} (name String, holder String, token String,
            epoch UInt64, beat UInt64) ENGINE = KeeperMap('{keeper_path(self._store, LEASE_TABLE)}') PRIMARY KEY name""")
        self._ready = True

    def _read(self) -> LeaseRow | None:
        rows = self._db.query(f"SELECT holder, token, epoch, beat FROM {self._table} WHERE name = {{n:String}}",
                              {"n": self.name}).to_pylist()
        if not rows:
            return None
        return LeaseRow(rows[0]["holder"], rows[0]["token"], int(rows[0]["epoch"]), int(rows[0]["beat"]))

    def _unchanged_for_ttl(self, row: LeaseRow, started: float, read_at: float) -> bool:
        """A change counts as seen when the read that returned it ended: the holder may have written
        it just before then, after it began the renewal its hold is counted from (its `start`).
        Silence is counted up to when this read began. Counting the other way round, a read slower
        than ttl/5 would let this instance take over while the holder still acts."""
        if row != self._seen:
            self._seen, self._seen_at = row, read_at
            return False
        return started - self._seen_at >= self.ttl_s

    def _cas(self, row: LeaseRow, assignments: str) -> None:
        """Update the row only if it is still `row` (the WHERE) and no one wrote it since it was
        read for the update (strict mode: Keeper's versioned set)."""
        self._db.command(f"ALTER TABLE {self._table} UPDATE {assignments} WHERE name = {{n:String}} AND "
                         "token = {h:String} AND epoch = {e:UInt64} AND beat = {b:UInt64} " + STRICT,
                         {**self._params(), "h": row.token, "e": row.epoch, "b": row.beat})
