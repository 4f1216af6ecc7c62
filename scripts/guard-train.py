#!/usr/bin/env python3
"""guard-train.py — train brigade's injection classifier (src/guard/classifier.h)
and measure it by grouped k-fold cross-validation. Python 3 standard library only.

    scripts/guard-train.py [--corpus tests/corpora/prompt-injection/dev.jsonl]
                           [--brigade build/brigade] [--folds 5] [--out examples/guard-classifier.bin]
                           [--report docs/guard-cv.json] [--no-cv]

The features are never computed here: `brigade guard features` prints them, so the
model is trained on exactly what the C inference sees.

Cross-validation: the corpus pairs carriers with attack strings (the same attack
text is inserted into several carriers at several positions). Rows are grouped by
their attack string (for injected rows) so that every copy of one attack is in the
same fold: a held-out fold's attacks were never seen in training. For each fold, a
model is trained on the other folds and `brigade guard eval --json` measures it (and
the pattern rules, and both combined) on the held-out fold only; the counts are summed
over folds. Nothing is reported on data the model was trained on. The shipped weights
are then trained on the whole corpus.
"""
import argparse
import hashlib
import json
import math
import os
import random
import struct
import subprocess
import sys
import tempfile

BITS = 17
EPOCHS = 6
L2 = 1e-6
LR = 0.3
SEED = 2023
CURVE = (0.3, 0.5, 0.7, 0.8, 0.9, 0.95)


def read_rows(path):
    rows = []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                rows.append(json.loads(line))
    return rows


PIECE = 256   # GUARD_CLS_PIECE in src/guard/classifier.h
STEP = 128    # GUARD_CLS_STEP


def pieces(b):
    """(start, end) byte ranges, cut as guard_classifier_scan cuts them (near enough:
    the C side also steps back to a character boundary)."""
    out, start = [], 0
    while True:
        end = min(len(b), start + PIECE)
        out.append((start, end))
        if end >= len(b):
            return out
        start += STEP


def common_affix(a, b):
    p = 0
    n = min(len(a), len(b))
    while p < n and a[p] == b[p]:
        p += 1
    s = 0
    while s < n - p and a[len(a) - 1 - s] == b[len(b) - 1 - s]:
        s += 1
    return p, s


def attack_spans(rows):
    """Where the injected text is inside each injected carrier (bytes), found by
    comparing it with its clean carrier; None when there is no clean carrier."""
    clean_by_id = {r["id"]: r for r in rows if r["label"] == 0}
    clean_by_source = {}
    for r in rows:
        if r["label"] == 0 and r["channel"] == "tool":
            clean_by_source.setdefault(r["source"], []).append(r["text"].encode())
    spans = []
    for r in rows:
        if r["label"] == 0 or r["channel"] != "tool":
            spans.append(None)
            continue
        b = r["text"].encode()
        parts = r["id"].split(".")
        cands = []
        if len(parts) == 5 and ".".join(parts[:3] + ["clean"]) in clean_by_id:
            cands = [clean_by_id[".".join(parts[:3] + ["clean"])]["text"].encode()]
        else:
            cands = clean_by_source.get(r["source"], [])
        best = None
        for c in cands:
            p, s = common_affix(b, c)
            if p + s >= len(c) // 2 and (best is None or p + s > best[0]):
                best = (p + s, p, len(b) - s)
        spans.append((best[1], best[2]) if best and best[2] > best[1] else None)
    return spans


