"""The index's int8 ONNX encoder against sentence-transformers, and a torch-free query path."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from qa.answering import Answerer
from qa.chunking import chunk_text
from qa.encoder import TorchEncoder
from qa.settings import Settings

from .conftest import SEED_FILE, SEED_QUESTIONS


@pytest.fixture(scope="module")
def torch_encoder():
    return TorchEncoder()


def test_onnx_and_torch_embeddings_agree_on_the_seed_chunks(encoder, torch_encoder):
    text = SEED_FILE.read_text()
    chunks = [text[c.start : c.end] for c in chunk_text(text, encoder.count_tokens)]
    a, b = encoder.embed(chunks), torch_encoder.embed(chunks)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-4)
    assert (a * b).sum(axis=1).min() >= 0.99


def test_both_encoders_give_the_same_answers_to_the_seed_questions(seed_index, torch_encoder):
    onnx = Answerer(Settings(index_dir=seed_index))
    torch = Answerer(Settings(index_dir=seed_index), encoder=torch_encoder)
    for line in SEED_QUESTIONS.read_text().splitlines():
        question = json.loads(line)["question"]
        a, b = onnx.ask(question), torch.ask(question)
        assert a.answered == b.answered, question
        assert [q.text for q in a.quotes[:1]] == [q.text for q in b.quotes[:1]], question


@pytest.mark.two_processes
def test_answering_imports_neither_torch_nor_sentence_transformers(seed_index):
    probe = (
        "import sys; from pathlib import Path; from qa.answering import Answerer; "
        "from qa.settings import Settings; "
        f"a = Answerer(Settings(index_dir=Path({str(seed_index)!r}))); "
        "assert a.ask('What is K-SPACE?').answered; "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') "
        "if m in sys.modules))"
    )
    run = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == "[]"


def test_a_failed_export_is_a_clear_error_and_leaves_no_encoder(tmp_path):
    """The export runs in a child process; when that child fails, the indexer
    gets one EncoderUnavailable line, and nothing half-made is left behind."""
    import qa.encoder as enc

    # An index folder whose path runs through a file: the child cannot create it.
    (tmp_path / "not-a-folder").write_text("a file where the index should go")
    dest = tmp_path / "not-a-folder" / "index" / "encoder"
    with pytest.raises(enc.EncoderUnavailable) as err:
        enc.export_onnx_encoder(dest)
    message = str(err.value)
    assert message.startswith("cannot export the ONNX encoder: ")
    assert "not-a-folder" in message and "Traceback" not in message
    assert len(message.splitlines()) == 1
    assert not enc.has_onnx_encoder(dest)


def test_a_released_encoder_loads_again_and_embeds_the_same(encoder_dir):
    from qa.encoder import load_encoder

    enc = load_encoder(encoder_dir, bulk=True)
    texts = ["The K-SPACE platform was set up in 2021.", "Who led the delegation?"]
    before = enc.embed(texts)
    enc.release()  # what an indexing run does before it publishes
    assert enc.session is None
    assert np.allclose(enc.embed(texts), before, atol=1e-6)
    assert enc.session is not None
