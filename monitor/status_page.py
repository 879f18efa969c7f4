"""The plain HTML page at `/`: members, schools and targets with their state and last error.

It is what an engineer opens when Grafana is not at hand: no JavaScript, refreshes itself, readable
in a terminal browser. Down targets sort first within their school, schools with trouble first.
"""

from __future__ import annotations

import base64
import hashlib
import html
import time

from monitor import __version__
from monitor.health import ReloadStatus
from monitor.store import ResultStore, TargetState

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;margin-bottom:1.2em;min-width:60em}
th,td{border-bottom:1px solid #ddd;padding:.25em .6em;text-align:left;font-size:.9em}
th{background:#f4f4f4}
.up{color:#1a7f37;font-weight:bold}.down{color:#cf222e;font-weight:bold}.unknown{color:#888}
.err{color:#cf222e;font-family:monospace;font-size:.85em}
h2{margin-bottom:.2em}h3{margin:.6em 0 .2em 0}
.bad{background:#fff0f0;padding:.5em;border:1px solid #cf222e}
"""
# The page's only inline code is its stylesheet: the policy allows exactly that and nothing else.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; style-src 'sha256-"
    + base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()
    + "'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _state_cell(up: bool | None) -> str:
    if up is None:
        return '<td class="unknown">pending</td>'
    return '<td class="up">up</td>' if up else '<td class="down">DOWN</td>'


def _ms(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds * 1000:.1f} ms"


def _ago(when: float | None, now: float) -> str:
    if not when:
        return ""
    delta = max(0, int(now - when))
    return f"{delta}s ago" if delta < 120 else f"{delta // 60}m ago"


def _row(state: TargetState, now: float) -> str:
    t = state.target
    ping = state.ping
    snmp = state.snmp
    ping_text = ""
    if t.ping is None:
        ping_text = "off"
    elif ping is not None:
        ping_text = f"{ping.received}/{ping.sent} {_ms(ping.rtt_median)}"
    snmp_text = ""
    if t.snmp is None:
        snmp_text = "off"
    elif snmp is not None:
        snmp_text = (
            f"ok, {len(snmp.interfaces)} interfaces, up {_uptime(snmp.uptime_seconds)}"
            if snmp.ok
            else "failed"
        )
    device = ""
    last = state.snmp_last_ok
    if last is not None:
        device = " ".join(
            x for x in (last.vendor if last.vendor != "unknown" else "", last.sys_name) if x
        )
    error = state.last_error or ""
    cells = [
        f"<td>{html.escape(t.id)}</td>",
        f"<td>{html.escape(t.role)}</td>",
        f"<td>{html.escape(t.host)}</td>",
        _state_cell(state.up),
        f"<td>{html.escape(ping_text)}</td>",
        f"<td>{html.escape(snmp_text)}</td>",
        f"<td>{html.escape(device)}</td>",
        f"<td>{html.escape(_ago(ping.started if ping else None, now))}</td>",
        f'<td class="err">{html.escape(error)}</td>',
    ]
    return "<tr>" + "".join(cells) + "</tr>"


def _uptime(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    days, rest = divmod(int(seconds), 86400)
    return f"{days}d {rest // 3600}h" if days else f"{rest // 3600}h {rest % 3600 // 60}m"


def render(store: ResultStore, reload: ReloadStatus) -> str:
    now = time.time()
    states = {s.target.key: s for s in store.snapshot()}
    config = store.config
    out = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<meta http-equiv='refresh' content='15'>",
        "<title>schoolnet-monitor</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>schoolnet-monitor {html.escape(__version__)}</h1>",
    ]
    total = len(states)
    down = sum(1 for s in states.values() if s.up is False)
    out.append(
        f"<p>{total} targets, <span class='{'down' if down else 'up'}'>{down} down</span>. "
        f"Config: {html.escape(str(config.path) if config else '?')}, "
        f"last loaded {_ago(reload.last_success, now)}. "
        "<a href='/metrics'>/metrics</a></p>"
    )
    if not reload.successful:
        out.append(
            "<div class='bad'><b>The last edit of the config was rejected</b>; the "
            "previous config keeps running:<pre>"
            + html.escape("\n".join(reload.problems))
            + "</pre></div>"
        )
    if config is None:
        out.append("</body></html>")
        return "".join(out)
    header = (
        "<tr><th>target</th><th>role</th><th>address</th><th>state</th><th>ping</th>"
        "<th>snmp</th><th>device</th><th>last round</th><th>last error</th></tr>"
    )
    for member in config.members:
        out.append(f"<h2>{html.escape(member.name)} <small>({html.escape(member.id)})</small></h2>")
        schools = sorted(
            member.schools,
            key=lambda sc: (
                -sum(1 for t in sc.targets if (st := states.get(t.key)) and st.up is False)
            ),
        )
        for school in schools:
            rows = [states[t.key] for t in school.targets if t.key in states]
            rows.sort(key=lambda s: {False: 0, None: 1, True: 2}[s.up])
            bad = sum(1 for s in rows if s.up is False)
            out.append(
                f"<h3>{html.escape(school.name)} <small>({html.escape(school.id)})"
                + (f" <span class='down'>{bad} down</span>" if bad else "")
                + "</small></h3>"
            )
            out.append("<table>" + header + "".join(_row(s, now) for s in rows) + "</table>")
    out.append("</body></html>")
    return "".join(out)
