"""llama.cpp's vision-encoder compute buffer (mmproj, libmtmd ``tools/mtmd/clip.cpp``) for Qwen3.5.

The mmproj weights are summed by the inventory; this module gives the *compute buffer* clip.cpp
reserves for the vision tower, in exact bytes, as llama.cpp 0c1e570 (llama-cpp-python 0.3.36)
allocates it on the CPU backend. Line numbers refer to that tree
(``tools/mtmd/clip.cpp``, ``tools/mtmd/models/qwen3vl.cpp``, ``ggml/src/ggml-alloc.c``).

How clip.cpp sizes it
---------------------
* Qwen3.5's mmproj is ``projector_type = qwen3vl_merger`` (PROJECTOR_TYPE_QWEN3VL). At load,
  ``load_hparams`` sets the image-token limits ``set_limit_image_tokens(8, 4096)`` (clip.cpp:1678;
  ``image_max_pixels = max_tokens·(patch·merge)²``, clip-model.h:192-197; ``--image-max-tokens`` /
  ``--image-min-tokens`` override them, clip.cpp:213-215) and then the warmup size
  ``set_warmup_n_tokens(46*46)`` (clip.cpp:1679, clip-model.h:210-215): a 1472 × 1472 image, 92 × 92
  patches, **whatever --image-max-tokens says** ("TODO: support warmup size for custom token numbers").
* ``clip_model_loader::warmup`` (clip.cpp:3737-3800) builds the graph for that dummy image and
  ``reserve_compute_meta`` (:3805-3820) calls ``ggml_backend_sched_reserve``; the size it logs
  (``reserve_compute_meta: CPU compute buffer size = … MiB``) is this reservation. With flash attention
  ``auto`` it first tries flash attention and falls back to the plain KQ path only if the backend
  cannot run it (:3740-3763). llama-server's ``--fit`` adds exactly this reservation plus the weights
  (``mtmd_get_memory_usage``, mtmd.cpp:2711-2740; tools/server/server-context.cpp:1045-1067).
* Encoding a bigger image later grows the buffer: ``clip_encode`` (clip.cpp:4464-4488) allocates the
  image's graph with ``ggml_backend_sched_alloc_graph``; ggml-alloc re-reserves when the graph does
  not fit and only ever grows the buffer (ggml-alloc.c:904-945, 1052-1066). So after an image of
  ``n`` patches the buffer is ``max(warmup, graph(n))``. The preprocessor
  (``mtmd_image_preprocessor_dyn_size``, mtmd-image.cpp:772-796; ``calc_size_preserved_ratio``
  :122-153) resizes every image to sides that are multiples of patch·merge = 32 with
  ``w·h <= image_max_pixels``, so the largest graph has ``merge²·max_tokens`` patches (16384 for the
  default 4096 tokens: 2048 × 2048 pixels). Only inputs thinner than 32 pixels after scaling escape
  that bound (one side is clamped up to 32).

The graph (models/qwen3vl.cpp:3-186 with clip.cpp's helpers) is a patch embedding (two Conv2D as
im2col + matmul, qwen2vl.cpp:3-30; ggml.c:4762-4784), a 2×2 spatial reorder, the learned position
embeddings bilinearly resized to the patch grid (clip.cpp:312-335; skipped when the grid equals the
stored 48 × 48), ``depth`` pre-LN blocks (LayerNorm, fused QKV + bias, M-RoPE on Q and K, attention,
output projection, residual, LayerNorm, GELU MLP, residual), the post-LN and the 2-layer merger MLP
on 4·n_embd. Attention (clip.cpp:750-822): with flash attention K and V are cast to F16 and fed to
``ggml_flash_attn_ext``; without, V is made contiguous and the KQ matrix ``n_patches² · n_head`` F32
is materialised -- that is what makes ``flash_attn=False`` cost gigabytes.

How this module computes it
---------------------------
:func:`clip_graph_qwen3vl` rebuilds that graph node for node (op, type, shape, views, sources, in
ggml's depth-first order, ggml.c:7245-7352), leaving out the weights (allocated elsewhere, never
touched by the graph allocator), and :func:`graph_alloc_bytes` replays ggml's graph allocator on
it (``ggml_gallocr_alloc_graph_impl`` and the best-fit dynamic allocator, ggml-alloc.c:121-352 and
589-823; CPU buffer alignment 32, ``TENSOR_ALIGNMENT`` ggml-impl.h:44). The allocator lives in
:mod:`qwenfit.core.engines.llama_cpp.ggml_alloc`, shared with the text model's graph
(:mod:`qwenfit.core.engines.llama_cpp.graph`);
:class:`GraphTensor`, :func:`graph_alloc_bytes`, :func:`graph_rows`, :func:`graph_digest` and
``CPU_ALIGNMENT`` are re-exported from it here. The result is the buffer size to the byte:
scripts/vision_memory_fixtures.py checks the rebuilt graph against the graph llama.cpp builds
(qwenfit-clipprobe --dump-graph, every node) and the replay against the bytes llama.cpp reserves,
for every Qwen3.5 vision tower at full size and the tiny fixtures, flash attention on and off, over
image sizes (tests/fixtures/vision_memory; tests/engines/test_vision_memory.py).

At the high-water mark (first block, attention) the buffer holds, with P = patches, E = 4·n_embd·P
(one F32 activation) and R = 12·w·h (the raw image, freed after the patch embedding, whose hole is
then too small for an activation when n_embd > 768): the positions S = 16·P, the residual, the
fused QKV (3E), the roped Q and K, and without flash attention also V and the KQ matrix
KQ = 4·n_head·P² -- placed in the hole the freed QKV leaves when it fits (KQ <= 3E, i.e. P <=
3·n_embd/n_head: images under ~230 × 230 pixels), else at the end. For every Qwen3.5 tower:

* n_embd 1024 / 1152 (2B … 397B): ``R + S + 6E`` with flash attention, ``R + S + 7E + KQ·[KQ > 3E]``
  without -- 260,149,504 / 4,884,066,560 bytes for the 27-layer tower at the 1472² warmup;
* n_embd 768 (0.8B, E = R: Q reuses the image's hole, the F16 K copy lands on top):
  ``S + 6.5E`` / ``S + 7E + KQ·[KQ > 3E]``.

These hold on every measured run and on all 2166 patch grids up to 38 × 38 tried against the replay;
the merger width (out_hidden_size) never reaches the peak, so all 27-layer towers share the numbers.
They are a reading of the replay, not a second implementation: the functions below always replay
(a tiny tower, for one, peaks at the patch embedding instead).

Other backends (estimated, not measured here -- no GPU on the measuring machine):

* CUDA: the same graph in the same order (no graph_optimize hook), flash attention for head sizes 64
  and 72 (ggml-cuda/fattn.cu:576-587; K and V are already F16, so the FA op needs no extra
  scratch), tensors aligned to 128 bytes instead of 32 (ggml-cuda.cu:897-899; every tensor here is
  a multiple of 64 bytes, so at most +64 bytes per live tensor). The two graph inputs are placed on
  the CPU backend (ggml-backend.cpp:944-949) and copied to the GPU at the start of the split, where
  they take the places the CPU-only run gives them: device buffer = this number (± a few hundred
  bytes), plus a host compute buffer of ``12·w·h + 16·n_patches`` bytes (the image and the
  positions: 26.1 MB at the 1472² warmup, 50.6 MB at 2048²).
* Metal: same graph, inputs and flash attention support (ggml-metal-device.m:1727-1747), but the
  backend reorders nodes for concurrency (``ggml_graph_optimize``, ggml-metal-common.cpp:453), which
  can keep one more n_embd × n_patches tensor alive at the high-water mark: up to about +15 % over
  this number (unified memory: it all comes out of the same RAM).
* A backend that cannot run flash attention for the head size falls back to the KQ path under
  ``-fa auto`` (clip.cpp:3740-3763): use ``flash_attn=False``.
"""

