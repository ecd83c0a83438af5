"""Train the reader (qa/reader.py) and export it as the shipped int8 ONNX graph.

    python -m training.mine_reader_pairs --shared ../shared --out /tmp/reader-pairs.jsonl
    python -m training.train_reader --pairs /tmp/reader-pairs.jsonl --questions 12000 --layers 4 \
        --work /tmp/reader-train --out qa/reader_model

A MiniLM-L6 cross-encoder initialised from the packaged all-MiniLM-L6-v2
encoder, with two new heads: a relevance logit on [CLS] (binary cross-entropy:
does this sentence answer the question?) and start/end logits over the
sentence's tokens (cross-entropy on SQuAD's answer span, positives only).
Batches of 8 questions x 4 pairs, AdamW, linear warm-up and decay, 2 threads.
Checkpoints every --every steps to --work, so a stopped run resumes
(--resume) or exports what it has (--export-only). The same code
(`qa.reader.encode_pairs`) builds the tokens here and at answering time.
"""

from __future__ import annotations

import argparse
import json
import math
import pickle
import random
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from qa.encoder import packaged_model_path
from qa.reader import MODEL_FILE, encode_pairs, load_tokenizer, pad

GROUP = 4  # pairs per question: the positive and three negatives


class ReaderNet(nn.Module):
    def __init__(self, path: Path, layers: int = 6) -> None:
        super().__init__()
        from transformers import AutoModel

        self.encoder = AutoModel.from_pretrained(str(path))
        # The lower layers only: each one dropped is a sixth less time to train and
        # to answer, and answering's time budget is what limits the reader.
        self.encoder.encoder.layer = self.encoder.encoder.layer[:layers]
        self.encoder.config.num_hidden_layers = layers
        # The word-piece embeddings stay as the encoder learnt them (a third of
        # the weights; SQuAD-train's vocabulary is too small to move them well).
        self.encoder.embeddings.word_embeddings.weight.requires_grad_(False)
        hidden = self.encoder.config.hidden_size
        self.relevance = nn.Linear(hidden, 1)
        self.span = nn.Linear(hidden, 2)

    def forward(self, input_ids, attention_mask, token_type_ids):
        h = self.encoder(
            input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
        ).last_hidden_state
        rel = self.relevance(h[:, 0]).squeeze(-1)
        start, end = self.span(h).unbind(-1)
        return rel, start, end


def load_onnx_weights(net: ReaderNet, path: Path) -> None:
    """Start from an exported reader: its int8 weights, dequantised, into `net`.

    The shipped reader's PyTorch checkpoint is not kept (training/README.md),
    so a run that continues it starts from its ONNX graph, fused (what `export`
    writes since run 11) or not (runs up to 10). A quantised matrix is
    found by the module path ONNX names its product after; a fused attention
    holds its layer's query, key and value matrices side by side. The frozen
    word-piece embeddings stay the packaged encoder's (never trained). Anything
    that is not such a graph stops with a message naming the file."""
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except (OSError, DecodeError) as e:
        raise SystemExit(f"{path}: not an exported reader ({e})") from None
    init = {i.name: numpy_helper.to_array(i) for i in graph.initializer}

    def dequantised(name: str) -> np.ndarray:
        q = init[f"{name}_quantized"].astype(np.float32)
        return (q - init[f"{name}_zero_point"].astype(np.float32)) * init[f"{name}_scale"]

    state = net.state_dict()
    loaded = set()

    def put(key: str, value: np.ndarray) -> None:
        if key not in state or state[key].shape != value.shape:
            want = tuple(state[key].shape) if key in state else "nothing"
            raise SystemExit(f"{path}: {key} is {value.shape} there, {want} in this reader")
        state[key] = torch.from_numpy(np.array(value)).to(state[key].dtype)
        loaded.add(key)

    def module_of(output: str) -> str:
        # "/encoder/encoder/layer.0/attention/output/dense/MatMul_output_0" -> the Linear's path
        return output.split("/MatMul")[0].split("/Gemm")[0].strip("/").replace("/", ".")

    for name, value in init.items():
        if name in state:
            put(name, value)  # biases and layer norms are kept in float
    for key in state:
        # The position and segment tables, and in a fused graph the embeddings'
        # layer norm, are quantised under their own names.
        quantised = f"{key}_quantized" in init and "word_embeddings" not in key
        if key.startswith("encoder.embeddings.") and quantised:
            put(key, dequantised(key))
    for node in graph.node:
        if node.op_type == "MatMulInteger":
            weight = node.input[1].removesuffix("_quantized")
            put(module_of(node.output[0]) + ".weight", dequantised(weight).T)
        elif node.op_type == "QAttention":
            # Its output is named after the layer: ".../layer.3/attention/self/Reshape_3_output_0"
            layer = node.output[0].split("/attention/")[0].strip("/").replace("/", ".")
            weight = dequantised(node.input[1].removesuffix("_quantized"))
            bias = init[node.input[2]]
            for part, w, b in zip(
                ("query", "key", "value"),
                np.split(weight, 3, axis=1),
                np.split(bias, 3),
                strict=True,
            ):
                put(f"{layer}.attention.self.{part}.weight", w.T)
                put(f"{layer}.attention.self.{part}.bias", b)
    # The pooler is unused (the heads read the last hidden states): not exported.
    unused = {k for k in state if k.startswith("encoder.pooler.")}
    missing = set(state) - loaded - unused - {"encoder.embeddings.word_embeddings.weight"}
    if missing:
        raise SystemExit(f"{path}: not an exported reader of this depth (no {sorted(missing)[:3]})")
    net.load_state_dict(state)


