"""Requests of one poll of one device: GETs that survive a v1 agent's noSuchName, and walks of
several table columns at once, several per GETBULK (GETNEXT on v1 or where a device's GETBULK is
broken), so a 48-port switch costs a handful of round trips.
"""

from __future__ import annotations

import logging

from monitor.config.model import Target
from monitor.probes.snmp.transport import (
    END_OF_MIB,
    NO_SUCH,
    OID,
    Endpoint,
    SnmpClient,
    SnmpError,
    SnmpStatusError,
)

log = logging.getLogger(__name__)

_MAX_REQUESTS_PER_WALK = 2000  # a runaway agent (OIDs that never leave the table) is cut off
_VARBINDS_PER_BULK = 375  # at most this many varbinds asked for in one GETBULK
_GET_BATCH = 32  # instances per GET when fetching label lookups


class Walker:
    """Walks several table columns of one device at once."""

    def __init__(self, client: SnmpClient, endpoint: Endpoint, target: Target) -> None:
        assert target.snmp is not None and target.snmp.auth is not None
        self.client = client
        self.endpoint = endpoint
        self.auth = target.snmp.auth
        self.bulk = target.snmp.bulk and self.auth.version != "1"
        self.max_repetitions = target.snmp.max_repetitions
        self.requests = 0
        self.varbinds = 0
        self.found: dict[OID, object] = {}  # scalars that rode along in a walk

    async def get(self, oids: list[OID]) -> dict[OID, object]:
        self.requests += 1
        try:
            vbs = await self.client.get(self.endpoint, self.auth, oids)
        except SnmpStatusError as exc:
            if exc.status != 2:  # v1 noSuchName: one of the scalars is missing; ask the rest
                raise
            rest = [o for i, o in enumerate(oids, 1) if i != exc.index]
            if not rest or exc.index == 0:
                return {}
            return await self.get(rest)
        self.varbinds += len(vbs)
        return {oid: value for oid, value in vbs if value is not NO_SUCH}

    async def get_many(self, oids: list[OID]) -> dict[OID, object]:
        """GET of any number of instances, in batches small enough for one response."""
        found: dict[OID, object] = {}
        for start in range(0, len(oids), _GET_BATCH):
            found.update(await self.get(oids[start : start + _GET_BATCH]))
        return found

    async def first_values(self, prefix: OID, rows: int) -> list[object]:
        """Up to `rows` values under `prefix`, by GETNEXT (model and probe look-ups)."""
        values: list[object] = []
        cursor = prefix
        while len(values) < rows:
            self.requests += 1
            try:
                vbs = await self.client.get_next(self.endpoint, self.auth, [cursor])
            except SnmpStatusError:
                break  # v1 noSuchName: nothing after it
            self.varbinds += len(vbs)
            if not vbs:
                break
            oid, value = vbs[0]
            if value is END_OF_MIB or value is NO_SUCH or oid[: len(prefix)] != prefix:
                break
            if oid <= cursor:
                break
            values.append(value)
            cursor = oid
        return values

    async def walk(
        self, columns: list[OID], scalars: list[OID] | None = None
    ) -> dict[OID, dict[OID, object]]:
        """{column: {row index: value}} for every column; a column the device lacks is empty.

        `scalars` (instances such as sysUpTime.0) ride along in the first GETBULK as
        non-repeaters, each asked as GETNEXT of the OID just before it; what the device has ends
        up in `self.found` (what it lacks is left out). One request fewer per poll."""
        table: dict[OID, dict[OID, object]] = {c: {} for c in columns}
        cursor = {c: c for c in columns}
        active = list(columns)
        pending = list(scalars or ())
        if pending and not self.bulk:
            raise ValueError("scalars ride along only in GETBULK")
        # Keep a response about the size of the interface walk alone (15 columns x 25): many
        # columns get fewer repetitions each, so no agent has to build a huge PDU.
        repetitions = max(1, min(self.max_repetitions, _VARBINDS_PER_BULK // len(active or [1])))
        while active or pending:
            if self.requests >= _MAX_REQUESTS_PER_WALK:
                raise SnmpError(f"walk stopped after {self.requests} requests (agent loops?)")
            self.requests += 1
            try:
                if self.bulk:
                    vbs = await self.client.get_bulk(
                        self.endpoint,
                        self.auth,
                        [_before(o) for o in pending] + [cursor[c] for c in active],
                        repetitions,
                        non_repeaters=len(pending),
                    )
                else:
                    vbs = await self.client.get_next(
                        self.endpoint, self.auth, [cursor[c] for c in active]
                    )
            except SnmpStatusError as exc:
                if exc.status == 1 and self.bulk and repetitions > 1:  # tooBig
                    repetitions = max(1, repetitions // 2)
                    continue
                if exc.status == 2 and not self.bulk and 1 <= exc.index <= len(active):
                    del active[exc.index - 1]  # v1: this column ran off the end of the MIB
                    continue
                raise
            self.varbinds += len(vbs)
            if pending:
                if len(vbs) < len(pending):
                    raise SnmpError("agent dropped non-repeaters from a GETBULK response")
                for oid, (got, value) in zip(pending, vbs, strict=False):
                    if got == oid and value is not END_OF_MIB and value is not NO_SUCH:
                        self.found[oid] = value
                vbs = vbs[len(pending) :]
                pending = []
                if not active:
                    break
            if not vbs:
                raise SnmpError("agent returned an empty response to a walk")
            width = len(active)
            finished: set[OID] = set()
            progressed = False
            for i, (oid, value) in enumerate(vbs):
                column = active[i % width]
                if column in finished:
                    continue
                if value is END_OF_MIB or value is NO_SUCH or oid[: len(column)] != column:
                    finished.add(column)
                    continue
                if oid <= cursor[column]:
                    log.debug("oid not increasing at %s; column %s stops", oid, column)
                    finished.add(column)
                    continue
                table[column][oid[len(column) :]] = value
                cursor[column] = oid
                progressed = True
            active = [c for c in active if c not in finished]
            if not progressed and not finished:
                raise SnmpError("agent made no progress in a walk")
        return table


def _before(oid: OID) -> OID:
    """An OID whose successor is `oid` when `oid` exists: its parent for instance .0, else the
    previous sibling's deepest possible descendant."""
    if oid[-1] == 0:
        return oid[:-1]
    return (*oid[:-1], oid[-1] - 1, 0xFFFFFFFF)
