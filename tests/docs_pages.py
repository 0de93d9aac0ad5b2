"""The documentation as the tests read it: README.md and the pages of the site under docs/, their code blocks and links."""

import dataclasses
import re
import unicodedata

from tests.conftest import PROJECT_ROOT

DOCS = PROJECT_ROOT / "docs"
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")


@dataclasses.dataclass
class CodeBlock:
    page: str  # relative to the project root, e.g. "docs/tricks.md"
    language: str
    line: int  # of the opening fence, 1-based
    text: str


def pages():
    """README.md and every docs/*.md, relative to the project root."""
    return ["README.md", *(f"docs/{path.name}" for path in sorted(DOCS.glob("*.md")))]


def code_blocks(page):
    """The fenced blocks of a page, in order."""
    blocks, opened, language, lines = [], None, "", []
    for number, line in enumerate((PROJECT_ROOT / page).read_text(encoding="utf-8").splitlines(), start=1):
        fence = FENCE.match(line)
        if opened is None and fence:
            opened, language, indent, lines = number, fence.group(2), len(fence.group(1)), []
        elif opened is not None and fence and not fence.group(2):
            blocks.append(CodeBlock(page, language, opened, "\n".join(lines) + "\n"))
            opened = None
        elif opened is not None:
            lines.append(line[indent:])
    return blocks


def prose(text):
    """Markdown text without its code blocks and inline code, where links live."""
    kept, inside = [], False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
        elif not inside:
            kept.append(re.sub(r"`[^`]*`", "", line))
    return "\n".join(kept)


def links(page, text=None):
    """Every link and image target in the page's prose (`text`: the page's content, if not the file's)."""
    return LINK.findall(prose((PROJECT_ROOT / page).read_text(encoding="utf-8") if text is None else text))


def anchors(page):
    """The ids mkdocs gives the page's headings (Python-Markdown's toc slugify; a repeated heading gets _1, _2)."""
    seen, ids = {}, set()
    text = (PROJECT_ROOT / page).read_text(encoding="utf-8")
    inside = False
    for line in text.splitlines():
        if FENCE.match(line):
            inside = not inside
            continue
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if inside or not heading:
            continue
        title = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading.group(1)).replace("`", "").replace("*", "")
        title = unicodedata.normalize("NFKD", title).encode("ascii", "ignore").decode("ascii")
        slug = re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", title).strip().lower())
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        ids.add(slug if count == 0 else f"{slug}_{count}")
    return ids