from __future__ import annotations

from functools import lru_cache
from math import isqrt

from qwenfit.core.engines.llama_cpp.ggml_alloc import (
    CPU_ALIGNMENT,
    GraphBuilder,
    GraphTensor,
    graph_alloc_bytes,
    graph_digest,
    graph_rows,
)
from qwenfit.core.model.spec import ModelSpec, VisionSpec
from qwenfit.errors import VisionSettingError

__all__ = [
    "CPU_ALIGNMENT",
    "QWEN_VL_MAX_TOKENS",
    "QWEN_VL_MIN_TOKENS",
    "WARMUP_TOKENS",
    "GraphTensor",
    "VisionSettingError",
    "clip_compute_bytes",
    "clip_graph_qwen3vl",
    "graph_alloc_bytes",
    "graph_digest",
    "graph_rows",
    "image_max_pixels",
    "largest_image",
    "mmproj_compute_bytes",
    "warmup_image_size",
]

QWEN_VL_MIN_TOKENS = 8  # clip.cpp:1678 hparams.set_limit_image_tokens(8, 4096)
QWEN_VL_MAX_TOKENS = 4096
WARMUP_TOKENS = 46 * 46  # clip.cpp:1679 hparams.set_warmup_n_tokens(46*46) "avoid OOM on warmup"


