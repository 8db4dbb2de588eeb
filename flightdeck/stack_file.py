"""Edit ``Pulumi.<stack>.yaml`` the way an operator would by hand, but validated.

Every edit is a round trip through ruamel.yaml: comments, key order, quoting and flow style of
everything not edited stay byte for byte. The WHOLE resulting config is validated with
:func:`components.config.validate_stack_config` before anything is written; an invalid result
raises :class:`components.config.ConfigError` (``.problems`` lists every ``path: reason``) and
the file is untouched. Writes are atomic (temp file in the same directory, fsync, rename, mode
kept) and serialised by a lock on the directory, so two concurrent edits never lose each other.

Comments: those inside a removed site go with it; comments above or below it stay (they are
moved onto the neighbouring site). A new site is appended after the last one, below any
comment that trailed the list.

Key spelling: Pulumi reads a config key without a namespace (``sites:``) as the project's own
(``flightdeck:sites``). Both spellings are read; an edit keeps the one the file uses; a file
that spells one key both ways is refused (which value would win is not obvious to a reader).
"""

from __future__ import annotations

import contextlib
import difflib
import fcntl
import io
import os
import re
import tempfile
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml as pyyaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark
from ruamel.yaml.scalarstring import DoubleQuotedScalarString
from ruamel.yaml.tokens import CommentToken
from ruamel.yaml.util import load_yaml_guess_indent

from components.config import ConfigError, Problem, SiteConfig, StackConfig, validate_stack_config

NAMESPACE = "flightdeck"
# Kept equal to components.stack_config (which imports pulumi at module level; this module must not).
SECTIONS = ("kubernetes", "operators", "mysql", "storage", "certificates", "backups", "sites")
SECRET_KEYS = ("kubeconfig", "mysqlAdminPassword")
SITES_KEY = f"{NAMESPACE}:sites"  # the spelling of a new sites list, unless the file uses bare keys
# Key order of a new site: the model's field order (camelCase aliases).
SITE_KEY_ORDER = tuple(info.alias or name for name, info in SiteConfig.model_fields.items())


class StackFileError(ValueError):
    """The stack file is missing, unreadable or not a YAML mapping, or the edit makes no sense."""

    def __init__(self, message: str, path: str = "") -> None:
        self.problems = (Problem(path, message),)
        super().__init__(f"{path}: {message}" if path else message)


@dataclass(frozen=True)
class EditResult:
    path: Path
    stack: str
    action: str
    site: str
    before: str = field(repr=False)
    after: str = field(repr=False)
    written: bool
    config: StackConfig = field(repr=False)

    @property
    def changed(self) -> bool:
        return self.before != self.after

    def diff(self) -> str:
        name = self.path.name
        lines = difflib.unified_diff(
            self.before.splitlines(keepends=True), self.after.splitlines(keepends=True), f"a/{name}", f"b/{name}"
        )
        return "".join(lines)


def flightdeck_key_name(key: object) -> str | None:
    """``sites`` for ``flightdeck:sites`` and for the bare ``sites`` (Pulumi's project namespace); else None."""
    text = str(key)
    namespace, separator, name = text.partition(":")
    if not separator:
        return text
    return name if namespace == NAMESPACE else None


def flightdeck_keys(config: Mapping[Any, Any]) -> dict[str, str]:
    """Every flightdeck key of a stack file's ``config:``: its name, and the key as the file spells it."""
    spelled: dict[str, str] = {}
    for key in config:
        name = flightdeck_key_name(key)
        if name is None:
            continue
        if name in spelled:
            raise StackFileError(
                f"both {spelled[name]!r} and {str(key)!r} are set; Pulumi reads them as the same key "
                f"{NAMESPACE}:{name}: keep one",
                name,
            )
        spelled[name] = str(key)
    return spelled


def flightdeck_sections(config: Mapping[Any, Any]) -> dict[str, Any]:
    """The structured sections (not the secrets) by name, whichever spelling the file uses."""
    return {name: config[key] for name, key in flightdeck_keys(config).items() if name not in SECRET_KEYS}


def stack_file_path(project_dir: str | os.PathLike[str], stack: str) -> Path:
    """``<project>/Pulumi.<stack>.yaml``; a fully qualified ``org/project/stack`` uses its last part."""
    name = stack.rsplit("/", 1)[-1]
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", name) or name in (".", ".."):
        raise StackFileError(f"{stack!r} is not a stack name (letters, digits, '-', '_', '.')", "stack")
    return Path(project_dir) / f"Pulumi.{name}.yaml"


# -- YAML round trip ------------------------------------------------------------------------------


