#!/usr/bin/python3
"""Every relative link of the project's Markdown pages resolves.

Usage: check_links.py ROOT [FILE.md ...]

Without files it checks README.md, docs/*.md, bench/README.md and tests/*/README.md under ROOT.
A link resolves when its file or directory exists inside ROOT and, for `#anchor`, the target is
a Markdown file with a heading whose GitHub slug is that anchor (lowercase; every character but
letters, digits, `-`, `_` and spaces dropped; spaces to `-`; a repeated heading gets `-1`, `-2`,
...). Links with a scheme (https:, mailto:) are not checked. Code blocks and code spans are not
read. Each broken link is printed as FILE:LINE: TARGET: WHY; the exit status is 1 if there was
one, 2 on a usage error. Standard library only.
"""
import glob
import os
import re
import sys

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
ATX = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$")
SETEXT = re.compile(r"^ {0,3}(=+|-+)[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\1).)+?\1")
# [text](target) and ![alt](target); text may hold one level of brackets, target may be <...>.
INLINE = re.compile(r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]\(\s*(<[^>]*>|[^)\s]+)(?:\s+[\"'(].*?[\"')])?\s*\)")
REFDEF = re.compile(r"^ {0,3}\[[^\]]+\]:\s*(<[^>]*>|\S+)")
HTML_ID = re.compile(r"<a\s[^>]*(?:name|id)\s*=\s*[\"']([^\"']+)[\"']", re.I)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
LINE_ANCHOR = re.compile(r"^L\d+(-L\d+)?$")


def prose_lines(text):
    """(line number, line) of the lines outside fenced code blocks."""
    fence = None
    for n, line in enumerate(text.split("\n"), 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence = m.group(1)
            continue
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                    and not line.strip()[len(m.group(1)):]:
                fence = None
            continue
        yield n, line


def slug(heading):
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link's text only
    text = re.sub(r"<[^>]+>", "", text)  # inline HTML
    text = text.replace("`", "").replace("*", "").lower()
    text = "".join(c for c in text if c.isalnum() or c in "-_ ")
    return text.replace(" ", "-")


def anchors(path, cache={}):
    if path in cache:
        return cache[path]
    with open(path, encoding="utf-8") as f:
        text = f.read()
    found, seen = set(), {}
    previous = ""
    for _, line in prose_lines(text):
        heading = None
        m = ATX.match(line)
        if m:
            heading = m.group(2) or ""
        elif SETEXT.match(line) and previous.strip() and not re.match(
                r"^\s*([#>|*+-]|\d+[.)])", previous):
            heading = previous.strip()
        for h in HTML_ID.findall(line):
            found.add(h)
        if heading is not None:
            base = slug(heading)
            count = seen.get(base, 0)
            seen[base] = count + 1
            found.add(base if count == 0 else f"{base}-{count}")
        previous = "" if heading is not None else line
    cache[path] = found
    return found


def links(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    for n, line in prose_lines(text):
        bare = CODE_SPAN.sub(lambda m: " " * len(m.group(0)), line)
        targets = [m.group(1) for m in INLINE.finditer(bare)]
        m = REFDEF.match(bare)
        if m:
            targets.append(m.group(1))
        for t in targets:
            yield n, t[1:-1] if t.startswith("<") else t


def check(root, path):
    """The broken links of one file, as messages."""
    bad = []
    rel = os.path.relpath(path, root)
    for n, target in links(path):
        if SCHEME.match(target) or target.startswith("//"):
            continue
        where, _, anchor = target.partition("#")
        dest = os.path.normpath(os.path.join(os.path.dirname(path), where)) if where else path
        why = None
        if os.path.relpath(dest, root).startswith(".."):
            why = "outside the repository"
        elif not os.path.exists(dest):
            why = "no such file"
        elif anchor and not LINE_ANCHOR.match(anchor):
            if not dest.endswith(".md") or os.path.isdir(dest):
                why = "an anchor on a file that is not Markdown"
            elif anchor not in anchors(dest):
                why = f"no heading with anchor #{anchor} in {os.path.relpath(dest, root)}"
        if why:
            bad.append(f"{rel}:{n}: {target}: {why}")
    return bad


def main(argv):
    if len(argv) < 2 or not os.path.isdir(argv[1]):
        print(__doc__.strip().split("\n")[2], file=sys.stderr)
        return 2
    root = os.path.realpath(argv[1])
    files = [os.path.join(root, f) for f in argv[2:]]
    if not files:
        files = [os.path.join(root, "README.md")]
        for pattern in ("docs/*.md", "bench/README.md", "tests/*/README.md"):
            files += sorted(glob.glob(os.path.join(root, pattern)))
    bad, count = [], 0
    for f in files:
        if not os.path.isfile(f):
            bad.append(f"{os.path.relpath(f, root)}:0: the file to check does not exist")
            continue
        count += sum(1 for _ in links(f))
        bad += check(root, f)
    for b in bad:
        print(b)
    print(f"links: {len(files)} files, {count} links, {len(bad)} broken", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
