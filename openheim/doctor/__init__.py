"""``openheim doctor``: checks the config, provider keys and endpoints, MCP servers, the history
store and the [server] settings, and says how to fix what fails.

The checks return ``Row`` objects and print nothing; ``render_table`` and ``render_json`` turn
a ``Report`` into output, so the logic is tested in-process.
"""

from openheim.doctor.checks import run_doctor
from openheim.doctor.render import render_json, render_table, summary
from openheim.doctor.rows import Report, Row, Status, split_fix

__all__ = [
    "Report",
    "Row",
    "Status",
    "render_json",
    "render_table",
    "run_doctor",
    "split_fix",
    "summary",
]
