"""bench/out/*.json → bench/RESULTS.md (the figures of the last `bench/run_all.py`)."""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"


def load(name: str) -> dict | None:
    path = OUT / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def pct(v: float | None) -> str:
    return "n/a" if v is None else f"{v:.3f}"


def main() -> None:
    meta = load("meta") or {}
    lines = [
        "# Benchmark results",
        "",
        f"Machine: {meta.get('machine', 'unknown')}. Date: {meta.get('date', 'unknown')}."
        + (" Quick run (sampled)." if meta.get("quick") else ""),
        "Made by `python bench/run_all.py` (each script can also run alone; see its docstring).",
        "Machines here are 2 cores and shared, so figures are noisy: medians with min-max.",
        "",
    ]
    idx = load("index")
    if idx:
        c = idx["chunks_per_s"]
        lines += [
            "## Indexing throughput (`bench/bench_index.py`)",
            "",
            f"{idx['chunks']} BBC chunks ({idx['mean_word_pieces']} word pieces on average), "
            "the same inputs embedded by both paths in the same run:",
            "",
            "| encoder | chunks/s (median) | min-max |",
            "|---|---|---|",
            f"| project: int8 ONNX, length-sorted batches | {c['onnx-int8']} | "
            f"{idx['min_max']['onnx-int8']} |",
            f"| sentence-transformers, PyTorch fp32 | {c['torch-fp32']} | "
            f"{idx['min_max']['torch-fp32']} |",
            "",
            f"Ratio: **{idx['ratio']}x**. Cosine between the two paths' vectors: min "
            f"{idx['cosine_min']}, mean {idx['cosine_mean']}.",
            "",
        ]
        full = idx.get("full_index")
        if full:
            lines += [
                f"Whole `qa index` of the corpus (read, chunk, embed chunks **and** sentences, "
                f"SQLite, FAISS, fsync): {full['seconds']} s for {full['articles']} articles, "
                f"{full['chunks']} chunks and {full['sentences']} sentences = "
                f"{full['chunks_per_s']} chunks/s; "
                f"{full['bytes_on_disk'] / 1e6:.0f} MB on disk "
                f"({full['bytes_without_encoder'] / 1e6:.0f} MB without the 23 MB encoder).",
                "",
                "Memory of the indexing process (peak RSS): "
                f"{full.get('peak_rss_mb_400_files')} MB "
                f"for the first 400 files, {full.get('peak_rss_mb')} MB for all of them. The "
                f"difference is mostly the vectors, which FAISS holds in memory until the "
                f"version is written ({full.get('vectors_mb')} MB for the whole corpus); "
                "articles are read, embedded and stored in batches of 256 chunks.",
                "",
            ]
    ask = load("ask")
    if ask:
        o, t = ask["onnx"], ask["torch"]
        lines += [
            "## Cold `qa ask` in a new process (`bench/bench_ask.py`)",
            "",
            f"BBC index, {ask['runs']} runs each, alternating:",
            "",
            "| question encoder | wall (median) | min-max | peak RSS (median) | max |",
            "|---|---|---|---|---|",
            f"| index's int8 ONNX (default, no torch) | {o['median_wall_s']} s | "
            f"{o['min_max_wall_s']} | {o['median_peak_mb']} MB | {o['max_peak_mb']} MB |",
            f"| sentence-transformers (`QA_ENCODER=torch`) | {t['median_wall_s']} s | "
            f"{t['min_max_wall_s']} | {t['median_peak_mb']} MB | {t['max_peak_mb']} MB |",
            "",
        ]
    names = ("server", "server-nocache", "server-rate100", "server-1client")
    rows = [(name, srv) for name, srv in ((n, load(n)) for n in names) if srv]
    if rows:
        srv = rows[0][1]
        lines += [
            "## HTTP API under load (`bench/bench_server.py`, `bench/load.py`)",
            "",
            f"`qa serve` over the BBC index ({srv['articles']} articles, {srv['chunks']} chunks), "
            "POST /api/ask from clients on 127.0.0.1 (the load generator shares the 2 cores). "
            "*Closed loop*: each client asks again as soon as it is answered, so latency "
            "includes waiting behind the other 7 (saturation). *Fixed rate*: requests are "
            "due at that rate whatever the server does, timed from when they were due. "
            "Questions: *repeated* cycles through 10; *distinct* are 642 different ones "
            "(10 news questions and the 632 XQuAD questions, unanswerable from BBC: the "
            "whole pipeline runs for each).",
            "",
            "| clients | load | answer cache | questions | answers/s | p50 ms | p95 ms | p99 ms "
            "| requests | errors | RSS after |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for _name, s in rows:
            ld = s["load"]
            cache = "on (default)" if s.get("answer_cache", True) else "off"
            load_kind = f"fixed {ld['rate']:g}/s" if ld.get("rate") else "closed loop"
            lines.append(
                f"| {s['clients']} | {load_kind} | {cache} | {s.get('questions', 'repeated')} | "
                f"{ld.get('rps')} | {ld.get('p50_ms')} | {ld.get('p95_ms')} | "
                f"{ld.get('p99_ms')} | {ld.get('requests')} | {ld.get('errors')} | "
                f"{s['rss_mb_after_load']} MB |"
            )
        lines += [
            "",
            f"Server RSS after start-up with the BBC index loaded: {srv['rss_mb_after_start']} MB "
            f"(start-up {srv['startup_s']} s).",
            "",
        ]
    speed = load("answer_speed")
    if speed:
        b, a = speed["before"], speed["after"]
        lines += [
            "## Answer time beside the plain pipeline (`bench/bench_answer_speed.py`)",
            "",
            f"In one process over the XQuAD + BBC index, {speed['questions']} questions × "
            f"{speed['repeat']}, the paths alternating question by question, answer cache off:",
            "",
            "| pipeline | median ms | p95 ms | top quote right |",
            "|---|---|---|---|",
            f"| plain: 5 nearest chunks, their sentences by cosine, same cited Answer | "
            f"{b['median_ms']} | "
            f"{b['p95_ms']} | {b['top_quote_accuracy']} |",
            *(
                [
                    f"| shipped with the reader off (`QA_READER=false`) | "
                    f"{speed['no_reader']['median_ms']} | {speed['no_reader']['p95_ms']} | "
                    f"{speed['no_reader']['top_quote_accuracy']} |"
                ]
                if "no_reader" in speed
                else []
            ),
            f"| shipped: dense + BM25, scored sentences, reader, threshold | {a['median_ms']} | "
            f"{a['p95_ms']} | {a['top_quote_accuracy']} |",
            "",
            *(
                [f"The reader's share of the median: **{speed['reader_share_ms']} ms**.", ""]
                if "reader_share_ms" in speed
                else []
            ),
            f"Ratio of medians: **{speed['ratio_after_to_before']}x**. Both return the same "
            "`Answer` (validated question, live-version check, k quotes cited to their "
            "articles, a threshold). The plain top quote counts even below its threshold.",
            "",
        ]
    q = load("quality")
    if q and not load("quality-reader"):  # superseded by the before/after table
        a, b, s = q["xquad_with_bbc"], q["xquad_bbc_only"], q["seed_with_bbc"]
        lines += [
            "## Answer quality (`qa eval`)",
            "",
            "| question set, index | top quote | top 3 | passage recall@5 | abstained | p50 ms |",
            "|---|---|---|---|---|---|",
            f"| XQuAD dev (632), XQuAD + BBC | {pct(a['top1_accuracy'])} | "
            f"{pct(a['top3_accuracy'])} | {pct(a['passage_recall_at_5'])} | - | "
            f"{a['latency_ms_p50']} |",
            f"| XQuAD dev (632), BBC only (no answers there) | - | - | - | "
            f"{pct(b['abstention_rate'])} | {b['latency_ms_p50']} |",
            f"| seed questions, seed + XQuAD + BBC | {pct(s['top1_accuracy'])} | "
            f"{pct(s['top3_accuracy'])} | {pct(s['passage_recall_at_5'])} | "
            f"{pct(s['abstention_rate'])} | {s['latency_ms_p50']} |",
            "",
        ]
    lines += reader_section(load("quality-reader"))
    lines += conversation_section(load("conversation"))
    results = ROOT / "bench" / "RESULTS.md"
    # The scale section is written by bench/bench_scale.py and by hand (its runs take
    # hours, not one run_all): kept as it is.
    old = results.read_text() if results.exists() else ""
    if SCALE_HEADING in old:
        lines += ["", old[old.index(SCALE_HEADING) :].rstrip("\n"), ""]
    results.write_text("\n".join(lines))
    print("\n".join(lines))


SCALE_HEADING = "## Scale"

READER_ROWS = (
    # (label, set, figure)
    ("XQuAD dev (632), XQuAD + seed + BBC: top quote", "xquad_with_bbc", "top1_accuracy"),
    ("  top 3", "xquad_with_bbc", "top3_accuracy"),
    ("  highlight word F1 (top quote right)", "xquad_with_bbc", "highlight_f1"),
    ("XQuAD dev, BBC only: refused (off topic)", "xquad_bbc_only", "refusal_off_topic"),
    (
        "WikiQA dev, its summaries + BBC: top quote (126 answerable)",
        "wikiqa_with_bbc",
        "top1_accuracy",
    ),
    ("  refused, no answer in the summary (170)", "wikiqa_with_bbc", "refusal_on_topic"),
    (
        "SQuAD 2.0 dev, its 17 articles + BBC: top quote (answerable)",
        "squad2_with_bbc",
        "top1_accuracy",
    ),
    ("  refused, unanswerable (on topic)", "squad2_with_bbc", "refusal_on_topic"),
    ("seed questions, seed + XQuAD + BBC: top quote", "seed_with_bbc", "top1_accuracy"),
    ("  refused, no answer (2)", "seed_with_bbc", "refusal_on_topic"),
)


def reader_section(r: dict | None) -> list[str]:
    if not r:
        return []
    lines = [
        "## Answer quality before and after the trained scorer and reader "
        "(`bench/bench_quality.py`)",
        "",
        f"Measured {r.get('date', '')}. Same indexes, same `qa eval` metrics; before = "
        f"commit `{r.get('before_ref')}` "
        "(hand-set weights fitted on XQuAD dev itself), after = this checkout (scorer and "
        "reader fitted on SQuAD v1.1 train only; training/README.md). WikiQA and SQuAD 2.0 "
        "dev are measured here and never fitted on.",
        "",
        "| question set, index: figure | before | after |",
        "|---|---|---|",
    ]
    for label, key, fig in READER_ROWS:
        sides = r.get(key, {})
        b, a = (sides.get(s, {}).get(fig) for s in ("before", "after"))
        lines.append(f"| {label} | {pct(b)} | {pct(a)} |")
    return [*lines, ""]


def conversation_section(c: dict | None) -> list[str]:
    if not c:
        return []
    rows = []
    for label, key in (
        ("dev set (tests/data/conversations/dev.jsonl)", "dev"),
        ("XQuAD chains (xquad-chains.jsonl)", "xquad_chains"),
    ):
        r = c[key]
        inc, std, floor = (
            r[m]["top1_accuracy"] for m in ("in_context", "standalone", "no_context")
        )
        rows.append(
            f"| {label}: {r['follow_ups']} follow-ups in {r['conversations']} conversations | "
            f"{pct(inc)} | {pct(std)} | {pct(floor)} | {inc / std:.3f} | {inc - floor:+.3f} |"
        )
    x = c["xquad_history"]
    lines = [
        "## Conversations (`bench/bench_conversation.py`)",
        "",
        "Index: BBC + seed + sample + XQuAD dev articles. Top quote right, follow-ups only "
        "(the turns after the first), asked in context (with the earlier turns as this index "
        "answered them), as their standalone rewrite alone, and as typed alone (the floor). "
        "Before conversations `qa` ignored them, so every follow-up was answered as typed "
        "alone: that column is the floor, *in context* what `qa` does. All three use the "
        "current scorer and reader:",
        "",
        "| set | in context | standalone | typed alone | in context / standalone | "
        "in context - alone |",
        "|---|---|---|---|---|---|",
        *rows,
        "",
        "Per kind of follow-up, in context / standalone / typed alone:",
        "",
        "| set | kind | turns | in context | standalone | typed alone |",
        "|---|---|---|---|---|---|",
    ]
    for key in ("dev", "xquad_chains"):
        for kind, row in c[key]["by_kind"].items():
            lines.append(
                f"| {key} | {kind} | {row['turns']} | {pct(row['in_context'])} | "
                f"{pct(row['standalone'])} | {pct(row['no_context'])} |"
            )
    lines += [
        "",
        f"Self-contained questions with history, XQuAD dev ({x['questions']} questions): top "
        f"quote {pct(x['top1_alone'])} alone, {pct(x['top1_same_article_history'])} with the "
        f"previous question of its article as history ({x['rewritten_same_article']} searched "
        f"in another form, {x['changed_same_article']} changed right/wrong), "
        f"{pct(x['top1_switch_history'])} after a question about another article "
        f"({x['rewritten_switch']} rewritten, {x['changed_switch']} changed).",
        "",
        "Answer time with history beside without (in process, alternating, cache off):",
        "",
        "| questions | answers each | p50 with / without ms | p95 with / without ms | "
        "ratio of p50 |",
        "|---|---|---|---|---|",
    ]
    for label, key in (
        ("XQuAD dev, previous question of its article as history", "xquad_same_article"),
        ("dev set follow-ups with their conversation", "dev_follow_ups"),
    ):
        t = c["speed"][key]
        lines.append(
            f"| {label} | {t['answers']} | {t['p50_ms_with_history']} / {t['p50_ms_without']} | "
            f"{t['p95_ms_with_history']} / {t['p95_ms_without']} | **{t['ratio_p50']}x** |"
        )
    return [*lines, ""]


if __name__ == "__main__":
    main()
