"""The collector table: every kind of demo text, where it lives, how it is read.

Collectors read the files of the packages they declare, never a whole directory: the Python
distributions of :data:`DEMO_DISTRIBUTIONS` (pinned in constraints.txt) and the Debian
packages of :data:`~.debian.DEMO_DEBIAN_PACKAGES` (with their versions), so installing a
linter or SLURM beside the project does not change the demo's weights. Only Python's own
standard library and headers (fixed by its version) and the demo-new collectors' npm and
Rust files are found by globs. Every source's package and version goes to the manifest.
"""

from __future__ import annotations

import glob
import os
from dataclasses import replace
from pathlib import Path

from .converters import (
    c_header,
    docstrings,
    gzipped_text,
    is_shell_script,
    localized_text,
    man_page,
    metadata_long_description,
    mo_catalogue,
    plain_text,
    pydoc_topics,
)
from .debian import DEMO_DEBIAN_PACKAGES
from .model import Collector
from .provenance import python_paths

__all__ = ["COLLECTORS", "DEMO_DISTRIBUTIONS"]

# The Python distributions of the demo: the runtime dependency closure of chameleon-mix
# (`pip install -c constraints.txt -e .`, Python 3.11 on Linux), every one pinned in
# constraints.txt, so a fresh install reads exactly these files at exactly these versions.
# chameleon-mix itself is left out: its README is the repository's, not a package's.
DEMO_DISTRIBUTIONS = (
    "absl-py", "accelerate", "aiohappyeyeballs", "aiohttp", "aiosignal", "annotated-doc",
    "annotated-types", "anyio", "argparse-dataclass", "attrs", "certifi", "chardet",
    "charset-normalizer", "click", "cloudpickle", "colorama", "conda-inject", "configargparse",
    "connection-pool", "contourpy", "cycler", "dataproperty", "datasets", "defusedxml", "dill",
    "docutils", "dpath", "evaluate", "fastjsonschema", "filelock", "fonttools", "frozenlist",
    "fsspec", "gitdb", "gitpython", "greenlet", "h11", "hf-xet", "httpcore2", "httpx2",
    "huggingface-hub", "humanfriendly", "idna", "immutables", "jinja2", "joblib", "jsonschema",
    "jsonschema-specifications", "jupyter-core", "kiwisolver", "lightgbm",
    "lingua-language-detector", "lm-eval", "lxml",
    "markdown-it-py", "markupsafe", "matplotlib", "mbstrdecoder", "mdurl", "more-itertools",
    "mpmath", "multidict", "multiprocess", "narwhals", "nbformat", "networkx", "nltk", "numpy",
    "packaging", "pandas", "pathvalidate", "peft", "pillow", "platformdirs", "portalocker",
    "propcache", "psutil", "pulp", "pyarrow", "pydantic", "pydantic-core", "pygments",
    "pyparsing", "pytablewriter", "python-dateutil", "pytz", "pyyaml", "referencing", "regex",
    "requests", "rich", "rouge-score", "rpds-py", "sacrebleu", "safetensors", "scikit-learn",
    "scipy", "setuptools", "shellingham", "six", "smart-open", "smmap", "snakemake",
    "snakemake-interface-common", "snakemake-interface-executor-plugins",
    "snakemake-interface-logger-plugins", "snakemake-interface-report-plugins",
    "snakemake-interface-scheduler-plugins", "snakemake-interface-storage-plugins",
    "sqlalchemy", "sqlitedict", "sqlmodel", "sympy", "tabledata", "tabulate", "tcolorpy",
    "tenacity", "threadpoolctl", "throttler", "tokenizers", "torch", "tqdm", "traitlets",
    "transformers", "truststore", "typepy", "typer", "typing-extensions", "typing-inspection",
    "urllib3", "word2number", "wrapt", "xxhash", "yarl", "yte", "zstandard",
)  # fmt: skip
_INSTALL_DEMO_DISTRIBUTIONS = "pip install -c constraints.txt -e . (from the repository root)"
_INSTALL_DEMO_DEBIAN_PACKAGES = (
    "apt-get install --reinstall <the packages of chameleon_mix.corpus.DEMO_DEBIAN_PACKAGES>"
)


def _no_globs() -> tuple[str, ...]:
    return ()


def _stdlib() -> str:
    return glob.escape(python_paths()["stdlib"])


