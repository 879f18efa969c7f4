"""Loading and validating targets.yaml: the shipped file, every class of error with its exact
position, inheritance, environment substitution and secrecy."""

from __future__ import annotations

import ipaddress
import textwrap
from collections import Counter
from pathlib import Path

import pytest

from monitor.config.loader import (
    ConfigError,
    Problem,
    load_config,
    load_config_text,
    summarize,
)
from monitor.config.model import ROLES, Config, PingSettings, SnmpSettings, Target

REPO = Path(__file__).resolve().parent.parent
SHIPPED = REPO / "targets.yaml"
ENV = {
    "KIEN_SNMP_AUTH_PASSWORD": "auth-pass-Qx7",
    "KIEN_SNMP_PRIV_PASSWORD": "priv-pass-Zr4",
    "KIEN_SNMP_COMMUNITY": "community-Wm9",
}


def load(text: str, environ: dict[str, str] | None = None) -> Config:
    return load_config_text(textwrap.dedent(text), "t.yaml", environ or {})


def problems(text: str, environ: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(text, environ)
    return [str(problem) for problem in caught.value.problems]


def target(config: Config, target_id: str) -> Target:
    (found,) = [t for t in config.targets() if t.id == target_id]
    return found


# --- the shipped targets.yaml ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def shipped() -> Config:
    return load_config(SHIPPED, ENV)


def test_shipped_members_in_order(shipped: Config) -> None:
    assert [(m.id, m.name) for m in shipped.members] == [
        ("davinci", "ROC Da Vinci College"),
        ("sdl", "Stedelijk Dalton Lyceum Dordrecht"),
        ("grienden", "Griendencollege"),
        ("loket", "LOKET Zwijndrechtse Waard"),
        ("h3o", "Stichting H3O"),
        ("petri", "Hans Petrischool"),
        ("opod", "Stichting OPOD"),
    ]


def test_shipped_school_counts(shipped: Config) -> None:
    schools = {m.id: m.schools for m in shipped.members}
    assert len(schools["opod"]) == 13
    assert ("opod-regenboog", "De Regenboog") in [(s.id, s.name) for s in schools["opod"]]
    for member_id, member_schools in schools.items():
        if member_id != "opod":
            assert 1 <= len(member_schools) <= 4, member_id
        for school in member_schools:
            assert school.id.startswith(member_id + "-"), school.id
            assert school.member == member_id
    assert 120 <= sum(1 for _ in shipped.targets()) <= 200


def test_shipped_schools_have_one_internet_link(shipped: Config) -> None:
    colleges = {"davinci", "sdl", "grienden"}
    for school in shipped.schools():
        links = [t for t in school.targets if t.role == "link"]
        assert [t.id for t in links] == ["internet"], school.id
        (link,) = links
        assert link.snmp is None
        assert link.via is not None and link.bandwidth is not None
        low, high = (1e9 / 8, 10e9 / 8) if school.member in colleges else (100e6 / 8, 500e6 / 8)
        assert low <= link.bandwidth <= high, school.id
        (edge,) = [t for t in school.targets if t.role in ("router", "firewall")]
        assert link.via.target == edge.id
        assert edge.snmp is not None
        wan = {
            "mikrotik": "ether1",
            "fortinet": "wan1",
            "juniper": "ge-0/0/0",
            "cisco": "GigabitEthernet0/0",
            "opnsense": "igb0",
        }
        assert link.via.interface == wan[edge.vendor or ""], school.id


def test_shipped_addressing_plan(shipped: Config) -> None:
    loopback = ipaddress.ip_network("127.0.0.0/8")
    seen: set[str] = set()
    for member_no, member in enumerate(shipped.members, 1):
        for school_no, school in enumerate(member.schools, 1):
            for t in school.targets:
                address = ipaddress.ip_address(t.host)
                assert address in loopback and t.port is None
                assert t.host not in seen, t.host
                seen.add(t.host)
                m, s, h = (int(part) for part in t.host.split(".")[1:])
                assert (m, s) == (member_no, school_no), t.key
                expected = {
                    "router": range(1, 2),
                    "firewall": range(1, 2),
                    "controller": range(10, 11),
                    "ap": range(11, 100),
                    "link": range(254, 255),
                }.get(t.role, range(2, 10))
                assert h in expected, t.key


def test_shipped_structure_per_school(shipped: Config) -> None:
    for school in shipped.schools():
        ids = [t.id for t in school.targets]
        assert len(ids) == len(set(ids)), school.id
        roles = Counter(t.role for t in school.targets)
        assert roles["router"] + roles["firewall"] == 1, school.id
        assert roles["switch"] >= 1 and roles["ap"] >= 2, school.id
        by_id = {t.id: t for t in school.targets}
        for t in school.targets:
            if t.role == "ap":
                assert t.parent is not None and by_id[t.parent].role == "switch", t.key
            if t.role != "link":
                assert t.vendor is not None, t.key
    assert len({s.id for s in shipped.schools()}) == sum(1 for _ in shipped.schools())


def test_shipped_colleges_are_bigger_than_primary_schools(shipped: Config) -> None:
    colleges = {"davinci", "sdl", "grienden"}
    for member in shipped.members:
        roles = Counter(t.role for s in member.schools for t in s.targets)
        assert (roles["controller"] > 0) == (member.id in colleges), member.id
        for school in member.schools:
            aps = sum(1 for t in school.targets if t.role == "ap")
            assert (aps >= 5) if member.id in colleges else (2 <= aps <= 4), school.id


def test_shipped_uses_both_auths(shipped: Config) -> None:
    auths = Counter(t.snmp.auth.name for t in shipped.targets() if t.snmp and t.snmp.auth)
    assert auths["kien-v3"] > auths["legacy-v2c"] > 0
    v3 = shipped.auths["kien-v3"]
    assert (v3.version, v3.username, v3.security_level) == ("3", "kien-monitor", "authPriv")
    assert (v3.auth_protocol, v3.priv_protocol) == ("SHA256", "AES")
    assert v3.auth_password == ENV["KIEN_SNMP_AUTH_PASSWORD"]
    assert shipped.auths["legacy-v2c"].community == ENV["KIEN_SNMP_COMMUNITY"]


def test_shipped_keeps_secrets_out_of_repr(shipped: Config) -> None:
    assert set(shipped.secrets()) == set(ENV.values())
    text = repr(shipped) + str(shipped) + summarize(shipped)
    for secret in ENV.values():
        assert secret not in text


def test_shipped_needs_the_environment() -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(SHIPPED, {})
    messages = [p.message for p in caught.value.problems]
    assert messages == [
        "environment variable KIEN_SNMP_AUTH_PASSWORD is not set",
        "environment variable KIEN_SNMP_PRIV_PASSWORD is not set",
        "environment variable KIEN_SNMP_COMMUNITY is not set",
    ]
    lines = SHIPPED.read_text().splitlines()
    for problem in caught.value.problems:
        assert problem.path == str(SHIPPED)
        assert lines[problem.line - 1][problem.column - 1 :].startswith("${KIEN_SNMP_")


def test_summarize_shipped(shipped: Config) -> None:
    roles = Counter(t.role for t in shipped.targets())
    text = summarize(shipped)
    assert text.startswith(f"{SHIPPED}: OK: 7 members, {sum(1 for _ in shipped.schools())} schools")
    assert f"router {roles['router']}, firewall {roles['firewall']}, switch" in text


# --- summarize ------------------------------------------------------------------------------------


def test_summarize() -> None:
    config = load(
        """\
        auths:
          v2: {version: 2c, community: c}
        defaults:
          snmp: {auth: v2}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: rtr, role: router, address: 10.0.0.1}
                  - {id: ap1, role: ap, address: 10.0.0.11, snmp: false}
                  - {id: ap2, role: ap, address: 10.0.0.12}
                  - {id: internet, role: link, address: 10.0.0.254}
        """
    )
    assert summarize(config) == (
        "t.yaml: OK: 1 member, 1 school, 4 targets (router 1, ap 2, link 1); "
        "2 polled over SNMP, 2 ping-only"
    )


# --- problems and their format --------------------------------------------------------------------


def test_problem_format_and_sorting() -> None:
    error = ConfigError(
        [Problem("f.yaml", 9, 2, "b"), Problem("f.yaml", 3, 7, "a"), Problem("f.yaml", 3, 1, "c")]
    )
    assert [str(p) for p in error.problems] == ["f.yaml:3:1: c", "f.yaml:3:7: a", "f.yaml:9:2: b"]
    assert str(error) == "f.yaml:3:1: c\nf.yaml:3:7: a\nf.yaml:9:2: b"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value) == f"{path}:1:1: cannot read file: No such file or directory"


