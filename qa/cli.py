"""The `qa` command: reads arguments, calls the library, prints its result objects.

Heavy modules are imported inside the commands so `qa --help` stays instant.
Domain errors (qa.errors) become one line on stderr and exit status 1.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from qa.errors import InvalidInput, QAError

INDEX_DIR_HELP = "Index directory (default: $QA_INDEX_DIR, else ./index)."
STORE_HELP = (
    "Keep the index in Milvus instead: milvus://HOST:PORT or milvus:///ABSOLUTE/PATH.db "
    "(Milvus Lite), optionally ?prefix=NAME (default: $QA_STORE, else the index directory)."
)


def _settings(index_dir: Path | None, store: str | None = None, **overrides: Any):
    import re

    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    from qa.settings import Settings

    values = {k: v for k, v in overrides.items() if v is not None}
    if index_dir is not None:
        values["index_dir"] = index_dir
    if store is not None:
        from qa.stores.uri import parse_store_uri

        parse_store_uri(store)  # InvalidInput: one line naming the accepted forms
        values["store"] = store
    try:
        return Settings(**values)
    except SettingsError as exc:  # a list setting (QA_FETCH_ALLOW...) that is not JSON
        found = re.search(r'field "(\w+)"', str(exc))
        name = f"QA_{found.group(1).upper()}" if found else "a QA_* variable"
        raise InvalidInput(f"{name} must be a JSON list, e.g. '[\"10.0.0.0/8\"]'") from None
    except ValidationError as exc:
        # A bad QA_* variable (or option): name it and say what it must be, in one line.
        first = exc.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "setting"
        why = first["msg"].removeprefix("Value error, ")
        if field == "store":  # the message names the URI itself, credentials left out
            raise InvalidInput(f"QA_STORE: {why}") from None
        raise InvalidInput(f"QA_{field.upper()}={first.get('input')!r}: {why}") from None


def clean_errors(func: Callable) -> Callable:
    """Domain errors and surprises end as one line and a non-zero exit, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except QAError as exc:
            raise click.ClickException(exc.message) from None
        except KeyboardInterrupt:
            click.echo("interrupted; the index is unchanged", err=True)
            sys.exit(130)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if os.environ.get("QA_DEBUG"):
                raise
            raise click.ClickException(
                f"unexpected {type(exc).__name__}: {exc} (set QA_DEBUG=1 for details)"
            ) from None

    return wrapper


index_dir_option = click.option(
    "--index-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help=INDEX_DIR_HELP,
)
store_option = click.option("--store", metavar="URI", default=None, help=STORE_HELP)
LOCAL_RAY = "local"  # `--ray` with no address: start a local cluster for the run


