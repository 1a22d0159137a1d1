"""A small, dependency-free language identifier for the demo corpora.

Each language has a profile of frequent function words (articles,
prepositions, pronouns, auxiliaries).  A text's score for a language is the
share of its word tokens that are stop words of that language; running prose
scores 0.3-0.6 in its own language and far less in the others.  The
identifier is deliberately simple: it only has to tell whether a paragraph of
a translated man page or message catalogue really is in the language it is
filed under, and not, say, an untranslated English paragraph or a code
example.

Shared words ("de", "a", "in", "la") count for every language that has them;
the other words of the profile decide.  Texts of fewer than
:data:`MIN_WORDS` words are not judged at all (:func:`identify` returns None
for them, :func:`check` says ``"too_short"``).

:func:`check` accepts a text when no other language scores higher than the
expected one: short messages such as "definición duplicada de la versión"
contain only words that Spanish shares with French, and a tie says nothing
against Spanish.  :func:`identify`, which has no expected language, needs a
strict winner.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Literal

__all__ = [
    "LANGUAGES",
    "MIN_SCORE",
    "MIN_WORDS",
    "STOP_WORDS",
    "Verdict",
    "check",
    "identify",
    "scores",
    "words",
]

# Fewer word tokens than this give too few stop words to judge reliably.
MIN_WORDS = 6
# The winning language's share of stop words must reach this; code, option
# tables and lists of names score lower in every language.  Polish, which has
# no articles, scores lowest of the eight on real prose (often 0.1-0.2).
MIN_SCORE = 0.1

STOP_WORDS: dict[str, frozenset[str]] = {
    language: frozenset(text.split())
    for language, text in {
        "en": """
            a about after all also an and any are as at be been before being between both
            but by can cannot could did do does each either for from had has have he her his
            how if in into is it its may more most must no not of on only or other our out
            over same shall she should so some such than that the their them then there these
            they this those through to under up upon was we were what when where whether which
            while who whose will with within without would you your
        """,
        "fr": """
            à afin ainsi alors au aucun aucune aussi autre autres aux avant avec avoir c ce
            ceci cela celle celles celui cependant ces cet cette ceux chaque comme d dans de
            depuis des deux doit donc dont du elle elles en entre est et été être eux il ils
            j je l la le les leur leurs lors lorsque m mais même n ne ni non nous on ont ou où
            par pas peut peuvent plus pour pourquoi qu quand que quel quelle qui s sa sans se
            selon ses si son sont sous sur toujours tous tout toute toutes très un une vers
            vous y
        """,
        "de": """
            ab alle allen aller alles als also am an auch auf aus bei beim bereits bis da
            damit dann das dass daß dem den denen der des dessen die dies diese diesem diesen
            dieser dieses doch dort du durch ein eine einem einen einer eines er es etwa für
            gegen hat haben hier ich ihm ihn ihnen ihr ihre im in ist jedoch jede jeder jedes
            kann kein keine können man mehr mit muss müssen nach nicht noch nur ob oder ohne
            sein seine sich sie sind so soll sollte sowie um und uns unter vom von vor wenn
            werden wie wir wird wo wurde wurden zu zum zur zwischen über
        """,
        "it": """
            a ad agli ai al alla alle allo all anche ancora c che chi ci come con cui d da
            dagli dai dal dalla dalle dall deve devono di del della delle dello dell degli dei
            dove e ed essere gli ha hanno i il in l la le lo loro ma ne negli nei nel nella
            nelle nello nell non o ogni per perché più può possono qualsiasi quando quella
            quelle quello questa queste questi questo se si sia siano solo sono su sua sue
            sui sul sulla suo suoi tra tutte tutti tutto un una uno verrà viene vengono è
        """,
        "es": """
            a al algo alguna algunas alguno algunos ante antes aquí así cada como con cual
            cuando cuál de debe del desde donde dos durante e el ella ellas ellos en entre
            era es esa esas ese eso esos esta estas este esto estos está están fue ha hace
            han hasta hay la las le les lo los me mi muy más ni no nos o otra otras otro
            otros para pero por porque puede pueden que qué se sea según ser si sin sobre
            son su sus también tiene todo todos todas toda tu u un una uno unos unas usted y
            ya él
        """,
        "pt": """
            a ao aos apenas as até cada com como da das de deve do dos e ela elas ele eles
            em entre era essa essas esse esses esta estas este estes está estão foi for há
            isso isto já lhe mais mas mesmo muito na nas nem no nos num numa não o onde os
            ou outra outras outro outros para pela pelas pelo pelos pode podem por porque
            quando que qual quais se sem ser seu seus sobre sua suas são também tem todas
            todos todo toda têm um uma umas uns você à às é
        """,
        "nl": """
            aan al alle alleen als bij dan dat de deze die dit door een en er geen had heeft
            hebben het hier hij hoe hun ik in is je kan kunnen maar meer met moet moeten na
            naar niet nog of om ook op over te tot u uit uw van voor waar wanneer wat welke
            werd wordt worden wel wij ze zal zich zij zijn zo zonder zou zullen
        """,
        "pl": """
            a aby ale ani bez być był była było będzie co czy dla do gdy gdzie go i ich
            ile jak jako jaki jakie je jego jej jest jeśli jeżeli już każdy kiedy które
            którego której których który która lub ma mają może można na nad nie niż o od
            oraz po pod podczas przed przez przy się są ta tak także te tego tej ten to
            tu tych tylko tym również w we wszystkie więc z za ze że
        """,
    }.items()
}
LANGUAGES: tuple[str, ...] = tuple(STOP_WORDS)

Verdict = Literal["accepted", "rejected", "too_short"]

# Runs of letters; "%s", "%1$s" and roff/C escapes ("\fB") are format codes,
# not words, so a run right after "%", "$", "\" (or inside a word) is none.
_WORD = re.compile(r"(?<![%$\\\w])[^\W\d_]+")


def words(text: str) -> list[str]:
    """The lower-cased word tokens of ``text``: runs of letters (NFC),
    split at apostrophes and hyphens ("l'option" -> "l", "option")."""
    return _WORD.findall(unicodedata.normalize("NFC", text).lower())


def scores(text: str) -> dict[str, float]:
    """Share of ``text``'s word tokens that are stop words of each language
    (0.0 for every language when it has no words)."""
    return _shares(words(text))


def _shares(tokens: list[str]) -> dict[str, float]:
    if not tokens:
        return dict.fromkeys(LANGUAGES, 0.0)
    return {
        language: sum(token in stop for token in tokens) / len(tokens)
        for language, stop in STOP_WORDS.items()
    }


def identify(text: str, min_words: int = MIN_WORDS, min_score: float = MIN_SCORE) -> str | None:
    """The language of ``text`` among :data:`LANGUAGES`, or None when it has
    fewer than ``min_words`` words, no language reaches ``min_score``, or the
    best two languages tie."""
    tokens = words(text)
    if len(tokens) < min_words:
        return None
    ranked = sorted(_shares(tokens).items(), key=lambda item: item[1], reverse=True)
    (best, best_score), (_second, second_score) = ranked[0], ranked[1]
    if best_score < min_score or best_score == second_score:
        return None
    return best


def check(
    text: str, language: str, min_words: int = MIN_WORDS, min_score: float = MIN_SCORE
) -> Verdict:
    """Whether ``text`` is in ``language``: ``"too_short"`` when it has fewer
    than ``min_words`` words, ``"accepted"`` when ``language`` scores at least
    ``min_score`` and no other language scores higher, else ``"rejected"``.
    Raises ValueError for a language without a profile."""
    if language not in STOP_WORDS:
        known = ", ".join(LANGUAGES)
        raise ValueError(f"no stop-word profile for language {language!r}; known: {known}")
    tokens = words(text)
    if len(tokens) < min_words:
        return "too_short"
    shares = _shares(tokens)
    accepted = shares[language] >= min_score and shares[language] == max(shares.values())
    return "accepted" if accepted else "rejected"