def test_load_config_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "targets.yaml"
    path.write_text("members:\n  - {id: m, schools: [{id: s, targets: []}]}\n")
    config = load_config(path, {})
    assert config.path == path
    assert [s.id for s in config.schools()] == ["s"]


def test_invalid_yaml_reports_the_parser_position() -> None:
    assert problems(
        """\
        members:
          - id: m
            schools: [
          - id: n
        """
    ) == [
        "t.yaml:4:3: invalid YAML: did not find expected node content, found '-' "
        "(while parsing a flow node at line 4)"
    ]


def test_tab_indentation_is_a_yaml_error() -> None:
    assert problems("members:\n\t- id: m\n") == [
        "t.yaml:2:1: invalid YAML: found character '\\t' that cannot start any token "
        "(while scanning for the next token at line 2)"
    ]


def test_empty_file_and_wrong_top_level() -> None:
    assert problems("") == ["t.yaml:1:1: the file is empty; it needs at least a 'members' list"]
    assert problems("# only a comment\n") == [
        "t.yaml:1:1: the file is empty; it needs at least a 'members' list"
    ]
    assert problems("- id: m\n") == [
        "t.yaml:1:1: the top level must be a mapping with 'members', got a list"
    ]
    assert problems("defaults: {}\n") == [
        "t.yaml:1:1: the top level has no members (the list of member organisations)"
    ]


def test_two_documents() -> None:
    assert problems("members: []\n---\nmembers: []\n") == [
        "t.yaml:2:1: invalid YAML: the file must hold a single document, but found a second one"
    ]


def test_unknown_keys_with_and_without_hint() -> None:
    assert problems(
        """\
        defaults:
          ping: {intervall: 20s}
          snmp: {zzz: 1}
        member: []
        members:
          - id: m
            scools: []
            schools:
              - id: s
                targets:
                  - {id: t, role: switch, adress: 10.0.0.1, snmp: false}
        """
    ) == [
        "t.yaml:2:10: unknown key 'intervall' in ping settings; did you mean 'interval'?",
        "t.yaml:3:10: unknown key 'zzz' in snmp settings",
        "t.yaml:4:1: unknown key 'member' in the top level; did you mean 'members'?",
        "t.yaml:7:5: unknown key 'scools' in member 'm'; did you mean 'schools'?",
        "t.yaml:11:13: target 't' has no address",
        "t.yaml:11:35: unknown key 'adress' in target 't'; did you mean 'address'?",
    ]


