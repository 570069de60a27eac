"""The README's `curl` examples, run against freshly loaded demo data.

Every ```` ```console ```` block of README.md whose commands are `$ curl …` is an
example. Each block starts from its own copy of a database that `flask db upgrade` and
`flask demo-data` built (so a block may write, and later commands of the same block see
the writes); each command is translated into a request to the app (method, headers,
body, `-i` for the status line and headers) and its answer is compared with the text
under the command:

- JSON is compared as JSON, so the README may wrap and indent it freely and list an
  object's keys in any order;
- `…` elides: more members of an object, more items of a list (where it stands), the
  rest of a string or of a line, or a whole value that changes from call to call
  (the `start_time` of a new run);
- with `-i`, the status line must match and every header shown must be sent with that
  value; headers not shown are not checked;
- any other text is compared line by line, `…` matching anything.

`tests/test_readme.py` checks every example (on PostgreSQL too). After a change to the
service or to the demo data, rewrite the outputs in README.md from the real answers:

    .venv/bin/python -m tests.readme_examples --write

The rewrite keeps each example's shape (which keys are shown, where `…` stands) and
fills in the values; a command with no output under it gets the whole answer.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from unittest import mock
from urllib.parse import urlsplit

README = Path(__file__).resolve().parent.parent / "README.md"
ELLIPSIS = "…"
# The settings the README's examples are run with: `RUNS_API_TOKENS=secret make serve`.
ENVIRONMENT = {"RUNS_API_TOKENS": "secret"}
# Text width the rewrite wraps JSON at.
WIDTH = 96


class _Elided:
    """A whole value or list item written as `…`: anything may stand there."""

    def __repr__(self) -> str:
        return ELLIPSIS


ELIDED = _Elided()
# An object member written as `…`: the object may have more members.
ELIDED_KEY = "\u2026elided\u2026"


@dataclass
class Command:
    """One `$ curl …` command of the README and the output shown under it."""

    text: str  # the command without the `$ ` prompt, continuation lines joined
    first_line: int  # 0-based index in README.md of its first line
    output_start: int  # index of the first output line
    output_end: int  # index one past the last output line
    output: str

    @property
    def line_number(self) -> int:
        return self.first_line + 1


@dataclass
class Example:
    """A console block: commands that run in order on one fresh demo database."""

    first_line: int
    commands: list[Command] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"README.md:{self.first_line + 1}"


# ----------------------------------------------------------------------------- parsing


def _needs_more(text: str) -> bool:
    """A command continues while its line ends with a backslash or a quote is open."""
    if text.endswith("\\"):
        return True
    try:
        shlex.split(text.replace("\\\n", " "))
    except ValueError:
        return True
    return False


def parse_examples(text: str) -> list[Example]:
    """Every console block whose commands are all `$ curl …`."""
    lines = text.split("\n")
    examples = []
    index = 0
    while index < len(lines):
        if lines[index].strip() != "```console":
            index += 1
            continue
        start = index
        end = start + 1
        while end < len(lines) and lines[end].strip() != "```":
            end += 1
        example = _parse_block(lines, start, end)
        if example is not None:
            examples.append(example)
        index = end + 1
    return examples


def _parse_block(lines: list[str], start: int, end: int) -> Example | None:
    example = Example(first_line=start)
    others = []
    index = start + 1
    while index < end:
        line = lines[index]
        if not line.startswith("$ "):
            index += 1
            continue
        first = index
        text = line[2:]
        while _needs_more(text) and index + 1 < end:
            index += 1
            text += "\n" + lines[index]
        index += 1
        output_start = index
        while index < end and not lines[index].startswith("$ "):
            index += 1
        output_end = index
        # Blank lines separate one command's output from the next command.
        while output_end > output_start and not lines[output_end - 1].strip():
            output_end -= 1
        command = Command(
            text=text.replace("\\\n", " "),
            first_line=first,
            output_start=output_start,
            output_end=output_end,
            output="\n".join(lines[output_start:output_end]),
        )
        if shlex.split(command.text)[0] == "curl":
            example.commands.append(command)
        else:
            others.append(command)
    if example.commands and others:
        raise ValueError(
            f"README.md:{start + 1}: a console block mixes curl commands with others; "
            "the curl examples are run, so give them a block of their own."
        )
    return example if example.commands else None


@dataclass
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: str | None
    include_headers: bool


def parse_curl(text: str) -> Request:
    """The request a curl command line sends (the options the README uses)."""
    words = shlex.split(text)
    if words[0] != "curl":
        raise ValueError(f"not a curl command: {text}")
    method = None
    headers: dict[str, str] = {}
    body = None
    include = False
    url = None
    words = words[1:]
    while words:
        word = words.pop(0)
        if word in ("-X", "--request"):
            method = words.pop(0)
        elif word in ("-H", "--header"):
            name, _, value = words.pop(0).partition(":")
            headers[name.strip()] = value.strip()
        elif word in ("-d", "--data", "--data-raw", "--data-binary"):
            body = words.pop(0)
            if body.startswith("@"):
                raise ValueError(f"curl {word} @file is not supported in README examples")
        elif word in ("-i", "--include"):
            include = True
        elif word in ("-s", "--silent", "-S", "--show-error"):
            pass
        elif re.fullmatch(r"-[sSi]+", word):
            include = include or "i" in word
        elif word.startswith("-"):
            raise ValueError(f"curl option {word} is not supported in README examples")
        else:
            url = word
    if url is None:
        raise ValueError(f"curl command without a URL: {text}")
    parts = urlsplit(url if "://" in url else "http://" + url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    if method is None:
        method = "POST" if body is not None else "GET"
    if body is not None and not any(name.lower() == "content-type" for name in headers):
        # What curl sends with -d when no Content-Type is given.
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    return Request(method=method, path=path, headers=headers, body=body, include_headers=include)


# ----------------------------------------------------------------------------- answers


@dataclass
class Answer:
    status: int
    headers: list[tuple[str, str]]
    content_type: str
    body: str

    @property
    def status_line(self) -> str:
        return f"HTTP/1.1 {self.status} {HTTPStatus(self.status).phrase}"

    def is_json(self) -> bool:
        return self.content_type.split(";")[0].strip() == "application/json" and bool(self.body)


def send(client, request: Request) -> Answer:
    """Send a request through the Flask test client."""
    response = client.open(
        request.path,
        method=request.method,
        headers=request.headers,
        data=request.body.encode() if request.body is not None else None,
    )
    return Answer(
        status=response.status_code,
        headers=list(response.headers.items()),
        content_type=response.headers.get("Content-Type", ""),
        body=response.get_data(as_text=True),
    )


# ------------------------------------------------------------------------ JSON patterns


def parse_json_pattern(text: str) -> Any:
    """JSON text in which a bare `…` stands for elided members, items or values."""
    out = []
    stack: list[str] = []
    expecting_key = False
    index = 0
    while index < len(text):
        char = text[index]
        if char == '"':
            end = index + 1
            while text[end] != '"':
                end += 2 if text[end] == "\\" else 1
            out.append(text[index : end + 1])
            index = end + 1
            continue
        if char == ELLIPSIS:
            if stack and stack[-1] == "{" and expecting_key:
                out.append(f"{json.dumps(ELIDED_KEY)}: null")
            else:
                out.append(json.dumps(ELLIPSIS + ELIDED_KEY))
            index += 1
            continue
        if char in "{[":
            stack.append(char)
            expecting_key = char == "{"
        elif char in "}]":
            stack.pop()
            expecting_key = False
        elif char == ",":
            expecting_key = bool(stack) and stack[-1] == "{"
        elif char == ":":
            expecting_key = False
        out.append(char)
        index += 1
    return _with_elided(json.loads("".join(out)))


def _with_elided(value: Any) -> Any:
    if value == ELLIPSIS + ELIDED_KEY:
        return ELIDED
    if isinstance(value, dict):
        return {key: _with_elided(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_elided(item) for item in value]
    return value


def _text_matches(pattern: str, actual: str) -> bool:
    """Whole-text match where `…` stands for any text (newlines included)."""
    parts = [re.escape(part) for part in pattern.split(ELLIPSIS)]
    return re.fullmatch(".*?".join(parts), actual, flags=re.DOTALL) is not None


def _short(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def match_json(pattern: Any, actual: Any, path: str = "$") -> list[str]:
    """What differs between a JSON pattern and a JSON value (empty when they match)."""
    if pattern is ELIDED:
        return []
    if isinstance(pattern, dict):
        if not isinstance(actual, dict):
            return [f"{path}: expected an object, got {_short(actual)}"]
        problems = []
        for key, item in pattern.items():
            if key == ELIDED_KEY:
                continue
            if key not in actual:
                problems.append(f"{path}.{key}: not in the answer")
            else:
                problems.extend(match_json(item, actual[key], f"{path}.{key}"))
        if ELIDED_KEY not in pattern:
            extra = [key for key in actual if key not in pattern]
            if extra:
                problems.append(f"{path}: the answer also has {extra} (elide them with …)")
        return problems
    if isinstance(pattern, list):
        if not isinstance(actual, list):
            return [f"{path}: expected a list, got {_short(actual)}"]
        if not any(item is ELIDED for item in pattern):
            if len(pattern) != len(actual):
                return [f"{path}: {len(actual)} items in the answer, {len(pattern)} shown"]
            problems = []
            for index, (item, value) in enumerate(zip(pattern, actual, strict=True)):
                problems.extend(match_json(item, value, f"{path}[{index}]"))
            return problems
        if _sequence_matches(pattern, actual):
            return []
        return [f"{path}: the items shown do not match the answer's {_short(actual)}"]
    if isinstance(pattern, str) and ELLIPSIS in pattern:
        if isinstance(actual, str) and _text_matches(pattern, actual):
            return []
        return [f"{path}: {_short(actual)} does not match {_short(pattern)}"]
    if _same_scalar(pattern, actual):
        return []
    return [f"{path}: README shows {_short(pattern)}, the answer is {_short(actual)}"]


def _same_scalar(pattern: Any, actual: Any) -> bool:
    if isinstance(pattern, bool) or isinstance(actual, bool) or pattern is None or actual is None:
        return pattern is actual
    if isinstance(pattern, int | float) and isinstance(actual, int | float):
        return pattern == actual
    return type(pattern) is type(actual) and pattern == actual


def _sequence_matches(pattern: list, actual: list) -> bool:
    if not pattern:
        return not actual
    head, rest = pattern[0], pattern[1:]
    if head is ELIDED:
        return any(_sequence_matches(rest, actual[skip:]) for skip in range(len(actual) + 1))
    return bool(actual) and not match_json(head, actual[0]) and _sequence_matches(rest, actual[1:])


# ---------------------------------------------------------------------- comparing output


def _split_head(text: str) -> tuple[list[str], str]:
    """Header lines (status line first) and body of an `-i` output."""
    head, _, body = text.partition("\n\n")
    return head.split("\n"), body


def _header_problems(shown: list[str], answer: Answer) -> list[str]:
    problems = []
    if not shown or shown[0].strip() != answer.status_line:
        problems.append(
            f"status line: README shows {shown[0]!r}, the answer is {answer.status_line!r}"
        )
    sent = {}
    for name, value in answer.headers:
        sent.setdefault(name.lower(), value)
    for line in shown[1:]:
        if line.strip() == ELLIPSIS:
            continue
        name, _, value = line.partition(":")
        actual = sent.get(name.strip().lower())
        if actual is None:
            problems.append(f"header {name.strip()}: not sent")
        elif not _text_matches(value.strip(), actual):
            problems.append(f"header {name.strip()}: sent as {actual!r}")
    return problems


def _body_problems(shown: str, answer: Answer) -> list[str]:
    if answer.is_json() and shown.strip():
        try:
            pattern = parse_json_pattern(shown)
        except (ValueError, IndexError) as error:
            return [f"the README's JSON does not parse: {error}"]
        return match_json(pattern, json.loads(answer.body))
    if _text_matches(_strip_lines(shown), _strip_lines(answer.body)):
        return []
    return ["the text differs from the answer:\n" + answer.body]


def _strip_lines(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.strip("\n").split("\n"))


def output_problems(command: Command, request: Request, answer: Answer) -> list[str]:
    """What differs between the README's output of a command and the service's answer."""
    shown = command.output
    if request.include_headers:
        head, body = _split_head(shown)
        return _header_problems(head, answer) + _body_problems(body, answer)
    return _body_problems(shown, answer)


# ------------------------------------------------------------------------------ rewrite


def _reshape(pattern: Any, actual: Any) -> Any:
    """The answer cut to the shape of the README's pattern (None: the whole answer)."""
    if pattern is ELIDED:
        return ELIDED
    if isinstance(pattern, str) and ELLIPSIS in pattern:
        return pattern if isinstance(actual, str) and _text_matches(pattern, actual) else actual
    if isinstance(pattern, dict) and isinstance(actual, dict):
        shaped = {}
        for key, item in pattern.items():
            if key == ELIDED_KEY:
                shaped[ELIDED_KEY] = ELIDED
            elif key in actual:
                shaped[key] = _reshape(item, actual[key])
        if ELIDED_KEY not in pattern:
            shaped.update({key: value for key, value in actual.items() if key not in pattern})
        elif list(shaped)[-1] == ELIDED_KEY and len(shaped) - 1 == len(actual):
            del shaped[ELIDED_KEY]  # everything is shown: nothing left to elide
        return shaped
    if isinstance(pattern, list) and isinstance(actual, list):
        gaps = [index for index, item in enumerate(pattern) if item is ELIDED]
        if not gaps:
            template = pattern[-1] if pattern else None
            return [
                _reshape(pattern[index] if index < len(pattern) else template, value)
                for index, value in enumerate(actual)
            ]
        prefix, suffix = pattern[: gaps[0]], pattern[gaps[-1] + 1 :]
        if len(prefix) + len(suffix) >= len(actual):
            return [
                _reshape(prefix[index] if index < len(prefix) else None, value)
                for index, value in enumerate(actual)
            ]
        head = [_reshape(item, value) for item, value in zip(prefix, actual, strict=False)]
        tail_values = actual[len(actual) - len(suffix) :] if suffix else []
        tail = [_reshape(item, value) for item, value in zip(suffix, tail_values, strict=True)]
        return [*head, ELIDED, *tail]
    return actual


