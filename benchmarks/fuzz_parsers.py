"""Fuzz qwenfit's parsers of untrusted input: safetensors headers, GGUF headers, shard indexes and
config.json. Each gets ``--count`` generated inputs (default 100,000), mutated from valid seeds
(the committed tiny checkpoints and GGUFs built from them).

Every input must either parse or raise a ``QwenfitError`` that names the source; anything else
(another exception, or one input taking more than ``--slow`` seconds) is a finding. The report
prints counts per parser and the first findings, and exits 1 if there are any.

    .venv/bin/python benchmarks/fuzz_parsers.py              # 100,000 inputs per parser
    .venv/bin/python benchmarks/fuzz_parsers.py --count 2000 # a quick run
"""

from __future__ import annotations

import argparse
import io
import json
import random
import struct
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from qwenfit.errors import QwenfitError  # noqa: E402
from qwenfit.loaders.config import spec_from_config  # noqa: E402
from qwenfit.loaders.gguf import read_gguf_from  # noqa: E402
from qwenfit.loaders.safetensors import read_header_from, validate_weight_map  # noqa: E402

TINY = REPO / "tests" / "fixtures" / "tiny"
INTERESTING_BYTES = (0x00, 0xFF, 0x7F, 0x80, 0x01, 0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x5D)
INTERESTING_INTS = (0, 1, 2**31 - 1, 2**32 - 1, 2**32, 2**63 - 1, 2**63, 2**64 - 1, 7, 8, 32, 255)


@dataclass
class Tally:
    parsed: int = 0
    rejected: int = 0
    findings: list[str] = field(default_factory=list)
    slowest_s: float = 0.0


def mutate_bytes(rng: random.Random, seed: bytes) -> bytes:
    data = bytearray(seed)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        if not data:
            data += bytes([rng.randrange(256)])
        pos = rng.randrange(len(data))
        if op == 0:  # flip a bit
            data[pos] ^= 1 << rng.randrange(8)
        elif op == 1:  # an interesting byte
            data[pos] = rng.choice(INTERESTING_BYTES)
        elif op == 2:  # truncate
            del data[pos:]
        elif op == 3:  # insert random bytes
            data[pos:pos] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 16)))
        elif op == 4:  # overwrite 8 bytes with an extreme little-endian integer
            data[pos : pos + 8] = struct.pack("<Q", rng.choice(INTERESTING_INTS))
        elif op == 5:  # overwrite 4 bytes
            data[pos : pos + 4] = struct.pack("<I", rng.choice(INTERESTING_INTS) & 0xFFFFFFFF)
        else:  # duplicate a region
            end = min(len(data), pos + rng.randint(1, 64))
            data[pos:pos] = data[pos:end]
    return bytes(data)


def mutate_json(rng: random.Random, value: object, depth: int = 0) -> object:
    """Replace, delete or retype random parts of a JSON document."""
    if isinstance(value, dict) and value and depth < 4:
        out = dict(value)
        for _ in range(rng.randint(1, 3)):
            key = rng.choice(list(out))
            choice = rng.randrange(4)
            if choice == 0:
                del out[key]
            elif choice == 1:
                out[key] = mutate_json(rng, out[key], depth + 1)
            elif choice == 2:
                out[key] = rng.choice([None, -1, 0, 2**70, 1.5, "x", [], {}, True, [1, "a"], float("nan")])
            else:
                out[key + rng.choice(["", "_", "x"])] = out[key]
            if not out:
                break
        return out
    if isinstance(value, list) and value:
        out_list = list(value)
        op = rng.randrange(3)
        if op == 0:
            out_list.pop(rng.randrange(len(out_list)))
        elif op == 1:
            out_list.append(rng.choice(out_list))
        else:
            out_list[rng.randrange(len(out_list))] = rng.choice(["full_attention", "sliding", 3, None])
        return out_list
    if isinstance(value, int) and not isinstance(value, bool):
        return rng.choice([-value, 0, value + 1, value * 3, 2**63, -1])
    return value


