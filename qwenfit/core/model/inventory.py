"""Inventory: every tensor of a checkpoint, derived from a ModelSpec; parameter counts sum over it.

The inventory is the single source of truth (ARCHITECTURE.md): parameter counts, weight bytes under any
quantization, offload splits and the safetensors/GGUF cross-checks are all sums over it.

Each entry is one *logical* tensor — the unit llama.cpp quantizes — with its Hugging Face name and
shape, its llama.cpp GGUF name and shape, a role, a layer and the dtype the checkpoint stores.
Routed experts are one entry per layer and projection with a leading expert dimension, as GGUF
stores ``ffn_gate_exps``. How entries map back to stored safetensors tensors depends on the
checkpoint's expert layout (fused ``experts.gate_up_proj`` or one tensor per expert);
:meth:`Inventory.hf_tensors` renders that.

Tensor lists and shapes: transformers ``modeling_qwen3_5.py`` / ``modeling_qwen3_next.py``; GGUF
names: llama.cpp ``llama-arch.cpp`` and ``convert_hf_to_gguf.py`` (pinned by tests/fixtures/gguf).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from qwenfit.core.formats.dtypes import GGML_TYPES, SAFETENSORS_DTYPE_BITS, safetensors_nbytes
from qwenfit.core.model.checkpoint import StoredEntry, fused_gate_up_name

if TYPE_CHECKING:
    from qwenfit.core.model.spec import ModelSpec, VisionSpec
from qwenfit.core.model.kinds import FULL_ATTENTION, LINEAR_ATTENTION, ExpertLayout

__all__ = [
    "COMPONENTS",
    "ROLES",
    "Inventory",
    "ParamCount",
    "StoredTensor",
    "Tensor",
    "build_inventory",
]

Component = Literal["text", "mtp", "vision"]
COMPONENTS: tuple[Component, ...] = ("text", "mtp", "vision")

# Every role an inventory entry can have. Norm-like roles end in "norm".
ROLES: tuple[str, ...] = (
    "embed", "lm_head", "norm",
    "attn_q", "attn_k", "attn_v", "attn_o", "attn_q_norm", "attn_k_norm",
    "gdn_qkv", "gdn_z", "gdn_b", "gdn_a", "gdn_ba",
    "gdn_conv1d", "gdn_A_log", "gdn_dt_bias", "gdn_norm", "gdn_out",
    "router", "expert_gate", "expert_up", "expert_down",
    "shared_expert_gate_proj", "shared_expert_up_proj", "shared_expert_down_proj", "shared_expert_gate",
    "mlp_gate", "mlp_up", "mlp_down",
    "mtp_fc", "mtp_norm",
    "vision_patch_embed", "vision_pos_embed", "vision_norm", "vision_attn_qkv", "vision_attn_proj",
    "vision_mlp_fc1", "vision_mlp_fc2", "vision_merger_norm", "vision_merger_fc1", "vision_merger_fc2",
)  # fmt: skip

ROUTED_EXPERT_ROLES = frozenset({"expert_gate", "expert_up", "expert_down"})

# Stored dtypes. Qwen3.5 checkpoints are BF16 except linear_attn.A_log and linear_attn.norm.weight,
# which are F32: the 122B repo's dtype split is BF16 125,086,490,096 + F32 6,912 = 36 GDN layers x
# (nv 64 + dv 128) (transformers modeling_qwen3_5.py, Qwen3_5GatedDeltaNet). Qwen3-Next's split
# was not found; the same rule is assumed.
DEFAULT_DTYPE = "BF16"
F32_ROLES = frozenset({"gdn_A_log", "gdn_norm"})


@dataclass(frozen=True, slots=True)
class Tensor:
    """One logical tensor.

    ``shape`` is in PyTorch order (``[out, in]``); routed experts carry a leading expert dimension
    ``(n_experts, rows, cols)``. ``gguf_shape`` is in ggml order (innermost first), as
    ``llama-quantize`` and gguf-py print it. ``layer`` numbers MTP layers after the decoder
    layers, as llama.cpp's ``blk.N.nextn.*`` does. ``hf_name`` is the stored safetensors tensor
    that holds this one; several logical tensors may share it (fused ``experts.gate_up_proj``),
    concatenated along ``hf_axis``; a name containing ``{e}`` is stored once per expert.
    """

    name: str
    shape: tuple[int, ...]
    role: str
    component: Component
    layer: int | None = None
    layer_type: str | None = None
    dtype: str = DEFAULT_DTYPE
    gguf_name: str | None = None
    gguf_shape: tuple[int, ...] | None = None
    n_experts: int = 0
    hf_name: str = ""
    hf_axis: int = 0

    @property
    def n_params(self) -> int:
        return math.prod(self.shape)

    @property
    def stored_bytes(self) -> int:
        """Bytes in the checkpoint at its stored dtype (a safetensors dtype or a ggml type)."""
        if self.dtype in SAFETENSORS_DTYPE_BITS:
            return safetensors_nbytes(self.dtype, self.n_params)
        return GGML_TYPES[self.dtype].n_bytes(self.gguf_shape or _gguf(self.shape))


@dataclass(frozen=True, slots=True)
class StoredTensor:
    """A tensor as a safetensors header lists it."""

    name: str
    shape: tuple[int, ...]
    dtype: str


@dataclass(frozen=True, slots=True)
class ParamCount:
    """Parameter counts of one model, all summed from its inventory.

    ``total`` counts every stored tensor (text, MTP and vision) and equals the Hugging Face
    ``safetensors.total``. ``active`` is the per-token count of the *text* model with routed experts
    at top-k (``num_experts_per_tok`` of ``num_experts``), embeddings and lm_head included, MTP and
    vision excluded: the convention behind "A17B / A10B / A3B" (published model cards: 17.35 B / 9.77 B /
    3.45 B). For a dense model ``active == text``.
    """

    total: int
    active: int
    by_role: dict[str, int] = field(hash=False)
    by_component: dict[str, int] = field(hash=False)

    @property
    def text(self) -> int:
        return self.by_component.get("text", 0)

    @property
    def mtp(self) -> int:
        return self.by_component.get("mtp", 0)

    @property
    def vision(self) -> int:
        return self.by_component.get("vision", 0)

    @property
    def routed_experts(self) -> int:
        """All routed-expert parameters (text and MTP)."""
        return sum(self.by_role.get(role, 0) for role in ROUTED_EXPERT_ROLES)


@dataclass(frozen=True, slots=True, eq=False)
class Inventory:
    """The tensors of one checkpoint, in checkpoint order (text, MTP, vision)."""

    spec: ModelSpec
    tensors: tuple[Tensor, ...]
    params: ParamCount

    def __iter__(self) -> Iterator[Tensor]:
        return iter(self.tensors)

    def __len__(self) -> int:
        return len(self.tensors)

    @property
    def stored_bytes(self) -> int:
        """Bytes of all tensor data in the checkpoint at the stored dtypes (no header)."""
        return sum(t.stored_bytes for t in self.tensors)

    def hf_tensors(self) -> tuple[StoredTensor, ...]:
        """The stored safetensors tensors: fused parts concatenated, per-expert names expanded."""
        out: list[StoredTensor] = []
        fused: dict[str, int] = {}  # hf_name -> index in out
        for t in self.tensors:
            if "{e}" in t.hf_name:
                out.extend(
                    StoredTensor(t.hf_name.format(e=e), t.shape[1:], t.dtype) for e in range(t.n_experts)
                )
                continue
            if t.hf_name in fused:
                i = fused[t.hf_name]
                prev = out[i]
                shape = list(prev.shape)
                shape[t.hf_axis] += t.shape[t.hf_axis]
                out[i] = replace(prev, shape=tuple(shape))
                continue
            fused[t.hf_name] = len(out)
            out.append(StoredTensor(t.hf_name, t.shape, t.dtype))
        return tuple(out)


def _count(spec: ModelSpec, tensors: tuple[Tensor, ...]) -> ParamCount:
    by_role: dict[str, int] = {}
    by_component: dict[str, int] = {}
    active = 0
    text = spec.text
    for t in tensors:
        n = t.n_params
        by_role[t.role] = by_role.get(t.role, 0) + n
        by_component[t.component] = by_component.get(t.component, 0) + n
        if t.component != "text":
            continue
        if t.role in ROUTED_EXPERT_ROLES:
            # n = n_experts x per-expert size, so this division is exact
            active += n // t.n_experts * text.num_experts_per_tok
        else:
            active += n
    return ParamCount(
        total=sum(by_component.values()), active=active, by_role=by_role, by_component=by_component
    )


# --------------------------------------------------------------------------------------------------
# building


def _gguf(shape: tuple[int, ...]) -> tuple[int, ...]:
    """ggml dimension order: the reverse of PyTorch's."""
    return tuple(reversed(shape))


