"""The result store: one SQLite file, one row per task, written only by the driver.

Why SQLite: it is in the standard library, a file is easy to copy and archive, and its
transactions make every write atomic: a run killed at any moment (``kill -9``, power
loss of the driver) leaves the file holding exactly the tasks whose transaction
committed, each once (``task_key`` is the primary key), so a rerun continues where it
stopped. The file uses write-ahead logging (``-wal``/``-shm`` side files while open),
which needs a local disk, not a network file system.

Schema (``SCHEMA_VERSION`` 1)
-----------------------------
``meta(key, value)``
    ``application = deepsad-results``, ``schema_version``, ``created_at``.
``runs``
    One row per ``deepsad experiment run`` invocation: experiment, profile, config path,
    config hash and resolved config (JSON), executor, workers, host, pid and
    ``pid_start`` (what tells this process from a later one with the same pid), package
    versions, start and end time, status and task counts. Status is ``running`` while the
    driver runs, then ``finished``, ``interrupted`` (Ctrl-C or SIGTERM: the driver stopped
    cleanly), ``error`` (an exception in the driver) or ``killed``: the driver's process
    ended without recording an end (``kill -9``, out of memory, a crash, a power loss).
    Nobody is left to write ``killed`` then, so the next reader that can tell writes it:
    :meth:`ResultStore.begin_run` and :meth:`ResultStore.mark_dead_runs` (``deepsad
    experiment status``) mark ``running`` rows whose process is gone, on this host, and
    fill in their task counts from the ``tasks`` table. Runs on other hosts stay as they
    are (their processes cannot be checked from here).
``tasks``
    One row per task, the columns of :data:`TASK_COLUMNS`: the task's identity
    (``task_key``, experiment, dataset, parameter, value, method (the config's label),
    detector (the :mod:`deepsad.methods` name), max_train_samples (the method's training
    cap, if any), setup_key, seed, normal_class, known_classes, gamma_l, gamma_p, k_l,
    eta, rep_dim), the outcome
    (status ``done``/``failed``, auc, average_precision, fit_seconds, score_seconds,
    pretrain_seconds, n_train, n_test, n_eval, error and traceback of a failed task),
    how it was obtained (config_hash, params, selection, selection_protocol,
    sampler_summary, ae_cache) and
    where (versions, host, pid, threads, run_id, started_at, finished_at). JSON columns
    hold canonical JSON text.

:func:`read_results` returns the ``tasks`` table as a :class:`pandas.DataFrame` with
these column names, the input of :func:`deepsad.experiments.report.write_report`.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sqlite3
from collections.abc import Iterable, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deepsad._version import __version__
from deepsad.errors import DataFileError, DeepSADError, InvalidInputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

logger = logging.getLogger(__name__)

APPLICATION = "deepsad-results"
SCHEMA_VERSION = 1

#: (name, SQL type) of every column of the ``tasks`` table, in export order.
TASK_COLUMNS: tuple[tuple[str, str], ...] = (
    ("task_key", "TEXT PRIMARY KEY"),
    ("experiment", "TEXT NOT NULL"),
    ("profile", "TEXT"),
    ("dataset", "TEXT NOT NULL"),
    ("parameter", "TEXT NOT NULL"),
    ("value", "REAL"),
    ("method", "TEXT NOT NULL"),
    ("detector", "TEXT"),
    ("max_train_samples", "INTEGER"),
    ("setup_key", "TEXT NOT NULL"),
    ("seed", "INTEGER NOT NULL"),
    ("normal_class", "INTEGER"),
    ("known_classes", "TEXT"),
    ("gamma_l", "REAL"),
    ("gamma_p", "REAL"),
    ("k_l", "INTEGER"),
    ("eta", "REAL"),
    ("rep_dim", "INTEGER"),
    ("status", "TEXT NOT NULL CHECK (status IN ('done', 'failed'))"),
    ("auc", "REAL"),
    ("average_precision", "REAL"),
    ("fit_seconds", "REAL"),
    ("score_seconds", "REAL"),
    ("pretrain_seconds", "REAL"),
    ("n_train", "INTEGER"),
    ("n_test", "INTEGER"),
    ("n_eval", "INTEGER"),
    ("error", "TEXT"),
    ("traceback", "TEXT"),
    ("config_hash", "TEXT NOT NULL"),
    ("selection_protocol", "TEXT"),
    ("ae_cache", "TEXT"),
    ("params", "TEXT"),
    ("selection", "TEXT"),
    ("sampler_summary", "TEXT"),
    ("versions", "TEXT"),
    ("host", "TEXT"),
    ("pid", "INTEGER"),
    ("threads", "INTEGER"),
    ("run_id", "INTEGER"),
    ("started_at", "TEXT"),
    ("finished_at", "TEXT"),
)
COLUMN_NAMES: tuple[str, ...] = tuple(name for name, _ in TASK_COLUMNS)
#: Columns added after schema 1 was first released: files that lack them get them (empty)
#: when opened, which older deepsad versions still read (they select their columns by name).
ADDED_COLUMNS: tuple[str, ...] = ("detector", "max_train_samples")
JSON_COLUMNS: tuple[str, ...] = ("params", "selection", "sampler_summary", "versions")
_NUMERIC = ("value", "auc", "average_precision", "fit_seconds", "score_seconds", "pretrain_seconds", "gamma_l",
            "gamma_p", "eta")
_INTEGER = ("seed", "normal_class", "k_l", "rep_dim", "n_train", "n_test", "n_eval", "pid", "threads", "run_id",
            "max_train_samples")

_RUN_COLUMNS = (
    "experiment TEXT", "profile TEXT", "config_path TEXT", "config_hash TEXT", "config TEXT", "executor TEXT",
    "workers INTEGER", "threads_per_worker INTEGER", "host TEXT", "versions TEXT", "argv TEXT",
    "started_at TEXT", "finished_at TEXT", "status TEXT", "n_tasks INTEGER", "n_done INTEGER",
    "n_failed INTEGER", "n_skipped INTEGER", "pid INTEGER", "pid_start TEXT",
)
#: Columns of ``runs`` added after schema 1 was first released (added, empty, on open).
ADDED_RUN_COLUMNS: tuple[str, ...] = ("pid INTEGER", "pid_start TEXT")
#: Status of a run whose driver process ended without recording how (see the module docs).
KILLED = "killed"


class ResultsFileError(DataFileError):
    """A results file that is not a readable deepsad results database (never overwritten)."""


def utc_now() -> str:
    """The current time as an ISO 8601 UTC string (seconds)."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _to_sql(value: Any, column: str) -> Any:
    if column in JSON_COLUMNS and value is not None and not isinstance(value, str):
        from deepsad.experiments.config import canonical_json

        return canonical_json(value)
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars
        return value.item()
    return value


