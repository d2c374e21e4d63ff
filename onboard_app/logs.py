"""Logging for every process: the app's lines reach the log, no secret does, junk is bounded.

Why this exists: under ``reflex run`` Reflex gives its own ``reflex`` logger a console
handler and stops it propagating, and nobody configures the root logger. The app's
``onboard.*`` loggers then inherit the root's WARNING level (their INFO lines are never
even created) and have no handler to reach. Meanwhile Reflex, python-socketio and
engineio write what a client sent into their warnings and tracebacks (event payloads with
passwords, the session JWT, the tab's client token, request headers).

:func:`install` (called once at the top of ``onboard_app/onboard_app.py``, so in the CLI,
the server supervisor and every worker, forked or spawned) fixes both:

* ``onboard.*`` logs at INFO through one stderr handler on the root logger.
* Every log record is redacted where it is made (a record factory) and again by a
  :class:`LogGuard` filter on every handler that exists (Reflex's included): the message
  is formatted with its arguments, traceback and stack, the whole text is redacted
  (:class:`Redactor`) and becomes the record's message. Handlers then only ever see text
  that went through the redactor, whatever they format.
* The same filter bounds repeats (:class:`RepeatLimiter`): at most ``per_key`` similar
  lines per minute, then one "suppressed N similar lines" summary.

Nothing here imports Reflex: ``services/audit.py`` uses :func:`looks_secret`.
"""

from __future__ import annotations

import base64
import logging
import re
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Final

from onboard_app.settings import Settings, get_settings

log = logging.getLogger("onboard.logs")

#: What a redacted value becomes (angle brackets: Reflex renders square ones as markup).
REDACTED: Final = "<redacted>"
#: Log records longer than this keep their start and end, the middle is cut.
MAX_RECORD_CHARS: Final = 16_000
_HEAD_CHARS: Final = 12_000
_TAIL_CHARS: Final = 3_000
#: Literal secrets shorter than this are not searched for (they would match ordinary words).
MIN_LITERAL_CHARS: Final = 8
LINE_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
#: engineio and python-socketio give their loggers a bare stderr handler unless a level is
#: already set; with this level they keep their default and propagate to ours instead.
_SOCKET_LOGGERS: Final = ("engineio.server", "socketio.server")

# The patterns are written for lower-cased text: each line is lower-cased once and every
# pattern runs case-sensitively on that copy (several times faster than IGNORECASE);
# matches are then cut out of the original by position. Each pattern starts with a
# literal or a character set where it can, so the engine skips to candidate positions.
_B64: Final = r"[a-z0-9_-]"
_HEX: Final = r"[0-9a-f]"
# A key-value separator: ``key=v``, ``key: v``, ``'key': 'v'``, ``"key":"v"``, and the
# ``(b'cookie', b'v')`` pairs of raw ASGI headers.
_SEP: Final = r"""(?:['"]?[ \t]*[:=][ \t]*|['"][ \t]*,[ \t]*)"""
# A quoted value (Python repr or JSON, escapes honoured); an unterminated quote (a cut
# message) runs to the end of the line.
_UNTERMINATED: Final = (
    r"""b?'(?:[^'\\\r\n]|\\.)*(?=[\r\n]|\Z)|b?"(?:[^"\\\r\n]|\\.)*(?=[\r\n]|\Z)"""
)
_QUOTED: Final = rf"""b?'(?:[^'\\\n]|\\.)*'|b?"(?:[^"\\\n]|\\.)*"|{_UNTERMINATED}"""
_QUOTED_LONG: Final = rf"""b?'(?:[^'\\\n]|\\.){{8,}}'|b?"(?:[^"\\\n]|\\.){{8,}}"|{_UNTERMINATED}"""
_BARE: Final = r"""[^\s&'",;}\])<>]"""
_FIELD_WORDS: Final = (
    "password", "passwd", "passphrase", "secret", "token", "jwt", "api_key", "api-key",
    "apikey", "private_key", "private-key", "verifier", "otp",
)  # fmt: skip


@dataclass(frozen=True)
class _Shape:
    """One kind of secret: its pattern and substrings without which it cannot match.

    Attributes:
        name: The kind (also the pattern's outer group).
        pattern: Matches the secret, with a ``value`` group when only the value of a
            key-value pair is replaced.
        triggers: The pattern runs only if one of these is in the lower-cased text (an
            ``in`` check costs far less than a scan, so most lines skip most patterns).
    """

    name: str
    pattern: re.Pattern[str]
    triggers: tuple[str, ...]