def make_examples(rows, attack_only=False):
    """The training pieces of every row: (row index, text, label, channel). A benign
    row gives all its pieces as negatives; an injected carrier gives the pieces that
    hold its injection as positives (its other pieces are carrier text, which the
    clean carrier already gives as negatives); other injected rows give all."""
    spans = attack_spans(rows)
    ex = []
    for i, r in enumerate(rows):
        b = r["text"].encode()
        if attack_only and r["label"] == 1 and spans[i] is not None:
            a0, a1 = spans[i]
            ex.append((i, b[a0:a1].decode("utf-8", "ignore"), 1, r["channel"]))
            continue
        for (s, e) in pieces(b):
            if r["label"] == 1 and spans[i] is not None:
                a0, a1 = spans[i]
                overlap = min(e, a1) - max(s, a0)
                if overlap < min(48, (a1 - a0 + 1) // 2):
                    continue
            ex.append((i, b[s:e].decode("utf-8", "ignore"), r["label"], r["channel"]))
    return ex


def features(brigade, texts, bits):
    """One list [(index, value)] per text: counts scaled by 1/sqrt(occurrences)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", encoding="utf-8", delete=False) as f:
        for t in texts:
            f.write(json.dumps({"text": t, "channel": "tool"}) + "\n")
        path = f.name
    try:
        out = subprocess.run([brigade, "guard", "features", "--bits", str(bits), path],
                             check=True, capture_output=True, text=True).stdout
    finally:
        os.unlink(path)
    feats = []
    for line in out.splitlines():
        parts = line.split()
        n = int(parts[0])
        scale = 1.0 / math.sqrt(n) if n else 0.0
        feats.append([(int(i), int(c) * scale) for i, c in (p.split(":") for p in parts[1:])])
    return feats


def group_of(row):
    """Rows that share an attack string share a group (and so a fold)."""
    parts = row["id"].split(".")
    if row["label"] == 1 and row["source"].startswith("bipia"):
        # dev.<source>.<carrier>.<attack>.<pos> or dev.<source>.<attack> (user channel)
        return "attack:" + (parts[3] if len(parts) == 5 else parts[2])
    if row["label"] == 1:
        return "attack:" + ".".join(parts[1:3])
    return "row:" + row["id"]


def fold_of(group, k):
    return int(hashlib.sha256(group.encode()).hexdigest(), 16) % k


def train(ex, feats, idx, bits, epochs=EPOCHS, seed=SEED):
    """Logistic regression by Adagrad over the pieces `idx` of `ex`, classes
    balanced per channel."""
    size = 1 << bits
    w = [0.0] * size
    g2 = [1e-8] * size
    bias = [0.0, 0.0]
    bg2 = [1e-8, 1e-8]
    count = {}
    for i in idx:
        key = (ex[i][3], ex[i][2])
        count[key] = count.get(key, 0) + 1
    total = len(idx)
    cw = {key: total / (len(count) * n) for key, n in count.items()}
    order = list(idx)
    rnd = random.Random(seed)
    for _ in range(epochs):
        rnd.shuffle(order)
        for i in order:
            _, _, label, channel = ex[i]
            ch = 1 if channel == "tool" else 0
            x = feats[i]
            z = bias[ch]
            for j, v in x:
                z += w[j] * v
            p = 1.0 / (1.0 + math.exp(-z)) if z > -35 else 0.0
            g = (p - label) * cw[(channel, label)]
            bg2[ch] += g * g
            bias[ch] -= LR * g / math.sqrt(bg2[ch])
            for j, v in x:
                gj = g * v + L2 * w[j]
                g2[j] += gj * gj
                w[j] -= LR * gj / math.sqrt(g2[j])
    return bias, w


def save(path, bits, bias, w):
    with open(path, "wb") as f:
        f.write(b"BRGDCLS1")
        f.write(struct.pack("<II", bits, 0))
        f.write(struct.pack("<ff", bias[0], bias[1]))
        f.write(struct.pack("<%df" % len(w), *w))


def score(bias, w, channel, x):
    z = bias[1 if channel == "tool" else 0] + sum(w[j] * v for j, v in x)
    return 1.0 / (1.0 + math.exp(-max(-35.0, min(35.0, z))))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", default="tests/corpora/prompt-injection/dev.jsonl")
    ap.add_argument("--brigade", default="build/brigade")
    ap.add_argument("--rules", default="examples/guard-rules.txt")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--bits", type=int, default=BITS)
    ap.add_argument("--epochs", type=int, default=EPOCHS)
    ap.add_argument("--out", default="examples/guard-classifier.bin")
    ap.add_argument("--report", default="", help="write the cross-validated counts here (JSON)")
    ap.add_argument("--no-cv", action="store_true", help="only train the shipped model")
    ap.add_argument("--attack-only", action="store_true",
                    help="an injected carrier's positive example is its injected text alone")
    a = ap.parse_args()

    rows = read_rows(a.corpus)
    ex = make_examples(rows, a.attack_only)
    feats = features(a.brigade, [e[1] for e in ex], a.bits)
    if len(feats) != len(ex):
        sys.exit("guard-train: %d pieces but %d feature lines" % (len(ex), len(feats)))
    print("guard-train: %d rows, %d training pieces" % (len(rows), len(ex)), file=sys.stderr)

    report = {"corpus": a.corpus, "rows": len(rows), "folds": a.folds, "bits": a.bits,
              "epochs": a.epochs, "seed": SEED}
    if not a.no_cv:
        folds = [fold_of(group_of(r), a.folds) for r in rows]
        sums = {}
        misses = {}
        curve_sums = {}
        with tempfile.TemporaryDirectory() as tmp:
            for k in range(a.folds):
                tr = [j for j in range(len(ex)) if folds[ex[j][0]] != k]
                te = [i for i in range(len(rows)) if folds[i] == k]
                bias, w = train(ex, feats, tr, a.bits, a.epochs)
                wpath = os.path.join(tmp, "w%d.bin" % k)
                save(wpath, a.bits, bias, w)
                hpath = os.path.join(tmp, "heldout%d.jsonl" % k)
                with open(hpath, "w", encoding="utf-8") as f:
                    for i in te:
                        f.write(json.dumps(rows[i]) + "\n")
                out = subprocess.run([a.brigade, "guard", "eval", "--json", "--weights", wpath,
                                      "--rules", a.rules, hpath],
                                     check=True, capture_output=True, text=True).stdout
                res = json.loads(out)
                for det, chans in res["detectors"].items():
                    for ch, c in chans.items():
                        s = sums.setdefault(det, {}).setdefault(ch, {"tp": 0, "fp": 0,
                                                                    "positives": 0, "negatives": 0})
                        for key in s:
                            s[key] += int(c[key])
                for cat, n in res["misses_by_category"].items():
                    misses[cat] = misses.get(cat, 0) + int(n)
                # the user channel without BIPIA's standalone attack strings, which
                # are benign-looking out of context (the corpus README, caveat 1)
                dpath = os.path.join(tmp, "direct%d.jsonl" % k)
                with open(dpath, "w", encoding="utf-8") as f:
                    for i in te:
                        r = rows[i]
                        if r["channel"] == "user" and not (r["label"] == 1 and r["source"] in
                                                           ("bipia-text-train", "bipia-code-train")):
                            f.write(json.dumps(r) + "\n")
                out = subprocess.run([a.brigade, "guard", "eval", "--json", "--weights", wpath,
                                      "--rules", a.rules, dpath],
                                     check=True, capture_output=True, text=True).stdout
                for det, chans in json.loads(out)["detectors"].items():
                    c = chans["user"]
                    s = sums.setdefault(det, {}).setdefault("user_direct", {"tp": 0, "fp": 0,
                                                                           "positives": 0, "negatives": 0})
                    for key in s:
                        s[key] += int(c[key])
                # the classifier alone at other thresholds, on the same held-out rows
                for t in CURVE:
                    out = subprocess.run([a.brigade, "guard", "eval", "--json", "--weights", wpath,
                                          "--detectors", "classifier", "--threshold-user", str(t),
                                          "--threshold-tool", str(t), hpath],
                                         check=True, capture_output=True, text=True).stdout
                    res = json.loads(out)["detectors"]["classifier"]
                    for ch in ("user", "tool"):
                        c = curve_sums.setdefault(ch, {}).setdefault(t, [0, 0, 0, 0])
                        for n, key in enumerate(("tp", "fp", "positives", "negatives")):
                            c[n] += int(res[ch][key])
                print("guard-train: fold %d/%d: trained on %d pieces, held out %d rows" %
                      (k + 1, a.folds, len(tr), len(te)), file=sys.stderr)
        print("cross-validated (%d folds, grouped by attack string), held-out rows only:" % a.folds)
        print("%-10s %-5s %6s %6s %7s %7s %9s" % ("detector", "chan", "pos", "neg", "recall",
                                                  "fpr", "precision"))
        for det, chans in sums.items():
            for ch, s in chans.items():
                s["recall"] = s["tp"] / s["positives"] if s["positives"] else 0.0
                s["fpr"] = s["fp"] / s["negatives"] if s["negatives"] else 0.0
                s["precision"] = s["tp"] / (s["tp"] + s["fp"]) if s["tp"] + s["fp"] else 0.0
                print("%-10s %-5s %6d %6d %7.4f %7.4f %9.4f" % (det, ch, s["positives"],
                      s["negatives"], s["recall"], s["fpr"], s["precision"]))
        # the classifier alone at other thresholds, from the same held-out scores
        curve = {ch: [{"threshold": t, "recall": c[0] / c[2] if c[2] else 0.0,
                       "fpr": c[1] / c[3] if c[3] else 0.0} for t, c in sorted(pts.items())]
                 for ch, pts in curve_sums.items()}
        print("\nclassifier alone, held-out scores, by threshold:")
        for ch, pts in curve.items():
            for p in pts:
                print("  %-4s  t=%.2f  recall %.4f  fpr %.4f" % (ch, p["threshold"], p["recall"], p["fpr"]))
        print("\nmisses (combined) by attack_category:")
        for cat, n in sorted(misses.items(), key=lambda kv: -kv[1]):
            print("  %5d  %s" % (n, cat))
        report.update({"cv": sums, "classifier_curve": curve, "misses_by_category": misses})

    bias, w = train(ex, feats, list(range(len(ex))), a.bits, a.epochs)
    save(a.out, a.bits, bias, w)
    print("guard-train: wrote %s (trained on all %d rows)" % (a.out, len(rows)), file=sys.stderr)
    if a.report:
        with open(a.report, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1, sort_keys=True)
            f.write("\n")


if __name__ == "__main__":
    main()
