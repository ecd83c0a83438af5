"""Starting a reader run from a finished one (training/train_reader.py --init):
a shallower run grows into a deeper reader, never the other way round; and the
exported graph (--init-onnx) reads back as the weights that were exported."""

import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch

from qa.encoder import packaged_model_path
from qa.reader import Reader, encode_pairs, load_tokenizer, pad
from tests.conftest import PROJECT
from training.train_reader import (
    ReaderNet,
    export,
    load_checkpoint,
    load_onnx_weights,
    loss_of,
    make_batch,
)


@pytest.fixture(scope="module")
def two_layer_run(tmp_path_factory):
    net = ReaderNet(packaged_model_path(), layers=2)
    with torch.no_grad():
        # Stand-ins for what a run learnt: weights the packaged encoder never had.
        net.relevance.weight.fill_(0.5)
        net.encoder.encoder.layer[1].output.dense.bias.fill_(0.25)
    path = tmp_path_factory.mktemp("run") / "checkpoint.pt"
    torch.save({"net": net.state_dict()}, path)
    return path


def test_a_shallower_run_grows_with_the_packaged_layers_above_it(two_layer_run):
    net = ReaderNet(packaged_model_path(), layers=3)
    load_checkpoint(net, two_layer_run)
    layers = net.encoder.encoder.layer
    assert torch.all(net.relevance.weight == 0.5)
    assert torch.all(layers[1].output.dense.bias == 0.25)
    packaged = ReaderNet(packaged_model_path(), layers=3).encoder.encoder.layer[2]
    assert torch.equal(layers[2].output.dense.weight, packaged.output.dense.weight)


def test_a_deeper_run_does_not_fit_a_shallower_reader(two_layer_run):
    net = ReaderNet(packaged_model_path(), layers=1)
    with pytest.raises(SystemExit, match="does not fit a 1-layer reader"):
        load_checkpoint(net, two_layer_run)


@pytest.mark.parametrize("content", [None, b"not a checkpoint", b""])
def test_a_missing_or_corrupt_checkpoint_stops_with_its_name(tmp_path, content):
    path = tmp_path / "checkpoint.pt"
    if content is not None:
        path.write_bytes(content)
    net = ReaderNet(packaged_model_path(), layers=1)
    with pytest.raises(SystemExit, match=r"checkpoint\.pt: not a train_reader checkpoint"):
        load_checkpoint(net, path)


@pytest.fixture(scope="module")
def exported_run(tmp_path_factory):
    """A one-layer reader with weights of its own, exported as answering loads it."""
    torch.manual_seed(3)
    net = ReaderNet(packaged_model_path(), layers=1)
    with torch.no_grad():
        net.relevance.weight.normal_(0, 0.1)
        net.encoder.encoder.layer[0].attention.self.key.weight.mul_(1.5)
        net.encoder.encoder.layer[0].attention.self.value.bias.fill_(0.25)
    tokenizer = load_tokenizer(packaged_model_path() / "tokenizer.json")
    path = export(net, tmp_path_factory.mktemp("out"), tokenizer)
    return net, path


def test_the_export_is_one_fused_int8_graph(exported_run):
    _, path = exported_run
    ops = [n.op_type for n in onnx.load(str(path)).graph.node]
    assert ops.count("QAttention") == 1  # one layer: one attention operator
    assert "MatMul" not in ops  # every product is int8
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # no fp32 left behind


def test_an_exported_reader_loads_back_as_its_weights(exported_run):
    net, path = exported_run
    back = ReaderNet(packaged_model_path(), layers=1)
    load_onnx_weights(back, path)
    want, got = net.state_dict(), back.state_dict()
    for key in want:
        if key.startswith("encoder.pooler."):
            continue
        # int8: within a step of the matrix's range
        assert torch.allclose(got[key], want[key], atol=float(want[key].abs().max()) / 100), key
    layer = back.encoder.encoder.layer[0].attention.self
    assert torch.all(layer.value.bias == 0.25)  # the value third of the fused bias, kept in float