class _Builder:
    """Appends the tensors of one checkpoint; one method per block type."""

    def __init__(self, spec: ModelSpec, expert_layout: ExpertLayout, mtp_expert_layout: ExpertLayout):
        self.spec = spec
        self.expert_layout = expert_layout
        self.mtp_expert_layout = mtp_expert_layout
        self.out: list[Tensor] = []
        self.text_prefix = spec.text_prefix

    def add(
        self,
        name: str,
        shape: tuple[int, ...],
        role: str,
        component: Component,
        gguf_name: str | None,
        *,
        layer: int | None = None,
        layer_type: str | None = None,
        gguf_shape: tuple[int, ...] | None = None,
        n_experts: int = 0,
        hf_name: str | None = None,
        hf_axis: int = 0,
    ) -> None:
        if gguf_name is not None and gguf_shape is None:
            gguf_shape = _gguf(shape)
        self.out.append(
            Tensor(
                name=name,
                shape=shape,
                role=role,
                component=component,
                layer=layer,
                layer_type=layer_type,
                dtype="F32" if role in F32_ROLES else DEFAULT_DTYPE,
                gguf_name=gguf_name,
                gguf_shape=gguf_shape,
                n_experts=n_experts,
                hf_name=hf_name if hf_name is not None else name,
                hf_axis=hf_axis,
            )
        )

    # --- text ---------------------------------------------------------------------------------------
    def text_model(self) -> None:
        t = self.spec.text
        p = self.text_prefix
        self.add(
            p + "embed_tokens.weight", (t.vocab_size, t.hidden_size), "embed", "text", "token_embd.weight"
        )
        for i, kind in enumerate(t.layer_types):
            self.decoder_layer(f"{p}layers.{i}.", i, kind, "text", self.expert_layout)
        self.add(p + "norm.weight", (t.hidden_size,), "norm", "text", "output_norm.weight")
        if not t.tie_word_embeddings:
            self.add("lm_head.weight", (t.vocab_size, t.hidden_size), "lm_head", "text", "output.weight")

    def decoder_layer(
        self, prefix: str, layer: int, kind: str, comp: Component, layout: ExpertLayout
    ) -> None:
        t = self.spec.text
        h = t.hidden_size
        blk = f"blk.{layer}."
        kw: dict[str, Any] = {"layer": layer, "layer_type": kind}
        self.add(prefix + "input_layernorm.weight", (h,), "norm", comp, blk + "attn_norm.weight", **kw)
        if kind == LINEAR_ATTENTION:
            self.gated_delta_net(prefix + "linear_attn.", blk, comp, layer)
        else:
            self.attention(prefix + "self_attn.", blk, comp, layer)
        self.add(
            prefix + "post_attention_layernorm.weight", (h,), "norm", comp,
            blk + "post_attention_norm.weight", **kw,
        )  # fmt: skip
        # an MTP layer has the model's FFN type (the MoE checkpoints store mtp.layers.0.mlp.experts.*)
        is_moe = t.layer_is_moe(layer) if comp == "text" else t.is_moe
        if is_moe:
            self.moe(prefix + "mlp.", blk, comp, layer, kind, layout)
        else:
            self.dense_mlp(prefix + "mlp.", blk, comp, layer, kind)

    def gated_delta_net(self, p: str, blk: str, comp: Component, layer: int) -> None:
        t = self.spec.text
        h, nv, conv = t.hidden_size, t.linear_num_value_heads, t.linear_conv_dim
        kw: dict[str, Any] = {"layer": layer, "layer_type": LINEAR_ATTENTION}
        if t.fused_gdn_projections:
            # Qwen3-Next stores [q, k, v, z] grouped per key head in one matrix and [b, a] in
            # another; llama.cpp's converter regroups the first into attn_qkv + attn_gate and keeps
            # the second fused as ssm_ba (conversion/qwen.py Qwen3NextModel.modify_tensors)
            qkvz = p + "in_proj_qkvz.weight"
            self.add(qkvz + ":qkv", (conv, h), "gdn_qkv", comp, blk + "attn_qkv.weight", hf_name=qkvz, **kw)
            self.add(
                qkvz + ":z",
                (t.linear_value_dim, h),
                "gdn_z",
                comp,
                blk + "attn_gate.weight",
                hf_name=qkvz,
                **kw,
            )
            self.add(p + "in_proj_ba.weight", (2 * nv, h), "gdn_ba", comp, blk + "ssm_ba.weight", **kw)
        else:
            self.add(p + "in_proj_qkv.weight", (conv, h), "gdn_qkv", comp, blk + "attn_qkv.weight", **kw)
            self.add(
                p + "in_proj_z.weight", (t.linear_value_dim, h), "gdn_z", comp, blk + "attn_gate.weight", **kw
            )
            self.add(p + "in_proj_b.weight", (nv, h), "gdn_b", comp, blk + "ssm_beta.weight", **kw)
            self.add(p + "in_proj_a.weight", (nv, h), "gdn_a", comp, blk + "ssm_alpha.weight", **kw)
        # depthwise causal conv: HF [conv_dim, 1, K]; GGUF squeezes it to {K, conv_dim}
        k = t.linear_conv_kernel_dim
        self.add(
            p + "conv1d.weight",
            (conv, 1, k),
            "gdn_conv1d",
            comp,
            blk + "ssm_conv1d.weight",
            gguf_shape=(k, conv),
            **kw,
        )
        self.add(p + "dt_bias", (nv,), "gdn_dt_bias", comp, blk + "ssm_dt.bias", **kw)
        # GGUF stores ssm_a = -exp(A_log), same shape
        self.add(p + "A_log", (nv,), "gdn_A_log", comp, blk + "ssm_a", **kw)
        self.add(
            p + "norm.weight", (t.linear_value_head_dim,), "gdn_norm", comp, blk + "ssm_norm.weight", **kw
        )
        self.add(
            p + "out_proj.weight", (h, t.linear_value_dim), "gdn_out", comp, blk + "ssm_out.weight", **kw
        )

    def attention(self, p: str, blk: str, comp: Component, layer: int) -> None:
        t = self.spec.text
        h, hd = t.hidden_size, t.head_dim
        kv = t.num_key_value_heads * hd
        kw: dict[str, Any] = {"layer": layer, "layer_type": FULL_ATTENTION}
        self.add(p + "q_proj.weight", (t.q_proj_rows, h), "attn_q", comp, blk + "attn_q.weight", **kw)
        self.add(p + "k_proj.weight", (kv, h), "attn_k", comp, blk + "attn_k.weight", **kw)
        self.add(p + "v_proj.weight", (kv, h), "attn_v", comp, blk + "attn_v.weight", **kw)
        self.add(
            p + "o_proj.weight",
            (h, t.num_attention_heads * hd),
            "attn_o",
            comp,
            blk + "attn_output.weight",
            **kw,
        )
        self.add(p + "q_norm.weight", (hd,), "attn_q_norm", comp, blk + "attn_q_norm.weight", **kw)
        self.add(p + "k_norm.weight", (hd,), "attn_k_norm", comp, blk + "attn_k_norm.weight", **kw)

    def dense_mlp(self, p: str, blk: str, comp: Component, layer: int, kind: str) -> None:
        t = self.spec.text
        h, i = t.hidden_size, t.intermediate_size
        kw: dict[str, Any] = {"layer": layer, "layer_type": kind}
        self.add(p + "gate_proj.weight", (i, h), "mlp_gate", comp, blk + "ffn_gate.weight", **kw)
        self.add(p + "up_proj.weight", (i, h), "mlp_up", comp, blk + "ffn_up.weight", **kw)
        self.add(p + "down_proj.weight", (h, i), "mlp_down", comp, blk + "ffn_down.weight", **kw)

    def moe(self, p: str, blk: str, comp: Component, layer: int, kind: str, layout: ExpertLayout) -> None:
        t = self.spec.text
        h, e, mi, si = (
            t.hidden_size,
            t.num_experts,
            t.moe_intermediate_size,
            t.shared_expert_intermediate_size,
        )
        kw: dict[str, Any] = {"layer": layer, "layer_type": kind}
        self.add(p + "gate.weight", (e, h), "router", comp, blk + "ffn_gate_inp.weight", **kw)
        x = p + "experts."
        for proj, role, shape in (
            ("gate", "expert_gate", (e, mi, h)),
            ("up", "expert_up", (e, mi, h)),
            ("down", "expert_down", (e, h, mi)),
        ):
            if layout == "per_expert":
                name = hf_name = f"{x}{{e}}.{proj}_proj.weight"
            elif proj == "down":
                name = hf_name = x + "down_proj"
            else:
                # transformers >= 5 / official Qwen3.5: gate and up stacked in one [E, 2*mi, H] tensor
                hf_name = x + "gate_up_proj"
                name = f"{hf_name}:{proj}"
            self.add(
                name,
                shape,
                role,
                comp,
                f"{blk}ffn_{proj}_exps.weight",
                n_experts=e,
                hf_name=hf_name,
                hf_axis=1,
                **kw,
            )
        if si:
            s = p + "shared_expert."
            self.add(
                s + "gate_proj.weight",
                (si, h),
                "shared_expert_gate_proj",
                comp,
                blk + "ffn_gate_shexp.weight",
                **kw,
            )
            self.add(
                s + "up_proj.weight",
                (si, h),
                "shared_expert_up_proj",
                comp,
                blk + "ffn_up_shexp.weight",
                **kw,
            )
            self.add(
                s + "down_proj.weight",
                (h, si),
                "shared_expert_down_proj",
                comp,
                blk + "ffn_down_shexp.weight",
                **kw,
            )
            # sigmoid scalar gate [1, H]: the converter writes ne {H, 1}, which the loader accepts as {H}
            self.add(
                p + "shared_expert_gate.weight",
                (1, h),
                "shared_expert_gate",
                comp,
                blk + "ffn_gate_inp_shexp.weight",
                **kw,
            )

    # --- MTP ----------------------------------------------------------------------------------------
    def mtp(self) -> None:
        """Multi-token prediction: ``mtp.fc`` over [embedding; hidden], then full-attention layers.

        Stored under ``mtp.*`` (Qwen/Qwen3.5-35B-A3B's checkpoint index): one ``mtp.fc`` and three norms
        shared by the ``mtp.layers.{j}`` (every Qwen3.5 checkpoint has exactly one). llama.cpp writes
        the MTP layer as block L with its MTP-only tensors named ``blk.L.nextn.*``.
        """
        t = self.spec.text
        if not self.spec.mtp_layers:
            return
        h, first = t.hidden_size, t.num_hidden_layers
        nextn = f"blk.{first}.nextn."
        kw: dict[str, Any] = {"layer": first, "layer_type": FULL_ATTENTION}
        self.add("mtp.fc.weight", (h, 2 * h), "mtp_fc", "mtp", nextn + "eh_proj.weight", **kw)
        self.add("mtp.pre_fc_norm_embedding.weight", (h,), "mtp_norm", "mtp", nextn + "enorm.weight", **kw)
        self.add("mtp.pre_fc_norm_hidden.weight", (h,), "mtp_norm", "mtp", nextn + "hnorm.weight", **kw)
        for j in range(self.spec.mtp_layers):
            self.decoder_layer(f"mtp.layers.{j}.", first + j, FULL_ATTENTION, "mtp", self.mtp_expert_layout)
        self.add("mtp.norm.weight", (h,), "mtp_norm", "mtp", nextn + "shared_head_norm.weight", **kw)

    # --- vision -------------------------------------------------------------------------------------
    def vision(self, v: VisionSpec) -> None:
        """ViT with Conv3d patch embedding, learned positions and a 2x2 patch merger (no DeepStack).

        llama.cpp writes the tower into a separate mmproj GGUF; its names are not mapped here.
        """
        p = "model.visual."
        h, iv = v.hidden_size, v.intermediate_size
        patch = (h, v.in_channels, v.temporal_patch_size, v.patch_size, v.patch_size)
        self.add(p + "patch_embed.proj.weight", patch, "vision_patch_embed", "vision", None)
        self.add(p + "patch_embed.proj.bias", (h,), "vision_patch_embed", "vision", None)
        self.add(p + "pos_embed.weight", (v.num_position_embeddings, h), "vision_pos_embed", "vision", None)
        for b in range(v.depth):
            q = f"{p}blocks.{b}."
            kw: dict[str, Any] = {"layer": b}
            for norm in ("norm1", "norm2"):
                self.add(q + norm + ".weight", (h,), "vision_norm", "vision", None, **kw)
                self.add(q + norm + ".bias", (h,), "vision_norm", "vision", None, **kw)
            self.add(q + "attn.qkv.weight", (3 * h, h), "vision_attn_qkv", "vision", None, **kw)
            self.add(q + "attn.qkv.bias", (3 * h,), "vision_attn_qkv", "vision", None, **kw)
            self.add(q + "attn.proj.weight", (h, h), "vision_attn_proj", "vision", None, **kw)
            self.add(q + "attn.proj.bias", (h,), "vision_attn_proj", "vision", None, **kw)
            self.add(q + "mlp.linear_fc1.weight", (iv, h), "vision_mlp_fc1", "vision", None, **kw)
            self.add(q + "mlp.linear_fc1.bias", (iv,), "vision_mlp_fc1", "vision", None, **kw)
            self.add(q + "mlp.linear_fc2.weight", (h, iv), "vision_mlp_fc2", "vision", None, **kw)
            self.add(q + "mlp.linear_fc2.bias", (h,), "vision_mlp_fc2", "vision", None, **kw)
        m, mh, out = p + "merger.", v.merged_hidden_size, v.out_hidden_size
        self.add(m + "norm.weight", (h,), "vision_merger_norm", "vision", None)
        self.add(m + "norm.bias", (h,), "vision_merger_norm", "vision", None)
        self.add(m + "linear_fc1.weight", (mh, mh), "vision_merger_fc1", "vision", None)
        self.add(m + "linear_fc1.bias", (mh,), "vision_merger_fc1", "vision", None)
        self.add(m + "linear_fc2.weight", (out, mh), "vision_merger_fc2", "vision", None)
        self.add(m + "linear_fc2.bias", (out,), "vision_merger_fc2", "vision", None)


