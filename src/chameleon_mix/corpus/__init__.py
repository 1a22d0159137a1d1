"""Demo text corpora gathered at run time from files already on this machine.

Nothing third-party is committed to the repository.  Each collector gathers one clearly
distinct kind of text (Python code, man pages, licences, ...), writes it as JSON lines and
writes a manifest naming every source file with its owning package, version and sha256, so a
corpus can be traced and rebuilt.  Collectors of Python packages read only the distributions
they declare (:data:`DEMO_DISTRIBUTIONS`), so what else is installed changes nothing.

A collector is only data (:mod:`.model`, the table in :mod:`.collectors`): where its files
live, an optional cheap filter, and a converter (:mod:`.converters`, :mod:`.roff`) turning
one file's bytes into documents.  Everything else (hash-ordered picking, splitting,
de-duplication, atomic writing, the manifest) is shared by :func:`collect`
(:mod:`.collection`), which finds files with :mod:`.files` and their owners with
:mod:`.provenance`.  A collector may name a natural language (``lang_fr``, ...): only the
paragraphs that pass the language check (:mod:`.language`) are kept.
"""

from .collection import collect, missing_reason, package_records
from .collectors import COLLECTORS, DEMO_DISTRIBUTIONS
from .converters import mo_translations
from .language import MAX_REJECTED_FRACTION, LanguageCheck, LanguageCheckError
from .model import Collector
from .roff import roff_to_text

__all__ = [
    "COLLECTORS",
    "DEMO_DISTRIBUTIONS",
    "MAX_REJECTED_FRACTION",
    "Collector",
    "LanguageCheck",
    "LanguageCheckError",
    "collect",
    "missing_reason",
    "mo_translations",
    "package_records",
    "roff_to_text",
]
