"""llama.cpp builds: which memory rules a given build follows.

qwenfit models llama.cpp at commit 0c1e570 (the tree vendored in llama-cpp-python 0.3.36, newer than
every build below). Older builds differ in ways that change memory; ``engine_version`` ("b9849",
"9849", or a commit prefix of the modelled tree) selects the rules of that build. Build numbers are
llama.cpp's release tags (``bNNNN`` = commits on master).

- **Logits reserved by llama-server.** PR #23861 (commit de6f727, 2026-06-01) lets llama-server reserve
  logits for ``n_parallel x (1 + n_draft)`` rows instead of the whole batch. A benchmark note compares
  de6f727 as newer than b9235, so builds up to b9235 reserve ``n_batch`` rows; from b9236 on the
  limit applies (the boundary is known to lie in b9236..b9294, the first build seen with the limit).
  The library (llama-cpp-python, llama-fit-params) reserves ``n_batch`` rows in every build.
- **The KQ mask with flash attention.** PR #23764 (merged 2026-05-27, five days before #23861) reserves
  the mask in F16; before it the mask input was F32 and cast to F16 once in the graph
  (``ggml_cast``), so the host buffer holds 4 B per mask element and the GPUs an F32 copy and the
  F16 cast. Logs of b8193-b9222 (CUDA, Metal) show the F32 mask (the m4pro MTP log of b9222: host
  buffer 272.29 MiB = 4 B per mask element at 131,072 cells); b9849 (Vulkan) the F16 one. PR #23764
  landed five days before PR #23861 (b9236..b9294): ``KQ_MASK_F16_BUILD`` is the first build after
  b9222.
- **The final norm as an output.** llama.cpp's MTP support (PR #22673, May 2026) keeps the final
  norm (``t_h_nextn``) as a graph output, so it stays allocated until the logits; before it the
  allocator reused its memory (one n_embd x n_tokens F32 tensor less at the logits' peak: b8193 and
  b8854 logs). The boundary lies in b8855..b9222 (b9222 serves MTP): :data:`H_NEXTN_OUTPUT_BUILD`
  is the first build known with it.
- **CUDA's flash-attention workspace.** PR #23907 (f8f0a47a5, opened 2026-05-30) makes ggml-cuda's
  ``get_alloc_size`` reserve the F16 copies of a quantized K/V cache in the compute buffer; before
  it they came from the CUDA pool at run time (not in the logged buffer). Taken from the
  output-limit boundary (:data:`CUDA_FA_WORKSPACE_BUILD`); b8193 logs show no workspace.
- **Gated DeltaNet's q/k norm.** PR #28068 (merged 2026-08-31) replaces ``ggml_l2_norm`` (one
  L2_NORM node) by ``build_gdn_l2_norm`` (RMS_NORM then SCALE, src/models/models.h:14-18) for
  qwen35, qwen35moe and qwen3next: two more nodes per Gated DeltaNet layer, and a different
  allocation. Every field log predates it: b9849 prints ``graph nodes = 1831`` for Qwen3.5-9B
  (24 Gated DeltaNet layers; the modelled tree builds 1879 = 1831 + 2 x 24) and 3727 for
  Qwen3.5-35B-A3B (30 layers; 3787 = 3727 + 2 x 30). :data:`GDN_RMS_NORM_BUILD` is the first build
  after the newest one seen without it.
- **Gated DeltaNet without the fused op.** Builds before the fused GATED_DELTA_NET op ran a prompt
  batch through ``build_delta_net_chunking`` (src/models/delta-net-base.cpp: chunks of 64 tokens, a
  state update per chunk; :mod:`.graph_gdn`). Logs of b8179-b8210 print its node counts (Qwen3.5-9B
  at 512 tokens: 6369; the replay builds 6321, two nodes a layer fewer: not identified) and their
  compute buffers match it; b8836 prints the fused graph. :data:`GDN_FUSED_BUILD` is the first build
  after b8210.
- **Rotated quantized KV.** PR #21038 (commit 744c0c73, merged 2026-04-01) multiplies Q, K, V by a
  Hadamard matrix when the K/V cache is quantized: two more graph inputs (``attn_inp_k_rot`` /
  ``attn_inp_v_rot``, 0.27 MiB in the host buffer at head dim 256) and the matmuls. b8193's q8_0
  logs have neither; b8999 prints ``attn_rot_k``. :data:`KV_ROT_BUILD` is the first build after b8193.
- **Output rows before MTP support.** Before PR #22673 qwen35.cpp picked the output rows in the last
  layer (``ggml_get_rows`` of ``cur`` and ``inpSA``, as llama.cpp's other models do), after it once
  after the final norm: one graph node less (logs before b9222 print 3729 nodes for Qwen3.5-35B-A3B,
  3657 for Qwen3.6-27B; the modelled tree builds 3728 / 3656) and one n_embd x n_outputs tensor less.
- **Pipeline copies of unread inputs.** ggml-backend's pass 6 now copies every graph input "including
  inputs not consumed by any node (e.g. the embeddings input of a text-only batch)"
  (ggml-backend.cpp:1407-1440); older builds copied the inputs a node reads, found in pass 5. The
  2x RTX 3090 log of b8210 holds the embeddings input once (1674.08 MiB = 4 x the F32 KQ mask and
  the other read inputs + 2 x n_embd x 512 x 4 B), so :data:`SCHED_ALL_INPUTS_BUILD` is the first
  build after b8210 (the change is not identified; the modelled tree has it).
- **graph_optimize's allocation dependencies.** PR #27301 (2026-08-18) lets a backend's
  ``graph_optimize`` keep tensors alive for its fusions (ggml-cuda's top-k MoE routing and weighted
  reduction, ggml-vulkan's top-k MoE from PR #28422, Metal's from PR #28948); before it fusions that
  would overlap were skipped at run time and the compute buffer held no extra lifetimes.
- **ggml-vulkan's node reorder** (``ggml_vk_graph_optimize``, since PR #15489): PR #27220
  (2026-08-23) pulls the MUL consuming a UNARY forward (UNARY + MUL fusion) and PR #27812
  (2026-08-27) adds view-alias dependencies to ``is_src_of``; both change the order ggml-alloc sees.
- All three landed in the same weeks as PR #28068 and after b9849: every Vulkan log of b9849 is
  reproduced to the printed 0.01 MiB without them (Qwen3.5-2B/4B/9B, Qwen3.6-27B, 35B-A3B) and not
  with them. :data:`GRAPH_ALLOC_DEPS_BUILD` and the Vulkan boundaries are the first build after b9849.
"""

