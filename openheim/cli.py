"""Command-line entry: every face of openheim behind one ``openheim`` command.

Heavy modules are imported inside the command that needs them, so ``--help`` stays fast and
``run`` never loads the MCP SDK or the web stack.
"""

from __future__ import annotations

import os
import sys

import asyncclick as click

from openheim import __version__
from openheim.foundation.errors import OpenheimError
from openheim.foundation.startup import without_anyio

SANDBOX_MODES = ("auto", "bwrap", "landlock", "none")
SANDBOX = click.option(
    "--sandbox",
    type=click.Choice(SANDBOX_MODES),
    default=None,
    help="What confines tools (default: OPENHEIM_SANDBOX, else [sandbox] mode, else auto).",
)


def with_sandbox(mode: str | None) -> dict[str, str]:
    """The environment the faces read, with ``--sandbox`` as ``OPENHEIM_SANDBOX`` (the
    variable the runtime reads), so every face takes the flag the same way."""
    env = dict(os.environ)
    if mode is not None:
        env["OPENHEIM_SANDBOX"] = mode
    return env


def fail(error: OpenheimError | str) -> None:
    """One line on stderr and exit 1: users get an actionable message, never a traceback."""
    click.echo(f"openheim: error: {error}", err=True)
    sys.exit(1)


@click.group(invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="openheim")
@click.option("--skills", help="Comma-separated skills to load into the REPL, e.g. rust,debugging.")
@click.option("-m", "--model", help="A configured model, or PROVIDER/MODEL.")
@click.option("--resume", "resume", metavar="ID", help="Continue the conversation with this id.")
@click.option("--continue", "continue_latest", is_flag=True, help="Continue the latest one.")
@click.option("-y", "--yes", is_flag=True, help="Allow every tool call without asking.")
@SANDBOX
@click.pass_context
async def cli(
    ctx: click.Context,
    skills: str | None,
    model: str | None,
    resume: str | None,
    continue_latest: bool,
    yes: bool,
    sandbox: str | None,
) -> None:
    """openheim: a fast, multi-provider LLM agent runtime.

    Without a command, starts the interactive REPL (/help inside it lists commands and keys).
    """
    given = [
        flag
        for flag, value in (
            ("--skills", skills),
            ("--model", model),
            ("--resume", resume),
            ("--continue", continue_latest),
            ("--yes", yes),
            ("--sandbox", sandbox),
        )
        if value
    ]
    if ctx.invoked_subcommand is not None:
        if given:
            fail(
                f"{given[0]} before a command applies to the REPL only; "
                f"write it after the command: openheim {ctx.invoked_subcommand} {given[0]} ..."
            )
        return
    from openheim.repl import ReplOptions, run_repl
    from openheim.skills import parse_skill_names

    if resume and continue_latest:
        fail("--resume and --continue cannot be used together")
    options = ReplOptions(
        model=model,
        skills=parse_skill_names(skills) if skills is not None else None,
        resume=resume,
        continue_latest=continue_latest,
        allow_all_tools=yes,
    )
    try:
        code = await run_repl(options, env=with_sandbox(sandbox))
    except OpenheimError as exc:
        fail(exc)
    sys.exit(code)


@cli.command()
@click.argument("prompt")
@click.option("-m", "--model", help="A configured model, or PROVIDER/MODEL.")
@click.option("--skills", help="Comma-separated skills to prepend to the system prompt.")
@click.option("--resume", "resume", metavar="ID", help="Continue the conversation with this id.")
@click.option("--continue", "continue_latest", is_flag=True, help="Continue the latest one.")
@click.option("--max-iterations", type=click.IntRange(min=1), help="LLM calls allowed.")
@click.option("-y", "--yes", is_flag=True, help="Allow every tool call without asking.")
@SANDBOX
async def run(
    prompt: str,
    model: str | None,
    skills: str | None,
    resume: str | None,
    continue_latest: bool,
    max_iterations: int | None,
    yes: bool,
    sandbox: str | None,
) -> None:
    """Run one prompt headless: the answer streams to stdout, tool activity to stderr."""
    with without_anyio():  # a one-shot answer needs none of it (see foundation.startup)
        from openheim.headless import RunOptions, Terminal, run_headless
        from openheim.skills import parse_skill_names

    if resume and continue_latest:
        fail("--resume and --continue cannot be used together")
    options = RunOptions(
        prompt=prompt,
        model=model,
        skills=parse_skill_names(skills) if skills is not None else None,
        resume=resume,
        continue_latest=continue_latest,
        max_iterations=max_iterations,
        allow_all_tools=yes,
    )
    try:
        code = await run_headless(options, env=with_sandbox(sandbox), terminal=Terminal())
    except OpenheimError as exc:
        fail(exc)
    sys.exit(code)