# ------------------------------------------------------------------------------------------------
# The Qwen3-VL vision graph (models/qwen3vl.cpp), weights left out
# ------------------------------------------------------------------------------------------------


class _Builder(GraphBuilder):
    """The few ggml ops the graph uses, with ggml's result shapes and types, in ggml's node order
    (:class:`GraphBuilder`)."""

    @staticmethod
    def new(op: str, typ: str, ne: tuple[int, ...], *srcs: GraphTensor | None, name: str = "") -> GraphTensor:
        full = (*ne, 1, 1, 1, 1)[:4]
        return GraphTensor(op, typ, (full[0], full[1], full[2], full[3]), [s for s in srcs if s is not None],
                           name=name)  # fmt: skip

    @staticmethod
    def view(op: str, a: GraphTensor, ne: tuple[int, ...]) -> GraphTensor:
        """RESHAPE / VIEW / PERMUTE: aliases the memory of ``a``'s owner (``view_src``). A view is
        never allocated nor reused in place (it is never "own", ggml-alloc.c:589-591), so its strides
        do not matter here."""
        full = (*ne, 1, 1, 1, 1)[:4]
        return GraphTensor(op, a.type, (full[0], full[1], full[2], full[3]), [a], view_src=a.view_src or a,
                           ext=a.ext)  # fmt: skip

    def input(self, typ: str, ne: tuple[int, ...], name: str) -> GraphTensor:
        t = self.new("NONE", typ, ne, name=name)
        t.flags = 1  # ggml_set_input
        return t


def _cont(b: _Builder, a: GraphTensor, ne: tuple[int, ...], name: str = "") -> GraphTensor:
    return b.new("CONT", a.type, ne, a, name=name)


def _norm(b: _Builder, x: GraphTensor, name: str) -> GraphTensor:
    """build_norm, NORM_TYPE_NORMAL with weight and bias (clip.cpp:591-614)."""
    cur = b.new("NORM", "f32", x.ne, x, name=name)
    cur = b.new("MUL", "f32", cur.ne, cur, name=name + "_w")
    return b.new("ADD", "f32", cur.ne, cur, name=name + "_b")


def _ffn_gelu(b: _Builder, x: GraphTensor, n_up: int, n_down: int, name: str) -> GraphTensor:
    """build_ffn with up+bias, no gate, FFN_GELU, down+bias (clip.cpp:616-706)."""
    n_tok = x.ne[1]
    cur = b.new("MUL_MAT", "f32", (n_up, n_tok), x, name=name + "_up")
    cur = b.new("ADD", "f32", cur.ne, cur, name=name + "_up_b")
    cur = b.new("UNARY", "f32", cur.ne, cur, name=name + "_gelu")
    cur = b.new("MUL_MAT", "f32", (n_down, n_tok), cur, name=name + "_down")
    return b.new("ADD", "f32", cur.ne, cur, name=name + "_down_b")


def _conv2d_patch(b: _Builder, inp_raw: GraphTensor, px: int, py: int, patch: int, n_embd: int,
                  in_ch: int, name: str) -> GraphTensor:  # fmt: skip
    """ggml_conv_2d(kernel F32/F16, image) = im2col (F16) + mul_mat + permute + cont (ggml.c:4762-4784)."""
    k = in_ch * patch * patch
    im2col = b.new("IM2COL", "f16", (k, px, py, 1), inp_raw, name=name + "_im2col")
    r = b.view("RESHAPE", im2col, (k, px * py))
    mm = b.new("MUL_MAT", "f32", (px * py, n_embd), r, name=name + "_mm")
    r4 = b.view("RESHAPE", mm, (px, py, 1, n_embd))
    p = b.view("PERMUTE", r4, (px, py, n_embd, 1))
    return _cont(b, p, (px, py, n_embd, 1), name=name)