from __future__ import annotations

import re

from qwenfit.errors import SettingError

__all__ = [
    "CUDA_FA_WORKSPACE_BUILD", "GDN_FUSED_BUILD", "GDN_RMS_NORM_BUILD", "GRAPH_ALLOC_DEPS_BUILD",
    "H_NEXTN_OUTPUT_BUILD", "KQ_MASK_F16_BUILD", "KV_ROT_BUILD", "MODELLED_COMMIT", "OUTPUT_LIMIT_BUILD",
    "SCHED_ALL_INPUTS_BUILD", "VK_UNARY_MUL_BUILD", "VK_VIEW_ALIAS_BUILD", "build_number",
    "cuda_fa_workspace", "gdn_fused", "gdn_l2_op", "graph_alloc_deps", "h_nextn_output", "kq_mask_f32",
    "kv_rotation", "sched_all_inputs", "server_limits_outputs", "vk_unary_mul", "vk_view_alias",
]  # fmt: skip

MODELLED_COMMIT = "0c1e570"
OUTPUT_LIMIT_BUILD = 9236  # first build with PR #23861 (de6f727): see the module docstring
KQ_MASK_F16_BUILD = 9223  # PR #23764 (F16 mask with flash attention): after b9222 (F32 in its log)
H_NEXTN_OUTPUT_BUILD = 9222  # PR #22673 (MTP: the final norm kept as an output): first build known
CUDA_FA_WORKSPACE_BUILD = 9236  # PR #23907 (FA's F16 K/V copies in the compute buffer): see above
SCHED_ALL_INPUTS_BUILD = 8864  # ggml-backend pass 6 copies every graph input: after b8863 (era-scored record)
GDN_FUSED_BUILD = 8211  # the fused GATED_DELTA_NET op for prompt batches: after b8210
KV_ROT_BUILD = 8194  # PR #21038 (Hadamard rotation of a quantized KV cache): after b8193
GRAPH_ALLOC_DEPS_BUILD = 9850  # PR #27301 (graph_optimize allocation dependencies): after b9849
VK_UNARY_MUL_BUILD = 9850  # PR #27220 (Vulkan UNARY + MUL fusion in the reorder): after b9849
VK_VIEW_ALIAS_BUILD = 9850  # PR #27812 (Vulkan reorder: view-alias dependencies): after b9849
GDN_RMS_NORM_BUILD = 9850  # PR #28068 (GDN q/k norm as RMS_NORM + SCALE): after b9849

