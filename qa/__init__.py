"""qa: answer questions about a collection of articles by quoting them."""

__version__ = "0.1.0"