def _round_trip(text: str) -> tuple[YAML, Any]:
    """The YAML instance that writes ``text`` back in its own indentation, and ``text`` loaded by it.

    ruamel's indentation guess reads the lines, then loads the document with the instance it is
    given: one parse serves both (an edit used to parse each stack file version twice)."""
    rt = YAML()
    rt.preserve_quotes = True
    rt.width = 4096  # never re-wrap long flow lines
    mapping = 2
    for line in text.splitlines():
        stripped = line.lstrip(" ")
        if line != stripped and stripped and not stripped.startswith(("#", "-")):
            mapping = len(line) - len(stripped)
            break
    sequence, offset = 4, 2
    doc = None
    if text.strip():
        doc, guessed, block_seq_indent = load_yaml_guess_indent(text, yaml=rt)
        if guessed and block_seq_indent is not None:
            sequence, offset = guessed, block_seq_indent
    rt.indent(mapping=mapping, sequence=sequence, offset=offset)
    return rt, doc


def _plain(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool) or node is None:
        return node
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _styled(value: Any) -> Any:
    """Plain data as ruamel nodes in the stack files' style: small maps and scalar lists in flow style."""
    if isinstance(value, Mapping):
        node = CommentedMap((str(k), _styled(v)) for k, v in value.items())
        if all(not isinstance(v, Mapping | list) or _scalar_list(v) for v in value.values()):
            node.fa.set_flow_style()
        else:
            node.fa.set_block_style()
        return node
    if isinstance(value, list):
        items = CommentedSeq(_styled(v) for v in value)
        if _scalar_list(value):
            items.fa.set_flow_style()
        else:
            items.fa.set_block_style()
        return items
    if isinstance(value, str):
        # Quote what a YAML 1.1 reader (PyYAML, some tools) would not read back as this string,
        # e.g. "04:45" (sexagesimal), "11.4", "yes", "1".
        if re.fullmatch(r"[0-9]+(:[0-9]+)+", value):  # clock times, quoted like the stack files do
            return DoubleQuotedScalarString(value)
        try:
            if pyyaml.safe_load(f"v: {value}") != {"v": value}:
                return DoubleQuotedScalarString(value)
        except pyyaml.YAMLError:
            return DoubleQuotedScalarString(value)
    return value


def _scalar_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, Mapping | list) for v in value)


def _token_text(token: Any) -> str:
    if token is None:
        return ""
    tokens = token if isinstance(token, list) else [token]
    text = ""
    for tok in tokens:
        if tok is None:
            continue
        value = str(tok.value)
        column = getattr(tok, "column", 0) or 0
        text += value if value.startswith("\n") else " " * column + value
    return text


def _reindent(text: str, column: int) -> str:
    """Comment lines moved between list items, indented like the list's dashes."""
    lines = [line.strip() for line in text.splitlines()]
    lines = [(" " * column + line if line else "") for line in lines]
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines) + "\n" if lines else ""


def _column(node: Any, default: int = 4) -> int:
    column = getattr(getattr(node, "lc", None), "col", None)
    return column if isinstance(column, int) else default


def _last_comment_slot(node: Any) -> tuple[Any, Any] | None:
    """(container, key) whose post comment trails ``node`` when it is dumped in block style."""
    slot: tuple[Any, Any] | None = None
    while isinstance(node, CommentedMap | CommentedSeq) and len(node) and not node.fa.flow_style():
        key = next(reversed(node)) if isinstance(node, CommentedMap) else len(node) - 1
        slot = (node, key)
        node = node[key]
    return slot


def _take_trailing_comment(node: Any) -> str:
    slot = _last_comment_slot(node)
    if slot is None:
        return ""
    container, key = slot
    entry = container.ca.items.get(key)
    if not entry or len(entry) < 3 or entry[2] is None:
        return ""
    text = _token_text(entry[2])
    entry[2] = None
    # What stays of the token is the end of the line the comment followed.
    return text.removeprefix("\n")


def _give_trailing_comment(node: Any, text: str) -> bool:
    if not text:
        return True
    slot = _last_comment_slot(node)
    if slot is None:
        return False
    container, key = slot
    entry = container.ca.items.setdefault(key, [None, None, None, None])
    existing = _token_text(entry[2]) if len(entry) > 2 else ""
    body = existing if existing else "\n"
    entry[2] = CommentToken(body + text, CommentMark(0), None)
    return True


# -- the stack file -------------------------------------------------------------------------------


