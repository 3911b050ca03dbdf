"""Calibration grids: policies x verifiers x methods x N x beam widths on one dataset.

A grid comes from a TOML file (`ttsplan calibrate --grid GRID.toml`), from flags, or both
(flags win). `check_grid` validates everything before any model loads: unknown keys, models,
verifiers, methods, aggregations, N lists, beam widths (M > N, N not divisible by M).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from planner.core import checks
from planner.core.datasets import dataset_name, load_dataset, stratified
from planner.core.errors import UserError
from planner.core.files import read_bounded
from planner.core.stopping import parse_rule
from planner.core.vocab import AGGREGATIONS, ENGINES, METHODS, TREE_METHODS
from planner.executor.factory import check_model, check_verifier

MAX_GRID_BYTES = 1_000_000
SAMPLE_METHODS = ("majority", "best_of_n")  # replayed from one run at the largest N


@dataclass(frozen=True)
class Grid:
    """Everything one calibration run measures. See README "Calibrate" for the TOML form."""

    name: str = "calibration"
    dataset: str = "arith:per_level=20"
    limit: int | None = None  # first `limit` problems (after `stratify`)
    stratify: int | None = None  # pick this many problems spread evenly over levels
    policies: tuple[str, ...] = ()
    verifiers: tuple[str, ...] = ("arith-check",)
    methods: tuple[str, ...] = ("cot", "majority", "best_of_n", "beam", "dvts")
    aggregations: tuple[str, ...] = ("last", "min", "mean")  # Best-of-N, replayed from one scoring
    selections: tuple[str, ...] = ("max", "vote")  # Best-of-N by score / score-weighted vote
    n: tuple[int, ...] = (1, 2, 4, 8, 16)  # majority and Best-of-N
    tree_n: tuple[int, ...] | None = (4, 8, 16)  # beam and DVTS (None: the same as n)
    beam_widths: tuple[int, ...] = (4,)
    tree_aggregation: str = "last"  # how beam/DVTS score a partial solution
    tree_verifiers: tuple[str, ...] | None = None  # verifiers for beam/DVTS (None: all of `verifiers`)
    difficulty_samples: int = 8  # K samples per problem for pass@1 (the first K of the sampling run)
    quantile_levels: bool = False  # also five quantile levels of pass@1 (Snell et al.)
    engine: str = "auto"
    seed: int = 0
    # None: each policy's own settings (planner.core.vocab.sampling_defaults: the paper's
    # T = 0.7, top_p 1.0, 8,192 tokens, or its family's, e.g. DeepSeek-R1-distilled T = 0.6)
    temperature: float | None = None
    top_p: float | None = None
    max_steps: int = 40
    max_step_tokens: int = 2048
    max_total_tokens: int | None = None
    batch_size: int = 16  # problems per batch (a batch is the unit of work and of resume)
    # early-stopping rules replayed on the sampling run in its recorded order, each n the cap
    # (rows with `stop` and `samples_used`; calibration.replay, as `ttsplan import persample --stop`)
    stops: tuple[str, ...] = ()
    # majority and Best-of-N past the sampled N: rows at N = 2^j above max(n) up to n_max from
    # the per-problem model fitted on the sampling run (basis "extrapolated"); 0: none
    n_max: int = 256

    def to_dict(self) -> dict:
        d = asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    # ------------------------------------------------------------ derived
    @property
    def sample_n(self) -> int:
        """Samples per problem in the one sampling run: the largest N, at least K."""
        wanted = [max(self.n)] if any(m in SAMPLE_METHODS for m in self.methods) else []
        return max([*wanted, self.difficulty_samples])

    @property
    def extrapolated_n(self) -> tuple[int, ...]:
        """N values the derived profile extrapolates to (powers of two above the sampled N)."""
        if not any(m in SAMPLE_METHODS for m in self.methods):
            return ()
        top = max(self.n)
        return tuple(2**j for j in range(1, 11) if top < 2**j <= self.n_max)

    @property
    def tree_ns(self) -> tuple[int, ...]:
        return self.tree_n if self.tree_n is not None else self.n

    @property
    def tree_verifier_names(self) -> tuple[str, ...]:
        return self.verifiers if self.tree_verifiers is None else self.tree_verifiers

    def identity(self) -> dict:
        """The fields that fix every step's inputs: a run may resume under a grid that differs only
        in what it derives or adds (methods, verifiers, aggregations, N lists, beam widths, stops)."""
        d = self.to_dict()
        keep = (
            "dataset",
            "limit",
            "stratify",
            "seed",
            "temperature",
            "top_p",
            "max_steps",
            "max_step_tokens",
            "max_total_tokens",
            "batch_size",
            "engine",
            "tree_aggregation",
        )
        return {**{k: d[k] for k in keep}, "sample_n": self.sample_n}

    def verifier_methods(self) -> list[str]:
        return [m for m in self.methods if m in ("best_of_n", *TREE_METHODS)]


LIST_FIELDS = {
    "policies",
    "verifiers",
    "tree_verifiers",
    "methods",
    "aggregations",
    "selections",
    "n",
    "tree_n",
    "beam_widths",
    "stops",
}
INT_FIELDS = {
    "n_max",
    "limit",
    "stratify",
    "difficulty_samples",
    "seed",
    "max_steps",
    "max_step_tokens",
    "max_total_tokens",
    "batch_size",
}
KEYS = {f.name for f in fields(Grid)}
# The tables a grid file may have, and the keys each may hold.
TABLES = {"sampling": {"temperature", "top_p", "max_steps", "max_step_tokens", "max_total_tokens", "seed"}}
# Largest value of each integer key.
HIGH = {
    "n": checks.MAX_N,
    "tree_n": checks.MAX_N,
    "beam_widths": checks.MAX_N,
    "difficulty_samples": checks.MAX_N,
    "n_max": 1024,  # the per-problem model's N_MAX
    "limit": checks.MAX_PROBLEMS,
    "stratify": checks.MAX_PROBLEMS,
    "batch_size": checks.MAX_PROBLEMS,
    "seed": checks.MAX_SEED,
    "max_steps": checks.MAX_STEPS,
    "max_step_tokens": checks.MAX_TOKENS,
    "max_total_tokens": checks.MAX_TOKENS,
}
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # a grid name is a folder name, never a path


def _where(source: str, key: str) -> str:
    return f"{source}: {key}"


def _int(value: object, where: str, key: str) -> int:
    return checks.integer(value, where, 0 if key in ("seed", "n_max") else 1, HIGH[key])


def _rule(text: str, where: str) -> str:
    """A stopping rule as written canonically ("beta:0.95", "esc:4"); UserError naming `where`."""
    try:
        return str(parse_rule(text))
    except UserError as exc:
        raise UserError(f"{where}: {str(exc).removeprefix('stop: ')}") from None


def _coerce(key: str, value: object, source: str) -> object:
    where = _where(source, key)
    if key in LIST_FIELDS:
        if isinstance(value, (str, int)) and not isinstance(value, bool):
            value = [value]
        if key == "stops" and isinstance(value, (list, tuple)) and not value:
            return ()  # no early-stopping rows
        if not isinstance(value, (list, tuple)) or not value:
            raise UserError(f"{where}: must be a non-empty list, got {value!r}")
        if key in ("n", "tree_n", "beam_widths"):
            items = tuple(_int(v, where, key) for v in value)
            if len(set(items)) != len(items):
                raise UserError(f"{where}: repeated value in {list(items)}")
            return tuple(sorted(items))
        if not all(isinstance(v, str) and v.strip() for v in value):
            raise UserError(f"{where}: must be a list of names, got {value!r}")
        items = tuple(v.strip() for v in value)
        if key == "stops":
            items = tuple(_rule(v, where) for v in items)
        if len(set(items)) != len(items):
            raise UserError(f"{where}: repeated value in {list(items)}")
        return items
    if key in INT_FIELDS:
        if value is None and key in ("limit", "stratify", "max_total_tokens"):
            return None
        return _int(value, where, key)
    if key in ("temperature", "top_p"):
        if value is None:  # the policy family's setting (vocab.FAMILY_SAMPLING)
            return None
        if key == "temperature":
            return checks.number(value, where, 0, 2)
        return checks.number(value, where, 0, 1, above=True)
    if key == "quantile_levels":
        if not isinstance(value, bool):
            raise UserError(f"{where}: must be true or false, got {value!r}")
        return value
    if not isinstance(value, str) or not value.strip():
        raise UserError(f"{where}: must be a non-empty string, got {checks.short(value)}")
    if key == "name" and not NAME_RE.fullmatch(value.strip()):
        raise UserError(f"{where}: must be a folder name (letters, digits, . _ -), got {checks.short(value)}")
    if key == "dataset":
        try:
            return dataset_name(value)
        except UserError as exc:
            raise UserError(f"{source}: {exc}") from None
    return value.strip()


def grid_from_dict(obj: dict, source: str = "grid", base: Grid | None = None) -> Grid:
    """A Grid from a mapping (TOML tables are flattened: [sampling] keys sit beside the others)."""
    flat: dict = {}
    for key, value in obj.items():
        if isinstance(value, dict):
            if key not in TABLES:
                raise UserError(
                    f"{source}: unknown table [{key}]; known: {', '.join(f'[{t}]' for t in TABLES)}"
                )
            for sub, subvalue in value.items():
                if sub not in TABLES[key]:
                    raise UserError(
                        f"{source}: unknown key '{key}.{sub}'; known: {', '.join(sorted(TABLES[key]))}"
                    )
                if sub in flat:
                    raise UserError(f"{source}: key '{sub}' given twice")
                flat[sub] = subvalue
        elif key not in KEYS:
            raise UserError(f"{source}: unknown key '{key}'; known: {', '.join(sorted(KEYS))}")
        else:
            if key in flat:
                raise UserError(f"{source}: key '{key}' given twice")
            flat[key] = value
    changes = {k: _coerce(k, v, source) for k, v in flat.items()}
    return replace(base or Grid(), **changes)


def load_grid(path: str | Path) -> Grid:
    path = Path(path)
    try:
        obj = tomllib.loads(read_bounded(path, MAX_GRID_BYTES, "grid file").decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise UserError(f"grid file {path}: not valid TOML ({str(exc).splitlines()[0]})") from None
    return grid_from_dict(obj, source=f"grid file {path}")


# ---------------------------------------------------------------- checks


def _check_model(name: str, source: str) -> None:
    try:
        check_model(name, "policy")
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None


def _check_verifier(name: str, source: str) -> None:
    try:
        check_verifier(name)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None


def check_grid(grid: Grid, source: str = "grid", check_models: bool = True) -> Grid:
    """Raise a one-line UserError for the first problem; nothing is loaded."""
    if not grid.policies:
        raise UserError(f"{source}: policies: give at least one policy model")
    for m in grid.methods:
        if m not in METHODS:
            raise UserError(f"{source}: methods: unknown method {m!r}; choose from {', '.join(METHODS)}")
    for a in (*grid.aggregations, grid.tree_aggregation):
        if a not in AGGREGATIONS:
            raise UserError(f"{source}: aggregation {a!r} unknown; choose from {', '.join(AGGREGATIONS)}")
    for s in grid.selections:
        if s not in ("max", "vote"):
            raise UserError(f"{source}: selections: unknown {s!r}; choose max or vote")
    if grid.engine not in ENGINES:
        raise UserError(f"{source}: engine: unknown {grid.engine!r}; choose from {', '.join(ENGINES)}")
    if grid.temperature is not None and not 0 <= grid.temperature <= 2:
        raise UserError(f"{source}: temperature: must be in [0, 2], got {grid.temperature}")
    if grid.temperature == 0 and any(m != "cot" for m in grid.methods):
        raise UserError(f"{source}: temperature: 0 gives identical samples; sampling methods need > 0")
    if grid.top_p is not None and not 0 < grid.top_p <= 1:
        raise UserError(f"{source}: top_p: must be in (0, 1], got {grid.top_p}")
    for v in grid.tree_verifier_names:
        if v not in grid.verifiers:
            raise UserError(
                f"{source}: tree_verifiers: {v!r} is not one of verifiers ({', '.join(grid.verifiers)})"
            )
    if grid.verifier_methods() and not grid.verifiers:
        raise UserError(f"{source}: verifiers: {grid.verifier_methods()[0]} needs at least one verifier")
    if any(m in TREE_METHODS for m in grid.methods):
        for m in grid.beam_widths:
            for n in grid.tree_ns:
                if m > n:
                    raise UserError(
                        f"{source}: beam width M={m} is larger than N={n}; beam/dvts need M <= N "
                        f"(set tree_n to the N values for beam and dvts)"
                    )
                if n % m:
                    raise UserError(f"{source}: N={n} is not divisible by beam width M={m}")
    if grid.stops and not any(m in SAMPLE_METHODS for m in grid.methods):
        raise UserError(f"{source}: stops: early stopping needs majority or best_of_n in methods")
    if grid.stratify is not None and grid.limit is not None and grid.limit > grid.stratify:
        raise UserError(f"{source}: limit {grid.limit} is larger than stratify {grid.stratify}")
    problems(grid, source)  # dataset name, stratify, limit
    for v in grid.verifiers:
        _check_verifier(v, source)
    if check_models and grid.engine != "openai":  # a remote server's models are checked when it is called
        for p in grid.policies:
            _check_model(p, source)
    return grid


def problems(grid: Grid, source: str = "grid") -> list:
    """The grid's problems: the dataset, stratified by level if asked, then cut to `limit`."""
    try:
        items = load_dataset(grid.dataset)
        if grid.stratify is not None:
            items = stratified(items, grid.stratify, seed=grid.seed)
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    return items[: grid.limit] if grid.limit else items


@dataclass
class Flags:
    """Command-line values that override the grid file (None / empty: not given)."""

    values: dict = field(default_factory=dict)

    def apply(self, grid: Grid) -> Grid:
        given = {k: v for k, v in self.values.items() if v is not None and v != [] and v != ()}
        return grid_from_dict(given, source="flags", base=grid) if given else grid