def load_checkpoint(net: ReaderNet, path: Path) -> None:
    """Start from a finished run's weights. A run with fewer layers grows into
    `net`: its layers and heads are kept and the layers above them stay the
    packaged encoder's, so a deeper reader starts from what a shallower one
    learnt instead of from scratch."""
    try:
        state = torch.load(path, weights_only=False)["net"]
    except (OSError, RuntimeError, EOFError, pickle.UnpicklingError, KeyError, TypeError) as e:
        raise SystemExit(f"{path}: not a train_reader checkpoint ({e!r})") from None
    missing, unexpected = net.load_state_dict(state, strict=False)
    grown = [k for k in missing if k.startswith("encoder.encoder.layer.")]
    if unexpected or len(grown) != len(missing):
        raise SystemExit(
            f"{path}: does not fit a {len(net.encoder.encoder.layer)}-layer reader "
            f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
        )
    if grown:
        layers = sorted({int(k.split(".")[3]) for k in grown})
        print(f"grown from {path}: layers {layers} are the packaged encoder's", flush=True)


def load_groups(path: Path) -> list[list[dict]]:
    """Pairs grouped by question; a missing or malformed file stops with a message
    naming it (and the line), before anything is trained or written."""
    groups: dict[str, list[dict]] = {}
    try:
        with path.open(encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                try:
                    row = json.loads(line)
                    groups.setdefault(row["qid"], []).append(row)
                except (ValueError, KeyError, TypeError) as e:
                    raise SystemExit(f"{path}:{n}: not a reader pair ({e})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise SystemExit(f"{path}: cannot read it ({e})") from None
    return [g for g in groups.values() if len(g) == GROUP]


def split(
    groups: list[list[dict]], rng: random.Random, held_out: int, offset: int, n: int
) -> tuple[list[list[dict]], list[list[dict]]]:
    """The held-out questions and the `n` trained on after skipping `offset`, from
    one seeded shuffle: every run (and training.pipeline_pairs) slices the same order."""
    rng.shuffle(groups)
    first = held_out + offset
    return groups[:held_out], groups[first : first + n]


def token_span(pair, span) -> tuple[int, int] | None:
    """The answer's first and last token positions in the encoded pair."""
    a, b = span
    toks = [k for k, (s, e) in enumerate(pair.offsets) if s < b and e > a]
    if not toks:
        return None  # the answer was cut off with the sentence's tail
    return pair.sentence_lo + toks[0], pair.sentence_lo + toks[-1]


def make_batch(tokenizer, groups: list[list[dict]]):
    pairs, labels, starts, ends = [], [], [], []
    for g in groups:
        encoded = encode_pairs(
            tokenizer, g[0]["question"], [r["sentence"] for r in g], [r["before"] for r in g]
        )
        for r, p in zip(g, encoded, strict=True):
            pairs.append(p)
            labels.append(float(r["label"]))
            ts = token_span(p, r["span"]) if r["span"] else None
            starts.append(ts[0] if ts else -100)
            ends.append(ts[1] if ts else -100)
    ids, types, mask = pad(pairs)
    # Span logits may only point into the candidate sentence.
    allowed = np.zeros(ids.shape, dtype=bool)
    for row, p in enumerate(pairs):
        allowed[row, p.sentence_lo : p.sentence_lo + len(p.offsets)] = True
    t = torch.from_numpy
    return (
        t(ids),
        t(mask),
        t(types),
        torch.tensor(labels),
        torch.tensor(starts),
        torch.tensor(ends),
        t(allowed),
    )


def loss_of(net, batch, listwise: float = 0.0):
    """The training loss, and its binary relevance part (what the log shows).
    `listwise`: the weight of a softmax over each question's GROUP pairs, so the
    answer must also beat the sentences it was mined against, not only clear a
    bar of its own (runs 15-17; training/README.md)."""
    ids, mask, types, labels, starts, ends, allowed = batch
    rel, s, e = net(ids, mask, types)
    bce = nn.functional.binary_cross_entropy_with_logits(rel, labels)
    relevance = bce
    if listwise:
        groups, right = rel.view(-1, GROUP), labels.view(-1, GROUP)
        has = right.sum(1) == 1  # a question asked without its paragraph has no answer
        if has.any():
            relevance = bce + listwise * nn.functional.cross_entropy(
                groups[has], right[has].argmax(1)
            )
    s = s.masked_fill(~allowed, -1e4)
    e = e.masked_fill(~allowed, -1e4)
    if not (starts >= 0).any():  # no answer span in this batch (rewritten questions only)
        return relevance, bce.item()
    ce = nn.functional.cross_entropy(s, starts, ignore_index=-100) + nn.functional.cross_entropy(
        e, ends, ignore_index=-100
    )
    return relevance + 0.25 * ce, bce.item()


def batches(groups, per_batch, rng):
    """Batches of questions of similar length (less padding), in random order."""
    order = groups[:]
    rng.shuffle(order)
    out = []
    block = per_batch * 50
    for lo in range(0, len(order), block):
        chunk = sorted(order[lo : lo + block], key=lambda g: sum(len(r["sentence"]) for r in g))
        out += [chunk[i : i + per_batch] for i in range(0, len(chunk), per_batch)]
    rng.shuffle(out)
    return out


def evaluate(net, tokenizer, groups) -> dict:
    """Held-out questions: is the positive ranked first of its four, and the
    token F1 of the predicted span in the positive against the gold one."""
    from qa.reader import best_span

    net.eval()
    right, f1s, rejected = 0, [], []
    with torch.no_grad():
        for lo in range(0, len(groups), 8):
            chunk = groups[lo : lo + 8]
            ids, mask, types, _labels, *_ = make_batch(tokenizer, chunk)
            rel, s, e = net(ids, mask, types)
            rel = rel.view(-1, GROUP).numpy()
            for gi, g in enumerate(chunk):
                if not any(r["label"] for r in g):
                    # A rewritten question: its first pair is the sentence that
                    # answered the original; the reader should now say no.
                    rejected.append(rel[gi][0] < 0)
                    continue
                right += int(np.argmax(rel[gi]) == [r["label"] for r in g].index(1))
                k = [r["label"] for r in g].index(1)
                row = gi * GROUP + k
                pair = encode_pairs(
                    tokenizer, g[k]["question"], [g[k]["sentence"]], [g[k]["before"]]
                )[0]
                a, b, _ = best_span(pair, s[row].numpy(), e[row].numpy())
                f1s.append(_f1(g[k]["sentence"][a:b], g[k]["sentence"][slice(*g[k]["span"])]))
    net.train()
    out = {"top1_of_4": right / max(1, len(f1s)), "span_f1": float(np.mean(f1s))}
    if rejected:
        out["rewrites_rejected"] = float(np.mean(rejected))
    return out


def _f1(pred: str, gold: str) -> float:
    p, g = pred.lower().split(), gold.lower().split()
    common = sum(min(p.count(w), g.count(w)) for w in set(p))
    if not common:
        return 0.0
    prec, rec = common / len(p), common / len(g)
    return 2 * prec * rec / (prec + rec)


def export(net: ReaderNet, out: Path, tokenizer) -> Path:
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.transformers import optimizer

    out.mkdir(parents=True, exist_ok=True)
    net.eval()
    pair = encode_pairs(tokenizer, "Who wrote it?", ["She wrote it in 1990."], ["A book."])
    ids, types, mask = (torch.from_numpy(x) for x in pad(pair * 2))
    fp32 = out / "reader-fp32.onnx"
    fused = out / "reader-fused.onnx"
    axes = {0: "batch", 1: "tokens"}
    torch.onnx.export(
        net,
        (ids, mask, types),
        str(fp32),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["relevance", "start", "end"],
        dynamic_axes={
            "input_ids": axes,
            "attention_mask": axes,
            "token_type_ids": axes,
            "relevance": {0: "batch"},
            "start": axes,
            "end": axes,
        },
        opset_version=17,
        dynamo=False,
    )
    # Fused: one attention operator per layer instead of ~40 small ones, and the
    # layer norms with their residual adds. onnxruntime's threads wake once per
    # operator, so fewer operators read two candidates faster: the six-layer
    # reader 7.5 ms instead of 8.6 (bench/RESULTS.md), same logits within int8's
    # own error. `load_onnx_weights` reads either form back.
    config = net.encoder.config
    graph = optimizer.optimize_model(
        str(fp32),
        model_type="bert",
        num_heads=config.num_attention_heads,
        hidden_size=config.hidden_size,
        opt_level=1,
    )
    graph.save_model_to_file(str(fused))
    final = out / MODEL_FILE
    # One scale per output channel, not per matrix: on the 400 held-out questions
    # the third reader ranked 0.750 first of four with one scale per matrix, 0.788
    # per channel (fp32: 0.793), at the same size and speed. The fused operators
    # are onnxruntime's own, so their outputs' types are declared, not inferred.
    quantize_dynamic(
        str(fused),
        str(final),
        weight_type=QuantType.QInt8,
        per_channel=True,
        extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
    )
    fp32.unlink()
    fused.unlink()
    return final


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=Path, required=True)
    ap.add_argument("--questions", type=int, default=20000, help="questions trained on")
    ap.add_argument("--held-out", type=int, default=400)
    ap.add_argument("--per-batch", type=int, default=8, help="questions per batch")
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--every", type=int, default=200, help="checkpoint every N steps")
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=Path("qa/reader_model"))
    ap.add_argument("--resume", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument(
        "--listwise",
        type=float,
        default=0.0,
        help="weight of a softmax over each question's pairs (0: each pair alone)",
    )
    ap.add_argument("--layers", type=int, default=4, help="encoder layers kept (of 6)")
    ap.add_argument(
        "--init", type=Path, help="start from this checkpoint's weights (a fresh optimiser)"
    )
    ap.add_argument("--init-onnx", type=Path, help="start from an exported reader's (int8) weights")
    ap.add_argument(
        "--offset", type=int, default=0, help="skip this many training questions (seen by --init)"
    )
    ap.add_argument(
        "--extra", type=Path, nargs="*", default=[], help="more pairs, trained on (never held out)"
    )
    args = ap.parse_args()
    if not (math.isfinite(args.listwise) and args.listwise >= 0):
        # A negative weight would teach the reader to rank the answer last.
        ap.error(f"--listwise must be a finite number of 0 or more, not {args.listwise}")

    torch.manual_seed(args.seed)
    torch.set_num_threads(2)
    rng = random.Random(args.seed)
    tokenizer = load_tokenizer(packaged_model_path() / "tokenizer.json")
    held, train = split(load_groups(args.pairs), rng, args.held_out, args.offset, args.questions)
    for extra in args.extra:
        # Added to the slice, outside the seeded shuffle: held-out stays the same.
        train += load_groups(extra)
    net = ReaderNet(packaged_model_path(), args.layers)
    if args.init:
        # Continue a finished run on questions it never saw: same held-out set
        # (the shuffle is seeded), a new learning-rate schedule.
        load_checkpoint(net, args.init)
    elif args.init_onnx:
        load_onnx_weights(net, args.init_onnx)
    args.work.mkdir(parents=True, exist_ok=True)
    ckpt = args.work / "checkpoint.pt"
    plan = batches(train, args.per_batch, rng)
    steps = len(plan)
    opt = torch.optim.AdamW(
        [p for p in net.parameters() if p.requires_grad], lr=args.lr, weight_decay=0.01
    )
    warm = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (steps - s) / max(1, steps - warm)))
    )
    done = 0
    if (args.resume or args.export_only) and ckpt.exists():
        state = torch.load(ckpt, weights_only=False)
        net.load_state_dict(state["net"])
        opt.load_state_dict(state["opt"])
        sched.load_state_dict(state["sched"])
        done = state["step"]
        print(f"resumed at step {done}/{steps}", flush=True)
    if not args.export_only:
        net.train()
        started, seen, running = time.time(), 0, []
        for step in range(done, steps):
            loss, bce = loss_of(net, make_batch(tokenizer, plan[step]), args.listwise)
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            opt.step()
            sched.step()
            seen += len(plan[step]) * GROUP
            running.append(bce)
            if (step + 1) % 25 == 0:
                rate = seen / (time.time() - started)
                print(
                    f"step {step + 1}/{steps} bce {np.mean(running[-25:]):.4f} {rate:.1f} pairs/s",
                    flush=True,
                )
            if (step + 1) % args.every == 0 or step + 1 == steps:
                torch.save(
                    {
                        "net": net.state_dict(),
                        "opt": opt.state_dict(),
                        "sched": sched.state_dict(),
                        "step": step + 1,
                    },
                    ckpt.with_suffix(".tmp"),
                )
                ckpt.with_suffix(".tmp").replace(ckpt)
        print("held out:", evaluate(net, tokenizer, held), flush=True)
    path = export(net, args.out, tokenizer)
    print(f"exported {path} ({path.stat().st_size / 1e6:.1f} MB)", flush=True)


if __name__ == "__main__":
    main()
