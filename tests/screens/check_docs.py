"""Screenshot every built docs page at 1280 px in headless Chromium, and fail if any
code block is wider than its container (measured in the page, not by eye).

Usage: ``python tests/screens/check_docs.py SITE_DIR OUT_DIR`` (``nox -s docs_screens``
builds the site first). Needs a Chromium binary: ``$CHROMIUM``, else ``chromium`` or
``chromium-browser`` on the PATH. The browser only opens local files.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

WIDTH = 1280
HEIGHT = 900
MARKER = "screen-check"
# Runs at the end of each page, after its CSS is in place: every <pre> inside the
# article must fit, both its own content (scrollWidth) and its box (the article's).
PROBE = f"""
<script>
(function () {{
  var article = document.querySelector(".md-content__inner") || document.body;
  var limit = article.getBoundingClientRect().right + 1;
  var blocks = Array.prototype.slice.call(article.querySelectorAll("pre"));
  var wide = blocks.filter(function (pre) {{
    var code = pre.querySelector("code") || pre;
    return code.scrollWidth > code.clientWidth + 1 || pre.getBoundingClientRect().right > limit;
  }}).map(function (pre) {{
    var code = pre.querySelector("code") || pre;
    return {{scrollWidth: code.scrollWidth, clientWidth: code.clientWidth,
             start: code.textContent.slice(0, 60)}};
  }});
  var out = document.createElement("pre");
  out.id = "{MARKER}";
  out.textContent = JSON.stringify({{viewport: window.innerWidth, blocks: blocks.length,
                                     wide: wide}});
  document.body.appendChild(out);
}})();
</script>
"""
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    f"--window-size={WIDTH},{HEIGHT}",
]


def _chromium() -> str:
    for candidate in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if candidate and shutil.which(candidate):
            return candidate
    raise SystemExit("no Chromium found: install it (Debian: apt-get install chromium)")


def _run(browser: str, *args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [browser, *FLAGS, f"--user-data-dir={profile}", *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return done.stdout


def check(site: Path, out: Path) -> list[str]:
    """Check every page; returns one problem line per overflowing code block."""
    browser = _chromium()
    out.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    pages = sorted(p for p in site.rglob("index.html") if "assets" not in p.parts)
    if not pages:
        raise SystemExit(f"no pages under {site}: build the docs first")
    for page in pages:
        name = str(page.parent.relative_to(site)).replace(os.sep, "-").strip(".") or "home"
        probed = page.with_name("index.screen-check.html")
        probed.write_text(page.read_text(encoding="utf-8").replace("</body>", PROBE + "</body>"))
        try:
            dom = _run(browser, "--dump-dom", probed.as_uri())
            _run(browser, f"--screenshot={out / (name + '.png')}", page.as_uri())
        finally:
            probed.unlink()
        match = re.search(rf'<pre id="{MARKER}">(.*?)</pre>', dom, re.S)
        if match is None:
            problems.append(f"{name}: the in-page check did not run")
            continue
        result = json.loads(match.group(1).replace("&quot;", '"').replace("&amp;", "&"))
        if result["viewport"] != WIDTH:
            problems.append(f"{name}: viewport {result['viewport']} px, not {WIDTH}")
        for block in result["wide"]:
            problems.append(
                f"{name}: code block {block['start']!r} is {block['scrollWidth']} px wide "
                f"in a {block['clientWidth']} px box"
            )
        print(f"{name}: {result['blocks']} code blocks, {len(result['wide'])} too wide")
    return problems


def main() -> int:
    """Run the check; exit 1 if any code block is too wide."""
    site, out = Path(sys.argv[1]).resolve(), Path(sys.argv[2]).resolve()
    problems = check(site, out)
    for line in problems:
        print(f"FAIL {line}")
    print(f"screenshots in {out}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
