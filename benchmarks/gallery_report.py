"""The gallery's ledger (JSON lines) and its markdown page (docs/gallery.md).

`append(path, record)` adds one line; `write_markdown(ledger, doc)` renders the newest record
of every part: pictures, judged figures, and the command, machine and date of each.
"""

import json
import os

TITLES = {"digits": "8x8 digits", "mnist": "MNIST digits (mnist_5k)",
          "music": "Bach chorales", "text": "Shakespeare"}


def append(path, record):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")


def newest(path):
    """{part: the newest non-quick record of that part} of a ledger."""
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                if line.strip():
                    record = json.loads(line)
                    if not record.get("quick"):
                        out[record["part"]] = record
    return out


def _provenance(r):
    return (f"Command: `{r['command']}` (part `{r['part']}`); machine: {r['machine']}; "
            f"date: {r['date']}; commit {r['commit']}.")


def _training(r):
    t = r.get("training")
    if not t:
        return "Model loaded from an earlier run (`--reuse`)."
    load = (f", load average {t.get('load_average_start')} -> {t.get('load_average_end')} "
            f"(other jobs shared the 2 cores)" if "load_average_start" in t else "")
    cpu = t.get("cpu_seconds") or t.get("cpu_seconds_with_eval")
    cpu = f" ({cpu} s of process CPU time)" if cpu else ""
    return (f"Trained {t.get('steps')} steps in {t.get('train_seconds')} s{cpu} "
            f"(stopped by {t.get('stopped_by') or 'steps'}, limit {t.get('max_minutes')} min"
            f"{load})." + (" Continued from an earlier run of the same model and data that its time "
                           "limit stopped (both in the ledger)." if t.get("resumed") else "")
            + (f" Training record {t['note']}." if t.get("note") else ""))


def _image_section(r, picture, real):
    m = r["model"]
    rows = " | ".join(str(c) for c in range(10))
    values = " | ".join(f"{100 * r['per_class'][str(c)]:.0f} %" for c in range(10))
    return "\n".join([
        f"## {TITLES[r['part']]}", "",
        f"![samples](results/{picture}) ![real test images](results/{real})", "",
        f"Left: samples, one row per class (row c was generated for digit c); right: real test "
        f"images in the same form ({r['image_shape'][0]}x{r['image_shape'][1]}, "
        f"{r['levels']} grey levels{', downsampled ' + str(r['downsample']) + 'x by block averaging' if r['downsample'] > 1 else ''}).",
        "",
        f"**Judged accuracy: {100 * r['judged_accuracy']:.1f} %** of {r['samples']} samples "
        f"are recognised as the digit they were generated for (chance 10 %). Judge: "
        f"{r['judge']} fitted on the real training split in the same form, "
        f"{100 * r['judge_test_accuracy']:.1f} % on the real test split. Sampling: temperature "
        f"{r['temperature']}, top-k {r['top_k'] or 'none'}.", "",
        f"| class | {rows} |", "|---|" + "---|" * 10, f"| judged as its class | {values} |",
        "",
        f"Model: class-conditional `ReformerImageGenerator` (start token 256 + class), "
        f"{m['num_layers']} layers {m['attention']} attention, d_model {m['d_model']}, "
        f"{m['num_heads']} heads, d_ff {m['d_ff']}, dropout {m['dropout']}, batch "
        f"{m['batch_size']}, Adam {m['learning_rate']} cosine. " + _training(r), "",
        _provenance(r), ""])


def _music_section(r):
    d = r["distance_to_held_out"]
    s = r["summary"]
    names = {"pitch_class_histogram": "pitch-class histogram (total variation)",
             "pitch_range": "pitch range (semitones)", "notes_per_second": "notes per second",
             "polyphony": "simultaneous voices"}
    lines = ["| measure | held-out mean | model mean | bigram mean | model distance | "
             "bigram distance |", "|---|---|---|---|---|---|"]
    for key, name in names.items():
        if key == "pitch_class_histogram":
            means = ["-", "-", "-"]
        else:
            means = [f"{s[k][key]:.2f}" for k in ("held_out", "model", "bigram")]
        model, bigram = f"{d['model'][key]:.3f}", f"{d['bigram'][key]:.3f}"
        if d["model"][key] < d["bigram"][key]:
            model = f"**{model}**"
        elif d["bigram"][key] < d["model"][key]:
            bigram = f"**{bigram}**"
        lines.append(f"| {name} | {' | '.join(means)} | {model} | {bigram} |")
    return "\n".join([
        f"## {TITLES['music']}", "",
        "![model sample](results/bach_chorale.png)", "",
        "Piano roll of a model sample ([bach_chorale.mid](results/bach_chorale.mid)); the bigram "
        "baseline's: [bach_bigram.mid](results/bach_bigram.mid), "
        "[piano roll](results/bach_bigram.png).", "",
        f"{r['samples']} model samples and {r['samples']} samples of a bigram event model "
        f"(fitted on the training chorales) of {r['events']} events each, against the first "
        f"{r['events']} events of the {r['held_out_pieces']} held-out (validation and test) "
        f"chorales. Distances to the held-out set (smaller is closer; the closer one in bold): histograms by total "
        f"variation, the scalar measures by the Wasserstein distance between per-piece values "
        f"over the held-out standard deviation. **The model is closer on "
        f"{len(r['model_closer_on'])} of 4 measures** ({', '.join(r['model_closer_on'])}).",
        "", *lines, "", _training(r), "", _provenance(r), ""])


def _text_section(r):
    t = r.get("training", {})
    return "\n".join([
        f"## {TITLES['text']}", "",
        f"**Validation: {r['val_bits_per_char']} bits per character** ({r['eval_batches']} "
        f"batches of 16 x 256 bytes). Model: preset tiny_text at d_model "
        f"{t.get('overrides', {}).get('d_model', '?')}, d_ff "
        f"{t.get('overrides', {}).get('d_ff', '?')}. " + _training(r), "",
        f"The start of sample 1 ([all four](results/shakespeare_sample.txt), temperature "
        f"{r['sample_temperature']}):", "", "```", r["sample_excerpt"], "```", "",
        _provenance(r), ""])


def write_markdown(ledger, doc):
    records = newest(ledger)
    parts = ["# Sample gallery", "",
             "Samples of small models trained on this machine, each judged by a measure that "
             "knows nothing of the models. Regenerate everything with "
             "`python -m benchmarks.gallery` (flags: `--only`, `--*_minutes`, `--*_steps`); "
             "every run appends its figures to "
             "[results/gallery.jsonl](results/gallery.jsonl).", "",
             "The image models are class-conditional: each image starts with the token 256 + "
             "its digit, and every layer uses full attention, so that every pixel sees that "
             "token (an LSH layer lets a pixel see only the tokens hashed into its bucket, a "
             "local layer only its neighbours). A pixel model trained without labels (the "
             "trainers' `--task=image` starts every image with the same token) is asked for no "
             "digit and draws strokes of all of them. The judges live in "
             "`reformer_keras.evaluation` (`ImageJudge`, `music_measures`, `EventBigram`).", ""]
    if "digits" in records:
        parts.append(_image_section(records["digits"], "digits_samples.png", "digits_real.png"))
    if "mnist" in records:
        parts.append(_image_section(records["mnist"], "mnist_digits.png", "mnist_real.png"))
    if "music" in records:
        parts.append(_music_section(records["music"]))
    if "text" in records:
        parts.append(_text_section(records["text"]))
    os.makedirs(os.path.dirname(os.path.abspath(doc)), exist_ok=True)
    with open(doc, "w") as f:
        f.write("\n".join(parts))
    return doc