def test_the_exported_graph_reads_as_the_network_does(exported_run):
    net, path = exported_run
    question, sentences = "Who wrote it?", ["She wrote the book in 1990.", "It rained."]
    before = ["A book about the sea.", ""]
    readings = Reader(path).read(question, sentences, before)
    tokenizer = load_tokenizer(packaged_model_path() / "tokenizer.json")
    ids, types, mask = (
        torch.from_numpy(x) for x in pad(encode_pairs(tokenizer, question, sentences, before))
    )
    with torch.no_grad():
        rel, _, _ = net(ids, mask, types)
    assert np.allclose([r.logit for r in readings], rel.numpy(), atol=0.1)


@pytest.mark.parametrize("content", [None, b"not a graph", b""])
def test_a_missing_or_corrupt_graph_stops_with_its_name(tmp_path, content):
    path = tmp_path / "reader.onnx"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(SystemExit, match=r"reader\.onnx: not an exported reader"):
        load_onnx_weights(ReaderNet(packaged_model_path(), layers=1), path)


def test_a_shallower_graph_does_not_fill_a_deeper_reader(exported_run):
    _, path = exported_run
    with pytest.raises(SystemExit, match="not an exported reader of this depth"):
        load_onnx_weights(ReaderNet(packaged_model_path(), layers=2), path)


def _question_groups() -> list[list[dict]]:
    """Two questions of four pairs each (the answer and three near misses), as
    mine_reader_pairs writes them, and one asked without its paragraph (no answer)."""

    def pair(question, sentence, label, span=None):
        return {"question": question, "sentence": sentence, "before": "", "label": label,
                "span": span}  # fmt: skip

    q1, q2 = "When was the bridge opened?", "Who designed the bridge?"
    return [
        [
            pair(q1, "The bridge was opened in 1932.", 1, (27, 31)),
            pair(q1, "The bridge is painted red.", 0),
            pair(q1, "The bridge carries a railway.", 0),
            pair(q1, "Tolls were abolished later.", 0),
        ],
        [
            pair(q2, "It was designed by Ada Brunel.", 1, (19, 29)),
            pair(q2, "The bridge was opened in 1932.", 0),
            pair(q2, "The bridge is painted red.", 0),
            pair(q2, "The bridge carries a railway.", 0),
        ],
        [pair(q2, s, 0) for s in ("A.", "The river is wide.", "Boats pass.", "It rained.")],
    ]


def test_the_listwise_loss_makes_each_answer_beat_its_near_misses():
    tokenizer = load_tokenizer(packaged_model_path() / "tokenizer.json")
    net = ReaderNet(packaged_model_path(), layers=1)
    net.eval()  # no dropout: the two losses see the same logits
    batch = make_batch(tokenizer, _question_groups())
    plain, plain_bce = loss_of(net, batch)
    ranked, ranked_bce = loss_of(net, batch, listwise=1.0)
    # The same relevance part is logged; the softmax adds a positive term
    # (cross-entropy over four), and the group without an answer is left out of it.
    assert ranked_bce == pytest.approx(plain_bce)
    assert ranked.item() > plain.item()
    assert torch.isfinite(ranked)
    ranked.backward()
    assert net.relevance.weight.grad is not None
    assert torch.isfinite(net.relevance.weight.grad).all()


@pytest.mark.parametrize("weight", ["-1", "nan", "inf", "heavy"])
def test_a_listwise_weight_that_is_not_a_weight_stops_before_anything_is_written(tmp_path, weight):
    work = tmp_path / "work"
    done = subprocess.run(
        [sys.executable, "-m", "training.train_reader", "--pairs", str(tmp_path / "pairs.jsonl"),
         "--work", str(work), "--out", str(tmp_path / "out"), "--listwise", weight],
        capture_output=True, text=True, cwd=PROJECT, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--listwise" in done.stderr and "Traceback" not in done.stderr
    assert list(tmp_path.iterdir()) == []
