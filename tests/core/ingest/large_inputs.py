"""Large inputs made on the fly (never committed): text that is large in bytes and in chunks,
made of a few hundred distinct paragraphs so the real embedder has little to embed (repeated
text is embedded once) while chunking, staging, storing and the full-text index see it all.
Used by tests/core/ingest/test_memory_bounded.py and bench/index_memory.py."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

MARKER = "quetzalcoatlus"  # a word found only once in each input, in its middle


def _paragraphs(distinct: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    vocab = [f"{rng.choice('bcdfghklmnprstvz')}{rng.choice('aeiou')}{rng.choice('lmnrst')}"
             f"{rng.choice('aeiou')}{rng.choice('bcdfgkmnpt')}" for _ in range(4000)]
    out = []
    for i in range(distinct):
        words = rng.choices(vocab, k=170)
        sentences = [" ".join(words[j:j + 17]).capitalize() + "." for j in range(0, 170, 17)]
        out.append(f"Paragraph {i}. " + " ".join(sentences))
    return out


def _lines(mb: float, distinct: int, seed: int, shape: str) -> list[str]:
    """About ``mb`` MB of text in ``shape`` (text, markdown, csv, code) as a list of blocks."""
    paras = _paragraphs(distinct, seed)
    target = int(mb * 1024 * 1024)
    blocks: list[str] = []
    size = i = 0
    middle_done = False
    while size < target:
        p = paras[i % distinct]
        if shape == "markdown":
            block = (f"## Part {i // 50}\n\n" if i % 50 == 0 else "") + p + "\n\n"
        elif shape == "csv":
            # One row per line and no blank line: a single paragraph, cut at sentence ends.
            # Rows repeat with the paragraphs, so the chunks do too (a running row number would
            # make every chunk new text to embed).
            block = f"{i % distinct},\"{p}\"\n"
        elif shape == "code":
            block = f"def step_{i % distinct}_{i // distinct}(x):\n    \"\"\"{p}\"\"\"\n    return x + {i}\n\n\n"
        else:
            block = p + "\n\n"
        if not middle_done and size >= target // 2:
            block += f"The {MARKER} flew over the estuary at dawn.\n\n"
            middle_done = True
        blocks.append(block)
        size += len(block)
        i += 1
    return blocks


def write_large(path: Path, mb: float, shape: str = "text", distinct: int = 200, seed: int = 7) -> Path:
    """Write about ``mb`` MB of text; ``shape`` is text, markdown, csv or code; a ``.gz``
    suffix gzips it (the inflated size is ``mb``)."""
    data = "".join(_lines(mb, distinct, seed, shape)).encode()
    if path.suffix == ".gz":
        path.write_bytes(gzip.compress(data, 6))
    else:
        path.write_bytes(data)
    return path
