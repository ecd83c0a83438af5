"""Chunks are whole sentences, bounded in the model's own tokens, with exact offsets."""

from __future__ import annotations

from qa.chunking import ChunkerSettings, chunk_text

from .conftest import BBC_DIR, SEED_FILE


def test_chunks_are_sentence_aligned_and_within_the_token_budget(encoder):
    text = SEED_FILE.read_text()
    chunks = chunk_text(text, encoder.count_tokens)
    settings = ChunkerSettings()
    assert len(chunks) > 5
    sizes = encoder.count_tokens([text[c.start : c.end] for c in chunks])
    assert max(sizes) <= settings.max_tokens
    for c in chunks:
        assert (c.start, c.end) == (c.sentences[0][0], c.sentences[-1][1])
    all_sentences = [s for c in chunks for s in c.sentences]
    assert all_sentences == sorted(all_sentences)


def test_a_sentence_longer_than_the_model_limit_is_cut_at_words(encoder):
    text = "Intro sentence here.\n\n" + " ".join(f"word{i}" for i in range(600)) + "."
    chunks = chunk_text(text, encoder.count_tokens)
    sizes = encoder.count_tokens([text[c.start : c.end] for c in chunks])
    assert len(chunks) >= 3 and max(sizes) <= ChunkerSettings().max_tokens
    assert all(text[c.start].isalnum() and not text[c.end - 1].isspace() for c in chunks)


def test_chunks_begin_at_paragraphs_unless_a_paragraph_is_too_long(encoder):
    from qa.chunking import paragraph_spans

    text = (BBC_DIR / "business" / "001.txt").read_text().split("\n", 2)[2]
    paragraphs = paragraph_spans(text)
    chunks = chunk_text(text, encoder.count_tokens)
    target = ChunkerSettings().target_tokens
    para_starts = {a for a, _ in paragraphs}
    assert len(chunks) > 1
    for c in chunks:
        if c.start not in para_starts:  # a continuation: only inside an over-long paragraph
            a, b = next((a, b) for a, b in paragraphs if a < c.start < b)
            assert encoder.count_tokens([text[a:b]])[0] > target
