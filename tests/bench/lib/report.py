#!/usr/bin/env python3
"""Summarise discfs benchmark samples: print the table, write the JSON.

report.py SAMPLES.tsv META.tsv OUT.json

SAMPLES.tsv lines: row <TAB> tool <TAB> run <TAB> value|NA <TAB> note
META.tsv lines:    key <TAB> value
Medians are taken over the runs that produced a value; the ratio column is
the ratio of those medians.  Only the columns that some row of this run uses are
printed (plain = cp into a plain directory, xorriso = xorriso doing the same
commit, for the stage and commit rows).  Nothing here passes or fails: the status column
only says whether the median meets the target written in the table.
"""
import json
import statistics
import sys
from collections import OrderedDict, defaultdict

PEERS = ["fuseiso", "archivemount"]
COLUMNS = ["discfs", "fuseiso", "archivemount", "direct", "plain", "xorriso"]

# row id -> (title, unit, better, ratio kind, target)
#   ratio kinds: "peer_over_discfs" - fastest (or smallest) peer / discfs
#                "discfs_over_direct" - discfs / direct (dd or 7z or fio on image)
#                "discfs_over_fuseiso", "discfs_over_plain", "discfs_over_xorriso" - likewise
#                ("over_row", TOOL, ROW) - discfs / TOOL's median in another row
#                a list of kinds: several ratios, the first one carries the target
#   target: (kind, threshold, text) with kinds "ratio_ge", "ratio_le", "abs_le"
#   The title may name meta keys in braces ({udf_entries_expected}); they are filled in.
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
    # udf-small.img / udf-big.img: UDF only (genisoimage -udf, ISO 9660 side removed)
    ("udf_mount", ("mount latency, udf-small.img (UDF only)", "ms", "lower", "peer_over_discfs",
                   ("abs_le", 10.0, "discfs <= 10 ms"))),
    ("udf_walk_cold", ("find | wc -l, cold mount, UDF ({udf_entries_expected} entries)", "s",
                       "lower", [("over_row", "discfs", "sess_walk_newest")], None)),
    ("udf_walk_warm", ("find | wc -l, warm (2nd walk), UDF", "s", "lower", "peer_over_discfs",
                       None)),
    ("udf_tar", ("tar cf - all files | wc -c, UDF", "s", "lower", "discfs_over_direct",
                 ("ratio_le", 2.0, "discfs <= 2x time of 7z x"))),
    ("udf_seq_first", ("dd 1 GiB file, fresh mount, UDF", "MiB/s", "higher", "discfs_over_direct",
                       ("ratio_ge", 0.4, ">= 0.4x dd of image"))),
    # grown.iso: xorriso sessions, each adding files to the tree of the one before
    ("sess_mount_newest", ("mount latency, grown.iso, newest session", "ms", "lower",
                           "peer_over_discfs", ("abs_le", 10.0, "discfs <= 10 ms"))),
    ("sess_walk_newest", ("find | wc -l, cold, newest of {grown_sessions} sessions "
                          "({grown_entries_newest} entries)", "s", "lower", "peer_over_discfs",
                          ("ratio_ge", 2.0, ">= 2x faster than fastest peer"))),
    ("sess_mount_all", ("mount latency, grown.iso --sessions", "ms", "lower",
                        [("over_row", "discfs", "sess_mount_newest")],
                        ("abs_le", 10.0, "discfs <= 10 ms"))),
    ("sess_walk_all", ("find | wc -l, cold, --sessions: all {grown_sessions} trees "
                       "({grown_entries_all} entries)", "s", "lower",
                       [("over_row", "discfs", "sess_walk_newest"),
                        ("over_row", "fuseiso", "sess_walk_newest")], None)),
    # stage: cp -a of a tree into a fresh staging mount (discfs) vs a plain directory
    ("stage_mount", ("discfs stage latency, blank target", "ms", "lower", None, None)),
    ("stage_copy", ("cp -a {stage_gib} GiB ({stage_files} files) + sync -f: until durable",
                    "MiB/s", "higher", "discfs_over_plain",
                    ("ratio_ge", 0.7, ">= 0.7x cp to plain dir"))),
    ("stage_copy_cp", ("cp -a {stage_gib} GiB ({stage_files} files): until cp returns", "MiB/s",
                       "higher", "discfs_over_plain", None)),
    ("stage_copy_sync", ("the sync -f after that cp", "s", "lower", "discfs_over_plain", None)),
    ("stage_copy_big", ("cp -a {stage_bigtree_gib} GiB in {stage_bigtree_files} big files + "
                        "sync -f: until durable", "MiB/s", "higher", "discfs_over_plain",
                        ("ratio_ge", 0.7, ">= 0.7x cp to plain dir"))),
    ("stage_copy_small", ("cp -a the {stage_small_files} small files ({stage_small_mib} MiB) "
                          "of stage_copy + sync -f: until durable", "files/s", "higher",
                          "discfs_over_plain", None)),
    # commit: one new file on a copy of small.iso (discfs stage + cp + commit vs xorriso)
    ("commit_stage_mount", ("discfs stage latency, small.iso ({commit_base_files} files)", "ms",
                            "lower", None, None)),
    ("commit_1g_add", ("cp 1 GiB file into the staging mount", "s", "lower", None, None)),
    ("commit_1g", ("commit 1 GiB file: discfs commit vs xorriso -update_r", "s", "lower",
                   "discfs_over_xorriso", ("ratio_le", 1.2, "discfs <= 1.2x xorriso"))),
    ("commit_1g_all", ("commit 1 GiB file: stage mount + cp + commit", "s", "lower",
                       "discfs_over_xorriso", None)),
    ("commit_1g_blocks", ("commit 1 GiB file: blocks the new session added", "blocks",
                          "lower", "discfs_over_xorriso", ("ratio_le", 1.0, "<= xorriso's"))),
    ("commit_1file_add", ("cp 4 KiB file into the staging mount", "s", "lower", None, None)),
    ("commit_1file", ("commit 4 KiB file: discfs commit vs xorriso -update_r", "s", "lower",
                      "discfs_over_xorriso", None)),
    ("commit_1file_all", ("commit 4 KiB file: stage mount + cp + commit", "s", "lower",
                          "discfs_over_xorriso", None)),
    ("commit_1file_blocks", ("commit 4 KiB file: blocks the new session added", "blocks",
                             "lower", "discfs_over_xorriso", None)),
    # create: a new image from files on disk (discfs create vs xorriso -as mkisofs + sync)
    ("create_small", ("create from {create_small_files} small files: until durable", "s",
                      "lower", "discfs_over_xorriso", ("ratio_le", 1.0, "no slower"))),
    ("create_small_rss", ("create from {create_small_files} small files: peak RSS", "MiB",
                          "lower", "discfs_over_xorriso", None)),
    ("create_big", ("create from one {create_big_gib} GiB file: until durable", "s", "lower",
                    "discfs_over_xorriso", ("ratio_le", 1.0, "no slower"))),
    ("create_big_rss", ("create from one {create_big_gib} GiB file: peak RSS", "MiB", "lower",
                        "discfs_over_xorriso", None)),
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
    if unit in ("IOPS", "blocks"):
        return f"{v:,.0f}"
    if unit in ("MiB/s", "files/s"):
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

    medians, counts = {}, {}
    for row in order:
        medians[row], counts[row] = {}, {}
        for tool in COLUMNS:
            vals = [v for _, v in samples[row].get(tool, []) if v is not None]
            tried = len(samples[row].get(tool, []))
            counts[row][tool] = (len(vals), tried)
            medians[row][tool] = statistics.median(vals) if vals else None

    def one_ratio(kind, med, better, pinned):
        """-> (ratio or None, text, which way the ratio is better)"""
        d = med["discfs"]
        if kind == "peer_over_discfs":
            peers = [(med[p], p) for p in PEERS if med[p] is not None]
            if peers and d:
                best, who = (min(peers) if better == "lower" else max(peers))
                if better == "lower":
                    return best / d, f"{who}/discfs", "higher"
                return d / best, f"discfs/{who}", "higher"
            return None, "", "higher"
        if isinstance(kind, str) and kind.startswith("discfs_over_"):
            other = kind[len("discfs_over_"):]
            x = med[other]
            text = f"discfs/{other}"
            if d is not None and x:
                return d / x, text, better
            return None, text, better
        if isinstance(kind, tuple) and kind[0] == "over_row":
            _, tool, other = kind
            if pinned:        # a pinned row is compared with the pinned variant of the other
                other += PINNED_SUFFIX
            x = medians.get(other, {}).get(tool)
            text = f"discfs/{tool}:{other}"
            if d is not None and x:
                return d / x, text, better
            return None, text, better
        return None, "", ""

    rows_out = []
    table = []
    for row in sorted(order, key=sort_key):
        title, unit, better, rkinds, target = row_def(row)
        try:
            title = title.format(**{k: (f"{int(v):,}" if v.isdigit() else v)
                                    for k, v in meta.items()})
        except (KeyError, ValueError):
            pass
        med, nvals = medians[row], counts[row]
        if rkinds is None:
            rkinds = []
        elif not isinstance(rkinds, list):
            rkinds = [rkinds]
        ratios = [one_ratio(k, med, better, row.endswith(PINNED_SUFFIX)) for k in rkinds]
        ratio, rtext, rbetter = ratios[0] if ratios else (None, "", "")
        rkind = rkinds[0] if rkinds else None
        d = med["discfs"]
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
        rcell = "; ".join(f"{v:.2f}x {t}" if v is not None else f"n/a {t}".rstrip()
                          for v, t, _ in ratios) or "n/a"
        rbcell = "/".join(dict.fromkeys(b for _, _, b in ratios))
        table.append([row, title, unit, better] + cells + [rcell, rbcell, ttext, status])
        rows_out.append(OrderedDict([
            ("row", row), ("title", title), ("unit", unit), ("better", better),
            ("samples", {t: [v for _, v in sorted(samples[row][t])] for t in samples[row]}),
            ("median", {t: med[t] for t in COLUMNS if nvals[t][1]}),
            ("ratio", ratio), ("ratio_is", rtext or None),
            ("ratio_better", rbetter or None),
            ("more_ratios", [OrderedDict([("ratio", v), ("ratio_is", t), ("ratio_better", b)])
                             for v, t, b in ratios[1:]]),
            ("target", ttext or None), ("status", status or None),
            ("notes", {t: notes[row][t] for t in notes[row]}),
        ]))

    head = ["row", "what", "unit", "better"] + COLUMNS + ["ratio", "ratio better", "target",
                                                         "status"]
    # drop the tool columns no row of this run used (e.g. fuseiso in a stage/commit run)
    unused = {4 + i for i, tool in enumerate(COLUMNS)
              if all(counts[row][tool][1] == 0 for row in order)}
    ncols = 4 + len(COLUMNS)
    head = [c for i, c in enumerate(head) if i not in unused]
    table = [[c for i, c in enumerate(r) if i not in unused] for r in table]
    first_after = ncols - len(unused)   # index of the ratio column after dropping
    widths = [max(len(str(r[i])) for r in table + [head]) for i in range(len(head))]
    print()
    corpus = []
    if "small_files" in meta or "big_bytes" in meta:
        corpus.append(f"{'quick' if meta.get('quick') == '1' else 'full'} corpus: "
                      f"{meta.get('small_files', '-')} small files, big file "
                      f"{meta.get('big_bytes', '-')} bytes")
    if "udf_files" in meta:
        corpus.append(f"UDF: {meta['udf_files']} files, big file {meta.get('udf_big_bytes')} bytes")
    if "stage_bytes" in meta:
        corpus.append(f"stage tree: {meta.get('stage_files')} files, {meta['stage_bytes']} bytes")
    if "commit_base" in meta:
        corpus.append(f"commit base: {meta.get('commit_base_files')}-file small.iso")
    if "grown_sessions" in meta:
        corpus.append(f"grown.iso: {meta['grown_sessions']} sessions of "
                      f"{meta.get('grown_files_per_session')} files")
    print(f"discfs benchmark - warm image, cold mount, median of {meta.get('runs')} runs"
          f" ({'; '.join(corpus)})")
    print("  ".join(h.ljust(w) for h, w in zip(head, widths)))
    print("  ".join("-" * w for w in widths))
    for r in table:
        print("  ".join(str(c).ljust(w) if i < 4 or i >= first_after else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(r, widths))))
    print()
    if "small_files" in meta or "big_bytes" in meta:
        print("direct = straight from the image file: dd of the big file's bytes (seq rows),")
        print("fio on the same byte range of big.iso (rand rows), 7z x small.iso to "
              f"{meta.get('7z_out', '?')} (tar row).")
    if "udf_files" in meta:
        print("udf_* rows: direct = 7z x -tudf udf-small.img to "
              f"{meta.get('7z_out', '?')} (udf_tar), dd of the big file's")
        print("bytes in udf-big.img (udf_seq_first); fuseiso and archivemount read no UDF (n/a).")
    if "udf_files" in meta or "grown_sessions" in meta:
        print("Cold (udf_*, sess_*): echo 3 > drop_caches, image read back into the page cache, "
              "fresh mount.")
    if "stage_bytes" in meta:
        print("stage_* rows: cp -a of the tree into a fresh staging mount (discfs, blank target,")
        print("fresh store in WORK) vs into a plain directory in WORK (plain); stage_copy counts")
        print("until durable: cp, then sync -f on WORK's filesystem (the stage mount fdatasyncs")
        print("every file on close, so its sync has little left to do). stage_copy_big copies a tree")
        print("of big files only, stage_copy_small the small-file part of the stage_copy tree alone")
        print("(files/s: regular files over cp + sync -f), each the same way.")
    if "commit_base" in meta:
        print("commit_* rows: a new file added to a fresh copy of small.iso; discfs = discfs commit")
        print("on a staging mount holding it (_all: + stage mount + cp into it), xorriso = "
              f"{meta.get('commit_xorriso', 'xorriso -update_r')}.")
        print("Session size: 2 KiB blocks from the base's next writable address (xorriso -toc "
              f"'Media nwa', {meta.get('commit_base_nwa', '?')})")
        print("to the end of the new session (volume space size in the descriptor at LBA 16).")
    print("Ratios are ratios of medians. 'better' says which way the raw figures are better,")
    print("'ratio better' which way the ratio is: peer/discfs > 1 = discfs ahead; discfs/X < 1 = discfs")
    print("ahead for times, > 1 for MiB/s and IOPS. 'discfs/TOOL:ROW' divides by TOOL's median in ROW.")
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