def test_duplicate_keys() -> None:
    assert problems(
        """\
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - id: t
                    role: switch
                    address: 10.0.0.1
                    role: ap
                    snmp: false
            id: n
        """
    ) == [
        "t.yaml:9:13: duplicate key 'role' (first at line 7)",
        "t.yaml:11:5: duplicate key 'id' (first at line 2)",
    ]


def test_duplicate_ids() -> None:
    assert problems(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: switch, address: 10.0.0.1}
                  - {id: t, role: switch, address: 10.0.0.2}
              - id: s2
                targets:
                  - {id: t, role: switch, address: 10.0.0.1}
          - id: n
            schools:
              - id: s
                targets: []
          - id: m
            schools: []
        """
    ) == [
        "t.yaml:8:18: duplicate target id 't' in school 's' (first at line 7)",
        "t.yaml:14:13: duplicate school id 's' (first at line 5)",
        "t.yaml:16:9: duplicate member id 'm' (first at line 3)",
    ]


def test_same_target_id_in_two_schools_is_fine() -> None:
    config = load(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - {id: a, targets: [{id: internet, role: link, address: 10.0.0.1}]}
              - {id: b, targets: [{id: internet, role: link, address: 10.0.1.1}]}
        """
    )
    assert [t.key for t in config.targets()] == [("m", "a", "internet"), ("m", "b", "internet")]


def test_wrong_types() -> None:
    assert problems(
        """\
        defaults:
          ping: {count: five, interval: [15s], size: 56.5}
          snmp: {bulk: maybe, retries: "1"}
        members:
          - id: 12
            name: no
            schools:
              - id: s
                ping: [count]
                targets:
                  - {id: t, role: switch, address: 10.0.0.1, snmp: false, labels: [a]}
                  - just a string
          - id: n
            schools: {id: s}
        """
    ) == [
        "t.yaml:2:17: 'count' must be an integer, got string 'five'",
        "t.yaml:2:33: 'interval' must be a duration such as 15s or 1m30s, got a list",
        "t.yaml:2:46: 'size' must be an integer, got number 56.5",
        "t.yaml:3:16: 'bulk' must be true or false, got string 'maybe'",
        "t.yaml:3:32: 'retries' must be an integer, got string '1'",
        "t.yaml:5:9: 'id' must be a string, got integer 12; put it in quotes if you mean the text",
        "t.yaml:6:11: 'name' must be a string, got boolean no; put it in quotes if you mean "
        "the text",
        "t.yaml:9:15: 'ping' must be a mapping of settings, true or false, got a list",
        "t.yaml:11:75: 'labels' must be a mapping, got a list",
        "t.yaml:12:13: each target must be a mapping, got string 'just a string'",
        "t.yaml:14:14: 'schools' must be a list, got a mapping",
    ]


def test_integers_must_be_plain_decimal() -> None:
    # YAML 1.1 reads 010 as 8; a count of 010 must not silently become 8.
    assert problems(
        """\
        defaults:
          ping: {count: 010, size: 0x40}
        members: []
        """
    ) == [
        "t.yaml:2:17: 'count' must be a plain decimal integer, got 010",
        "t.yaml:2:28: 'size' must be a plain decimal integer, got 0x40",
    ]


def test_ranges() -> None:
    assert problems(
        """\
        defaults:
          ping: {count: 0, size: 70000, interval: 0s}
          snmp: {retries: 11, max_repetitions: 0, interval: 5m}
        members: []
        """
    ) == [
        "t.yaml:2:17: 'count' must be between 1 and 100, got integer 0",
        "t.yaml:2:26: 'size' must be between 16 and 65507, got integer 70000",
        "t.yaml:2:43: 'interval' must be longer than 0s",
        "t.yaml:3:19: 'retries' must be between 0 and 10, got integer 11",
        "t.yaml:3:40: 'max_repetitions' must be between 1 and 100, got integer 0",
    ]


def test_durations_need_units() -> None:
    assert problems(
        """\
        defaults:
          ping: {interval: 15, timeout: 1x, spacing: 0.5}
        members: []
        """
    ) == [
        "t.yaml:2:20: 'interval': durations need a unit, e.g. 15s (got integer 15)",
        "t.yaml:2:33: 'timeout': unknown unit 'x'; use a number and a unit ms, s, m, h or d, "
        "e.g. 15s or 1m30s (got string '1x')",
        "t.yaml:2:46: 'spacing': durations need a unit, e.g. 15s (got number 0.5)",
    ]


def test_missing_required_keys() -> None:
    assert problems(
        """\
        members:
          - name: Nameless
            schools: []
          - id: m
          - id: n
            schools:
              - name: x
                targets: []
              - id: s
              - id: s2
                targets:
                  - {role: switch, address: 10.0.0.1, snmp: false}
                  - {id: t2, address: 10.0.0.2, snmp: false}
                  - {id: t3, role: ap, snmp: false}
        """
    ) == [
        "t.yaml:2:5: member has no id",
        "t.yaml:4:5: member 'm' has no schools",
        "t.yaml:7:9: school has no id",
        "t.yaml:9:9: school 's' has no targets",
        "t.yaml:12:13: target has no id",
        "t.yaml:13:13: target 't2' has no role",
        "t.yaml:14:13: target 't3' has no address",
    ]


def test_many_problems_are_all_reported_in_file_order() -> None:
    found = problems(
        """\
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: a, role: swich, address: 10.0.0.1, snmp: false}
                  - {id: b, role: ap, address: 10.0.0.256, snmp: false}
                  - {id: c, role: ap, address: 10.0.0.3, snmp: false, vendor: arubaa}
                  - {id: d/e, role: ap, address: 10.0.0.4, snmp: false}
        """
    )
    assert found == [
        "t.yaml:6:27: unknown role 'swich'; did you mean 'switch'?",
        "t.yaml:7:40: 'address': not a valid IPv4 address (got string '10.0.0.256')",
        "t.yaml:8:71: unknown vendor 'arubaa'; did you mean 'aruba'?",
        "t.yaml:9:18: invalid target id 'd/e': use 1 to 64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit",
    ]


