"""roff (man page) markup -> readable prose: man(7) and mdoc(7) requests are replaced by the
text they carry, formatting requests and escapes disappear."""

from __future__ import annotations

import contextlib
import re
import unicodedata
from collections.abc import Iterator

__all__ = ["roff_to_text"]

# Comments: \" to the end of the line, unless the backslash is itself escaped.
_ROFF_COMMENT = re.compile(r'(?<!\\)((?:\\\\)*)\\["#].*')
_ROFF_ARGUMENT = re.compile(r'"((?:[^"]|"")*)"?|((?:\\.|[^\s\\])+)')
_ROFF_ESCAPE = re.compile(
    r"""\\(?:
        [fFgkmMnVY*](?:\[[^\]]*\]|\(..|.)?      # font, colour, register, string
      | s[+-]?(?:\(\d\d|\[[^\]]*\]|'[^']*'|[1-3]?\d)  # point size
      | [ABbCDhHlLNoRSvwXxZ]'[^']*'             # escapes with a quoted argument
      | \(..                                     # two-letter glyph
      | \[[^\]]*\]                               # named glyph
      | .                                        # one-character escape
    )""",
    re.VERBOSE | re.DOTALL,
)
_ROFF_GLYPHS = {
    "em": "—", "en": "–", "hy": "-", "mi": "−", "bu": "•", "aq": "'", "dq": '"',
    "lq": "“", "rq": "”", "oq": "‘", "cq": "’", "Fo": "«", "Fc": "»", "co": "©",
    "rg": "®", "tm": "™", "mu": "×", "di": "÷", "+-": "±", "<=": "≤", ">=": "≥",
    "!=": "≠", "->": "→", "<-": "←", "ti": "~", "ha": "^", "ga": "`", "aa": "´",
    "rs": "\\", "sl": "/", "ba": "|", "br": "│", "ul": "_", "de": "°", "dg": "†",
    "sc": "§", "ps": "¶", "Eu": "€", "Po": "£", "**": "∗", "pl": "+", "eq": "=",
}  # fmt: skip
_ROFF_STRINGS = {"R": "®", "Tm": "™", "lq": "“", "rq": "”", 'L"': "“", 'R"': "”", "C`": '"',
                 "C'": '"', "Aq": "'", "--": "—", "PI": "π"}  # fmt: skip
_ROFF_CHARS = {"-": "-", "e": "\\", "E": "\\", "\\": "\\", ".": ".", "'": "'", "`": "`", " ": " ",
               "~": " ", "0": " ", "t": "\t", "_": "_"}  # fmt: skip
_ROFF_SILENT = set('&|^,/%:{}!)$?"#')

# man(7) macros: headings, paragraph breaks, and those whose arguments are text
_MAN_HEADINGS = {"SH", "SS", "Sh", "Ss"}
_MAN_BREAKS = {"PP", "LP", "P", "sp", "Pp", "Lp", "Sp", "HP", "TP", "TQ", "bP", "Vb", "EX"}
_MAN_ALTERNATING = {"BR", "RB", "BI", "IB", "IR", "RI"}  # fonts alternate, no spaces
_MAN_WORDS = {"B", "I", "SM", "SB", "UR", "UE", "MT", "ME", "SY", "Dl", "D1"}
_MAN_BLOCKS = {"de", "de1", "dei", "am", "am1", "ami", "ig"}  # run until ".."
# mdoc(7): macros whose names may appear among another macro's arguments
_MDOC_CALLABLE = {
    "Ac", "Ad", "An", "Ao", "Ap", "Aq", "Ar", "At", "Bc", "Bo", "Bq", "Brc", "Bro", "Brq", "Bsx",
    "Bx", "Cd", "Cm", "Dc", "Do", "Dq", "Dv", "Ec", "Em", "En", "Eo", "Er", "Es", "Ev", "Fa", "Fc",
    "Fl", "Fn", "Fo", "Ft", "Fx", "Ic", "In", "Li", "Lk", "Ms", "Mt", "Nm", "No", "Ns", "Nx", "Oc",
    "Oo", "Op", "Ox", "Pa", "Pc", "Pf", "Po", "Pq", "Qc", "Ql", "Qo", "Qq", "Sc", "So", "Sq", "St",
    "Sx", "Sy", "Ta", "Tn", "Ux", "Va", "Vt", "Xc", "Xo", "Xr",
}  # fmt: skip
_MDOC_LAYOUT = {"Bl", "El", "Bd", "Ed", "Bk", "Ek", "Bf", "Ef", "Dd", "Dt", "Os", "Rs", "Re", "Sm",
                "Lb"}  # fmt: skip
