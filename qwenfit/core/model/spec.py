"""ModelSpec: the validated architecture of one Qwen3.5 / Qwen3-Next checkpoint.

A ModelSpec holds only what determines tensor shapes and runtime memory: layer types, dimensions,
experts, the MTP block and the vision tower. It is built by ``qwenfit.loaders.config`` from a
config.json (or a catalog entry) and validated here, so that every later computation can trust it.

Field names follow the Hugging Face config keys (``text_config.*`` / ``vision_config.*``), so an
error can name the key a user has to fix. Sources: transformers ``configuration_qwen3_5*.py`` and
``configuration_qwen3_next.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from qwenfit.core.model.kinds import FULL_ATTENTION, LAYER_TYPES, LINEAR_ATTENTION, ExpertLayout, Family
from qwenfit.errors import ConfigError

if TYPE_CHECKING:
    from qwenfit.core.model.checkpoint import StoredCheckpoint
    from qwenfit.core.model.inventory import Inventory, ParamCount

__all__ = [
    "FULL_ATTENTION",
    "LINEAR_ATTENTION",
    "MAX_DIMENSION",
    "Family",
    "ModelSpec",
    "TextSpec",
    "VisionSpec",
    "check_bound",
    "default_layer_types",
]


def default_layer_types(num_hidden_layers: int, full_attention_interval: int) -> tuple[str, ...]:
    """Layer i is full attention iff (i+1) % interval == 0 (transformers Qwen3_5TextConfig)."""
    return tuple(
        FULL_ATTENTION if (i + 1) % full_attention_interval == 0 else LINEAR_ATTENTION
        for i in range(num_hidden_layers)
    )


# Upper bounds on every dimension: far above any Qwen model (the largest, 397B-A17B, has 60 layers,
# hidden 4096, 512 experts, vocab 248,320), low enough that a corrupt or hostile config cannot make
# qwenfit build billions of inventory entries or run out of memory.
MAX_DIMENSION: dict[str, int] = {
    "num_hidden_layers": 4096,
    "hidden_size": 1 << 20,
    "vocab_size": 1 << 24,
    "num_attention_heads": 4096,
    "num_key_value_heads": 4096,
    "head_dim": 1 << 14,
    "linear_num_key_heads": 4096,
    "linear_num_value_heads": 4096,
    "linear_key_head_dim": 1 << 14,
    "linear_value_head_dim": 1 << 14,
    "linear_conv_kernel_dim": 1024,
    "intermediate_size": 1 << 24,
    "num_experts": 1 << 16,
    "num_experts_per_tok": 1 << 16,
    "moe_intermediate_size": 1 << 24,
    "shared_expert_intermediate_size": 1 << 24,
    "decoder_sparse_step": 4096,
    "mtp_num_hidden_layers": 64,
    "depth": 4096,
    "num_heads": 4096,
    "out_hidden_size": 1 << 20,
    "patch_size": 4096,
    "temporal_patch_size": 64,
    "spatial_merge_size": 64,
    "in_channels": 64,
    "num_position_embeddings": 1 << 24,
}


def check_bound(name: str, value: int) -> None:
    """Refuse a dimension above MAX_DIMENSION (a corrupt or hostile config)."""
    limit = MAX_DIMENSION.get(name)
    if limit is not None and value > limit:
        raise ConfigError(
            f"is {value:,}, above the limit of {limit:,} (no Qwen model comes near it)", key=name
        )


def _check_positive(obj: object, names: tuple[str, ...]) -> None:
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"must be an integer, got {value!r}", key=name)
        if value <= 0:
            raise ConfigError(f"must be a positive integer, got {value}", key=name)
        check_bound(name, value)


def _check_divides(divisor_key: str, divisor: int, dividend_key: str, dividend: int) -> None:
    if dividend % divisor:
        raise ConfigError(
            f"{dividend_key}={dividend} is not a multiple of {divisor_key}={divisor} "
            "(each group of heads must be the same size)",
            key=dividend_key,
        )


@dataclass(frozen=True, slots=True)
class TextSpec:
    """The language model: hybrid Gated DeltaNet / gated attention decoder, dense or MoE."""

    hidden_size: int
    num_hidden_layers: int
    layer_types: tuple[str, ...]
    vocab_size: int
    tie_word_embeddings: bool
    # gated full attention (q_proj is 2x wide when attn_output_gate: query + sigmoid gate)
    num_attention_heads: int
    num_key_value_heads: int
    head_dim: int
    attn_output_gate: bool
    # Gated DeltaNet (linear attention)
    linear_num_key_heads: int
    linear_num_value_heads: int
    linear_key_head_dim: int
    linear_value_head_dim: int
    linear_conv_kernel_dim: int
    # feed-forward: dense MLP size, and the MoE block when num_experts > 0
    intermediate_size: int = 0
    num_experts: int = 0
    num_experts_per_tok: int = 0
    moe_intermediate_size: int = 0
    shared_expert_intermediate_size: int = 0
    decoder_sparse_step: int = 1
    mlp_only_layers: tuple[int, ...] = ()
    # Qwen3-Next stores the GDN input projections fused (in_proj_qkvz, in_proj_ba)
    fused_gdn_projections: bool = False
    # numerics and limits (not shape-bearing)
    dtype: str = "bfloat16"
    mamba_ssm_dtype: str | None = None  # Qwen3.5: "float32"; absent (model dtype) on Qwen3-Next
    max_position_embeddings: int = 262144
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10_000_000.0
    partial_rotary_factor: float = 0.25

    def __post_init__(self) -> None:
        _check_positive(
            self,
            (
                "hidden_size",
                "num_hidden_layers",
                "vocab_size",
                "num_attention_heads",
                "num_key_value_heads",
                "head_dim",
                "linear_num_key_heads",
                "linear_num_value_heads",
                "linear_key_head_dim",
                "linear_value_head_dim",
                "linear_conv_kernel_dim",
                "decoder_sparse_step",
            ),
        )
        if len(self.layer_types) != self.num_hidden_layers:
            raise ConfigError(
                f"has {len(self.layer_types)} entries but num_hidden_layers is {self.num_hidden_layers}",
                key="layer_types",
            )
        for i, kind in enumerate(self.layer_types):
            if kind not in LAYER_TYPES:
                raise ConfigError(
                    f"entry {i} is {kind!r}; expected one of {', '.join(LAYER_TYPES)}", key="layer_types"
                )
        if FULL_ATTENTION not in self.layer_types:
            # a Qwen3.5 text model always has gated attention layers; without one there is no KV
            # cache, no MTP layer shape and nothing that the engines' hybrid code paths accept
            raise ConfigError("has no full_attention layer", key="layer_types")
        _check_divides(
            "num_key_value_heads", self.num_key_value_heads, "num_attention_heads", self.num_attention_heads
        )
        _check_divides(
            "linear_num_key_heads",
            self.linear_num_key_heads,
            "linear_num_value_heads",
            self.linear_num_value_heads,
        )
        for name in (
            "num_experts",
            "num_experts_per_tok",
            "moe_intermediate_size",
            "shared_expert_intermediate_size",
            "intermediate_size",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"must be a non-negative integer, got {value!r}", key=name)
            check_bound(name, value)
        if self.num_experts:
            _check_positive(self, ("num_experts_per_tok", "moe_intermediate_size"))
            if self.num_experts_per_tok > self.num_experts:
                raise ConfigError(
                    f"{self.num_experts_per_tok} routed experts per token but only "
                    f"{self.num_experts} experts",
                    key="num_experts_per_tok",
                )
        if (
            any(not self.layer_is_moe(i) for i in range(self.num_hidden_layers))
            and self.intermediate_size <= 0
        ):
            raise ConfigError(
                "must be a positive integer: some layers use a dense MLP", key="intermediate_size"
            )
        for i in self.mlp_only_layers:
            if not 0 <= i < self.num_hidden_layers:
                raise ConfigError(
                    f"layer index {i} is outside 0..{self.num_hidden_layers - 1}", key="mlp_only_layers"
                )

    # --- derived sizes --------------------------------------------------------------------------
    @property
    def is_moe(self) -> bool:
        return self.num_experts > 0

    def layer_is_moe(self, layer: int) -> bool:
        """MoE FFN in this layer? Same rule as transformers Qwen3-Next / Qwen3.5-MoE decoder layers."""
        return (
            self.num_experts > 0
            and layer not in self.mlp_only_layers
            and (layer + 1) % self.decoder_sparse_step == 0
        )

    @property
    def n_full_attention(self) -> int:
        return self.layer_types.count(FULL_ATTENTION)

    @property
    def n_linear_attention(self) -> int:
        return self.layer_types.count(LINEAR_ATTENTION)

    @property
    def linear_key_dim(self) -> int:
        """nk·dk: width of q and of k in a GDN layer."""
        return self.linear_num_key_heads * self.linear_key_head_dim

    @property
    def linear_value_dim(self) -> int:
        """nv·dv: width of v (and of the output gate z) in a GDN layer."""
        return self.linear_num_value_heads * self.linear_value_head_dim

    @property
    def linear_conv_dim(self) -> int:
        """2·nk·dk + nv·dv: channels of the causal conv over [q, k, v]."""
        return 2 * self.linear_key_dim + self.linear_value_dim

    @property
    def q_proj_rows(self) -> int:
        """nh·hd, doubled when the attention output gate is fused into q_proj."""
        return self.num_attention_heads * self.head_dim * (2 if self.attn_output_gate else 1)


@dataclass(frozen=True, slots=True)
class VisionSpec:
    """The vision tower (ViT + 2x2 patch merger) of Qwen3.5 checkpoints; Qwen3-Next has none."""

    depth: int
    hidden_size: int
    intermediate_size: int
    num_heads: int
    out_hidden_size: int
    patch_size: int = 16
    temporal_patch_size: int = 2
    spatial_merge_size: int = 2
    in_channels: int = 3
    num_position_embeddings: int = 2304

    def __post_init__(self) -> None:
        _check_positive(
            self,
            (
                "depth",
                "hidden_size",
                "intermediate_size",
                "num_heads",
                "out_hidden_size",
                "patch_size",
                "temporal_patch_size",
                "spatial_merge_size",
                "in_channels",
                "num_position_embeddings",
            ),
        )
        _check_divides("num_heads", self.num_heads, "hidden_size", self.hidden_size)

    @property
    def merged_hidden_size(self) -> int:
        """hidden·merge²: width of the merger MLP input (2x2 patches concatenated)."""
        return self.hidden_size * self.spatial_merge_size**2


@dataclass(frozen=True, slots=True)
class ModelSpec:
    """One model: its text decoder, optional vision tower, and MTP layers stored in the checkpoint.

    ``mtp_layers`` counts the multi-token-prediction layers the *checkpoint* stores (``mtp.*``);
    for Qwen3.5 that is ``mtp_num_hidden_layers``, for Qwen3-Next (no config key) the catalog or
    the checkpoint's own tensor list says. ``text_prefix`` is where the text weights live:
    ``model.language_model.`` in multimodal checkpoints, ``model.`` in text-only ones and Qwen3-Next.
    ``expert_layout`` / ``mtp_expert_layout`` say how routed experts are stored (None: as the
    official checkpoints do, see :func:`qwenfit.core.model.inventory.default_expert_layouts`).
    ``checkpoint`` holds what a file's headers list, when the spec was read from files.
    """

    name: str
    family: Family
    text: TextSpec
    vision: VisionSpec | None = None
    mtp_layers: int = 0
    text_prefix: str = "model.language_model."
    expert_layout: ExpertLayout | None = None
    mtp_expert_layout: ExpertLayout | None = None
    source: str = field(default="", compare=False)
    checkpoint: StoredCheckpoint | None = field(default=None, compare=False, repr=False)
    origin: str | None = field(default=None, compare=False)  # the path or repo id it was read from
    _cache: dict[str, object] = field(default_factory=dict, init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        if isinstance(self.mtp_layers, bool) or not isinstance(self.mtp_layers, int) or self.mtp_layers < 0:
            raise ConfigError(
                f"must be a non-negative integer, got {self.mtp_layers!r}", key="mtp_num_hidden_layers"
            )
        check_bound("mtp_num_hidden_layers", self.mtp_layers)
        if self.vision is not None and self.vision.out_hidden_size != self.text.hidden_size:
            raise ConfigError(
                f"out_hidden_size={self.vision.out_hidden_size} must equal the text hidden_size="
                f"{self.text.hidden_size} (the merger projects into the text embedding space)",
                key="vision_config.out_hidden_size",
            )

    @property
    def is_moe(self) -> bool:
        return self.text.is_moe

    @property
    def inventory(self) -> Inventory:
        """Every tensor of the checkpoint (built once per spec)."""
        inv = self._cache.get("inventory")
        if inv is None:
            from qwenfit.core.model.inventory import build_inventory

            inv = self._cache["inventory"] = build_inventory(self)
        return inv  # type: ignore[return-value]

    @property
    def params(self) -> ParamCount:
        """Parameter counts summed from the inventory."""
        return self.inventory.params