# --- roles, vendors, ids --------------------------------------------------------------------------


def test_role_and_vendor_are_canonicalised() -> None:
    config = load(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: Switch, address: 10.0.0.1, vendor: HPE}
        """
    )
    assert (target(config, "t").role, target(config, "t").vendor) == ("switch", "hpe")


def test_unknown_role_without_close_match_lists_the_roles() -> None:
    assert problems(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: xyz, address: 10.0.0.1}
        """
    ) == [f"t.yaml:7:27: unknown role 'xyz'; expected one of {', '.join(ROLES)}"]


def test_id_rules() -> None:
    long_id = "a" * 65
    assert problems(
        f"""\
        defaults: {{snmp: false}}
        members:
          - id: -m
            schools:
              - id: {long_id}
                targets:
                  - {{id: ok.id_1-x, role: ap, address: 10.0.0.1}}
                  - {{id: "", role: ap, address: 10.0.0.2}}
        """
    ) == [
        "t.yaml:3:9: invalid member id '-m': use 1 to 64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit",
        "t.yaml:5:13: invalid school id 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...': use 1 to 64 "
        "letters, digits, '.', '_' or '-', starting with a letter or digit",
        "t.yaml:8:18: 'id' must not be empty",
    ]


# --- addresses ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "host", "port"),
    [
        ("10.1.2.3", "10.1.2.3", None),
        ("10.1.2.3:1161", "10.1.2.3", 1161),
        ('"::1"', "::1", None),
        ('"2001:db8::5"', "2001:db8::5", None),
        ('"[2001:db8::5]"', "2001:db8::5", None),
        ('"[::1]:1161"', "::1", 1161),
        ("sw1.school.example", "sw1.school.example", None),
        ("sw1.school.example.", "sw1.school.example.", None),
        ("sw1:65535", "sw1", 65535),
        ("localhost", "localhost", None),
    ],
)
def test_address_forms(written: str, host: str, port: int | None) -> None:
    config = load(
        f"""\
        defaults: {{snmp: false}}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {{id: t, role: switch, address: {written}}}
        """
    )
    assert (target(config, "t").host, target(config, "t").port) == (host, port)


@pytest.mark.parametrize(
    ("written", "reason"),
    [
        ("10.0.0.256", "not a valid IPv4 address"),
        ("10.0.0", "not a valid IPv4 address"),
        ("10.0.0.1:0", "the port must be a number from 1 to 65535"),
        ("10.0.0.1:70000", "the port must be a number from 1 to 65535"),
        ("10.0.0.1:snmp", "the port must be a number from 1 to 65535"),
        ('"[10.0.0.1]:161"', "brackets are only for IPv6 addresses"),
        ('"[::1]161"', "only ':port' may follow ']'"),
        ('"[::1"', "'[' without a closing ']'"),
        ('"fe80::1::2"', "not a valid IPv6 address (with a port, write it as [address]:port)"),
        ("sw_1.school", "not a valid IP address or host name"),
        ("-sw.school", "not a valid IP address or host name"),
        ('" 10.0.0.1"', "an address must not be empty or contain spaces"),
    ],
)
def test_bad_addresses(written: str, reason: str) -> None:
    (found,) = problems(
        f"""\
        defaults: {{snmp: false}}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {{id: t, role: switch, address: {written}}}
        """
    )
    assert found.startswith(f"t.yaml:7:44: 'address': {reason}")


def test_unquoted_bracketed_ipv6_gets_a_hint() -> None:
    assert problems(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - id: t
                    role: switch
                    address: [fe80::1]
        """
    ) == [
        "t.yaml:9:22: 'address' must be an IP address or host name, optionally with :port, got "
        'a list; put a bracketed IPv6 address in quotes, e.g. "[2001:db8::1]:1161"'
    ]


def test_target_line_is_where_its_mapping_starts() -> None:
    config = load(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: a, role: ap, address: 10.0.0.1}

                  - id: b
                    role: ap
                    address: 10.0.0.2
        """
    )
    assert [(t.id, t.line) for t in config.targets()] == [("a", 7), ("b", 9)]


# --- inheritance ----------------------------------------------------------------------------------


INHERITANCE = """\
    auths:
      main: {version: 2c, community: one}
      other: {version: 1, community: two}
    defaults:
      ping: {interval: 30s, count: 3}
      snmp: {auth: main, interval: 2m}
    members:
      - id: m
        ping: {size: 100}
        snmp: {auth: other}
        schools:
          - id: s
            ping: {count: 4, timeout: 500ms}
            snmp: false
            targets:
              - {id: plain, role: switch, address: 10.0.0.1}
              - {id: again, role: switch, address: 10.0.0.2, snmp: {retries: 3}}
              - {id: enabled, role: switch, address: 10.0.0.3, snmp: true}
              - {id: quiet, role: switch, address: 10.0.0.4, ping: false, snmp: {}}
              - {id: tuned, role: switch, address: 10.0.0.5, ping: {count: 10, spacing: 2s}}
      - id: n
        schools:
          - id: s2
            targets:
              - {id: base, role: switch, address: 10.0.0.1}
"""


