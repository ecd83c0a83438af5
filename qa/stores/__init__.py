"""Stores of the index: the boundary (base), store URIs (uri), Milvus (milvus),
and `open_store` (opening), which picks one from the settings.

The index directory (qa.store) is the default store; `qa.stores.milvus` keeps
the same versions in Milvus. Nothing here imports pymilvus until a Milvus
store is opened.
"""

from qa.stores.base import ReadView, Store, WriteSession
from qa.stores.opening import open_store
from qa.stores.uri import StoreURI, parse_store_uri

__all__ = ["ReadView", "Store", "StoreURI", "WriteSession", "open_store", "parse_store_uri"]