_MDOC_ENCLOSE = {
    "Op": ("[", "]"), "Oo": ("[", ""), "Oc": ("", "]"), "Bq": ("[", "]"), "Bo": ("[", ""), "Bc": ("", "]"),
    "Pq": ("(", ")"), "Po": ("(", ""), "Pc": ("", ")"), "Aq": ("<", ">"), "Ao": ("<", ""), "Ac": ("", ">"),
    "Dq": ("“", "”"), "Do": ("“", ""), "Dc": ("", "”"), "Qq": ('"', '"'), "Qo": ('"', ""), "Qc": ("", '"'),
    "Sq": ("‘", "’"), "So": ("‘", ""), "Sc": ("", "’"), "Ql": ("‘", "’"),
}  # fmt: skip
_CLOSING_PUNCTUATION = {".", ",", ";", ":", ")", "]", "?", "!"}


# Letters of translated pages: \('e is é, \(:u is ü, \(/l is ł, \(*p is π.
_ROFF_LETTERS = {
    "/l": "ł", "/L": "Ł", "/o": "ø", "/O": "Ø", "ss": "ß", "ae": "æ", "AE": "Æ", "oe": "œ",
    "OE": "Œ", "-D": "Đ", "Sd": "ð", "TP": "Þ", "Tp": "þ", ".i": "ı", "ts": "ς", "Bq": "„",
    "bq": "‚", "at": "@", "ci": "○", "pd": "∂", "mc": "µ",
}  # fmt: skip
_ROFF_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", ":": "\u0308", "~": "\u0303",
                 ",": "\u0327", "o": "\u030a", "v": "\u030c"}  # fmt: skip
_ROFF_GREEK = dict(zip("abgdezyhiklmncoprstufxqw", "αβγδεζηθικλμνξοπρστυφχψω"))


def _roff_glyph(name: str) -> str:
    if name in _ROFF_GLYPHS:
        return _ROFF_GLYPHS[name]
    if name in _ROFF_LETTERS:
        return _ROFF_LETTERS[name]
    if len(name) == 2 and name[1].isalpha():
        mark, letter = name
        if mark == "*" and letter.lower() in _ROFF_GREEK:
            greek = _ROFF_GREEK[letter.lower()]
            return greek.upper() if letter.isupper() else greek
        composed = unicodedata.normalize("NFC", letter + _ROFF_ACCENTS.get(mark, "?"))
        if len(composed) == 1:
            return composed
    unicode = re.fullmatch(r"u([0-9A-Fa-f]{4,6})(?:_.*)?", name) or re.fullmatch(r"char(\d+)", name)
    if unicode:
        base = 16 if name.startswith("u") else 10
        with contextlib.suppress(ValueError, OverflowError):
            return chr(int(unicode.group(1), base))
    return ""


def _roff_escape(match: re.Match[str]) -> str:
    escape = match.group(0)[1:]
    kind, rest = escape[0], escape[1:]
    if kind == "*":
        return _ROFF_STRINGS.get(rest[1:3] if rest.startswith("(") else rest.strip("[]"), "")
    if kind == "(":
        return _roff_glyph(rest)
    if kind == "[":
        return _roff_glyph(rest[:-1])
    if kind == "C" and rest:
        return _roff_glyph(rest.strip("'"))
    if rest or kind in _ROFF_SILENT:
        return ""
    # groff prints an unknown escape's character; letters are control codes.
    return _ROFF_CHARS.get(kind, "" if kind.isalnum() else kind)


def _unescape(text: str) -> str:
    return _ROFF_ESCAPE.sub(_roff_escape, text)


def _roff_lines(source: str) -> Iterator[str]:
    """Source lines with comments removed and ``\\``-continued lines joined."""
    pending = ""
    for line in source.splitlines():
        line = pending + _ROFF_COMMENT.sub(r"\1", line)
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2:  # an unescaped backslash at the end continues the line
            pending = line[:-1]
            continue
        pending = ""
        yield line


