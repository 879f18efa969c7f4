"""`monitor` command line: run, check, silence/silences (monitor.silences), and lab (monitor.lab).

Exit codes: 0 ok, 1 invalid input (targets.yaml problems, cannot listen), 2 usage.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from monitor import __version__, logs, os_support
from monitor.config.environ import RecordingEnviron, missing_line, other_problems
from monitor.config.loader import ConfigError, load_config, summarize
from monitor.config.shard import parse_shard
from monitor.profiles import ProfileError, load_registry, registry
from monitor.units import parse_duration

DEFAULT_CONFIG = "targets.yaml"
DEFAULT_LISTEN = "127.0.0.1:9430"
# `monitor run`'s config path when --config is absent (systemd's EnvironmentFile, containers).
CONFIG_VARIABLE = "SCHOOLNET_CONFIG"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="schoolnet-monitor: ICMP and SNMP health of a cooperative's school networks, "
        "as Prometheus metrics.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="probe every target and serve /metrics")
    run.add_argument(
        "--config",
        default=None,
        help=f"targets file (default: ${CONFIG_VARIABLE}, else {DEFAULT_CONFIG})",
    )
    run.add_argument(
        "--listen",
        default=DEFAULT_LISTEN,
        help="HOST:PORT for /metrics and the status page (default: %(default)s)",
    )
    run.add_argument(
        "--watch-interval",
        default="2s",
        metavar="DURATION",
        help="how often to look for changes of the targets file; 0 turns watching "
        "off (SIGHUP and POST /-/reload still reload) (default: %(default)s)",
    )
    run.add_argument(
        "--shard",
        metavar="K/N",
        help="watch only the schools of shard K of N (0 <= K < N; whole schools, stable "
        "hashing): N collectors split a large cooperative",
    )
    run.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        help="TLS, basic auth and headers for every endpoint, in Prometheus exporter-toolkit's "
        "format (docs/security.md); re-read on reload",
    )
    run.add_argument(
        "--web.enable-lifecycle",
        dest="web_enable_lifecycle",
        action="store_true",
        help="answer POST /-/reload (SIGHUP and the file watcher reload either way)",
    )
    _profiles_option(run)
    _log_options(run)

    lab = sub.add_parser(
        "lab",
        help="simulate the school network of a targets file and run the collector against it",
        description="Without ACTION: serve a simulated SNMP agent for every target of the file "
        "on its 127.x address, and run the collector against them. With ACTION: act on a "
        "running lab (NAME is SCHOOL/TARGET, or SCHOOL for its link).",
    )
    lab.add_argument(
        "action",
        nargs="?",
        default="run",
        choices=["run", "down", "up", "degrade", "load", "reboot", "status"],
    )
    lab.add_argument("name", nargs="?", help="SCHOOL/TARGET (or SCHOOL: its link)")
    lab.add_argument("--config", default=DEFAULT_CONFIG, help="targets file (default: %(default)s)")
    lab.add_argument(
        "--listen", default=DEFAULT_LISTEN, help="HOST:PORT of the collector (default: %(default)s)"
    )
    lab.add_argument("--control", default=None, help="control socket of the lab")
    lab.add_argument(
        "--day",
        default="10m",
        metavar="DURATION",
        help="how long a simulated school day lasts (default: %(default)s)",
    )
    lab.add_argument(
        "--no-collector",
        action="store_true",
        help="only simulate the network (run the collector yourself)",
    )
    lab.add_argument("--loss", help="degrade: share of echoes and SNMP requests lost, e.g. 20%%")
    lab.add_argument(
        "--utilisation", help="load: share of the link's bandwidth, e.g. 95%%, or 'day' for normal"
    )
    _profiles_option(lab)
    _log_options(lab)

    silence = sub.add_parser(
        "silence",
        help="silence a school's (or one device's) alerts in Alertmanager, or end a silence",
        description="Create an Alertmanager silence for every alert of SCHOOL, or of one TARGET "
        "of it (matchers member, school, target; the member comes from the targets file), or "
        "end one with --expire ID. The author is your user name.",
    )
    silence.add_argument("name", nargs="?", metavar="SCHOOL[/TARGET]")
    silence.add_argument("--for", dest="duration", metavar="DURATION", help="e.g. 2h, 90m, 1d")
    silence.add_argument("--comment", help="why (shown to on-call in Alertmanager)")
    silence.add_argument("--expire", metavar="ID", help="end the silence ID instead")
    silence.add_argument(
        "--config",
        default=None,
        help=f"targets file, for the school's member (default: ${CONFIG_VARIABLE}, else "
        f"{DEFAULT_CONFIG}, as for run)",
    )
    _silence_options(silence)
    silences = sub.add_parser("silences", help="list the active silences of schools")
    _silence_options(silences)

    check = sub.add_parser("check", help="validate a targets file and summarise it")
    check.add_argument(
        "config", nargs="?", default=DEFAULT_CONFIG, help="targets file (default: %(default)s)"
    )
    check.add_argument(
        "--offline",
        action="store_true",
        help="without the secrets: an unset ${VAR} is not a problem (for CI of targets.yaml)",
    )
    _profiles_option(check)
    return parser


def _silence_options(parser: argparse.ArgumentParser) -> None:
    from monitor.silences import DEFAULT_URL, ENV_URL

    parser.add_argument(
        "--alertmanager",
        metavar="URL",
        help=f"Alertmanager's URL (default: ${ENV_URL}, else {DEFAULT_URL})",
    )


def _profiles_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profiles",
        action="append",
        default=[],
        type=Path,
        metavar="DIR",
        help="a directory of your own device profiles, beside the shipped ones (a file named "
        "like a shipped one replaces it); repeatable, later ones win",
    )


def _log_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warning", "error"]
    )
    parser.add_argument("--log-format", default="logfmt", choices=["logfmt", "json"])


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "check":
        return check(Path(args.config), args.profiles, offline=args.offline)
    if args.command == "run":
        return run(args)
    if args.command == "lab":
        return lab(args)
    if args.command in ("silence", "silences"):
        return silence(args)
    return 2


def _report(problems: list) -> int:
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1


def check(path: Path, profile_dirs: Sequence[Path] = (), offline: bool = False) -> int:
    """Both the operator's profiles and the targets file, every problem of both. `offline`: the
    secrets are not at hand (CI), so an unset `${VAR}` is not a problem; its value goes unchecked,
    and the summary says which ones (names only)."""
    problems = []
    try:
        vendors = load_registry(profile_dirs).vendors
    except ProfileError as exc:
        problems += exc.problems
        vendors = registry().vendors  # (still check the targets file against the shipped ones)
    environ = RecordingEnviron(os.environ)
    try:
        config = load_config(path, environ, vendors=vendors, offline=offline)
    except ConfigError as exc:
        problems += exc.problems
    if problems:
        _report(problems)
        if not offline and (unset := environ.unset()):
            names = ", ".join(unset)
            print(
                f"monitor: unset: {names}; `monitor check --offline` checks the file without "
                "the secrets",
                file=sys.stderr,
            )
        return 1
    print(summarize(config))
    if offline and (unset := environ.unset()):
        print(f"{path}: offline: not checked (unset): {', '.join(f'${{{n}}}' for n in unset)}")
    for directory in profile_dirs:
        count = sum(1 for _ in directory.glob("*.yaml"))
        print(f"{directory}: OK: {count} device profile{'s' if count != 1 else ''}")
    return 0


def run(args: argparse.Namespace) -> int:
    try:  # pysnmp's internals are verified here, at start-up (probes/snmp/pysnmp_adapter.py)
        from monitor.collector import Collector, Listen
    except ImportError as exc:
        print(f"monitor: cannot start: {exc}", file=sys.stderr)
        return 1
    from monitor.web_config import WebConfigError, load_web_config

    logs.setup(args.log_level, args.log_format)
    try:
        listen = Listen.parse(args.listen)
        watch = 0.0 if args.watch_interval.strip() == "0" else parse_duration(args.watch_interval)
        shard = parse_shard(args.shard) if args.shard else None
    except ValueError as exc:
        print(f"monitor: {exc}", file=sys.stderr)
        return 2
    path = Path(args.config or os.environ.get(CONFIG_VARIABLE) or DEFAULT_CONFIG)
    environ = RecordingEnviron(os.environ)
    try:
        profiles = load_registry(args.profiles)
        config = load_config(path, environ, vendors=profiles.vendors)
    except ConfigError as exc:  # (ProfileError is one)
        problems = exc.problems
        if missing := environ.missing():
            print(missing_line(missing, str(path)), file=sys.stderr)
            problems = other_problems(problems, missing)
        return _report(problems)
    web_config = None
    if args.web_config_file:
        try:
            web_config = load_web_config(Path(args.web_config_file))
        except WebConfigError as exc:
            print(exc, file=sys.stderr)
            return 1

    async def _main() -> None:
        await Collector(
            config,
            listen,
            watch_interval=watch,
            shard=shard,
            web_config=web_config,
            lifecycle=args.web_enable_lifecycle,
            profiles=profiles,
            profile_dirs=args.profiles,
        ).run()

    loop = os_support.new_event_loop()
    try:
        loop.run_until_complete(_main())
    except KeyboardInterrupt:  # Windows, where Ctrl-C is not a handled signal
        pass
    except OSError as exc:  # e.g. the listen address is taken
        print(f"monitor: cannot start: {exc}", file=sys.stderr)
        return 1
    finally:
        loop.close()
    return 0


def silence(args: argparse.Namespace) -> int:
    """`monitor silence` and `monitor silences`: 0 done, 1 refused or unreachable, 2 usage."""
    from monitor import silences

    name = "monitor " + args.command
    if args.command == "silence":
        if bool(args.expire) == bool(args.name):
            print(f"{name}: give SCHOOL[/TARGET] or --expire ID", file=sys.stderr)
            return 2
        if args.name and not (args.duration and args.comment and args.comment.strip()):
            print(f"{name}: --for DURATION and --comment TEXT are required", file=sys.stderr)
            return 2
        if args.expire and (args.duration or args.comment):
            print(f"{name}: --expire takes no --for or --comment", file=sys.stderr)
            return 2
    try:
        duration = parse_duration(args.duration) if getattr(args, "duration", None) else 0.0
    except ValueError as exc:
        print(f"{name}: --for: {exc}", file=sys.stderr)
        return 2
    if args.command == "silence" and args.name and duration <= 0:
        print(f"{name}: --for must be longer than 0", file=sys.stderr)
        return 2
    try:
        am = silences.Alertmanager(args.alertmanager or silences.default_url())
        if args.command == "silences":
            print(silences.format_table(am.silences()))
        elif args.expire:
            am.expire(args.expire)
            print(f"expired silence {args.expire}")
        else:
            try:
                path = args.config or os.environ.get(CONFIG_VARIABLE) or DEFAULT_CONFIG
                config = silences.load_targets(Path(path))
            except ConfigError as exc:
                for problem in exc.problems:
                    print(problem, file=sys.stderr)
                return 1
            scope = silences.resolve(config, args.name)
            by = silences.author()
            silence_id = am.create(scope, duration, args.comment.strip(), by)
            print(
                f"silenced {scope.member}/{scope.name} for {args.duration} (by {by}): {silence_id}"
            )
    except silences.SilenceError as exc:
        print(f"{name}: {exc}", file=sys.stderr)
        return 1
    return 0


def _ratio(text: str | None, option: str) -> float | None:
    if text is None:
        return None
    value = text.strip().rstrip("%")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{option} wants a percentage like 20%, got {text!r}") from None
    return number / 100 if text.strip().endswith("%") or number > 1 else number


def lab(args: argparse.Namespace) -> int:
    from monitor.lab import control, runner

    socket_path = Path(args.control) if args.control else control.default_socket()
    if args.action != "run":
        if args.action != "status" and not args.name:
            print(f"monitor lab {args.action}: which SCHOOL/TARGET?", file=sys.stderr)
            return 2
        request: dict = {"action": args.action, "name": args.name}
        try:
            if args.action == "degrade":
                request["loss"] = _ratio(args.loss, "--loss") or 0.0
            if args.action == "load" and args.utilisation not in (None, "day"):
                request["utilisation"] = _ratio(args.utilisation, "--utilisation")
        except ValueError as exc:
            print(f"monitor lab: {exc}", file=sys.stderr)
            return 2
        try:
            reply = control.send(socket_path, request)
        except ConnectionError as exc:
            print(f"monitor lab: {exc}", file=sys.stderr)
            return 1
        print(reply["message"], file=sys.stdout if reply["ok"] else sys.stderr)
        return 0 if reply["ok"] else 1
    logs.setup(args.log_level, args.log_format)
    try:
        day = parse_duration(args.day)
        from monitor.collector import Listen

        Listen.parse(args.listen)
    except ValueError as exc:
        print(f"monitor lab: {exc}", file=sys.stderr)
        return 2
    try:
        vendors = load_registry(args.profiles).vendors
        return asyncio.run(
            runner.run(
                Path(args.config),
                args.listen,
                socket_path,
                day,
                not args.no_collector,
                ["--log-level", args.log_level, "--log-format", args.log_format]
                + [f"--profiles={directory}" for directory in args.profiles],
                vendors,
            )
        )
    except ConfigError as exc:  # (ProfileError is one)
        return _report(exc.problems)


if __name__ == "__main__":
    sys.exit(main())