_HEADER_SUFFIXES = {".h", ".hh", ".hpp", ".hxx", ".cuh"}
_TEST_DIRS = frozenset({"__pycache__", "test", "tests", "idle_test"})


def _rustup_docs() -> str:
    home = os.environ.get("RUSTUP_HOME") or os.path.expanduser("~/.rustup")
    return f"{glob.escape(home)}/toolchains/*/share/doc/**/*.md"


# Finetuning demo "demo-languages": language -> its English name.  Each collector reads the language's own locale directory
# and its regional variants (<lang>_<REGION>: pt_BR and pt_PT for Portuguese,
# de_CH for German): the same written language, which the language check does
# not tell apart; the documents' "lang" field keeps the directory.  Variants
# with a modifier (sr@latin, ca@valencia) are other scripts or dialects and
# are left out.
_NATURAL_LANGUAGES = {
    "fr": "French",
    "de": "German",
    "it": "Italian",
    "es": "Spanish",
    "pt": "Portuguese",
    "nl": "Dutch",
    "pl": "Polish",
}


def _language_collector(language: str) -> Collector:
    english = _NATURAL_LANGUAGES[language]
    locales = [language, f"{language}_[A-Z][A-Z]"]
    return Collector(
        name=f"lang_{language}",
        description=f"{english} prose: translated gettext messages and man pages, "
        f"paragraphs checked to be {english} by chameleon_mix.langid",
        install_hint=f"{_INSTALL_DEMO_DEBIAN_PACKAGES} with /usr/share/locale and "
        "/usr/share/man kept in dpkg's path filters",
        globs=_no_globs,
        debian_packages=DEMO_DEBIAN_PACKAGES,
        debian_files=(
            *(f"/usr/share/locale/{locale}/LC_MESSAGES/*.mo" for locale in locales),
            *(f"/usr/share/man/{locale}/man*/*.gz" for locale in locales),
        ),
        to_documents=localized_text,
        language=language,
    )


def _is_cmake(path: Path) -> bool:
    return path.suffix == ".cmake" or path.name == "CMakeLists.txt"


