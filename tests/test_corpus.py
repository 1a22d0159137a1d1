"""Tests of the demo-corpus collectors, on the real files of this machine.

Collectors whose source is absent here are skipped, not failed: a fresh CI
machine may lack e.g. /usr/lib/node_modules.  The mechanics (atomic writes,
.mo parsing, missing sources) run on files the tests write themselves.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import importlib.metadata
import json
import os
import re
import stat
from pathlib import Path

import numpy as np
import pytest
from conftest import build_mo

from chameleon_mix.corpus import (
    COLLECTORS,
    DEMO_DISTRIBUTIONS,
    MAX_REJECTED_FRACTION,
    Collector,
    LanguageCheck,
    LanguageCheckError,
    collect,
    collection,
    missing_reason,
    mo_translations,
    roff_to_text,
)
from chameleon_mix.corpus.converters import plain_text

EXPECTED_NAMES = {
    "python_code", "c_headers", "docstrings", "package_readmes", "python_docs", "licenses", "man_pages",
    "changelogs", "perl_modules", "translations", "javascript", "shell_scripts", "markdown_docs",
    # finetuning demos: natural languages and programming languages
    "lang_fr", "lang_de", "lang_it", "lang_es", "lang_pt", "lang_nl", "lang_pl",
    "code_python", "code_c", "code_cpp", "code_perl", "code_javascript", "code_shell", "code_cmake",
}  # fmt: skip
MAX_DOCUMENTS = 20
MAX_CHARS = 4000  # small enough that long files get split
MIN_CHARS = 100


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def run(
    name: str | Collector, directory: Path, max_documents: int = MAX_DOCUMENTS, **kwargs
) -> tuple[Path, Path]:
    out, manifest = directory / "docs.jsonl", directory / "manifest.json"
    kwargs = {"max_chars": MAX_CHARS, "min_chars": MIN_CHARS} | kwargs
    collect(name, out, manifest, max_documents, **kwargs)
    return out, manifest


_COLLECTED: dict[str, tuple[Path, Path]] = {}


def collect_once(name: str, tmp_path_factory) -> tuple[Path, Path]:
    """Collector ``name`` with the default test settings, collected once per session."""
    if name not in _COLLECTED:
        _COLLECTED[name] = run(name, tmp_path_factory.mktemp(name))
    return _COLLECTED[name]


@pytest.fixture(scope="module", params=sorted(EXPECTED_NAMES))
def collected(request, tmp_path_factory) -> tuple[str, Path, Path]:
    """One collection per available collector, shared by the tests below."""
    name = request.param
    reason = missing_reason(name)
    if reason is not None:
        pytest.skip(reason)
    return name, *collect_once(name, tmp_path_factory)


def test_registry_has_the_documented_collectors():
    assert set(COLLECTORS) == EXPECTED_NAMES
    for name, collector in COLLECTORS.items():
        assert collector.name == name
        assert collector.description and "\n" not in collector.description
        assert collector.install_hint


def test_collect_writes_documents_and_manifest(collected):
    name, out, manifest_path = collected
    documents = read_jsonl(out)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))

    assert 0 < len(documents) <= MAX_DOCUMENTS
    assert manifest["collector"] == name
    assert manifest["documents"] == len(documents)
    assert manifest["bytes"] == sum(len(d["text"].encode("utf-8")) for d in documents)
    for document in documents:
        assert MIN_CHARS <= len(document["text"]) <= MAX_CHARS
        assert document["text"].strip()
    paths = [source["path"] for source in manifest["sources"]]
    assert paths == sorted(paths)
    assert set(paths) == {d["source"] for d in documents}
    for source in manifest["sources"]:
        assert hashlib.sha256(Path(source["path"]).read_bytes()).hexdigest() == source["sha256"]
        assert isinstance(source["package"], str) and source["package"]
        assert isinstance(source["version"], str) and source["version"]
    language = COLLECTORS[name].language
    if language is None:
        assert "language_check" not in manifest
    else:
        check = manifest["language_check"]
        assert check["language"] == language
        assert 0 <= check["rejected"] <= check["judged"]
        assert check["rejected_fraction"] <= check["max_rejected_fraction"]
        assert all(d["lang"].split("_")[0] == language for d in documents)


@pytest.mark.slow  # each collector twice more: about 1 s a collector, 25 s in all
def test_runs_are_repeatable_and_prefix_consistent(collected, tmp_path):
    name, out, manifest = collected
    again_out, again_manifest = run(name, tmp_path)
    assert again_out.read_bytes() == out.read_bytes()
    assert again_manifest.read_bytes() == manifest.read_bytes()

    (tmp_path / "few").mkdir()
    fewer_out, _ = run(name, tmp_path / "few", max_documents=7)
    fewer = fewer_out.read_text(encoding="utf-8").splitlines()
    assert fewer == out.read_text(encoding="utf-8").splitlines()[: len(fewer)]


def test_files_are_taken_in_path_hash_order(collected):
    # Picking by a hash of the path spreads the selection over the whole tree instead of the
    # alphabetically first directories, whatever the install location.
    name, out, _ = collected
    sources = list(dict.fromkeys(d["source"] for d in read_jsonl(out)))

    def key(path):
        return hashlib.blake2b(path.encode(), digest_size=16).digest()

    assert sources == sorted(sources, key=key)


def test_python_code_skips_tests_and_site_packages():
    if missing_reason("python_code"):
        pytest.skip("no stdlib")
    python_code = COLLECTORS["python_code"]
    paths = collection._candidates(
        python_code,
        collection._distribution_files(python_code),
        collection._debian_files(python_code),
    )
    assert paths
    assert not any({"site-packages", "test", "tests"} & set(p.parts) for p in paths)


ROFF_MANUALS = ("groff", "man.", "man-pages", "roff", "troff", "nroff", "tbl", "gtbl", "mdoc")


def test_man_pages_are_free_of_roff_markup(tmp_path):
    if missing_reason("man_pages"):
        pytest.skip("no man pages")
    out, _ = run("man_pages", tmp_path)
    for document in read_jsonl(out):
        if Path(document["source"]).name.startswith(ROFF_MANUALS):
            continue  # these describe the markup itself, so they quote it
        text = document["text"]
        for markup in ("\\fB", "\\fI", "\\fR", "\\fP", "\\-", "\\(", '.\\"'):
            assert markup not in text, (document["source"], markup)
        assert not any(line.startswith((".SH", ".TH", ".PP", ".TP")) for line in text.splitlines())


ROFF_PAGE = r""".\" A comment that must vanish
.TH DEMO 1 "2024" "demo 1.0"
.SH NAME
demo \- show \fBbold\fR and \fIitalic\fP text
.SH "SEE ALSO"
.BR ls (1),
.IR "a file" .
.PP
Dashes\(emand \e backslashes, \*(lqquoted\*(rq.
.de XX
this macro body must not show
..
.TP
\fB\-v\fR, \fB\-\-verbose\fR
be chatty
"""


def test_roff_to_text_turns_markup_into_prose():
    text = roff_to_text(ROFF_PAGE)
    assert text.splitlines()[:4] == ["NAME", "demo - show bold and italic text", "", "SEE ALSO"]
    assert "ls(1)," in text
    assert "a file." in text
    assert "Dashes—and \\ backslashes, “quoted”." in text
    assert "-v, --verbose\nbe chatty" in text
    assert "comment" not in text and "macro body" not in text and "DEMO" not in text


def test_man_page_so_stubs_are_skipped(tmp_path):
    (tmp_path / "real.1.gz").write_bytes(gzip.compress(ROFF_PAGE.encode()))
    (tmp_path / "alias.1.gz").write_bytes(gzip.compress(b".so man1/real.1\n"))
    local = dataclasses.replace(
        COLLECTORS["man_pages"], globs=lambda: [f"{tmp_path}/*.gz"], debian_packages={}
    )
    out, _ = run(local, tmp_path, min_chars=10)
    assert [d["source"] for d in read_jsonl(out)] == [str(tmp_path / "real.1.gz")]


MO_PAIRS = [
    (b"", b"Content-Type: text/plain; charset=ISO-8859-1\nPlural-Forms: nplurals=2;\n"),
    (b"Coffee", "Café".encode("latin-1")),
    (b"Hello", b"Bonjour"),
    (b"file\0files", b"fichier\0fichiers"),
    (b"menu\x04Open", b"Ouvrir"),
    (b"Untranslated", b""),
]
MO_STRINGS = ["Café", "Bonjour", "fichier", "fichiers", "Ouvrir"]


@pytest.mark.parametrize("order", ["<", ">"])
def test_mo_translations_reads_both_byte_orders(order):
    assert mo_translations(build_mo(MO_PAIRS, order)) == MO_STRINGS


def test_mo_translations_rejects_other_files():
    with pytest.raises(ValueError):
        mo_translations(b"\x7fELF" + bytes(40))


def test_translations_collector_returns_exactly_the_msgstrs(tmp_path):
    catalogue = tmp_path / "locale" / "xx" / "LC_MESSAGES" / "demo.mo"
    catalogue.parent.mkdir(parents=True)
    catalogue.write_bytes(build_mo(MO_PAIRS))
    local = dataclasses.replace(
        COLLECTORS["translations"],
        globs=lambda: [f"{tmp_path}/locale/*/LC_MESSAGES/*.mo"],
        debian_packages={},
    )
    out, manifest = run(local, tmp_path, min_chars=1)
    assert read_jsonl(out) == [
        {"text": "\n".join(MO_STRINGS), "lang": "xx", "source": str(catalogue)}
    ]
    source = json.loads(manifest.read_text())["sources"][0]
    assert source["sha256"] == hashlib.sha256(catalogue.read_bytes()).hexdigest()
    assert source["package"] == "unknown"


def test_shell_scripts_are_recognised_by_their_shebang(tmp_path):
    scripts = {"a": b"#!/bin/sh\n", "b": b"#! /usr/bin/env bash\n", "c": b"#!/bin/dash -e\n"}
    others = {"d": b"#!/usr/bin/python3\n", "e": b"#!/bin/shell-ish\n", "f": b"echo no shebang\n"}
    (tmp_path / "bin").mkdir()
    for name, first_line in {**scripts, **others}.items():
        (tmp_path / "bin" / name).write_bytes(first_line + b"echo hello world\n" * 20)
    local = dataclasses.replace(
        COLLECTORS["shell_scripts"], globs=lambda: [f"{tmp_path}/bin/*"], debian_packages={}
    )
    out, _ = run(local, tmp_path, min_chars=10)
    assert sorted(Path(d["source"]).name for d in read_jsonl(out)) == sorted(scripts)


def test_long_files_are_split_into_numbered_parts(tmp_path):
    paragraphs = [f"paragraph {n}: " + "word " * 60 for n in range(40)]  # ~12 kB
    (tmp_path / "long.txt").write_text("\n\n".join(paragraphs))
    local = Collector("long", "one long file", "nothing", lambda: [f"{tmp_path}/*.txt"], plain_text)
    out, _ = run(local, tmp_path, max_chars=1000, min_chars=10)
    documents = read_jsonl(out)
    assert [d["part"] for d in documents] == list(range(len(documents)))
    assert len(documents) == collection.MAX_PARTS_PER_TEXT  # the rest of a huge file is cut
    for document in documents:
        assert len(document["text"]) <= 1000
        assert document["text"].startswith("paragraph ")  # cut at paragraph boundaries


def test_unknown_collector_lists_known_names(tmp_path):
    for call in (lambda: missing_reason("nope"), lambda: run("nope", tmp_path)):
        with pytest.raises((KeyError, ValueError), match="python_code"):
            call()


def test_missing_source_names_the_install_hint(tmp_path):
    absent = dataclasses.replace(
        COLLECTORS["man_pages"],
        globs=lambda: [f"{tmp_path}/absent/man[1-8]/*.gz"],
        debian_packages={},
    )
    assert absent.install_hint in missing_reason(absent)
    with pytest.raises(FileNotFoundError, match="apt-get install man-db"):
        run(absent, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_no_documents_is_an_error_naming_the_collector(tmp_path):
    (tmp_path / "tiny.txt").write_text("too short")
    tiny = Collector("tiny_texts", "tiny", "nothing", lambda: [f"{tmp_path}/*.txt"], plain_text)
    with pytest.raises(ValueError, match="tiny_texts"):
        run(tiny, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny.txt"]


def test_failure_midway_leaves_no_output(tmp_path):
    for n in range(5):
        (tmp_path / f"input{n}.txt").write_text(f"document {n} " * 50)
    converted: list[Path] = []

    def fail_on_third_file(path: Path, data: bytes) -> list[dict]:
        converted.append(path)
        if len(converted) == 3:
            raise RuntimeError("injected failure")
        return [{"text": data.decode()}]

    flaky = Collector(
        "flaky", "fails midway", "nothing", lambda: [f"{tmp_path}/*.txt"], fail_on_third_file
    )
    with pytest.raises(RuntimeError, match="injected"):
        run(flaky, tmp_path)
    assert len(converted) == 3  # two documents had been written before the failure
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"input{n}.txt" for n in range(5)]


def test_outputs_follow_the_umask(tmp_path):
    # Teammates on a shared file system must be able to read the corpus (mkstemp gives 0600).
    (tmp_path / "input.txt").write_text("some text " * 50)
    local = Collector("local", "one file", "nothing", lambda: [f"{tmp_path}/*.txt"], plain_text)
    (tmp_path / "new").mkdir()
    previous = os.umask(0o022)
    try:
        out, manifest = run(local, tmp_path / "new")
    finally:
        os.umask(previous)
    assert [stat.S_IMODE(p.stat().st_mode) for p in (out, manifest)] == [0o644, 0o644]


# --------------------------------------------------------------------------
# Finetuning demos: language-checked collectors and one collector per code language
# --------------------------------------------------------------------------

FRENCH = [
    "Le programme lit le fichier de configuration et affiche les options disponibles pour chaque utilisateur.",
    "Si vous ne savez pas quelle version installer, choisissez celle qui est recommandée par votre distribution.",
]
GERMAN = "Das Programm liest die Konfigurationsdatei und zeigt die verfügbaren Optionen für jeden Benutzer an."
ENGLISH = [
    "The program reads the configuration file and shows the options that are available to each user.",
    "If you do not know which version to install, choose the one that is recommended by your distribution.",
    "This option is dangerous and may leave your system in an inconsistent state if it is used.",
    "The default behaviour is defined by the variable in the login definitions file of the system.",
    "Display the manual page for the macro package from the section given on the command line.",
]


def test_registry_has_the_finetuning_demos():
    languages = {"fr", "de", "it", "es", "pt", "nl", "pl"}
    for language in languages:
        assert COLLECTORS[f"lang_{language}"].language == language
    assert {c.language for c in COLLECTORS.values()} == languages | {None}
    code = {name for name in COLLECTORS if name.startswith("code_")}
    assert len(code) >= 7
    # Collectors that already held one language serve again under a code_ name.
    for original, alias in [("python_code", "code_python"), ("perl_modules", "code_perl")]:
        assert dataclasses.replace(COLLECTORS[alias], name=original) == COLLECTORS[original]


def test_language_check_keeps_only_paragraphs_in_its_language():
    check = LanguageCheck("fr")
    text = f"{FRENCH[0]}\n\n{ENGLISH[0]}\n  \nOuvrir le fichier\n\n\n{FRENCH[1]}\n"
    assert check.filter(text) == f"{FRENCH[0]}\n\n{FRENCH[1]}"
    assert (check.judged, check.rejected, check.too_short) == (3, 1, 1)
    assert check.summary() == {
        "language": "fr", "judged": 3, "rejected": 1, "too_short": 1, "rejected_fraction": 0.3333,
    }  # fmt: skip
    with pytest.raises(ValueError, match="known"):
        LanguageCheck("xx")


def write_localized_sources(root: Path, language: str, paragraphs: list[str]) -> None:
    """A catalogue whose messages are ``paragraphs`` (plus a short one) and a man page of them
    in the reverse order (identical documents would be collected once)."""
    catalogue = root / "locale" / language / "LC_MESSAGES" / "demo.mo"
    catalogue.parent.mkdir(parents=True)
    pairs = [(b"", b"Content-Type: text/plain; charset=UTF-8\n"), (b"Open", b"Ouvrir")]
    pairs += [(f"msgid {n}".encode(), text.encode()) for n, text in enumerate(paragraphs)]
    catalogue.write_bytes(build_mo(pairs))
    page = root / "man" / language / "man1" / "demo.1.gz"
    page.parent.mkdir(parents=True)
    roff = ".TH DEMO 1\n" + "".join(f".PP\n{text}\n" for text in reversed(paragraphs))
    page.write_bytes(gzip.compress(roff.encode()))


def localized(name: str, root: Path) -> Collector:
    """Collector ``name`` reading the files of write_localized_sources below ``root``."""
    return dataclasses.replace(
        COLLECTORS[name],
        globs=lambda: [f"{root}/locale/*/LC_MESSAGES/*.mo", f"{root}/man/*/man1/*.gz"],
        debian_packages={},
    )


def test_language_collector_drops_paragraphs_in_other_languages(tmp_path):
    write_localized_sources(tmp_path / "src", "fr", [FRENCH[0], ENGLISH[0], FRENCH[1]])
    out, manifest = run(localized("lang_fr", tmp_path / "src"), tmp_path, min_chars=10)
    documents = read_jsonl(out)
    assert sorted((Path(d["source"]).name, d["text"]) for d in documents) == [
        ("demo.1.gz", f"{FRENCH[1]}\n\n{FRENCH[0]}"),
        ("demo.mo", f"{FRENCH[0]}\n\n{FRENCH[1]}"),
    ]
    assert {d["lang"] for d in documents} == {"fr"}
    check = json.loads(manifest.read_text())["language_check"]
    assert check == {
        "language": "fr", "judged": 6, "rejected": 2, "too_short": 1,
        "rejected_fraction": 0.3333, "max_rejected_fraction": MAX_REJECTED_FRACTION,
    }  # fmt: skip


def test_language_collector_refuses_a_source_in_another_language(tmp_path, capsys):
    write_localized_sources(tmp_path / "src", "de", [GERMAN, *ENGLISH])
    german = localized("lang_de", tmp_path / "src")
    with pytest.raises(LanguageCheckError, match=r"'lang_de' refused: 10 of 12 .*83\.3%.*'de'"):
        run(german, tmp_path, min_chars=10)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src"]  # no output left behind
    assert "language check (de): 10 of 12 judged paragraphs rejected" in capsys.readouterr().out

    out, manifest = run(german, tmp_path, min_chars=10, max_rejected_fraction=0.9)
    assert {d["text"] for d in read_jsonl(out)} == {GERMAN}
    check = json.loads(manifest.read_text())["language_check"]
    assert (check["rejected_fraction"], check["max_rejected_fraction"]) == (0.8333, 0.9)
    with pytest.raises(ValueError, match="max_rejected_fraction"):
        run(german, tmp_path, max_rejected_fraction=1.5)


def test_code_c_leaves_out_cplusplus_headers(tmp_path):
    body = (
        "/* A plain C header. */\nstruct point { int x, y; };\nint area(const struct point *p);\n"
    )
    cplusplus = "namespace geometry {\nclass Point {\n public:\n  int x, y;\n};\n}\n"
    files = {"c.h": body * 3, "cpp.h": body + cplusplus, "c++/vector.h": body * 4}
    for name, text in files.items():
        (tmp_path / "include" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "include" / name).write_text(text)
    local = dataclasses.replace(
        COLLECTORS["code_c"], globs=lambda: [f"{tmp_path}/include/**/*.h"], debian_packages={}
    )
    out, _ = run(local, tmp_path, min_chars=10)
    assert [Path(d["source"]).name for d in read_jsonl(out)] == ["c.h"]


def test_code_cmake_takes_modules_and_cmakelists(tmp_path):
    for name in ("CMakeLists.txt", "FindDemo.cmake", "notes.txt", "demo.cmake.in"):
        (tmp_path / "share" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "share" / name).write_text(f"# {name}\nset(DEMO_FOUND TRUE)\n" * 5)
    local = dataclasses.replace(
        COLLECTORS["code_cmake"], globs=lambda: [f"{tmp_path}/share/**/*"], debian_packages={}
    )
    out, _ = run(local, tmp_path, min_chars=10)
    names = sorted(Path(d["source"]).name for d in read_jsonl(out))
    assert names == ["CMakeLists.txt", "FindDemo.cmake"]


def test_roff_accented_letters_of_translated_pages():
    text = roff_to_text(r"\('ecole, \(:uber, zosta\(/la, \(,ca, \(*p, \[u0105], \(oq")
    assert text == "école, über, została, ça, π, ą, ‘"


# --------------------------------------------------------------------------
# Python packages: only the declared distributions are read
# --------------------------------------------------------------------------

SITE_COLLECTORS = ["package_readmes", "docstrings", "licenses", "c_headers"]


def fake_distribution(site: Path, name: str) -> None:
    """An installed distribution ``name`` 1.0 in ``site``: a module with docstrings, a
    README in its METADATA and a licence, all listed in its RECORD."""
    info = site / f"{name}-1.0.dist-info"
    (site / name).mkdir(parents=True)
    info.mkdir()
    prose = f"The {name} package explains everything at great length. " * 10
    files = {
        f"{name}/__init__.py": f'"""{prose}"""\n\n\ndef helper():\n    """{prose}"""\n',
        f"{info.name}/METADATA": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n\n{prose}\n",
        f"{info.name}/LICENSE": f"{name} licence: {prose}\n",
    }
    for relative, text in files.items():
        (site / relative).write_text(text)
    record = "".join(f"{relative},,\n" for relative in [*files, f"{info.name}/RECORD"])
    (info / "RECORD").write_text(record)


@pytest.mark.parametrize("name", SITE_COLLECTORS)
def test_an_undeclared_distribution_changes_nothing(name, tmp_path, tmp_path_factory, monkeypatch):
    if missing_reason(name):
        pytest.skip(missing_reason(name))
    before = collect_once(name, tmp_path_factory)
    fake_distribution(tmp_path / "site", "undeclared_extra")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    assert importlib.metadata.version("undeclared_extra") == "1.0"  # installed, importable
    (tmp_path / "after").mkdir()
    after = run(name, tmp_path / "after")
    assert [p.read_bytes() for p in after] == [p.read_bytes() for p in before]


def test_a_declared_distribution_is_read_with_its_version(tmp_path, monkeypatch):
    # The control of the test above: declared, the same fake distribution is collected.
    fake_distribution(tmp_path / "site", "declared_extra")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    readmes = dataclasses.replace(
        COLLECTORS["package_readmes"], distributions=("declared_extra", "numpy")
    )
    out, manifest_path = run(readmes, tmp_path, min_chars=10)
    manifest = json.loads(manifest_path.read_text())
    fake_source = str(tmp_path / "site" / "declared_extra-1.0.dist-info" / "METADATA")
    assert fake_source in {d["source"] for d in read_jsonl(out)}
    assert {"package": "declared_extra", "version": "1.0"}.items() <= next(
        s for s in manifest["sources"] if s["path"] == fake_source
    ).items()
    assert manifest["distributions"] == {
        "declared_extra": "1.0",
        "numpy": importlib.metadata.version("numpy"),
    }
    assert manifest["missing_distributions"] == []


def test_a_missing_declared_distribution_is_a_warning(tmp_path, capsys):
    readmes = dataclasses.replace(
        COLLECTORS["package_readmes"], distributions=("numpy", "no-such-distribution")
    )
    out, manifest_path = run(readmes, tmp_path)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["missing_distributions"] == ["no-such-distribution"]
    assert list(manifest["distributions"]) == ["numpy"]
    assert {s["package"] for s in manifest["sources"]} == {"numpy"}
    assert (
        "warning: collector 'package_readmes': declared Python distributions not installed, "
        "their files are left out: no-such-distribution (install them with: pip install -c "
        "constraints.txt -e . (from the repository root))"
    ) in capsys.readouterr().err

    nothing = dataclasses.replace(readmes, distributions=("no-such-distribution",))
    with pytest.raises(FileNotFoundError, match="of the Python distributions no-such-distribution"):
        run(nothing, tmp_path)


def test_demo_distributions_are_pinned_in_the_constraints_file():
    constraints = Path(__file__).parents[1] / "constraints.txt"
    pinned = {
        re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()
        for line in constraints.read_text().splitlines()
        if "==" in line and not line.startswith("#")
    }
    assert set(DEMO_DISTRIBUTIONS) <= pinned, set(DEMO_DISTRIBUTIONS) - pinned
    assert "chameleon-mix" not in DEMO_DISTRIBUTIONS  # the repository's own README is no package's


def test_weights_record_a_digest_of_the_corpus_manifests(tmp_path):
    from chameleon_mix.weights import weights_stage

    rng = np.random.default_rng(0)
    embeddings, manifests = {}, {}
    for domain in ("python_docs", "package_readmes"):
        if missing_reason(domain):
            pytest.skip(missing_reason(domain))
        (tmp_path / domain).mkdir()
        _out, manifests[domain] = run(domain, tmp_path / domain, max_documents=3)
        embeddings[domain] = tmp_path / f"{domain}.npy"
        embedding, noise = rng.normal(size=8), rng.normal(size=(4, 8))
        np.save(embeddings[domain], embedding)
        np.save(tmp_path / f"{domain}.samples.npy", embedding + noise - noise.mean(axis=0))

    def corpus_of_weights(name: str) -> dict:
        outputs = {
            key: tmp_path / name / f"{key}.{suffix}"
            for key, suffix in [("weights", "json"), ("affinity", "csv"), ("affinity_plot", "png"),
                                ("map_plot", "png"), ("weights_plot", "png")]
        }  # fmt: skip
        settings = {"stage": "pretrain", "lam": 10.0, "tau": 5.0}
        weights_stage(embeddings, settings, outputs, {"dataset": "t"}, manifests)
        return json.loads(outputs["weights"].read_text())["corpus"]

    first, again = corpus_of_weights("first"), corpus_of_weights("again")
    assert first == again
    assert first["manifests"]["python_docs"] == {
        "path": str(manifests["python_docs"]),
        "sha256": hashlib.sha256(manifests["python_docs"].read_bytes()).hexdigest(),
    }
    run("package_readmes", tmp_path / "package_readmes", max_documents=4)  # one domain changes
    changed = corpus_of_weights("changed")
    assert changed["digest"] != first["digest"]
    assert [d for d in first["manifests"] if changed["manifests"][d] != first["manifests"][d]] == [
        "package_readmes"
    ]


# --------------------------------------------------------------------------
# Debian packages: only the declared packages' files are read
# --------------------------------------------------------------------------

DEBIAN_COLLECTORS = ["c_headers", "licenses", "man_pages", "changelogs", "perl_modules",
                     "translations"]  # fmt: skip
CHANGELOG = "{name} (1.0-1) bookworm; urgency=medium\n\n  * Changes described at length.\n" * 12


def install_fake_package(root: Path, name: str, version: str) -> Path:
    """A Debian package ``name`` installed in a dpkg database under ``root`` (info/*.list and
    status), with a changelog and a copyright file in ``root/usr/share/doc/<name>/``."""
    doc = root / "usr" / "share" / "doc" / name
    doc.mkdir(parents=True)
    (doc / "changelog.Debian.gz").write_bytes(gzip.compress(CHANGELOG.format(name=name).encode()))
    (doc / "copyright").write_text(f"{name}: the licence, explained. " * 20)
    (root / "info").mkdir(exist_ok=True)
    listed = [str(doc), *(str(path) for path in sorted(doc.iterdir()))]
    (root / "info" / f"{name}.list").write_text("\n".join(listed) + "\n")
    with open(root / "status", "a") as status:
        status.write(f"Package: {name}\nStatus: install ok installed\nVersion: {version}\n\n")
    clear_dpkg_caches()
    return doc


def clear_dpkg_caches() -> None:
    """Forget the dpkg database read so far (a job reads it once, when it starts)."""
    from chameleon_mix.corpus import debian

    debian.dpkg_versions.cache_clear()
    debian.dpkg_owners.cache_clear()
    debian._info_lists.cache_clear()


@pytest.fixture
def fake_dpkg(tmp_path, monkeypatch) -> Path:
    """A dpkg database of this test's own under tmp_path/dpkg."""
    from chameleon_mix.corpus import debian

    root = tmp_path / "dpkg"
    root.mkdir()
    monkeypatch.setattr(debian, "DPKG_INFO_DIR", str(root / "info"))
    monkeypatch.setattr(debian, "DPKG_STATUS", str(root / "status"))
    clear_dpkg_caches()
    yield root
    clear_dpkg_caches()


def fake_changelogs(root: Path, **declared: str) -> Collector:
    return dataclasses.replace(
        COLLECTORS["changelogs"],
        debian_packages={name.replace("_", "-"): v for name, v in declared.items()},
        debian_files=(f"{root}/usr/share/doc/*/changelog.Debian.gz",),
    )


def test_an_undeclared_debian_package_changes_nothing(fake_dpkg, tmp_path):
    install_fake_package(fake_dpkg, "declared-pkg", "1.0")
    collector = fake_changelogs(fake_dpkg, declared_pkg="1.0")
    (tmp_path / "before").mkdir()
    before = run(collector, tmp_path / "before", min_chars=10)
    # Its changelog lands in the very directory the collector reads from.
    install_fake_package(fake_dpkg, "undeclared-extra", "2.0")
    (tmp_path / "after").mkdir()
    after = run(collector, tmp_path / "after", min_chars=10)
    assert [p.read_bytes() for p in after] == [p.read_bytes() for p in before]
    manifest = json.loads(after[1].read_text())
    assert manifest["debian_packages"] == {"declared-pkg": "1.0"}
    assert {s["package"] for s in manifest["sources"]} == {"declared-pkg"}

    # The control: declared, the extra package is read, with its version.
    both = fake_changelogs(fake_dpkg, declared_pkg="1.0", undeclared_extra="2.0")
    (tmp_path / "both").mkdir()
    _out, manifest_path = run(both, tmp_path / "both", min_chars=10)
    sources = json.loads(manifest_path.read_text())["sources"]
    assert {(s["package"], s["version"]) for s in sources} == {
        ("declared-pkg", "1.0"),
        ("undeclared-extra", "2.0"),
    }


def test_a_collect_job_takes_its_declared_packages_records_as_inputs(fake_dpkg):
    """Installing, upgrading or removing a declared package rewrites its dpkg list, an input
    of the collect job, which then reruns; an undeclared package's list is no input."""
    from chameleon_mix.corpus import package_records

    install_fake_package(fake_dpkg, "declared-pkg", "1.0")
    install_fake_package(fake_dpkg, "undeclared-extra", "2.0")
    collector = fake_changelogs(fake_dpkg, declared_pkg="1.0", absent_pkg="3.0")
    assert package_records(collector) == [str(fake_dpkg / "info" / "declared-pkg.list")]
    docstrings = package_records("docstrings")  # Python distributions: their RECORD files
    assert docstrings and all(path.endswith(".dist-info/RECORD") for path in docstrings)
    assert len(docstrings) <= len(COLLECTORS["docstrings"].distributions)


def test_a_declared_debian_package_missing_or_at_another_version_is_reported(
    fake_dpkg, tmp_path, capsys
):
    install_fake_package(fake_dpkg, "declared-pkg", "1.1")
    collector = fake_changelogs(fake_dpkg, declared_pkg="1.0", absent_pkg="3.0")
    _out, manifest_path = run(collector, tmp_path, min_chars=10)
    manifest = json.loads(manifest_path.read_text())
    assert manifest["missing_debian_packages"] == ["absent-pkg"]
    assert manifest["debian_packages_at_other_versions"] == {
        "declared-pkg": {"declared": "1.0", "installed": "1.1"}
    }
    err = capsys.readouterr().err
    assert (
        "collector 'changelogs': declared Debian packages not installed, their files are "
        "left out: absent-pkg" in err
    )
    assert (
        "declared Debian packages at other versions, their files are read as installed: "
        "declared-pkg 1.1 (declared 1.0)" in err
    )

    nothing = fake_changelogs(fake_dpkg, absent_pkg="3.0")
    with pytest.raises(FileNotFoundError, match="of the 1 declared Debian packages"):
        run(nothing, tmp_path)


@pytest.mark.slow
def test_demo_debian_collectors_ignore_a_newly_installed_package(tmp_path, extra_debian_package):
    """On this machine: a made-up package installed into the very directories the demo's
    Debian collectors read (as `apt-get install slurmd` adds changelogs, copyrights, man pages)
    is never a candidate, and the demo-sized corpus stays byte-identical."""
    available = [name for name in DEBIAN_COLLECTORS if missing_reason(name) is None]
    if not available:
        pytest.skip("none of the demo's Debian packages is installed")
    before = {}
    for name in available:
        (tmp_path / "before" / name).mkdir(parents=True)
        before[name] = run(name, tmp_path / "before" / name, max_documents=1500, max_chars=4000)
    files = extra_debian_package()
    clear_dpkg_caches()
    for name in available:
        collector = COLLECTORS[name]
        candidates = collection._candidates(
            collector,
            collection._distribution_files(collector),
            collection._debian_files(collector),
        )
        assert not set(files) & {str(p) for p in candidates}, name
        (tmp_path / "after" / name).mkdir(parents=True)
        after = run(name, tmp_path / "after" / name, max_documents=1500, max_chars=4000)
        assert [p.read_bytes() for p in after] == [p.read_bytes() for p in before[name]], name
    clear_dpkg_caches()
