"""The interactive terminal face (bare ``openheim``): prompt_toolkit for input, rich for output.

Only the REPL path imports this package, so ``openheim --help`` and ``openheim run`` never
load prompt_toolkit or rich.
"""

from openheim.repl.app import ReplOptions, run_repl

__all__ = ["ReplOptions", "run_repl"]