def _shape(name: str, pattern: str, *triggers: str) -> _Shape:
    return _Shape(name, re.compile(pattern), triggers)


_SHAPES: Final = (
    # A JWT (or JWE): base64url segments joined by dots, the first a JSON object ("ey").
    _shape("jwt", rf"ey(?<!{_B64}ey){_B64}{{6,}}\.{_B64}{{2,}}(?:\.{_B64}*)+", "ey"),
    # A UUID: Reflex's client token (one per tab) is one; so is a worker's instance id.
    _shape(
        "uuid",
        rf"{_HEX}{{8}}(?<!{_HEX}{{9}})-(?:{_HEX}{{4}}-){{3}}{_HEX}{{12}}(?!{_HEX})",
        "-",
    ),
    # The password of a URL (database, Redis, SMTP): scheme://user:password@host.
    _shape("url", r"""://[^\s/:@'"<>]*:(?P<value>[^\s/@'"<>]+)@""", "://"),
    # Credentials after an HTTP authentication scheme.
    _shape(
        "scheme",
        r"(?:bearer|basic|digest)[ \t]+(?P<value>[a-z0-9._~+/=-]{6,})",
        "bearer",
        "basic",
        "digest",
    ),
    # Header values that are credentials (the whole value, to the end of the line if bare).
    _shape(
        "header",
        rf"""(?:cookie|authorization|x-api-key){_SEP}(?P<value>{_QUOTED}|[^\r\n'"]+)""",
        "cookie",
        "authorization",
        "x-api-key",
    ),
    # Fields that hold secrets: passwords, tokens (Reflex's ``token``, the session token's
    # storage var), the PKCE verifier, client secrets, one-time codes.
    _shape(
        "field",
        # Not inside a word: a random token holding "jwt" or "otp" is no field name.
        rf"""(?<![A-Za-z0-9])(?:{"|".join(_FIELD_WORDS)})[\w.-]*{_SEP}(?P<value>{_QUOTED}|{_BARE}+)""",
        "pass",
        "secret",
        "token",
        "jwt",
        "api",
        "private",
        "verifier",
        "otp",
    ),
    # OAuth ``code`` / ``state`` / ``nonce``: only values long enough to be one ("exit
    # code: 1" stays readable), and not a longer name ending so ("session_state: ...").
    _shape(
        "oauth",
        r"(?:code(?<![\w.-]code)|state(?<![\w.-]state)|nonce(?<![\w.-]nonce))"
        rf"{_SEP}(?P<value>{_QUOTED_LONG}|{_BARE}{{8,}})",
        "code",
        "state",
        "nonce",
    ),
)


def _overlapping(pattern: re.Pattern[str], text: str) -> Iterator[re.Match[str]]:
    """Every match, also those starting inside an earlier one.

    ``finditer`` resumes after a match, so a field name inside a random value (``…_jwt',``)
    would hide the real field that follows it; the spans are merged afterwards.
    """
    position = 0
    while (match := pattern.search(text, position)) is not None:
        yield match
        position = match.start() + 1


def _keep_quotes(value: str) -> str:
    prefix = "b" if value[:1] == "b" and value[1:2] in ("'", '"') else ""
    quote = value[len(prefix) : len(prefix) + 1]
    if quote in ("'", '"'):
        return f"{prefix}{quote}{REDACTED}{quote}"
    return REDACTED