class StackFile:
    """One parsed ``Pulumi.<stack>.yaml``."""

    def __init__(self, path: Path, stack: str, text: str) -> None:
        self.path = path
        self.stack = stack
        self.text = text
        try:
            self._yaml, self.doc = _round_trip(text)
        except Exception as error:  # ruamel raises many parser error types
            raise StackFileError(f"not valid YAML: {error}", str(path)) from None
        if self.doc is None:
            self.doc = CommentedMap()
        if not isinstance(self.doc, CommentedMap):
            raise StackFileError("must be a YAML mapping with a `config:` key", str(path))
        config = self.doc.get("config")
        if config is None:
            self.doc["config"] = CommentedMap()
        elif not isinstance(config, CommentedMap):
            raise StackFileError("`config:` must be a mapping", str(path))
        self.keys = flightdeck_keys(self.config)

    @classmethod
    def load(cls, path: str | os.PathLike[str], stack: str | None = None) -> StackFile:
        path = Path(path)
        stack = stack or path.name.removeprefix("Pulumi.").removesuffix(".yaml")
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise StackFileError(f"no stack file {path.name} (is the stack name right?)", str(path)) from None
        except OSError as error:
            raise StackFileError(f"cannot read: {error.strerror}", str(path)) from None
        return cls(path, stack, text)

    @property
    def config(self) -> CommentedMap:
        config: CommentedMap = self.doc["config"]
        return config

    def render(self) -> str:
        buf = io.StringIO()
        self._yaml.dump(self.doc, buf)
        return buf.getvalue()

    def raw_config(self) -> tuple[dict[str, Any], list[Problem]]:
        """The structured ``flightdeck:`` sections as plain data, and problems found before the model."""
        raw: dict[str, Any] = {}
        problems: list[Problem] = []
        for name, key in flightdeck_keys(self.config).items():
            value = self.config[key]
            if name in SECRET_KEYS:
                continue
            if name not in SECTIONS:
                known = ", ".join(SECTIONS + SECRET_KEYS)
                problems.append(Problem(name, f"unknown stack key {NAMESPACE}:{name} (known: {known})"))
                continue
            if isinstance(value, Mapping) and "secure" in value:
                problems.append(Problem(name, "must not be a secret; secrets have their own keys"))
                continue
            raw[name] = _plain(value)
        return raw, problems

    @property
    def has_admin_password(self) -> bool:
        return "mysqlAdminPassword" in flightdeck_keys(self.config)

    @property
    def sites_key(self) -> str:
        """The sites key as this file spells it; a new one follows the file's other flightdeck keys."""
        keys = flightdeck_keys(self.config)
        if "sites" in keys:
            return keys["sites"]
        bare = [key for key in keys.values() if ":" not in key]
        return "sites" if bare and len(bare) * 2 >= len(keys) else SITES_KEY

    def validate(self) -> StackConfig:
        raw, problems = self.raw_config()
        try:
            model = validate_stack_config(raw, has_admin_password=self.has_admin_password, stack=self.stack)
        except ConfigError as error:
            problems += error.problems
            model = None
        if problems or model is None:
            raise ConfigError(list(dict.fromkeys(problems)), self.stack)
        return model

    # -- the sites list ------------------------------------------------------------------------

    def sites_node(self, create: bool = False) -> CommentedSeq:
        sites_key = self.sites_key
        sites = self.config.get(sites_key)
        if sites is None or (isinstance(sites, CommentedSeq) and not sites and sites.fa.flow_style()):
            if not create:
                return CommentedSeq()
            fresh = CommentedSeq()
            fresh.fa.set_block_style()
            if sites is None:
                set_key(self.config, sites_key, fresh)
            else:
                self.config[sites_key] = fresh
            return fresh
        if not isinstance(sites, CommentedSeq):
            raise StackFileError("must be a list of sites", "sites")
        return sites

    def site_index(self, name: str) -> int:
        for index, site in enumerate(self.sites_node()):
            if isinstance(site, Mapping) and site.get("name") == name:
                return index
        known = ", ".join(str(s.get("name")) for s in self.sites_node() if isinstance(s, Mapping)) or "none"
        raise StackFileError(f"no site named {name!r} in stack {self.stack!r} (sites: {known})", "sites")

    def add_site(self, site: Mapping[str, Any]) -> None:
        name = site.get("name")
        if not isinstance(name, str) or not name:
            raise StackFileError("a site needs a name", "sites")
        if any(isinstance(s, Mapping) and s.get("name") == name for s in self.sites_node()):
            raise StackFileError(f"site {name!r} already exists in stack {self.stack!r}", "sites")
        ordered = {key: site[key] for key in SITE_KEY_ORDER if key in site}
        # Unknown keys go last; validation then names them.
        ordered.update({key: value for key, value in site.items() if key not in ordered})
        node = _styled(ordered)
        node.fa.set_block_style()
        sites = self.sites_node(create=True)
        trailing = _take_trailing_comment(sites[-1]) if len(sites) else ""
        sites.append(node)
        _give_trailing_comment(node, _reindent(trailing, _column(sites)))

    def remove_site(self, name: str) -> None:
        index = self.site_index(name)
        sites = self.sites_node()
        column = _column(sites)
        kept = _take_trailing_comment(sites[index])
        pre = sites.ca.items.get(index)
        kept = (_token_text(pre[1]) if pre and len(pre) > 1 else "") + kept
        if pre and len(pre) > 1:
            pre[1] = None
        del sites[index]
        if not len(sites):
            # An empty block list cannot be written; `[]` can, followed by every comment the list had.
            before = sites.ca.comment[1] if sites.ca.comment and len(sites.ca.comment) > 1 else None
            kept = _token_text(before) + kept + _token_text(sites.ca.end)
            empty = CommentedSeq()
            empty.fa.set_flow_style()
            sites_key = self.sites_key
            self.config[sites_key] = empty
            text = _reindent(kept, column)
            self.config.ca.items[sites_key] = [
                None, None, CommentToken("\n" + text, CommentMark(0), None) if text else None, None
            ]  # fmt: skip
            return
        kept = _reindent(kept, column)
        if not kept:
            return
        if index > 0:
            _give_trailing_comment(sites[index - 1], kept)
        else:
            entry = sites.ca.items.setdefault(0, [None, None, None, None])
            existing = entry[1] or []
            entry[1] = [CommentToken(kept, CommentMark(0), None), *existing]

    def update_site(self, name: str, edit: Callable[[CommentedMap], None]) -> None:
        site = self.sites_node()[self.site_index(name)]
        if not isinstance(site, CommentedMap):
            raise StackFileError(f"site {name!r} is not a mapping", "sites")
        edit(site)


