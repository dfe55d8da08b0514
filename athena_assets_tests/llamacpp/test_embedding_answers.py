"""Reading a /v1/embeddings answer (pure logic): the base64 float32 vectors the resource asks for, the
JSON lists of a server that ignores the encoding asked for, and answers that are neither."""

import base64

import numpy as np
import pytest

from resources.llamacpp.embedding_request import embeddings_request, response_vectors
from resources.llamacpp.http import LlamaCppResponseError


def _answer(*embeddings: object) -> dict[str, object]:
    # Listed out of order: the answer's `index` decides the order.
    return {"data": [{"index": index, "embedding": e} for index, e in reversed(list(enumerate(embeddings)))]}


def test_base64_vectors_decode_to_the_server_floats_in_input_order() -> None:
    first, second = np.array([0.25, -1.5, 3.0], dtype="<f4"), np.array([1e-8, 0.0, -2.0], dtype="<f4")
    encoded = [base64.b64encode(vector.tobytes()).decode() for vector in (first, second)]
    assert response_vectors(_answer(*encoded), 2) == [first.tolist(), second.tolist()]
    assert embeddings_request(["a", "b"]) == {"input": ["a", "b"], "encoding_format": "base64"}


def test_json_lists_from_a_server_that_ignores_the_encoding_are_read_as_they_are() -> None:
    assert response_vectors(_answer([0.5, 0.5], [1.0, 0.0]), 2) == [[0.5, 0.5], [1.0, 0.0]]


@pytest.mark.parametrize(
    ("embedding", "message"),
    [("not base64!", "not base64"), (base64.b64encode(b"12345").decode(), "5 bytes, not float32")],
)
def test_a_broken_vector_is_a_response_error_saying_what_came(embedding: str, message: str) -> None:
    with pytest.raises(LlamaCppResponseError, match=message):
        response_vectors(_answer(embedding), 1)


def test_a_wrong_number_of_vectors_is_a_response_error() -> None:
    with pytest.raises(LlamaCppResponseError, match="returned 1 vectors for 2 inputs"):
        response_vectors(_answer([1.0]), 2)