def test_inheritance_merges_key_by_key() -> None:
    config = load(INHERITANCE)
    assert target(config, "base").ping == PingSettings(interval=30, count=3)
    assert target(config, "base").snmp == SnmpSettings(interval=120, auth=config.auths["main"])
    assert target(config, "plain").ping == PingSettings(interval=30, count=4, timeout=0.5, size=100)
    assert target(config, "tuned").ping == PingSettings(
        interval=30, count=10, timeout=0.5, spacing=2, size=100
    )


def test_false_switches_off_and_a_mapping_below_switches_back_on() -> None:
    config = load(INHERITANCE)
    assert target(config, "plain").snmp is None
    # Below a `false`, a mapping or `true` re-enables with everything inherited from above it
    # (the member's auth, the defaults' interval), plus its own keys.
    other = config.auths["other"]
    assert target(config, "again").snmp == SnmpSettings(interval=120, retries=3, auth=other)
    assert target(config, "enabled").snmp == SnmpSettings(interval=120, auth=other)
    assert target(config, "quiet").snmp == SnmpSettings(interval=120, auth=other)
    assert target(config, "quiet").ping is None


def test_true_inherits_as_is() -> None:
    config = load(
        """\
        defaults:
          ping: {count: 2}
        members:
          - id: m
            ping: true
            snmp: false
            schools:
              - id: s
                targets:
                  - {id: t, role: ap, address: 10.0.0.1, ping: yes}
        """
    )
    assert target(config, "t").ping == PingSettings(count=2)


def test_built_in_defaults() -> None:
    config = load(
        """\
        auths:
          a: {version: 2c, community: c}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: ap, address: 10.0.0.1, snmp: {auth: a}}
        """
    )
    t = target(config, "t")
    assert t.ping == PingSettings(interval=15, count=5, timeout=1, spacing=1, size=56)
    assert t.snmp == SnmpSettings(
        interval=60, timeout=2, retries=1, auth=config.auths["a"], max_repetitions=25, bulk=True
    )


def test_member_and_school_names_default_to_ids() -> None:
    config = load("members: [{id: m, schools: [{id: s, targets: []}]}]\n")
    assert (config.members[0].name, config.members[0].schools[0].name) == ("m", "s")


def test_ping_round_must_fit_its_interval() -> None:
    assert problems(
        """\
        defaults:
          ping: {interval: 4s}
          snmp: false
        members:
          - id: m
            ping: {size: 100}
            schools:
              - id: s
                ping: {count: 10, spacing: 200ms}
                targets:
                  - {id: ok, role: ap, address: 10.0.0.1}
                  - {id: slow, role: ap, address: 10.0.0.2, ping: {timeout: 3s}}
        """
    ) == [
        "t.yaml:2:3: ping round of 5s (spacing 1s x (count 5 - 1) + timeout 1s) "
        "does not fit in interval 4s",
        "t.yaml:12:53: ping round of 4.8s (spacing 200ms x (count 10 - 1) + timeout 3s) "
        "does not fit in interval 4s",
    ]


def test_snmp_timeout_must_be_shorter_than_interval() -> None:
    assert problems(
        """\
        auths:
          a: {version: 2c, community: c}
        defaults:
          snmp: {auth: a, timeout: 10s}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: ap, address: 10.0.0.1, snmp: {interval: 10s}}
        """
    ) == ["t.yaml:10:50: snmp timeout 10s must be shorter than interval 10s"]


def test_unknown_auth_reference() -> None:
    assert problems(
        """\
        auths:
          kien-v3: {version: 2c, community: c}
          legacy: {version: 1, community: c}
        defaults:
          snmp: {auth: kien-v2}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: ap, address: 10.0.0.1, snmp: {auth: nothing-like-it}}
        """
    ) == [
        "t.yaml:5:16: unknown auth 'kien-v2'; did you mean 'kien-v3'?",
        "t.yaml:11:63: unknown auth 'nothing-like-it'; defined are 'kien-v3', 'legacy'",
    ]


def test_no_auth_for_an_snmp_target() -> None:
    assert problems(
        """\
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: switch, address: 10.0.0.1}
                  - {id: u, role: ap, address: 10.0.0.2, snmp: false}
                  - {id: internet, role: link, address: 10.0.0.3}
        """
    ) == [
        "t.yaml:6:13: no SNMP auth for target 't': set snmp.auth (here or in defaults) "
        "or snmp: false"
    ]


def test_nothing_to_watch() -> None:
    assert problems(
        """\
        defaults: {ping: false, snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: switch, address: 10.0.0.1}
        """
    ) == ["t.yaml:7:13: target 't' has both ping and snmp switched off: nothing would watch it"]


# --- auths ----------------------------------------------------------------------------------------


def test_auth_versions_and_canonical_protocols() -> None:
    config = load(
        """\
        auths:
          v1: {version: 1, community: c1}
          v1s: {version: "1", community: c1}
          v2: {version: 2c, community: c2}
          none: {version: 3, username: u, security_level: noauthnopriv}
          auth: {version: 3, username: u, security_level: authNoPriv, auth_protocol: sha512,
                 auth_password: "12345678"}
          priv:
            version: "3"
            username: u
            security_level: authPriv
            auth_protocol: md5
            auth_password: "12345678"
            priv_protocol: aes256c
            priv_password: abcdefgh
            context: vlan-20
        members: []
        """
    )
    auths = config.auths
    assert [auths[n].version for n in ("v1", "v1s", "v2", "none", "priv")] == [
        "1",
        "1",
        "2c",
        "3",
        "3",
    ]
    assert auths["v2"].community == "c2"
    assert auths["none"].security_level == "noAuthNoPriv"
    assert (auths["priv"].auth_protocol, auths["priv"].priv_protocol) == ("MD5", "AES256C")
    assert auths["priv"].context == "vlan-20"
    assert auths["auth"].auth_password == "12345678"


