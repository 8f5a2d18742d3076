"""What a failed load says: dlt wraps driver errors in several layers, and the message a
person needs (our own error, or the step, table, URL and the driver's first lines) is found
inside them."""

from __future__ import annotations

import re

from stackyard.errors import StackyardError

# A DuckDB target loads within its memory_limit (DuckDB's default, 80 % of RAM, unless the
# target sets one) and spills beyond it; what cannot spill fails with "Out of Memory Error".
OUT_OF_MEMORY_HINT = (
    "the load ran out of the DuckDB target's memory: set `memory_limit` on the target in "
    "stackyard.yml (higher than now if it is set, e.g. 2GB; DuckDB's default is 80 % of RAM)"
)


def stackyard_error(exc: BaseException) -> StackyardError | None:
    """Our own error inside dlt's wrapping (raised from a map step during extraction)."""
    seen: set[int] = set()
    inner: BaseException | None = exc
    while inner is not None and id(inner) not in seen:
        if isinstance(inner, StackyardError):
            return inner
        seen.add(id(inner))
        inner = getattr(inner, "exception", None) or inner.__cause__ or inner.__context__
    return None


def _summary(message: str, limit: int = 300) -> str:
    r"""The lines of a driver's message that say what went wrong, on one line.

    DuckDB's CSV errors put the cause on a later line, after the whole offending row
    ("Original Line: …", which may be megabytes of someone's data): that row is left out,
    and so are the reader's option dump and suggestions, except the file name.

    >>> _summary("CSV Error on Line: 1\nOriginal Line: 1,xxxx\nMaximum line size of 2000000 "
    ...          "bytes exceeded.\n\nPossible Solution: …\n  file = a.csv\n  quote = '")
    'CSV Error on Line: 1; Maximum line size of 2000000 bytes exceeded. (file = a.csv)'
    """
    said: list[str] = []
    file = ""
    for index, line in enumerate(line.strip() for line in message.strip().splitlines()):
        if index and _READER_OPTION.match(line):
            file = line if line.startswith("file = ") else file
            continue
        if not line or line.startswith(("Original Line:", "Possible Solution")):
            continue
        if len(said) < 2:
            said.append(line[:limit] + ("…" if len(line) > limit else ""))
    text = "; ".join(said)
    return f"{text} ({file})" if file else text


_READER_OPTION = re.compile(r"^[a-z_]+ = ")


def _says_something(exc: BaseException) -> bool:
    """Whether an exception carries a message, or a type, worth showing.

    >>> _says_something(StopIteration()), _says_something(ValueError("bad"))
    (False, True)
    >>> _says_something(TimeoutError()), _says_something(Exception())
    (True, False)
    """
    if isinstance(exc, StopIteration | StopAsyncIteration | GeneratorExit):
        return False
    return bool(str(exc).strip()) or type(exc) is not Exception


# dlt hands a Postgres target its rows as CSV for COPY, where a date before year 1 is written
# as year -0043; Postgres reads dates BC only as `0044-03-15 BC` and refuses the row.
BC_DATE_HINT = (
    "a date or timestamp before year 1 (BC) cannot be loaded into a Postgres target: read the "
    "table through a view in the source that casts the column to text, named as the table's "
    "`source_table:` in stackyard.yml, then `stackyard reload SOURCE.TABLE --yes` (it drops "
    "this failed load); nothing of it was loaded"
)
_NEGATIVE_YEAR = re.compile(r'"-\d{4,}-\d\d-\d\d')

CURSOR_HINT = (
    "the table's `cursor` in stackyard.yml must name one of the source table's columns "
    "(its spelling in the source database): correct it, then run again"
)


def _bare_key(exc: BaseException) -> bool:
    """Whether ``exc`` is a KeyError that says no more than the key it missed.

    >>> _bare_key(KeyError("updatedat")), _bare_key(KeyError("Cursor column `x` is missing"))
    (True, False)
    """
    return isinstance(exc, KeyError) and len(exc.args) == 1 and " " not in str(exc.args[0])


