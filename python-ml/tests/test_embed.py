"""Embeddings through the service equal sentence-transformers called directly."""

import numpy as np
import pytest

from conftest import AUTH, error_code, pb

MODEL = "sentence-transformers/all-MiniLM-L6-v2"
SENTENCES = ["A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.",
             "Quantum chromodynamics describes the strong interaction."]


def _embed(text, inputs, normalize=True):
    reply = text.Embed(pb.EmbedRequest(model=MODEL, inputs=inputs, normalize=normalize), metadata=AUTH)
    return np.frombuffer(reply.vectors, "<f4").reshape(reply.count, reply.dimensions), reply


def test_paraphrases_score_higher_than_unrelated(text):
    vectors, reply = _embed(text, SENTENCES)
    assert reply.dimensions == 384 and reply.count == 4
    paraphrase = float(vectors[0] @ vectors[1])
    unrelated = float(vectors[0] @ vectors[3])
    assert paraphrase > 0.6 > unrelated
    assert paraphrase > unrelated + 0.4
    assert reply.prompt_tokens > len(SENTENCES)


def test_vectors_equal_sentence_transformers_directly(text):
    from sentence_transformers import SentenceTransformer

    from tabagent_ml.models import builtin_embedding

    direct = SentenceTransformer(str(builtin_embedding(MODEL)), device="cpu")
    want = direct.encode(SENTENCES, normalize_embeddings=True, convert_to_numpy=True)
    got, _ = _embed(text, SENTENCES)
    np.testing.assert_allclose(got, want, atol=1e-5)
    raw, _ = _embed(text, SENTENCES, normalize=False)
    np.testing.assert_allclose(raw, direct.encode(SENTENCES, convert_to_numpy=True), atol=1e-5)


def test_empty_input_is_refused(text):
    import grpc

    with pytest.raises(grpc.RpcError) as caught:
        text.Embed(pb.EmbedRequest(model=MODEL, inputs=[]), metadata=AUTH)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_code(caught.value) == "validation_failed"