class ResultStore:
    """An open results file.

    Parameters
    ----------
    path : str or os.PathLike
        The SQLite file. Missing (or empty) files are created with ``create=True``.
    create : bool, default True
        Create the file if it does not exist; otherwise that is an error.

    Raises
    ------
    ResultsFileError
        If the file exists but is not a deepsad results database (not SQLite, damaged,
        another application's database, or a newer schema). The file is not modified.

    Examples
    --------
    >>> with ResultStore("results.sqlite") as store:  # doctest: +SKIP
    ...     store.write([row])
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True) -> None:
        self.path = Path(path)
        self._conn = _connect(self.path, create=create)

    # ------------------------------------------------------------------ context
    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None  # type: ignore[assignment]

    def __enter__(self) -> ResultStore:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @contextmanager
    def _transaction(self):
        # IMMEDIATE takes the write lock up front, so two drivers on one file serialise
        # their writes instead of failing halfway through a transaction
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as error:
            raise ResultsFileError(f"cannot write to {self.path}: {error} (is another run holding it?)") from None
        try:
            yield self._conn
        except sqlite3.OperationalError as error:  # e.g. a full disk
            self._conn.execute("ROLLBACK")
            raise ResultsFileError(f"cannot write to {self.path}: {error}") from None
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        try:
            self._conn.execute("COMMIT")
        except sqlite3.OperationalError as error:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise ResultsFileError(f"cannot write to {self.path}: {error}") from None

    # ------------------------------------------------------------------ tasks
    def existing(self) -> dict[str, tuple[str, str]]:
        """``task_key -> (status, config_hash)`` of every stored task."""
        rows = self._conn.execute("SELECT task_key, status, config_hash FROM tasks")
        return {key: (status, config_hash) for key, status, config_hash in rows}

    def write(self, rows: Iterable[Mapping[str, Any]], run_id: int | None = None) -> int:
        """Insert or replace task rows, all in one transaction.

        Parameters
        ----------
        rows : iterable of mapping
            Keys from :data:`COLUMN_NAMES` (others are an error); JSON columns may hold
            Python objects.
        run_id : int, optional
            Stored with each row.

        Returns
        -------
        int
            Rows written.
        """
        rows = list(rows)
        if not rows:
            return 0
        placeholders = ", ".join("?" for _ in COLUMN_NAMES)
        updates = ", ".join(f"{name} = excluded.{name}" for name in COLUMN_NAMES if name != "task_key")
        sql = (
            f"INSERT INTO tasks ({', '.join(COLUMN_NAMES)}) VALUES ({placeholders}) "
            f"ON CONFLICT(task_key) DO UPDATE SET {updates}"
        )
        values = []
        for row in rows:
            unknown = set(row) - set(COLUMN_NAMES)
            if unknown:
                raise InvalidInputError(f"unknown result column(s): {', '.join(sorted(unknown))}")
            record = dict(row)
            if run_id is not None:
                record["run_id"] = run_id
            values.append(tuple(_to_sql(record.get(name), name) for name in COLUMN_NAMES))
        with self._transaction() as conn:
            conn.executemany(sql, values)
        return len(values)

    def count(self, status: str | None = None, *, run_id: int | None = None) -> int:
        """Number of stored tasks (with ``status``, saved by run ``run_id``, if given)."""
        conditions = {"status": status, "run_id": run_id}
        where = [f"{name} = ?" for name, value in conditions.items() if value is not None]
        sql = "SELECT COUNT(*) FROM tasks" + (" WHERE " + " AND ".join(where) if where else "")
        values = tuple(value for value in conditions.values() if value is not None)
        return int(self._conn.execute(sql, values).fetchone()[0])

    def dataframe(self) -> pd.DataFrame:
        """The ``tasks`` table as a DataFrame (see :func:`read_results`)."""
        import pandas as pd

        cursor = self._conn.execute(f"SELECT {', '.join(COLUMN_NAMES)} FROM tasks ORDER BY rowid")
        frame = pd.DataFrame.from_records(cursor.fetchall(), columns=list(COLUMN_NAMES))
        for column in _NUMERIC:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype(float)
        for column in _INTEGER:
            frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
        for column in ("parameter", "known_classes", "profile"):
            frame[column] = frame[column].fillna("").astype(str)
        return frame

    # ------------------------------------------------------------------ runs
    def begin_run(self, info: Mapping[str, Any]) -> int:
        """Record the start of a run by this process; returns its ``run_id``.

        Runs of this host whose process is gone are marked ``killed`` first (see
        :meth:`mark_dead_runs`).
        """
        from deepsad.experiments.config import canonical_json

        record = {k: (canonical_json(v) if isinstance(v, (dict, list)) else v) for k, v in info.items()}
        record.setdefault("started_at", utc_now())
        record.setdefault("status", "running")
        record.setdefault("host", socket.gethostname())
        record.setdefault("pid", os.getpid())
        record.setdefault("pid_start", process_start_token(record["pid"]) if record["pid"] else None)
        columns = ", ".join(record)
        with self._transaction() as conn:
            _mark_dead_runs(conn)
            cursor = conn.execute(
                f"INSERT INTO runs ({columns}) VALUES ({', '.join('?' for _ in record)})", tuple(record.values())
            )
        return int(cursor.lastrowid)

    def end_run(self, run_id: int, status: str, **counts: int) -> None:
        """Record how a run ended (``finished``, ``interrupted`` or ``error``) and its counts."""
        fields = {"status": status, "finished_at": utc_now(), **counts}
        assignments = ", ".join(f"{k} = ?" for k in fields)
        with self._transaction() as conn:
            conn.execute(f"UPDATE runs SET {assignments} WHERE run_id = ?", (*fields.values(), run_id))

    def mark_dead_runs(self) -> list[int]:
        """Mark ``running`` runs of this host whose process is gone as ``killed``.

        Their ``n_done`` / ``n_failed`` are counted from the tasks they saved; their
        ``finished_at`` stays empty (when the process died is unknown).

        Returns
        -------
        list of int
            The ``run_id`` of each run marked now.

        Raises
        ------
        ResultsFileError
            The file cannot be written (read-only, or held by another writer for 60 s).
        """
        with self._transaction() as conn:
            return _mark_dead_runs(conn)

    def runs(self) -> list[dict[str, Any]]:
        """All run records, oldest first."""
        cursor = self._conn.execute("SELECT * FROM runs ORDER BY run_id")
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def _proc_stat(pid: int) -> list[str] | None:
    """Fields 3... of ``/proc/PID/stat`` (Linux), or None where there is no such file."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: split after its last ')'
    return text.rsplit(")", 1)[-1].split()


