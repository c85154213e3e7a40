"""lienthong: the command line, and the composition root.

This is the only module that wires the parts together and configures logging. Server commands
(serve, db upgrade, deliveries, demo, agencies list, validate) read the hub's configuration;
agency commands (send, inbox, fetch, attachments, ack, status, trace) talk to a running hub over
HTTP, as an agency would.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import logging
import os
import signal
import sys
import time
import tomllib
from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapters.sdk import AgencyClient, Credentials, HubError
from adapters.tables import documents_table, inbox_table, trace_table
from hub.config import DEFAULT_CONFIG, load_settings
from hub.errors import ConfigError, LienthongError
from tracking.files import write_atomically

if TYPE_CHECKING:
    from cryptography import x509

    from hub.config import Settings

EXIT_OK, EXIT_INVALID, EXIT_USAGE, EXIT_CONFIG, EXIT_HUB = 0, 1, 2, 3, 4


def _config_path(args: argparse.Namespace) -> Path:
    return Path(args.config or os.environ.get("LIENTHONG_CONFIG") or DEFAULT_CONFIG)


def _demo_root(args: argparse.Namespace) -> Path:
    """Where demo keys and credentials live: the project's var/demo, next to config/."""
    explicit = os.environ.get("LIENTHONG_DEMO_DIR")
    return (
        Path(explicit) if explicit else _config_path(args).resolve().parent.parent / "var" / "demo"
    )


def _configure_logging(verbose: bool, fmt: str = "text", level: str = "warning") -> None:
    from hub import logs

    logs.configure(fmt, "debug" if verbose else level)


def _raw_config(args: argparse.Namespace) -> dict[str, Any]:
    """The hub configuration as written, without loading the keys and certificates it names:
    for commands that need a value of it before (or without) the hub's own material."""
    config = _config_path(args)
    try:
        with config.open("rb") as fh:
            return tomllib.load(fh)
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(str(config), "-", f"cannot read: {exc}") from exc


def _agencies_file(args: argparse.Namespace, data: dict[str, Any]) -> Path:
    """The directory file, found as the hub finds it (hub.config): relative to the config."""
    name = os.environ.get("LIENTHONG_DIRECTORY_FILE") or data.get("directory", {}).get(
        "file", "agencies.toml"
    )
    return _config_path(args).parent / name


# --- agency commands -------------------------------------------------------------------------


def _hub_url(args: argparse.Namespace) -> str:
    if args.hub:
        return str(args.hub)
    if os.environ.get("LIENTHONG_HUB_URL"):
        return os.environ["LIENTHONG_HUB_URL"]
    listen = os.environ.get("LIENTHONG_HUB_LISTEN")
    if not listen:
        try:
            listen = _raw_config(args).get("hub", {}).get("listen")
        except ConfigError:  # an agency machine need not have the hub's configuration
            listen = None
    return f"http://{listen or '127.0.0.1:8780'}"


def _credentials(args: argparse.Namespace, code: str) -> Credentials:
    folder = _demo_root(args) / "agencies" / code

    def read(explicit: str | None, default: Path, what: str, required: bool) -> bytes | None:
        path = Path(explicit) if explicit else default
        try:
            return path.read_bytes()
        except FileNotFoundError:
            # A file the user named must exist; only the demo defaults may be absent.
            if required or explicit:
                raise ConfigError(
                    str(path), what, f"not found; pass --{what} or run `lienthong demo init`"
                ) from None
            return None

    token = os.environ.get("LIENTHONG_CREDENTIAL")
    if not token:
        raw = read(
            getattr(args, "credential_file", None), folder / "credential", "credential-file", True
        )
        assert raw is not None
        token = raw.decode().strip()
    return Credentials(
        code=code,
        token=token,
        key_pem=read(getattr(args, "key", None), folder / "key.pem", "key", False),
        cert_pem=read(getattr(args, "cert", None), folder / "cert.pem", "cert", False),
    )


def _client(args: argparse.Namespace) -> AgencyClient:
    return AgencyClient(_hub_url(args), _credentials(args, args.as_code))


def _print_json(data: Any) -> None:
    print(json.dumps(data, ensure_ascii=False, indent=2))


