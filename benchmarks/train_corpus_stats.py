"""Corpus and split statistics for a prepared python-corpus / local cache (issue 15).

    python benchmarks/train_corpus_stats.py CACHE_DIR [--seq-len 256] [--old-packer]

CACHE_DIR is <AUTORESEARCH_CACHE>/<profile>-<source> (it holds data/ and tokenizer/). Prints:
- leakage: the share of validation lines (stripped, >= 20 chars) that occur word for word in train,
  and the validation files (ids with any '#k' piece suffix dropped) at least half of whose lines do;
- reach: the share of the split's tokens that one pass of the packer puts into rows. With
  --old-packer the crop rule of the previous packer is applied instead (a document contributes at
  most seq_len + 1 tokens, the rest was dropped), computed from the documents' token counts.
"""

import argparse
import sys
from pathlib import Path

import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import prepare  # noqa: E402


def lines_of(text):
    return {s for s in (line.strip() for line in text.splitlines()) if len(s) >= 20}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cache_dir")
    ap.add_argument("--seq-len", type=int, default=256)
    ap.add_argument("--old-packer", action="store_true")
    ap.add_argument("--max-train-shards", type=int, default=None, help="reach: only this many train shards")
    args = ap.parse_args()
    data_dir, tok_dir = Path(args.cache_dir) / "data", Path(args.cache_dir) / "tokenizer"
    manifest = prepare.read_manifest(data_dir)
    train_lines = set()
    for name in manifest["train"]:
        for text in pq.read_table(data_dir / name, columns=["text"]).column("text").to_pylist():
            train_lines |= lines_of(text)
    val = pq.read_table(data_dir / manifest["val"], columns=["text", "id"]).to_pydict()
    files = {}
    for doc_id, text in zip(val["id"], val["text"], strict=True):
        files.setdefault(doc_id.split("#")[0], []).append(text)
    n_lines = n_leaked = leaky_files = 0
    for texts in files.values():
        lines = set().union(*(lines_of(t) for t in texts))
        leaked = len(lines & train_lines)
        n_lines += len(lines)
        n_leaked += leaked
        leaky_files += bool(lines) and leaked >= 0.5 * len(lines)
    print(f"val: {len(files)} files, {len(val['id'])} documents; lines >= 20 chars also in train: "
          f"{n_leaked}/{n_lines} = {100 * n_leaked / max(1, n_lines):.1f}%; files with >= half their "
          f"lines in train: {leaky_files}")

    tokenizer = prepare.Tokenizer.from_directory(tok_dir)
    row_len = args.seq_len + 1
    for split, names in (("val", [manifest["val"]]), ("train", manifest["train"][:args.max_train_shards])):
        total = reach = 0
        for name in names:
            texts = pq.read_table(data_dir / name, columns=["text"]).column("text").to_pylist()
            for ids in tokenizer.encode([t for t in texts if t], prepend=tokenizer.get_bos_token_id()):
                total += len(ids)
                reach += min(len(ids), row_len)
        if not args.old_packer and split == "val":
            # The real packer, one pass: count what lands in rows.
            rows = prepare._packed_rows(tokenizer, row_len, "val", 0, data_dir, 1000, 128, 1, "tails")
            reach = sum(len(r) for r, _ in rows)
        elif not args.old_packer:
            reach = total  # tails go back to the buffer: every token is packed (checked on val above)
        print(f"{split} ({len(names)} shard(s)): {total:,} tokens, {reach:,} reachable per pass "
              f"= {100 * reach / total:.1f}% at seq_len {args.seq_len}")


if __name__ == "__main__":
    main()
