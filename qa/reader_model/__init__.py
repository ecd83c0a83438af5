"""Package data: the reader's int8 ONNX graph (see qa/reader.py, training/)."""
