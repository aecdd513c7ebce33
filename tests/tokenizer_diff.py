#!/usr/bin/python3
"""tokenizer_diff.py - inputs and libsentencepiece's ids for the differential tokenizer test.

Run with Debian's interpreter (python3-sentencepiece):
    /usr/bin/python3 tests/tokenizer_diff.py MODEL OUT_DIR [--n N] [--seed S]

Writes, for N generated strings (half JSONL, half raw lines):
    OUT_DIR/diff.jsonl        {"text": ...} per line: valid UTF-8, may hold newlines, tabs, NUL
    OUT_DIR/diff.expected     the ids libsentencepiece gives, one JSON array per line
                              (json.dumps spacing, as `gemma2 tokenize --jsonl` prints)
    OUT_DIR/diff_raw.txt      raw byte lines (no newline inside) with invalid UTF-8 bytes
    OUT_DIR/diff_raw.expected space-separated ids per line (`gemma2 tokenize --file F --lines`)
The strings mix random vocabulary pieces (▁ as space or kept), long whitespace runs, digits,
several scripts, emoji, rare characters (byte fallback), chat markup and control-token text.
"""
import argparse
import json
import os
import random
import sys

import sentencepiece as spm

SCRIPTS = [
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ",
    "0123456789",
    ".,;:!?'\"()[]{}<>-_=+*/\\|@#$%^&~`",
    "абвгдежзийклмнопрстуфхцчшщъыьэюяАБВГД",
    "αβγδεζηθικλμνξοπρστυφχψω",
    "的一是不了人我在有他这为之大来以个中上们到说国和地也子时道出而要于就下得可你年生",
    "あいうえおかきくけこさしすせそたちつてとなにぬねのはひふへほまみむめもやゆよらりるれろわをん",
    "アイウエオカキクケコサシスセソ",
    "한국어텍스트입니다가나다라마바사",
    "مرحبابالعالمالعربية",
    "שלוםעולם",
    "नमस्तेदुनिया",
    "ไทยภาษา",
    "😀😃😄😁😆😅🤣😂🙂🙃😉😊😇🥰😍🤩😘👍🏽🇯🇵",
    "\u2581\u2581",
    "\U0001D400\U0001D401\U00010348\U0002A6A5\U000E0041\u0378\uFFFF\uFDD0\u200b\u00ad\u0301",
]
MARKUP = ["<start_of_turn>", "<end_of_turn>", "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<unused5>",
          "<unused99>", "[toxicity=0]", "</s>", "<h1>", "<table>", "<strong>", "[@BOS@]", "<2mass>"]


def rand_ws(r):
    c = r.choice([" ", "\t", "\n", "\r\n", "\u3000", "\u00a0"])
    return c * r.choice([1, 1, 2, 3, 5, 16, 31, 32, 33, 40, 63, 64, 100])


def gen_text(r, pieces):
    parts = []
    for _ in range(r.randint(1, 12)):
        k = r.random()
        if k < 0.35:
            p = r.choice(pieces)
            parts.append(p.replace("\u2581", " ") if r.random() < 0.8 else p)
        elif k < 0.5:
            parts.append(rand_ws(r))
        elif k < 0.8:
            s = r.choice(SCRIPTS)
            parts.append("".join(r.choice(s) for _ in range(r.randint(1, 12))))
        elif k < 0.88:
            parts.append(r.choice(MARKUP))
        elif k < 0.94:
            parts.append("".join(r.choice("0123456789") for _ in range(r.randint(1, 20))))
        else:
            parts.append(chr(r.choice([r.randint(0x20, 0x7E), r.randint(0xA0, 0xD7FF), r.randint(0xE000, 0xFFFD),
                                       r.randint(0x10000, 0x10FFFF), 0])))
    return "".join(parts)


def gen_raw(r, pieces):
    """Bytes without b'\\n' (a line), with invalid UTF-8 mixed in."""
    t = gen_text(r, pieces).replace("\n", " ").replace("\r", " ").encode("utf-8")
    b = bytearray(t)
    for _ in range(r.randint(1, 4)):
        bad = r.choice([b"\xff", b"\xfe", b"\x80", b"\xc0\xaf", b"\xe2\x82", b"\xed\xa0\x80", b"\xf4\x90\x80\x80",
                        b"\xf0\x9f\x98", b"\xc3", bytes([r.randint(0x80, 0xFF)])])
        pos = r.randint(0, len(b))
        b[pos:pos] = bad
    return bytes(b)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out_dir")
    ap.add_argument("--n", type=int, default=4000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    sp = spm.SentencePieceProcessor(model_file=a.model)
    pieces = [sp.id_to_piece(i) for i in range(sp.get_piece_size())
              if not (sp.is_control(i) or sp.is_unknown(i) or sp.is_byte(i))]
    r = random.Random(a.seed)
    os.makedirs(a.out_dir, exist_ok=True)
    n_json = a.n // 2
    with open(os.path.join(a.out_dir, "diff.jsonl"), "w", encoding="utf-8") as fj, \
            open(os.path.join(a.out_dir, "diff.expected"), "w") as fe:
        for i in range(n_json):
            t = gen_text(r, pieces)
            fj.write(json.dumps({"text": t}) + "\n")
            fe.write(json.dumps(sp.encode(t)) + "\n")
    with open(os.path.join(a.out_dir, "diff_raw.txt"), "wb") as fr, \
            open(os.path.join(a.out_dir, "diff_raw.expected"), "w") as fe:
        for i in range(a.n - n_json):
            b = gen_raw(r, pieces)
            fr.write(b + b"\n")
            fe.write(" ".join(map(str, sp.encode(b))) + "\n")
    print("tokenizer_diff: %d JSONL + %d raw strings in %s" % (n_json, a.n - n_json, a.out_dir), file=sys.stderr)


if __name__ == "__main__":
    main()
