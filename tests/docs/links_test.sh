#!/usr/bin/env bash
# Every relative link of README.md, docs/*.md, bench/README.md and tests/*/README.md resolves:
# the file exists, and a #anchor matches a heading of the target (check_links.py has the rules).
# No root, no build. First the checker is shown a small tree with known broken links, so that a
# checker that finds nothing cannot pass. Broken links are printed as FILE:LINE: TARGET: WHY.
set -uo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=${SMTPGUARD_SOURCE:-$(cd "$here/../.." && pwd)}
python=/usr/bin/python3
[[ -x $python ]] || python=python3
checker=$here/check_links.py

# ---- the checker on a tree of its own -------------------------------------------------------
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/docs"
cat >"$tmp/README.md" <<'MD'
# Top

See [the page](docs/page.md#second-part-b), [again](docs/page.md#same-1), [here](#top),
[web](https://example.org/x#y) and `[code](missing.md)`.

```
[in a block](missing.md)
```

[gone](docs/gone.md) and [no anchor](docs/page.md#nothing) and [dup](docs/page.md#same-2).
MD
cat >"$tmp/docs/page.md" <<'MD'
# Page

## Second part (`b`)

## Same

## Same
MD
out=$("$python" "$checker" "$tmp" README.md 2>/dev/null)
rc=$?
expected="README.md:10: docs/gone.md: no such file
README.md:10: docs/page.md#nothing: no heading with anchor #nothing in docs/page.md
README.md:10: docs/page.md#same-2: no heading with anchor #same-2 in docs/page.md"
if [[ $rc != 1 || $out != "$expected" ]]; then
  echo "links: FAIL: the checker's own test: exit $rc, output:" >&2
  printf '%s\n' "$out" >&2
  echo "links: expected exit 1 and:" >&2
  printf '%s\n' "$expected" >&2
  exit 1
fi
echo "links: the checker finds the broken links of its test tree"

# ---- the project's pages ----------------------------------------------------------------------
"$python" "$checker" "$root"
rc=$?
if ((rc != 0)); then
  echo "links: FAIL: broken links above (FILE:LINE: TARGET: WHY)" >&2
  exit 1
fi
echo "links: ok"
