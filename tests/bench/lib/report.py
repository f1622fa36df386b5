#!/usr/bin/env python3
"""Summarise discfs benchmark samples: print the table, write the JSON.

report.py SAMPLES.tsv META.tsv OUT.json

SAMPLES.tsv lines: row <TAB> tool <TAB> run <TAB> value|NA <TAB> note
META.tsv lines:    key <TAB> value
Medians are taken over the runs that produced a value; the ratio column is
the ratio of those medians.  Nothing here passes or fails: the status column
only says whether the median meets the target written in the table.
"""
import json
import statistics
import sys
from collections import OrderedDict, defaultdict

PEERS = ["fuseiso", "archivemount"]
COLUMNS = ["discfs", "fuseiso", "archivemount", "direct"]

# row id -> (title, unit, better, ratio kind, target)
#   ratio kinds: "peer_over_discfs" - fastest (or smallest) peer / discfs
#                "discfs_over_direct" - discfs / direct (dd or 7z or fio on image)
#                "discfs_over_fuseiso"
#   target: (kind, threshold, text) with kinds "ratio_ge", "ratio_le", "abs_le"
ROWS = OrderedDict([
    ("mount_small", ("mount latency, small.iso", "ms", "lower", "peer_over_discfs",
                     ("abs_le", 10.0, "discfs <= 10 ms"))),
    ("mount_big", ("mount latency, big.iso", "ms", "lower", "peer_over_discfs", None)),
    ("walk_cold", ("find | wc -l, cold mount", "s", "lower", "peer_over_discfs",
                   ("ratio_ge", 2.0, ">= 2x faster than fastest peer"))),
    ("walk_warm", ("find | wc -l, warm (2nd walk)", "s", "lower", "peer_over_discfs",
                   ("ratio_ge", 5.0, ">= 5x faster than fastest peer"))),
    ("lslR_cold", ("ls -lR, cold mount", "s", "lower", "peer_over_discfs",
                   ("ratio_ge", 1.0, "faster than every peer (product.md)"))),
    ("tar_small", ("tar cf - all small files | wc -c", "s", "lower", "discfs_over_direct",
                   ("ratio_le", 2.0, "discfs <= 2x time of 7z x"))),
    ("rss_peak", ("daemon VmHWM after walk+read small.iso", "MiB", "lower", "peer_over_discfs",
                  ("abs_le", 32.0, "discfs <= 32 MiB"))),
    ("seq_first", ("dd big file, first pass", "MiB/s", "higher", "discfs_over_direct",
                   ("ratio_ge", 0.4, ">= 0.4x dd of image"))),
    ("seq_reread", ("dd big file, re-read same mount", "MiB/s", "higher", "discfs_over_direct",
                    ("ratio_ge", 0.9, ">= 0.9x dd of image"))),
    ("rand_warm", ("fio 4k randread, warm (after dd)", "IOPS", "higher", "discfs_over_fuseiso",
                   ("ratio_ge", 2.0, ">= 2x fuseiso"))),
    ("rand_fresh", ("fio 4k randread, fresh mount", "IOPS", "higher", "discfs_over_fuseiso",
                    ("ratio_ge", 2.0, ">= 2x fuseiso"))),
])
PINNED_SUFFIX = "_pinned"


def row_def(row):
    if row in ROWS:
        return ROWS[row]
    if row.endswith(PINNED_SUFFIX) and row[:-len(PINNED_SUFFIX)] in ROWS:
        t = ROWS[row[:-len(PINNED_SUFFIX)]]
        return (t[0] + " [pinned]",) + t[1:]
    return (row, "", "lower", None, None)


def fmt(v, unit):
    if v is None:
        return "n/a"
    if unit in ("IOPS",):
        return f"{v:,.0f}"
    if unit == "MiB/s":
        return f"{v:,.0f}"
    if unit == "ms":
        return f"{v:.1f}" if v < 1000 else f"{v:,.0f}"
    if unit == "MiB":
        return f"{v:.1f}"
    if v >= 100:
        return f"{v:.1f}"
    if v >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


