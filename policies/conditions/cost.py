"""The static cost bound of conditions: what `compile_condition` refuses so that no
condition can stall a worker, and the bound on what conditions read.

The CEL library evaluates in Rust while holding the GIL and cannot be interrupted, so the
cost of a condition is bounded before it is ever run, from its text:

- the text is at most `MAX_CONDITION_LENGTH` characters, a string or bytes literal at
  most `MAX_STRING_LITERAL`, a list or map literal at most `MAX_LITERAL_ELEMENTS` elements;
- a macro (`MACROS`: exists, all, map…) ranges over a list or map literal, and no macro
  sits inside another one's range or body. Nested macros multiply (ten elements and
  seven levels: ten million iterations, seconds of a worker); alone, a macro costs at
  most its range's elements times its body, whose variable is used at most
  `MAX_VARIABLE_USES` times (`[list].map(a, a + a + …)` copies the list on every use:
  300 uses of a 100-element list took 110 ms). Without macros no name can hold a large
  value, and every value is built by an operator written in the text, so the work is
  bounded by the text's length;
- the `matches` pattern is a string literal, never computed (a pattern taken from the
  request would let any client choose the cost), `matches` is not used inside a macro,
  and the patterns of a condition weigh at most `REGEX_BUDGET` (see `regex_weight`): the
  library compiles the pattern on every call, and Unicode classes make that costly
  (`\\w` about 0.2 ms, `\\w{100}` 20 ms).

Within these bounds the costliest condition we could build evaluates in a few
milliseconds; a property test holds every accepted condition under 50 ms. Request facts
are bounded too: conditions see at most `MAX_USER_AGENT_LENGTH` characters of the user
agent, the length the audit trail keeps.
"""

from __future__ import annotations

import re

MAX_CONDITION_LENGTH = 2000
MAX_STRING_LITERAL = 512
MAX_LITERAL_ELEMENTS = 100
MAX_USER_AGENT_LENGTH = 512
MAX_VARIABLE_USES = 10
MACROS = ("all", "exists", "exists_one", "existsOne", "map", "filter")
# In units of about 2 µs of the regex engine's compile time, paid on every evaluation.
REGEX_BUDGET = 2500


class CostError(ValueError):
    """The condition exceeds a bound; the message is for the editor."""


_MACRO_CALL = re.compile(rf"\.\s*({'|'.join(MACROS)})\s*\(\s*([A-Za-z_]\w*)")
_MATCHES_CALL = re.compile(r"(?<![\w])matches\s*\(")
_BEFORE_LITERAL = re.compile(r"[\w.)\]}\x00]")  # a bracket after these indexes or calls


def check_structure(code: str) -> None:
    """Refuse oversized list and map literals and unbounded macros in `code`, the
    condition's text with its string literals replaced by placeholders and its comments
    removed (so every bracket is syntax). Raises `CostError`."""
    closing: dict[int, int] = {}
    opening: dict[int, int] = {}
    commas: dict[int, int] = {}
    stack: list[int] = []
    for position, char in enumerate(code):
        if char in "([{":
            stack.append(position)
            commas[position] = 0
        elif char in ")]}" and stack:
            start = stack.pop()
            closing[start], opening[position] = position, start
            if char != ")" and code[start + 1 : position].strip():
                elements = commas[start] + 1
                if elements > MAX_LITERAL_ELEMENTS:
                    raise CostError(
                        f"A list or map in a condition has at most {MAX_LITERAL_ELEMENTS} "
                        f"elements, not {elements}."
                    )
        elif char == "," and stack:
            commas[stack[-1]] += 1
    spans: list[tuple[str, int, int, int]] = []  # (macro, its ".", range start, call end)
    for call in _MACRO_CALL.finditer(code):
        name, variable, dot = call.group(1), call.group(2), call.start()
        end = closing.get(code.index("(", dot), len(code))
        spans.append((name, dot, _literal_range(code, dot, opening, name), end))
        uses = len(re.findall(rf"(?<![\w.]){variable}(?!\w)", code[call.end() : end]))
        if uses > MAX_VARIABLE_USES:
            raise CostError(
                f'"{name}" uses its variable "{variable}" {uses} times: at most '
                f"{MAX_VARIABLE_USES} (each use of an element may copy it)."
            )
    for outer, outer_dot, start, end in spans:
        for inner, dot, _, _ in spans:
            if start < dot < end and dot != outer_dot:
                raise CostError(
                    f'"{inner}" is used inside "{outer}": a condition cannot nest exists, all, '
                    "exists_one, map or filter (each level multiplies the cost)."
                )
        if _MATCHES_CALL.search(code, outer_dot, end):
            # Its pattern is a literal, the same for every element, compiled each time.
            raise CostError(
                f'matches cannot be used inside "{outer}": match once outside it, with one '
                'pattern such as request.user_agent.matches("^(curl|wget)/").'
            )


