"""The documentation builds without a warning (mkdocs --strict) and its API reference is
generated from the docstrings."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO, missing


def test_the_docs_build_strict_with_the_api_reference(tmp_path):
    try:
        import mkdocs  # noqa: F401
        import mkdocstrings  # noqa: F401
    except ImportError:
        missing("mkdocs and mkdocstrings are not installed (pip install -e '.[dev]')")
    site = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert not re.search(r"^WARNING", run.stderr, re.M), run.stderr
    api = (site / "reference" / "api" / "index.html").read_text()
    # Rendered from gaitedge.api's docstrings, not written in the page.
    assert "Run a recording through the runtime as" in api and "source_or_spec" in api
    for page in ("recordings", "sensors", "chain", "training", "deploying"):
        assert (site / page / "index.html").is_file(), page
    assert (site / "img" / "web.png").is_file()


def test_the_readme_links_to_the_docs():
    readme = (REPO / "README.md").read_text()
    assert "mkdocs" in readme and "docs/img/web.png" in readme


def test_the_formats_table_names_every_format_as_the_cli_does():
    """docs/recordings.md named gaitedge's CSV `canonical` (`--format canonical` is refused:
    the name is `gaitedge`) and left ActiGraph out: its table lists `gaitedge formats`' names."""
    from gaitedge import formats

    doc = (REPO / "docs" / "recordings.md").read_text()
    assert re.findall(r"^\| `([a-z0-9_-]+)` \|", doc, re.M) == list(formats.FORMATS)