def main():
    samples_path, meta_path, out_path = sys.argv[1:4]
    meta = OrderedDict()
    with open(meta_path) as f:
        for line in f:
            line = line.rstrip("\n")
            if line:
                k, _, v = line.partition("\t")
                meta[k] = v
    samples = defaultdict(lambda: defaultdict(list))   # row -> tool -> [(run, value)]
    notes = defaultdict(lambda: defaultdict(list))     # row -> tool -> [note]
    order = []
    with open(samples_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 4:
                continue
            row, tool, run, value = parts[:4]
            note = parts[4] if len(parts) > 4 else ""
            if row not in order:
                order.append(row)
            val = None if value in ("NA", "") else float(value)
            samples[row][tool].append((int(run), val))
            if note and note not in notes[row][tool]:
                notes[row][tool].append(note)

    def sort_key(r):
        base = r[:-len(PINNED_SUFFIX)] if r.endswith(PINNED_SUFFIX) else r
        keys = list(ROWS)
        return (r.endswith(PINNED_SUFFIX), keys.index(base) if base in keys else 99, r)

    rows_out = []
    table = []
    for row in sorted(order, key=sort_key):
        title, unit, better, rkind, target = row_def(row)
        med = {}
        nvals = {}
        for tool in COLUMNS:
            vals = [v for _, v in samples[row].get(tool, []) if v is not None]
            tried = len(samples[row].get(tool, []))
            nvals[tool] = (len(vals), tried)
            med[tool] = statistics.median(vals) if vals else None
        ratio, rtext = None, ""
        d = med["discfs"]
        if rkind == "peer_over_discfs":
            peers = [(med[p], p) for p in PEERS if med[p] is not None]
            if peers and d:
                best, who = (min(peers) if better == "lower" else max(peers))
                ratio = best / d if better == "lower" else d / best
                rtext = f"{who}/discfs" if better == "lower" else f"discfs/{who}"
        elif rkind == "discfs_over_direct":
            x = med["direct"]
            if d is not None and x:
                ratio = d / x
                rtext = "discfs/direct"
        elif rkind == "discfs_over_fuseiso":
            x = med["fuseiso"]
            if d is not None and x:
                ratio = d / x
                rtext = "discfs/fuseiso"
        status, ttext = "", ""
        if target:
            tkind, thr, ttext = target
            if d is None:
                status = "not run" if nvals["discfs"][1] == 0 else "n/a"
            elif tkind == "abs_le":
                status = "met" if d <= thr else "NOT MET"
            elif ratio is None:
                status = "n/a"
            elif tkind == "ratio_ge":
                status = "met" if ratio >= thr else "NOT MET"
            elif tkind == "ratio_le":
                status = "met" if ratio <= thr else "NOT MET"
        cells = []
        for tool in COLUMNS:
            n, tried = nvals[tool]
            if tried == 0:
                cells.append("-")
                continue
            c = fmt(med[tool], unit)
            if 0 < n < tried:
                c += f" ({n}/{tried})"
            if notes[row].get(tool):
                c += "*"
            cells.append(c)
        table.append([row, title, unit, better] + cells +
                     [f"{ratio:.2f}x {rtext}" if ratio is not None else "n/a",
                      ("lower" if rkind == "discfs_over_direct" and better == "lower" else "higher")
                      if rkind else "", ttext, status])
        rows_out.append(OrderedDict([
            ("row", row), ("title", title), ("unit", unit), ("better", better),
            ("samples", {t: [v for _, v in sorted(samples[row][t])] for t in samples[row]}),
            ("median", {t: med[t] for t in COLUMNS if nvals[t][1]}),
            ("ratio", ratio), ("ratio_is", rtext or None),
            ("ratio_better", ("lower" if rkind == "discfs_over_direct" and better == "lower"
                              else "higher") if rkind else None),
            ("target", ttext or None), ("status", status or None),
            ("notes", {t: notes[row][t] for t in notes[row]}),
        ]))

    head = ["row", "what", "unit", "better", "discfs", "fuseiso", "archivemount", "direct",
            "ratio", "ratio better", "target", "status"]
    widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
    print()
    print(f"discfs benchmark - warm image, cold mount, median of {meta.get('runs')} runs"
          f" ({'quick' if meta.get('quick') == '1' else 'full'} corpus: "
          f"{meta.get('small_files')} small files, big file {meta.get('big_bytes')} bytes)")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for r in table:
        print("  ".join(str(c).ljust(w) if i < 4 or i >= 9 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
    print()
    print("direct = straight from the image file: dd of the big file's bytes (seq rows),")
    print("fio on the same byte range of big.iso (rand rows), 7z x small.iso to "
          f"{meta.get('7z_out', '?')} (tar row).")
    print("Ratios are ratios of medians. 'better' says which way the raw figures are better,")
    print("'ratio better' which way the ratio is (all ratios but the tar row are > 1 = discfs ahead).")
    print("n/a = the tool failed, timed out or was skipped; (k/n) = only k of n runs gave a figure.")
    allnotes = [(row, t, n) for row in order for t in notes[row] for n in notes[row][t]]
    if allnotes:
        print("\nnotes (* in the table):")
        seen = set()
        for row, t, n in allnotes:
            if (t, n) in seen:
                continue
            seen.add((t, n))
            print(f"  {t}: {n}  [{row}]")
    doc = OrderedDict([("meta", meta), ("rows", rows_out)])
    with open(out_path, "w") as f:
        json.dump(doc, f, indent=2)
        f.write("\n")
    print(f"\nJSON: {out_path}")


if __name__ == "__main__":
    main()