class Redactor:
    """Replaces secrets in text: by shape (JWT, UUID, credential fields) and by value.

    Args:
        literals: Exact secrets to remove wherever they appear (signing keys in their
            text forms, client secrets); those shorter than ``MIN_LITERAL_CHARS`` are
            ignored.
    """

    def __init__(self, literals: Iterable[str] = ()) -> None:
        """Compile the literals into one pattern."""
        chosen = sorted(
            {s.lower() for s in literals if len(s) >= MIN_LITERAL_CHARS}, key=len, reverse=True
        )
        self._shapes: tuple[_Shape, ...] = _SHAPES
        if chosen:
            literal = _Shape("secret", re.compile("|".join(map(re.escape, chosen))), ("",))
            self._shapes = (literal, *_SHAPES)
        # Text whose lower-cased copy has another length (a few non-ASCII letters) is
        # matched case-insensitively instead, so positions always line up.
        self._folding = tuple(
            _Shape(s.name, re.compile(s.pattern.pattern, re.IGNORECASE), s.triggers)
            for s in self._shapes
        )

    def _matches(self, text: str) -> list[tuple[int, int, str]]:
        """Spans to replace, in order, none overlapping: ``(start, end, replacement)``."""
        lower = text.lower()
        shapes, searched = (
            (self._shapes, lower)
            if len(lower) == len(text)
            else (
                self._folding,
                text,
            )
        )
        found: list[tuple[int, int, str]] = []
        for shape in shapes:
            for trigger in shape.triggers:  # a plain loop: any() costs more than the checks
                if trigger in lower:
                    break
            else:
                continue
            for match in _overlapping(shape.pattern, searched):
                if "value" in shape.pattern.groupindex:
                    begin, end = match.span("value")
                    found.append((begin, end, _keep_quotes(text[begin:end])))
                else:
                    label = (
                        f"<redacted {shape.name}>" if shape.name in ("jwt", "uuid") else REDACTED
                    )
                    found.append((match.start(), match.end(), label))
        if len(found) < 2:
            return found
        found.sort(key=lambda span: (span[0], -span[1]))
        merged = [found[0]]
        for start, end, replacement in found[1:]:
            last_start, last_end, last_replacement = merged[-1]
            if start >= last_end:
                merged.append((start, end, replacement))
            elif end > last_end:  # overlaps past the kept span: redact through its end
                merged[-1] = (last_start, end, last_replacement + REDACTED)
        return merged

    def __call__(self, text: str) -> str:
        """The text with every secret replaced.

        Args:
            text: Any text.

        Returns:
            The redacted text.
        """
        spans = self._matches(text)
        if not spans:
            return text
        parts, done = [], 0
        for start, end, replacement in spans:
            parts += [text[done:start], replacement]
            done = end
        parts.append(text[done:])
        return "".join(parts)

    def finds_secret(self, text: str) -> bool:
        """Whether the text holds anything this redactor would replace."""
        return bool(self._matches(text))


def settings_secrets(settings: Settings) -> list[str]:
    """The secrets of a configuration, in every text form a log line could hold them.

    Args:
        settings: The configuration.

    Returns:
        Signing keys (base64url, base64, hex, bytes repr), OAuth client secrets and the
        SMTP password.
    """
    found: list[str] = []
    for key in settings.signing_keys:
        raw = key.secret
        hex_form = raw.hex()
        found += [
            base64.urlsafe_b64encode(raw).decode().rstrip("="),
            base64.b64encode(raw).decode().rstrip("="),
            hex_form,
            hex_form.upper(),
            repr(raw)[2:-1],
        ]
    for client in (settings.github, settings.oidc):
        if client is not None and client.client_secret:
            found.append(client.client_secret)
    if settings.smtp is not None and settings.smtp.password:
        found.append(settings.smtp.password)
    return found


_redactor = Redactor()


def looks_secret(text: str) -> bool:
    """Whether text holds a secret by shape or is one of the configured secrets.

    Args:
        text: Any text (a value about to be logged).

    Returns:
        True if the process's redactor would change it.
    """
    return _redactor.finds_secret(text)


_HEAD_CUT: Final = re.compile(r"""[\s'",;&(){}\[\]<>][^\s'",;&(){}\[\]<>]*\Z""")


def bounded(text: str) -> str:
    """Cut an over-long record to its start and end, never through the middle of a word.

    A cut inside a token would leave a piece the redactor no longer recognises, so the
    head ends at a delimiter and the tail starts at a new line (or is dropped).

    Args:
        text: A record's full text, not yet redacted.

    Returns:
        The text, at most about ``MAX_RECORD_CHARS`` long.
    """
    if len(text) <= MAX_RECORD_CHARS:
        return text
    head = text[:_HEAD_CHARS]
    cut = _HEAD_CUT.search(head)
    head = head[: cut.start()] if cut else ""
    newline = text.find("\n", len(text) - _TAIL_CHARS)
    tail = text[newline:] if newline != -1 else ""
    return f"{head} … <{len(text) - len(head) - len(tail)} characters cut> …{tail}"


_CLEAN: Final = "onboard_clean"
_VERDICT: Final = "onboard_verdict"
_SUMMARY: Final = "onboard_summary"
_FORMATTER: Final = logging.Formatter()