def process_start_token(pid: int) -> str | None:
    """What tells process ``pid`` apart from later processes given the same pid.

    On Linux, the kernel's boot id and the process's start time (clock ticks since boot);
    ``None`` where that cannot be read (other systems, a process that is gone), in which
    case only the pid is compared.
    """
    fields = _proc_stat(pid)
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None
    # fields[0] is field 3 (state), so field 22 (starttime) is fields[19]
    return f"{boot_id}/{fields[19]}" if fields is not None and len(fields) > 19 else None


def process_alive(pid: int, start_token: str | None = None) -> bool:
    """Whether process ``pid`` of this host still runs (and is the one ``start_token`` names).

    A zombie (dead, not yet reaped by its parent) counts as gone.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: it exists
        pass
    except OSError:
        return False
    fields = _proc_stat(pid)
    if fields is None:  # no /proc (not Linux): the pid is all there is to go on
        return True
    if fields and fields[0] in ("Z", "X"):
        return False
    return start_token is None or process_start_token(pid) in (None, start_token)


def _mark_dead_runs(conn: sqlite3.Connection) -> list[int]:
    """Mark this host's ``running`` runs whose process is gone as ``killed`` (inside a transaction)."""
    host = socket.gethostname()
    candidates = conn.execute(
        "SELECT run_id, pid, pid_start FROM runs WHERE status = 'running' AND host = ? AND pid IS NOT NULL", (host,)
    ).fetchall()
    dead = [run_id for run_id, pid, start in candidates if not process_alive(int(pid), start)]
    for run_id in dead:
        conn.execute(
            "UPDATE runs SET status = ?, "
            "n_done = (SELECT COUNT(*) FROM tasks WHERE run_id = ? AND status = 'done'), "
            "n_failed = (SELECT COUNT(*) FROM tasks WHERE run_id = ? AND status = 'failed') "
            "WHERE run_id = ? AND status = 'running'",
            (KILLED, run_id, run_id, run_id),
        )
    if dead:
        logger.warning("run(s) %s of host %s ended without recording it (process gone): marked %s",
                       ", ".join(map(str, dead)), host, KILLED)
    return dead