_BUILD = re.compile(r"^b?(\d{3,6})(?:[-\s(].*)?$")


def build_number(version: str | None) -> int | None:
    """The build number of ``version`` (None: the modelled tree, newer than every numbered rule)."""
    if version is None:
        return None
    v = str(version).strip()
    if (MODELLED_COMMIT.startswith(v.lower()) and len(v) >= 7) or v.lower().startswith(MODELLED_COMMIT):
        return None
    m = _BUILD.match(v)
    if not m:
        raise SettingError(
            f"llama.cpp engine_version {version!r}: give a build number such as 'b9849' (the `build:` line "
            f"of llama.cpp's log), or {MODELLED_COMMIT!r} for the tree qwenfit models"
        )
    return int(m.group(1))


def server_limits_outputs(build: int | None) -> bool:
    """Whether llama-server of this build reserves logits only for the rows it can sample."""
    return build is None or build >= OUTPUT_LIMIT_BUILD


def kq_mask_f32(build: int | None) -> bool:
    """Whether this build reserves flash attention's KQ mask in F32 (and casts it to F16 in the graph)."""
    return build is not None and build < KQ_MASK_F16_BUILD


def cuda_fa_workspace(build: int | None) -> bool:
    """Whether ggml-cuda of this build reserves flash attention's F16 K/V copies in the compute buffer."""
    return build is None or build >= CUDA_FA_WORKSPACE_BUILD


def h_nextn_output(build: int | None) -> bool:
    """Whether this build keeps the final norm as a graph output (llama.cpp's MTP support)."""
    return build is None or build >= H_NEXTN_OUTPUT_BUILD


def gdn_l2_op(build: int | None) -> bool:
    """Whether this build normalises Gated DeltaNet's q and k with one L2_NORM op (before PR #28068)."""
    return build is not None and build < GDN_RMS_NORM_BUILD


def graph_alloc_deps(build: int | None) -> bool:
    """Whether a backend's graph_optimize adds allocation dependencies in this build (PR #27301)."""
    return build is None or build >= GRAPH_ALLOC_DEPS_BUILD


def vk_unary_mul(build: int | None) -> bool:
    """Whether ggml-vulkan's reorder pulls UNARY + MUL together in this build (PR #27220)."""
    return build is None or build >= VK_UNARY_MUL_BUILD


def vk_view_alias(build: int | None) -> bool:
    """Whether ggml-vulkan's reorder sees view-alias dependencies in this build (PR #27812)."""
    return build is None or build >= VK_VIEW_ALIAS_BUILD


def kv_rotation(build: int | None) -> bool:
    """Whether this build rotates a quantized K/V cache (PR #21038)."""
    return build is None or build >= KV_ROT_BUILD


def sched_all_inputs(build: int | None) -> bool:
    """Whether the scheduler gives pipeline copies to every graph input (else the inputs a node reads)."""
    return build is None or build >= SCHED_ALL_INPUTS_BUILD


def gdn_fused(build: int | None) -> bool:
    """Whether a prompt batch of this build runs Gated DeltaNet as the fused GATED_DELTA_NET op."""
    return build is None or build >= GDN_FUSED_BUILD
