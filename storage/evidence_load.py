"""Bulk readers for the evidence query: numpy columns, with no Python object per row.

Why this module exists: ``load_evidence`` used to fetch the evidence as SQLAlchemy rows
and copy them into numpy in a Python loop. At 10M rows that made 70M Python objects:
47.9 s and +6.3 GB of RSS from PostgreSQL, where the server's own work was about 3 s
(docs/performance.md, "Scoring (issue 3)"). The query stays the same; only the way its
rows travel changes:

* **PostgreSQL**: ``COPY (SELECT kind, domain, array_agg(src), ... GROUP BY kind,
  domain, bucket) TO STDOUT (FORMAT BINARY)``. The server sends a handful of tuples,
  each number column one binary array that ``np.frombuffer`` reads in place.
  PostgreSQL builds a tuple in one buffer of at most 1 GB, so a (kind, domain) group
  must not grow without bound: ``bucket`` splits it by ranges of a key
  (:func:`_pg_copy_statement`).
* **SQLite**: the raw ``sqlite3`` cursor consumed by ``np.fromiter`` into a structured
  array, a block of rows at a time (the tuples are made and dropped in C: no SQLAlchemy
  rows, no Python loop); kinds and domains become integer codes in SQL (``CASE``),
  against a list of candidate domains read first.

Both map account ids to indices with a dense lookup table (:func:`account_index`): one
gather instead of two binary searches per row (4.2 s to 0.03 s at 10M rows).

The evidence query must return, in this order: source account id, destination account
id, kind (text, one of ``kinds``), value (integer, -128..127), weight (float), time in
ns (integer), domain (text, never NULL) and an integer key for the buckets (an id of
the row's source record, nearly unique). The row order of the result is unspecified, as
it was with the row-wise loader (the query has no ``ORDER BY``); ``domains`` is the
sorted list of the domains that occur.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sqlalchemy import text
from sqlalchemy.orm import Session

#: Width of a bucket's key range on PostgreSQL (rows, on the exact fallback). A tuple
#: carries 46 bytes per row (five arrays of a 4-byte length plus the value: int4 ids,
#: int2 value, float8 weight, int8 time) and must stay under 1 GB (MaxAllocSize), so
#: 23.3M rows: 4M keys leave room for an average fan-out of 5.8 rows per key within one
#: (kind, domain) group, and keep the client's largest raw tuple near 200 MB. Measured
#: at 10M rows, 4M and 16M cost the same server time.
CHUNK_ROWS = 4_000_000

_COLUMNS = "src, dst, kind, value, weight, ts, dom"

# Element type OIDs (pg_type) and big-endian dtypes of the arrays, in the COPY's order.
_PG_ARRAYS: tuple[tuple[str, str, int], ...] = (
    ("src", ">i4", 23),  # int4: accounts.id is an INTEGER
    ("dst", ">i4", 23),
    ("value", ">i2", 21),  # int2
    ("weight", ">f8", 701),  # float8
    ("ts", ">i8", 20),  # int8
)

_COPY_SIGNATURE = b"PGCOPY\n\xff\r\n\x00"


@dataclass(frozen=True)
class EvidenceColumns:
    """The evidence query's rows as columns, ids already turned into account indices."""

    src: np.ndarray  # int32
    dst: np.ndarray  # int32
    kind: np.ndarray  # int8, index into the caller's kinds
    value: np.ndarray  # int8
    weight: np.ndarray  # float64
    ts_ns: np.ndarray  # int64
    domain: np.ndarray  # int32, index into domains
    domains: list[str]


def read_accounts(session: Session) -> tuple[np.ndarray, list[str]]:
    """Every account: ids (int64, ascending) and names, through the raw driver cursor.

    The raw cursor skips SQLAlchemy's row objects. (Pausing the garbage collector, which
    helps where millions of objects pile up, made no difference here at 1M accounts.)
    """
    cur = _dbapi(session).cursor()
    try:
        cur.execute("SELECT id, account_id FROM accounts ORDER BY id")
        rows = cur.fetchall()
    finally:
        cur.close()
    ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
    return ids, [r[1] for r in rows]