def _spatial_reorder(b: _Builder, a: GraphTensor, px: int, py: int, n: int, name: str) -> GraphTensor:
    """The 2×2 merge reorder of qwen3vl.cpp:19-31 (and :41-49 for the position embeddings):
    cont_4d [2n, px/2, py] -> reshape -> permute -> cont_3d [n, px·py]."""
    c = _cont(b, a, (2 * n, px // 2, py, 1), name=name + "_c4")
    r = b.view("RESHAPE", c, (2 * n, px // 2, 2, py // 2))
    p = b.view("PERMUTE", r, (2 * n, 2, px // 2, py // 2))
    return _cont(b, p, (n, px * py, 1), name=name)


def clip_graph_qwen3vl(
    v: VisionSpec, width: int, height: int, *, flash_attn: bool = True
) -> tuple[list[GraphTensor], list[GraphTensor]]:
    """(leafs, nodes) of ``clip_graph_qwen3vl::build`` (models/qwen3vl.cpp:3-186) for one image of
    ``width`` × ``height`` pixels (multiples of patch·merge, as the preprocessor delivers them),
    without the weights. Raises on sizes the graph asserts against
    (qwen2vl.cpp:6-7) with :class:`VisionSettingError`."""
    patch, merge, n = v.patch_size, v.spatial_merge_size, v.hidden_size
    if merge != 2:
        raise VisionSettingError(
            f"vision spatial_merge_size={merge}: llama.cpp's qwen3vl graph (models/qwen3vl.cpp) "
            "reorders 2×2 patches only; no compute buffer can be derived for this tower"
        )
    if width <= 0 or height <= 0 or width % (2 * patch) or height % (2 * patch):
        raise VisionSettingError(f"image {width}x{height}: sides must be positive multiples of {2 * patch} "
                                 "(patch_size × 2, clip_graph_qwen2vl asserts it); pass the size after "
                                 "preprocessing, e.g. largest_image()")  # fmt: skip
    px, py = width // patch, height // patch
    n_pos = px * py
    n_head = v.num_heads
    d_head = n // n_head
    b = _Builder()

    # build_inp_with_temporal_merge (qwen2vl.cpp:3-30): one frame, two Conv2D summed
    inp_raw = b.input("f32", (width, height, v.in_channels, 1), "inp_raw")  # clip.cpp:584-589
    c0 = _conv2d_patch(b, inp_raw, px, py, patch, n, v.in_channels, "patch_embd_0")
    c1 = _conv2d_patch(b, inp_raw, px, py, patch, n, v.in_channels, "patch_embd_1")
    inp = b.new("ADD", "f32", c0.ne, c0, c1, name="patch_embd")
    # spatial merge reorder + patch bias (qwen3vl.cpp:18-37)
    inp = b.view("PERMUTE", inp, (n, px, py, 1))
    inp = _spatial_reorder(b, inp, px, py, n, "inp_reorder")
    inp = b.new("ADD", "f32", inp.ne, inp, name="patch_bias")
    # learned position embeddings, resized to the grid (clip.cpp:312-335; qwen3vl.cpp:40-51)
    side = isqrt(v.num_position_embeddings)
    if px == side and py == side:
        pos = GraphTensor("NONE", "f32", (n, side * side, 1, 1), ext=True, name="v.position_embd.weight")
    else:
        w = GraphTensor("NONE", "f32", (n, side * side, 1, 1), ext=True, name="v.position_embd.weight")
        w3 = b.view("RESHAPE", w, (n, side, side))
        wp = b.view("PERMUTE", w3, (side, side, n, 1))
        up = b.new("UPSCALE", "f32", (px, py, n, 1), wp, name="pos_embd_interp")
        upp = b.view("PERMUTE", up, (n, px, py, 1))
        pos = _cont(b, upp, (n, px * py), name="pos_embd_resized")
    pos = _spatial_reorder(b, pos, px, py, n, "pos_reorder")
    inpL = b.new("ADD", "f32", inp.ne, inp, pos, name="inp_pos_emb")
    positions = b.input("i32", (4 * n_pos,), "positions")  # qwen3vl.cpp:56-58

    for il in range(v.depth):
        cur = _norm(b, inpL, f"ln1-{il}")
        qkv = b.new("MUL_MAT", "f32", (3 * n, n_pos), cur, name=f"qkv-{il}")
        qkv = b.new("ADD", "f32", qkv.ne, qkv, name=f"qkv_b-{il}")
        q = b.view("VIEW", qkv, (d_head, n_head, n_pos))  # qwen3vl.cpp:84-97
        k = b.view("VIEW", qkv, (d_head, n_head, n_pos))
        vv = b.view("VIEW", qkv, (d_head, n_head, n_pos))
        q = b.new("ROPE", "f32", q.ne, q, positions, name=f"Qcur_rope-{il}")  # qwen3vl.cpp:104-109
        k = b.new("ROPE", "f32", k.ne, k, positions, name=f"Kcur_rope-{il}")
        # build_attn (clip.cpp:750-822): Q, K, V ordered first (ggml_build_forward_order)
        for t in (q, k, vv):
            b.expand(t)
        qp = b.view("PERMUTE", q, (d_head, n_pos, n_head, 1))
        kp = b.view("PERMUTE", k, (d_head, n_pos, n_head, 1))
        if flash_attn:
            vp = b.view("PERMUTE", vv, (d_head, n_pos, n_head, 1))
            k16 = b.new("CPY", "f16", kp.ne, kp, name=f"K_f16-{il}")  # ggml_cast (ggml.c:3619-3632)
            k16.srcs.append(k16)
            v16 = b.new("CPY", "f16", vp.ne, vp, name=f"V_f16-{il}")
            v16.srcs.append(v16)
            att = b.new("FLASH_ATTN_EXT", "f32", (d_head, n_head, n_pos, 1), qp, k16, v16, name=f"fattn-{il}")
            att = b.view("RESHAPE", att, (n, n_pos))
        else:
            vp = b.view("PERMUTE", vv, (n_pos, d_head, n_head, 1))
            vc = _cont(b, vp, (n_pos, d_head, n_head, 1), name=f"V_cont-{il}")
            kq = b.new("MUL_MAT", "f32", (n_pos, n_pos, n_head, 1), kp, qp, name=f"kq-{il}")
            kq = b.new("SOFT_MAX", "f32", kq.ne, kq, name=f"kq_softmax-{il}")
            kqv = b.new("MUL_MAT", "f32", (d_head, n_pos, n_head, 1), vc, kq, name=f"kqv-{il}")
            kqv = b.view("PERMUTE", kqv, (d_head, n_head, n_pos, 1))
            att = _cont(b, kqv, (n, n_pos), name=f"kqv_out-{il}")
        cur = b.new("MUL_MAT", "f32", (n, n_pos), att, name=f"attn_out-{il}")
        cur = b.new("ADD", "f32", cur.ne, cur, name=f"attn_out_b-{il}")
        cur = b.new("ADD", "f32", cur.ne, cur, inpL, name=f"ffn_inp-{il}")  # residual (qwen3vl.cpp:119-120)
        inpL = cur
        cur = _norm(b, cur, f"ln2-{il}")
        cur = _ffn_gelu(b, cur, v.intermediate_size, n, f"ffn-{il}")
        inpL = b.new("ADD", "f32", cur.ne, inpL, cur, name=f"layer_out-{il}")  # qwen3vl.cpp:139-140

    emb = _norm(b, inpL, "post_ln")  # qwen3vl.cpp:163-166
    emb = b.view("RESHAPE", emb, (4 * n, n_pos // 4))
    emb = _ffn_gelu(b, emb, 4 * n, v.out_hidden_size, "merger")  # qwen3vl.cpp:170-177
    b.expand(emb)
    return b.leafs, b.nodes


# ------------------------------------------------------------------------------------------------
# What llama.cpp reserves
# ------------------------------------------------------------------------------------------------


def _vision(spec: ModelSpec | VisionSpec) -> VisionSpec:
    v = spec if isinstance(spec, VisionSpec) else spec.vision
    if v is None:
        raise VisionSettingError(
            "this model has no vision tower (no mmproj; Qwen3-Next is text only): there is "
            "no vision compute buffer -- pass a Qwen3.5 model with a vision_config"
        )
    return v


def warmup_image_size(spec: ModelSpec | VisionSpec) -> int:
    """Side of the square dummy image clip.cpp reserves at load: 46 tokens per side
    (clip.cpp:1679; clip-model.h:210-215) = 46·patch·merge = 1472 pixels."""
    v = _vision(spec)
    return isqrt(WARMUP_TOKENS) * v.patch_size * v.spatial_merge_size


def image_max_pixels(spec: ModelSpec | VisionSpec, image_max_tokens: int | None = None) -> int:
    """``image_max_pixels``: --image-max-tokens (default 4096, clip.cpp:1678) × (patch·merge)²
    (clip-model.h:192-197) = 4,194,304 by default."""
    v = _vision(spec)
    tokens = QWEN_VL_MAX_TOKENS if image_max_tokens is None else image_max_tokens
    if tokens <= 0:
        raise VisionSettingError(f"image_max_tokens={tokens}: must be positive (--image-max-tokens)")
    return tokens * (v.patch_size * v.spatial_merge_size) ** 2


def largest_image(spec: ModelSpec | VisionSpec, max_pixels: int) -> tuple[int, int]:
    """The preprocessed image with the most patches under ``max_pixels``: sides multiples of
    a = patch·merge with w·h <= max_pixels (calc_size_preserved_ratio, mtmd-image.cpp:122-153), i.e.
    T = max_pixels // a² merged tokens. The graph's memory depends only on the patch count (every
    tensor is n_patches × something) except for the exact stored grid (48 × 48 patches: no position
    resize), so the most square split of T that is not that grid is returned."""
    v = _vision(spec)
    a = v.patch_size * v.spatial_merge_size
    tokens = max_pixels // (a * a)
    if tokens < 1:
        raise VisionSettingError(f"max_pixels={max_pixels} is below one merged token ({a}x{a} pixels); "
                                 f"use at least {a * a}")  # fmt: skip
    side = isqrt(v.num_position_embeddings) // v.spatial_merge_size
    best = (tokens, 1)
    for h in range(isqrt(tokens), 0, -1):
        if tokens % h == 0 and not (h == side and tokens // h == side):
            best = (tokens // h, h)
            break
    return best[0] * a, best[1] * a


def clip_compute_bytes(
    spec: ModelSpec | VisionSpec, width: int, height: int, *, flash_attn: bool = True
) -> int:
    """Bytes of the compute buffer ggml_backend_sched_reserve sizes for one preprocessed image of
    ``width`` × ``height`` pixels (CPU backend), e.g. 260,149,504 for Qwen3.5-9B's tower at the
    1472 × 1472 warmup with flash attention -- exact (see the module docstring). A few ms per call
    (the 27-block graph is rebuilt and replayed); results are cached."""
    return _clip_compute_bytes(_vision(spec), width, height, flash_attn)


@lru_cache(maxsize=512)
def _clip_compute_bytes(v: VisionSpec, width: int, height: int, flash_attn: bool) -> int:
    leafs, nodes = clip_graph_qwen3vl(v, width, height, flash_attn=flash_attn)
    return graph_alloc_bytes(leafs, nodes)


def mmproj_compute_bytes(
    spec: ModelSpec | VisionSpec,
    *,
    max_pixels: int | None = None,
    image_max_tokens: int | None = None,
    flash_attn: bool = True,
    at_load: bool = False,
) -> int:
    """llama.cpp's vision-encoder compute buffer for this model's mmproj, in bytes (CPU backend, exact).

    ``at_load=True``: the reservation made when the mmproj is loaded -- the graph of the
    1472 × 1472 warmup image (clip.cpp:1679, 3732-3735, 3805-3820), independent of the image
    limits; what ``reserve_compute_meta`` logs and what llama-server's ``--fit`` adds
    (mtmd_get_memory_usage).

    Default: the buffer after the largest image the preprocessor can hand over, which is what a
    deployment has to budget for: ``max(warmup, graph(largest image))`` -- the buffer only grows when
    a bigger image is encoded (clip.cpp:4474-4488; ggml-alloc.c:904-945). The largest image has
    ``image_max_pixels`` = ``max_pixels`` if given, else ``image_max_tokens`` (llama.cpp's
    ``--image-max-tokens``, default 4096) × (patch·merge)² = 2048 × 2048 pixels by default.

    ``flash_attn``: True for ``-fa on`` and for ``-fa auto`` on a backend that runs flash attention
    for the tower's head size (CPU, CUDA, Metal do for 64 and 72); False materialises the
    n_patches² × n_head KQ matrix (17.8 GB for a 2048² image on the 27-layer tower).
    """
    v = _vision(spec)
    ws = warmup_image_size(v)
    warm = clip_compute_bytes(v, ws, ws, flash_attn=flash_attn)
    if at_load:
        return warm
    limit = max_pixels if max_pixels is not None else image_max_pixels(v, image_max_tokens)
    w, h = largest_image(v, limit)
    return max(warm, clip_compute_bytes(v, w, h, flash_attn=flash_attn))
