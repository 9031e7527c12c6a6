"""The reliability table: user mistakes and faults, each with the outcome it must have (issue 16).

Every case is data: an id, a category, the mistake in one line, a ``setup`` that builds
what it needs in a fresh folder and returns a :class:`Plan` (``deepsad`` command-line
arguments run in-process, or a Python callable), and the expected outcome:

* ``refused(*words)``: exit status 2 and exactly one stderr line ``deepsad: error: ...``
  holding every word (``usage=True``: argparse's usage lines may come before it);
* ``raises(Type, *words)``: the callable raises ``Type`` with every word in its message;
* ``warns(Type, *words)``: the callable finishes and warns ``Type`` with the words;
* ``succeeds(*words)`` / ``exits(code, *words)``: the command ends with that status.

A plan's ``after`` checks say what must survive ("nothing lost"): the input file
unchanged, the old model still loadable, no temporary file left. Used by
``tests/integration/test_reliability.py`` (one test per case) and by
``benchmarks/reliability.py`` (writes ``docs/reliability.md``); neither needs the
network, and every case runs in a second or two apart from those that train.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

CATEGORIES = (
    "data file",
    "labels",
    "shapes/values",
    "parameters",
    "model files",
    "output paths",
    "evaluation",
    "datasets",
    "experiments/config",
    "ray/signals",
    "API misuse",
)

FAST = ["--epochs", "1", "--batch-size", "32", "--n-networks", "1", "--no-progress"]
COLUMNS = ["a", "b", "c", "d"]


# ----------------------------------------------------------------------------- the table's types


@dataclass(frozen=True)
class Expect:
    kind: str  # "exit", "raises", "warns"
    status: int = 2
    words: tuple[str, ...] = ()
    exception: type | None = None
    usage: bool = False  # argparse: usage lines before the error line

    def describe(self) -> str:
        words = ", ".join(repr(w) for w in self.words)
        if self.kind == "raises":
            return f"raises {self.exception.__name__}" + (f" ({words})" if words else "")
        if self.kind == "warns":
            return f"warns {self.exception.__name__}" + (f" ({words})" if words else "")
        if self.status == 2 and self.usage:
            return "exit 2, argparse usage + one error line" + (f" with {words}" if words else "")
        if self.status == 2:
            return "exit 2, one error line" + (f" with {words}" if words else "")
        if self.status < 0:
            return f"killed by signal {-self.status}"
        return f"exit {self.status}" + (f" with {words}" if words else "")


def refused(*words: str, usage: bool = False) -> Expect:
    return Expect("exit", 2, words, usage=usage)


def succeeds(*words: str) -> Expect:
    return Expect("exit", 0, words)


def exits(status: int, *words: str) -> Expect:
    return Expect("exit", status, words)


def raises(exception: type, *words: str) -> Expect:
    return Expect("raises", words=words, exception=exception)


def warns(category: type, *words: str) -> Expect:
    return Expect("warns", words=words, exception=category)


@dataclass
class Process:
    """What a command did: exit status and its output."""

    status: int
    out: str
    err: str


@dataclass
class Plan:
    """What to run: ``argv`` for ``deepsad.cli.main``, or a callable (Python API, subprocess)."""

    run: Sequence[str] | Callable[[], Any]
    after: list[Callable[[], None]] = field(default_factory=list)  # raise AssertionError if something was lost
    patches: list[tuple[Any, str, Any]] = field(default_factory=list)  # (object, attribute, value) while running


@dataclass(frozen=True)
class Case:
    id: str
    category: str
    description: str
    setup: Callable[[Ctx], Plan]
    expect: Expect
    xfail: str | None = None  # a known defect, with its reason


@dataclass
class Observed:
    summary: str  # one line: "exit 2: deepsad: error: ..." or "ValueError: ..."
    passed: bool
    problems: list[str]
    checks: list[str] = field(default_factory=list)  # the "nothing lost" checks that ran


def _labelled(check: Callable[[], None], label: str) -> Callable[[], None]:
    check.label = label  # type: ignore[attr-defined]
    return check


# ----------------------------------------------------------------------------- shared fixtures


def training_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(60, 4)), columns=COLUMNS)
    frame.iloc[:3] += 5
    frame["label"] = 0
    frame.loc[:2, "label"] = -1
    return frame


def evaluation_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(rng.normal(size=(40, 4)), columns=COLUMNS)
    frame.iloc[:5] += 5
    frame["y"] = 0
    frame.loc[:4, "y"] = 1
    return frame


class Shared:
    """Files built once per session: the training table, a small Deep SAD model and an
    Isolation Forest model (cases copy them before changing anything)."""

    def __init__(self, root: Path) -> None:
        from deepsad.cli import main

        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.train = self.root / "train.csv"
        training_frame().to_csv(self.train, index=False)
        self.test = self.root / "test.csv"
        evaluation_frame().to_csv(self.test, index=False)
        self.model = self.root / "model"
        self.forest = self.root / "forest"
        with _captured() as _:
            assert main(["fit", str(self.train), "--out", str(self.model), *FAST]) == 0
            assert main(["fit", str(self.train), "--out", str(self.forest), "--method", "iforest",
                         "--n-estimators", "10"]) == 0


class Ctx:
    """One case's folder and the shared files."""

    def __init__(self, tmp: Path, shared: Shared) -> None:
        self.tmp = Path(tmp)
        self.shared = shared

    def path(self, name: str) -> Path:
        return self.tmp / name

    def model(self, name: str = "model", source: Path | None = None) -> Path:
        target = self.tmp / name
        shutil.copytree(source or self.shared.model, target)
        return target

    def train(self) -> Path:
        """A private copy of the training table (safe to check for changes)."""
        target = self.tmp / "train.csv"
        shutil.copyfile(self.shared.train, target)
        return target

    def table(self, frame: pd.DataFrame, name: str = "data.csv") -> Path:
        path = self.tmp / name
        if name.endswith(".parquet"):
            frame.to_parquet(path)
        else:
            frame.to_csv(path, index=False)
        return path

    def text(self, content: str | bytes, name: str) -> Path:
        path = self.tmp / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
        return path

    def npy(self, array: np.ndarray, name: str = "data.npy") -> Path:
        path = self.tmp / name
        np.save(path, array)
        return path


# ----------------------------------------------------------------------------- "nothing lost" checks


def unchanged(*paths: Path) -> Callable[[], None]:
    """The files keep their bytes (a missing file stays missing)."""
    before = {path: (path.read_bytes() if path.is_file() else None) for path in paths}

    def check() -> None:
        for path, content in before.items():
            now = path.read_bytes() if path.is_file() else None
            assert now == content, f"{path} was changed"

    return _labelled(check, " and ".join(path.name for path in paths) + " unchanged")


def tree_unchanged(folder: Path) -> Callable[[], None]:
    """Every file under ``folder`` keeps its name and bytes; nothing is added."""

    def snapshot() -> dict[str, bytes]:
        return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}

    before = snapshot() if folder.is_dir() else None

    def check() -> None:
        now = snapshot() if folder.is_dir() else None
        assert now == before, f"the files in {folder} changed"

    return _labelled(check, f"{folder.name}/ unchanged")


