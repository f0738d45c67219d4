"""A POSIX shell reader, just enough to recover the argv a launch script runs.

It splits a script into simple commands (newlines, ``;``, ``&&``, ``||``, ``|``, ``&``), honours
quoting (``'...'``, ``"..."``, backslashes, line continuations, and Windows ``^`` continuations),
drops comments, redirections and here-documents, and expands parameters the way the shell would:
``$VAR``, ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:+alt}``, ``${VAR:?message}``,
``"$@"`` and positional parameters. Unquoted expansions are split into fields, and an unquoted word that
expands to nothing disappears. Nothing is executed: command substitutions (``$(...)``, backticks) stay
as written, and so does a variable that is not set (``$MODEL_DIR``), so a value that depends on one
can be named in an error. Assignments (``VAR=x cmd``, ``export VAR=x``, ``VAR=x`` on its own line)
are tracked in order, as the shell would see them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from qwenfit.errors import UsageError

__all__ = ["Command", "expand_text", "split_script"]

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)
_RESERVED = {
    "if",
    "then",
    "else",
    "elif",
    "fi",
    "do",
    "done",
    "while",
    "until",
    "for",
    "case",
    "esac",
    "{",
    "}",
    "!",
    "time",
    "in",
}


@dataclass
class Command:
    """One simple command: its words after expansion, the ``VAR=x`` words before it, the line it
    starts on, the operator before it ("" first, "\\n", ";", "&&", "||", "|", "&"), the variables
    it used that were not set, and the shell variables and exported names as they stood when it ran."""

    argv: list[str]
    assigns: dict[str, str]
    line: int
    sep: str
    unresolved: set[str] = field(default_factory=set)
    variables: dict[str, str] = field(default_factory=dict)
    exported: set[str] = field(default_factory=set)


# --------------------------------------------------------------------------------------------------
# lexing: words made of parts (literal text, or a parameter to expand, quoted or not)

Part = tuple[str, str, bool]  # (kind: "lit" | "param" | "at", text, quoted)


class _Lexer:
    def __init__(self, text: str, windows: bool = False) -> None:
        self.s = text
        self.i = 0
        self.line = 1
        self.windows = windows  # cmd.exe: backslashes and single quotes are literal, no $ expansion

    def peek(self, k: int = 0) -> str:
        j = self.i + k
        return self.s[j] if j < len(self.s) else ""

    def take(self) -> str:
        c = self.s[self.i]
        self.i += 1
        if c == "\n":
            self.line += 1
        return c

    def param(self, quoted: bool) -> Part:
        """After a ``$``: one parameter, or the literal text of a command substitution."""
        c = self.peek()
        if c == "{":
            depth, j = 0, self.i
            while j < len(self.s):
                if self.s[j] == "{":
                    depth += 1
                elif self.s[j] == "}":
                    depth -= 1
                    if depth == 0:
                        break
                j += 1
            inner = self.s[self.i + 1 : j]
            self.i = j + 1
            return ("param", inner, quoted)
        if c == "(":
            depth, j = 0, self.i
            while j < len(self.s):
                depth += {"(": 1, ")": -1}.get(self.s[j], 0)
                if depth == 0:
                    break
                j += 1
            text = "$" + self.s[self.i : j + 1]
            self.i = j + 1
            return ("lit", text, True)
        if c in "@*":
            self.i += 1
            return ("at", c, quoted)
        if c.isdigit() or c in "#?$!-":
            self.i += 1
            return ("param", c, quoted)
        m = _NAME.match(self.s, self.i)
        if m:
            self.i = m.end()
            return ("param", m.group(0), quoted)
        return ("lit", "$", quoted)

    def tokens(self) -> list[tuple[str, object, int]]:
        """("word", parts, line) and ("op", text, line) tokens."""
        out: list[tuple[str, object, int]] = []
        parts: list[Part] = []
        started = False
        word_line = self.line

        def flush() -> None:
            nonlocal parts, started
            if started:
                out.append(("word", parts, word_line))
            parts, started = [], False

        def add(part: Part) -> None:
            if part[0] == "lit" and parts and parts[-1][0] == "lit" and parts[-1][2] == part[2]:
                parts[-1] = ("lit", parts[-1][1] + part[1], part[2])
            else:
                parts.append(part)

        def lit(text: str, quoted: bool = False) -> None:
            nonlocal started, word_line
            if not started:
                word_line = self.line
            started = True
            add(("lit", text, quoted))

        while self.i < len(self.s):
            c = self.peek()
            if self.windows and (c == "'" or c == "$" or (c == "\\" and self.peek(1) != '"')):
                lit(self.take())
                continue
            if c == "\\":
                if self.peek(1) == "\n":
                    self.i += 2
                    self.line += 1
                    continue
                self.i += 1
                lit(self.take() if self.i < len(self.s) else "\\", True)
            elif c == "'":
                self.take()
                j = self.s.find("'", self.i)
                if j < 0:
                    raise UsageError(f"line {self.line}: unterminated single quote")
                text = self.s[self.i : j]
                self.line += text.count("\n")
                self.i = j + 1
                lit(text, True)
            elif c == '"':
                line0 = self.line
                self.take()
                lit("", True)
                while True:
                    if self.i >= len(self.s):
                        raise UsageError(f"line {line0}: unterminated double quote")
                    d = self.take()
                    if d == '"':
                        break
                    if self.windows:
                        add(("lit", self.take() if d == "\\" and self.peek() == '"' else d, True))
                        continue
                    if d == "\\" and self.peek() in ('"', "\\", "$", "`", "\n"):
                        e = self.take()
                        if e != "\n":
                            add(("lit", e, True))
                    elif d == "$":
                        add(self.param(True))
                    elif d == "`":
                        j = self.s.find("`", self.i)
                        add(("lit", "`" + self.s[self.i : j + 1], True))
                        self.i = j + 1
                    else:
                        add(("lit", d, True))
            elif c == "$":
                self.take()
                if not started:
                    word_line = self.line
                started = True
                add(self.param(False))
            elif c == "`":
                j = self.s.find("`", self.i + 1)
                lit(self.s[self.i : j + 1], True)
                self.i = j + 1
            elif c in " \t\r":
                self.take()
                flush()
            elif c == "#" and not started:
                while self.i < len(self.s) and self.peek() != "\n":
                    self.i += 1
            elif c == "\n":
                flush()
                out.append(("op", "\n", self.line))
                self.take()
            elif c in ";&|()":
                flush()
                two = self.s[self.i : self.i + 2]
                if two in ("&&", "||", ";;") or two == "&>":
                    self.i += 2
                    out.append(("redir" if two == "&>" else "op", two, self.line))
                else:
                    self.take()
                    out.append(("op", c, self.line))
            elif c in "<>":
                if started and all(p[0] == "lit" and p[1].isdigit() and not p[2] for p in parts):
                    parts, started = [], False  # "2>" : the digits are the file descriptor
                flush()
                j = self.i
                while j < len(self.s) and self.s[j] in "<>&-":
                    j += 1
                op = self.s[self.i : j]
                self.i = j
                if op.startswith("<<") and not op.startswith("<<<"):
                    self._heredoc(op)
                    continue
                if op.endswith("&") and self.peek().isdigit():  # 2>&1
                    self.i += 1
                    continue
                out.append(("redir", op, self.line))
            else:
                lit(self.take())
        flush()
        return out

    def _heredoc(self, op: str) -> None:
        m = re.match(r"[ \t]*(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\1", self.s[self.i :])
        if not m:
            raise UsageError(f"line {self.line}: a here-document without a delimiter")
        self.i += m.end()
        end = self.s.find("\n", self.i)
        if end < 0:
            return
        body_start = end + 1
        pat = re.compile(
            r"^[\t]*" + re.escape(m.group(2)) + r"[ \t]*$"
            if op == "<<-"
            else r"^" + re.escape(m.group(2)) + r"[ \t]*$",
            re.M,
        )
        close = pat.search(self.s, body_start)
        stop = close.end() if close else len(self.s)
        # the rest of the command's line stays; the body is removed
        self.s = self.s[:end] + self.s[stop:]


# --------------------------------------------------------------------------------------------------
# expansion


class _Expander:
    def __init__(self, variables: dict[str, str], positional: Sequence[str]) -> None:
        self.vars = variables
        self.positional = list(positional)
        self.unresolved: set[str] = set()

    def value(self, inner: str) -> str | None:
        """The expansion of ``${inner}`` (None: not set and no default, kept as written)."""
        if inner.startswith("#") and len(inner) > 1:
            v = self.vars.get(inner[1:])
            return None if v is None else str(len(v))
        if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*\[[@*]\]", inner):
            self.unresolved.add(inner)
            return None
        m = re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*|[0-9]+|[#?$!-])(?:(:?)([-=+?])(.*))?", inner, re.S)
        if not m:
            self.unresolved.add(inner)
            return None
        name, colon, op, word = m.group(1), m.group(2), m.group(3), m.group(4)
        if name.isdigit():
            k = int(name)
            val: str | None = self.positional[k - 1] if 0 < k <= len(self.positional) else None
        elif name == "#":
            val = str(len(self.positional))
        else:
            val = self.vars.get(name)
        unset = val is None or (colon == ":" and val == "")
        if op is None:
            if val is None:
                self.unresolved.add(name)
            return val
        if op in "-=":
            if unset:
                val = self.text(word)
                if op == "=":
                    self.vars[name] = val
            return val
        if op == "+":
            return "" if unset else self.text(word)
        if unset:  # "?"
            raise UsageError(f"${{{inner}}}: {self.text(word) or name + ' is not set'}")
        return val

    def text(self, word: str) -> str:
        """A default word (``${A:-${B:-x}}``): expanded as inside double quotes."""
        lexer = _Lexer('"' + word.replace('"', '\\"') + '"')
        fields = self.fields(next(p for _, p, _ in lexer.tokens() if isinstance(p, list)))
        return " ".join(fields)

    def fields(self, parts: list[Part]) -> list[str]:
        quoted_at = any(k == "at" and q for k, _, q in parts)
        if (
            not self.positional
            and quoted_at
            and all(k == "at" or (k == "lit" and not t) for k, t, _ in parts)
        ):
            return []  # "$@" with no arguments: no field at all
        out: list[str] = []
        cur: str | None = None  # None: no field started (an unquoted empty expansion leaves none)
        for kind, text, quoted in parts:
            if kind == "lit":
                cur = (cur or "") + text
            elif kind == "at":
                args = self.positional
                if quoted and text == "@":
                    if args:
                        first = (cur or "") + args[0]
                        if len(args) == 1:
                            cur = first
                        else:
                            out.extend([first, *args[1:-1]])
                            cur = args[-1]
                    continue
                joined = " ".join(args)
                cur = (cur or "") + joined if quoted else _split_into(out, cur, joined)
            else:
                v = self.value(text)
                if v is None:
                    v = ("${" + text + "}") if not _NAME.fullmatch(text) else "$" + text
                    cur = (cur or "") + v
                elif quoted:
                    cur = (cur or "") + v
                else:
                    cur = _split_into(out, cur, v)
        if cur is not None:
            out.append(cur)
        return out


def _split_into(out: list[str], cur: str | None, value: str) -> str | None:
    """Field splitting of an unquoted expansion appended to the field ``cur``."""
    pieces = value.split()
    if not pieces:
        return cur
    if value[:1].isspace() and cur is not None:
        out.append(cur)
        cur = None
    first, *rest = pieces
    cur = (cur or "") + first
    for p in rest:
        out.append(cur)
        cur = p
    if value[-1:].isspace():
        out.append(cur)
        return None
    return cur


_PLACEHOLDER = re.compile(r"(?<![<\w])<([A-Za-z_][\w -]*)>")


def _prepare(text: str) -> tuple[str, bool]:
    """The text with cmd.exe's ``^`` continuations joined, and whether it is a cmd.exe command
    (``^`` continuations, or a ``.exe`` with backslash paths). A ``<placeholder>`` is refused."""
    text = text.replace("\r\n", "\n")
    windows = bool(re.search(r"[ \t]\^[ \t]*\n", text)) or (
        ".exe" in text.lower() and re.search(r"(?:^|\s)(?:[A-Za-z]:|\.)?\\\w", text) is not None
    )
    if windows:
        text = re.sub(r"[ \t]\^[ \t]*\n", " ", text)
    for line in text.splitlines():
        code = (
            re.sub(r"'[^']*'|\"[^\"]*\"", "", line.split(" #")[0])
            if not line.lstrip().startswith("#")
            else ""
        )
        m = _PLACEHOLDER.search(code)
        if m:
            raise UsageError(f"<{m.group(1)}> is a placeholder: replace it with the real value")
    return text, windows


def split_script(
    text: str,
    variables: Mapping[str, str] | None = None,
    *,
    positional: Sequence[str] = (),
    exported: set[str] | None = None,
) -> list[Command]:
    """The simple commands of ``text``, expanded in order (``variables``: the shell's variables)."""
    prepared, windows = _prepare(text)
    lexer = _Lexer(prepared, windows)
    tokens = lexer.tokens()
    shell_vars = dict(variables or {})
    exp = _Expander(shell_vars, positional)
    exported_names = set(exported if exported is not None else shell_vars)
    commands: list[Command] = []
    words: list[tuple[list[Part], int]] = []
    sep = ""
    skip_next = False
    for kind, value, line in [*tokens, ("op", "\n", lexer.line)]:
        if kind == "redir":
            skip_next = True
            continue
        if kind == "word":
            if skip_next:
                skip_next = False
                continue
            assert isinstance(value, list)
            words.append((value, line))
            continue
        skip_next = False
        op = str(value)
        if words:
            cmd = _command(words, exp, sep, shell_vars, exported_names)
            if cmd is not None:
                commands.append(cmd)
            words = []
            sep = op
        elif not (op == "\n" and sep in ("&&", "||", "|")):
            sep = op
    return commands


def _command(
    words: list[tuple[list[Part], int]],
    exp: _Expander,
    sep: str,
    shell_vars: dict[str, str],
    exported: set[str],
) -> Command | None:
    exp.unresolved = set()
    assigns: dict[str, str] = {}
    argv: list[str] = []
    line = words[0][1]
    for parts, _ in words:
        if not argv:
            first = parts[0]
            if first[0] == "lit" and not first[2] and re.match(r"[A-Za-z_][A-Za-z0-9_]*=", first[1]):
                name, rest = first[1].split("=", 1)
                value = " ".join(exp.fields([("lit", rest, True), *[(k, t, True) for k, t, _ in parts[1:]]]))
                assigns[name] = value
                continue
        argv.extend(exp.fields(parts))
    while argv and argv[0] in _RESERVED:
        argv.pop(0)
    if not argv:
        shell_vars.update(assigns)  # VAR=x on its own: a shell variable
        return Command([], assigns, line, sep, set(exp.unresolved), dict(shell_vars), set(exported))
    if argv[0] == "export":
        for w in argv[1:]:
            m = _ASSIGN.fullmatch(w)
            if m:
                shell_vars[m.group(1)] = m.group(2)
                exported.add(m.group(1))
            elif _NAME.fullmatch(w):
                exported.add(w)
        return None
    if argv[0] == "unset":
        for w in argv[1:]:
            shell_vars.pop(w, None)
        return None
    return Command(argv, assigns, line, sep, set(exp.unresolved), dict(shell_vars), set(exported))


def expand_text(text: str, variables: Mapping[str, str]) -> tuple[str, set[str]]:
    """``text`` with ``${VAR}``, ``${VAR:-default}`` ... expanded (docker compose and llama-swap do
    this to a whole value before it is split); ``$$`` is a literal ``$``. Returns the text and the
    names that were not set (kept as written)."""
    exp = _Expander(dict(variables), ())
    out: list[str] = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "$" and text[i + 1 : i + 2] == "$":
            out.append("$")
            i += 2
        elif c == "$" and text[i + 1 : i + 2] == "{":
            depth, j = 0, i + 1
            while j < len(text):
                depth += {"{": 1, "}": -1}.get(text[j], 0)
                if depth == 0:
                    break
                j += 1
            inner = text[i + 2 : j]
            v = exp.value(inner)
            out.append("${" + inner + "}" if v is None else v)
            i = j + 1
        elif c == "$" and (m := _NAME.match(text, i + 1)):
            v = exp.value(m.group(0))
            out.append("$" + m.group(0) if v is None else v)
            i = m.end()
        else:
            out.append(c)
            i += 1
    return "".join(out), exp.unresolved