def test_auth_problems() -> None:
    assert problems(
        """\
        auths:
          a: {version: 2, community: c}
          b: {version: 2c, username: u}
          c: {version: 3, community: c, security_level: authPriv, username: u}
          d: {version: 3}
          e: {version: 3, username: u, security_level: noAuthNoPriv, auth_password: abcdefgh}
          f: {version: 3, username: u, security_level: authNoPriv, auth_protocol: SHA265,
              auth_password: abcdefgh, priv_protocol: AES}
          g: {community: c}
          h: [version]
          i/j: {version: 1, community: c}
        members: []
        """
    ) == [
        "t.yaml:2:16: 'version' must be 1, 2c or 3, got integer 2",
        "t.yaml:3:6: auth 'b' has no community (SNMPv2c needs one)",
        "t.yaml:3:20: 'username' is only for SNMPv3 (auth 'b' is version 2c)",
        "t.yaml:4:6: auth 'c' has no auth_protocol (security_level authPriv needs one)",
        "t.yaml:4:6: auth 'c' has no auth_password (security_level authPriv needs one)",
        "t.yaml:4:6: auth 'c' has no priv_protocol (security_level authPriv needs one)",
        "t.yaml:4:6: auth 'c' has no priv_password (security_level authPriv needs one)",
        "t.yaml:4:19: 'community' is only for SNMPv1/v2c (auth 'c' is version 3: use username "
        "and passwords)",
        "t.yaml:5:6: auth 'd' has no username (SNMPv3 needs one)",
        "t.yaml:5:6: auth 'd' has no security_level (SNMPv3 needs one)",
        "t.yaml:6:62: 'auth_password' is not used with security_level noAuthNoPriv; remove it "
        "or raise the level",
        "t.yaml:7:75: unknown auth_protocol (not shown: it may be a secret); "
        "did you mean 'SHA256'?",
        "t.yaml:8:32: 'priv_protocol' is not used with security_level authNoPriv; remove it "
        "or raise the level",
        "t.yaml:9:6: auth 'g' has no version (1, 2c or 3)",
        "t.yaml:10:6: auth 'h' must be a mapping, got a list",
        "t.yaml:11:3: invalid auth name 'i/j': use 1 to 64 letters, digits, '.', '_' or '-', "
        "starting with a letter or digit",
    ]


def test_a_broken_auth_is_reported_once() -> None:
    # The auth is rejected; the targets using it must not add "no auth"/"unknown auth" noise.
    assert problems(
        """\
        auths:
          a: {version: 3, username: u}
        defaults:
          snmp: {auth: a}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: switch, address: 10.0.0.1}
        """
    ) == ["t.yaml:2:6: auth 'a' has no security_level (SNMPv3 needs one)"]


def test_passwords_must_be_strings_and_are_not_echoed() -> None:
    assert problems(
        """\
        auths:
          a: {version: 2c, community: 98765432}
          b:
            version: 3
            username: u
            security_level: authNoPriv
            auth_protocol: SHA
            auth_password: 12345678
        members: []
        """
    ) == [
        "t.yaml:2:31: 'community' must be a string, got an integer; put it in quotes if you "
        "mean the text",
        "t.yaml:8:20: 'auth_password' must be a string, got an integer; put it in quotes if you "
        "mean the text",
    ]


def test_short_password_is_reported_without_the_password() -> None:
    secret = "Sh0rt!"
    found = problems(
        f"""\
        auths:
          a: {{version: 3, username: u, security_level: authNoPriv, auth_protocol: SHA,
              auth_password: "{secret}"}}
          b: {{version: 3, username: u, security_level: authNoPriv, auth_protocol: SHA,
              auth_password: "${{SHORT}}"}}
        members: []
        """,
        {"SHORT": secret},
    )
    assert found == [
        "t.yaml:3:22: 'auth_password' must be at least 8 characters long",
        "t.yaml:5:22: 'auth_password' (the value of ${SHORT}) must be at least 8 characters long",
    ]


# --- links ----------------------------------------------------------------------------------------


def test_links() -> None:
    config = load(
        """\
        auths:
          a: {version: 2c, community: c}
        defaults:
          snmp: {auth: a}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: rtr, role: router, address: 10.0.0.1}
                  - id: internet
                    role: link
                    address: 10.0.0.254
                    bandwidth: 1.5Gbit
                    via: {target: rtr, interface: ge-0/0/0}
                  - {id: backup, role: link, address: 10.0.1.254, snmp: false}
        """
    )
    link = target(config, "internet")
    assert (link.snmp, link.bandwidth) == (None, 187_500_000.0)
    assert (link.via.target, link.via.interface) == ("rtr", "ge-0/0/0")  # type: ignore[union-attr]
    backup = target(config, "backup")
    assert (backup.snmp, backup.bandwidth, backup.via) == (None, None, None)


