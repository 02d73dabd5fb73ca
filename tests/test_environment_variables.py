"""Every environment variable the code reads is documented in the README's table, and the table lists
nothing the code does not read.

Reads are found in the source (pipeline/ and local_ground/) by their syntax: `os.environ[...]`,
`os.environ.get(...)`, `os.getenv(...)`, `environ.get(...)` on a mapping passed in (GitHubRecorder takes
os.environ so), `config.factor_from(environ, NAME, ...)` and click's `envvar=`. A name given through a module constant is followed to its value.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("pipeline", "local_ground")

# A WSGI request environ is also called `environ`: its keys are request data, not the process environment.
WSGI_KEY = re.compile(r"^(HTTP_\w+|CONTENT_LENGTH|CONTENT_TYPE|QUERY_STRING|REQUEST_METHOD|PATH_INFO|wsgi\..*)$")
# The operating system's own variables, read only to hand an extended copy to a child process.
PASSED_THROUGH = {"PATH"}
# Reads whose name is not fixed in the source, each with why it reads no particular variable.
DYNAMIC_READS = {
    ("local_ground/environ.py", "key"): "scoped_environ saves and restores the variables it is given",
}


def _is_environ(node: ast.expr) -> tuple[bool, bool]:
    """(reads an environment mapping, is os.environ itself)."""
    if isinstance(node, ast.Attribute) and node.attr == "environ":
        return True, isinstance(node.value, ast.Name) and node.value.id == "os"
    return isinstance(node, ast.Name) and node.id == "environ", False


def _constants(tree: ast.Module) -> dict[str, str]:
    return {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _called(func: ast.expr) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else None


def _named(arg: ast.expr) -> Iterator[ast.expr]:
    if isinstance(arg, (ast.List, ast.Tuple)):
        yield from arg.elts
    else:
        yield arg


def reads(path: Path) -> Iterator[tuple[str | None, str, int]]:
    """(variable name or None when not fixed in the source, the expression, line) per read in one file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    constants = _constants(tree)
    for node in ast.walk(tree):
        args: list[ast.expr] = []
        process = True
        if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Load):
            found, process = _is_environ(node.value)
            args = [node.slice] if found else []
        elif isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in ("get", "setdefault"):
                found, process = _is_environ(func.value)
                args = node.args[:1] if found else []
            elif isinstance(func, ast.Attribute) and func.attr == "getenv":
                args = node.args[:1]
            elif _called(func) == "factor_from":  # config.factor_from(environ, NAME, ...) reads $NAME
                args = node.args[1:2]
            args += [a for k in node.keywords if k.arg == "envvar" for a in _named(k.value)]
        for arg in args:
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                name: str | None = arg.value
            elif isinstance(arg, ast.Name):
                name = constants.get(arg.id)
            else:
                name = None
            if not process and (name is None or WSGI_KEY.match(name)):
                continue  # a mapping passed in, read by a computed key or as a WSGI request: no variable named
            yield name, ast.unparse(arg), node.lineno


def variables_read() -> dict[str, list[str]]:
    """Variable name -> where it is read (file:line)."""
    found: dict[str, list[str]] = {}
    unresolved = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            for name, expression, line in reads(path):
                if name is None:
                    if (relative, expression) not in DYNAMIC_READS:
                        unresolved.append(f"{relative}:{line} reads {expression}")
                    continue
                found.setdefault(name, []).append(f"{relative}:{line}")
    assert not unresolved, f"name these variables with a constant (or list the read in DYNAMIC_READS): {unresolved}"
    return found


def documented() -> set[str]:
    """Variable names in the first column of the README's environment variable table."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("### Environment variables", 1)[1].split("\n#", 1)[0]
    return set(re.findall(r"^\| `([A-Z][A-Z0-9_]*)` \|", section, flags=re.MULTILINE))


def test_every_variable_the_code_reads_is_documented() -> None:
    read = variables_read()
    missing = {name: where for name, where in read.items() if name not in documented() | PASSED_THROUGH}
    assert not missing, f"document these in the README's environment variable table: {missing}"


def test_the_table_lists_only_variables_the_code_reads() -> None:
    assert documented() - set(variables_read()) == set()


def test_the_scanner_finds_each_kind_of_read(tmp_path: Path) -> None:
    source = tmp_path / "sample.py"
    source.write_text(
        "import os\n"
        'NAME_ENV = "FROM_CONSTANT"\n'
        'a = os.environ.get("GOT")\n'
        'b = os.environ["INDEXED"]\n'
        'c = os.getenv("GETENV")\n'
        "d = os.environ.get(NAME_ENV)\n"
        'e = click.option("--x", envvar="CLICK")\n'
        'f = click.option("--y", envvar=["LIST_A", "LIST_B"])\n'
        'g = environ.get("PASSED_IN")\n'
        'h = environ.get("HTTP_AUTHORIZATION")  # a WSGI request, not the process\n'
        'i = os.environ.get("HTTP_PROXY")\n'
        "j = os.environ.get(key)\n"
        "l = environ[key]  # a mapping passed in, read by a computed key\n"
        'k = os.environ.setdefault("DEFAULTED", "1")\n'
    )
    assert [name for name, _, _ in sorted(reads(source), key=lambda read: read[2])] == [
        "GOT",
        "INDEXED",
        "GETENV",
        "FROM_CONSTANT",
        "CLICK",
        "LIST_A",
        "LIST_B",
        "PASSED_IN",
        "HTTP_PROXY",
        None,
        "DEFAULTED",
    ]
