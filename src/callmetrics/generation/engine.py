"""DuckDB plumbing shared by the generators: connection, random macros, slot tables, writers.

All randomness is a pure function of (stream key, index, salt) through DuckDB's ``hash``, so a
query gives the same rows in the same order whatever the number of threads.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import duckdb

SLOTS_BIG = 8192
SLOTS_SMALL = 1024
AGENT_SLOTS = 256

MACROS = (
    # 64 well-mixed bits: DuckDB combines the hashes of several arguments cheaply, so the
    # result is hashed once more to make draws with different salts independent
    "create or replace macro h64(k, i, salt) as hash(hash(k, i, salt))",
    # uniform double in [0, 1)
    "create or replace macro u01(k, i, salt) as "
    "((h64(k, i, salt) >> 11)::double / 9007199254740992.0)",
    # standard normal deviate (Box-Muller)
    "create or replace macro nrm(k, i, salt) as "
    "sqrt(-2.0 * ln(1.0 - u01(k, i, salt))) * cos(2.0 * pi() * u01(k, i, salt + 7919))",
    # lower-case version-4 UUID text
    "create or replace macro uid(k, i, salt) as "
    "(((((h64(k, i, salt) & 18446744073709490175::ubigint) | 16384::ubigint)::uhugeint << 64)"
    " | ((h64(k, i, salt + 1) & 4611686018427387903::ubigint) | 9223372036854775808::ubigint)"
    ")::uuid)::varchar",
    # slices of a 64-bit hash as uniforms in [0, 1), and a unit-variance bell-shaped deviate
    "create or replace macro u16(h, s) as ((h >> s) & 65535)::double / 65536.0",
    "create or replace macro u32(h, s) as ((h >> s) & 4294967295)::double / 4294967296.0",
    "create or replace macro z32(h, s) as 0.5513 * ln((((h >> s) & 4294967295)::double + 0.5)"
    " / (4294967295.5 - ((h >> s) & 4294967295)::double))",
    # integers of tenths or thousandths as JSON decimal text (no slow double formatting)
    "create or replace macro dec1(n) as concat(case when n < 0 then '-' else '' end, "
    "abs(n) // 10, '.', abs(n) % 10)",
    "create or replace macro dec3(n) as concat(case when n < 0 then '-' else '' end, "
    "abs(n) // 1000, '.', lpad((abs(n) % 1000)::varchar, 3, '0'))",
    # epoch microseconds to a UTC timestamptz (exact to the microsecond; checked in tests)
    "create or replace macro ts_of(us) as to_timestamp(us / 1000000.0)",
    # the same text with a realistic case or white-space variation (u uniform in [0, 1))
    "create or replace macro vary_text(s, u) as case "
    "when s is null then null "
    "when u < 0.86 then s "
    "when u < 0.91 then upper(s[1]) || s[2:] "
    "when u < 0.94 then upper(s) "
    "when u < 0.97 then ' ' || s || ' ' "
    "when u < 0.985 then s || chr(10) "
    "else chr(9) || s || '  ' end",
    # stable traits of an agent or organization, derived from its id alone (so an increment
    # written later from the raw files gives the same agent the same behaviour)
    "create or replace macro id_u(id, salt) as "
    "((hash(hash(id, salt)) >> 11)::double / 9007199254740992.0)",
    "create or replace macro agent_skill(id) as 0.42 + 0.43 * id_u(id, 11)",
    "create or replace macro agent_pace(id) as 0.75 + 0.6 * id_u(id, 12)",
    "create or replace macro agent_weight(id) as 0.3 + id_u(id, 13)",
    "create or replace macro org_weight(id) as exp(2.3 * id_u(id, 21))",
    "create or replace macro org_profile(id) as "
    "case when hash(hash(id, 22)) % 5 = 0 then 'allday' else 'business' end",
    # 'extract=YYYY-MM-DD': the weekly extract (Mondays) that first held an instant, capped
    "create or replace macro extract_label(us, cap_day) as "
    "strftime(date '1970-01-01' + least(((us // 86400000000) + 3) // 7 * 7 - 3 + 7, cap_day)"
    "::integer, 'extract=%Y-%m-%d')",
)


def sql_str(value: str | None) -> str:
    """A SQL literal for a Python string (or NULL)."""
    if value is None:
        return "null"
    return "'" + value.replace("'", "''") + "'"


def sql_list(values: Sequence[str | None]) -> str:
    return "[" + ", ".join(sql_str(v) for v in values) + "]"


def connect(
    memory_limit: str = "3GB",
) -> tuple[duckdb.DuckDBPyConnection, tempfile.TemporaryDirectory]:
    """An in-memory DuckDB connection set up for generation (UTC session, bounded memory)."""
    spill = tempfile.TemporaryDirectory(prefix="callmetrics-gen-")
    con = duckdb.connect(config={"allow_unsigned_extensions": False})
    threads = max(1, min(os.cpu_count() or 1, 8))
    con.execute(f"set threads = {threads}")
    con.execute(f"set memory_limit = '{memory_limit}'")
    con.execute(f"set temp_directory = {sql_str(spill.name)}")
    con.execute("set preserve_insertion_order = true")
    # Rows must come out in the order drawn, the same on every run. The generator's joins are
    # lookups of drawn rows (left) into small tables (right); a hash join keeps the order of
    # its probe side, but DuckDB picks the smaller side as build side, and on small runs that
    # is the drawn rows: their order then followed the lookup table's hash chains, which
    # depend on thread timing (byte-different files for one seed, now and then). Keep the
    # joins as written, right side built: on large runs that is the plan DuckDB picks anyway.
    con.execute("set disabled_optimizers = 'join_order,build_side_probe_side'")
    con.execute("set TimeZone = 'UTC'")
    con.execute("set enable_progress_bar = false")
    for macro in MACROS:
        con.execute(macro)
    return con, spill


def build_slot_table(
    con: duckdb.DuckDBPyConnection,
    name: str,
    source_sql: str,
    key_cols: Sequence[str],
    value_col: str,
    n_slots: int,
) -> None:
    """Create table `name(<keys>, slot, <value>)` mapping each of `n_slots` slots to a value.

    `source_sql` yields `<keys>, <value>, weight`; each value gets a share of the slots in
    proportion to its weight, so `slot = floor(u * n_slots)` samples values by weight with a
    plain equi-join.
    """
    keys = ", ".join(key_cols)
    part = f"partition by {keys}" if key_cols else ""
    key_sel = f"{keys}, " if key_cols else ""
    con.execute(
        f"""
        create or replace table {name} as
        with weighted as (
            select {key_sel}{value_col}, weight,
                sum(weight) over ({part} order by {value_col}
                    rows between unbounded preceding and current row) as cum,
                sum(weight) over ({part}) as total,
                row_number() over ({part} order by {value_col} desc) = 1 as is_last
            from ({source_sql}) where weight > 0
        ), bounds as (
            select {key_sel}{value_col},
                floor((cum - weight) / total * {n_slots})::integer as lo,
                case when is_last then {n_slots}
                     else floor(cum / total * {n_slots})::integer end as hi
            from weighted
        )
        select {key_sel}unnest(range(lo, hi)) as slot, {value_col}
        from bounds
        """
    )


def copy_to_parquet(con: duckdb.DuckDBPyConnection, select_sql: str, path: Path) -> int:
    """Stream a query into one Parquet file (row order preserved); return the row count."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = con.execute(
        f"copy ({select_sql}) to {sql_str(str(path))} "
        "(format parquet, compression snappy, row_group_size 122880)"
    ).fetchone()
    return int(rows[0]) if rows else 0


class Progress:
    """Per-step progress lines on standard error (silent when quiet)."""

    def __init__(self, label: str, quiet: bool) -> None:
        self.label = label
        self.quiet = quiet
        self.started = time.perf_counter()

    def say(self, message: str) -> None:
        if not self.quiet:
            elapsed = time.perf_counter() - self.started
            print(f"[{self.label} {elapsed:6.1f}s] {message}", file=sys.stderr, flush=True)

    @contextmanager
    def step(self, message: str) -> Iterator[None]:
        t0 = time.perf_counter()
        self.say(f"{message} ...")
        yield
        self.say(f"{message} done in {time.perf_counter() - t0:.1f}s")

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started