def test_link_problems() -> None:
    assert problems(
        """\
        auths:
          a: {version: 2c, community: c}
        defaults:
          snmp: {auth: a}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: router-1, role: router, address: 10.0.0.1}
                  - {id: sw, role: switch, address: 10.0.0.2, snmp: false, bandwidth: 1Gbit}
                  - {id: ap, role: ap, address: 10.0.0.3, via: {target: sw, interface: x}}
                  - {id: l1, role: link, address: 10.0.0.4, snmp: {}, bandwidth: 500}
                  - {id: l2, role: link, address: 10.0.0.5, via: {target: router-2}}
                  - {id: l3, role: link, address: 10.0.0.6, via: {target: sw, interface: p1}}
                  - {id: l4, role: link, address: 10.0.0.7, via: {target: l4, interface: p1}}
                  - {id: l5, role: link, address: 10.0.0.8, via: {target: gateway, interface: p1}}
                  - {id: l6, role: link, address: 10.0.0.9, bandwidth: 100MBps, via: rtr}
              - id: s2
                targets:
                  - {id: gateway, role: router, address: 10.0.1.1}
        """
    ) == [
        "t.yaml:11:68: 'bandwidth' is only for links (role: link), not for role switch",
        "t.yaml:12:51: 'via' is only for links (role: link), not for role ap",
        "t.yaml:13:53: links are ping-only; their traffic is read from the target named in via",
        "t.yaml:13:74: 'bandwidth': bandwidth needs a unit, e.g. 500Mbit or 1Gbit "
        "(got integer 500)",
        "t.yaml:14:58: via has no interface (its name on the via target, e.g. ge-0/0/0)",
        "t.yaml:14:67: unknown via target 'router-2' in school 's'; did you mean 'router-1'?",
        "t.yaml:15:67: via target 'sw' has SNMP switched off; a link's traffic is read from it "
        "over SNMP",
        "t.yaml:16:67: a link cannot be read via itself; name the router or switch whose "
        "interface carries its traffic",
        "t.yaml:17:67: unknown via target 'gateway' in school 's'",
        "t.yaml:18:64: 'bandwidth': 'MBps' reads as bytes per second; bandwidth is given in bits: "
        "use bit, kbit, Mbit, Gbit or Tbit (or bps, kbps, Mbps, Gbps, Tbps), e.g. 500Mbit "
        "(got string '100MBps')",
        "t.yaml:18:78: 'via' (target and interface) must be a mapping, got string 'rtr'",
    ]


# --- parents --------------------------------------------------------------------------------------


def test_parents() -> None:
    config = load(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: ap, role: ap, address: 10.0.0.11, parent: sw}
                  - {id: sw, role: switch, address: 10.0.0.2}
        """
    )
    assert (target(config, "ap").parent, target(config, "sw").parent) == ("sw", None)


def test_parent_problems() -> None:
    assert problems(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: sw-core, role: switch, address: 10.0.0.2, parent: sw-kore}
                  - {id: self, role: switch, address: 10.0.0.3, parent: self}
                  - {id: a, role: ap, address: 10.0.0.4, parent: c}
                  - {id: b, role: ap, address: 10.0.0.5, parent: a}
                  - {id: c, role: ap, address: 10.0.0.6, parent: b}
                  - {id: d, role: ap, address: 10.0.0.7, parent: c}
        """
    ) == [
        "t.yaml:7:68: unknown parent 'sw-kore' in school 's'; did you mean 'sw-core'?",
        "t.yaml:8:65: target 'self' cannot be its own parent",
        "t.yaml:9:58: parent cycle: a -> c -> b -> a",
    ]


# --- labels ---------------------------------------------------------------------------------------


