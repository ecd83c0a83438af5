"""The whole BBC corpus (2,225 files): minutes long, so only in `make test-all`."""

from __future__ import annotations

import pytest

from qa.answering import Answerer
from qa.indexer import index_paths
from qa.settings import Settings
from tests.conftest import store_at

from .conftest import BBC_DIR

pytestmark = pytest.mark.slow


def test_every_bbc_file_is_read_and_each_distinct_article_indexed_once(index_dir):
    store = store_at(index_dir)
    report = index_paths([BBC_DIR], store)
    # 98 files are byte-identical copies of others in the published data set: the
    # contract says the same article indexed twice is not duplicated.
    assert report.problems == []
    assert report.added + report.duplicates == 2225
    assert report.duplicates == 98
    snap = store.open()
    assert snap.n_articles == 2127
    assert len(snap.dense.chunks) == snap.n_chunks > 10_000

    again = index_paths([BBC_DIR], store)
    assert (again.added, again.updated, again.unchanged) == (0, 0, 2127)

    answer = Answerer(Settings(index_dir=index_dir)).ask(
        "How much did Time Warner's quarterly profits rise?"
    )
    top = answer.quotes[0]
    assert answer.answered and top.article.title == "Ad sales boost Time Warner profit"
    assert snap.article(top.article.id).text[top.start : top.end] == top.text
