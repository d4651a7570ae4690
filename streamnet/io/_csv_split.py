"""CSV files planned before anything is parsed: what each rank reads, and lines in bytes.

Host code on the files' bytes only (no table is made): shares of whole files
or of byte ranges cut at line starts, and the line numbers that error
messages name. Every backend's CSV reader reads the `CsvPart` s planned here.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable
from dataclasses import dataclass

from streamnet._errors import FileReadError
from streamnet.io._shares import rank_share
from streamnet.io._stores import FilePath, file_size, open_binary

__all__ = [
    "CsvFormat",
    "CsvPart",
    "csv_shares",
    "first_line",
    "first_undecodable",
    "line_breaks",
    "odd_quotes_line",
    "text_line",
]


@dataclass(frozen=True, slots=True)
class CsvPart:
    """What one rank reads of file number ``file``: all of it, or the rows that start in
    the bytes ``span = (start, end)``, end excluded (always after the header line)."""

    file: int
    path: FilePath
    span: tuple[int, int] | None = None

    def describe(self) -> str:
        """The part in an error message: the file, and the bytes when it is a range."""
        if self.span is None:
            return f"`{self.path}`"
        return f"`{self.path}` (the rows in bytes {self.span[0]} to {self.span[1]})"

    def nbytes(self) -> int:
        """The bytes of the file, or of the range (it blocks: it may ask a store)."""
        return self.span[1] - self.span[0] if self.span is not None else file_size(self.path)


@dataclass(frozen=True, slots=True)
class CsvFormat:
    """How CSV files are written: what ``actors.read_csv`` was told.

    Attributes
    ----------
    block_size
        Bytes parsed at a time (a batch), and read to infer the types.
    delimiter
        The character between values.
    has_header
        Whether the first line names the columns.
    encoding
        The text encoding (a Python codec name).
    typed
        Whether ``schema=`` gave the types (else the first block of the first file did).
    multiline
        Whether quoted values may hold line breaks (else each row is one line).
    """

    block_size: int
    delimiter: str
    has_header: bool
    encoding: str
    typed: bool
    multiline: bool = False


def _row_start(path: FilePath, pos: int) -> int:
    """The first byte at or after ``pos`` that starts a line (0 or just after a line break);
    the file size when no line starts there."""
    if pos <= 0:
        return 0
    with open_binary(path) as file:
        offset = pos - 1
        file.seek(offset)
        while block := file.read(1 << 16):
            found = block.find(b"\n")
            if found >= 0:
                return offset + found + 1
            offset += len(block)
    return offset


def csv_shares(
    paths: list[FilePath], rank: int, nranks: int, has_header: bool, *, whole_files: bool = False
) -> list[CsvPart]:
    """What ``rank`` reads: a run of whole files balanced by size when there are at least as
    many files as ranks (or ``whole_files``: rows may span lines, so a file cannot be cut at
    a line start); otherwise the rows of all files cut at line starts into ``nranks`` byte
    ranges of about the same size (a row goes to the range holding its first byte).

    Raises
    ------
    FileReadError
        A file cannot be read; the message names it.
    """
    try:
        sizes = [file_size(path) for path in paths]
        if len(paths) >= nranks or whole_files:
            share = rank_share(sizes, rank, nranks)
            return [CsvPart(i, paths[i]) for i in share]
        starts = [_row_start(path, 1) if has_header else 0 for path in paths]
    except OSError as exc:
        raise FileReadError(f"cannot read CSV file: {exc}") from exc
    lengths = [size - start for size, start in zip(sizes, starts, strict=True)]
    befores = [sum(lengths[:i]) for i in range(len(paths))]
    total = sum(lengths)

    def line_start(at: int) -> int:
        """The offset, in the rows of all files one after the other, of the first row from ``at``."""
        for path, start, length, before in zip(paths, starts, lengths, befores, strict=True):
            if at < before + length:
                return before + _row_start(path, start + at - before) - start
        return total

    lo = line_start(total * rank // nranks) if rank > 0 else 0
    hi = line_start(total * (rank + 1) // nranks) if rank < nranks - 1 else total
    parts = []
    for i, (path, start, length, before) in enumerate(
        zip(paths, starts, lengths, befores, strict=True)
    ):
        if length == 0:  # no rows: read whole (for its schema) by the rank where it lies
            if lo <= before < hi or (before == total and rank == nranks - 1):
                parts.append(CsvPart(i, path))
            continue
        first, last = max(lo, before), min(hi, before + length)
        if first >= last:
            continue
        if first == before and last == before + length:
            parts.append(CsvPart(i, path))
        else:
            parts.append(CsvPart(i, path, (start + first - before, start + last - before)))
    return parts


def first_line(part: CsvPart, fmt: CsvFormat) -> int:
    """The line number, in its file, of the first row of ``part``."""
    if part.span is not None:
        return line_breaks(part.path, part.span[0]) + 1
    return 2 if fmt.has_header else 1


def line_breaks(path: FilePath, end: int) -> int:
    """Line breaks in the first ``end`` bytes of ``path``."""
    count = done = 0
    with open_binary(path) as file:
        while done < end and (block := file.read(min(1 << 20, end - done))):
            count += block.count(b"\n")
            done += len(block)
    return count


def first_undecodable(path: FilePath, encoding: str) -> tuple[int, int] | None:
    """The line and byte offset of the first bytes of ``path`` that ``encoding`` cannot decode."""
    decoder = codecs.getincrementaldecoder(encoding)()
    lines = offset = 0
    with open_binary(path) as file:
        while True:
            block = file.read(1 << 20)
            try:
                decoder.decode(block, final=not block)
            except UnicodeDecodeError as exc:
                # The decoder may hold back up to a few bytes of a previous block.
                bad = max(0, exc.start - len(exc.object) + len(block))
                return lines + block.count(b"\n", 0, bad) + 1, offset + bad
            if not block:
                return None
            lines += block.count(b"\n")
            offset += len(block)


def odd_quotes_line(part: CsvPart, from_line: int, within: int) -> int | None:
    """The first line from line ``from_line`` on, in the ``within`` bytes that follow its
    start and in ``part``, with an odd number of quotes (a quoted value that does not close
    on it), or None."""
    return _first_line_where(part, from_line, within, lambda line: line.count(b'"') % 2 == 1)


def text_line(part: CsvPart, from_line: int, text: str, encoding: str, within: int) -> int | None:
    """The first line from line ``from_line`` on, in the ``within`` bytes that follow its
    start and in ``part``, that is ``text`` (its line break aside), or None."""
    wanted = text.encode(encoding)
    return _first_line_where(part, from_line, within, lambda line: line.rstrip(b"\r\n") == wanted)


def _first_line_where(
    part: CsvPart, from_line: int, within: int, test: Callable[[bytes], bool]
) -> int | None:
    """The number of the first line from line ``from_line`` on, in the ``within`` bytes
    that follow its start and in ``part``, whose bytes pass ``test``, or None."""
    end = part.span[1] if part.span is not None else file_size(part.path)
    done = 0
    limit: int | None = None
    with open_binary(part.path) as file:
        for line, text in enumerate(file, start=1):
            if line >= from_line:
                if test(text):
                    return line
                limit = done + within if limit is None else limit
            done += len(text)
            if done >= end or (limit is not None and done >= limit):
                return None
    return None