@cli.command()
@click.option("--force", is_flag=True, help="Replace an existing config file.")
async def init(force: bool) -> None:
    """Write a commented default config to ~/.openheim/config.toml ($OPENHEIM_HOME)."""
    from openheim.config.paths import Paths
    from openheim.config.template import write_default_config

    paths = Paths.from_env()
    try:
        write_default_config(paths.config_file, force=force)
    except OpenheimError as exc:
        fail(exc)
    paths.skills_dir.mkdir(parents=True, exist_ok=True)
    click.echo(f"Wrote {paths.config_file}. Set your provider's API key variable, then try:")
    click.echo('  openheim run "List the files in the current directory"')


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="Print the rows as JSON, for scripts.")
async def doctor(as_json: bool) -> None:
    """Check the config, provider keys and endpoints, MCP servers and the history store.

    Prints one row per check with a fix for each failure; exits 1 if any check failed
    (warnings do not count). Keys and passwords are never shown.
    """
    from openheim.doctor import render_json, render_table, run_doctor

    report = await run_doctor(os.environ)
    if as_json:
        click.echo(render_json(report), nl=False)
    else:
        click.echo(render_table(report, colour=sys.stdout.isatty()), nl=False)
    sys.exit(1 if report.failed else 0)


@cli.group(name="mcp")
async def mcp_group() -> None:
    """MCP servers in the config."""


@mcp_group.command(name="import")
@click.argument("file")
@click.option("--dry-run", is_flag=True, help="Print the TOML that would be added; write nothing.")
async def mcp_import(file: str, dry_run: bool) -> None:
    """Add the servers of another client's MCP JSON file to the config.

    FILE is a Claude Desktop, Claude Code, Cursor, Windsurf, VS Code or Zed config (`-` reads
    stdin). New [mcp_servers.NAME] tables are appended; the file is never rewritten, and names
    it already has are skipped. With --dry-run, stdout is exactly the TOML that would be added.
    """
    from openheim.config import mcp_append, mcp_import
    from openheim.config.paths import Paths

    config_file = Paths.from_env().config_file
    try:
        source, text = mcp_append.read_source(file)
        result = mcp_import.parse_servers(text, source)
        configured = mcp_append.configured_names(config_file)
        new, skipped = mcp_append.split_new(result.servers, configured)
        toml_text = mcp_append.render_toml(new, source=mcp_append.origin(file))
        plan = mcp_append.plan_append(config_file, toml_text) if new else None
        if plan is not None and not dry_run:
            mcp_append.append_to_config(config_file, plan)
    except OpenheimError as exc:
        fail(exc)
    # With --dry-run stdout carries the TOML alone, so the report goes to stderr.
    report = sys.stderr if dry_run else sys.stdout
    for warning in result.warnings:
        click.echo(f"openheim: warning: {warning}", err=True)
    if dry_run:
        click.echo(toml_text, nl=False)
    verb = "would import" if dry_run else "imported"
    for server in new:
        click.echo(f"{verb} {mcp_append.describe(server)}", file=report)
    for name in skipped:
        click.echo(f"skipped {name}: already configured", file=report)
    if not result.servers:
        click.echo(f"no MCP servers to import in {source}", file=report)
    if plan is None:
        click.echo(f"{config_file} unchanged", file=report)
        return
    count = f"{len(new)} server{'s' if len(new) != 1 else ''}"
    created = " (a new file from the `openheim init` template)" if plan.original is None else ""
    if dry_run:
        click.echo(f"dry run: would add {count} to {config_file}{created}", file=report)
        return
    if mcp_append.holds_secrets(new) and mcp_append.readable_by_others(config_file):
        click.echo(
            f"openheim: warning: {config_file} now holds env/header values and other users "
            f"can read it; fix: chmod 600 {config_file}",
            err=True,
        )
    click.echo(f"added {count} to {config_file}{created}")