COLLECTORS: dict[str, Collector] = {
    c.name: c
    for c in (
        Collector(
            name="python_code",
            description="Python standard-library modules (.py), tests and site-packages excluded",
            install_hint="apt-get install libpython3-stdlib (a Python with its standard library)",
            globs=lambda: [f"{_stdlib()}/**/*.py"],
            prune=_TEST_DIRS | {"site-packages"},
            to_documents=plain_text,
        ),
        Collector(
            name="c_headers",
            description="C/C++ headers from Python's include dir, torch and /usr/include",
            install_hint=f"apt-get install libc6-dev python3-dev; {_INSTALL_DEMO_DISTRIBUTIONS}",
            globs=lambda: [f"{glob.escape(python_paths()['include'])}/**/*"],
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=("/usr/include/**/*",),
            distributions=("torch",),
            distribution_files=("torch/include/**/*",),
            accept=lambda path: path.suffix in _HEADER_SUFFIXES,
            to_documents=plain_text,
        ),
        Collector(
            name="docstrings",
            description="module, class and function docstrings of the demo's Python distributions",
            install_hint=_INSTALL_DEMO_DISTRIBUTIONS,
            globs=_no_globs,
            distributions=DEMO_DISTRIBUTIONS,
            distribution_files=("**/*.py",),
            prune=_TEST_DIRS,
            to_documents=docstrings,
        ),
        Collector(
            name="package_readmes",
            description="long descriptions (README) from the demo's Python distributions' METADATA",
            install_hint=_INSTALL_DEMO_DISTRIBUTIONS,
            globs=_no_globs,
            distributions=DEMO_DISTRIBUTIONS,
            distribution_files=("*.dist-info/METADATA",),
            to_documents=metadata_long_description,
        ),
        Collector(
            name="python_docs",
            description="Python reference documentation topics from pydoc_data",
            install_hint="apt-get install libpython3-stdlib (provides pydoc_data/topics.py)",
            globs=lambda: [f"{_stdlib()}/pydoc_data/topics.py"],
            to_documents=pydoc_topics,
        ),
        Collector(
            name="licenses",
            description="licence texts from common-licenses, Debian copyright files and the demo's Python distributions",
            install_hint="apt-get install base-files",
            globs=_no_globs,
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=("/usr/share/common-licenses/*", "/usr/share/doc/*/copyright"),
            distributions=DEMO_DISTRIBUTIONS,
            distribution_files=(
                "*.dist-info/LICEN[CS]E*",
                "*.dist-info/COPYING*",
                "*.dist-info/licenses/**/*",
            ),
            to_documents=plain_text,
        ),
        Collector(
            name="man_pages",
            description="English manual pages, roff markup stripped",
            install_hint="apt-get install man-db manpages (and keep /usr/share/man in dpkg's path filters)",
            globs=_no_globs,
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=("/usr/share/man/man[1-8]/*.gz",),
            to_documents=man_page,
        ),
        Collector(
            name="changelogs",
            description="Debian package changelogs",
            install_hint=f"{_INSTALL_DEMO_DEBIAN_PACKAGES} with /usr/share/doc kept in dpkg's path filters",
            globs=_no_globs,
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=("/usr/share/doc/*/changelog.Debian.gz",),
            to_documents=gzipped_text,
        ),
        Collector(
            name="perl_modules",
            description="Perl modules (.pm) with their POD",
            install_hint="apt-get install perl",
            globs=_no_globs,
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=(
                "/usr/share/perl/**/*.pm",
                "/usr/share/perl5/**/*.pm",
                "/usr/lib/*-linux-gnu/perl*/**/*.pm",
            ),
            to_documents=plain_text,
        ),
        Collector(
            name="translations",
            description="translated UI strings from gettext .mo catalogues, one document per catalogue",
            install_hint=f"{_INSTALL_DEMO_DEBIAN_PACKAGES} with /usr/share/locale kept in dpkg's path filters",
            globs=_no_globs,
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=("/usr/share/locale/*/LC_MESSAGES/*.mo",),
            to_documents=mo_catalogue,
        ),
        Collector(
            name="javascript",
            description="JavaScript sources of global node modules (.min.js excluded)",
            install_hint="apt-get install npm",
            globs=lambda: ["/usr/lib/node_modules/**/*.js"],
            accept=lambda path: not path.name.endswith(".min.js"),
            to_documents=plain_text,
        ),
        Collector(
            name="shell_scripts",
            description="sh/bash/dash scripts from /usr/bin, /usr/sbin and /etc",
            install_hint="apt-get install debianutils (any Debian system has shell scripts in /usr/bin and /etc)",
            globs=_no_globs,
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=("/usr/bin/*", "/usr/sbin/*", "/etc/**/*"),
            accept=is_shell_script,
            to_documents=plain_text,
        ),
        Collector(
            name="markdown_docs",
            description="Markdown documents shipped with node modules and Rust toolchains",
            install_hint="apt-get install npm (or install a Rust toolchain with rustup)",
            globs=lambda: ["/usr/lib/node_modules/**/*.md", _rustup_docs()],
            to_documents=plain_text,
        ),
        *(_language_collector(language) for language in _NATURAL_LANGUAGES),
        Collector(
            name="code_c",
            description="C headers from /usr/include; C++ headers and headers with C++ sections excluded",
            install_hint="apt-get install libc6-dev",
            globs=_no_globs,
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=("/usr/include/**/*.h",),
            prune=frozenset({"c++"}),
            to_documents=c_header,
        ),
        Collector(
            name="code_cpp",
            description="C++ standard library headers (/usr/include/c++, extensionless files included)",
            install_hint="apt-get install libstdc++-12-dev (or any g++)",
            globs=_no_globs,
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=("/usr/include/c++/**/*", "/usr/include/*/c++/**/*"),
            to_documents=plain_text,
        ),
        Collector(
            name="code_cmake",
            description="CMake modules (*.cmake) and CMakeLists.txt of CMake and installed libraries",
            install_hint="apt-get install cmake",
            globs=_no_globs,
            debian_packages=DEMO_DEBIAN_PACKAGES,
            debian_files=(
                "/usr/share/cmake*/**/*",
                "/usr/lib/cmake/**/*",
                "/usr/lib/*/cmake/**/*",
                "/usr/lib/*/lib/cmake/**/*",
            ),
            accept=_is_cmake,
            to_documents=plain_text,
        ),
    )
}

# Finetuning demo "demo-code": one collector per programming language, named
# code_<language>.  Where an existing collector already holds exactly one
# language, it serves again under that name.
COLLECTORS.update(
    (alias, replace(COLLECTORS[original], name=alias))
    for original, alias in (
        ("python_code", "code_python"),
        ("perl_modules", "code_perl"),
        ("javascript", "code_javascript"),
        ("shell_scripts", "code_shell"),
    )
)