def redact_record(record: logging.LogRecord) -> None:
    """Turn a record into its redacted text, in place (idempotent, cheap when done).

    The message with its arguments, the traceback and the stack are formatted, joined,
    bounded and redacted; the result becomes ``record.msg`` with no arguments, traceback
    or stack left for a handler to format on its own.

    Args:
        record: Any log record.
    """
    if record.__dict__.get(_CLEAN) is record.msg and not (
        record.args or record.exc_info or record.exc_text or record.stack_info
    ):
        return
    try:
        text = record.getMessage()
    except Exception:  # a bad format string: the handler would print msg and args raw
        text = f"{record.msg} (arguments that did not fit: {record.args!r})"
    if record.exc_info:
        text += "\n" + _FORMATTER.formatException(record.exc_info)
    elif record.exc_text:
        text += "\n" + record.exc_text
    if record.stack_info:
        text += "\n" + record.stack_info
    clean = _redactor(bounded(text))
    record.msg, record.args = clean, ()
    record.exc_info, record.exc_text, record.stack_info = None, None, None
    record.__dict__[_CLEAN] = clean


@dataclass
class _Window:
    start: float
    count: int = 0
    suppressed: int = 0
    sample: str = ""


@dataclass(frozen=True)
class Verdict:
    """What the limiter decided about one line.

    Attributes:
        write: Whether the line is written.
        last: Whether it is the last similar line written before suppression starts.
        summaries: "suppressed N similar lines" texts of windows that just ended.
    """

    write: bool
    last: bool = False
    summaries: tuple[str, ...] = field(default=())


_OVERFLOW: Final = ("<too many different lines>",)


class RepeatLimiter:
    """At most ``per_key`` similar lines per window, and one summary of what was held back.

    A line can count against two budgets: its own key, and a family (all the warnings of
    one library) so that junk varied on purpose cannot bypass the per-key budget.
    Windows are fixed (they start with their first line) and kept in start order, so
    expiring them is a walk over the oldest few. The number of windows is capped: past
    ``max_keys`` new lines share one overflow budget.

    Args:
        per_key: Lines per key per window.
        per_family: Lines per family per window.
        window: Seconds.
        max_keys: Windows kept at once.
        clock: Monotonic time source (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        per_key: int = 10,
        per_family: int = 100,
        window: float = 60.0,
        max_keys: int = 2048,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """No line seen yet."""
        self.per_key, self.per_family, self.window = per_key, per_family, window
        self.max_keys = max_keys
        self._clock = clock
        self._windows: OrderedDict[Hashable, _Window] = OrderedDict()
        self._lock = threading.Lock()

    def check(self, key: Hashable, sample: str, family: Hashable | None = None) -> Verdict:
        """Count one line and decide whether it is written.

        Args:
            key: What makes lines "similar".
            sample: The (redacted) text to quote in a summary.
            family: A second, wider budget, or ``None``.

        Returns:
            The verdict, with the summaries of windows that ended before now.
        """
        with self._lock:
            now = self._clock()
            summaries = self._expire(now)
            budgets = [(self._window_for(key, now), self.per_key)]
            if family is not None:
                budgets.append((self._window_for(("family", family), now), self.per_family))
            write = all(w.count < limit for w, limit in budgets)
            last = False
            for w, limit in budgets:
                if write:
                    w.count += 1
                    last = last or w.count == limit
                elif w.count >= limit:
                    w.suppressed += 1
                    w.sample = w.sample or sample
            return Verdict(write, last, tuple(summaries))

    def _window_for(self, key: Hashable, now: float) -> _Window:
        found = self._windows.get(key)
        if found is None:
            if len(self._windows) >= self.max_keys:
                key = _OVERFLOW
                found = self._windows.get(key)
            if found is None:
                found = self._windows[key] = _Window(now)
        return found

    def _expire(self, now: float) -> list[str]:
        summaries = []
        while self._windows:
            key, oldest = next(iter(self._windows.items()))
            if oldest.start + self.window > now:
                break
            del self._windows[key]
            if oldest.suppressed:
                lines = "line" if oldest.suppressed == 1 else "lines"
                summaries.append(
                    f"suppressed {oldest.suppressed} similar {lines} in {self.window:.0f} s: "
                    f"{oldest.sample}"
                )
        return summaries


_SHAPE: Final = re.compile(r"""'[^']*'|"[^"]*"|\w*\d\w*""")
_SHAPE_CHARS: Final = 100


