"""The language check of the natural-language collectors (``lang_fr``, ...).

:func:`~chameleon_mix.corpus.collect` keeps only the paragraphs that
:mod:`chameleon_mix.langid` finds in the collector's language, records how many it rejected in
the manifest, and refuses the whole domain when too many are rejected
(:data:`MAX_REJECTED_FRACTION`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .. import langid

__all__ = ["MAX_REJECTED_FRACTION", "PARAGRAPH_BREAK", "LanguageCheck", "LanguageCheckError"]

# A language collector refuses its domain when a larger share of the paragraphs judged is
# not in its language: the source is then mostly untranslated text or another language, not
# what the domain's name says.
MAX_REJECTED_FRACTION = 0.5
PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


class LanguageCheckError(ValueError):
    """A language collector's source failed the language check (see :func:`collect`)."""


@dataclass
class LanguageCheck:
    """Filters documents to the paragraphs in one language and counts them.

    A paragraph of fewer than :data:`langid.MIN_WORDS` words is dropped without being judged
    (``too_short``); every other one is ``judged`` and kept only when :func:`langid.check`
    accepts it, else counted as ``rejected``.
    """

    language: str
    judged: int = 0
    rejected: int = 0
    too_short: int = 0

    def __post_init__(self) -> None:
        if self.language not in langid.LANGUAGES:
            known = ", ".join(langid.LANGUAGES)
            raise ValueError(f"no language profile for {self.language!r}; known: {known}")

    @property
    def rejected_fraction(self) -> float:
        """rejected / judged (0.0 before anything was judged)."""
        return self.rejected / self.judged if self.judged else 0.0

    def filter(self, text: str) -> str:
        """The paragraphs of ``text`` accepted as :attr:`language`, joined by blank lines (so
        that splitting still cuts between them)."""
        kept = []
        for paragraph in PARAGRAPH_BREAK.split(text):
            paragraph = paragraph.strip()
            if not paragraph:
                continue
            verdict = langid.check(paragraph, self.language)
            if verdict == "too_short":
                self.too_short += 1
                continue
            self.judged += 1
            if verdict == "rejected":
                self.rejected += 1
            else:
                kept.append(paragraph)
        return "\n\n".join(kept)

    def summary(self) -> dict[str, Any]:
        """The counts as written to a manifest's ``language_check`` field."""
        return {
            "language": self.language,
            "judged": self.judged,
            "rejected": self.rejected,
            "too_short": self.too_short,
            "rejected_fraction": round(self.rejected_fraction, 4),
        }

    def enforce(self, collector_name: str, description: str, limit: float) -> None:
        """Print the counts; raise :class:`LanguageCheckError` when more than ``limit`` of
        the judged paragraphs failed."""
        print(
            f"{collector_name}: language check ({self.language}): {self.rejected} of "
            f"{self.judged} judged paragraphs rejected ({self.rejected_fraction:.1%}), "
            f"{self.too_short} too short to judge",
            flush=True,
        )
        if self.rejected_fraction > limit:
            raise LanguageCheckError(
                f"collector {collector_name!r} refused: {self.rejected} of {self.judged} "
                f"judged paragraphs ({self.rejected_fraction:.1%}) are not in language "
                f"{self.language!r} according to chameleon_mix.langid, above the limit of "
                f"{limit:.0%}; its source ({description}) is mostly untranslated or "
                f"in another language. Check those files (or the collector's globs), or pass "
                f"a larger max_rejected_fraction to collect() if this is expected"
            )