def _connect(path: Path, *, create: bool) -> sqlite3.Connection:
    if path.is_dir():
        raise ResultsFileError(f"results path {path} is a folder; give a file such as {path / 'results.sqlite'}")
    exists = path.is_file() and path.stat().st_size > 0
    if not exists and not create:
        raise ResultsFileError(f"results file not found: {path}")
    if not exists:
        if not path.parent.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
    try:
        conn = sqlite3.connect(str(path), timeout=60.0, isolation_level=None)
    except sqlite3.Error as error:
        raise ResultsFileError(f"cannot open results file {path}: {error}") from None
    try:
        if exists:
            _check_existing(conn, path)
            _add_new_columns(conn)
        conn.execute("PRAGMA journal_mode = WAL")
        # NORMAL: a committed transaction survives the process being killed (it is in
        # the WAL); only an OS crash can lose the last ones, never corrupt the file
        conn.execute("PRAGMA synchronous = NORMAL")
        conn.execute("PRAGMA busy_timeout = 60000")
        if not exists:
            _create_schema(conn)
    except BaseException:
        conn.close()
        raise
    return conn


def _check_existing(conn: sqlite3.Connection, path: Path) -> None:
    """Refuse a file that is not an intact deepsad results database, without writing to it."""
    hint = "it was left untouched; move it away or choose another --results file"
    try:
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        integrity = conn.execute("PRAGMA quick_check").fetchone()[0]
    except sqlite3.DatabaseError as error:
        raise ResultsFileError(f"{path} is not a readable results database ({error}); {hint}") from None
    if integrity != "ok":
        raise ResultsFileError(f"{path} is damaged (SQLite integrity check: {integrity}); {hint}")
    if not {"meta", "tasks", "runs"} <= tables:
        raise ResultsFileError(f"{path} is an SQLite database but not a deepsad results file; {hint}")
    meta = dict(conn.execute("SELECT key, value FROM meta").fetchall())
    if meta.get("application") != APPLICATION:
        raise ResultsFileError(f"{path} is not a deepsad results file (application {meta.get('application')!r}); {hint}")
    version = int(meta.get("schema_version", "0"))
    if version > SCHEMA_VERSION:
        raise ResultsFileError(
            f"{path} was written by a newer deepsad (results schema {version}, this version reads {SCHEMA_VERSION}); {hint}"
        )
    columns = {row[1] for row in conn.execute("PRAGMA table_info(tasks)")}
    missing = [c for c in COLUMN_NAMES if c not in columns and c not in ADDED_COLUMNS]
    if missing:
        raise ResultsFileError(f"{path}: the tasks table lacks column(s) {', '.join(missing)}; {hint}")