def roff_to_text(source: str) -> str:
    """Readable prose from man(7)/mdoc(7) source: requests are replaced by the
    text they carry, formatting requests and escapes disappear."""
    out: list[str] = []
    in_block = False  # inside a macro definition or .ig
    table: str | None = None  # "layout" while reading a tbl layout, then "rows"
    page_name: dict[str, str] = {}
    for line in _roff_lines(source):
        if in_block:
            in_block = line.strip() != ".."
            continue
        if table == "layout":
            table = "rows" if line.rstrip().endswith(".") else "layout"
            continue
        if not line.startswith((".", "'")):
            if table == "rows":
                if line.strip() in ("_", "="):
                    continue
                line = line.replace("T{", "").replace("T}", "").replace("\t", "  ")
            out.append(_unescape(line))
            continue
        name, *rest = line[1:].split(None, 1) or [""]
        arguments = [_unescape(argument) for argument in _roff_arguments(rest[0] if rest else "")]
        if name in _MAN_BLOCKS:
            in_block = True
        elif name in ("TS", "TE"):
            table = "layout" if name == "TS" else None
        else:
            out.extend(_request_text(name, arguments, page_name))
    text = "\n".join(line.rstrip() for line in out)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def _roff_arguments(rest: str) -> list[str]:
    """Raw arguments of a request line; quotes group words, "" is a quote."""
    arguments = []
    for match in _ROFF_ARGUMENT.finditer(rest):
        quoted, bare = match.groups()
        arguments.append(bare if bare is not None else quoted.replace('""', '"'))
    return arguments


def _request_text(name: str, arguments: list[str], page_name: dict[str, str]) -> list[str]:
    """Output lines for one request line."""
    if name in _MAN_HEADINGS:
        return ["", " ".join(arguments)]
    if name in _MAN_BREAKS:
        return [""]
    if name == "IP":  # .IP tag indent
        return ["", arguments[0]] if arguments else [""]
    if name == "It":  # mdoc list item
        return ["", *_mdoc_text(arguments, page_name)]
    if name in _MAN_ALTERNATING:
        return ["".join(arguments)]
    if name in _MAN_WORDS:
        return [" ".join(arguments)] if arguments else []
    if name in _MDOC_CALLABLE or name == "Nd":
        return _mdoc_text([name, *arguments], page_name)
    # .TH, .IX, .nf, .if, .ds, mdoc layout and every other request only
    # affect the layout or define things.
    return []


def _mdoc_text(tokens: list[str], page_name: dict[str, str]) -> list[str]:
    """One mdoc line's words, with callable macros applied (".Op Fl v" -> "[-v]")."""
    words: list[str] = []
    closers: list[str] = []
    glue = dash = False  # next word attaches to the previous / gets a "-"

    def emit(word: str) -> None:
        nonlocal glue
        if words and (glue or word in _CLOSING_PUNCTUATION):
            words[-1] += word
        else:
            words.append(word)
        glue = False

    index = 0
    while index < len(tokens):
        token = tokens[index]
        index += 1
        if token in _MDOC_LAYOUT:
            return []
        if token in _MDOC_ENCLOSE:
            opening, closing = _MDOC_ENCLOSE[token]
            if opening:
                emit(opening)
                glue = True
                if closing:
                    closers.append(closing)
            elif words:
                words[-1] += closing
        elif token == "Fl":
            dash = True
        elif token == "Ns":
            glue = True
        elif token == "Nd":
            emit("—")
        elif token == "Xr" and index + 1 < len(tokens):
            emit(f"{tokens[index]}({tokens[index + 1]})")
            index += 2
        elif token == "Nm":
            following = tokens[index] if index < len(tokens) else None
            if following is None or following in _MDOC_CALLABLE:
                emit(page_name.get("Nm", ""))
            else:
                page_name.setdefault("Nm", following)
        elif token not in _MDOC_CALLABLE:
            emit(("-" if dash else "") + token)
            dash = False
    if dash:
        emit("-")
    # Line enclosures (.Op, .Dq, ...) close at the end of the line.
    for closing in reversed(closers):
        if words:
            words[-1] += closing
    return [" ".join(words)] if words else []
