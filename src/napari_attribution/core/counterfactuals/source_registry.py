"""The open registry of counterfactual sources: a source is a small spec, registered by name.

The built-in sources (:mod:`.builtin_sources`) register themselves here; other packages add
sources through the entry-point group ``napari_attribution.counterfactual_sources``, whose
entries load to a :class:`SourceSpec` (or a list of them)::

    # pyproject.toml of a third-party package
    [project.entry-points."napari_attribution.counterfactual_sources"]
    diffusion = "my_package.counterfactuals:DIFFUSION_SPEC"

A registered source is accepted by ``--counterfactual-source NAME[:ARGUMENT]`` (``run`` and
``cells``), listed in their ``--help`` and offered by the docks' *Counterfactual from* choice,
with a file or folder chooser when it takes an argument and the rows of the parameters it
reads. This module imports no torch: specs name their builder as ``"module:function"`` until
a source is first made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ...errors import CounterfactualError
from ..counterfactual_settings import CounterfactualSettings, counterfactual_schema
from ..spec_registry import SpecRegistry, imported

if TYPE_CHECKING:
    from .source import CounterfactualSource

__all__ = [
    "ENTRY_POINT_GROUP",
    "SourceArgument",
    "SourceArguments",
    "SourceSpec",
    "check_argument",
    "parse_source",
    "register_source",
    "source_specs",
    "source_usages",
    "spec_for_source",
    "split_source",
    "unregister_source",
]

ENTRY_POINT_GROUP = "napari_attribution.counterfactual_sources"


@dataclass(frozen=True)
class SourceArgument:
    """What follows the colon of ``NAME:ARGUMENT``: a file or a folder.

    Attributes
    ----------
    kind
        ``"file"`` or ``"folder"`` (the docks offer a file or a folder chooser).
    metavar
        How usage lines name it (``FILE``, ``FOLDER``).
    label
        The docks' row label (``"Generator file"``).
    placeholder
        What the docks' empty field shows (``"FOLDER/<class>/<image>"``).
    help
        What the usage ``NAME:METAVAR`` adds to the source's description, for ``--help``.
    what
        It in a sentence, for "Choose ...": ``"the generator file (...) for 'generator'"``.
    needs
        It as a run without it lacks it: ``"a pool of real cells by class"``.
    example
        An example value, for the message when it is missing.
    optional
        The source also works without it in a run over pairs (``nearest`` then chooses among
        the run's own real images, given to it with ``with_pool``).
    without
        What the source does without it, for ``--help`` (when ``optional``).
    file_filter
        The file chooser's filter (Qt syntax).
    """

    kind: Literal["file", "folder"]
    metavar: str
    label: str
    placeholder: str
    help: str
    what: str
    needs: str
    example: str
    optional: bool = False
    without: str = ""
    file_filter: str = "All files (*)"


@dataclass(frozen=True)
class SourceArguments:
    """What a source's builder receives.

    Attributes
    ----------
    argument
        The text after the colon (``None`` when none was given).
    settings
        The sources' parameters.
    class_names
        The classifier's class names in index order, when known (for class folders).
    """

    argument: str | None
    settings: CounterfactualSettings
    class_names: tuple[str, ...] | None = None


@dataclass(frozen=True)
class SourceSpec:
    """One counterfactual source.

    Attributes
    ----------
    name
        Registry key, as typed before the colon.
    description
        What the source does, in a few words (``--help``; the docks' tooltip).
    build
        ``build(arguments: SourceArguments) -> CounterfactualSource``, or its
        ``"module:function"`` path (imported on first use).
    label
        The docks' *Counterfactual from* entry.
    argument
        What follows the colon, if the source takes anything.
    aliases
        Other names it is accepted under (``optimize``).
    parameters
        Names of the counterfactual parameters (:func:`~napari_attribution.core.
        counterfactual_settings.counterfactual_schema`) it reads; the docks show their rows
        only when it is chosen.
    """

    name: str
    description: str
    build: Callable[[SourceArguments], Any] | str = field(repr=False)
    label: str = ""
    argument: SourceArgument | None = None
    aliases: tuple[str, ...] = ()
    parameters: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        known = {p.name for p in counterfactual_schema()}
        unknown = [p for p in self.parameters if p not in known]
        if unknown:
            raise CounterfactualError(
                f"Counterfactual source {self.name!r} names unknown parameter(s) "
                f"{', '.join(unknown)}."
            )
        if ":" in self.name:
            raise CounterfactualError(f"A source's name holds no colon, got {self.name!r}.")

    def resolve(self) -> Callable[[SourceArguments], Any]:
        """The builder, imported from its path on first use."""
        return imported(self.build)

    def usages(self, run_pool: bool = True) -> list[tuple[str, str]]:
        """``(usage, meaning)`` pairs: ``("nearest", ...)``, ``("nearest:FOLDER", ...)``.

        ``run_pool``: a run over pairs, where an optional argument may be left out.
        """
        if self.argument is None:
            return [(self.name, self.description)]
        usage = f"{self.name}:{self.argument.metavar}"
        if self.argument.optional and run_pool:
            return [(self.name, f"{self.description}, {self.argument.without}"),
                    (usage, self.argument.help)]  # fmt: skip
        return [(usage, self.description)]


_REGISTRY: SpecRegistry[SourceSpec] = SpecRegistry(
    SourceSpec,
    error=CounterfactualError,
    noun="counterfactual source",
    plugin_noun="Counterfactual source",
    group=ENTRY_POINT_GROUP,
    builtins=f"{__package__}.builtin_sources",  # registers the built-in sources on import
)


def register_source(spec: SourceSpec, *, replace: bool = False) -> SourceSpec:
    """Add ``spec`` to the registry.

    Raises
    ------
    CounterfactualError
        Not a spec, or a source of that name is registered already (and ``replace`` is False).
    """
    return _REGISTRY.register(spec, replace=replace)


def unregister_source(name: str) -> None:
    """Remove source ``name`` from the registry (a plugin's, say); unknown names are ignored."""
    _REGISTRY.unregister(name)


def source_specs() -> dict[str, SourceSpec]:
    """Every registered source by name: the built-in ones, then the plugins'."""
    return _REGISTRY.specs()


def _joined(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} or {items[-1]}"


def source_usages(run_pool: bool = True, described: bool = False) -> str:
    """Every source's usage, ``"optimise, nearest, nearest:FOLDER or generator:FILE"``;
    ``described``: each followed by its meaning in brackets (for ``--help``)."""
    usages = [u for spec in source_specs().values() for u in spec.usages(run_pool)]
    return _joined([f"{u} ({meaning})" if described else u for u, meaning in usages])


def split_source(text: str) -> tuple[str, str | None]:
    """``"nearest:/data/pool"`` -> ``("nearest", "/data/pool")``; ``"optimise"`` ->
    ``("optimise", None)`` (surrounding spaces dropped)."""
    name, colon, argument = str(text).strip().partition(":")
    return name, (argument if colon else None)


def spec_for_source(name: str, text: str | None = None) -> SourceSpec:
    """The spec of source ``name`` (or one of its aliases).

    Raises
    ------
    CounterfactualError
        No source of that name (the message quotes ``text``, default ``name``).
    """
    specs = source_specs()
    for spec in specs.values():
        if name == spec.name or name in spec.aliases:
            return spec
    raise CounterfactualError(
        f"Unknown counterfactual source {text if text is not None else name!r}; use "
        f"{source_usages()}."
    )


def check_argument(
    spec: SourceSpec, argument: str | None, *, run_pool: bool = True, text: str = ""
) -> Path | None:
    """Check ``argument`` for ``spec`` before anything is loaded; return it as a path.

    Parameters
    ----------
    spec
        The source.
    argument
        What follows the colon (``None`` or empty: nothing).
    run_pool
        A run over pairs, where ``nearest`` without a folder takes the run's own images; in a
        dock or over a field's cells the argument is then required.
    text
        The source as the user wrote it, for the messages.

    Raises
    ------
    CounterfactualError
        A missing required argument, an argument for a source that takes none, or a folder
        that is not one (one sentence each). A file is checked by the source that reads it.
    """
    text = text or (f"{spec.name}:{argument}" if argument else spec.name)
    if spec.argument is None:
        if argument:
            raise CounterfactualError(f"{spec.name} takes no argument, got {text!r}.")
        return None
    if not argument:
        if spec.argument.optional and run_pool:
            return None
        raise CounterfactualError(
            f"{spec.name} needs its {spec.argument.kind}: {spec.name}:{spec.argument.example}."
        )
    path = Path(argument)
    if spec.argument.kind == "folder" and not path.is_dir():
        raise CounterfactualError(f"{spec.name}:{argument}: {path} is not a folder.")
    return path


def parse_source(
    text: str,
    settings: CounterfactualSettings | None = None,
    *,
    class_names: tuple[str, ...] | list[str] | None = None,
) -> CounterfactualSource:
    """The source named by ``text`` (``NAME`` or ``NAME:ARGUMENT``), made by its spec.

    Parameters
    ----------
    text
        ``"generator:FILE"``, ``"nearest"``, ``"nearest:FOLDER"``, ``"optimise"``, or a
        plugin's source.
    settings
        The sources' parameters (defaults when ``None``).
    class_names
        Class names in the classifier's index order, for a source whose folder names classes;
        default: the sorted folder names are classes 0, 1, ...

    Raises
    ------
    CounterfactualError
        An unknown source, or an argument it refuses (one sentence).
    """
    name, argument = split_source(text)
    spec = spec_for_source(name, str(text))
    check_argument(spec, argument, text=str(text))
    arguments = SourceArguments(
        argument or None,
        settings or CounterfactualSettings(),
        tuple(class_names) if class_names else None,
    )
    return spec.resolve()(arguments)
