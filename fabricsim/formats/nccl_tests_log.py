"""nccl-tests logs in: the text table a ``*_perf`` binary prints, its ``-J`` JSON file, and
``fabricsim sweep``'s own table.

Text (NVIDIA/nccl-tests src/util.cu, writeBenchmarkLine*): comment lines start with ``#``; the
header names the test (``# Collective test starting: all_reduce_perf``, recent versions) and lists
the ranks (``#  Rank  0 Group  0 Pid ... device 0 [...] NVIDIA H100``); each data row is
``size count type redop root`` then an out-of-place group ``time algbw busbw #wrong`` and an in-place
group of the same four (``#wrong`` may be ``N/A``; older versions have no ``root`` column, or no
``redop``; ``-I`` adds ``i_min i_max i_p99 i_cv%`` to each group, ``-T`` a timestamp to each row). The footer is ``# Out of bounds values`` and ``# Avg bus bandwidth``. A file may hold several
runs one after another (several binaries, or one binary run twice): each header or footer closes
the run before it. Lines prefixed by mpirun's ``[1,0]<stdout>:`` are read as the bare line.
fabricsim's own table (``fabricsim sweep``) has one block per ``# algorithm: NAME`` and ends each row
with the algorithm that ran.

JSON (``-J FILE``, src/util.cu): an object with ``args`` (argv, the binary first), ``config``
(``nthreads``, ``ngpus``, ``devices``: one per process) and ``results``: objects with ``size``,
``count``, ``type``, ``redop``, ``root``, ``out_of_place`` and ``in_place`` (each ``time`` or
``cpu_time``, ``alg_bw``, ``bus_bw``, ``nwrong``; a double that is not a number is the string
``"nan"``).

A row's time is its out-of-place time (the in-place time when only that was measured), as the first
group nccl-tests prints; the in-place time is kept beside it. Rows without a time (``nan``) are left
out.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from pathlib import Path

from fabricsim.config import ScenarioError

# nccl-tests' type names (src/common.cu test_typenames) -> fabricsim dtypes of the same element size
NCCL_DTYPES = {"int8": "int8", "uint8": "uint8", "int32": "int32", "uint32": "int32", "int64": "int64",
               "uint64": "int64", "half": "float16", "float": "float32", "double": "float64",
               "bfloat16": "bfloat16", "f8e4m3": "float8", "f8e5m2": "float8"}
REDOPS = ("sum", "prod", "max", "min", "avg")  # nccl-tests' -o reduction operations
# the binaries (src/*.cu) -> fabricsim ops
NCCL_OPS = {"all_reduce": "all_reduce", "all_gather": "all_gather", "reduce_scatter": "reduce_scatter",
            "broadcast": "broadcast", "reduce": "reduce", "alltoall": "all_to_all", "gather": "gather",
            "sendrecv": "send_recv"}

_MPI_PREFIX = re.compile(r"^\[\d+,\d+\]<std(?:out|err)>:")
_RANK_LINE = re.compile(r"^#?\s*Rank\s+(\d+)\s")
_TEST_NAME = re.compile(r"Collective test (?:starting|concluded): (\S+)")
_ALGORITHM_LINE = re.compile(r"^#\s*algorithm:\s*(\S+)")
GROUP_COLUMNS = 4  # time algbw busbw #wrong
PER_ITERATION_GROUP_COLUMNS = 8  # and i_min i_max i_p99 i_cv% (-I 1, nccl-tests 2.18+)


@dataclass(frozen=True, slots=True)
class MeasuredRow:
    size_bytes: int
    count: int
    dtype: str  # fabricsim's name of the element type
    redop: str
    root: int
    time_us: float  # out-of-place, or in-place when only that was measured
    algbw_GBps: float
    busbw_GBps: float
    in_place_time_us: float | None = None


@dataclass(frozen=True, slots=True)
class MeasuredRun:
    source: str  # the file, and "#k" for the k-th run of a file that holds several
    op: str | None  # fabricsim's op, when the log names its binary
    ranks: int | None  # when the log lists its ranks
    rows: tuple[MeasuredRow, ...]
    algorithm: str | None = None  # fabricsim's own table: the block's algorithm

    def sizes_bytes(self) -> list[int]:
        return [row.size_bytes for row in self.rows]


def read_log(path: str | Path) -> list[MeasuredRun]:
    """The runs of an nccl-tests text or JSON log (or a fabricsim sweep table), in file order;
    ScenarioError with one line when the file cannot be read or holds no result rows."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise ScenarioError(f"{path}: cannot read the log ({error.strerror})") from None
    except UnicodeDecodeError:
        raise ScenarioError(f"{path}: expected an nccl-tests log in UTF-8 text, got bytes that are not") from None
    runs = _read_json(text, path) if text.lstrip().startswith("{") else _read_text(text, path)
    if not runs:
        raise ScenarioError(f"{path}: expected nccl-tests result rows (size count type redop root time algbw "
                            "busbw ...), found none")
    return runs


