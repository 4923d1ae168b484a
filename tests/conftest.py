"""Shared fixtures. `prepared_cache` is an AUTORESEARCH_CACHE root prepared for the cpu profile."""

import sys
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

# A few stdlib packages make a small but real corpus (~2 MB of Python) that prepares in a second.
CORPUS_PACKAGES = ("json", "email", "logging", "unittest", "collections", "importlib", "asyncio")


@pytest.fixture(scope="session")
def prepared_cache(tmp_path_factory):
    """A cache root (pass it as AUTORESEARCH_CACHE) where `python prepare.py --profile cpu --source local`
    has run on a few stdlib packages: train.py with AUTORESEARCH_PROFILE=cpu finds data + tokenizer."""
    import prepare

    root = tmp_path_factory.mktemp("autoresearch-cache")
    corpus = tmp_path_factory.mktemp("corpus")
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    for package in CORPUS_PACKAGES:
        for path in sorted((stdlib / package).rglob("*.py")):
            text = path.read_text(encoding="utf-8", errors="replace")
            if text.strip():
                name = f"{package}__{path.relative_to(stdlib / package).as_posix().replace('/', '__')}.txt"
                (corpus / name).write_text(text, encoding="utf-8")
    prepare.prepare("local", "cpu", cache_root=root, input_dir=corpus)
    return root


from pg_fixture import pg_server, pg_url  # noqa: E402,F401  (the PostgreSQL fixtures, tests/pg_fixture.py)