def set_key(node: CommentedMap, key: str, value: Any) -> None:
    """Set ``node[key]``; a new key goes last, below the comment that trailed the mapping."""
    if key in node:
        node[key] = value
        return
    trailing = _take_trailing_comment(node)
    node[key] = value
    _give_trailing_comment(node, trailing)


def _bump_password_version(site: CommentedMap) -> None:
    user = site.get("user")
    if user is None:
        set_key(site, "user", _styled({"passwordVersion": 2}))
        return
    if not isinstance(user, CommentedMap):
        raise StackFileError("`user` must be a mapping", "user")
    current = user.get("passwordVersion", 1)
    if not isinstance(current, int) or isinstance(current, bool):
        raise StackFileError("`user.passwordVersion` must be an integer", "user.passwordVersion")
    set_key(user, "passwordVersion", current + 1)


# -- locked, validated, atomic edits --------------------------------------------------------------


@contextlib.contextmanager
def _directory_lock(directory: Path) -> Iterator[None]:
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def write_atomic(path: Path, text: str) -> None:
    mode = path.stat().st_mode & 0o7777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def edit(
    path: str | os.PathLike[str],
    change: Callable[[StackFile], None],
    *,
    stack: str | None = None,
    action: str = "edit",
    site: str = "",
    dry_run: bool = False,
) -> EditResult:
    """Apply ``change`` to the stack file; validate the whole result; write it unless ``dry_run``."""
    path = Path(path)
    if not path.parent.is_dir():
        raise StackFileError(f"no such directory {path.parent}", str(path))
    with _directory_lock(path.parent):
        document = StackFile.load(path, stack)
        change(document)
        after = document.render()
        try:
            config = StackFile(path, document.stack, after).validate()
        except ConfigError as error:
            try:
                StackFile(path, document.stack, document.text).validate()
            except ConfigError:
                note = Problem("", "(the stack file was already invalid before this edit)")
                raise ConfigError([*error.problems, note], document.stack) from None
            raise
        written = not dry_run and after != document.text
        if written:
            write_atomic(path, after)
    return EditResult(path, document.stack, action, site, document.text, after, written, config)


def add_site(
    path: str | os.PathLike[str], site: Mapping[str, Any], *, stack: str | None = None, dry_run: bool = False
) -> EditResult:
    """Append ``site`` (camelCase keys, as in the stack file) to ``flightdeck:sites``."""
    name = str(site.get("name", ""))
    return edit(path, lambda doc: doc.add_site(site), stack=stack, action="add", site=name, dry_run=dry_run)


def remove_site(
    path: str | os.PathLike[str], name: str, *, stack: str | None = None, dry_run: bool = False
) -> EditResult:
    """Remove site ``name``. What happens to its data is the program's call (``dropDataOnDelete``)."""
    return edit(path, lambda doc: doc.remove_site(name), stack=stack, action="remove", site=name, dry_run=dry_run)


def rotate_password(
    path: str | os.PathLike[str], name: str, *, stack: str | None = None, dry_run: bool = False
) -> EditResult:
    """Bump ``user.passwordVersion`` of site ``name``: the next ``up`` sets a new database password."""
    return edit(
        path,
        lambda doc: doc.update_site(name, _bump_password_version),
        stack=stack,
        action="rotate-password",
        site=name,
        dry_run=dry_run,
    )


def list_sites(path: str | os.PathLike[str], stack: str | None = None) -> list[SiteConfig]:
    """The validated sites of a stack file (raises ``ConfigError`` when the file is invalid)."""
    return list(StackFile.load(path, stack).validate().sites)