LOG_FORMAT = click.option(
    "--log-format",
    type=click.Choice(["text", "json"]),
    default=None,
    help="Log lines on stderr as text or JSON objects (default: OPENHEIM_LOG_FORMAT or text); "
    "the level is OPENHEIM_LOG.",
)


@cli.command()
@LOG_FORMAT
@SANDBOX
async def acp(log_format: str | None, sandbox: str | None) -> None:
    """Serve the Agent Client Protocol over stdio (for Zed and other ACP clients).

    stdout carries protocol messages only; logs go to stderr at the level in OPENHEIM_LOG
    (default: warning).
    """
    from openheim.acp.stdio import run_acp_stdio

    try:
        code = await run_acp_stdio(with_sandbox(sandbox), log_format=log_format)
    except OpenheimError as exc:
        fail(exc)
    sys.exit(code)


@cli.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to bind; anything but loopback needs [server] tokens.",
)
@click.option(
    "--port", default=1217, show_default=True, type=click.IntRange(0, 65535), help="0 = any free."
)
@click.option(
    "--store",
    metavar="URL",
    help="History store: postgresql://USER@HOST/DB for replicas sharing one database, or "
    "`file` (default; also set by OPENHEIM_STORE_URL or [store] url).",
)
@click.option(
    "--workers",
    default="1",
    show_default=True,
    metavar="N|auto",
    help="Server processes sharing the port; auto = one per core. SIGHUP restarts them.",
)
@click.option("--worker-index", type=int, hidden=True)
@click.option("--worker-fd", type=int, hidden=True)
@click.option("--worker-lifeline", type=int, hidden=True)
@click.option("--worker-dir", hidden=True)
@LOG_FORMAT
@SANDBOX
async def serve(
    host: str,
    port: int,
    store: str | None,
    workers: str,
    worker_index: int | None,
    worker_fd: int | None,
    worker_lifeline: int | None,
    worker_dir: str | None,
    log_format: str | None,
    sandbox: str | None,
) -> None:
    """Serve the multiplexed WebSocket (/ws, /acp) and the REST API (/api/...).

    Runs until SIGINT or SIGTERM, then cancels running turns, saves them and closes every
    socket with code 1001. Settings live in the [server] section of the config.
    """
    from pathlib import Path

    from openheim.server.app import run_server
    from openheim.server.listen import worker_count
    from openheim.server.worker_role import WorkerRole

    env = with_sandbox(sandbox)
    try:
        count = worker_count(workers)
    except ValueError as exc:
        fail(str(exc))
    role = None
    if worker_index is not None and worker_fd is not None and worker_lifeline and worker_dir:
        role = WorkerRole(worker_index, worker_fd, worker_lifeline, Path(worker_dir))
    try:
        if count > 1 and role is None:
            from openheim.server.supervisor import run_workers

            def worker_command(worker: WorkerRole) -> list[str]:
                command = [sys.executable, "-m", "openheim", "serve", "--host", host]
                command += ["--port", str(port), *worker.argv()]
                command += ["--store", store] if store else []
                return command + (["--log-format", log_format] if log_format else [])

            code = await run_workers(host, port, count, env, worker_command, log_format=log_format)
        else:
            code = await run_server(
                host, port, env, store_url=store, log_format=log_format, worker=role
            )
    except OpenheimError as exc:
        fail(exc)
    sys.exit(code)