def absent(*paths: Path) -> Callable[[], None]:
    def check() -> None:
        for path in paths:
            assert not path.exists(), f"{path} was created"

    return _labelled(check, "no " + " or ".join(path.name for path in paths) + " created")


def no_temporary_files(*folders: Path) -> Callable[[], None]:
    def check() -> None:
        for folder in folders:
            if folder.is_dir():
                stray = [p.name for p in folder.iterdir() if "tmp" in p.name and p.name.startswith(".")]
                assert not stray, f"temporary files left in {folder}: {stray}"

    return _labelled(check, "no temporary file left")


def loadable(model_dir: Path, data: Path | None = None) -> Callable[[], None]:
    """The model still loads (and scores ``data`` the same as before)."""
    from deepsad import load

    X = pd.read_csv(data).drop(columns=["label"], errors="ignore") if data is not None else None
    before = load(model_dir).anomaly_score(X) if X is not None else None

    def check() -> None:
        try:
            model = load(model_dir)
        except Exception as error:  # noqa: BLE001 - the check reports it
            raise AssertionError(f"the model {model_dir} no longer loads: {error}") from None  # noqa: B904
        if X is not None:
            np.testing.assert_array_equal(model.anomaly_score(X), before, err_msg=f"{model_dir} scores changed")

    return _labelled(check, f"{model_dir.name} loads" + (" and scores the same" if X is not None else ""))


def read_only_dir(ctx: Ctx) -> Path:
    """A folder in which no file can be created, even by root (then /proc)."""
    folder = ctx.path("read-only")
    folder.mkdir()
    folder.chmod(0o555)
    probe = folder / f".probe-{uuid.uuid4().hex}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return folder
    probe.unlink()
    folder.chmod(0o755)
    return Path("/proc")


# ----------------------------------------------------------------------------- model-file surgery


def rewrite_consistently(model_dir: Path, change: Callable[[dict], None]) -> None:
    """Change model.json's content and make its own checksum match again (a deliberate edit)."""
    from deepsad import persistence

    config = model_dir / persistence.CONFIG_FILE
    content = json.loads(config.read_text())
    content.pop("content_sha256")
    change(content)
    content["content_sha256"] = persistence._sha256(persistence._canonical(content).encode())
    config.write_text(persistence._canonical(content))


def weights(model_dir: Path) -> Path:
    from deepsad.persistence import weights_path

    return weights_path(model_dir)


def flip_byte(path: Path, offset: int = -3) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


# ----------------------------------------------------------------------------- helpers for plans


def fit(ctx: Ctx, data: Path, *options: str, out: Path | None = None) -> list[str]:
    return ["fit", str(data), "--out", str(out or ctx.path("m")), *options]


def fit_fast(ctx: Ctx, data: Path, *options: str, out: Path | None = None) -> list[str]:
    return fit(ctx, data, *FAST, *options, out=out)


def score(model: Path, data: Path, out: Path) -> list[str]:
    return ["score", str(model), str(data), "--out", str(out)]


def refused_fit(ctx: Ctx, data: Path, *options: str) -> Plan:
    """A fit that must be refused: no model, input unchanged."""
    return Plan(fit_fast(ctx, data, *options), after=[absent(ctx.path("m")), unchanged(data)])


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _frame(**changes: Any) -> pd.DataFrame:
    frame = training_frame()
    for column, values in changes.items():
        frame[column] = values
    return frame


# ----------------------------------------------------------------------------- the cases

CASES: list[Case] = []


def case(id: str, category: str, description: str, expect: Expect, *, xfail: str | None = None):
    assert category in CATEGORIES, category

    def register(setup: Callable[[Ctx], Plan]) -> Callable[[Ctx], Plan]:
        assert all(c.id != id for c in CASES), f"duplicate case id {id}"
        CASES.append(Case(id, category, description, setup, expect, xfail))
        return setup

    return register


# ---- data file


@case("data-missing", "data file", "fit on a data file that does not exist", refused("not found", "missing.csv"))
def _(ctx):
    return Plan(fit_fast(ctx, ctx.path("missing.csv")), after=[absent(ctx.path("m"))])


@case("data-empty-file", "data file", "fit on an empty (0-byte) CSV file", refused("empty.csv"))
def _(ctx):
    return refused_fit(ctx, ctx.text("", "empty.csv"))


@case("data-header-only", "data file", "fit on a CSV with a header and no rows", refused("header.csv"))
def _(ctx):
    return refused_fit(ctx, ctx.text("a,b,c,d,label\n", "header.csv"))


@case("data-non-numeric", "data file", "a feature column holds words", refused("column 'a'", "not numeric"))
def _(ctx):
    frame = training_frame().astype({"a": object})
    frame.loc[5, "a"] = "high"
    return refused_fit(ctx, ctx.table(frame))


@case("data-nan", "data file", "a feature value is NaN (empty cell)", refused("NaN"))
def _(ctx):
    frame = training_frame()
    frame.loc[3, "b"] = np.nan
    return refused_fit(ctx, ctx.table(frame))


@case("data-inf", "data file", "a feature value is infinite", refused("inf"))
def _(ctx):
    frame = training_frame()
    frame.loc[3, "b"] = np.inf
    return refused_fit(ctx, ctx.table(frame))


@case("data-suffix", "data file", "a data file with an unsupported suffix (.txt)", refused(".txt"))
def _(ctx):
    return refused_fit(ctx, ctx.text("1 2 3\n4 5 6\n", "data.txt"))


@case("data-npy-1d", "data file", "a 1-D .npy array (no feature axis)", refused("2-D"))
def _(ctx):
    return refused_fit(ctx, ctx.npy(np.arange(50.0)))


@case("data-npy-5d", "data file", "a 5-D .npy array", refused("2-D"))
def _(ctx):
    return refused_fit(ctx, ctx.npy(np.zeros((10, 2, 2, 2, 2))))


@case("data-npy-corrupt", "data file", "a .npy file holding garbage bytes", refused("data.npy"))
def _(ctx):
    return refused_fit(ctx, ctx.text(b"\x00garbage, not numpy" * 20, "data.npy"))


@case("data-npy-object", "data file", "a .npy file that would need pickle (object array)", refused("data.npy"))
def _(ctx):
    path = ctx.path("data.npy")
    np.save(path, np.array([{"a": 1}, {"b": 2}], dtype=object), allow_pickle=True)
    return refused_fit(ctx, path)


@case("data-parquet-corrupt", "data file", "a .parquet file that is not Parquet", refused("data.parquet"))
def _(ctx):
    return refused_fit(ctx, ctx.text(b"PAR1 not really" * 10, "data.parquet"))


@case("data-mat-corrupt", "data file", "a .mat file that is not MATLAB data", refused("data.mat"))
def _(ctx):
    return refused_fit(ctx, ctx.text(b"MATLAB 5.0 MAT-file, broken" * 10, "data.mat"))


