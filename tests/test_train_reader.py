"""Starting a reader run from a finished one (training/train_reader.py --init):
a shallower run grows into a deeper reader, never the other way round."""

import pytest
import torch

from qa.encoder import packaged_model_path
from training.train_reader import ReaderNet, load_checkpoint


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
