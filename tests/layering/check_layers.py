#!/usr/bin/env python3
"""The include rules of DEVELOPMENT.md, checked: each folder may include only the layers
below it, and only the libraries its layer owns.

    imagecore  <- burner  <- stage  <- fusefs  <- cli
    (reads)       (writes    (store,    (FUSE)     (parses, reports,
                  media)     commit)               maps errors)

Exits 1 naming every file and include line that breaks a rule, 0 when none does.
Run by CTest as `layering`; by hand: python3 tests/layering/check_layers.py [REPO]."""
import pathlib
import re
import sys

# For each folder: project folders it may include, and system header prefixes it must not.
RULES = {
    "imagecore": ({"imagecore"}, ("fuse", "libburn", "libisofs", "libisoburn", "sqlite3")),
    "burner": ({"imagecore", "burner"}, ("fuse", "sqlite3")),
    "stage": ({"imagecore", "burner", "stage"}, ("fuse", "libburn", "libisofs", "libisoburn")),
    "fusefs": ({"imagecore", "stage", "fusefs"}, ("libburn", "libisofs", "libisoburn", "sqlite3")),
    "cli": ({"imagecore", "burner", "stage", "fusefs", "cli"},
            ("libburn", "libisofs", "libisoburn", "sqlite3")),
}
# Headers other layers include must not drag private libraries along: the public headers of
# stage/ may not include SQLite, those of burner/ not libburnia (burner/libs.h is private).
PRIVATE_HEADERS = {"burner/libs.h", "stage/sqlite.h", "stage/store_private.h"}
# Libraries a folder's public headers must not include (its .cc files and private headers may).
HEADER_BANNED = {
    "burner": ("libburn", "libisofs", "libisoburn"),
    "stage": ("sqlite3",),
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def check(repo: pathlib.Path) -> list[str]:
    problems = []
    for folder, (allowed, banned) in RULES.items():
        for path in sorted((repo / folder).rglob("*")):
            if path.suffix not in (".h", ".cc", ".c"):
                continue
            rel = path.relative_to(repo).as_posix()
            for n, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                kind, name = m.groups()
                top = name.split("/", 1)[0]
                if kind == '"' and "/" in name and top not in allowed:
                    problems.append(f"{rel}:{n}: {folder}/ may not include {name}")
                if kind == "<" and any(name.startswith(b) for b in banned):
                    problems.append(f"{rel}:{n}: {folder}/ may not include <{name}>")
                public_header = path.suffix == ".h" and rel not in PRIVATE_HEADERS
                if (kind == "<" and public_header and
                        any(name.startswith(b) for b in HEADER_BANNED.get(folder, ()))):
                    problems.append(f"{rel}:{n}: a public header of {folder}/ may not include <{name}>")
                if (name in PRIVATE_HEADERS and top != folder):
                    problems.append(f"{rel}:{n}: {name} is private to {name.split('/')[0]}/")
    return problems


def main() -> int:
    repo = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else
                        pathlib.Path(__file__).resolve().parents[2])
    problems = check(repo)
    for p in problems:
        print(p)
    print(f"layering: {len(problems)} include(s) break the rules" if problems else
          "layering: every include follows the rules")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