def test_labels() -> None:
    config = load(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - id: t
                    role: ap
                    address: 10.0.0.1
                    labels: {floor: 2, building: B, _since: 2020-01-01}
        """
    )
    assert target(config, "t").labels == (
        ("_since", "2020-01-01"),
        ("building", "B"),
        ("floor", "2"),
    )


def test_label_problems() -> None:
    assert problems(
        """\
        defaults: {snmp: false}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - id: t
                    role: ap
                    address: 10.0.0.1
                    labels:
                      school: x
                      __meta: x
                      2nd: x
                      wifi: no
                      empty: ""
                      nested: {a: b}
                      none:
        """
    ) == [
        "t.yaml:11:15: label 'school' is reserved (every per-target series has it)",
        "t.yaml:12:15: invalid label name '__meta': names starting with __ are reserved",
        "t.yaml:13:15: invalid label name '2nd': use letters, digits and _, not starting "
        "with a digit",
        "t.yaml:14:21: label 'wifi' must be a string, got boolean no; put it in quotes",
        "t.yaml:15:22: label 'empty' must not be empty",
        "t.yaml:16:23: label 'nested' must be a string, got a mapping",
        "t.yaml:17:20: label 'none' must be a string, got nothing (null)",
    ]


# --- environment substitution and secrecy ---------------------------------------------------------


def test_environment_substitution() -> None:
    config = load(
        """\
        auths:
          a: {version: 2c, community: "pre-${COMMUNITY}-$$-${COMMUNITY}$"}
        defaults:
          ping: {count: "${COUNT}", interval: "${INTERVAL}"}
          snmp: {auth: a, bulk: "${BULK}"}
        members:
          - id: m
            name: ${MEMBER_NAME}
            schools:
              - id: s
                targets:
                  - {id: t, role: ap, address: "${HOST}:${PORT}", labels: {cost: $$5}}
        """,
        {
            "COMMUNITY": "x$y",
            "COUNT": "7",
            "INTERVAL": "20s",
            "BULK": "false",
            "MEMBER_NAME": "Some ${NOT_EXPANDED} name",
            "HOST": "10.9.8.7",
            "PORT": "1161",
        },
    )
    assert config.auths["a"].community == "pre-x$y-$-x$y$"
    t = target(config, "t")
    assert (t.ping.count, t.ping.interval) == (7, 20.0)  # type: ignore[union-attr]
    assert t.snmp.bulk is False  # type: ignore[union-attr]
    assert config.members[0].name == "Some ${NOT_EXPANDED} name"  # values are not re-expanded
    assert (t.host, t.port, t.labels) == ("10.9.8.7", 1161, (("cost", "$5"),))


def test_environment_problems() -> None:
    assert problems(
        """\
        auths:
          a: {version: 2c, community: "${MISSING}"}
          b: {version: 2c, community: "${1BAD}"}
          c: {version: 2c, community: "${UNCLOSED"}
        members:
          - id: ${ID}
            schools: []
        """,
        {"ID": "m"},
    ) == [
        "t.yaml:2:31: environment variable MISSING is not set",
        "t.yaml:3:31: bad variable reference: write ${NAME} (letters, digits and _) or $$ for "
        "a literal $",
        "t.yaml:4:31: bad variable reference: write ${NAME} (letters, digits and _) or $$ for "
        "a literal $",
        "t.yaml:6:9: 'id' must be written literally, not taken from ${...}",
    ]


def test_environment_values_are_read_as_the_field_needs() -> None:
    assert problems(
        """\
        defaults:
          ping: {count: "${N}", interval: "${N}"}
          snmp: {bulk: "${N}", retries: "${BIG}"}
        members: []
        """,
        {"N": "maybe", "BIG": "11"},
    ) == [
        "t.yaml:2:17: 'count' must be an integer, got the value of ${N}",
        "t.yaml:2:35: 'interval' must be a duration such as 15s or 1m30s, got the value of ${N}",
        "t.yaml:3:16: 'bulk' must be true or false, got the value of ${N}",
        "t.yaml:3:33: 'retries' must be between 0 and 10, got the value of ${BIG}",
    ]


def test_keys_are_not_substituted() -> None:
    assert problems(
        """\
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: t, role: ap, address: 10.0.0.1, snmp: false, labels: {"${X}": v}}
        """,
        {"X": "name"},
    ) == [
        "t.yaml:6:72: invalid label name '${X}': use letters, digits and _, not starting "
        "with a digit"
    ]


SECRET = "Tr0ub4dor&3-xyzzy"


def test_secrets_never_appear_in_problems() -> None:
    with pytest.raises(ConfigError) as caught:
        load(
            """\
            auths:
              a: {version: 3, username: u, security_level: authPriv, auth_protocol: SHA,
                  auth_password: "${S}", priv_protocol: AES, priv_password: "${S}"}
              b: {version: "${S}", community: "${S}"}
              c: {version: 3, username: u, security_level: "${S}"}
            defaults:
              ping: {count: "${S}", interval: "${S}", size: "x${S}"}
              snmp: {auth: "${S}", bulk: "${S}", retries: "${S}"}
            members:
              - id: m
                name: ${S}
                schools:
                  - id: s
                    targets:
                      - {id: "${S}", role: "${S}", address: "${S}", vendor: "${S}", snmp: false}
                      - {id: b, role: link, address: 10.0.0.1, bandwidth: "${S}"}
                      - {id: c, role: link, address: 10.0.0.1, via: {target: "${S}", interface: x}}
                      - {id: d, role: ap, address: 10.0.0.2, parent: "${S}", snmp: false}
            """,
            {"S": SECRET},
        )
    rendered = str(caught.value) + repr(caught.value.problems) + repr(caught.value)
    assert SECRET not in rendered
    assert len(caught.value.problems) >= 14
    assert "'count' must be an integer, got the value of ${S}" in rendered
    assert "'interval' must be a duration such as 15s or 1m30s, got the value of ${S}" in rendered
    assert "'size' must be an integer, got the value of 'x${S}'" in rendered
    assert "unknown auth (the value of ${S}): it is not defined in 'auths'" in rendered
    assert "unknown via target (the value of ${S}) in school 's'" in rendered
    assert "unknown parent (the value of ${S}) in school 's'" in rendered
    assert (
        "'address' must be an IP address or host name, optionally with :port, got the value"
        in rendered
    )


def test_secrets_never_appear_in_repr_of_a_loaded_config() -> None:
    config = load(
        """\
        auths:
          v3: {version: 3, username: u, security_level: authPriv, auth_protocol: SHA,
               auth_password: "${S}", priv_protocol: AES, priv_password: "${S}2"}
          v2: {version: 2c, community: "${S}3"}
        defaults:
          snmp: {auth: v3}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - {id: a, role: switch, address: 10.0.0.1}
                  - {id: b, role: switch, address: 10.0.0.2, snmp: {auth: v2}}
        """,
        {"S": SECRET},
    )
    assert config.auths["v2"].community == SECRET + "3"
    text = repr(config) + str(config) + summarize(config) + repr(list(config.targets()))
    assert SECRET not in text


# --- YAML features --------------------------------------------------------------------------------


def test_anchors_aliases_and_merge_keys() -> None:
    config = load(
        """\
        auths:
          a: {version: 2c, community: c}
        defaults:
          snmp: {auth: a}
        members:
          - id: m
            schools:
              - id: s
                targets:
                  - &ap {id: ap1, role: ap, address: 10.0.0.11, vendor: aruba, parent: sw}
                  - {<<: *ap, id: ap2, address: 10.0.0.12}
                  - <<: [*ap, {labels: {floor: "1"}}]
                    id: ap3
                    address: 10.0.0.13
                  - {id: sw, role: switch, address: 10.0.0.2}
        """
    )
    ap2, ap3 = target(config, "ap2"), target(config, "ap3")
    assert (ap2.role, ap2.vendor, ap2.host, ap2.parent) == ("ap", "aruba", "10.0.0.12", "sw")
    assert (ap3.host, ap3.labels) == ("10.0.0.13", (("floor", "1"),))


def test_bad_merge_and_recursive_alias_do_not_crash() -> None:
    assert problems(
        """\
        members:
          - <<: [1]
            id: m
            schools: &loop [*loop]
        """
    ) == [
        "t.yaml:2:10: '<<' (merge) needs a mapping or a list of mappings",
        "t.yaml:4:14: an alias refers to a node that contains it",
    ]
