"""Stores of the index: the boundary (base), store URIs (uri), and Milvus (milvus).

The index directory (qa.store) is the default store; `qa.stores.milvus` keeps
the same versions in Milvus. Nothing here imports pymilvus until a Milvus
store is opened.
"""

from qa.stores.base import ReadView, Store, WriteSession
from qa.stores.uri import StoreURI, parse_store_uri

__all__ = ["ReadView", "Store", "StoreURI", "WriteSession", "parse_store_uri"]