def _with_stored_dtype(t: Tensor, stored: dict[str, StoredEntry], gguf: bool) -> Tensor:
    """The tensor with the dtype its file stores it in (a ggml type name for GGUF files)."""
    if gguf:
        entry = stored.get(t.gguf_name or "")
        if entry is None and t.gguf_name is not None:
            entry = stored.get(fused_gate_up_name(t.gguf_name) or "")
    else:
        entry = stored.get(t.hf_name.format(e=0) if "{e}" in t.hf_name else t.hf_name)
    return t if entry is None or entry.dtype == t.dtype else replace(t, dtype=entry.dtype)


def default_expert_layouts(spec: ModelSpec) -> tuple[ExpertLayout, ExpertLayout]:
    """How the official checkpoints store routed experts: (decoder layers, MTP layer).

    Qwen3.5 MoE repositories store the decoder layers' experts fused (``experts.gate_up_proj``
    [E, 2·mi, H], ``experts.down_proj`` [E, H, mi]) and the MTP layer's experts one tensor each
    (``mtp.layers.0.mlp.experts.{i}.gate_proj.weight``) — as read off the 35B-A3B checkpoint by a
    third-party loader (its model.safetensors.index.json). Qwen3-Next (transformers 4.57 era) stores every
    expert separately. The parameter count is the same either way.
    """
    if spec.family == "qwen3_next":
        return "per_expert", "per_expert"
    return "fused", "per_expert"


def build_inventory(
    spec: ModelSpec,
    expert_layout: ExpertLayout | None = None,
    mtp_expert_layout: ExpertLayout | None = None,
) -> Inventory:
    """Every tensor of ``spec``'s checkpoint: text, then MTP, then vision.

    The expert layouts default to the spec's, then to the official checkpoints'. When the spec was
    read from files, each tensor's dtype is the one its stored weight has.
    """
    default_main, default_mtp = default_expert_layouts(spec)
    b = _Builder(
        spec,
        expert_layout or spec.expert_layout or default_main,
        mtp_expert_layout or spec.mtp_expert_layout or default_mtp,
    )
    b.text_model()
    b.mtp()
    if spec.vision is not None:
        b.vision(spec.vision)
    tensors = tuple(b.out)
    if spec.checkpoint is not None:
        stored = spec.checkpoint.names()
        gguf = spec.checkpoint.format == "gguf"
        tensors = tuple(_with_stored_dtype(t, stored, gguf) for t in tensors)
    return Inventory(spec=spec, tensors=tensors, params=_count(spec, tensors))