def repeat_key(record: logging.LogRecord) -> tuple[tuple[Any, ...], str | None]:
    """What makes a (redacted) record similar to others, and its family.

    The app's own lines are similar only when identical (two users signing in are two
    lines); other libraries' lines are similar when their first line has the same shape
    (quoted values and words with digits, such as session ids, do not count), and the
    warnings and errors of each library share a family budget.

    Args:
        record: A redacted record.

    Returns:
        The key and the family (``None`` for the app's own loggers).
    """
    first = str(record.msg).partition("\n")[0]
    if record.name == "onboard" or record.name.startswith("onboard."):
        return (record.name, record.levelno, first[:200]), None
    shape = _SHAPE.sub("#", first[: _SHAPE_CHARS * 2])[:_SHAPE_CHARS]
    family = record.name.partition(".")[0] if record.levelno >= logging.WARNING else None
    return (record.name, record.levelno, shape), family


class LogGuard(logging.Filter):
    """A handler filter: redact the record, then let the repeat limiter decide.

    One instance is shared by every handler, and its decision is stored on the record, so
    a record that reaches two handlers is counted once.

    Args:
        limiter: The repeat limiter.
    """

    def __init__(self, limiter: RepeatLimiter) -> None:
        """Guard with this limiter."""
        super().__init__()
        self.limiter = limiter

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record and say whether it is written.

        Args:
            record: The record a handler is about to emit.

        Returns:
            False if it is a suppressed repeat.
        """
        redact_record(record)
        if record.__dict__.get(_SUMMARY):
            return True
        verdict: Verdict | None = record.__dict__.get(_VERDICT)
        if verdict is None:
            key, family = repeat_key(record)
            sample = str(record.msg).partition("\n")[0][:200]
            verdict = record.__dict__[_VERDICT] = self.limiter.check(key, sample, family)
            if verdict.last:
                record.msg = record.__dict__[_CLEAN] = (
                    f"{record.msg} (limit reached: similar lines are held back for up to "
                    f"{self.limiter.window:.0f} s)"
                )
            for summary in verdict.summaries:
                log.warning(summary, extra={_SUMMARY: True})
        return verdict.write


def _guard_handlers(logger: logging.Logger) -> None:
    """Put the guard on every handler a record of ``logger`` reaches (as callHandlers walks)."""
    current: logging.Logger | None = logger
    while current is not None:
        for handler in current.handlers:
            if _guard not in handler.filters:
                handler.addFilter(_guard)
        current = current.parent if current.propagate else None


def _guarding_factory(
    make: Callable[..., logging.LogRecord],
) -> Callable[..., logging.LogRecord]:
    """Wrap a record factory: records are redacted as they are made, and guarded.

    Every handler a record is about to reach gets the guard, including handlers attached
    after :func:`install` (a spawned worker attaches Reflex's console sink after it
    imports the app).
    """

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        redact_record(record)
        if record.name:
            _guard_handlers(logging.getLogger(record.name))
        return record

    factory.onboard_guarding = True  # type: ignore[attr-defined]
    return factory


_guard = LogGuard(RepeatLimiter())


def install(settings: Settings | None = None) -> None:
    """Configure this process's logging (idempotent).

    Args:
        settings: Whose secrets to redact by value; the process-wide settings by default.
    """
    global _redactor
    _redactor = Redactor(settings_secrets(settings or get_settings()))
    current = logging.getLogRecordFactory()
    if not getattr(current, "onboard_guarding", False):
        logging.setLogRecordFactory(_guarding_factory(current))
    root = logging.getLogger()
    if not root.handlers:
        stream = logging.StreamHandler(sys.stderr)
        stream.setFormatter(logging.Formatter(LINE_FORMAT))
        root.addHandler(stream)
    for name in _SOCKET_LOGGERS:
        socket_logger = logging.getLogger(name)
        if socket_logger.level == logging.NOTSET:
            socket_logger.setLevel(logging.ERROR)
    app_logger = logging.getLogger("onboard")
    if app_logger.level == logging.NOTSET:
        app_logger.setLevel(logging.INFO)
    # Every handler that exists now (the root's, Reflex's console/JSON/file sinks...), for
    # records not made by the factory; the factory guards handlers attached later.
    for each in [root, *logging.Logger.manager.loggerDict.values()]:
        if isinstance(each, logging.Logger):
            _guard_handlers(each)
    log.info(
        "logging ready: onboard.* at INFO, secrets redacted, at most %d similar lines per %.0f s",
        _guard.limiter.per_key,
        _guard.limiter.window,
    )