def account_index(ids: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """A function from account ids to their positions in ``ids`` (sorted, unique), int32.

    Ids are dense in practice (a sequence, with rare gaps from rolled-back inserts), so a
    table of ``max(id) + 1`` entries does it in one gather; ``np.searchsorted`` costs
    about 0.4 us per row at 10M rows (cache misses of two binary searches per row). Sparse
    ids (the largest over 4 x the count) fall back to ``searchsorted``. Either way an id
    that is not in ``ids`` raises, rather than pointing at the wrong account.
    """
    if ids.size and int(ids[0]) >= 0 and int(ids[-1]) < 4 * ids.size + 1024:
        table = np.full(int(ids[-1]) + 1, -1, dtype=np.int32)
        table[ids] = np.arange(ids.size, dtype=np.int32)

        def dense(values: np.ndarray) -> np.ndarray:
            if values.size and (int(values.min()) < 0 or int(values.max()) >= table.size):
                raise ValueError("evidence names an account id that is not in accounts")
            out = table[values]
            if out.size and int(out.min()) < 0:
                raise ValueError("evidence names an account id that is not in accounts")
            return out

        return dense

    def sparse(values: np.ndarray) -> np.ndarray:
        pos = np.searchsorted(ids, values)
        if values.size and (int(pos.max()) >= ids.size or not np.array_equal(ids[pos], values)):
            raise ValueError("evidence names an account id that is not in accounts")
        return pos.astype(np.int32)

    return sparse


def read_evidence_columns(
    session: Session,
    query: str,
    params: Mapping[str, Any],
    *,
    kinds: Sequence[str],
    to_index: Callable[[np.ndarray], np.ndarray],
    domains_query: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
) -> EvidenceColumns:
    """Run ``query`` (with ``:name`` parameters) in the session's transaction, as columns.

    ``domains_query`` (SQLite only) returns every domain the query can produce, or more;
    without it the domains come from a ``DISTINCT`` pass over the query itself, which
    costs a second run of it. ``chunk_rows`` bounds a PostgreSQL tuple (see
    :data:`CHUNK_ROWS`); tests force a tiny one to cover the chunked path.
    """
    if chunk_rows < 1:
        raise ValueError("chunk_rows must be at least 1")
    dialect = session.connection().dialect.name
    if dialect == "postgresql":
        return _read_postgresql(session, query, params, kinds, to_index, chunk_rows)
    if dialect == "sqlite":
        return _read_sqlite(session, query, params, kinds, to_index, domains_query, chunk_rows)
    raise NotImplementedError(f"no bulk evidence reader for {dialect!r}")


def _dbapi(session: Session) -> Any:
    """The session's driver connection, inside the session's transaction."""
    dbapi = session.connection().connection.driver_connection
    if dbapi is None:
        raise RuntimeError("the session has no driver connection")
    return dbapi


def _join(parts: list[np.ndarray], dtype: type) -> np.ndarray:
    """The parts end to end as ``dtype``; a single part as it is (no copy)."""
    if not parts:
        return np.zeros(0, dtype=dtype)
    out = parts[0] if len(parts) == 1 else np.concatenate(parts)
    return out.astype(dtype, copy=False)


# --- PostgreSQL ------------------------------------------------------------------------


_SAVEPOINT = "renown_evidence_load"
_PROGRAM_LIMIT_EXCEEDED = "54000"  # SQLSTATE of a tuple or an array over 1 GB


def _pg_copy_statement(query: str, *, exact: bool) -> str:
    """The COPY: one tuple per (kind, domain, bucket).

    The buckets bound each tuple. By default a bucket is a range of ``chunk_rows`` keys
    (``interactions.id``, or ``content.id`` for derived rows): free, but a vote on content
    with several authors makes one row per author, so a range may hold more rows than
    keys. ``exact`` numbers the rows instead (``row_number() OVER ()``, as they stream,
    no sort), which bounds a bucket at ``chunk_rows`` rows whatever the fan-out, at
    about 2 s of server time per 10M rows: the fallback when a range was too big.
    """
    aggs = ", ".join(
        f"array_agg({c}::{t})"
        for c, t in (("src", "int4"), ("dst", "int4"), ("value", "int2"),
                     ("weight", "float8"), ("ts", "int8"))
    )  # fmt: skip
    source = f"({query}) AS e({_COLUMNS}, key)"
    if exact:
        source = f"(SELECT e.*, row_number() OVER () - 1 AS n FROM {source}) AS e"
    bucket = "n" if exact else "key"
    return (
        f"COPY (SELECT kind::text, dom::text, {aggs} FROM {source} "
        f"GROUP BY kind, dom, {bucket} / :renown_chunk_rows) TO STDOUT (FORMAT BINARY)"
    )


@dataclass
class _Groups:
    """What the COPY's tuples held, a part per tuple (ids already turned to indices)."""

    kind: list[int]
    domain: list[str]
    size: list[int]
    parts: dict[str, list[np.ndarray]]


def _read_postgresql(
    session: Session,
    query: str,
    params: Mapping[str, Any],
    kinds: Sequence[str],
    to_index: Callable[[np.ndarray], np.ndarray],
    chunk_rows: int,
) -> EvidenceColumns:
    dialect = session.connection().dialect
    kind_code = {k: i for i, k in enumerate(kinds)}

    def read(cur: Any, exact: bool) -> _Groups:
        # SQLAlchemy renders the statement for psycopg (``%(name)s``, a literal ``%``
        # doubled); psycopg merges the parameters client-side (COPY takes no parameters).
        compiled = (
            text(_pg_copy_statement(query, exact=exact))
            .bindparams(**params, renown_chunk_rows=chunk_rows)
            .compile(dialect=dialect)
        )
        with cur.copy(str(compiled), compiled.params) as copy:
            return _read_groups(_copy_tuples(copy), kind_code, to_index)

    dbapi = _dbapi(session)
    # The setting and the savepoint need a transaction block: a session has one, unless
    # its engine runs in AUTOCOMMIT.
    block = dbapi.transaction() if dbapi.autocommit else contextlib.nullcontext()
    with block, dbapi.cursor() as cur:
        cur.execute("SELECT current_setting('enable_sort')")
        enable_sort = cur.fetchone()[0]
        # The planner expects thousands of groups and would sort all the rows to form
        # them (11.5 s of server time at 10M rows, against 5.4 s when it hashes); there
        # are a handful per bucket. Transaction-local, and restored below for the
        # caller's later queries (an error aborts the transaction, which discards it).
        cur.execute("SELECT set_config('enable_sort', 'off', true)")
        cur.execute(f"SAVEPOINT {_SAVEPOINT}")
        try:
            groups = read(cur, exact=False)
        except Exception as exc:
            if getattr(exc, "sqlstate", None) != _PROGRAM_LIMIT_EXCEEDED:
                raise
            # A key range fanned out past 1 GB: undo the failed statement, number rows.
            cur.execute(f"ROLLBACK TO SAVEPOINT {_SAVEPOINT}")
            groups = read(cur, exact=True)
        cur.execute(f"RELEASE SAVEPOINT {_SAVEPOINT}")
        cur.execute("SELECT set_config('enable_sort', %s, true)", (enable_sort,))

    domains = sorted(set(groups.domain))
    dom_code = {d: i for i, d in enumerate(domains)}
    sizes = np.array(groups.size, dtype=np.int64)
    parts = groups.parts
    return EvidenceColumns(
        src=_join(parts.pop("src"), np.int32),
        dst=_join(parts.pop("dst"), np.int32),
        kind=np.repeat(np.array(groups.kind, dtype=np.int8), sizes),
        value=_join(parts.pop("value"), np.int8),
        weight=_join(parts.pop("weight"), np.float64),
        ts_ns=_join(parts.pop("ts"), np.int64),
        domain=np.repeat(np.array([dom_code[d] for d in groups.domain], dtype=np.int32), sizes),
        domains=domains,
    )


def _read_groups(
    tuples: Iterator[list[memoryview | None]],
    kind_code: Mapping[str, int],
    to_index: Callable[[np.ndarray], np.ndarray],
) -> _Groups:
    """Each tuple's arrays converted (copied) to native dtypes as it arrives.

    Converting at once lets the driver free the message: the client never holds more
    than one tuple's raw bytes next to the converted columns.
    """
    out = _Groups([], [], [], {name: [] for name, _, _ in _PG_ARRAYS})
    for fields in tuples:
        if len(fields) != 2 + len(_PG_ARRAYS):
            raise ValueError(f"expected {2 + len(_PG_ARRAYS)} fields, got {len(fields)}")
        kind_f, dom_f, *arrays = fields
        del fields
        if kind_f is None or dom_f is None:
            raise ValueError("an evidence row has no kind or no domain")
        kind = str(kind_f, "utf-8")
        if kind not in kind_code:
            raise ValueError(f"unknown evidence kind {kind!r}")
        cols = {
            name: _pg_array(field, be, oid)
            for field, (name, be, oid) in zip(arrays, _PG_ARRAYS, strict=True)
        }
        del arrays
        size = cols["src"].size
        if any(c.size != size for c in cols.values()):
            raise ValueError("the arrays of one evidence group differ in length")
        out.parts["src"].append(to_index(cols["src"]))
        out.parts["dst"].append(to_index(cols["dst"]))
        out.parts["value"].append(_to_int8(cols["value"]))
        out.parts["weight"].append(cols["weight"].astype(np.float64))
        out.parts["ts"].append(cols["ts"].astype(np.int64))
        out.kind.append(kind_code[kind])
        out.domain.append(str(dom_f, "utf-8"))
        out.size.append(size)
        del cols  # the views pin the received message
    return out


def _to_int8(values: np.ndarray) -> np.ndarray:
    """int2 to int8, refusing values that would wrap (the row-wise loader raised too)."""
    if values.size and (int(values.min()) < -128 or int(values.max()) > 127):
        raise ValueError("an evidence value is outside -128..127")
    return values.astype(np.int8)


def _copy_tuples(chunks: Iterable[Any]) -> Iterator[list[memoryview | None]]:
    """The tuples of a binary COPY stream, each a list of its raw fields (None for NULL).

    PostgreSQL sends one message per tuple (the file header rides on the first), so each
    chunk is normally parsed in place, without a copy; a tuple split across chunks is
    carried over, copied, to the next. The fields are views into the chunk: they pin it
    until the caller drops them.
    """
    carry = b""
    header = ended = False
    for chunk in chunks:  # read to the end: the driver must see the COPY finish
        if ended:
            raise ValueError("data after the end of the COPY stream")
        view = memoryview(carry + bytes(chunk)) if carry else memoryview(chunk).cast("B")
        end, pos = len(view), 0
        if not header:
            if end < 19:
                carry = bytes(view)
                continue
            if bytes(view[:11]) != _COPY_SIGNATURE:
                raise ValueError("not a binary COPY stream")
            pos = 19 + int.from_bytes(view[15:19], "big")
            if end < pos:
                carry = bytes(view)
                continue
            header = True
        while True:
            if end - pos < 2:
                break
            nfields = int.from_bytes(view[pos : pos + 2], "big", signed=True)
            if nfields == -1:  # the trailer
                if end - pos != 2:
                    raise ValueError("data after the end of the COPY stream")
                ended = True
                pos = end
                break
            fields: list[memoryview | None] = []
            at = pos + 2
            for _ in range(nfields):
                if end - at < 4:
                    break
                size = int.from_bytes(view[at : at + 4], "big", signed=True)
                at += 4
                if size < 0:
                    fields.append(None)
                elif end - at < size:
                    break
                else:
                    fields.append(view[at : at + size])
                    at += size
            if len(fields) < nfields:  # incomplete: wait for the next chunk
                del fields
                break
            pos = at
            yield fields
            del fields
        carry = bytes(view[pos:])
        del view
    if not ended:
        raise ValueError("the COPY stream ended without its trailer")


def _pg_array(field: memoryview | None, be_dtype: str, oid: int) -> np.ndarray:
    """A one-dimensional binary array of fixed-width elements without NULLs, in place.

    The layout (array_send): ndim, has-nulls flag, element type OID, then per dimension
    its length and lower bound, then per element a 4-byte length and the value.
    """
    if field is None:
        raise ValueError("NULL array")
    ndim, has_null, elem_oid = (int.from_bytes(field[i : i + 4], "big") for i in (0, 4, 8))
    if ndim == 0:
        return np.zeros(0, dtype=be_dtype)
    if ndim != 1 or has_null or elem_oid != oid:
        raise ValueError(f"expected a 1-D array of type {oid} without NULLs")
    count = int.from_bytes(field[12:16], "big")
    elem = np.dtype([("len", ">i4"), ("v", be_dtype)])
    if len(field) != 20 + count * elem.itemsize:
        raise ValueError("array length does not match its elements")
    rec = np.frombuffer(field, dtype=elem, count=count, offset=20)
    if count and not bool(np.all(rec["len"] == elem["v"].itemsize)):
        raise ValueError("unexpected element width")
    return rec["v"]


# --- SQLite ----------------------------------------------------------------------------

#: Rows per ``np.fromiter`` block: the structured block (32 bytes a row) is transient.
_SQLITE_BLOCK_ROWS = 1_000_000

# Four values a row instead of seven: the sqlite3 module makes a Python object per value
# and that, not SQLite, is most of the time (at 1M rows: 0.3 s executing the query, 1.0 s
# handing over 7 values a row, 0.8 s for 4). ``ids`` holds the source id in the high 32
# bits and the destination id in the low ones; ``codes`` the kind code in bits 40 and up,
# the value + 128 in bits 32-39 and the domain code in the low ones. Anything that does
# not fit is -1, which ORs into a negative number: the reader refuses those rows.
_SQLITE_ROW = np.dtype([("ids", "i8"), ("codes", "i8"), ("weight", "f8"), ("ts", "i8")])


def _sqlite_packed_sql(query: str, kinds: int, domains: int) -> str:
    """``query``'s rows packed as :data:`_SQLITE_ROW` (kinds and domains bound by index)."""
    kind_case = " ".join(f"WHEN :renown_k{i} THEN {i}" for i in range(kinds))
    dom_case = " ".join(f"WHEN :renown_d{i} THEN {i}" for i in range(domains))
    return (
        f"WITH e({_COLUMNS}, key) AS ({query}) SELECT "
        "CASE WHEN src >= 0 AND src < 2147483648 AND dst >= 0 AND dst < 4294967296 "
        "THEN (src << 32) | dst ELSE -1 END, "
        # SQLite's bit operators share one precedence: every shift is parenthesised.
        f"((CASE kind {kind_case} ELSE -1 END) << 40) "
        "| ((CASE WHEN value BETWEEN -128 AND 127 THEN value + 128 ELSE -1 END) << 32) "
        f"| (CASE dom {dom_case or 'WHEN NULL THEN 0'} ELSE -1 END), "
        "weight, ts FROM e"
    )


def _read_sqlite(
    session: Session,
    query: str,
    params: Mapping[str, Any],
    kinds: Sequence[str],
    to_index: Callable[[np.ndarray], np.ndarray],
    domains_query: str | None,
    chunk_rows: int,
) -> EvidenceColumns:
    if len(kinds) > 127:
        raise ValueError("at most 127 kinds fit the packed kind code")
    conn = session.connection()
    if domains_query is None:
        domains_query = f"WITH e({_COLUMNS}, key) AS ({query}) SELECT DISTINCT dom FROM e"
    candidates = sorted(
        {d for (d,) in conn.execute(text(domains_query), dict(params)) if d is not None}
    )
    # Names as bound parameters, so they need no quoting.
    bound: dict[str, Any] = dict(params)
    bound.update({f"renown_k{i}": k for i, k in enumerate(kinds)})
    bound.update({f"renown_d{i}": d for i, d in enumerate(candidates)})
    parts: dict[str, list[np.ndarray]] = {
        name: [] for name in ("src", "dst", "kind", "value", "weight", "ts", "dom")
    }
    block = min(chunk_rows, _SQLITE_BLOCK_ROWS)
    cur = _dbapi(session).cursor()
    try:
        cur.execute(_sqlite_packed_sql(query, len(kinds), len(candidates)), bound)
        while True:
            rec = np.fromiter(itertools.islice(cur, block), dtype=_SQLITE_ROW)
            if rec.size == 0:
                break
            ids, codes = rec["ids"], rec["codes"]
            if int(ids.min()) < 0:
                raise ValueError(
                    "an evidence row has an account id outside 0..2^31 (source) "
                    "or 0..2^32 (destination)"
                )
            if int(codes.min()) < 0:
                raise ValueError(
                    "an evidence row has a kind outside the known kinds, a value outside "
                    "-128..127 or a domain the domains query did not list"
                )
            parts["src"].append(to_index(ids >> 32))
            parts["dst"].append(to_index(ids & 0xFFFFFFFF))
            parts["kind"].append((codes >> 40).astype(np.int8))
            parts["value"].append((((codes >> 32) & 0xFF) - 128).astype(np.int8))
            parts["dom"].append((codes & 0xFFFFFFFF).astype(np.int32))
            parts["weight"].append(rec["weight"].copy())  # contiguous, and frees ``rec``
            parts["ts"].append(rec["ts"].copy())
            del rec, ids, codes
    finally:
        cur.close()

    def cat(name: str, dtype: type) -> np.ndarray:
        return _join(parts.pop(name), dtype)

    src, dst = cat("src", np.int32), cat("dst", np.int32)
    dom = cat("dom", np.int32)
    # Keep only the candidates that occur, in the same (sorted) order.
    used = np.bincount(dom, minlength=len(candidates)) > 0
    domains = [d for d, u in zip(candidates, used.tolist(), strict=True) if u]
    if len(domains) < len(candidates):
        dom = (np.cumsum(used, dtype=np.int32) - 1)[dom]
    return EvidenceColumns(
        src=src,
        dst=dst,
        kind=cat("kind", np.int8),
        value=cat("value", np.int8),
        weight=cat("weight", np.float64),
        ts_ns=cat("ts", np.int64),
        domain=dom,
        domains=domains,
    )
