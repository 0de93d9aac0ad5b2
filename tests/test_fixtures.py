"""The suite is self-contained: tests read data only from tests/fixtures, whose files all have a stated source."""

import pathlib
import re

TESTS = pathlib.Path(__file__).resolve().parent
FIXTURES = TESTS / "fixtures"
# Ways a test could reach data that only some machines have (split so this file does not match itself).
OUTSIDE_REFERENCES = re.compile(
    "|".join(["shared" + "/testdata", "KRESNET" + "_TESTDATA", r"\.\./", "/" + "work/", r"ROOT\.parent", r"parents\[[3-9]\]"])
)


def test_no_test_reads_data_from_outside_the_repository():
    offenders = [
        f"{path.relative_to(TESTS)}:{number}: {line.strip()}"
        for path in sorted(TESTS.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE_REFERENCES.search(line)
    ]
    assert offenders == [], "tests must read data from tests/fixtures only:\n" + "\n".join(offenders)


def test_every_fixture_file_has_a_provenance_row_and_the_set_stays_small():
    readme = (FIXTURES / "README.md").read_text()
    # The table's first column names each folder or file by its path, in backticks.
    described = re.findall(r"^\| `([^`]+)`", readme, flags=re.MULTILINE)
    files = [path for path in FIXTURES.rglob("*") if path.is_file() and path.name != "README.md"]
    undescribed = [
        str(path.relative_to(FIXTURES))
        for path in files
        if not any(path.relative_to(FIXTURES).as_posix().startswith(prefix) for prefix in described)
    ]
    assert undescribed == [], f"add these to tests/fixtures/README.md with source and licence: {undescribed}"
    sizes = {path.relative_to(FIXTURES).as_posix(): path.stat().st_size for path in files}
    assert sum(sizes.values()) < 5 * 2**20 and max(sizes.values()) < 2**20