def _compact(value: Any) -> str:
    if value is ELIDED:
        return ELLIPSIS
    if isinstance(value, dict):
        return "{" + ", ".join(_member(key, item) for key, item in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_compact(item) for item in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def _member(key: str, value: Any) -> str:
    if key == ELIDED_KEY:
        return ELLIPSIS
    return f"{json.dumps(key, ensure_ascii=False)}: {_compact(value)}"


def format_json(value: Any, column: int = 0) -> str:
    """JSON wrapped at WIDTH, its first line starting at `column`.

    Members are packed on lines aligned one column after their bracket; a member too
    long for a line has its value wrapped the same way, from where it starts.
    """
    flat = _compact(value)
    if column + len(flat) <= WIDTH or not isinstance(value, dict | list) or not value:
        return flat
    if isinstance(value, dict):
        opening, closing = "{", "}"
        parts = list(value.items())
    else:
        opening, closing = "[", "]"
        parts = [(None, item) for item in value]
    inner = column + 1
    lines: list[str] = []
    line, start = opening, column  # the line being filled and the column it starts at
    for position, (key, item) in enumerate(parts):
        last = position == len(parts) - 1
        suffix = closing if last else ","
        if key is None or key == ELIDED_KEY:
            label, text = "", ELLIPSIS if key == ELIDED_KEY else _compact(item)
        else:
            label, text = json.dumps(key, ensure_ascii=False) + ": ", _compact(item)
        piece = label + text + suffix
        fresh = line.strip() in ("", opening) and (line != opening or start == column)
        separator = "" if fresh else " "
        if start + len(line) + len(separator) + len(piece) <= WIDTH:
            line += separator + piece
            continue
        if not fresh:
            lines.append(line)
            line, start = " " * inner, 0
        if inner + len(piece) <= WIDTH:
            line += piece
            continue
        first, *rest = format_json(item, start + len(line) + len(label)).split("\n")
        line += label + first
        if rest:
            lines.extend([line, *rest[:-1]])
            line, start = rest[-1], 0
        line += suffix
        following = parts[position + 1][0] if not last else None
        after_elision = not last and following is None and parts[position + 1][1] is ELIDED
        if not last and following != ELIDED_KEY and not after_elision:
            lines.append(line)
            line, start = " " * inner, 0
    lines.append(line)
    return "\n".join(lines)


def _rewrite_text(shown: str, actual: str) -> str:
    if _text_matches(_strip_lines(shown), _strip_lines(actual)):
        return shown
    shown_lines = shown.split("\n")
    actual_lines = actual.rstrip("\n").split("\n")
    elided = [index for index, line in enumerate(shown_lines) if ELLIPSIS in line]
    if not shown.strip() or not elided:
        return "\n".join(actual_lines)
    keep = elided[0]
    if keep >= len(actual_lines):
        return "\n".join(actual_lines)
    return "\n".join([*actual_lines[:keep], ELLIPSIS])


def _rewrite_body(shown: str, answer: Answer) -> str:
    if not answer.is_json():
        return _rewrite_text(shown, answer.body)
    actual = json.loads(answer.body)
    pattern = parse_json_pattern(shown) if shown.strip() else None
    if pattern is not None and not match_json(pattern, actual):
        return shown
    return format_json(_reshape(pattern, actual))


def _rewrite_head(shown: list[str], answer: Answer) -> list[str]:
    sent = {}
    for name, value in answer.headers:
        sent.setdefault(name.lower(), (name, value))
    lines = [answer.status_line]
    wanted = shown[1:] if shown and shown[0].startswith("HTTP/") else []
    if not wanted:
        wanted = [f"{name}: …" for name, _ in answer.headers if name.lower() == "content-type"]
    for line in wanted:
        if line.strip() == ELLIPSIS:
            lines.append(line)
            continue
        name, _, value = line.partition(":")
        found = sent.get(name.strip().lower())
        if found is None:
            continue
        value = value.strip()
        lines.append(line if _text_matches(value, found[1]) else f"{found[0]}: {found[1]}")
    return lines


def rewritten_output(command: Command, request: Request, answer: Answer) -> str:
    """The output to show under a command: the answer, in the shape the README shows."""
    if request.include_headers:
        head, body = _split_head(command.output)
        new_body = _rewrite_body(body, answer)
        return "\n".join(_rewrite_head(head, answer)) + "\n\n" + new_body
    return _rewrite_body(command.output, answer)


# ------------------------------------------------------------------- databases and apps


@contextmanager
def _environment(overrides: dict[str, str]) -> Iterator[None]:
    """os.environ with the README's settings, and no other RUNS_* setting of the caller."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("RUNS_")}
    with mock.patch.dict(os.environ, {**clean, **ENVIRONMENT, **overrides}, clear=True):
        yield


def make_app(database_url: str, results_dir: str):
    """The app as `RUNS_API_TOKENS=secret make serve` builds it, on the given database."""
    from runs_service import create_app

    with _environment({"RUNS_DATABASE_URL": database_url, "RUNS_RESULTS_DIR": results_dir}):
        return create_app()


def load_demo_database(database_url: str, results_dir: str) -> None:
    """`flask db upgrade` then `flask demo-data` on an empty database."""
    from flask_migrate import upgrade

    from runs_service.extensions import db

    app = make_app(database_url, results_dir)
    with app.app_context():
        upgrade()
    result = app.test_cli_runner().invoke(args=["demo-data"])
    if result.exit_code != 0:
        raise RuntimeError(f"flask demo-data failed: {result.output}")
    with app.app_context():
        db.engine.dispose()


class DemoDatabases:
    """Fresh copies of one demo database: a file copy on SQLite, a template on PostgreSQL."""

    def __init__(self, workdir: Path, server_url: str | None = None) -> None:
        self.workdir = workdir
        self.server_url = server_url
        self.template_results = str(workdir / "template-results")
        self._copies = 0
        self._databases: list[str] = []
        if server_url:
            from sqlalchemy import create_engine

            self._admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
            self.template = f"readme_template_{os.getpid()}"
            self._execute(f'DROP DATABASE IF EXISTS "{self.template}" WITH (FORCE)')
            self._execute(f'CREATE DATABASE "{self.template}"')
            self._databases.append(self.template)
            load_demo_database(self._url(self.template), self.template_results)
        else:
            self.template = str(workdir / "template.db")
            load_demo_database("sqlite:///" + self.template, self.template_results)

    def _execute(self, statement: str) -> None:
        from sqlalchemy import text

        with self._admin.connect() as connection:
            connection.execute(text(statement))

    def _url(self, name: str) -> str:
        from sqlalchemy import make_url

        url = make_url(self.server_url).set(database=name)
        return url.render_as_string(hide_password=False)

    def fresh(self) -> tuple[str, str]:
        """(database URL, results directory) of a new copy of the demo data."""
        self._copies += 1
        results_dir = str(self.workdir / f"results-{self._copies}")
        shutil.copytree(self.template_results, results_dir)
        if self.server_url:
            name = f"{self.template}_{self._copies}"
            self._execute(f'CREATE DATABASE "{name}" TEMPLATE "{self.template}"')
            self._databases.append(name)
            return self._url(name), results_dir
        path = self.workdir / f"copy-{self._copies}.db"
        shutil.copyfile(self.template, path)
        return "sqlite:///" + str(path), results_dir

    def drop(self, database_url: str) -> None:
        """Drop a copy (PostgreSQL; SQLite files go with the work directory)."""
        if self.server_url:
            from sqlalchemy import make_url

            name = make_url(database_url).database
            self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._databases.remove(name)

    def close(self) -> None:
        if self.server_url:
            for name in reversed(self._databases):
                self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            self._admin.dispose()


def run_example(
    example: Example,
    databases: DemoDatabases,
    on_answer: Callable[[Command, Request, Answer], None],
) -> None:
    """Run an example's commands in order on a fresh copy of the demo database."""
    from runs_service.extensions import db

    database_url, results_dir = databases.fresh()
    app = make_app(database_url, results_dir)
    try:
        client = app.test_client()
        for command in example.commands:
            request = parse_curl(command.text)
            on_answer(command, request, send(client, request))
    finally:
        with app.app_context():
            db.engine.dispose()
        databases.drop(database_url)


def write_readme(path: Path = README, server_url: str | None = None) -> int:
    """Rewrite every example's output from the service's answers; returns how many changed."""
    text = path.read_text(encoding="utf-8")
    lines = text.split("\n")
    replacements: list[tuple[Command, str]] = []

    def collect(command: Command, request: Request, answer: Answer) -> None:
        new = rewritten_output(command, request, answer)
        if new != command.output:
            replacements.append((command, new))
        problems = output_problems(
            Command(command.text, command.first_line, 0, 0, new), request, answer
        )
        if problems:
            print(f"README.md:{command.line_number}: still differs:", *problems, sep="\n  ")

    with tempfile.TemporaryDirectory(prefix="readme-examples-") as workdir:
        databases = DemoDatabases(Path(workdir), server_url)
        try:
            for example in parse_examples(text):
                run_example(example, databases, collect)
        finally:
            databases.close()
    for command, new in sorted(replacements, key=lambda item: -item[0].first_line):
        lines[command.output_start : command.output_end] = new.split("\n")
        print(f"README.md:{command.line_number}: rewrote the output of `{command.text[:60]}`")
    if replacements:
        path.write_text("\n".join(lines), encoding="utf-8")
    return len(replacements)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--write", action="store_true", help="rewrite the outputs in README.md from the answers"
    )
    arguments = parser.parse_args(argv)
    if arguments.write:
        changed = write_readme()
        print(f"{changed} outputs rewritten.")
        return 0
    failed = 0

    def check(command: Command, request: Request, answer: Answer) -> None:
        nonlocal failed
        problems = output_problems(command, request, answer)
        if problems:
            failed += 1
            print(f"README.md:{command.line_number}: `{command.text[:60]}`", *problems, sep="\n  ")

    text = README.read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="readme-examples-") as workdir:
        databases = DemoDatabases(Path(workdir))
        try:
            for example in parse_examples(text):
                run_example(example, databases, check)
        finally:
            databases.close()
    print("every example matches" if not failed else f"{failed} examples differ")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