def _job_table(exc: BaseException) -> str | None:
    """The table of a failed normalize or load job, from its file name
    (``customers.a1b2c3.0.parquet``): without it a job's error named no table, and incident
    triage picked one of the source's tables as the root cause."""
    job = getattr(exc, "job_id", None)
    return job.split(".", 1)[0] if isinstance(job, str) and "." in job else None


def root_cause(exc: BaseException) -> str:
    """One line saying what failed where: dlt wraps driver errors in several layers, and the
    useful parts (the step, the table, the URL) sit on different layers."""
    seen: set[int] = set()
    inner: BaseException = exc
    step = table = url = None
    while id(inner) not in seen:
        seen.add(id(inner))
        step = step or getattr(inner, "step", None)
        table = table or getattr(inner, "pipe_name", None) or _job_table(inner)
        request = getattr(inner, "request", None)
        url = url or getattr(request, "url", None)
        nested = getattr(inner, "exception", None) or inner.__cause__
        if nested is None and not inner.__suppress_context__:
            nested = inner.__context__
        # An exception raised while handling another has that one as its context: DuckDB's
        # "Malformed JSON … line 3" is raised inside a generator's StopIteration. The deepest
        # exception that says something is the cause; bare control-flow exceptions are not.
        if not isinstance(nested, BaseException) or not _says_something(nested):
            break
        if _bare_key(nested) and isinstance(inner, KeyError):
            # dlt re-raises a lookup's KeyError with what was looked up where ("Cursor column
            # `updatedat` does not exist in table `customers`"); the bare key under it said
            # only 'updatedat'.
            break
        inner = nested
    said = _summary(str(inner))
    if isinstance(inner, KeyError) and "Cursor column" in said:
        said += f"; {CURSOR_HINT}"
    if step == "load" and "COPY" in said and _NEGATIVE_YEAR.search(said):
        said += f"; {BC_DATE_HINT}"
    if step == "load" and type(inner).__name__ == "OutOfMemoryException":
        # DuckDB's own suggestions are SET statements a stackyard user has nowhere to run.
        said = f"{str(inner).strip().splitlines()[0]}; {OUT_OF_MEMORY_HINT}"
    if type(inner).__name__ == "NameNormalizationCollision":
        said = _collision(said) or said
    detail = f"{type(inner).__name__}: {said}".rstrip(": ")
    where = []
    if step:
        where.append(f"{step} step")
    if table:
        where.append(f"table '{table}'")
    if url:
        where.append(f"at {url}")
    return f"{', '.join(where)}: {detail}" if where else detail


def _collision(said: str) -> str | None:
    """dlt's "column name collision after input data normalization" as the columns that
    collide and what to do.

    >>> print(_collision("Arrow column name collision after input data normalization. Arrow "
    ...                  "schema fields normalized from:; ['id', 'Total Due', 'total_due']"))
    columns 'Total Due' and 'total_due' would load as one column, total_due (dlt names columns in snake_case, so one value of each row would be lost); rename one of them in the source (a file's header, a view of the table, the API's field), then run again; nothing of it was loaded
    """
    import ast

    from stackyard.ingest.json_text import column_name

    found = re.search(r"\[.*\]", said)
    try:
        fields = ast.literal_eval(found.group(0)) if found else []
    except (ValueError, SyntaxError):
        return None
    by_name: dict[str, list[str]] = {}
    for field in fields:
        by_name.setdefault(column_name(str(field)), []).append(str(field))
    clashes = [(name, same) for name, same in by_name.items() if len(same) > 1]
    if not clashes:
        return None
    listed = "; ".join(
        " and ".join(f"'{f}'" for f in same) + f" would load as one column, {name}"
        for name, same in clashes
    )
    return (
        f"columns {listed} (dlt names columns in snake_case, so one value of each row would "
        "be lost); rename one of them in the source (a file's header, a view of the table, the "
        "API's field), then run again; nothing of it was loaded"
    )