def op_of_program(program: str) -> str | None:
    """fabricsim's op of an nccl-tests binary (``.../all_reduce_perf_mpi`` -> all_reduce), or None."""
    name = Path(program).name
    name = re.sub(r"_perf(_mpi)?$", "", name)
    return NCCL_OPS.get(name)


def nccl_tests_program(op: str) -> str:
    """The nccl-tests binary that runs fabricsim's ``op`` (all_to_all -> alltoall_perf)."""
    return next(name for name, known in NCCL_OPS.items() if known == op) + "_perf"


# --- text -------------------------------------------------------------------------------------

class _TextRuns:
    """Runs as they are read: each header or footer closes the run before it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.runs: list[MeasuredRun] = []
        self._new()

    def _new(self, op: str | None = None, algorithm: str | None = None) -> None:
        self.op, self.algorithm, self.ranks, self.rows = op, algorithm, set(), []
        self.group = GROUP_COLUMNS  # numbers per placement group: 8 with per-iteration columns (-I)

    def close(self) -> None:
        """End the run being read (if it has rows); what follows belongs to the next."""
        if self.rows:
            self.runs.append(MeasuredRun(str(self.path), self.op, len(self.ranks) or None, tuple(self.rows),
                                         self.algorithm))
            self._new()

    def start(self, op: str | None = None, algorithm: str | None = None) -> None:
        self.close()
        self._new(op, algorithm)


def _read_text(text: str, path: Path) -> list[MeasuredRun]:
    runs = _TextRuns(path)
    for raw in text.splitlines():
        line = _MPI_PREFIX.sub("", raw).strip()
        if not line:
            continue
        if (name := _TEST_NAME.search(line)) and "starting" in line:
            runs.start(op=op_of_program(name.group(1)))
        elif (algorithm := _ALGORITHM_LINE.match(line)):
            runs.start(algorithm=algorithm.group(1))
        elif "nThread" in line and "minBytes" in line:
            runs.close()
        elif "Avg bus bandwidth" in line:
            runs.close()
        elif line.startswith("#") and "i_min" in line:
            runs.group = PER_ITERATION_GROUP_COLUMNS
        elif (rank := _RANK_LINE.match(line)):
            runs.close()
            runs.ranks.add(int(rank.group(1)))
        elif not line.startswith("#"):
            row = _text_row(line.split(), runs.group)
            if row is not None and math.isfinite(row.time_us):
                runs.rows.append(row)
    runs.close()
    if len(runs.runs) > 1:
        return [MeasuredRun(f"{run.source}#{index}", run.op, run.ranks, run.rows, run.algorithm)
                for index, run in enumerate(runs.runs, 1)]
    return runs.runs


def _number(token: str) -> float | None:
    if token == "N/A":
        return math.nan
    try:
        return float(token)
    except ValueError:
        return None


def _text_row(tokens: list[str], group: int = GROUP_COLUMNS) -> MeasuredRow | None:
    """A data row, or None for any other line (NCCL's own INFO lines, shell prompts); ``group`` numbers
    per placement (time algbw busbw #wrong, and i_min i_max i_p99 i_cv% with -I)."""
    if len(tokens) < 6 or not tokens[0].isdigit() or _number(tokens[1]) is None:
        return None
    words = []  # type, and redop when printed
    rest = tokens[2:]
    while rest and _number(rest[0]) is None:
        words.append(rest.pop(0))
    if not words or words[0] not in NCCL_DTYPES or len(words) > 2:
        return None
    trailing = 0  # fabricsim's table ends with the algorithm that ran; -T adds a date and a time
    while trailing < len(rest) and _number(rest[-1 - trailing]) is None:
        trailing += 1
    numbers = [_number(token) for token in rest[:len(rest) - trailing]]
    if any(value is None for value in numbers):
        return None
    if len(numbers) % group == 1:  # root, then the placement groups
        root, groups = int(numbers[0]), [numbers[k:k + 3] for k in range(1, len(numbers), group)]
    elif trailing and len(numbers) == 4:  # fabricsim: root time algbw busbw
        root, groups = int(numbers[0]), [numbers[1:4]]
    elif len(numbers) % group == 0 and numbers:  # older nccl-tests: no root column
        root, groups = -1, [numbers[k:k + 3] for k in range(0, len(numbers), group)]
    else:
        return None
    time_us, algbw, busbw = groups[0]
    in_place_us = groups[1][0] if len(groups) > 1 else None
    return MeasuredRow(int(tokens[0]), int(float(tokens[1])), NCCL_DTYPES[words[0]],
                       words[1] if len(words) > 1 else "none", root, time_us, algbw, busbw, in_place_us)


# --- JSON -------------------------------------------------------------------------------------

def _read_json(text: str, path: Path) -> list[MeasuredRun]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise ScenarioError(f"{path}: malformed JSON at line {error.lineno}, column {error.colno}: "
                            f"{error.msg}") from None
    results = data.get("results") if isinstance(data, dict) else None
    if not isinstance(results, list):
        raise ScenarioError(f"{path}: results: expected the list of an nccl-tests -J file")
    args = data.get("args") or [""]
    config = data.get("config") or {}
    devices = config.get("devices") or []
    ranks = len(devices) * int(config.get("nthreads", 1)) * int(config.get("ngpus", 1)) or None
    rows = []
    for index, result in enumerate(results):
        try:
            row = _json_row(result)
        except (KeyError, TypeError, ValueError) as error:
            raise ScenarioError(f"{path}: results.{index}: expected size, count, type, redop, root and "
                                f"out_of_place or in_place timings ({type(error).__name__}: {error})") from None
        if math.isfinite(row.time_us):
            rows.append(row)
    return [MeasuredRun(str(path), op_of_program(str(args[0])), ranks, tuple(rows))] if rows else []


def _json_time(group: dict | None) -> tuple[float, float, float] | None:
    if not group:
        return None
    time_us = group["time"] if "time" in group else group["cpu_time"]
    return float(time_us), float(group["alg_bw"]), float(group["bus_bw"])  # float("nan") reads "nan"


def _json_row(result: dict) -> MeasuredRow:
    dtype = result["type"]
    if dtype not in NCCL_DTYPES:
        raise ValueError(f"unknown type {dtype!r}")
    out_of_place, in_place = _json_time(result.get("out_of_place")), _json_time(result.get("in_place"))
    first = out_of_place or in_place
    if first is None:
        raise KeyError("out_of_place")
    return MeasuredRow(int(result["size"]), int(result["count"]), NCCL_DTYPES[dtype], str(result["redop"]).strip(),
                       int(str(result["root"]).strip()), *first,
                       in_place_time_us=in_place[0] if out_of_place and in_place else None)
