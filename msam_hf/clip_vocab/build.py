"""Build the CLIP tokenizer files shipped in `msam_hf/clip_vocab/` from OpenAI's BPE merges file.

The package ships `vocab.json` and `merges.txt` so that a processor works offline. They are derived, exactly as
OpenAI's `simple_tokenizer.py` derives its vocabulary, from `bpe_simple_vocab_16e6.txt.gz` (MIT, see LICENSE):

    python msam_hf/clip_vocab/build.py ../shared/data/clip_bpe/bpe_simple_vocab_16e6.txt.gz msam_hf/clip_vocab
"""

import argparse
import gzip
import json
from pathlib import Path

# 49152 merges lines in the file minus the 256 byte tokens and 2 special tokens, plus the header line.
NUM_MERGES = 49152 - 256 - 2


def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable unicode characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1))
    printable += list(range(ord("®"), ord("ÿ") + 1))
    codes = printable[:]
    extra = 0
    for byte in range(256):
        if byte not in printable:
            printable.append(byte)
            codes.append(256 + extra)
            extra += 1
    return dict(zip(printable, (chr(code) for code in codes)))


def build_vocab(bpe_path: Path) -> tuple[dict[str, int], list[str]]:
    lines = gzip.open(bpe_path).read().decode("utf-8").split("\n")
    merges = lines[1 : NUM_MERGES + 1]
    byte_tokens = list(bytes_to_unicode().values())
    tokens = byte_tokens + [token + "</w>" for token in byte_tokens]
    tokens += ["".join(merge.split()) for merge in merges]
    tokens += ["<|startoftext|>", "<|endoftext|>"]
    return {token: index for index, token in enumerate(tokens)}, merges


def write_vocab(bpe_path: Path, out_dir: Path) -> None:
    vocab, merges = build_vocab(bpe_path)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (out_dir / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bpe_path", type=Path)
    parser.add_argument("out_dir", type=Path)
    args = parser.parse_args()
    write_vocab(args.bpe_path, args.out_dir)