def filter_options(func: Callable) -> Callable:
    """--since, --until, --source and --article: which articles answers may quote."""
    options = [
        click.option(
            "--since",
            metavar="DATE",
            default=None,
            help="Only articles published on or after DATE (YYYY-MM-DD); not undated ones.",
        ),
        click.option(
            "--until",
            metavar="DATE",
            default=None,
            help="Only articles published on or before DATE (YYYY-MM-DD); not undated ones.",
        ),
        click.option(
            "--source", metavar="NAME", default=None, help="Only articles from this source."
        ),
        click.option(
            "--article",
            "articles",
            metavar="ID",
            multiple=True,
            help="Only this article (repeat for several).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _filters(since: str | None, until: str | None, source: str | None, articles: tuple[str, ...]):
    from qa.models import Filters

    return Filters.of(since=since, until=until, source=source, article=list(articles))


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qa")
def main() -> None:
    """Answer questions about a collection of articles by quoting them."""


def _is_url(arg: str) -> bool:
    return arg.lower().startswith(("http://", "https://"))


@main.command("index")
@click.argument("paths", nargs=-1)
@click.option(
    "--rebuild", is_flag=True, help="Re-chunk and re-embed every stored article (after an upgrade)."
)
@click.option(
    "--checkpoint",
    type=click.IntRange(min=0),
    default=0,
    metavar="N",
    help="Publish a version every N added or updated articles, so a killed run over a "
    "large export resumes where it stopped when run again (0: once, at the end).",
)
@click.option(
    "--ray",
    "ray_address",
    is_flag=False,
    flag_value=LOCAL_RAY,
    default=None,
    metavar="[ADDRESS]",
    help="Read, chunk and embed on Ray (pip install 'qa[ray]') into a Milvus --store: "
    "alone, a local cluster for this run; with ADDRESS (HOST:PORT, ray://HOST:PORT, "
    "auto), that cluster.",
)
@click.option(
    "--ray-workers",
    type=click.IntRange(min=1),
    default=2,
    show_default=True,
    help="Encoder actors on Ray (each one model on one thread).",
)
@index_dir_option
@store_option
@clean_errors
def index_cmd(
    paths: tuple[str, ...],
    rebuild: bool,
    checkpoint: int,
    index_dir: Path | None,
    store: str | None = None,
    ray_address: str | None = None,
    ray_workers: int = 2,
) -> None:
    """Add or update the articles in PATHS: files or folders (recursively), or URLs of
    an RSS/Atom feed, a sitemap or a page (each linked article is fetched).

    Formats: .txt, .md, .html/.htm, .json, .jsonl and .jsonl.gz (JSON lines of
    any size, read one article at a time). Unchanged articles are not
    re-embedded; edited ones replace their old version.
    """
    from qa.indexer import index_batches, read_file_batches, rebuild_index
    from qa.models import IndexReport
    from qa.readers import iter_article_files
    from qa.stores import open_store

    if ray_address is not None and _is_local_path(ray_address):
        # `qa index --ray PATH`: the option's optional value took the path.
        paths, ray_address = (*paths, ray_address), LOCAL_RAY
    settings = _settings(index_dir, store)
    if ray_address is not None:
        _index_on_ray(paths, ray_address, ray_workers, rebuild, checkpoint, settings)
        return
    target = open_store(settings)
    if rebuild:
        report = rebuild_index(target, export_onnx=settings.export_onnx)
        click.echo(
            f"{report.updated} articles rebuilt; {report.chunks} chunks in "
            f"{report.seconds:.1f} s → {target.location}"
        )
        if not paths:
            return
    elif not paths:
        raise click.UsageError("give at least one PATH or URL (or --rebuild)")
    urls = [p for p in paths if _is_url(p)]
    local = [Path(p) for p in paths if not _is_url(p)]
    files = list(iter_article_files(local)) if local else []
    if local and not files:
        raise click.ClickException("no article files found in " + ", ".join(map(str, local)))
    batches: list = []
    if urls:
        from qa.sources.refresh import collect_url

        for url in urls:  # a source that cannot be read at all stops here: nothing indexed
            collected = collect_url(url, settings)
            click.echo(f"{url}: {collected.listed} articles listed", err=True)
            batches.extend(collected.batches)
            batches.extend(("request", [], [p]) for p in collected.problems)

    def published(so_far: IndexReport) -> None:
        click.echo(
            f"checkpoint: {so_far.added} added, {so_far.updated} updated, "
            f"{so_far.unchanged} unchanged, {so_far.chunks} chunks in {so_far.seconds:.0f} s",
            err=True,
        )

    run = functools.partial(
        index_batches,
        [*batches, *read_file_batches(files)],
        target,
        export_onnx=settings.export_onnx,
        checkpoint=checkpoint,
        on_checkpoint=published,
    )
    if sys.stderr.isatty() and files:
        with click.progressbar(length=len(files), label="indexing", file=sys.stderr) as bar:
            report = run(on_file=lambda _p: bar.update(1))
    else:
        report = run()
    if report.problems and not (
        report.added or report.updated or report.unchanged or report.duplicates
    ):
        first = report.problems[0]
        more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
        raise click.ClickException(f"nothing indexed: {first}{more}")
    _echo_report(report, target.location)


def _echo_report(report: Any, location: str, how: str = "") -> None:
    for problem in report.problems:
        click.echo(f"skipped: {problem}", err=True)
    duplicates = f", {report.duplicates} duplicates" if report.duplicates else ""
    click.echo(
        f"{report.added} added, {report.updated} updated, {report.unchanged} unchanged"
        f"{duplicates}, {report.skipped} skipped; {report.chunks} chunks in "
        f"{report.seconds:.1f} s{how} → {location}"
    )


def _is_local_path(value: str) -> bool:
    return not _is_url(value) and Path(value).expanduser().exists()


def _index_on_ray(
    paths: tuple[str, ...],
    address: str,
    workers: int,
    rebuild: bool,
    checkpoint: int,
    settings: Any,
) -> None:
    """`qa index PATHS --ray [ADDRESS]`: the same report, the work done by Ray workers."""
    from qa.readers import iter_article_files
    from qa.stores import open_store

    if rebuild or checkpoint:
        raise click.UsageError("--ray does not combine with --rebuild or --checkpoint")
    if not paths:
        raise click.UsageError("give at least one PATH to index on Ray")
    if any(_is_url(p) for p in paths):
        raise click.UsageError("--ray indexes files and folders; index URLs without --ray")
    local = [Path(p) for p in paths]
    files = list(iter_article_files(local))
    if not files:
        raise click.ClickException("no article files found in " + ", ".join(paths))
    from qa.ray_ingest import index_with_ray

    target = open_store(settings)
    report = index_with_ray(
        local,
        target,  # InvalidInput unless a Milvus store: one line naming --store
        address=None if address == LOCAL_RAY else address,
        workers=workers,
        export_onnx=settings.export_onnx,
        files=files,
    )
    _echo_report(report, target.location, " on Ray")


@main.group("sources", invoke_without_command=True)
@index_dir_option
@store_option
@click.pass_context
def sources_group(ctx: click.Context, index_dir: Path | None, store: str | None = None) -> None:
    """Feeds, sitemaps, pages and folders kept in sync (default: list them)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(sources_list, index_dir=index_dir, store=store)


@sources_group.command("add")
@click.argument("location")
@click.option(
    "--every", default="1h", show_default=True, help="How often to refresh it: 30m, 2h, 1d..."
)
@click.option("--name", default=None, help="Source name given to its articles (for filters).")
@index_dir_option
@store_option
@clean_errors
def sources_add(
    location: str, every: str, name: str | None, index_dir: Path | None, store: str | None = None
) -> None:
    """Register LOCATION (a feed, sitemap or page URL, or a local folder) as a source.

    `qa refresh` reads it now; `qa serve` refreshes it whenever it is due.
    """
    from qa.sources.durations import parse_duration
    from qa.sources.registry import SourceRegistry

    settings = _settings(index_dir, store)
    seconds = parse_duration(every)
    if _is_url(location):
        import contextlib

        from qa.errors import FetchFailed
        from qa.fetch import Fetcher

        # A refused address is refused now, not at every refresh; no DNS answer today
        # is no reason to refuse (the refresh says so if it lasts).
        with contextlib.suppress(FetchFailed):
            Fetcher.from_settings(settings).vet(location)
        kind, where = "web", location.strip()
    else:
        folder = Path(location).expanduser()
        if not folder.is_dir():
            raise click.ClickException(f"{location}: not a folder (nor an http(s) URL)")
        kind, where = "folder", str(folder.resolve())
    if name is not None and not name.strip():
        raise click.ClickException("--name must not be empty")
    source = SourceRegistry(settings.index_dir).add(
        where, kind, seconds, name.strip() if name else None
    )
    click.echo(f"added source {source.id}: {where} (every {every}); `qa refresh` reads it now")


@sources_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@index_dir_option
@store_option
@clean_errors
def sources_list(
    as_json: bool = False, index_dir: Path | None = None, store: str | None = None
) -> None:
    """List sources: id, status, period, articles, last and next refresh, name, location."""
    from qa.render import sources_text
    from qa.sources.registry import SourceRegistry

    infos = [s.info() for s in SourceRegistry(_settings(index_dir, store).index_dir).all()]
    if as_json:
        click.echo(json.dumps([i.model_dump() for i in infos], indent=2, ensure_ascii=False))
        return
    if infos:
        click.echo(sources_text(infos))
    click.echo(f"{len(infos)} sources", err=True)


@sources_group.command("rm")
@click.argument("source")
@click.option("--prune", is_flag=True, help="Also remove the articles it indexed.")
@index_dir_option
@store_option
@clean_errors
def sources_rm(source: str, prune: bool, index_dir: Path | None, store: str | None = None) -> None:
    """Forget SOURCE (its id or location); its articles stay unless --prune."""
    from qa.indexer import remove_articles
    from qa.sources.refresh import refresh_lock
    from qa.sources.registry import SourceRegistry
    from qa.stores import open_store

    settings = _settings(index_dir, store)
    registry = SourceRegistry(settings.index_dir)
    with refresh_lock(settings.index_dir):  # never under a refresh of the same source
        found = registry.get(source)
        removed: list[str] = []
        if prune and found.article_ids():
            removed = remove_articles(open_store(settings), sorted(found.article_ids()))
        registry.remove(found)
    click.echo(f"removed source {found.id}: {found.location}; {len(removed)} articles removed")


@main.command("refresh")
@click.argument("source", required=False)
@click.option(
    "--prune", is_flag=True, help="Remove articles whose page or file is no longer listed."
)
@click.option("--json", "as_json", is_flag=True, help="Print the reports as JSON.")
@index_dir_option
@store_option
@clean_errors
def refresh_cmd(
    source: str | None, prune: bool, as_json: bool, index_dir: Path | None, store: str | None = None
) -> None:
    """Read every source again (or only SOURCE, by id or location) into the index.

    Each source is one update, published only when it could be read; a failed one is
    reported (and in `qa sources list`) and the others go on. Exit status 1 if any failed.
    """
    from qa.render import refresh_report_text
    from qa.sources.refresh import refresh_sources
    from qa.sources.registry import SourceRegistry

    settings = _settings(index_dir, store)
    registry = SourceRegistry(settings.index_dir)
    sources = [registry.get(source)] if source else registry.all()
    if not sources:
        raise click.ClickException("no sources: add one with `qa sources add URL`")
    reports = refresh_sources(sources, settings, prune=prune)
    if as_json:
        click.echo(json.dumps([r.model_dump() for r in reports], indent=2, ensure_ascii=False))
    else:
        for report in reports:
            click.echo(refresh_report_text(report))
            for problem in report.problems:
                click.echo(f"  page error: {problem}", err=True)
    if any(r.error for r in reports):
        sys.exit(1)


@main.command("ask")
@click.argument("question")
@click.option("--k", "k", type=click.IntRange(1, 20), default=None, help="Quotes to show (1-20).")
@click.option("--json", "as_json", is_flag=True, help="Print the Answer object as JSON.")
@filter_options
@index_dir_option
@store_option
@clean_errors
def ask_cmd(
    question: str,
    k: int | None,
    as_json: bool,
    since: str | None,
    until: str | None,
    source: str | None,
    articles: tuple[str, ...],
    index_dir: Path | None,
    store: str | None = None,
) -> None:
    """Answer QUESTION with quotes from the indexed articles."""
    from qa.answering import Answerer

    filters = _filters(since, until, source, articles)
    answer = Answerer(_settings(index_dir, store)).ask(question, k, filters=filters)
    if as_json:
        click.echo(answer.model_dump_json(indent=2))
        return
    from qa.render import answer_text

    click.echo(answer_text(answer, bold=sys.stdout.isatty()))  # bold: the words that answer


@main.command("chat")
@click.option(
    "--k", "k", type=click.IntRange(1, 20), default=None, help="Quotes per answer (1-20)."
)
@click.option("--json", "as_json", is_flag=True, help="Print each Answer as one JSON line.")
@click.option(
    "--history-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where typed questions are kept for Up-arrow recall "
    "(default: $XDG_STATE_HOME/qa/chat-history, else ~/.local/state/qa/chat-history).",
)
@click.option("--no-history", is_flag=True, help="Keep typed questions in memory only.")
@filter_options
@index_dir_option
@store_option
@clean_errors
def chat_cmd(
    k: int | None,
    as_json: bool,
    history_file: Path | None,
    no_history: bool,
    since: str | None,
    until: str | None,
    source: str | None,
    articles: tuple[str, ...],
    index_dir: Path | None,
    store: str | None = None,
) -> None:
    """Chat with the articles: questions and follow-ups, one per line (/help at the prompt).

    From a terminal: a prompt with line editing and history, Ctrl-D to leave.
    From a pipe: each line read is answered in turn, with no prompt.
    """
    from qa.terminal_chat import ChatSession, default_history_file, run_chat

    filters = _filters(since, until, source, articles)
    session = ChatSession.start(_settings(index_dir, store), k, filters)
    history = None if no_history else history_file or default_history_file()
    run_chat(session, as_json=as_json, history_file=history)


@main.group("articles", invoke_without_command=True)
@index_dir_option
@store_option
@click.pass_context
def articles_group(ctx: click.Context, index_dir: Path | None, store: str | None = None) -> None:
    """List, show or remove indexed articles (default: list)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(articles_list, index_dir=index_dir, store=store)


@articles_group.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@index_dir_option
@store_option
@clean_errors
def articles_list(
    as_json: bool = False, index_dir: Path | None = None, store: str | None = None
) -> None:
    """List indexed articles: id, chunks, title."""
    from qa.stores import open_store

    snap = open_store(_settings(index_dir, store)).open()
    items = snap.articles()
    if as_json:
        click.echo(json.dumps([a.model_dump() for a in items], indent=2, ensure_ascii=False))
        return
    for a in items:
        click.echo(f"{a.id}\t{a.chunks}\t{a.title}")
    click.echo(f"{len(items)} articles, {snap.n_chunks} chunks", err=True)


@articles_group.command("show")
@click.argument("article_id")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@index_dir_option
@store_option
@clean_errors
def articles_show(
    article_id: str, as_json: bool, index_dir: Path | None, store: str | None = None
) -> None:
    """Print one article's title, metadata and text."""
    from qa.stores import open_store

    article = open_store(_settings(index_dir, store)).open().article(article_id)
    if as_json:
        click.echo(article.model_dump_json(indent=2))
        return
    click.echo(article.title)
    for field in ("id", "url", "published", "author", "source"):
        value = getattr(article, field)
        if value:
            click.echo(f"{field}: {value}")
    click.echo()
    click.echo(article.text)


@articles_group.command("rm")
@click.argument("article_ids", nargs=-1, required=True)
@index_dir_option
@store_option
@clean_errors
def articles_rm(
    article_ids: tuple[str, ...], index_dir: Path | None, store: str | None = None
) -> None:
    """Remove articles by id."""
    from qa.indexer import remove_articles
    from qa.stores import open_store

    removed = remove_articles(open_store(_settings(index_dir, store)), list(article_ids))
    missing = [a for a in article_ids if a not in removed]
    for a in removed:
        click.echo(f"removed {a}")
    if missing:
        raise click.ClickException("no such article: " + ", ".join(missing))


@main.command("eval")
@click.argument("questions_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--k", "k", type=click.IntRange(1, 20), default=3, help="Quotes per answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--misses", is_flag=True, help="List the questions answered wrongly.")
@index_dir_option
@store_option
@clean_errors
def eval_cmd(
    questions_file: Path,
    k: int,
    as_json: bool,
    misses: bool,
    index_dir: Path | None,
    store: str | None = None,
) -> None:
    """Measure answers on QUESTIONS_FILE (seed JSON lines, SQuAD JSON, or conversations:
    JSON lines of {"turns": [{"question", "answers", "standalone"}]}) over the index."""
    from qa.answering import Answerer
    from qa.evaluation import evaluate, is_conversation_file, load_questions

    if not questions_file.is_file():
        raise click.ClickException(f"{questions_file}: no such file")
    if is_conversation_file(questions_file):
        _eval_conversations(questions_file, k, as_json, misses, index_dir, store)
        return
    report = evaluate(Answerer(_settings(index_dir, store)), load_questions(questions_file), k)
    if as_json:
        click.echo(report.model_dump_json(indent=2, exclude=set() if misses else {"misses"}))
        return

    from qa.render import eval_report_text

    click.echo(eval_report_text(report, k, misses))


def _eval_conversations(
    path: Path,
    k: int,
    as_json: bool,
    misses: bool,
    index_dir: Path | None,
    store: str | None = None,
) -> None:
    from qa.answering import Answerer
    from qa.evaluation import evaluate_conversations, load_conversations

    conversations = load_conversations(path)
    # No answer cache: the same questions are asked three ways and timed.
    answerer = Answerer(_settings(index_dir, store, answer_cache=0))
    report = evaluate_conversations(answerer, conversations, k)
    if as_json:
        click.echo(report.model_dump_json(indent=2, exclude=set() if misses else {"misses"}))
        return

    from qa.render import conversation_report_text

    click.echo(conversation_report_text(report, misses))


@main.command("serve")
@click.option("--host", default=None, help="Address to bind (default 127.0.0.1).")
@click.option("--port", type=click.IntRange(1, 65535), default=None, help="Port (default 8000).")
@index_dir_option
@store_option
@clean_errors
def serve_cmd(
    host: str | None, port: int | None, index_dir: Path | None, store: str | None = None
) -> None:
    """Serve the web chat at /, the JSON API under /api and the MCP server at /mcp."""
    import uvicorn

    from qa.web.app import create_app

    settings = _settings(index_dir, store, host=host, port=port)
    app = create_app(settings)
    click.echo(f"qa: open http://{settings.host}:{settings.port}/ (Ctrl+C to stop)", err=True)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        proxy_headers=False,
        server_header=False,
    )


@main.command("mcp")
@index_dir_option
@store_option
@clean_errors
def mcp_cmd(index_dir: Path | None, store: str | None = None) -> None:
    """Serve the MCP tools (ask, list_articles, get_article) over stdin/stdout.

    For an assistant that starts qa itself; stdout carries only the protocol.
    """
    from qa.answering import Answerer
    from qa.web.app import warm_up
    from qa.web.mcp_server import run_stdio

    answerer = Answerer(_settings(index_dir, store))
    warm_up(answerer)  # a missing index is logged, and each tool call says so too
    run_stdio(answerer)


if __name__ == "__main__":  # pragma: no cover
    main()