async def cmd_send(args: argparse.Namespace) -> int:
    try:
        package = await asyncio.to_thread(Path(args.file).read_bytes)
    except OSError as exc:
        print(f"lienthong send: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    async with _client(args) as client:
        signed = package if args.no_sign else client.sign(package)
        receipt = await client.send_document(signed)
    if args.json:
        _print_json(receipt)
    else:
        print(
            f"accepted: document {receipt['document_id']}"
            + (" (already received earlier)" if receipt["duplicate"] else "")
        )
        for d in receipt["deliveries"]:
            print(f"  → {d['recipient']}: delivery {d['delivery_id']} ({d['state']})")
        print(f"  package sha256 {receipt['receipt']['package_sha256']}")
        proof = receipt.get("signed_receipt")
        if proof:
            print(f"  signed receipt {proof['receipt_id']} (keep it: `--json` prints it)")
    return EXIT_OK


async def cmd_inbox(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        items = await client.inbox(wait=args.wait, limit=args.limit, lease=args.lease)
    _print_json(items) if args.json else print(inbox_table(items))
    return EXIT_OK


async def cmd_fetch(args: argparse.Namespace) -> int:
    if args.receipt:
        href = f"/v1/receipts/{args.id}"
    else:
        href = f"/v1/status/{args.id}" if args.status else f"/v1/documents/{args.id}"
    async with _client(args) as client:
        data = await client.fetch(href)
    if args.out:
        await asyncio.to_thread(Path(args.out).write_bytes, data)
        print(f"wrote {len(data)} bytes to {args.out}")
    else:
        sys.stdout.buffer.write(data)
    return EXIT_OK


async def cmd_attachments(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        package = await client.fetch(f"/v1/documents/{args.document_id}")
    try:
        return await asyncio.to_thread(_save_attachments, package, Path(args.out))
    except LienthongError as exc:
        print(f"lienthong attachments: cannot read the package: {exc.detail}", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_INVALID


def _save_attachments(package: bytes, out: Path) -> int:
    """Decode every attachment of *package* and write it into *out*; one line per file."""
    from hub.edxml.attachments import AttachmentError, decode, safe_filename
    from hub.edxml.reader import read_document
    from hub.xmlsafe import parse

    pkg = read_document(parse(package))
    if not pkg.attachments:
        print("the document has no attachments")
        return EXIT_OK
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        print(f"lienthong attachments: cannot create {out}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    taken: set[str] = set()
    failed = 0
    for att in pkg.attachments:
        try:
            decoded = decode(att)
        except AttachmentError as exc:
            failed += 1
            print(f"lienthong attachments: not written: {exc.code}: {exc.detail}", file=sys.stderr)
            continue
        name = safe_filename(decoded.name, taken)
        taken.add(name)
        write_atomically(out, name, decoded.data, durable=False)
        how = f"zipped (entry {decoded.entry_name})" if decoded.zipped else "not zipped"
        print(
            f"{name}: {decoded.size} bytes, sha256 {decoded.sha256}, {how}"
            + (f", sent as {decoded.name!r}" if name != decoded.name else "")
            + (f" ({decoded.note})" if decoded.note else "")
        )
    return EXIT_INVALID if failed else EXIT_OK


async def cmd_ack(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        answer = await client.ack(
            args.delivery_id, "fail" if args.fail else "done", args.fail or ""
        )
    print(
        f"delivery {answer['delivery_id']}: {answer['state']}"
        + ("" if answer["changed"] else " (unchanged)")
    )
    return EXIT_OK


async def cmd_status(args: argparse.Namespace) -> int:
    from hub.edxml.model import StatusCode

    try:
        code = StatusCode(args.code)
    except ValueError:
        allowed = ", ".join(c.value for c in StatusCode)
        print(f"lienthong status: {args.code!r} is not a status code ({allowed})", file=sys.stderr)
        return EXIT_USAGE
    async with _client(args) as client:
        answer = await client.report(
            args.document_id, code, args.reason or "", about_recipient=args.to
        )
    print(
        f"status {answer['code']} recorded ({answer['status_id']}); "
        f"routed to {answer['delivery']['recipient']}"
    )
    return EXIT_OK


async def cmd_trace(args: argparse.Namespace) -> int:
    async with _client(args) as client:
        trace = await client.trace(args.document_id)
    _print_json(trace) if args.json else print(trace_table(trace))
    return EXIT_OK


async def cmd_search(args: argparse.Namespace) -> int:
    filters = {
        key: getattr(args, key) or ""
        for key in ("sender", "recipient", "state", "status", "since", "until", "q")
    }
    items: list[dict[str, Any]] = []
    cursor = args.cursor
    async with _client(args) as client:
        while True:
            page = await client.search(**filters, limit=str(args.limit), cursor=cursor)
            items += page["items"]
            cursor = page["next_cursor"] or ""
            if not cursor or not args.all:
                break
    if args.json:
        _print_json({"items": items, "next_cursor": cursor or None})
        return EXIT_OK
    print(documents_table(items))
    if cursor:
        print(f"\nmore: --all, or --cursor {cursor}", file=sys.stderr)
    return EXIT_OK


# --- hub commands ----------------------------------------------------------------------------


def cmd_validate(args: argparse.Namespace) -> int:
    """The report of POST /v1/validate for FILE (schema.report_for), without a hub: the policy
    is the configured one ([validation] of hub.toml) if there is a configuration, else the
    defaults; the signature is judged only as far as no certificate is needed."""
    from hub.config import load_validation_policy
    from hub.edxml.schema import ValidationPolicy, report_for
    from hub.errors import Problem

    try:
        data = Path(args.file).read_bytes()
    except OSError as exc:
        print(f"lienthong validate: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    config = _config_path(args)
    if config.is_file():
        # A bad [validation] value is a configuration error (exit 3), as at hub start-up.
        policy, source = load_validation_policy(config), str(config)
    else:
        policy, source = ValidationPolicy(), f"defaults (no hub configuration at {config})"
    report = report_for(data, args.kind, policy)
    if args.json:
        _print_json({"file": args.file, **report, "policy": {"source": source, **policy.as_dict()}})
        return EXIT_OK if report["valid"] else EXIT_INVALID

    label = {"edoc": "document package", "status": "status package"}.get(report["kind"], "")
    errors, warnings = report["errors"], report["warnings"]
    if report["valid"]:
        head = f"valid {label}"
        if warnings:
            head += f" with {len(warnings)} warning{'s' if len(warnings) > 1 else ''}"
    else:
        what = {
            "xml.malformed": "not well-formed XML",
            "xml.forbidden": "uses an XML feature the hub refuses",
            "package.kind": "not the kind of package asked for",
        }.get(report["code"], "breaks the edXML schema or the validation policy")
        head = f"INVALID {label}".rstrip() + f" ({report['code']}: {what})"
    print(f"{args.file}: {head}")
    for severity, problems in (("error", errors), ("warning", warnings)):
        for problem in problems:  # "line N[:col], path: explanation"
            print(f"  {severity:<8} {Problem(**problem)}")
    signature = report["signature"]
    if signature["checked"]:
        verdict = (
            "valid"
            if signature["valid"]
            else f"{signature['problem']['code']}: {signature['problem']['detail']}"
        )
    elif report["code"] in ("xml.malformed", "xml.forbidden"):
        verdict = "not checked (the package could not be read)"
    else:
        verdict = (
            "not verified here: the hub verifies it against the sender's registered "
            "certificates (POST /v1/validate as the sending agency)"
        )
    print(f"  signature: {verdict}")
    changed = [
        f"{k}={v}" for k, v in policy.as_dict().items() if getattr(ValidationPolicy(), k) != v
    ]
    print(f"  policy: {source}" + (f" ({', '.join(changed)})" if changed else ""))
    return EXIT_OK if report["valid"] else EXIT_INVALID


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from tracking.migrate import upgrade

    settings = load_settings(_config_path(args))
    upgrade(settings.database_url)
    print(f"database is up to date ({settings.database_url})")
    return EXIT_OK


class _Progress:
    """A progress line on stderr for long work: redrawn in place on a terminal, a line every
    *every* items otherwise (so a log shows the job is alive), nothing with *quiet*."""

    def __init__(self, what: str, total: int | None, *, quiet: bool = False, every: int = 0):
        self.what, self.total, self.quiet = what, total, quiet
        self.interactive = sys.stderr.isatty()
        self.every = every
        self._next = every
        self._start = time.monotonic()

    def __call__(self, count: int) -> None:
        if self.quiet:
            return
        elapsed = time.monotonic() - self._start
        if self.interactive:
            bar = ""
            if self.total:
                done = min(count / self.total, 1.0)
                bar = f"[{'#' * int(done * 30):<30}] "
            total = f"/{self.total:,}" if self.total else ""
            line = f"\r  {bar}{count:,}{total} {self.what}  {elapsed:.1f} s"
            print(line, end="", file=sys.stderr, flush=True)
        elif self.every and count >= self._next:
            print(f"  {count:,} {self.what}  {elapsed:.1f} s", file=sys.stderr, flush=True)
            self._next = count + self.every

    def done(self) -> None:
        if self.interactive and not self.quiet:
            print(file=sys.stderr)


async def cmd_audit_verify(args: argparse.Namespace) -> int:
    from hub.checkpoints import audit
    from hub.server import open_store

    certificate = _hub_certificate(args, "audit verify")
    if certificate is None:
        return EXIT_USAGE
    settings = load_settings(_config_path(args))
    store = await open_store(settings)
    progress = _Progress("events verified", None, quiet=args.json)
    try:
        result = await audit(store, certificate, settings.hub_id, progress)
    finally:
        await store.close()
    progress.done()
    report, last = result.chain, result.last_checkpoint
    problem = report.problem
    if args.json:
        _print_json(
            {
                "intact": report.intact,
                "events": report.events,
                "head_seq": report.head_seq,
                "head_hash": report.head_hash,
                "purged": report.purged,
                "checkpoints": result.checkpoints,
                "last_checkpoint": None
                if last is None
                else {"seq": last.seq, "signed_at": last.signed_at.isoformat()},
                "problem": None
                if problem is None
                else {"what": problem.what, "seq": problem.seq, "message": problem.message},
            }
        )
    elif problem is None:
        print(f"audit chain intact: {report.events} events, head {report.head_hash}")
        if report.purged:
            print(
                f"  {report.purged} of them purged by retention (tombstones: their links and "
                "hashes verified, their content archived)"
            )
        if last is None:
            print("  no signed checkpoint yet: the hub signs the head on a schedule")
        else:
            print(
                f"  {result.checkpoints} signed checkpoint"
                f"{' matches' if result.checkpoints == 1 else 's match'}; the last one covers "
                f"event {last.seq} ({last.signed_at.isoformat()}); events after it are checked by "
                "their links only"
            )
    else:
        print(f"audit chain BROKEN at event {problem.seq}: {problem.message}")
        print(f"  the {report.events} events before it verify")
    return EXIT_OK if problem is None else EXIT_INVALID


async def cmd_agencies_import(args: argparse.Namespace) -> int:
    from hub import national
    from hub.server import open_store

    path = Path(args.file)
    try:
        data = await asyncio.to_thread(path.read_bytes)
        text = national.open_text(data)
    except OSError as exc:
        print(f"cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except UnicodeDecodeError as exc:
        print(f"{path} is not UTF-8 text (byte {exc.start})", file=sys.stderr)
        return EXIT_INVALID
    json_lines = args.format == "jsonl" or (args.format == "auto" and path.suffix == ".jsonl")
    lines = max(data.count(b"\n") - (0 if json_lines else 1), 1)
    settings = load_settings(_config_path(args))
    store = await open_store(settings)
    progress = _Progress("agencies", lines, quiet=args.json, every=20_000)
    try:
        rows = national.read_entries(text, json_lines=json_lines)
        result = await national.import_entries(
            store.engine, rows, replace=args.replace, progress=progress
        )
    except ValueError as exc:
        progress.done()
        print(f"{path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        await store.close()
    progress.done()
    if args.json:
        _print_json(
            {
                "imported": result.imported,
                "removed": result.removed,
                "total": result.total,
                "skipped": [{"line": p.line, "message": p.message} for p in result.problems],
            }
        )
    else:
        print(
            f"imported {result.imported:,} agencies from {path} "
            f"({result.total:,} in the directory"
            + (f", {result.removed:,} no longer listed removed" if args.replace else "")
            + ")"
        )
        for problem in result.problems[:20]:
            print(f"  line {problem.line}: skipped: {problem.message}")
        if len(result.problems) > 20:
            print(f"  … and {len(result.problems) - 20:,} more rows skipped (see --json)")
        print("Restart the hub (every node) to use the new directory.")
    return EXIT_OK


def cmd_agencies_list(args: argparse.Namespace) -> int:
    from adapters.tables import table
    from hub.config import load_agencies, load_groups
    from hub.directory import Directory

    path = _agencies_file(args, _raw_config(args))
    agencies = load_agencies(path, os.environ)
    # Expanded as the hub expands them, so what is listed is what a package to a group reaches.
    directory = Directory.from_config(agencies, str(path), load_groups(path))
    if args.json:
        _print_json(
            [
                {
                    "code": a.code,
                    "name": a.name,
                    "role": a.role,
                    "parent": a.parent,
                    "delivery": "peer" if a.via else a.delivery,
                    "via": a.via or None,
                }
                for a in agencies
            ]
            + [
                {"code": g.code, "name": g.name, "role": "group", "members": list(g.members)}
                for g in directory.groups
            ]
        )
        return EXIT_OK
    print(
        table(
            ["code", "name", "role", "parent", "delivery"],
            [
                [
                    a.code,
                    a.name,
                    a.role,
                    a.parent or "-",
                    f"via {a.via}" if a.via else a.delivery if a.role == "agency" else "-",
                ]
                for a in agencies
            ],
        )
    )
    if directory.groups:
        print()
        print(
            table(
                ["group", "name", "members"],
                [[g.code, g.name, ", ".join(g.members)] for g in directory.groups],
            )
        )
    return EXIT_OK


async def _operate(
    args: argparse.Namespace, action: Callable[[Any], Coroutine[Any, Any, int]]
) -> int:
    """Run *action* on a context over the hub's own database (no server, no keys): what the
    operator commands share. A running hub sees the changes at its next poll."""
    from hub.context import HubContext
    from hub.directory import Directory
    from hub.server import open_store

    settings = load_settings(_config_path(args))
    store = await open_store(settings)
    try:
        ctx = HubContext(
            hub_id=settings.hub_id,
            store=store,
            directory=Directory.from_config(
                settings.agencies, str(settings.agencies_path), settings.groups
            ),
            delivery=settings.delivery,
        )
        return await action(ctx)
    finally:
        await store.close()


def _delivery_rows(items: list[dict[str, Any]]) -> str:
    from adapters.tables import table

    return table(
        ["delivery", "kind", "recipient", "state", "attempts", "queued at", "last error"],
        [
            [
                i["delivery_id"],
                i["kind"],
                i["recipient"],
                i["state"],
                str(i["attempts"]),
                i["created_at"][:19],
                i["last_error"] or "-",
            ]
            for i in items
        ],
    )


async def cmd_deliveries_list(args: argparse.Namespace) -> int:
    from hub import operations
    from hub.states import Transport

    if args.state is not None and args.state not in {t.value for t in Transport}:
        states = ", ".join(t.value for t in Transport)
        print(
            f"lienthong deliveries list: {args.state!r} is not a state ({states})", file=sys.stderr
        )
        return EXIT_USAGE

    async def action(ctx: Any) -> int:
        items = await operations.list_deliveries(
            ctx, agency=args.agency, state=args.state, limit=args.limit
        )
        if args.json:
            _print_json(items)
        elif items:
            print(_delivery_rows(items))
        else:
            print("no deliveries match")
        return EXIT_OK

    return await _operate(args, action)


async def cmd_deliveries_resend(args: argparse.Namespace) -> int:
    import getpass

    from hub import operations

    if bool(args.id) == bool(args.failed):
        print(
            "lienthong deliveries resend: give a delivery ID, or --failed --agency CODE",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if args.failed and not args.agency:
        print("lienthong deliveries resend: --failed needs --agency CODE", file=sys.stderr)
        return EXIT_USAGE
    by = args.by or getpass.getuser()

    async def action(ctx: Any) -> int:
        if args.failed:
            if ctx.directory.get(args.agency) is None:
                print(
                    f"lienthong deliveries resend: {args.agency} is not in the directory",
                    file=sys.stderr,
                )
                return EXIT_USAGE
            items = await operations.resend_undelivered(ctx, args.agency, by)
        else:
            try:
                items = [await operations.resend(ctx, args.id, by)]
            except LienthongError as exc:
                print(f"lienthong deliveries resend: {exc.code}: {exc.detail}", file=sys.stderr)
                return EXIT_INVALID
        if args.json:
            _print_json(items)
            return EXIT_OK
        for item in items:
            how = "pushed again" if item["next_attempt_at"] else "back in its inbox"
            print(f"resent {item['delivery_id']} to {item['recipient']} ({item['kind']}): {how}")
        if not items:
            print(f"no dead, failed or expired deliveries to {args.agency}")
        return EXIT_OK

    return await _operate(args, action)


async def cmd_maintenance(args: argparse.Namespace) -> int:
    """Maintenance mode on, off, or its status (hub.maintenance), on the hub's database."""
    import getpass

    from hub import maintenance

    if args.retry_after is not None and args.retry_after < 1:
        print("lienthong maintenance: --retry-after must be at least 1", file=sys.stderr)
        return EXIT_USAGE

    async def action(ctx: Any) -> int:
        by = args.by or getpass.getuser()
        if args.action == "on":
            retry_after = args.retry_after or maintenance.DEFAULT_RETRY_AFTER
            state = await maintenance.turn_on(ctx.store, by, args.reason or "", retry_after)
        elif args.action == "off":
            was = await maintenance.turn_off(ctx.store, by)
            state = None
            if not args.json:
                print("maintenance mode off" if was else "maintenance mode was already off")
                return EXIT_OK
        else:
            state = await maintenance.current(ctx.store)
        if args.json:
            _print_json({"maintenance": state is not None, **(state.as_dict() if state else {})})
        elif state is None:
            print("maintenance mode off: the hub takes packages")
        else:
            reason = f": {state.reason}" if state.reason else ""
            print(
                f"maintenance mode on since {state.set_at.isoformat(timespec='seconds')} "
                f"(by {state.set_by}{reason}); intake answers 503 with Retry-After "
                f"{state.retry_after} s"
            )
        return EXIT_OK

    return await _operate(args, action)


async def _serve_until_stopped(running: Any) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await running.close()


async def cmd_adapter(args: argparse.Namespace) -> int:
    from adapters.launch import launch
    from adapters.registry import UnknownAdapter

    if not args.verbose:  # a long-running adapter says what it did: one line per file
        logging.getLogger("adapters").setLevel(logging.INFO)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await launch(args.adapter, Path(args.adapter_config), stop)
    except UnknownAdapter as exc:
        print(f"lienthong: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return EXIT_OK


async def cmd_serve(args: argparse.Namespace) -> int:
    from hub import server

    settings = load_settings(_config_path(args))
    _configure_logging(args.verbose, args.log_format or settings.log_format, settings.log_level)
    running = await server.start(settings)
    print(
        f"Lienthong hub {settings.hub_id} serving at {running.url} "
        f"(database {settings.database_url})",
        flush=True,
    )
    await _serve_until_stopped(running)
    return EXIT_OK


def _init_demo(args: argparse.Namespace, force: bool = False) -> None:
    from hub.demo import directory_entries, init_material

    data = _raw_config(args)
    root = _demo_root(args)
    created = init_material(
        root,
        directory_entries(_agencies_file(args, data)),
        data.get("hub", {}).get("id", "lienthong"),
        force=force,
        progress=lambda msg: print(f"  {msg}", flush=True),
    )
    if created:
        print(f"demo material for {created} account(s) is in {root}", flush=True)


async def cmd_demo(args: argparse.Namespace) -> int:
    from adapters.demo import PARTICIPANTS, run_exchange
    from hub import server
    from tracking.migrate import upgrade

    _init_demo(args)
    settings = load_settings(_config_path(args))
    print(f"preparing the database {settings.database_url}", flush=True)
    await asyncio.to_thread(upgrade, settings.database_url)
    running = await server.start(settings)
    print(f"hub {settings.hub_id} serving at {running.url}\n", flush=True)
    try:
        creds = {code: _credentials(args, code) for code in PARTICIPANTS}
        doc_ids = await run_exchange(
            running.url,
            creds,
            say=lambda m: print(m, flush=True),
            hub_certificate=running.context.receipt_signer.certificate,
        )
        print()
        for doc_id, sender in zip(doc_ids, ("000.00.00.H26", "000.00.31.H26"), strict=True):
            async with AgencyClient(running.url, creds[sender]) as client:
                print(trace_table(await client.trace(doc_id)) + "\n", flush=True)
    except BaseException:
        await running.close()
        raise
    if args.exit:
        await running.close()
        return EXIT_OK
    print(
        f"The hub keeps serving at {running.url} — try:\n"
        f"  .venv/bin/lienthong trace {doc_ids[0]} --as 000.00.00.H26\n"
        "Press Ctrl+C to stop.",
        flush=True,
    )
    await _serve_until_stopped(running)
    return EXIT_OK


def cmd_demo_init(args: argparse.Namespace) -> int:
    _init_demo(args, force=args.force)
    print("demo material is ready", flush=True)
    return EXIT_OK


# --- keys, certificates, receipts ------------------------------------------------------------


def _ca_dir(args: argparse.Namespace) -> Path:
    return Path(args.ca) if args.ca else _demo_root(args) / "ca"


def _agency_entry(args: argparse.Namespace, code: str) -> tuple[Path, str]:
    """The directory file and the configured name of agency *code* (a usage error if none)."""
    from hub.demo import directory_entries

    agencies_file = _agencies_file(args, _raw_config(args))
    for entry in directory_entries(agencies_file):
        if entry.code == code:
            if entry.role != "agency":
                raise ConfigError(str(agencies_file), f"agency {code}", "is not an agency")
            return agencies_file, entry.name
    raise ConfigError(str(agencies_file), "agency", f"{code} is not in the directory")


def _describe_cert(path: Path) -> str:
    from signing.pki import fingerprint, load_certificate

    cert = load_certificate(path.read_bytes())
    return (
        f"{path}\n    {cert.subject.rfc4514_string()}\n    {fingerprint(cert)}, valid "
        f"{cert.not_valid_before_utc:%Y-%m-%d} to {cert.not_valid_after_utc:%Y-%m-%d}"
    )


def cmd_keys_init_ca(args: argparse.Namespace) -> int:
    from signing.authority import init_ca

    folder = Path(args.dir) if args.dir else _ca_dir(args)
    try:
        init_ca(folder, args.name, key_type=args.key_type, valid_days=args.days)
    except FileExistsError as exc:
        print(f"lienthong keys init-ca: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"CA key (mode 0600): {folder / 'key.pem'}")
    print(f"CA certificate:     {_describe_cert(folder / 'cert.pem')}")
    print(f"CRL:                {folder / 'crl.pem'}")
    print("Give the hub the certificate as a trust anchor and the CRL as a CRL source:")
    print(f'  [trust] anchors = ["{folder / "cert.pem"}"], crls = ["{folder / "crl.pem"}"]')
    return EXIT_OK


def cmd_keys_issue(args: argparse.Namespace) -> int:
    from signing.authority import issue_agency, load_ca

    agencies_file, name = _agency_entry(args, args.agency)
    folder = Path(args.out) if args.out else _demo_root(args) / "agencies" / args.agency
    try:
        files = issue_agency(
            load_ca(_ca_dir(args)),
            folder,
            code=args.agency,
            name=args.name or name,
            key_type=args.key_type,
            valid_days=args.days,
            force=args.force,
        )
    except (FileExistsError, FileNotFoundError) as exc:
        print(f"lienthong keys issue: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"signing key (mode 0600): {files.key}")
    print(f"certificate: {_describe_cert(files.certificate)}")
    return _register(args, agencies_file, args.agency, [files.certificate])


def cmd_keys_rotate(args: argparse.Namespace) -> int:
    from signing.authority import load_ca, rotate_agency

    agencies_file, name = _agency_entry(args, args.agency)
    folder = Path(args.out) if args.out else _demo_root(args) / "agencies" / args.agency
    try:
        files = rotate_agency(
            load_ca(_ca_dir(args)),
            folder,
            code=args.agency,
            name=args.name or name,
            key_type=args.key_type,
            valid_days=args.days,
        )
    except (FileExistsError, FileNotFoundError) as exc:
        print(f"lienthong keys rotate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    assert files.archived_certificate is not None
    print(f"new signing key (mode 0600): {files.key}")
    print(f"new certificate: {_describe_cert(files.certificate)}")
    print(f"previous certificate, kept registered for the overlap: {files.archived_certificate}")
    result = _register(
        args, agencies_file, args.agency, [files.certificate, files.archived_certificate]
    )
    print(
        "When every system of the agency signs with the new key, remove the previous "
        "certificate from agencies.toml (or revoke it: lienthong keys revoke)."
    )
    return result


def cmd_keys_revoke(args: argparse.Namespace) -> int:
    from signing.authority import load_ca, publish_crl
    from signing.pki import fingerprint, load_certificate

    folder = _ca_dir(args)
    cert = load_certificate(Path(args.certificate).read_bytes())
    try:
        path = publish_crl(folder, load_ca(folder), (cert,))
    except FileNotFoundError as exc:
        print(f"lienthong keys revoke: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"revoked {cert.subject.rfc4514_string()} ({fingerprint(cert)})")
    print(f"CRL re-issued: {path}; the hub picks it up at its next CRL refresh")
    return EXIT_OK


def _certificate_problems(args: argparse.Namespace, code: str, path: Path) -> list[str]:
    """Why *path* should not be registered for agency *code*: it names another agency, or the
    hub's trust anchors do not trust it (revocation is left to the running hub's CRLs)."""
    from cryptography.x509.oid import NameOID

    from hub.errors import CertificateError
    from hub.server import trust_store
    from signing.pki import load_certificate

    cert = load_certificate(path.read_bytes())
    problems = []
    uids = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.USER_ID)]
    if uids and code not in uids:
        problems.append(f"the certificate names agency {', '.join(uids)}, not {code}")
    store = dataclasses.replace(
        trust_store(load_settings(_config_path(args))), require_revocation=False
    )
    try:
        store.check(cert)
    except CertificateError as exc:
        problems.append(f"{exc.code}: {exc.detail}")
    return problems


def _register(
    args: argparse.Namespace, agencies_file: Path, code: str, paths: list[Path], force: bool = False
) -> int:
    """Register *paths* for *code* (after the checks of add-cert, unless *force*)."""
    from hub.config import register_certificate

    for path in paths:
        problems = [] if force else _certificate_problems(args, code, path)
        if problems:
            for problem in problems:
                print(f"lienthong: not registered: {path}: {problem}", file=sys.stderr)
            print("  (lienthong agencies add-cert --force registers it anyway)", file=sys.stderr)
            return EXIT_INVALID
    changed = [p for p in paths if register_certificate(agencies_file, code, p)]
    for path in changed:
        print(f"registered {path} for {code} in {agencies_file}")
    if changed:
        print("Restart the hub to load the directory again.")
    else:
        print(f"already registered for {code} in {agencies_file}")
    return EXIT_OK


def cmd_agencies_add_cert(args: argparse.Namespace) -> int:
    from signing.pki import load_certificate

    agencies_file, _name = _agency_entry(args, args.code)
    path = Path(args.file)
    try:
        load_certificate(path.read_bytes())
    except OSError as exc:
        print(f"lienthong agencies add-cert: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    except ValueError as exc:
        print(f"lienthong agencies add-cert: {path}: {exc}", file=sys.stderr)
        return EXIT_INVALID
    print(f"certificate: {_describe_cert(path)}")
    return _register(args, agencies_file, args.code, [path], force=args.force)


def _hub_certificate(args: argparse.Namespace, command: str) -> x509.Certificate | None:
    """The hub certificate to check the hub's signatures with: ``--certificate``, else the
    configured one (the private key is not needed); None, said on stderr, when there is none."""
    from signing.pki import load_certificate

    if args.certificate:
        cert_path = Path(args.certificate)
    else:
        hub = _raw_config(args).get("hub", {})
        configured = os.environ.get("LIENTHONG_HUB_CERTIFICATE") or hub.get("certificate")
        if not configured:
            print(f"lienthong {command}: give --certificate HUB_CERT", file=sys.stderr)
            return None
        cert_path = _config_path(args).parent / configured
    try:
        return load_certificate(cert_path.read_bytes())
    except OSError as exc:
        raise ConfigError(str(cert_path), "certificate", f"cannot read: {exc.strerror}") from exc


def cmd_receipt_verify(args: argparse.Namespace) -> int:
    """Check a receipt offline with the hub certificate alone."""
    from signing.receipts import ReceiptError, verify_receipt

    try:
        text = Path(args.file).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        print(f"lienthong receipt verify: cannot read {args.file}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    certificate = _hub_certificate(args, "receipt verify")
    if certificate is None:
        return EXIT_USAGE
    try:
        verified = verify_receipt(_jws_in(text), certificate)
    except ReceiptError as exc:
        print(f"{args.file}: INVALID receipt: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        _print_json(verified.payload)
        return EXIT_OK
    p = verified.payload
    kid = verified.header.get("kid")
    print(f"{args.file}: valid {p['kind']} receipt, signed by hub {p['hub']} ({kid})")
    print(f"  issued {p['issued_at']}: document {p['document_id']} ({p['edxml_document_id']})")
    print(f"  package sha256 {p['package_sha256']}, {p['size']} bytes, from {p['sender']}")
    print(f"  recipients: {', '.join(p['recipients'])}")
    if p["kind"] == "delivery":
        print(
            f"  {p['recipient']} acknowledged {p['result']} at {p['acknowledged_at']}"
            + (f": {p['reason']}" if p.get("reason") else "")
        )
    return EXIT_OK


def _jws_in(text: str) -> str:
    """The compact JWS in *text*: the JWS itself, a SignedReceipt object (GET /v1/receipts),
    or a 202 answer of POST /v1/documents (``lienthong send --json``)."""
    if not text.startswith("{"):
        return text
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return text  # verify_receipt says what is wrong
    if isinstance(data, dict) and isinstance(data.get("signed_receipt"), dict):
        data = data["signed_receipt"]
    if isinstance(data, dict) and isinstance(data.get("jws"), str):
        return str(data["jws"])
    return text


# --- evidence bundles ------------------------------------------------------------------------


def _configured_hub_certificate(settings: Settings) -> x509.Certificate:
    """The hub's own certificate, as configured: [hub] certificate, or inside a PKCS#12 key."""
    from signing.keyfiles import load_hub_identity
    from signing.pki import load_certificate

    if settings.hub_cert_path is not None:
        return load_certificate(settings.hub_cert_path.read_bytes())
    return load_hub_identity(settings.hub_key_path, None, settings.hub_key_passphrase).certificate


async def cmd_evidence_export(args: argparse.Namespace) -> int:
    """Write a document's evidence bundle from the hub's database (tracking.evidence)."""
    from hub.context import HubContext
    from hub.directory import Directory
    from hub.errors import NotFound
    from hub.evidence import NoCheckpoint, gather
    from hub.server import open_store
    from signing.keyfiles import load_hub_identity
    from signing.receipts import ReceiptSigner
    from tracking.evidence import write_bundle

    settings = load_settings(_config_path(args))
    certificate = _configured_hub_certificate(settings)
    store = await open_store(settings)  # refuses a missing or old database, creates none
    try:
        try:
            evidence = await gather(store, args.document_id, certificate, settings.hub_id)
        except NoCheckpoint:
            # Sign the chain's head now (as the hub does on its schedule) rather than hand out
            # events no signature covers; this needs the hub's key.
            identity = load_hub_identity(
                settings.hub_key_path, settings.hub_cert_path, settings.hub_key_passphrase
            )
            ctx = HubContext(
                hub_id=settings.hub_id,
                store=store,
                directory=Directory(()),
                receipts=ReceiptSigner(identity.key, identity.certificate),
            )
            evidence = await gather(
                store, args.document_id, certificate, settings.hub_id, signing_context=ctx
            )
            print("signed a new checkpoint of the audit chain to cover the document")
    except NotFound as exc:
        print(f"lienthong evidence export: {exc.detail}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        await store.close()
    bundle = write_bundle(evidence)
    out = Path(args.out)
    await asyncio.to_thread(write_atomically, out.parent, out.name, bundle, durable=False)
    first, last = evidence.events[0].seq, evidence.events[-1].seq
    print(
        f"wrote {out} ({len(bundle)} bytes): document {args.document_id}, "
        f"{len(evidence.receipts)} receipts, {len(evidence.statuses)} status packages, "
        f"events {first}–{last} up to the signed checkpoint of event {last}"
    )
    return EXIT_OK


def cmd_evidence_verify(args: argparse.Namespace) -> int:
    """Verify an evidence bundle offline, with the hub certificate the auditor trusts."""
    from signing.pki import load_certificate
    from tracking.evidence import (
        CERTIFICATE,
        MAX_BUNDLE_BYTES,
        BundleError,
        read_zip,
        verify_bundle,
    )

    path = Path(args.bundle)
    try:
        if path.stat().st_size > MAX_BUNDLE_BYTES:
            print(f"{path}: larger than {MAX_BUNDLE_BYTES} bytes; not read", file=sys.stderr)
            return EXIT_INVALID
        data = path.read_bytes()
    except OSError as exc:
        print(f"lienthong evidence verify: cannot read {path}: {exc.strerror}", file=sys.stderr)
        return EXIT_USAGE
    if args.trust_bundled_certificate and not args.certificate:
        try:
            pem = read_zip(data)[0].get(CERTIFICATE)
            if pem is None:
                raise BundleError(f"it has no {CERTIFICATE}")
            certificate: x509.Certificate | None = load_certificate(pem)
        except (BundleError, ValueError) as exc:
            print(f"{path}: cannot use the bundled certificate: {exc}", file=sys.stderr)
            return EXIT_INVALID
    else:
        try:
            certificate = _hub_certificate(args, "evidence verify")
        except ConfigError:
            certificate = None
            print(
                "lienthong evidence verify: give --certificate HUB_CERT (the hub certificate "
                "you trust), or --trust-bundled-certificate",
                file=sys.stderr,
            )
        if certificate is None:
            return EXIT_USAGE
    assert certificate is not None
    try:
        report = verify_bundle(data, certificate)
    except BundleError as exc:
        print(f"{path}: INVALID evidence bundle: {exc}", file=sys.stderr)
        return EXIT_INVALID
    if args.json:
        _print_json({"bundle": str(path), **report.as_dict()})
        return EXIT_OK if report.valid else EXIT_INVALID
    if report.valid:
        cp = report.checkpoint
        assert cp is not None
        print(f"{path}: VALID evidence for document {report.document_id} (hub {report.hub})")
        for r in report.receipts:
            about = f" by {r['recipient']}: {r['result']}" if r["kind"] == "delivery" else ""
            print(f"  {r['kind']} receipt {r['receipt_id']} issued {r['issued_at']}{about}")
        for st in report.statuses:
            print(
                f"  status {st['code']} from {st['reporter']} at {st['at']} (event {st['event']})"
            )
        print(
            f"  {report.events} events verified up to the checkpoint of event {cp.seq}, "
            f"signed {cp.signed_at.isoformat()}; later events are not covered"
        )
    else:
        print(f"{path}: INVALID evidence bundle, {len(report.problems)} problem(s):")
        for problem in report.problems:
            where = f" [{problem.file}]" if problem.file else ""
            print(f"  {problem.what}{where}: {problem.message}")
    for note in report.notes:
        print(f"  note: {note}")
    return EXIT_OK if report.valid else EXIT_INVALID


def _add_evidence_parsers(add: Callable[..., argparse.ArgumentParser]) -> None:
    ev = add(
        "evidence",
        lambda _a: EXIT_USAGE,
        "evidence bundles: a document's proof, checkable offline",
        "Export everything that proves what happened to one document (the signed package, the "
        "hub's receipts, the status packages, the trace events with their chain up to a signed "
        "checkpoint, the hub certificate) into one ZIP, and verify such a bundle offline.",
    )
    ev_sub = ev.add_subparsers(dest="evidence_command", metavar="ACTION", required=True)
    p = ev_sub.add_parser(
        "export",
        help="write a document's evidence bundle (a ZIP) from the hub's database",
        description="Read the hub's database and write DOC_ID's evidence bundle to --out. If no "
        "signed checkpoint covers the document's last event yet, one is signed first with the "
        "hub's key.",
    )
    p.add_argument("document_id", metavar="DOC_ID", help="the hub's document id")
    p.add_argument("--out", metavar="FILE", required=True, help="the bundle to write (.zip)")
    p.set_defaults(func=cmd_evidence_export)
    p = ev_sub.add_parser(
        "verify",
        help="verify an evidence bundle offline with the hub's certificate (exit 1 if invalid)",
        description="Check BUNDLE with the hub certificate you trust, with no hub and no "
        "database: the manifest's digests, every receipt's and the checkpoint's signature, the "
        "chain of events up to the checkpoint, and that the package and status packages are "
        "the ones the receipts and events name. Lists every problem; exit 0 valid, 1 invalid.",
    )
    p.add_argument("bundle", metavar="BUNDLE")
    p.add_argument(
        "--certificate",
        metavar="HUB_CERT",
        help="the hub certificate you trust (default: the configured [hub] certificate)",
    )
    p.add_argument(
        "--trust-bundled-certificate",
        action="store_true",
        help="check with the certificate inside the bundle (proves only that the bundle is "
        "consistent, not that this hub made it)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.set_defaults(func=cmd_evidence_verify)


# --- retention -------------------------------------------------------------------------------


async def cmd_retention_purge(args: argparse.Namespace) -> int:
    """Archive, then purge, the documents past the retention period (hub.retention)."""
    import datetime as dt

    from hub.retention import BATCH, PurgeSummary, RetentionError, cutoff, purge
    from hub.server import open_store

    if args.batch is not None and args.batch < 1:
        print("lienthong retention purge: --batch must be at least 1", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings(_config_path(args))
    try:
        before = cutoff(args.before, settings.retention_days, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        print(f"lienthong retention purge: {exc}", file=sys.stderr)
        return EXIT_USAGE
    archive_dir = Path(args.archive_dir) if args.archive_dir else settings.retention_archive_dir
    certificate = _configured_hub_certificate(settings)

    def progress(summary: PurgeSummary) -> None:
        print(
            f"  {summary.purged}/{len(summary.planned)} documents purged "
            f"({summary.archived} archived)",
            file=sys.stderr,
            flush=True,
        )

    store = await open_store(settings)
    try:
        summary = await purge(
            store,
            before=before,
            certificate=certificate,
            hub_id=settings.hub_id,
            archive_dir=archive_dir,
            dry_run=args.dry_run,
            batch_size=args.batch or BATCH,
            progress=None if args.json else progress,
        )
    except RetentionError as exc:
        print(f"lienthong retention purge: {exc}", file=sys.stderr)
        return EXIT_INVALID
    finally:
        await store.close()
    if args.json:
        _print_json(summary.as_dict())
        return EXIT_OK
    when = summary.before.isoformat()
    if summary.dry_run:
        print(f"dry run: {len(summary.planned)} documents received before {when} would be purged")
        for document_id in summary.planned:
            print(f"  {document_id}")
    else:
        print(
            f"documents received before {when}: {summary.archived} archived to {archive_dir}, "
            f"{summary.purged} purged, {summary.bytes_freed} bytes of packages freed "
            f"({summary.archive_bytes} bytes of bundles written)"
        )
        for document_id in summary.changed:
            print(f"  {document_id}: changed after it was archived; kept for the next run")
    for document_id, why in summary.kept.items():
        print(f"  kept {document_id}: {why}")
    return EXIT_OK


def _add_retention_parser(add: Callable[..., argparse.ArgumentParser]) -> None:
    rt = add(
        "retention",
        lambda _a: EXIT_USAGE,
        "archive, then purge, documents past the retention period",
        "Retention on the hub's database (the configuration from --config, as for serve).",
    )
    rt_sub = rt.add_subparsers(dest="retention_command", metavar="ACTION", required=True)
    p = rt_sub.add_parser(
        "purge",
        help="archive each old, finished document's evidence bundle, then purge it",
        description="Purge the documents received more than [retention] days ago (or before "
        "--before), whose deliveries are all settled, with no recall pending, and whose events "
        "a signed checkpoint covers; documents linked by a revoke, update or replace go "
        "together or not at all. Each one's evidence bundle is first written to the archive "
        "folder as DOC_ID.zip and verified there; then its package, deliveries, statuses and "
        "receipts are deleted and its trace events become tombstones, so `lienthong audit "
        "verify` still passes. Safe to interrupt and run again. Prints the documents kept and "
        "why.",
    )
    p.add_argument("--dry-run", action="store_true", help="only list what would be purged")
    p.add_argument(
        "--archive-dir",
        metavar="DIR",
        help="where the bundles go (default: [retention] archive_dir); must exist",
    )
    p.add_argument(
        "--before",
        metavar="DATE",
        help="purge documents received before DATE (ISO 8601; a bare date is Vietnam time) "
        "instead of [retention] days ago",
    )
    p.add_argument(
        "--batch",
        type=int,
        metavar="N",
        help="documents archived, then deleted in one transaction (default 100)",
    )
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=cmd_retention_purge)


# --- reports ---------------------------------------------------------------------------------


async def cmd_report(args: argparse.Namespace) -> int:
    """Monthly figures per agency from the hub's database (hub.reports)."""
    import csv
    import io

    from adapters.tables import table
    from hub.reports import COLUMNS, month_bounds, monthly_report
    from hub.server import open_store
    from tracking.models import utcnow

    try:
        month_bounds(args.month)
    except ValueError as exc:
        print(f"lienthong report: {exc}", file=sys.stderr)
        return EXIT_USAGE
    settings = load_settings(_config_path(args))
    windows = settings.deadlines.windows
    store = await open_store(settings)  # refuses a missing or old database, creates none
    try:
        figures = await monthly_report(store, args.month, windows, utcnow())
    finally:
        await store.close()
    rows = [f.as_dict() for f in figures]
    if args.json:
        _print_json(
            {
                "month": args.month,
                "timezone": "UTC+07:00",
                "ack_hours": {str(p): w.total_seconds() / 3600 for p, w in windows.items()},
                "agencies": rows,
            }
        )
    elif args.csv:
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
        print(out.getvalue(), end="")
    else:
        print(f"{args.month} (Vietnam time, UTC+7)")
        headers = ["agency", "sent", "received", "ack in time", "overdue", "pending", "06"]
        headers.append("median h to 06")
        print(
            table(
                headers,
                [["" if r[c] is None else str(r[c]) for c in COLUMNS] for r in rows],
            )
            if rows
            else "no documents in that month"
        )
    return EXIT_OK


def _add_report_parser(add: Callable[..., argparse.ArgumentParser]) -> None:
    p = add(
        "report",
        cmd_report,
        "monthly figures per agency: sent, received, acknowledged in time, overdue, time to 06",
        "Read the hub's database and print, per agency, for the documents the hub received in "
        "MONTH (Vietnam time): documents sent and received, deliveries acknowledged within "
        "the window of their priority ([deadlines]), overdue and pending ones, documents "
        "finished (06) and the median hours from receipt to 06.",
    )
    p.add_argument("--month", required=True, metavar="YYYY-MM", help="e.g. 2026-11")
    form = p.add_mutually_exclusive_group()
    form.add_argument("--csv", action="store_true", help="print CSV")
    form.add_argument("--json", action="store_true", help="print JSON")


# --- argument parsing ------------------------------------------------------------------------


def _agency_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("who you are and which hub")
    g.add_argument(
        "--as",
        dest="as_code",
        required=True,
        metavar="CODE",
        help="your agency code, e.g. 000.00.00.H26",
    )
    g.add_argument(
        "--hub",
        metavar="URL",
        help="hub address (default: $LIENTHONG_HUB_URL, else the configured listen address)",
    )
    g.add_argument(
        "--credential-file",
        metavar="FILE",
        help="file holding your credential (default: the demo material for CODE; "
        "or set $LIENTHONG_CREDENTIAL)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lienthong",
        description="Lienthong: a hub through which government offices exchange "
        "signed edXML documents.",
        epilog="Quick start: `lienthong demo` runs a whole exchange on embedded SQLite. "
        "Each command has its own --help.",
    )
    parser.add_argument(
        "--config",
        metavar="FILE",
        help=f"hub configuration (default: $LIENTHONG_CONFIG or {DEFAULT_CONFIG})",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(
        name: str, func: Callable[..., Any], help: str, description: str | None = None
    ) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=description or help)
        p.set_defaults(func=func)
        return p

    serve = add(
        "serve",
        cmd_serve,
        "run the hub's HTTP API and web console until interrupted",
        "Run the hub on the configured address: the API under /v1 and the web console for "
        "people under /console/ (sign in with an account's API credential; [console] in "
        "hub.toml). The database must be upgraded first (lienthong db upgrade). "
        "With [facade] enabled = true (or LIENTHONG_FACADE_ENABLED=true) it also serves the "
        "national axis SDK's verbs under /vxp (README: Compatibility with the national axis). "
        "The log goes to standard error, as text or JSON lines ([logging] in the "
        "configuration), each line with the id of the request it belongs to.",
    )

    p = add(
        "adapter",
        cmd_adapter,
        "connect an agency system to a hub through an adapter, until interrupted",
        "Run adapter NAME for one agency, configured by a TOML file: hub_url, agency, "
        "credential_file, key, certificate, optional trust_anchors (to verify received "
        "packages), wait and lease, and the adapter's own table ([folder], [webhook]). "
        "Built-in adapters: folder (outbox/inbox/status folders), webhook (receives the hub's "
        "pushes). Third-party adapters register in the entry-point group lienthong.adapters. "
        "Stops cleanly on Ctrl+C or SIGTERM. See adapters/GUIDE.md.",
    )
    p.add_argument("adapter", metavar="NAME", help="the adapter: folder, webhook, or a plug-in")
    p.add_argument(
        "--config",
        dest="adapter_config",
        metavar="FILE",
        required=True,
        help="the adapter's configuration (TOML)",
    )
    serve.add_argument(
        "--log-format",
        choices=("text", "json"),
        help="log as plain text or one JSON object per line (default: [logging] format, text)",
    )

    mt = add(
        "maintenance",
        cmd_maintenance,
        "turn maintenance mode on or off, or show it (every hub node on the database obeys)",
        "Maintenance mode, kept in the hub's database so that every hub node sharing it obeys "
        "within a second, whether they run or not. While it is on, POST /v1/documents and POST "
        "/v1/status answer 503 hub.maintenance with Retry-After, and /healthz answers 503; "
        "inboxes, downloads, acknowledgements and traces keep working. Turning it on or off is "
        "recorded in the audit chain with who did it.",
    )
    mt.add_argument("action", choices=("on", "off", "status"), help="what to do")
    mt.add_argument("--reason", metavar="TEXT", help="with on: why, shown to refused senders")
    mt.add_argument(
        "--retry-after",
        type=int,
        metavar="SECONDS",
        help="with on: how long refused senders are told to wait (default 300)",
    )
    mt.add_argument("--by", metavar="NAME", help="the operator (default: your user name)")
    mt.add_argument("--json", action="store_true", help="print JSON")

    db = add("db", lambda _a: EXIT_USAGE, "database maintenance")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    up = db_sub.add_parser(
        "upgrade",
        help="create or migrate the database schema to the latest version",
        description="Create the database if needed and apply every migration up to the latest "
        "schema. Safe to run again; run it after installing a new version of Lienthong.",
    )
    up.set_defaults(func=cmd_db_upgrade)

    audit = add("audit", lambda _a: EXIT_USAGE, "check the tamper-evident trace")
    audit_sub = audit.add_subparsers(dest="audit_command", metavar="ACTION", required=True)
    av = audit_sub.add_parser(
        "verify",
        help="recompute the audit chain and name the first event altered, removed or inserted",
        description="Read every trace event of the hub's database in order, recompute each "
        "event's hash and its link to the one before, and name the first event that was "
        "altered, removed or inserted. Exit 0 when the chain is intact, 1 when it is not.",
    )
    av.add_argument(
        "--certificate",
        metavar="HUB_CERT",
        help="the hub's certificate to check the signed checkpoints with (default: the "
        "configured [hub] certificate)",
    )
    av.add_argument("--json", action="store_true", help="print the report as JSON")
    av.set_defaults(func=cmd_audit_verify)

    dl = add(
        "deliveries",
        lambda _a: EXIT_USAGE,
        "find deliveries and send them again (operators, on the hub's database)",
        "Operator commands on the hub's database (the configuration from --config, as for "
        "serve): list deliveries, and send dead, failed or expired ones again under the same "
        "delivery id. They work whether the hub runs or not; a running hub picks the change "
        "up within a second.",
    )
    dl_sub = dl.add_subparsers(dest="deliveries_command", metavar="ACTION", required=True)
    p = dl_sub.add_parser(
        "list",
        help="list deliveries, newest first",
        description="List deliveries, newest first: id, kind, recipient, transport state, push "
        "attempts, when queued, the last push error.",
    )
    p.add_argument("--agency", metavar="CODE", help="only deliveries to this recipient")
    p.add_argument(
        "--state", metavar="STATE", help="only in this state (queued, retrying, dead, …)"
    )
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_deliveries_list)
    p = dl_sub.add_parser(
        "resend",
        help="send a delivery again under the same id (ID, or --failed --agency CODE)",
        description="Put a delivery back to queued under the same delivery id, its attempts "
        "reset: a push recipient gets it pushed again, a pull recipient sees it in its inbox "
        "again. ID resends one delivery (any state but done); --failed --agency CODE resends "
        "every dead, failed or expired delivery to that agency. Each resend is recorded in the "
        "trace (a resent event naming the operator).",
    )
    p.add_argument("id", metavar="ID", nargs="?", help="the delivery id")
    p.add_argument(
        "--failed", action="store_true", help="every dead, failed or expired delivery of --agency"
    )
    p.add_argument("--agency", metavar="CODE", help="the recipient, with --failed")
    p.add_argument(
        "--by", metavar="NAME", help="the operator named in the trace (default: your user name)"
    )
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_deliveries_resend)

    ag = add("agencies", lambda _a: EXIT_USAGE, "the agency directory")
    ag_sub = ag.add_subparsers(dest="agencies_command", metavar="ACTION", required=True)
    ls = ag_sub.add_parser(
        "list",
        help="list the agencies and accounts in the configured directory",
        description="List every agency, auditor and admin account of the configured directory "
        "(agencies.toml) with its role, parent unit and delivery mode.",
    )
    ls.add_argument("--json", action="store_true", help="print JSON")
    ls.set_defaults(func=cmd_agencies_list)

    imp = ag_sub.add_parser(
        "import",
        help="import the national agency directory (CSV or JSON lines)",
        description="Import FILE, the national agency directory, into the database: one row "
        "per agency with its code, name and, optionally, parent (CSV with the header "
        "code,name,parent, or JSON lines with the same keys; UTF-8). A missing parent is read "
        "from the code (000.00.18.G12 is under 000.00.00.G12). Importing again updates names "
        "and parents. Once a directory is imported, the hub refuses a recipient that is "
        "neither one of its own accounts nor in it (recipient.unknown) instead of forwarding "
        "it to a peer hub. Rows that are not valid are skipped and listed. The hub reads the "
        "directory when it starts.",
    )
    imp.add_argument("file", metavar="FILE", help="the directory file")
    imp.add_argument(
        "--format",
        choices=("auto", "csv", "jsonl"),
        default="auto",
        help="file format (default: by the file name; .jsonl is JSON lines, else CSV)",
    )
    imp.add_argument(
        "--replace",
        action="store_true",
        help="the file is the whole directory: remove agencies it does not list",
    )
    imp.add_argument("--json", action="store_true", help="print the result as JSON")
    imp.set_defaults(func=cmd_agencies_import)

    add_cert = ag_sub.add_parser(
        "add-cert",
        help="register a signing certificate for an agency (agencies.toml)",
        description="Register FILE (a PEM or DER certificate) as a signing certificate of the "
        "agency CODE: its path is appended to the agency's `certificates` in the directory file "
        "(agencies.toml), which keeps its comments and layout. The certificate must name CODE "
        "(UID) if it names an agency, and chain to the hub's trust anchors; --force registers "
        "it anyway. Restart the hub to load it. Several certificates may be registered at once "
        "(a key rotation with overlap).",
    )
    add_cert.add_argument("code", metavar="CODE", help="the agency code, e.g. 000.00.31.H26")
    add_cert.add_argument("file", metavar="FILE", help="the certificate file")
    add_cert.add_argument("--force", action="store_true", help="register even if not trusted")
    add_cert.set_defaults(func=cmd_agencies_add_cert)

    keys = add(
        "keys",
        lambda _a: EXIT_USAGE,
        "keys and certificates: a CA, agency keys, rotation, revocation",
        "Development and demo tooling for a certification authority kept in a folder "
        "(key.pem, cert.pem, crl.pem) and the agencies' signing keys. Private keys are written "
        "with mode 0600 and never printed. Production agencies bring certificates from the "
        "national CA instead (register them with `lienthong agencies add-cert`).",
    )
    keys_sub = keys.add_subparsers(dest="keys_command", metavar="ACTION", required=True)

    def ca_option(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--ca", metavar="DIR", help="the CA folder (default: the demo CA, var/demo/ca)"
        )

    def key_options(p: argparse.ArgumentParser, days: int) -> None:
        p.add_argument(
            "--key-type",
            choices=("rsa", "ec"),
            default="rsa",
            help="RSA-2048 or EC P-256 (default rsa)",
        )
        p.add_argument("--days", type=int, default=days, help=f"validity in days (default {days})")

    k = keys_sub.add_parser(
        "init-ca",
        help="create a certification authority in a folder (key, certificate, CRL)",
        description="Create a CA in DIR: key.pem (0600), cert.pem (give it to the hub as a "
        "[trust] anchor) and an empty crl.pem (a [trust] crls source). Refuses to replace an "
        "existing CA.",
    )
    k.add_argument("--dir", metavar="DIR", help="where (default: the demo CA, var/demo/ca)")
    k.add_argument("--name", default="Lienthong CA", help="the CA's name (default: Lienthong CA)")
    key_options(k, 3650)
    k.set_defaults(func=cmd_keys_init_ca)

    k = keys_sub.add_parser(
        "issue",
        help="issue a signing key and certificate for an agency",
        description="Make a new key (0600) and a certificate for the agency CODE, issued by the "
        "CA, in --out (default: the agency's demo folder, var/demo/agencies/CODE), and register "
        "the certificate in the directory if it is not yet. Refuses to replace a key (see "
        "`keys rotate`) unless --force.",
    )
    k.add_argument("--agency", required=True, metavar="CODE", help="the agency code")
    k.add_argument("--out", metavar="DIR", help="folder for key.pem and cert.pem")
    k.add_argument("--name", help="the name in the certificate (default: from the directory)")
    k.add_argument("--force", action="store_true", help="replace an existing key")
    ca_option(k)
    key_options(k, 825)
    k.set_defaults(func=cmd_keys_issue)

    k = keys_sub.add_parser(
        "rotate",
        help="replace an agency's key, keeping the old certificate registered for the overlap",
        description="Move the agency's current key.pem and cert.pem aside (key-SERIAL.pem, "
        "cert-SERIAL.pem), issue a new pair in their place, and register both certificates, so "
        "that packages signed with either verify while the agency's systems switch over. "
        "Restart the hub afterwards.",
    )
    k.add_argument("--agency", required=True, metavar="CODE", help="the agency code")
    k.add_argument("--out", metavar="DIR", help="the agency's key folder (default: demo folder)")
    k.add_argument("--name", help="the name in the certificate (default: from the directory)")
    ca_option(k)
    key_options(k, 825)
    k.set_defaults(func=cmd_keys_rotate)

    k = keys_sub.add_parser(
        "revoke",
        help="revoke a certificate: add it to the CA's CRL",
        description="Add CERT to the CA's crl.pem and re-issue the CRL. A hub that reads that "
        "CRL refuses signatures by CERT (certificate.revoked) from its next CRL refresh on.",
    )
    k.add_argument("certificate", metavar="CERT", help="the certificate to revoke")
    ca_option(k)
    k.set_defaults(func=cmd_keys_revoke)

    rc = add(
        "receipt",
        lambda _a: EXIT_USAGE,
        "hub-signed receipts",
        "Receipts the hub signs: on every accepted document, and for the sender when a "
        "recipient acknowledges it.",
    )
    rc_sub = rc.add_subparsers(dest="receipt_command", metavar="ACTION", required=True)
    v = rc_sub.add_parser(
        "verify",
        help="check a receipt offline with the hub's certificate (exit 1 if invalid)",
        description="Check FILE, a receipt signed by the hub, with the hub's certificate alone: "
        "no hub, no network. FILE holds the JWS itself, a receipt as GET /v1/receipts/{id} "
        "answers it (lienthong fetch ID --receipt), or the answer of `lienthong send --json`. "
        "Prints what the receipt proves; exit 0 if valid, 1 if not (with the reason).",
    )
    v.add_argument("file", metavar="FILE")
    v.add_argument(
        "--certificate",
        metavar="HUB_CERT",
        help="the hub's certificate (default: [hub] certificate of the hub configuration)",
    )
    v.add_argument("--json", action="store_true", help="print the verified payload as JSON")
    v.set_defaults(func=cmd_receipt_verify)

    p = add(
        "send",
        cmd_send,
        "sign an edXML document package with your agency's key and send it",
        "Sign FILE (an unsigned edXML document package) with your agency's key "
        "and send it to the hub.",
    )
    p.add_argument("file", metavar="FILE", help="the edXML document package")
    _agency_options(p)
    p.add_argument("--key", metavar="PEM", help="signing key (default: the demo key for CODE)")
    p.add_argument(
        "--cert", metavar="PEM", help="signing certificate (default: the demo certificate for CODE)"
    )
    p.add_argument(
        "--no-sign", action="store_true", help="send FILE as it is (it is already signed)"
    )
    p.add_argument("--json", action="store_true", help="print the hub's receipt as JSON")

    p = add(
        "inbox",
        cmd_inbox,
        "list the documents and status packages waiting for you",
        "List pending deliveries, most urgent first, then oldest.",
    )
    _agency_options(p)
    p.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait up to SECONDS for something to arrive (long poll, at most 60)",
    )
    p.add_argument("--limit", type=int, default=100, help="at most this many items (default 100)")
    p.add_argument(
        "--lease",
        type=float,
        default=0,
        metavar="SECONDS",
        help="lease the listed items for SECONDS: other leasing pollers do not get them until "
        "you acknowledge them or the lease runs out (default 0: only look)",
    )
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add(
        "fetch",
        cmd_fetch,
        "download a package exactly as it was received",
        "Download a document package (or with --status a status package) by its hub id.",
    )
    p.add_argument("id", metavar="ID", help="document id (or status id with --status)")
    _agency_options(p)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--status", action="store_true", help="ID is a status package id")
    kind.add_argument(
        "--receipt",
        action="store_true",
        help="ID is a receipt id: write the signed receipt (JSON), for `lienthong receipt verify`",
    )
    p.add_argument("--out", metavar="FILE", help="write to FILE instead of standard output")

    p = add(
        "attachments",
        cmd_attachments,
        "save a document's attached files under their original names",
        "Download the document package DOC_ID (as the agency CODE), decode every attachment "
        "(taking the file out of the single-file ZIP the official SDK wraps it in) and write it "
        "into DIR under its AttachmentName, made safe for the file system: path parts, control "
        "characters and reserved names are neutralised, and a repeated name gets ' (2)'. A file "
        "of the same name already in DIR is replaced. Prints one line per file: name, size, "
        "SHA-256 and whether it was zipped. Exits with 1 if an attachment cannot be decoded "
        "(the others are still written).",
    )
    p.add_argument("document_id", metavar="DOC_ID", help="the hub's document id")
    _agency_options(p)
    p.add_argument(
        "--out",
        metavar="DIR",
        required=True,
        help="folder to write the files into (created if missing)",
    )

    p = add(
        "ack",
        cmd_ack,
        "acknowledge a delivery: stored (done), or --fail REASON",
        "Tell the hub whether your system stored a delivered package.",
    )
    p.add_argument("delivery_id", metavar="DELIVERY_ID")
    _agency_options(p)
    p.add_argument("--fail", metavar="REASON", help="your system could not store it, and why")

    p = add(
        "status",
        cmd_status,
        "report a business status (01–06, 13, 15, 16) about a document",
        "Build, sign and send a status package about the hub document DOC_ID. Codes: 01 arrived, "
        "02 rejected (give --reason), 03 accepted, 04 assigned, 05 in progress, 06 finished, "
        "13 recall request (sender only, with --to), 15 recall agreed, 16 recall refused.",
    )
    p.add_argument("document_id", metavar="DOC_ID")
    p.add_argument("code", metavar="CODE")
    _agency_options(p)
    p.add_argument("--reason", metavar="TEXT", help="description: the reason for 02, 13, 16")
    p.add_argument(
        "--to", metavar="RECIPIENT", help="for 13: the recipient asked to give the document back"
    )
    p.add_argument("--key", metavar="PEM", help="signing key (default: the demo key)")
    p.add_argument(
        "--cert", metavar="PEM", help="signing certificate (default: the demo certificate)"
    )

    p = add(
        "search",
        cmd_search,
        "find documents you sent or received (auditors: every document)",
        "Find documents, newest first, with GET /v1/documents. Filters combine. Times without "
        "an offset are Vietnam time.",
    )
    _agency_options(p)
    p.add_argument("--sender", metavar="CODE", help="sent by this agency")
    p.add_argument("--recipient", metavar="CODE", help="sent to this agency")
    p.add_argument(
        "--state",
        help="a recipient delivery in this transport state: queued, delivered, done, failed, "
        "retrying, expired, dead",
    )
    p.add_argument("--status", metavar="CODE", help="a recipient's last status: 01 … 06, 15")
    p.add_argument("--since", metavar="WHEN", help="received at or after (2026-11-01, ISO 8601)")
    p.add_argument("--until", metavar="WHEN", help="received before")
    p.add_argument("--q", metavar="WORDS", help="in the subject, DocumentId or số/ký hiệu")
    p.add_argument("--limit", type=int, default=50, help="results per page (default 50)")
    p.add_argument("--cursor", default="", help=argparse.SUPPRESS)
    p.add_argument("--all", action="store_true", help="follow every page")
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add(
        "trace",
        cmd_trace,
        "show who received a document, when, and what they did with it",
        "Print a document's recipients with their transport and business states, flagged "
        "OVERDUE where a recipient missed its acknowledgement window or the DueDate, and every "
        "event of its trace (times in Vietnam time).",
    )
    p.add_argument("document_id", metavar="DOC_ID")
    _agency_options(p)
    p.add_argument("--json", action="store_true", help="print JSON")

    p = add(
        "validate",
        cmd_validate,
        "check an edXML package against the schemas and the validation policy (exit 1 if invalid)",
        "Check FILE locally, as POST /v1/validate does: well-formedness, hardening rules, the "
        "edXML schema and the validation policy ([validation] of the hub configuration if there "
        "is one, else the defaults). Lists every problem with its severity, line, element path "
        "and explanation, then what can be said of the signature without the sender's "
        "certificates. Nothing is sent. Exit 1 if invalid; warnings alone do not fail.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument(
        "--kind",
        choices=("edoc", "status"),
        help="check as this kind of package (default: detected; a StatusCode makes a status)",
    )
    p.add_argument("--json", action="store_true", help="print the report as JSON")

    demo = add(
        "demo",
        cmd_demo,
        "run the demo exchange on embedded SQLite, then keep serving",
        "Generate demo keys if needed, start the hub, let Hà Nội agencies exchange two documents "
        "and their statuses, print each trace, then keep serving (or exit with --exit).",
    )
    demo.add_argument(
        "--exit", action="store_true", help="exit after the exchange instead of serving"
    )
    _add_evidence_parsers(add)
    _add_retention_parser(add)
    _add_report_parser(add)

    demo_sub = demo.add_subparsers(dest="demo_command", metavar="ACTION")
    init = demo_sub.add_parser(
        "init",
        help="only generate the demo CA, keys, certificates and credentials",
        description="Generate what config/agencies.toml names under var/demo: a demo CA, the "
        "hub's key, and a key, certificate and credential per account. Existing material is "
        "kept unless --force.",
    )
    init.add_argument("--force", action="store_true", help="replace existing demo material")
    init.set_defaults(func=cmd_demo_init)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    func: Callable[[argparse.Namespace], int | Coroutine[Any, Any, int]] = args.func
    try:
        result = func(args)
        if asyncio.iscoroutine(result):
            result = asyncio.run(result)
        assert isinstance(result, int)
        return result
    except ConfigError as exc:
        print(f"lienthong: configuration error: {exc.detail}", file=sys.stderr)
        return EXIT_CONFIG
    except HubError as exc:
        print(f"lienthong: the hub refused: {exc.code}: {exc.detail}", file=sys.stderr)
        for problem in exc.problems:
            where = ", ".join(str(problem[k]) for k in ("line", "path") if problem.get(k))
            print(
                f"  {where}: {problem.get('message')}" if where else f"  {problem.get('message')}",
                file=sys.stderr,
            )
        return EXIT_HUB
    except (OSError, ValueError) as exc:
        print(f"lienthong: {exc}", file=sys.stderr)
        return EXIT_HUB
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