@case("data-npz-empty", "data file", "an .npz archive without an array", refused("data.npz"))
def _(ctx):
    path = ctx.path("data.npz")
    np.savez(path)
    return refused_fit(ctx, path)


@case("data-directory", "data file", "a folder given as the data file", refused("folder"))
def _(ctx):
    folder = ctx.path("folder")
    folder.mkdir()
    return refused_fit(ctx, folder)


@case("data-ragged-csv", "data file", "a CSV row with more fields than the header", refused("ragged.csv"))
def _(ctx):
    return refused_fit(ctx, ctx.text("a,b,label\n1,2,0\n3,4,0,5\n6,7,0\n", "ragged.csv"))


@case("data-binary-csv", "data file", "a .csv file holding binary bytes (not text)", refused("binary.csv"))
def _(ctx):
    return refused_fit(ctx, ctx.text(bytes(range(256)) * 8, "binary.csv"))


@case("data-one-row", "data file", "fit on a table with a single row", refused("1 sample"))
def _(ctx):
    return refused_fit(ctx, ctx.table(training_frame().iloc[:1]))


# ---- labels


@case("label-column-missing", "labels", "--label-column names a column the file lacks", refused("'lbl'"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--label-column", "lbl")


@case("label-column-npy", "labels", "--label-column on a headerless .npy file", refused("'label'"))
def _(ctx):
    return refused_fit(ctx, ctx.npy(np.zeros((20, 3))), "--label-column", "label")


@case("label-out-of-range", "labels", "a semi-label other than -1 / 0 / +1 (7)", refused("other than -1"))
def _(ctx):
    frame = training_frame()
    frame.loc[7, "label"] = 7
    return refused_fit(ctx, ctx.table(frame))


@case("label-fractional", "labels", "a fractional semi-label (0.5)", refused("label"))
def _(ctx):
    frame = training_frame().astype({"label": float})
    frame.loc[7, "label"] = 0.5
    return refused_fit(ctx, ctx.table(frame))


@case("label-strings", "labels", "semi-labels written as words ('anomaly')", refused("label"))
def _(ctx):
    frame = training_frame().astype({"label": object})
    frame.loc[:2, "label"] = "anomaly"
    frame.loc[3:, "label"] = "unknown"
    return refused_fit(ctx, ctx.table(frame))


@case("label-nan", "labels", "an empty cell in the label column", refused("label"))
def _(ctx):
    frame = training_frame().astype({"label": float})
    frame.loc[7, "label"] = np.nan
    return refused_fit(ctx, ctx.table(frame))


@case("label-all-anomalous", "labels", "every training sample labeled anomalous (-1)", refused("anomal"))
def _(ctx):
    return refused_fit(ctx, ctx.table(_frame(label=-1)))


@case("label-devnet-none", "labels", "DevNet with no labeled anomaly", refused("anomal"))
def _(ctx):
    data = ctx.table(_frame(label=0))
    return Plan(["fit", str(data), "--out", str(ctx.path("m")), "--method", "devnet", "--epochs", "1", "--no-progress"],
                after=[absent(ctx.path("m"))])


@case("label-pyod-convention", "labels", "Deep SAD given PyOD-style 0/1 labels (1 = anomaly, the minority)",
      warns(UserWarning, "deepsad.pyod"))
def _(ctx):
    from deepsad import DeepSAD

    frame = training_frame()
    y = (frame.pop("label") == -1).astype(int).to_numpy()
    return Plan(lambda: DeepSAD(epochs=1, n_networks=1, batch_size=32, random_state=0).fit(frame.to_numpy(), y))


@case("label-length", "labels", "y with fewer entries than X (Python API)", raises(ValueError, "59", "60"))
def _(ctx):
    from deepsad import DeepSAD

    frame = training_frame()
    y = frame.pop("label").to_numpy()[:-1]
    return Plan(lambda: DeepSAD(epochs=1, n_networks=1).fit(frame.to_numpy(), y))


# ---- shapes/values


@case("score-feature-count", "shapes/values", "score headerless data with 3 features on a 4-feature model",
      refused("features"))
def _(ctx):
    out = ctx.path("s.csv")
    return Plan(score(ctx.shared.model, ctx.npy(np.zeros((10, 3))), out), after=[absent(out)])


@case("score-reordered-columns", "shapes/values", "score a table whose columns are reordered (matched by name: fine)",
      succeeds("scored 60 rows"))
def _(ctx):
    reordered = ctx.table(training_frame()[["d", "label", "c", "b", "a"]], "reordered.csv")
    out, reference = ctx.path("s.csv"), ctx.path("reference.csv")

    def check() -> None:
        from deepsad.cli import main

        with _captured():
            assert main(score(ctx.shared.model, ctx.shared.train, reference)) == 0
        assert out.read_bytes() == reference.read_bytes(), "reordered columns scored differently"

    _labelled(check, "same scores as the training order")
    return Plan(score(ctx.shared.model, reordered, out), after=[check])


@case("score-missing-column", "shapes/values", "score a table that lacks a training column", refused("missing 'c'"))
def _(ctx):
    out = ctx.path("s.csv")
    return Plan(score(ctx.shared.model, ctx.table(training_frame().drop(columns="c")), out), after=[absent(out)])


@case("score-unknown-column", "shapes/values", "score a table with a column not seen in training (and one missing)",
      refused("not seen in training 'z'"))
def _(ctx):
    out = ctx.path("s.csv")
    data = ctx.table(training_frame().drop(columns="c").assign(z=1.0))
    return Plan(score(ctx.shared.model, data, out), after=[absent(out)])


@case("score-nan", "shapes/values", "score data holding a NaN", refused("NaN"))
def _(ctx):
    frame = training_frame()
    frame.loc[4, "a"] = np.nan
    out = ctx.path("s.csv")
    return Plan(score(ctx.shared.model, ctx.table(frame), out), after=[absent(out)])


@case("score-empty", "shapes/values", "score a table with a header and no rows", refused("data.csv"))
def _(ctx):
    out = ctx.path("s.csv")
    return Plan(score(ctx.shared.model, ctx.text("a,b,c,d\n", "data.csv"), out), after=[absent(out)])


@case("fit-constant-column", "shapes/values", "a constant feature column (fine: standardized without dividing by 0)",
      succeeds("saved to"))
def _(ctx):
    return Plan(fit_fast(ctx, ctx.table(_frame(b=3.0))))


@case("fit-huge-values", "shapes/values", "feature values near the float64 limit (1e300)", refused("too large"))
def _(ctx):
    frame = training_frame()
    frame.loc[:10, "a"] = 1e300
    return refused_fit(ctx, ctx.table(frame))


@case("api-fit-1d", "shapes/values", "DeepSAD.fit with a 1-D X", raises(ValueError, "2D"))
def _(ctx):
    from deepsad import DeepSAD

    return Plan(lambda: DeepSAD(epochs=1, n_networks=1).fit(np.arange(40.0)))


@case("api-score-feature-count", "shapes/values", "anomaly_score with another number of features than fit",
      raises(ValueError, "features"))
def _(ctx):
    from deepsad import load

    model = load(ctx.shared.model)
    return Plan(lambda: model.anomaly_score(np.zeros((5, 3))))


@case("api-string-array", "shapes/values", "DeepSAD.fit with an array of strings", raises(ValueError))
def _(ctx):
    from deepsad import DeepSAD

    return Plan(lambda: DeepSAD(epochs=1, n_networks=1).fit(np.array([["a", "b"], ["c", "d"]] * 10)))


@case("network-shape-mismatch", "shapes/values", "--network mnist (28x28 images) for a 4-column table",
      refused("mnist"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--network", "mnist")


# ---- parameters


@case("param-unknown-method", "parameters", "--method that does not exist", refused("nosuch", usage=True))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--method", "nosuch")


@case("param-not-applicable", "parameters", "an option the method does not have (--gamma for deepsad)",
      refused("--gamma does not apply to --method deepsad"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--gamma", "0.1")


@case("param-epochs-shallow", "parameters", "--epochs for a shallow method (ocsvm)",
      refused("--epochs does not apply to --method ocsvm"))
def _(ctx):
    data = ctx.train()
    return Plan(["fit", str(data), "--out", str(ctx.path("m")), "--method", "ocsvm", "--epochs", "3"],
                after=[absent(ctx.path("m"))])


@case("param-bad-json", "parameters", "--param with a value that is not JSON (kept as text, then refused)",
      refused("lr_milestones"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--param", "lr_milestones=[1,")


@case("param-no-equals", "parameters", "--param without KEY=VALUE", refused("KEY=VALUE", usage=True))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--param", "epochs")


@case("param-unknown-key", "parameters", "--param with a misspelt parameter name (bandwith)",
      refused("--param bandwith does not apply"))
def _(ctx):
    data = ctx.train()
    return Plan(["fit", str(data), "--out", str(ctx.path("m")), "--method", "kde", "--param", "bandwith=2"],
                after=[absent(ctx.path("m"))])


@case("param-negative-epochs", "parameters", "--epochs -1", refused("epochs"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--epochs", "-1")


@case("param-lr-zero", "parameters", "--lr 0", refused("lr"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--lr", "0")


@case("param-contamination-high", "parameters", "--contamination 0.7 (above 0.5)", refused("contamination"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--contamination", "0.7")


@case("param-contamination-word", "parameters", "--contamination lots", refused("contamination", usage=True))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--contamination", "lots")


@case("param-batch-zero", "parameters", "--batch-size 0", refused("batch_size"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--batch-size", "0")


@case("param-n-networks-zero", "parameters", "--n-networks 0", refused("n_networks"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--n-networks", "0")


@case("param-epochs-not-integer", "parameters", "--epochs ten", refused("--epochs", usage=True))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--epochs", "ten")


@case("param-untrained", "parameters", "--epochs 0 --pretrain-epochs 0 would save an untrained model",
      refused("untrained"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--epochs", "0", "--pretrain-epochs", "0")


@case("param-device", "parameters", "--device that does not exist here (cuda:7 or a typo)", refused("device"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--device", "gpu7")


@case("param-hidden-zero", "parameters", "--hidden-sizes with a zero-width layer", refused("hidden"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--network", "mlp", "--hidden-sizes", "8", "0")


@case("param-eta-negative", "parameters", "--eta -1", refused("eta"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--eta", "-1")


# ---- model files


@case("model-not-found", "model files", "score with a model folder that does not exist", refused("not found"))
def _(ctx):
    out = ctx.path("s.csv")
    return Plan(score(ctx.path("nowhere"), ctx.shared.train, out), after=[absent(out)])


@case("model-is-a-file", "model files", "a data file given where the model folder goes", refused("train.csv"))
def _(ctx):
    data = ctx.train()
    out = ctx.path("s.csv")
    return Plan(score(data, ctx.shared.train, out), after=[absent(out), unchanged(data)])


@case("model-json-corrupt", "model files", "model.json that is not JSON", refused("corrupt"))
def _(ctx):
    model = ctx.model()
    (model / "model.json").write_text("{ not json")
    return Plan(score(model, ctx.shared.train, ctx.path("s.csv")), after=[absent(ctx.path("s.csv"))])


@case("model-json-missing", "model files", "model.json deleted", refused("missing"))
def _(ctx):
    model = ctx.model()
    (model / "model.json").unlink()
    return Plan(score(model, ctx.shared.train, ctx.path("s.csv")))


@case("model-json-edited", "model files", "a value edited in model.json (its checksum no longer matches)",
      refused("modified"))
def _(ctx):
    model = ctx.model()
    config = model / "model.json"
    config.write_text(config.read_text().replace('"random_state": 0', '"random_state": 1', 1))
    return Plan(score(model, ctx.shared.train, ctx.path("s.csv")))


@case("model-weights-byte", "model files", "one byte of the weights file changed", refused("checksum"))
def _(ctx):
    model = ctx.model()
    flip_byte(weights(model))
    return Plan(score(model, ctx.shared.train, ctx.path("s.csv")), after=[absent(ctx.path("s.csv"))])


@case("model-weights-truncated", "model files", "the weights file cut short", refused("weights"))
def _(ctx):
    model = ctx.model()
    path = weights(model)
    path.write_bytes(path.read_bytes()[:100])
    return Plan(score(model, ctx.shared.train, ctx.path("s.csv")))


@case("model-weights-missing", "model files", "the weights file deleted", refused("missing"))
def _(ctx):
    model = ctx.model()
    weights(model).unlink()
    return Plan(score(model, ctx.shared.train, ctx.path("s.csv")))


@case("model-newer-format", "model files", "model.json written by a newer deepsad (format version + 1)",
      refused("upgrade deepsad"))
def _(ctx):
    from deepsad import persistence

    model = ctx.model()
    rewrite_consistently(model, lambda c: c.update(format_version=persistence.FORMAT_VERSION + 1))
    return Plan(score(model, ctx.shared.train, ctx.path("s.csv")))


@case("model-threshold-word", "model files", "threshold 'high' in a model.json whose checksum was updated",
      refused("threshold"))
def _(ctx):
    model = ctx.model()
    rewrite_consistently(model, lambda c: c["fitted"].update(threshold="high"))
    return Plan(score(model, ctx.shared.train, ctx.path("s.csv")))


@case("model-weights-escape", "model files", "model.json naming a weights file outside its folder (../)",
      refused("invalid weights file"))
def _(ctx):
    model = ctx.model()
    rewrite_consistently(model, lambda c: c.update(weights_file="../elsewhere.safetensors"))
    return Plan(score(model, ctx.shared.train, ctx.path("s.csv")))


@case("model-params-garbage", "model files", "model.json whose params are a list (checksum updated)",
      refused("model"))
def _(ctx):
    model = ctx.model()
    rewrite_consistently(model, lambda c: c.update(params=["not", "a", "dict"]))
    return Plan(["info", str(model)])


@case("model-info-tampered", "model files", "deepsad info on a model with a changed weights byte",
      refused("checksum"))
def _(ctx):
    model = ctx.model()
    flip_byte(weights(model))
    return Plan(["info", str(model)])


@case("export-shallow", "model files", "export an Isolation Forest model to ONNX", refused("not supported"))
def _(ctx):
    out = ctx.path("forest.onnx")
    return Plan(["export", str(ctx.shared.forest), "--out", str(out)], after=[absent(out)])


@case("export-out-directory", "output paths", "export --out names a directory", refused("directory"))
def _(ctx):
    folder = ctx.path("exports")
    folder.mkdir()
    return Plan(["export", str(ctx.shared.model), "--out", str(folder)], after=[tree_unchanged(folder)])


@case("export-out-missing-folder", "output paths", "export --out in a folder that does not exist", refused("nowhere"))
def _(ctx):
    out = ctx.path("nowhere") / "model.onnx"
    return Plan(["export", str(ctx.shared.model), "--out", str(out)], after=[absent(out.parent)])


# ---- output paths


@case("fit-out-existing-file", "output paths", "fit --out names an existing file", refused("notes.txt"))
def _(ctx):
    target = ctx.text("keep me\n", "notes.txt")
    return Plan(fit_fast(ctx, ctx.train(), out=target), after=[unchanged(target)])


@case("fit-out-below-file", "output paths", "fit --out below an existing file", refused("notes.txt"))
def _(ctx):
    target = ctx.text("keep me\n", "notes.txt")
    return Plan(fit_fast(ctx, ctx.train(), out=target / "model"), after=[unchanged(target)])


@case("fit-out-non-model-dir", "output paths", "fit --out on a non-empty folder that holds no model (even --force)",
      refused("results"))
def _(ctx):
    folder = ctx.path("results")
    folder.mkdir()
    (folder / "keep.csv").write_text("x\n1\n")
    return Plan(fit_fast(ctx, ctx.train(), "--force", out=folder), after=[tree_unchanged(folder)])


@case("fit-out-existing-model", "output paths", "fit --out onto an existing model without --force",
      refused("--force"))
def _(ctx):
    model = ctx.model()
    return Plan(fit_fast(ctx, ctx.train(), "--seed", "1", out=model),
                after=[tree_unchanged(model), loadable(model, ctx.shared.train)])


@case("fit-out-read-only", "output paths", "fit --out in a place where nothing can be written", refused("cannot write"))
def _(ctx):
    target = read_only_dir(ctx) / f"deepsad-model-{uuid.uuid4().hex}"
    return Plan(fit_fast(ctx, ctx.train(), out=target), after=[absent(target)])


@case("score-out-input", "output paths", "score --out is the input data file", refused("input"))
def _(ctx):
    data = ctx.train()
    return Plan(score(ctx.shared.model, data, data), after=[unchanged(data), no_temporary_files(ctx.tmp)])


@case("score-out-input-spelt-otherwise", "output paths", "score --out is the input data file as ./x/../train.csv",
      refused("input"))
def _(ctx):
    data = ctx.train()
    (ctx.tmp / "x").mkdir()
    return Plan(score(ctx.shared.model, data, ctx.tmp / "x" / ".." / "train.csv"), after=[unchanged(data)])


@case("score-out-model-file", "output paths", "score --out is the model's model.json", refused("model.json"))
def _(ctx):
    model = ctx.model()
    return Plan(score(model, ctx.shared.train, model / "model.json"),
                after=[tree_unchanged(model), loadable(model)])


@case("score-out-directory", "output paths", "score --out names a directory", refused("directory"))
def _(ctx):
    folder = ctx.path("scores")
    folder.mkdir()
    return Plan(score(ctx.shared.model, ctx.shared.train, folder),
                after=[tree_unchanged(folder), no_temporary_files(ctx.tmp, folder)])


@case("score-out-missing-folder", "output paths", "score --out in a folder that does not exist",
      refused("does not exist"))
def _(ctx):
    out = ctx.path("nowhere") / "s.csv"
    return Plan(score(ctx.shared.model, ctx.shared.train, out), after=[absent(out.parent)])


@case("score-out-read-only", "output paths", "score --out in a place where nothing can be written", refused("cannot write"))
def _(ctx):
    folder = read_only_dir(ctx)
    out = folder / f"scores-{uuid.uuid4().hex}.csv"
    return Plan(score(ctx.shared.model, ctx.shared.train, out), after=[absent(out), no_temporary_files(ctx.tmp)])


# ---- evaluation


def evaluate(ctx: Ctx, data: Path, *options: str) -> list[str]:
    return ["evaluate", str(ctx.shared.model), str(data), *options]


@case("evaluate-semi-labels", "evaluation", "ground truth written -1/0/1 without --anomaly-label",
      refused("--anomaly-label"))
def _(ctx):
    frame = evaluation_frame()
    frame["y"] = np.where(frame["y"] == 1, -1, 0)
    frame.loc[10, "y"] = 1
    return Plan(evaluate(ctx, ctx.table(frame), "--label-column", "y"))


@case("evaluate-one-class", "evaluation", "ground truth with only normal samples", refused("only normal samples"))
def _(ctx):
    return Plan(evaluate(ctx, ctx.table(evaluation_frame().assign(y=0)), "--label-column", "y"))


@case("evaluate-column-missing", "evaluation", "evaluate --label-column names no column of the file",
      refused("truth"))
def _(ctx):
    return Plan(evaluate(ctx, ctx.shared.test, "--label-column", "truth"))


@case("evaluate-anomaly-label-absent", "evaluation", "--anomaly-label a value that never occurs",
      refused("only normal samples"))
def _(ctx):
    return Plan(evaluate(ctx, ctx.shared.test, "--label-column", "y", "--anomaly-label", "7"))


@case("evaluate-missing-feature", "evaluation", "evaluate a table missing a training column", refused("missing 'b'"))
def _(ctx):
    return Plan(evaluate(ctx, ctx.table(evaluation_frame().drop(columns="b")), "--label-column", "y"))


# ---- datasets


@case("data-describe-unknown", "datasets", "data describe of an unknown dataset name",
      refused("neither a known dataset nor a file"))
def _(ctx):
    return Plan(["data", "describe", "nosuchset", "--data-root", str(ctx.tmp)])


@case("data-download-unknown", "datasets", "data download of an unknown dataset name", refused("unknown dataset 'nope'"))
def _(ctx):
    return Plan(["data", "download", "nope", "--data-root", str(ctx.tmp), "--no-progress"])


class _FakeResponse(io.BytesIO):
    """What urlopen returns, serving local bytes (no network)."""

    def __init__(self, payload: bytes) -> None:
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


@case("data-download-checksum", "datasets", "a download whose bytes fail the published checksum",
      refused("checksum mismatch"))
def _(ctx):
    import urllib.request

    root = ctx.path("root")
    return Plan(["data", "download", "thyroid", "--data-root", str(root), "--no-progress"],
                patches=[(urllib.request, "urlopen", lambda *a, **k: _FakeResponse(b"not the thyroid data" * 50))],
                after=[absent(root / "odds" / "thyroid.mat"), no_temporary_files(root / "odds")])


@case("data-download-offline", "datasets", "data download without a network", refused("could not download"))
def _(ctx):
    import urllib.error
    import urllib.request

    def offline(*args, **kwargs):
        raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")

    root = ctx.path("root")
    return Plan(["data", "download", "thyroid", "--data-root", str(root), "--no-progress"],
                patches=[(urllib.request, "urlopen", offline)], after=[absent(root / "odds" / "thyroid.mat")])


@case("data-sample-missing-files", "datasets", "data sample of a dataset whose files are not downloaded",
      refused("not found"))
def _(ctx):
    return Plan(["data", "sample", "mnist", "--data-root", str(ctx.tmp), "--normal-class", "0",
                 "--known-classes", "1", "--gamma-l", "0.05"])


# ---- experiments/config

CONFIG = """
experiment = "reliability"
datasets = ["thyroid"]
seeds = [0]
[scenario]
gamma_l = 0.02
max_samples = 300
[training]
epochs = 1
lr_milestones = []
[methods.deepsad]
"""


def experiment(ctx: Ctx, config: str, *options: str) -> Plan:
    path = ctx.text(config, "config.toml")
    results = ctx.path("r.sqlite")
    return Plan(["experiment", "run", str(path), "--executor", "serial", "--results", str(results),
                 "--data-root", str(ctx.tmp), "--no-progress", *options], after=[unchanged(path)])


@case("config-unknown-key", "experiments/config", "an experiment config with a misspelt key", refused("unknown key 'sedes'"))
def _(ctx):
    return experiment(ctx, CONFIG.replace("seeds =", "sedes ="))


@case("config-unknown-method", "experiments/config", "an experiment config naming an unknown method",
      refused("nosuch"))
def _(ctx):
    return experiment(ctx, CONFIG.replace("[methods.deepsad]", "[methods.nosuch]"))


@case("config-unknown-dataset", "experiments/config", "an experiment config naming an unknown dataset",
      refused("nosuchset"))
def _(ctx):
    return experiment(ctx, CONFIG.replace('"thyroid"', '"nosuchset"'))


@case("config-not-toml", "experiments/config", "an experiment config that is not TOML", refused("not valid TOML"))
def _(ctx):
    return experiment(ctx, "experiment = [unclosed\n")


@case("config-bad-value", "experiments/config", "an experiment config with gamma_l = 2", refused("gamma_l"))
def _(ctx):
    return experiment(ctx, CONFIG.replace("gamma_l = 0.02", "gamma_l = 2"))


@case("config-unknown-profile", "experiments/config", "experiment run --profile the config does not offer",
      refused("unknown profile"))
def _(ctx):
    return experiment(ctx, CONFIG, "--profile", "huge")


@case("config-missing", "experiments/config", "experiment run of a config file that does not exist",
      refused("config file not found"))
def _(ctx):
    return Plan(["experiment", "run", str(ctx.path("nope.toml")), "--results", str(ctx.path("r.sqlite"))],
                after=[absent(ctx.path("r.sqlite"))])


@case("results-corrupt", "experiments/config", "experiment status of a results file that is not SQLite",
      refused("r.sqlite"))
def _(ctx):
    path = ctx.text(b"this is not a database" * 100, "r.sqlite")
    return Plan(["experiment", "status", str(path)], after=[unchanged(path)])


@case("results-report-corrupt", "experiments/config", "experiment report of a results file that is not SQLite",
      refused("r.sqlite"))
def _(ctx):
    path = ctx.text(b"this is not a database" * 100, "r.sqlite")
    return Plan(["experiment", "report", str(path)], after=[unchanged(path)])


@case("results-missing", "experiments/config", "experiment status of a results file that does not exist",
      refused("r.sqlite"))
def _(ctx):
    return Plan(["experiment", "status", str(ctx.path("r.sqlite"))], after=[absent(ctx.path("r.sqlite"))])


@case("results-export-suffix", "experiments/config", "experiment export --out with an unsupported suffix",
      refused(".txt"))
def _(ctx):
    from deepsad.experiments.store import ResultStore

    path = ctx.path("r.sqlite")
    with ResultStore(path):
        pass
    return Plan(["experiment", "export", str(path), "--out", str(ctx.path("rows.txt"))],
                after=[absent(ctx.path("rows.txt"))])


# ---- ray/signals


@case("ray-closed-port", "ray/signals", "experiment run --executor ray --address of a closed local port",
      refused("cannot reach the Ray cluster"))
def _(ctx):
    plan = experiment(ctx, CONFIG, "--executor", "ray", "--address", f"127.0.0.1:{_closed_port()}")
    plan.after.append(absent(ctx.path("r.sqlite")))
    return plan


@case("ray-malformed-address", "ray/signals", "experiment run --address that is not HOST:PORT",
      refused("invalid Ray address"))
def _(ctx):
    return experiment(ctx, CONFIG, "--executor", "ray", "--address", "head:70000")


def _interrupted_fit(ctx: Ctx, signum: int) -> Plan:
    """Start a long fit in a child process, send ``signum`` once training has begun."""
    rng = np.random.default_rng(0)
    data = ctx.table(pd.DataFrame(rng.normal(size=(400, 4)), columns=COLUMNS), "big.csv")
    out = ctx.path("m")
    marker = ctx.path("training-started")
    # the child marks the start of training, so that the signal reaches it inside fit
    code = (
        "import sys, pathlib\n"
        "import deepsad.detectors.deep_base as base\n"
        "from deepsad.cli import main\n"
        f"marker = pathlib.Path({str(marker)!r})\n"
        "def marked(real):\n"
        "    def run(*a, **k):\n"
        "        marker.touch()\n"
        "        return real(*a, **k)\n"
        "    return run\n"
        "base.train, base.train_stacked = marked(base.train), marked(base.train_stacked)\n"
        f"sys.exit(main(['fit', {str(data)!r}, '--out', {str(out)!r}, '--epochs', '100000', "
        "'--n-networks', '1', '--batch-size', '8', '--no-progress']))\n"
    )

    def run() -> Process:
        # SIG_DFL for SIGINT: a test run started in the background (`cmd &`) ignores it, and children
        # inherit that, so Python would never raise KeyboardInterrupt in the child
        child = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                 preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        try:
            while not marker.exists() and child.poll() is None:
                time.sleep(0.05)
            if child.poll() is None:
                child.send_signal(signum)
            out_text, err_text = child.communicate(timeout=120)
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        return Process(child.returncode, out_text, err_text)

    return Plan(run, after=[absent(out), unchanged(data)])


@case("signal-sigint-fit", "ray/signals", "Ctrl-C (SIGINT) during deepsad fit", exits(130, "deepsad: interrupted"))
def _(ctx):
    return _interrupted_fit(ctx, signal.SIGINT)


@case("signal-sigterm-fit", "ray/signals", "SIGTERM during deepsad fit: the process ends, no model half-saved",
      exits(-signal.SIGTERM))
def _(ctx):
    return _interrupted_fit(ctx, signal.SIGTERM)


@case("run-killed-status", "ray/signals", "experiment status of a run whose process was killed (kill -9)",
      succeeds("killed"))
def _(ctx):
    from deepsad.experiments.store import ResultStore, process_start_token

    path = ctx.path("r.sqlite")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        with ResultStore(path) as store:
            store.begin_run({"experiment": "reliability", "profile": "full", "executor": "serial", "workers": 1,
                             "n_tasks": 1, "n_skipped": 0, "pid": child.pid,
                             "pid_start": process_start_token(child.pid)})
    finally:
        child.kill()
        child.wait()
    return Plan(["experiment", "status", str(path)])


# ---- API misuse


@case("api-predict-unfitted", "API misuse", "predict before fit", raises(Exception, "not fitted"))
def _(ctx):
    from deepsad import DeepSAD

    return Plan(lambda: DeepSAD().predict(np.zeros((3, 4))))


@case("api-save-unfitted", "API misuse", "save a detector that was never fitted", raises(Exception, "fitted"))
def _(ctx):
    from deepsad import DeepSAD

    return Plan(lambda: DeepSAD().save(ctx.path("m")), after=[absent(ctx.path("m"))])


@case("api-unknown-keyword", "API misuse", "DeepSAD(epoch=3): a misspelt keyword", raises(TypeError, "epoch"))
def _(ctx):
    from deepsad import DeepSAD

    return Plan(lambda: DeepSAD(epoch=3))


@case("api-positional", "API misuse", "DeepSAD(3): parameters are keyword-only", raises(TypeError))
def _(ctx):
    from deepsad import DeepSAD

    return Plan(lambda: DeepSAD(3))


@case("api-load-missing", "API misuse", "deepsad.load of a folder that does not exist", raises(OSError, "not found"))
def _(ctx):
    from deepsad import load

    return Plan(lambda: load(ctx.path("nowhere")))


@case("api-nan", "API misuse", "DeepSAD.fit with NaN in X", raises(ValueError, "NaN"))
def _(ctx):
    from deepsad import DeepSAD

    X = np.random.default_rng(0).normal(size=(30, 3))
    X[2, 1] = np.nan
    return Plan(lambda: DeepSAD(epochs=1, n_networks=1).fit(X))


@case("api-eta-negative", "API misuse", "DeepSAD(eta=-1).fit", raises(ValueError, "eta"))
def _(ctx):
    from deepsad import DeepSAD

    X = np.random.default_rng(0).normal(size=(30, 3))
    return Plan(lambda: DeepSAD(eta=-1.0, epochs=1, n_networks=1).fit(X))


@case("api-export-shallow", "API misuse", "export_onnx of an Isolation Forest", raises(Exception, "not supported"))
def _(ctx):
    from deepsad import load
    from deepsad.onnx_export import export_onnx

    forest = load(ctx.shared.forest)
    out = ctx.path("f.onnx")
    return Plan(lambda: export_onnx(forest, out), after=[absent(out)])


@case("api-pyod-labels", "API misuse", "deepsad.pyod.DeepSAD given -1/0/1 semi-labels (PyOD wants 0/1)",
      raises(ValueError, "0"))
def _(ctx):
    from deepsad.pyod import DeepSAD

    frame = training_frame()
    y = frame.pop("label").to_numpy()
    return Plan(lambda: DeepSAD(epochs=1, n_networks=1, batch_size=32).fit(frame.to_numpy(), y))


# ---- more probes (second round)


@case("export-out-model-file", "output paths", "export --out is the model's own model.json", refused("model.json"))
def _(ctx):
    model = ctx.model()
    return Plan(["export", str(model), "--out", str(model / "model.json")], after=[tree_unchanged(model), loadable(model)])


@case("export-opset", "parameters", "export --opset outside the supported range (99)", refused("opset"))
def _(ctx):
    out = ctx.path("m.onnx")
    return Plan(["export", str(ctx.shared.model), "--out", str(out), "--opset", "99"], after=[absent(out)])


def _results_file(ctx: Ctx) -> Path:
    from deepsad.experiments.store import ResultStore

    path = ctx.path("r.sqlite")
    with ResultStore(path):
        pass
    return path


@case("results-export-onto-itself", "experiments/config", "experiment export --out names the results file itself (here r.csv)",
      refused("results file itself"))
def _(ctx):
    path = _results_file(ctx)
    target = ctx.path("r.csv")
    path.rename(target)  # a results file whose name ends in .csv: --out could overwrite it
    return Plan(["experiment", "export", str(target), "--out", str(target)], after=[unchanged(target)])


@case("results-report-onto-itself", "experiments/config", "experiment report --out names the results file itself",
      refused("is the input"))
def _(ctx):
    from deepsad.experiments.store import ResultStore

    path = ctx.path("r.sqlite")
    rows = [{"task_key": f"k{seed}", "experiment": "table6", "dataset": "thyroid", "parameter": "gamma_l=0.01",
             "method": "deepsad", "setup_key": "s", "seed": seed, "status": "done", "config_hash": "h",
             "auc": 0.9 + seed / 100} for seed in range(3)]
    with ResultStore(path) as store:
        store.write(rows)
    return Plan(["experiment", "report", str(path), "--out", str(path)], after=[unchanged(path)])


@case("results-status-directory", "experiments/config", "experiment status of a folder instead of a results file",
      refused("results"))
def _(ctx):
    folder = ctx.path("results")
    folder.mkdir()
    return Plan(["experiment", "status", str(folder)], after=[tree_unchanged(folder)])


@case("experiment-workers-zero", "parameters", "experiment run --workers 0", refused("workers", usage=True))
def _(ctx):
    return experiment(ctx, CONFIG, "--executor", "local", "--workers", "0")


@case("param-device-cuda-absent", "parameters", "--device cuda on a machine without CUDA", refused("cuda"))
def _(ctx):
    import torch

    if torch.cuda.is_available():
        return refused_fit(ctx, ctx.train(), "--device", f"cuda:{torch.cuda.device_count()}")
    return refused_fit(ctx, ctx.train(), "--device", "cuda")


@case("score-device-cuda-absent", "parameters", "score --device cuda on a machine without CUDA", refused("cuda"))
def _(ctx):
    import torch

    device = f"cuda:{torch.cuda.device_count()}" if torch.cuda.is_available() else "cuda"
    out = ctx.path("s.csv")
    return Plan(score(ctx.shared.model, ctx.shared.train, out) + ["--device", device], after=[absent(out)])


@case("param-lr-milestones", "parameters", "--lr-milestones with a word (5,a)", refused("milestones", usage=True))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--lr-milestones", "5,a")


@case("param-nu-above-one", "parameters", "--nu 1.5 for OC-SVM", refused("nu"))
def _(ctx):
    data = ctx.train()
    return Plan(["fit", str(data), "--out", str(ctx.path("m")), "--method", "ocsvm", "--nu", "1.5"],
                after=[absent(ctx.path("m"))])


@case("param-bandwidth-negative", "parameters", "--bandwidth -1 for KDE", refused("bandwidth"))
def _(ctx):
    data = ctx.train()
    return Plan(["fit", str(data), "--out", str(ctx.path("m")), "--method", "kde", "--bandwidth", "-1"],
                after=[absent(ctx.path("m"))])


@case("param-n-estimators-zero", "parameters", "--n-estimators 0 for Isolation Forest", refused("n_estimators"))
def _(ctx):
    data = ctx.train()
    return Plan(["fit", str(data), "--out", str(ctx.path("m")), "--method", "iforest", "--n-estimators", "0"],
                after=[absent(ctx.path("m"))])


@case("param-label-column-feature", "labels", "--label-column names a feature column of real numbers",
      refused("other than -1"))
def _(ctx):
    return refused_fit(ctx, ctx.train(), "--label-column", "a")


@case("data-only-label-column", "data file", "a table whose only column is the label", refused("feature"))
def _(ctx):
    return refused_fit(ctx, ctx.table(training_frame()[["label"]]))


@case("data-duplicate-columns", "data file", "a CSV header naming a column twice", refused("'a'", "more than once"))
def _(ctx):
    return refused_fit(ctx, ctx.text("a,a,b,label\n1,2,3,0\n4,5,6,0\n7,8,9,0\n1,1,1,0\n", "dup.csv"))


@case("model-dir-empty", "model files", "deepsad info of an empty folder", refused("missing"))
def _(ctx):
    folder = ctx.path("model")
    folder.mkdir()
    return Plan(["info", str(folder)])


@case("evaluate-nan-truth", "evaluation", "an empty cell in the ground-truth column", refused("y"))
def _(ctx):
    frame = evaluation_frame().astype({"y": float})
    frame.loc[12, "y"] = np.nan
    return Plan(evaluate(ctx, ctx.table(frame), "--label-column", "y"))


@case("no-command", "parameters", "deepsad with no command", refused("COMMAND", usage=True))
def _(ctx):
    return Plan([])


@case("data-sample-indices-suffix", "datasets", "data sample --indices not ending in .npz", refused(".npz"))
def _(ctx):
    return Plan(["data", "sample", "cardio", "--data-root", str(ctx.tmp), "--gamma-l", "0.01", "--indices",
                 str(ctx.path("out.txt"))], after=[absent(ctx.path("out.txt"))])


@case("fit-symlink-loop", "data file", "a data file that is a dangling symbolic link", refused("not found"))
def _(ctx):
    link = ctx.path("data.csv")
    link.symlink_to(ctx.path("gone.csv"))
    return Plan(fit_fast(ctx, link), after=[absent(ctx.path("m"))])


# ----------------------------------------------------------------------------- running a case


@contextlib.contextmanager
def _captured():
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        yield out, err


@contextlib.contextmanager
def _patched(patches: list[tuple[Any, str, Any]]):
    saved = [(obj, name, getattr(obj, name)) for obj, name, _ in patches]
    try:
        for obj, name, value in patches:
            setattr(obj, name, value)
        yield
    finally:
        for obj, name, value in reversed(saved):
            setattr(obj, name, value)


def _run_cli(argv: Sequence[str]) -> Process:
    from deepsad.cli import main

    with _captured() as (out, err):
        try:
            status = main(list(argv))
        except SystemExit as exit_:  # argparse
            status = exit_.code if isinstance(exit_.code, int) else 1
        except BaseException:  # noqa: BLE001 - a traceback is the defect to report
            err.write(traceback.format_exc())
            status = None
    return Process(status, out.getvalue(), err.getvalue())


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0]


def run_case(case: Case, tmp: Path, shared: Shared) -> Observed:
    """Build the case in ``tmp``, run it and compare with its expectation."""
    problems: list[str] = []
    ctx = Ctx(tmp, shared)
    plan = case.setup(ctx)
    expect = case.expect
    with warnings.catch_warnings(record=True) as caught, _patched(plan.patches):
        warnings.simplefilter("always")
        if callable(plan.run):
            try:
                result = plan.run()
                error = None
            except Exception as raised:  # noqa: BLE001
                result, error = None, raised
        else:
            result, error = _run_cli(plan.run), None
    if isinstance(result, Process):
        summary = _check_process(result, expect, problems)
    elif error is not None:
        summary = f"{type(error).__name__}: {_first_line(str(error))}"
        if expect.kind != "raises":
            problems.append(f"unexpected exception {summary}")
        else:
            if not isinstance(error, expect.exception):
                problems.append(f"expected {expect.exception.__name__}, got {type(error).__name__}")
            problems.extend(f"message lacks {w!r}" for w in expect.words if w not in str(error))
    else:
        relevant = [w for w in caught if expect.exception is not None and issubclass(w.category, expect.exception)]
        if expect.kind == "warns":
            hits = [w for w in relevant if all(word in str(w.message) for word in expect.words)]
            summary = (f"warns {hits[0].category.__name__}: {_first_line(str(hits[0].message))}" if hits
                       else "finished without the warning")
            if not hits:
                problems.append(f"no {expect.exception.__name__} with {expect.words}")
        else:
            summary = "finished without error"
            problems.append(f"expected {expect.describe()}")
    for check in plan.after:
        try:
            check()
        except AssertionError as lost:
            problems.append(f"lost: {lost}")
    checks = [getattr(check, "label", "as before") for check in plan.after]
    return Observed(summary, not problems, problems, checks)


def _check_process(result: Process, expect: Expect, problems: list[str]) -> str:
    lines = [line for line in result.err.strip().splitlines() if line.strip()]
    if result.status is None:
        problems.append("traceback: " + (lines[-1] if lines else "?"))
        return "traceback: " + (lines[-1] if lines else "?")
    last = lines[-1] if lines else ""
    if "Traceback" in result.err:
        problems.append("a traceback on stderr")
    if result.status != expect.status:
        problems.append(f"exit {result.status}, expected {expect.status}")
    if expect.status == 0:
        shown = _first_line(result.out)
        problems.extend(f"output lacks {w!r}" for w in expect.words if w not in result.out)
        return f"exit 0: {shown}"
    if expect.status == 2:
        error_lines = [line for line in lines if ": error:" in line]
        if len(error_lines) != 1 or not last.startswith("deepsad") or ": error:" not in last:
            problems.append(f"not one error line: {lines[-3:]}")
        elif not expect.usage and len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines: {lines[:3]}")
    problems.extend(f"error line lacks {w!r}" for w in expect.words if w not in last)
    return f"exit {result.status}: {last}" if last else f"exit {result.status}"


__all__ = ["CASES", "CATEGORIES", "Case", "Ctx", "Observed", "Shared", "run_case"]