def _literal_range(code: str, dot: int, opening: dict[int, int], name: str) -> int:
    """Where the list or map literal a macro ranges over starts; `CostError` when the
    range is anything else."""
    end = len(code[:dot].rstrip()) - 1
    start = opening.get(end) if end >= 0 and code[end] in "]}" else None
    before = code[:start].rstrip()[-1:] if start is not None else ""
    if start is None or _BEFORE_LITERAL.match(before):
        raise CostError(
            f'"{name}" must range over a list or map written in the condition, like '
            f'["a", "b"].{name}(x, ...), not over the result of an expression.'
        )
    return start


def check_string_literal(value: str | bytes) -> None:
    if len(value) > MAX_STRING_LITERAL:
        raise CostError(
            f"A text in a condition is at most {MAX_STRING_LITERAL} characters, not {len(value)}."
        )


# Per atom, in budget units: the Unicode classes the engine expands into large automata,
# then the other classes and `.`, then everything else (1).
_HEAVY_ESCAPES = frozenset("wWbBpP")
_CLASS_ESCAPES = frozenset("dDsS")
_HEAVY, _CLASS = 100, 25
_REPETITION = re.compile(r"\{(\d+)(,(\d*))?\}")
_BRACED_ESCAPE = re.compile(r"[pPxuU]\{[^}]*\}|[pP].")


def regex_weight(pattern: str) -> int:
    """An upper estimate of what compiling `pattern` costs the regex engine, in budget
    units: atoms weigh by class, a counted repetition multiplies what it repeats by its
    largest count (`*`, `+`, `?` loop, they do not copy). Measured on the library:
    `\\w` 0.2 ms, `\\d` 17 µs, `.` 4 µs, a plain character 1 µs."""
    frames: list[list[int]] = [[0, 0]]  # per open group: [total, weight of the last atom]
    i, n = 0, len(pattern)
    while i < n:
        char, weight = pattern[i], 0
        if char == "\\" and i + 1 < n:
            braced = _BRACED_ESCAPE.match(pattern, i + 1)
            weight = _escape_weight(pattern[i + 1])
            i = braced.end() if braced else i + 2
        elif char == "[":
            i, weight = _class_weight(pattern, i)
        elif char == "(":
            frames.append([0, 0])
            i += 1
            continue
        elif char == ")" and len(frames) > 1:
            weight = frames.pop()[0]
            i += 1
        elif char == "{" and (repetition := _REPETITION.match(pattern, i)):
            low, comma, high = repetition.groups()
            count = int(high) if high else int(low) + (1 if comma else 0)
            total, last = frames[-1]
            frames[-1] = [total + last * (count - 1), last * count]
            i = repetition.end()
            continue
        else:
            weight = _CLASS if char == "." else 1
            i += 1
        frames[-1][0] += weight
        frames[-1][1] = weight
    return sum(frame[0] for frame in frames)


def _escape_weight(letter: str) -> int:
    return _HEAVY if letter in _HEAVY_ESCAPES else _CLASS if letter in _CLASS_ESCAPES else 1


def _class_weight(pattern: str, start: int) -> tuple[int, int]:
    """(where the bracket class starting at `start` ends, its weight)."""
    i, depth, weight = start + 1, 1, _CLASS
    if pattern.startswith("^", i):
        i += 1
    if pattern.startswith("]", i):
        i += 1  # a leading "]" is a literal
    while i < len(pattern) and depth:
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            weight += _HEAVY if pattern[i + 1] in _HEAVY_ESCAPES else 0
            braced = _BRACED_ESCAPE.match(pattern, i + 1)
            i = braced.end() if braced else i + 2
            continue
        if char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
        i += 1
    return i, weight


def check_patterns(patterns: list[str]) -> None:
    """Refuse regular expressions that would cost too much to compile on each request."""
    if sum(regex_weight(pattern) for pattern in patterns) > REGEX_BUDGET:
        raise CostError(
            "The regular expressions of this condition cost too much to run on every "
            "request: use fewer Unicode classes such as \\w, \\b or \\p{L} and smaller "
            "counted repetitions such as {100}."
        )