def _add_new_columns(conn: sqlite3.Connection) -> None:
    """Give a file written before :data:`ADDED_COLUMNS` / :data:`ADDED_RUN_COLUMNS` existed
    those columns (NULL in old rows)."""
    types = dict(TASK_COLUMNS)
    _add_columns(conn, "tasks", [f"{name} {types[name]}" for name in ADDED_COLUMNS])
    _add_columns(conn, "runs", list(ADDED_RUN_COLUMNS))


def _add_columns(conn: sqlite3.Connection, table: str, definitions: Iterable[str]) -> None:
    columns = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
    for definition in definitions:
        name = definition.split()[0]
        if name not in columns:
            try:
                conn.execute(f"ALTER TABLE {table} ADD COLUMN {definition}")
            except sqlite3.OperationalError as error:
                if "duplicate column" not in str(error):  # else another process added it just now
                    raise ResultsFileError(f"cannot add column {name} to an older results file: {error}") from None


def _create_schema(conn: sqlite3.Connection) -> None:
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute("CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS runs (run_id INTEGER PRIMARY KEY AUTOINCREMENT, "
            + ", ".join(_RUN_COLUMNS) + ")"
        )
        conn.execute(
            "CREATE TABLE IF NOT EXISTS tasks (" + ", ".join(f"{n} {t}" for n, t in TASK_COLUMNS) + ")"
        )
        conn.execute("CREATE INDEX IF NOT EXISTS tasks_cell ON tasks (experiment, dataset, parameter, value, method)")
        conn.executemany(
            "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
            [("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION)),
             ("created_at", utc_now()), ("created_by", f"deepsad {__version__}")],
        )
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def read_results(path: str | os.PathLike) -> pd.DataFrame:
    """Read a results file into a DataFrame, one row per task.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    pandas.DataFrame
        Columns :data:`COLUMN_NAMES` (``experiment``, ``dataset``, ``parameter``,
        ``value``, ``method``, ``setup_key``, ``seed``, ``status``, ``auc``,
        ``average_precision``, ``fit_seconds``, ``score_seconds``, ...). JSON columns
        hold JSON text.

    Raises
    ------
    ResultsFileError
        A missing, damaged or foreign file.
    """
    with ResultStore(path, create=False) as store:
        return store.dataframe()


EXPORT_SUFFIXES = (".csv", ".parquet")


def export_results(path: str | os.PathLike, out: str | os.PathLike, *, experiment: str | None = None) -> int:
    """Write a results file's tasks to CSV or Parquet (by ``out``'s suffix), atomically.

    Parameters
    ----------
    path : str or os.PathLike
        The results file.
    out : str or os.PathLike
        ``*.csv`` or ``*.parquet`` (needs pyarrow: ``pip install 'deepsad[parquet]'``).
    experiment : str, optional
        Export only this experiment's rows.

    Returns
    -------
    int
        Rows written.
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in EXPORT_SUFFIXES:
        raise InvalidInputError(f"export file must end in {' or '.join(EXPORT_SUFFIXES)}, got {out.name!r}")
    if out.parent and not out.parent.exists():
        raise InvalidInputError(f"output folder does not exist: {out.parent}")
    if out.exists() and Path(path).exists() and out.samefile(path):
        raise InvalidInputError(f"--out {out} is the results file itself; export to another file")
    frame = read_results(path)
    if experiment is not None:
        known = sorted(set(frame["experiment"]))
        if experiment not in known:
            raise InvalidInputError(f"no rows of experiment {experiment!r} in {path}; experiments there: {', '.join(known) or 'none'}")
        frame = frame[frame["experiment"] == experiment]
    tmp = out.with_name(f".{out.name}.tmp")
    try:
        if suffix == ".csv":
            frame.to_csv(tmp, index=False)
        else:
            try:
                import pyarrow  # noqa: F401
            except ImportError:
                raise DeepSADError("writing Parquet needs pyarrow: pip install 'deepsad[parquet]'") from None
            frame.to_parquet(tmp, index=False)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            tmp.unlink()
    return len(frame)


def parse_json_column(value: Any) -> Any:
    """Decode one JSON cell of an exported table (``None``/NaN stay ``None``)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    return json.loads(value)
