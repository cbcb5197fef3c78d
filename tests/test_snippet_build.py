"""The built loader: its size, that the committed dist is what the pinned build makes, and
that it redacts the same query parameters as the collector."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
from pathlib import Path
from re import _constants as sre_c  # Python ≥ 3.11
from re import _parser as sre_parse

import brotli
import pytest

from collector.privacy import PERSONAL_PARAMS

ROOT = Path(__file__).resolve().parent.parent
DIST = ROOT / "snippet" / "dist" / "gov-tracking.min.js"
SRC = ROOT / "snippet" / "src" / "gov-tracking.js"
GZIP_BUDGET = 1536  # bytes, gzip -9 (issue 3)


def test_loader_is_within_the_size_budget() -> None:
    size = len(gzip.compress(DIST.read_bytes(), 9, mtime=0))
    assert size <= GZIP_BUDGET, f"gov-tracking.min.js is {size} B gzip -9 (> {GZIP_BUDGET})"


def test_readme_states_the_built_size() -> None:
    """The README's "is N B raw, N B gzip -9, N B brotli" is what bench/snippet.py prints."""
    body = DIST.read_bytes()
    stated = re.search(r"is ([\d,]+) B raw, ([\d,]+) B gzip -9, ([\d,]+) B brotli",
                       " ".join((ROOT / "README.md").read_text(encoding="utf-8").split()))
    assert stated, "README: the loader's sizes sentence is gone"
    raw, gz, br = (int(n.replace(",", "")) for n in stated.groups())
    actual = (len(body), len(gzip.compress(body, 9, mtime=0)))
    assert (raw, gz) == actual, (
        f"README says {stated.group(0)!r}; the committed dist is {actual} B (raw, gzip -9)")
    # brotli's exact output may move by a few bytes between releases of the encoder
    assert abs(br - len(brotli.compress(body, quality=11))) <= br // 100, stated.group(0)


def test_loader_is_es5_and_speaks_the_protocol() -> None:
    code = DIST.read_text(encoding="utf-8")
    # ES5 output: no arrow functions, let/const, template literals or classes
    for token in ("=>", "let ", "const ", "`", "class "):
        assert token not in code, token
    # every parameter of the collector's /tracking protocol that the loader sends
    for key in (".idsite=", ".rec=1", ".url=", ".urlref=", ".res=", ".lang=", ".pv_id=",
                ".wd=1", "action_name:", "e_c:", "e_a:", "e_n:", "e_v:", "dvc_extra:",
                '"link"', '"download"', '"dvc"', '"step"'):
        assert key in code, key


def test_committed_dist_equals_a_fresh_build(tmp_path: Path) -> None:
    # `make test` / CI must run this check: without node and npm it fails, unless skipped
    # on purpose (GIAMSAT_SKIP_NODE=1, e.g. a machine without the npm registry)
    if os.environ.get("GIAMSAT_SKIP_NODE") == "1":
        pytest.skip("GIAMSAT_SKIP_NODE=1")
    missing = [tool for tool in ("node", "npm") if shutil.which(tool) is None]
    if missing:
        pytest.fail(f"needs {' and '.join(missing)} to rebuild the snippet: run `make test-setup`"
                    " (installs Debian's nodejs and npm), or set GIAMSAT_SKIP_NODE=1 to skip",
                    pytrace=False)
    out = tmp_path / "gov-tracking.min.js"
    built = subprocess.run([str(ROOT / "snippet" / "build.sh"), str(out)],
                           capture_output=True, text=True, timeout=180)
    assert built.returncode == 0, f"snippet/build.sh failed:\n{built.stderr}"
    assert out.read_bytes() == DIST.read_bytes(), (
        "snippet/dist is stale: run snippet/build.sh and commit the result")


# --- the browser's list of personal parameter names is the collector's ----------------------

# clean() in the loader: /([?&](NAMES)=)[^&]*/gi empties the value of each parameter named
JS_PARAMS = re.compile(r"/\(\[\?&\]\((?P<names>[^=]+)\)=\)\[\^&\]\*/(?P<flags>[a-z]*)")


def regex_words(pattern: str) -> set[str]:
    """Every string the regex matches in full: its language, which must be finite (literals,
    classes, groups, alternation and bounded repeats such as ``?``)."""
    return _words(sre_parse.parse(pattern))


def _words(items) -> set[str]:  # type: ignore[no-untyped-def]
    out = {""}
    for op, av in items:
        out = {a + b for a in out for b in _word_item(op, av)}
    return out


def _word_item(op, av) -> set[str]:  # type: ignore[no-untyped-def]
    if op is sre_c.LITERAL:
        return {chr(av)}
    if op is sre_c.SUBPATTERN:
        return _words(av[-1])
    if op is sre_c.BRANCH:
        return set().union(*(_words(branch) for branch in av[1]))
    if op is sre_c.IN and all(o is sre_c.LITERAL for o, _ in av):
        return {chr(a) for _, a in av}
    if op is sre_c.MAX_REPEAT and av[1] is not sre_c.MAXREPEAT:
        low, high, body = av
        inner, words, run = _words(body), set(), {""}
        for n in range(high + 1):
            words |= run if n >= low else set()
            run = {a + b for a in run for b in inner}
        return words
    raise AssertionError(f"the names regex must stay a finite list, not {op} {av}")


@pytest.mark.parametrize("path", [SRC, DIST], ids=["src", "dist"])
def test_browser_redacts_the_collectors_personal_params(path: Path) -> None:
    found = JS_PARAMS.findall(path.read_text(encoding="utf-8"))
    assert len(found) == 1, f"the personal-parameter regex not found in {path.name}"
    names, flags = found[0]
    assert "i" in flags and "g" in flags  # every parameter, any case (the collector lowers)
    browser = regex_words(names)
    collector = {p.lower() for p in PERSONAL_PARAMS}
    assert browser == collector, (
        f"only in the loader: {sorted(browser - collector)}; "
        f"only in collector/privacy.py: {sorted(collector - browser)}")


def test_names_regex_language() -> None:
    assert regex_words("(so_?)?c(mnd|ccd)|id[_-]?no") == {
        "cmnd", "cccd", "socmnd", "socccd", "so_cmnd", "so_cccd", "idno", "id_no", "id-no"}
    for unbounded in (r"\w*name", "pass.*", "a+"):
        with pytest.raises(AssertionError, match="finite"):
            regex_words(unbounded)