def run(name: str, count: int, make: Callable[[], object], parse: Callable[[object], None], slow_s: float) -> Tally:
    tally = Tally()
    for i in range(count):
        data = make()
        start = time.perf_counter()
        try:
            parse(data)
        except QwenfitError as exc:
            if "fuzz" not in str(exc):
                tally.findings.append(f"{name}#{i}: error does not name its source: {exc}")
            tally.rejected += 1
        except Exception as exc:
            tally.findings.append(f"{name}#{i}: {type(exc).__name__}: {exc!s:.200} input={data!r:.200}")
        else:
            tally.parsed += 1
        elapsed = time.perf_counter() - start
        tally.slowest_s = max(tally.slowest_s, elapsed)
        if elapsed > slow_s:
            tally.findings.append(f"{name}#{i}: took {elapsed:.3f} s")
    return tally


def gguf_seed() -> bytes:
    """A GGUF written by gguf-py from a tiny config (builders.write_gguf), read into memory."""
    import tempfile

    from builders import gguf_of, tiny_config, write_gguf

    spec = spec_from_config(tiny_config(moe=True, vision=False))
    arch, meta, tensors = gguf_of(spec)
    with tempfile.TemporaryDirectory() as tmp:
        path = write_gguf(Path(tmp) / "seed.gguf", arch, meta, tensors, n_vocab_tokens=64)
        return path.read_bytes()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--count", type=int, default=100_000, help="inputs per parser")
    ap.add_argument("--seed", type=int, default=20261129)
    ap.add_argument("--slow", type=float, default=0.5, help="seconds one input may take")
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)

    # Parsers read only the header; the data section matters only through the file size. So each
    # input is (mutated header bytes, claimed file size): mostly the seed's real size, sometimes off.
    st_seeds = []
    for p in sorted(TINY.glob("*/*.safetensors")):
        raw = p.read_bytes()
        st_seeds.append((raw[: 8 + struct.unpack("<Q", raw[:8])[0]], len(raw)))
    gguf = gguf_seed()
    from qwenfit.loaders.gguf import read_gguf_from as _probe

    gguf_seed_head = (gguf[: _probe(io.BytesIO(gguf), len(gguf), source="seed").data_offset], len(gguf))

    def with_size(head: bytes, size: int) -> tuple[bytes, int]:
        mutated = mutate_bytes(rng, head)
        roll = rng.random()
        if roll < 0.8:
            return mutated, size + len(mutated) - len(head)
        return mutated, max(len(mutated), size + rng.choice((-1, 1, -4096, 4096, 2**40)))
    configs = [json.loads((p / "config.json").read_text()) for p in sorted(TINY.iterdir()) if p.is_dir()]
    indexes = [json.loads(p.read_text()) for p in TINY.glob("*/model.safetensors.index.json")]

    def parse_st(data: object) -> None:
        head, size = data  # type: ignore[misc]
        read_header_from(io.BytesIO(head), size, source="fuzz.safetensors", file="fuzz.safetensors")

    def parse_gguf(data: object) -> None:
        head, size = data  # type: ignore[misc]
        read_gguf_from(io.BytesIO(head), size, source="fuzz.gguf")

    def parse_config(data: object) -> None:
        spec = spec_from_config(data, source="fuzz/config.json")  # type: ignore[arg-type]
        _ = spec.params.total

    def parse_index(data: object) -> None:
        validate_weight_map(data, source="fuzz/model.safetensors.index.json")

    jobs: list[tuple[str, Callable[[], object], Callable[[object], None]]] = [
        ("safetensors", lambda: with_size(*rng.choice(st_seeds)), parse_st),
        ("gguf", lambda: with_size(*gguf_seed_head), parse_gguf),
        ("config.json", lambda: mutate_json(rng, rng.choice(configs)), parse_config),
        ("index.json", lambda: mutate_json(rng, rng.choice(indexes)), parse_index),
    ]
    findings = 0
    print(f"{'parser':<12} {'inputs':>8} {'parsed':>8} {'rejected':>9} {'findings':>9} {'slowest':>9} {'time':>7}")
    for name, make, parse in jobs:
        start = time.perf_counter()
        t = run(name, args.count, make, parse, args.slow)
        took = time.perf_counter() - start
        print(f"{name:<12} {args.count:>8,} {t.parsed:>8,} {t.rejected:>9,} {len(t.findings):>9} "
              f"{t.slowest_s * 1000:>7.1f}ms {took:>6.1f}s")
        for line in t.findings[:10]:
            print("   ", line)
        findings += len(t.findings)
    print("no findings" if not findings else f"{findings} findings")
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
