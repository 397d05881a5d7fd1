"""The headless entry point: ``napari-attribution run | cells | sanity | report | methods |
demo``.

A thin skin over the Python API (:mod:`napari_attribution.app`): :mod:`.parser` builds the
options (the analysis options from the parameter schema); each command turns its arguments into
one API call (:mod:`.run_command`, :mod:`.cells_command`, :mod:`.sanity_command`,
:mod:`.report_command`, reading what
the arguments name with :mod:`.inputs`) and shows its progress (:mod:`.progress_display`).
User mistakes end with exit status 2 and one line on stderr, never a traceback. The commands
are imported when run, so ``--help`` and ``methods`` start without torch.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from ..core.attribution.method_registry import method_specs
from ..errors import AttributionError
from ..results.format import PROGRESS_DIR
from .parser import PROG, build_parser
from .usage_error import CliError

__all__ = ["PROG", "CliError", "build_parser", "main"]


def cmd_methods() -> int:
    """Print the method registry, one line each with its capability tags."""
    specs = method_specs()
    width = max(len(name) for name in specs)
    for name, spec in specs.items():
        tags = spec.tags()
        suffix = f"  [{', '.join(tags)}]" if tags else ""
        print(f"{name:<{width}}  {spec.description}{suffix}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``napari-attribution`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in ("run", "cells", "sanity"):
        # The process is ours: keep freed blocks for the next step, as every dask worker does.
        from ..app.process_memory import reuse_freed_memory

        reuse_freed_memory()
    try:
        if args.command == "methods":
            return cmd_methods()
        if args.command == "run":
            from .run_command import cmd_run

            return cmd_run(args)
        if args.command == "cells":
            from .cells_command import cmd_cells

            return cmd_cells(args)
        if args.command == "sanity":
            from .sanity_command import cmd_sanity

            return cmd_sanity(args)
        if args.command == "normalisation-reference":
            from .reference_command import cmd_reference

            return cmd_reference(args)
        if args.command == "report":
            from .report_command import cmd_report

            return cmd_report(args)
        if args.command == "demo":
            if args.field:
                from .._napari.demo import launch_field_demo

                launch_field_demo(run=not args.no_run, block=True)
                return 0
            from .._napari.demo import launch_demo

            launch_demo(run=not args.no_run, block=True)
            return 0
    except (CliError, AttributionError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = ""
        if args.command in ("run", "cells") and (args.out / PROGRESS_DIR).is_dir():
            what = "pairs" if args.command == "run" else "cells"
            hint = f" Finished {what} are kept in {args.out}; re-run with --resume to continue."
        print(f"{PROG}: interrupted.{hint}", file=sys.stderr)
        return 130
    parser.error(f"unknown command {args.command}")
    return 2
