"""The real default embedder: shapes, normalisation, batching invariance, the graph cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from deskmind.core.embed import onnx_minilm
from deskmind.core.embed.base import EmbedderSpec
from deskmind.core.embed.factory import create_embedder
from deskmind.core.errors import UserInputError

TEXTS = [
    "The cat sat on the mat.",
    "Quarterly tax returns are due at the end of the month.",
    "Knead the sourdough, let it rise overnight, then bake it in a hot oven.",
    "x",
    "Meeting notes: we agreed to ship the release on Friday after the security review, "
    "and Maria will write the announcement.",
]


def test_vectors_are_unit_length_float32_and_in_input_order(embedder) -> None:
    mat = embedder.embed(TEXTS)
    assert mat.shape == (len(TEXTS), 384) and mat.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(mat, axis=1), 1.0, atol=1e-5)
    one_by_one = np.stack([embedder.embed([t])[0] for t in TEXTS])
    np.testing.assert_allclose(mat, one_by_one, atol=2e-5)
    assert embedder.embed([]).shape == (0, 384)


def test_batches_of_mixed_lengths_give_the_same_vectors(embedder) -> None:
    # More texts than one batch, lengths out of order: sorting and padding must not leak.
    texts = [" ".join(["word"] * (1 + (i * 37) % 90)) + f" item {i}" for i in range(onnx_minilm.BATCH * 2 + 3)]
    together = embedder.embed(texts)
    for i in (0, 5, onnx_minilm.BATCH, len(texts) - 1):
        np.testing.assert_allclose(together[i], embedder.embed([texts[i]])[0], atol=2e-5)


def test_query_vector_equals_the_document_vector_of_the_same_text(embedder) -> None:
    for t in TEXTS:
        np.testing.assert_allclose(embedder.embed_query(t), embedder.embed([t])[0], atol=2e-5)


def test_similar_meaning_scores_higher(embedder) -> None:
    q = embedder.embed_query("a kitten resting on a rug")
    cat, tax, bread = embedder.embed(TEXTS[:3])
    assert q @ cat > q @ bread and q @ cat > q @ tax
    q2 = embedder.embed_query("how do I bake bread")
    assert q2 @ bread > q2 @ cat and q2 @ bread > q2 @ tax


def test_long_texts_are_cut_at_256_tokens(embedder) -> None:
    words = [f"w{i}" for i in range(2000)]  # several tokens a word: far past 256
    long = embedder.embed([" ".join(words)])[0]
    shorter = embedder.embed([" ".join(words[:600])])[0]
    np.testing.assert_allclose(long, shorter, atol=1e-6)


def test_optimised_graph_is_cached_and_reused(tmp_path: Path, embedder) -> None:
    cache = tmp_path / "models"
    first = create_embedder(EmbedderSpec(options={"cache_dir": str(cache)}))
    files = list(cache.glob("embedder-*.onnx"))
    assert len(files) == 1 and files[0].stat().st_size > 1_000_000
    mtime = files[0].stat().st_mtime_ns
    second = create_embedder(EmbedderSpec(options={"cache_dir": str(cache)}))
    assert files[0].stat().st_mtime_ns == mtime  # loaded, not rebuilt
    np.testing.assert_allclose(second.embed(TEXTS), first.embed(TEXTS), atol=1e-6)
    np.testing.assert_allclose(second.embed(TEXTS), embedder.embed(TEXTS), atol=1e-5)


def test_damaged_graph_cache_is_rebuilt(tmp_path: Path, embedder) -> None:
    cache = tmp_path / "models"
    create_embedder(EmbedderSpec(options={"cache_dir": str(cache)}))
    (path,) = cache.glob("embedder-*.onnx")
    path.write_bytes(b"not an onnx graph")
    again = create_embedder(EmbedderSpec(options={"cache_dir": str(cache)}))
    assert path.stat().st_size > 1_000_000
    np.testing.assert_allclose(again.embed(TEXTS[:2]), embedder.embed(TEXTS[:2]), atol=1e-5)


def test_spinning_is_an_option(tmp_path: Path, embedder) -> None:
    assert embedder._session.get_session_options().get_session_config_entry(
        "session.intra_op.allow_spinning") == "1"
    quiet = create_embedder(EmbedderSpec(options={"cache_dir": str(tmp_path), "spin": False}))
    assert quiet._session.get_session_options().get_session_config_entry(
        "session.intra_op.allow_spinning") == "0"
    np.testing.assert_allclose(quiet.embed(TEXTS), embedder.embed(TEXTS), atol=1e-5)


def test_unknown_model_is_a_clear_error() -> None:
    with pytest.raises(UserInputError, match="unknown embedding model 'nope'"):
        create_embedder("nope")


# Pairs of paraphrases: each text's nearest other text is its pair.
REAL_TEXTS = [
    "The cat sat on the mat while the dog slept by the fire.",
    "A kitten rested on the rug and the puppy dozed near the fireplace.",
    "Quarterly tax returns are due at the end of the month; late filing costs a penalty.",
    "File your taxes for the quarter before the month ends or pay a fine.",
    "The train to Lisbon leaves at nine from platform four.",
    "Our rail departure for Lisbon is at 9 o'clock, platform 4.",
    "Water the tomatoes every evening in July and August.",
    "In summer, give the tomato plants water each night.",
]


def test_default_model_computes_in_int8_and_agrees_with_fp32(embedder, tmp_path) -> None:
    from deskmind.core.config.settings import Settings
    from deskmind.core.embed.base import DEFAULT_MODEL_ID, FP32_MODEL_ID

    assert Settings().embedder.model_id == DEFAULT_MODEL_ID == embedder.model_id
    assert embedder.compute == "int8" and embedder.model_path != embedder.source_path
    fp32 = create_embedder(EmbedderSpec(FP32_MODEL_ID, {"cache_dir": str(tmp_path)}))
    assert fp32.compute == "fp32" and fp32.model_path == embedder.source_path
    a, b = embedder.embed(REAL_TEXTS), fp32.embed(REAL_TEXTS)
    assert not np.allclose(a, b, atol=1e-3)                  # really a different computation
    assert float(np.min(np.sum(a * b, axis=1))) > 0.97        # ... of nearly the same vectors
    pairs = [i ^ 1 for i in range(len(REAL_TEXTS))]          # 0<->1, 2<->3, ...
    for vecs in (a, b):
        sim = vecs @ vecs.T
        np.fill_diagonal(sim, -1)
        assert list(sim.argmax(axis=1)) == pairs


def test_int8_model_is_derived_once_and_reused(tmp_path) -> None:
    from deskmind.core.embed.base import DEFAULT_MODEL_ID

    first = create_embedder(EmbedderSpec(DEFAULT_MODEL_ID, {"cache_dir": str(tmp_path)}))
    derived = sorted(tmp_path.glob("int8-*.onnx"))
    assert [p.name for p in derived] == [first.model_path.name]
    stamp = derived[0].stat().st_mtime_ns
    second = create_embedder(EmbedderSpec(DEFAULT_MODEL_ID, {"cache_dir": str(tmp_path)}))
    assert second.model_path == first.model_path and derived[0].stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]   # no half-made leftovers
    np.testing.assert_array_equal(first.embed(REAL_TEXTS[:3]), second.embed(REAL_TEXTS[:3]))


def test_an_onnx_model_id_without_its_file_is_refused() -> None:
    with pytest.raises(UserInputError, match="needs its ONNX file"):
        create_embedder(EmbedderSpec("onnx:bge-small-en", {}))


def test_int8_model_is_made_for_the_run_when_the_cache_cannot_hold_it(tmp_path, embedder) -> None:
    from deskmind.core.embed.base import DEFAULT_MODEL_ID

    blocked = tmp_path / "cache"
    blocked.write_bytes(b"a file where the cache folder should be")
    emb = create_embedder(EmbedderSpec(DEFAULT_MODEL_ID, {"cache_dir": str(blocked)}))
    assert blocked.is_file() and not str(emb.model_path).startswith(str(blocked))
    assert emb.model_path.is_file()
    np.testing.assert_array_equal(emb.embed(REAL_TEXTS[:3]), embedder.embed(REAL_TEXTS[:3]))
