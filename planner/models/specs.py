"""Model specs: architecture numbers of the policies and reward models the planner knows.

The registry (planner/data/models/registry.json) holds the published config.json fields of each
model; parameter counts are computed from them here, by the same code that reads a user's
config.json (`from_hf_config`).
"""

from __future__ import annotations

import difflib
import json
import re
from dataclasses import asdict, dataclass, fields, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path

from planner.core import checks
from planner.core.errors import UserError
from planner.core.files import read_bounded

ROLES = ("policy", "prm", "orm")


@dataclass(frozen=True)
class ModelSpec:
    """One model. `params` is the real count; `nominal_params` the size in its name.

    `head_size` is set when config.json gives a head_dim other than hidden/heads (Gemma 3,
    DeepSeek's MLA). `head` is "lm" when the model computes vocabulary logits, "value" for a
    small scoring head (Skywork, Qwen2.5-Math-PRM); with a value head the embedding table is
    only a lookup.
    """

    name: str
    params: float
    nominal_params: float
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    vocab: int
    context: int
    family: str
    role: str
    pretraining_tokens: float | None = None
    intermediate: int | None = None
    active_params: float | None = None
    source: str = ""
    head_size: int | None = None
    tied_embeddings: bool = False
    head: str = "lm"

    def __post_init__(self) -> None:
        if self.role not in ROLES:
            raise UserError(f"model role must be one of {', '.join(ROLES)}, got {self.role!r}")
        for key in ("params", "nominal_params", "layers", "hidden", "heads", "kv_heads", "vocab"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise UserError(f"model {self.name!r}: {key} must be a positive number, got {value!r}")

    @property
    def head_dim(self) -> int:
        return self.head_size or self.hidden // self.heads

    @property
    def short_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    @property
    def is_moe(self) -> bool:
        return self.active_params is not None

    @property
    def matmul_params(self) -> float:
        """Parameters used in a matrix multiply per token (active ones for MoE).

        Convention of the cost model: everything except the input-embedding lookup. The LM head
        counts (it is a matmul), so a tied table counts once. Norm weights and biases are
        included; they are under 0.1% of any registry model.
        """
        base = self.active_params if self.active_params is not None else self.params
        lookup = 0 if (self.tied_embeddings and self.head == "lm") else self.vocab * self.hidden
        return base - lookup

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> ModelSpec:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise UserError(f"unknown model spec field(s): {', '.join(unknown)}")
        try:
            return cls(**data)
        except TypeError as exc:
            raise UserError(f"bad model spec: {exc}") from None


# ---------------------------------------------------------------- parameter counting


# Largest size field a config.json may give (hidden size, layers, vocabulary, experts, ...) and
# largest parameter count: beyond them the figures are not a model's.
MAX_CONFIG_SIZE = 10_000_000
MAX_PARAMS = 1e15
MAX_CONFIG_BYTES = 10_000_000


def _int(cfg: dict, key: str, where: str, default: int | None = None) -> int:
    value = cfg.get(key, default)
    if key not in cfg and default is None:
        raise UserError(f"{where}: config lacks {key}")
    return checks.integer(value, f"{where}: {key}", 1, MAX_CONFIG_SIZE)


def _opt(cfg: dict, key: str, where: str) -> int | None:
    """An optional size field: None when absent, null or 0."""
    return _int(cfg, key, where) if cfg.get(key) not in (None, 0) else None


def _head_kind(arch: str) -> str:
    if arch.endswith(("ForCausalLM", "ForConditionalGeneration")) or not arch:
        return "lm"
    return "value"


def _head_params(arch: str, hidden: int, cfg: dict) -> int:
    """Parameters of a non-LM output head, by architecture (bias where the model has one)."""
    if arch.endswith("ForPrmModel"):  # Skywork: v_head = Linear(hidden, 1)
        return hidden + 1
    if arch.endswith("ForProcessRewardModel"):  # Qwen2.5-Math-PRM: Linear(h,h) ReLU Linear(h,2)
        return hidden * hidden + hidden + 2 * hidden + 2
    if arch.endswith("ForRewardModel"):  # Qwen2.5-Math-RM: Linear(h,h) ReLU Linear(h,1)
        return hidden * hidden + hidden + hidden + 1
    id2label = cfg.get("id2label")
    labels = (
        len(id2label) if isinstance(id2label, dict) and id2label else _int(cfg, "num_labels", "config", 2)
    )
    return hidden * labels  # *ForSequenceClassification / *ForTokenClassification: no bias


def _sparse_layers(cfg: dict, layers: int, dense_first: int, where: str) -> int:
    """How many layers hold experts: all but the first `dense_first` (DeepSeek's
    first_k_dense_replace), keeping only every decoder_sparse_step-th layer and dropping those
    in mlp_only_layers (Qwen-MoE: layer i is sparse when (i + 1) % step == 0 and i is not listed).
    The other layers have a dense MLP of intermediate_size.
    """
    step = _opt(cfg, "decoder_sparse_step", where) or 1
    only = cfg.get("mlp_only_layers") or []
    if not isinstance(only, list):
        raise UserError(f"{where}: mlp_only_layers must be a list of layer indices")
    dense = {checks.integer(i, f"{where}: mlp_only_layers", 0, layers - 1) for i in only}
    sparse = layers // step - dense_first // step  # i in [dense_first, layers), (i + 1) % step == 0
    return sparse - sum(1 for i in dense if i >= dense_first and (i + 1) % step == 0)


def count_params(cfg: dict, where: str = "config") -> dict:
    """Count parameters of a decoder-only transformer from its config.json fields.

    Returns params, active_params (None unless MoE), head_size and tied. Covers dense
    Llama/Qwen2/Mistral/Gemma 3 layouts (GQA attention, gated MLP, RMSNorm), DeepSeek-V3
    (MLA attention, shared + routed experts), gpt-oss, Qwen3-MoE (routed experts only) and
    Qwen2-MoE (routed experts and one gated shared expert of shared_expert_intermediate_size).
    """
    h = _int(cfg, "hidden_size", where)
    layers = _int(cfg, "num_hidden_layers", where)
    heads = _int(cfg, "num_attention_heads", where)
    kv = _int(cfg, "num_key_value_heads", where, heads)
    vocab = _int(cfg, "vocab_size", where)
    model_type = str(cfg.get("model_type", ""))
    archs = cfg.get("architectures")
    arch = archs[0] if isinstance(archs, list) and archs and isinstance(archs[0], str) else ""
    gemma = model_type.startswith("gemma")
    tied = bool(cfg.get("tie_word_embeddings", gemma))  # Gemma configs tie by default
    head_kind = _head_kind(arch)

    embed = vocab * h
    out_head = (0 if tied else embed) if head_kind == "lm" else _head_params(arch, h, cfg)
    norms_per_layer = 4 * h if model_type.startswith("gemma3") else 2 * h

    if "kv_lora_rank" in cfg:  # DeepSeek multi-head latent attention
        nope, rope = _int(cfg, "qk_nope_head_dim", where), _int(cfg, "qk_rope_head_dim", where)
        v_dim, kv_rank = _int(cfg, "v_head_dim", where), _int(cfg, "kv_lora_rank", where)
        q_rank = _opt(cfg, "q_lora_rank", where)
        qk = nope + rope
        q = h * q_rank + q_rank + q_rank * heads * qk if q_rank else h * heads * qk
        attn = q + h * (kv_rank + rope) + kv_rank + kv_rank * heads * (nope + v_dim) + heads * v_dim * h
        head_size = qk
    else:
        hd = _opt(cfg, "head_dim", where) or h // heads
        attn = h * heads * hd + 2 * h * kv * hd + heads * hd * h
        if cfg.get("attention_bias"):
            attn += heads * hd + 2 * kv * hd + h
        elif model_type in ("qwen2", "qwen2_moe"):  # Qwen2 has q, k, v biases and no o bias
            attn += heads * hd + 2 * kv * hd
        if model_type.startswith(("gemma3", "qwen3")):  # per-head q and k norms
            attn += 2 * hd
        head_size = hd if hd != h // heads else None

    inter = _int(cfg, "intermediate_size", where)
    dense_mlp = 3 * h * inter + (2 * inter + h if cfg.get("mlp_bias") else 0)
    mlp_total = mlp_active = dense_mlp * layers
    # Expert count: n_routed_experts (DeepSeek), num_local_experts (gpt-oss, Mixtral),
    # num_experts (Qwen3-MoE; 0 or null there means a dense model).
    if "n_routed_experts" in cfg or "num_local_experts" in cfg or _opt(cfg, "num_experts", where):
        key = "num_local_experts" if "num_local_experts" in cfg else "num_experts"
        experts = _opt(cfg, "n_routed_experts", where) or _int(cfg, key, where)
        per_tok = _int(cfg, "num_experts_per_tok", where)
        shared = _opt(cfg, "n_shared_experts", where) or 0
        expert = 3 * h * (_opt(cfg, "moe_intermediate_size", where) or inter)
        dense_layers = _opt(cfg, "first_k_dense_replace", where) or 0
        if dense_layers > layers or per_tok > experts:
            raise UserError(
                f"{where}: first_k_dense_replace or num_experts_per_tok is above its layer or expert count"
            )
        moe_layers = _sparse_layers(cfg, layers, dense_layers, where)
        dense_layers = layers - moe_layers
        router = h * experts + (experts if model_type == "deepseek_v3" else 0)
        # Qwen2-MoE: one always-on expert of its own width, scaled by a one-output gate
        own = _opt(cfg, "shared_expert_intermediate_size", where) or 0
        always = router + (3 * h * own + h if own else 0)  # per MoE layer, whichever experts are routed
        mlp_total = dense_layers * dense_mlp + moe_layers * ((experts + shared) * expert + always)
        mlp_active = dense_layers * dense_mlp + moe_layers * ((per_tok + shared) * expert + always)

    shared_part = embed + out_head + layers * (attn + norms_per_layer) + h
    if shared_part + mlp_total > MAX_PARAMS:
        raise UserError(
            f"{where}: the sizes give {shared_part + mlp_total:.3g} parameters, over {MAX_PARAMS:g}"
        )
    moe = mlp_total != mlp_active
    return {
        "params": shared_part + mlp_total,
        "active_params": shared_part + mlp_active if moe else None,
        "head_size": head_size,
        "tied": tied,
        "head": head_kind,
    }


def _nominal_from_name(name: str) -> float | None:
    """The size in a model name: "Qwen2.5-1.5B-Instruct" -> 1.5e9, "SmolLM2-135M" -> 1.35e8."""
    sizes = re.findall(r"(?<![\w.])(\d+(?:\.\d+)?)([bBmM])(?![a-zA-Z])", name.replace("_", "-"))
    if not sizes:
        return None
    number, unit = sizes[-1]
    return float(number) * (1e9 if unit in "bB" else 1e6)


def spec_from_config(
    cfg: dict,
    name: str,
    role: str = "policy",
    *,
    family: str | None = None,
    nominal_params: float | None = None,
    pretraining_tokens: float | None = None,
    source: str = "",
    where: str = "config",
) -> ModelSpec:
    """A ModelSpec from config.json fields, with the parameter count computed."""
    if not isinstance(cfg, dict):
        raise UserError(f"{where}: config.json must hold a JSON object")
    if "hidden_size" not in cfg and isinstance(cfg.get("text_config"), dict):
        cfg = {**cfg, **cfg["text_config"]}  # multimodal wrappers keep the LM under text_config
    counted = count_params(cfg, where)
    return ModelSpec(
        name=name,
        params=counted["params"],
        nominal_params=nominal_params or _nominal_from_name(name) or counted["params"],
        layers=cfg["num_hidden_layers"],
        hidden=cfg["hidden_size"],
        heads=cfg["num_attention_heads"],
        kv_heads=cfg.get("num_key_value_heads") or cfg["num_attention_heads"],
        vocab=cfg["vocab_size"],
        context=_opt(cfg, "max_position_embeddings", where) or 0,
        family=family or str(cfg.get("model_type", "unknown")),
        role=role,
        pretraining_tokens=pretraining_tokens,
        intermediate=cfg.get("intermediate_size"),
        active_params=counted["active_params"],
        source=source,
        head_size=counted["head_size"],
        tied_embeddings=counted["tied"],
        head=counted["head"],
    )


def from_hf_config(path: str | Path, role: str = "policy", name: str | None = None) -> ModelSpec:
    """Read a Hugging Face config.json (the file, or a folder holding one) into a ModelSpec."""
    path = Path(path)
    file = path / "config.json" if path.is_dir() else path
    if not file.exists():
        raise UserError(f"model_config: no config.json at {path}")
    try:
        cfg = json.loads(read_bounded(file, MAX_CONFIG_BYTES, "model_config").decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise UserError(f"model_config: cannot read {file}: {str(exc).splitlines()[0]}") from None
    if name is None:
        given = cfg.get("_name_or_path") if isinstance(cfg, dict) else None
        name = given if isinstance(given, str) and given else file.resolve().parent.name
    return spec_from_config(cfg, name, role, source=f"config.json at {file}", where=str(file))


# ---------------------------------------------------------------- registry


@lru_cache(maxsize=1)
def _registry() -> tuple[tuple[ModelSpec, ...], dict[str, ModelSpec]]:
    text = resources.files("planner").joinpath("data/models/registry.json").read_text(encoding="utf-8")
    specs: list[ModelSpec] = []
    index: dict[str, ModelSpec] = {}
    for entry in json.loads(text)["models"]:
        spec = spec_from_config(
            entry["config"],
            entry["name"],
            entry["role"],
            family=entry["family"],
            nominal_params=entry["nominal_params"],
            pretraining_tokens=entry["pretraining_tokens"],
            source=f"architecture: {entry['config_source']}; pre-training tokens: {entry['tokens_source']}",
        )
        specs.append(spec)
        for key in (spec.name, spec.short_name, *entry["aliases"]):
            index[key.lower()] = spec
    # "-Instruct" may be dropped where that names one model only ("qwen2.5-1.5b").
    stripped: dict[str, list[ModelSpec]] = {}
    for spec in specs:
        if spec.short_name.lower().endswith("-instruct"):
            stripped.setdefault(spec.short_name.lower().removesuffix("-instruct"), []).append(spec)
    for key, matches in stripped.items():
        if len(matches) == 1 and key not in index:
            index[key] = matches[0]
    return tuple(specs), index


def all_specs(role: str | None = None) -> list[ModelSpec]:
    """Every registry model, in registry order; only those of `role` when given."""
    if role is not None and role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}, got {role!r}")
    return [s for s in _registry()[0] if role is None or s.role == role]


# Verifiers that are not models: they cost no FLOPs (head "rule" zeroes the cost model).
CHECKERS = {"arith-check": "exact arithmetic step checker (planner.executor.verifiers.arith_check), no model"}
JUDGE_PREFIX = "lm-judge:"


def checker_spec(name: str) -> ModelSpec:
    """A placeholder spec for a rule-based verifier: family "rule", no parameters counted."""
    return ModelSpec(
        name=name,
        params=1.0,
        nominal_params=1.0,
        layers=1,
        hidden=1,
        heads=1,
        kv_heads=1,
        vocab=1,
        context=1,
        family="rule",
        role="prm",
        head="rule",
        source=CHECKERS[name],
    )


def judge_spec(model: str) -> ModelSpec:
    """A policy model used as an LM judge (planner.executor.verifiers.lm_judge): role prm."""
    base = resolve(model)
    if base.role != "policy":
        raise UserError(f"lm-judge needs a language model, {base.name} is a {base.role}")
    return replace(
        base,
        name=f"{JUDGE_PREFIX}{base.name}",
        role="prm",
        family="lm-judge",
        source=f"{base.name} scoring steps as a judge; {base.source}",
    )


def resolve(name: str) -> ModelSpec:
    """The registry spec for a hub id, short name or alias (case-insensitive).

    Verifiers that are not registry models resolve too: "arith-check" and "lm-judge:MODEL".
    """
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"model name must be a non-empty string, got {name!r}")
    specs, index = _registry()
    key = name.strip().lower()
    if key in index:
        return index[key]
    if key in CHECKERS:
        return checker_spec(key)
    if key.startswith(JUDGE_PREFIX):
        return judge_spec(name.strip()[len(JUDGE_PREFIX) :])
    close = difflib.get_close_matches(key, list(index), n=3, cutoff=0.5)
    names = list(dict.fromkeys(index[c].name for c in close))
    hint = f"; closest: {', '.join(names)}" if names else f"; known: {', '.join(s.short_name for s in specs)}"
    raise UserError(f"unknown model {name!r}{hint}")


def spec_or_none(name: str | None):
    """The cost-model spec of a model name or local folder, None when it is not known."""
    if not name:
        return None
    try:
        return resolve(name)
    except UserError:
        pass
    path = Path(name)
    if (path / "config.json").is_file():
        try:
            return from_hf_config(path, role="policy")
        except UserError:
            return None
    return None


def model_label(name: str) -> str:
    """The registry name of a model given by name or by a local folder named after it, else as given.

    A folder like /models/Qwen2.5-Math-PRM-7B becomes Qwen/Qwen2.5-Math-PRM-7B, so the regressor
    knows its size and family; an unknown model keeps its path.
    """
    for candidate in (name, Path(name).name):
        try:
            return resolve(candidate).name
        except UserError:
            continue
    return name


def prm_label(verifier: str, policy: str) -> str:
    """The PRM column of a profile: the plain "lm-judge" names the judge model (the policy)."""
    if verifier == "lm-judge":
        return f"lm-judge:{policy}"
    family, sep, rest = verifier.partition(":")
    return model_label(rest if sep and family != "lm-judge" else verifier)
