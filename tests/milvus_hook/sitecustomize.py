"""Test-only: run the suite's index on Milvus (`pytest --qa-store=milvus` or `=milvus-server`).

tests/conftest.py puts this folder on PYTHONPATH and sets QA_TEST_STORE,
so every Python process of the run (pytest itself, and each `qa` command or
server a test starts) imports it at start-up. It makes a `Settings` that names
no store keep its index in Milvus (tests/milvus_hook/redirect.py says where), so
tests written against index directories run unchanged against Milvus: the
directory then holds only the encoder and the sources registry, as it does for
a Milvus user.
"""

import os

if os.environ.get("QA_TEST_STORE") in ("milvus", "milvus-server"):
    from tests.milvus_hook.redirect import install

    install()
