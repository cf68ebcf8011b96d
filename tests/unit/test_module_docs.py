"""Every module of plugins/modules documents what it accepts.

ansible-doc renders each module with its doc fragments resolved (what operators read with
`ansible-doc -M plugins/modules <name>` and what ansible-lint parses), and the rendered options are compared
with the argument_spec that the module's main() really hands to AnsibleModule: names, aliases, types,
elements, required, defaults, choices and suboptions, at every depth. Secrets are no_log; the attributes
match the check mode support; the examples use only real options; the shared connection options come from
their module_utils spec and doc fragment together.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import inspect
import os
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from ansible.module_utils import basic

REPO_ROOT = Path(__file__).resolve().parents[2]
MODULES_DIR = REPO_ROOT / "plugins" / "modules"
FRAGMENTS_DIR = REPO_ROOT / "plugins" / "doc_fragments"
MODULES = sorted(p.stem for p in MODULES_DIR.glob("*.py") if p.stem != "__init__")
SUPPORT = ("full", "partial", "none")


@dataclass(frozen=True)
class Expected:
    """What a module must declare, besides agreeing with its own argument_spec."""

    fragments: list[str]  # extends_documentation_fragment, in this order
    check_mode: str  # attributes.check_mode.support
    diff_mode: str  # attributes.diff_mode.support
    secrets: set[str]  # the no_log options, exactly
    options: set[str] = field(default_factory=set)  # options it must keep (own and from its fragments)
    returns: set[str] = field(default_factory=set)  # RETURN keys it must keep


EXPECTED = {
    "prism_acceptance": Expected(
        fragments=["prism_postgres", "prism_kafka"],
        check_mode="full",
        diff_mode="none",
        secrets={
            "login_password",
            "sasl_password",
            "redis_password",
            "redis_stats_password",
            "weaviate_api_key",
        },
        options={
            "checks",
            "not_deployed",
            "redis",
            "weaviate",
            "monitoring",
            "login_host",
            "bootstrap_servers",
        },
        returns={"rows", "table", "failed_checks", "run_id", "before", "after", "produced"},
    ),
    "prism_backup_manifest": Expected(
        fragments=[],
        check_mode="full",
        diff_mode="full",
        secrets=set(),
        options={"state", "root", "run_id", "parts"},
    ),
    "prism_backup_retention": Expected(
        fragments=[], check_mode="full", diff_mode="full", secrets=set(), options={"root", "keep"}
    ),
    "prism_container_wait": Expected(
        fragments=[], check_mode="full", diff_mode="none", secrets=set(), options={"names", "timeout"}
    ),
    "prism_kafka_export": Expected(
        fragments=["prism_kafka"],
        check_mode="full",
        diff_mode="none",
        secrets={"sasl_password"},
        options={"dest", "bootstrap_servers", "sasl_password"},
    ),
    "prism_kafka_topics": Expected(
        fragments=["prism_kafka"],
        check_mode="full",
        diff_mode="full",
        secrets={"sasl_password"},
        options={"topics", "purge_configs", "bootstrap_servers", "sasl_password", "security_protocol"},
        returns={"created", "partitions_added", "configs_changed", "drift"},
    ),
    "prism_pg_schema": Expected(
        fragments=["prism_postgres"],
        check_mode="full",
        diff_mode="full",
        secrets={"login_password"},
        options={"path", "history_table", "login_host", "login_password", "ssl_mode"},
        returns={"applied", "pending", "current_version", "migrations"},
    ),
    "prism_weaviate_knowledge": Expected(
        fragments=["prism_weaviate", "prism_postgres"],
        check_mode="full",
        diff_mode="full",
        secrets={"weaviate_api_key", "login_password"},
        options={"documents", "properties", "weaviate_api_key", "login_password", "remove_absent"},
    ),
}

# Names that suggest a secret, as ansible-test validate-modules sees them (its no_log-needed check): such an
# option must say no_log, True or False. A name Ansible itself takes for a password (AnsibleModule warns about
# it, basic.PASSWORD_MATCH) must be no_log=True, and so must an API key, token or secret.
NO_LOG_HINT = re.compile(r"(?:pass(?!ive)|secret|token|key)", re.I)
NOT_SECRET_SUFFIXES = (
    "_count", "_type", "_alg", "_algorithm", "_timeout", "_name", "_comment", "_bits", "_id", "_identifier",
    "_period", "_file", "_filename",
)  # fmt: skip
NOT_SECRET_PARTS = (
    "publickey", "public_key", "keyusage", "key_usage", "keyserver", "key_server", "keysize", "key_size",
    "keyservice", "key_service", "pub_key", "pubkey", "keyboard", "secretary",
)  # fmt: skip
SECRET = re.compile(r"(?:^|_)(?:api_key|token|secret)$")


def may_be_secret(name: str) -> bool:
    return (
        bool(NO_LOG_HINT.search(name))
        and not name.endswith(NOT_SECRET_SUFFIXES)
        and not any(part in name for part in NOT_SECRET_PARTS)
    )


def must_be_secret(name: str) -> bool:
    return bool(basic.PASSWORD_MATCH.search(name) or SECRET.search(name))


# --- what the module documents (ansible-doc) and what it accepts (main()) --------------------------------


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    """ansible-doc --json of every module: doc (fragments merged in), examples, return."""
    home = tmp_path_factory.mktemp("ansible_doc")
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(home / "none.cfg"),
        "ANSIBLE_LIBRARY": str(MODULES_DIR),
        "ANSIBLE_MODULE_UTILS": str(REPO_ROOT / "plugins" / "module_utils"),
        "ANSIBLE_DOC_FRAGMENT_PLUGINS": str(FRAGMENTS_DIR),
        "ANSIBLE_HOME": str(home / "ansible_home"),
    }
    proc = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-doc"), "--json", "-t", "module", *MODULES],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stderr, proc.stderr
    return yaml.safe_load(proc.stdout)


class _Constructed(Exception):
    """Raised in place of AnsibleModule.__init__: main() got as far as building its module."""


def module_kwargs(name: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The keyword arguments main() of module ``name`` passes to AnsibleModule (argument_spec,
    supports_check_mode, required_if...): main() runs until it builds the module, which stops it."""
    entry = importlib.import_module(name)
    signature = inspect.signature(basic.AnsibleModule.__init__)
    captured: dict[str, Any] = {}

    def constructed(self: Any, *args: Any, **kwargs: Any) -> None:
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        captured.update((k, v) for k, v in bound.arguments.items() if k != "self")
        raise _Constructed

    monkeypatch.setattr(basic.AnsibleModule, "__init__", constructed)
    with pytest.raises(_Constructed):
        entry.main()
    return captured


def raw_blocks(name: str) -> dict[str, str]:
    """DOCUMENTATION, EXAMPLES and RETURN as written in the module file (read, not imported)."""
    tree = ast.parse((MODULES_DIR / f"{name}.py").read_text())
    return {
        node.targets[0].id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.targets[0], ast.Name)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
    }


def fragment_options(fragment: str) -> dict[str, Any]:
    path = FRAGMENTS_DIR / f"{fragment}.py"
    spec = importlib.util.spec_from_file_location(f"_doc_fragment_{fragment}", path)
    assert spec and spec.loader, path
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return yaml.safe_load(loaded.ModuleDocFragment.DOCUMENTATION)["options"]


def shared_spec(fragment: str) -> dict[str, Any]:
    """The argument_spec that goes with doc fragment ``fragment``: the one *_argument_spec() of
    ansible.module_utils.<fragment>."""
    utils = importlib.import_module(f"ansible.module_utils.{fragment}")
    makers = [f for n, f in vars(utils).items() if n.endswith("_argument_spec") and callable(f)]
    assert len(makers) == 1, f"ansible.module_utils.{fragment} has {len(makers)} *_argument_spec functions"
    return makers[0]()


def spec_differences(docs: dict[str, Any], spec: dict[str, Any], where: str = "") -> list[str]:
    """Every way the documented options ``docs`` differ from the argument_spec ``spec``, at every depth."""
    problems: list[str] = []
    for name in sorted(set(docs) - set(spec)):
        problems.append(f"{where}{name}: documented, not in the argument_spec")
    for name in sorted(set(spec) - set(docs)):
        problems.append(f"{where}{name}: in the argument_spec, not documented")
    for name in sorted(set(docs) & set(spec)):
        doc, arg, at = docs[name] or {}, spec[name], f"{where}{name}"
        if "type" not in doc:
            problems.append(f"{at}: the documentation gives no type")
        compared = {
            "type": (doc.get("type"), arg.get("type", "str")),
            "elements": (doc.get("elements"), arg.get("elements")),
            "required": (doc.get("required", False), arg.get("required", False)),
            "default": (doc.get("default"), arg.get("default")),
            "choices": (doc.get("choices"), arg.get("choices")),
            "aliases": (sorted(doc.get("aliases", [])), sorted(arg.get("aliases", []))),
        }
        for key, (documented, accepted) in compared.items():
            if documented != accepted:
                problems.append(f"{at}: {key} documented {documented!r}, argument_spec {accepted!r}")
        if arg.get("required") and "default" in arg:
            problems.append(f"{at}: required and with a default")
        if arg.get("type") == "list" and not arg.get("elements"):
            problems.append(f"{at}: a list without elements")
        if "options" in arg or "suboptions" in doc:
            problems += spec_differences(doc.get("suboptions") or {}, arg.get("options") or {}, f"{at}.")
    return problems


def secret_problems(spec: dict[str, Any], where: str = "") -> list[str]:
    problems: list[str] = []
    for name, arg in sorted(spec.items()):
        at = f"{where}{name}"
        if must_be_secret(name) and arg.get("no_log") is not True:
            problems.append(f"{at}: a secret without no_log=True")
        elif may_be_secret(name) and "no_log" not in arg:
            problems.append(f"{at}: the name suggests a secret; set no_log (True, or False if it is not one)")
        problems += secret_problems(arg.get("options") or {}, f"{at}.")
    return problems


def no_log_options(spec: dict[str, Any], where: str = "") -> set[str]:
    found = {f"{where}{n}" for n, a in spec.items() if a.get("no_log") is True}
    for name, arg in spec.items():
        found |= no_log_options(arg.get("options") or {}, f"{where}{name}.")
    return found


# --- the tests -----------------------------------------------------------------------------------------


def test_every_module_is_rendered_and_expected(rendered: dict[str, dict]) -> None:
    assert set(rendered) == set(MODULES) and len(MODULES) >= 3
    assert set(EXPECTED) == set(MODULES), "add the new module to EXPECTED (or remove the old one)"


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_module(rendered: dict[str, dict], module: str) -> None:
    doc = rendered[module]["doc"]
    assert doc["module"] == module
    assert doc["short_description"]
    assert EXPECTED[module].options <= set(doc.get("options") or {})


@pytest.mark.parametrize("module", MODULES)
def test_documentation_matches_argument_spec(
    rendered: dict[str, dict], module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    expected = EXPECTED[module]
    blocks = raw_blocks(module)
    assert set(blocks) >= {"DOCUMENTATION", "EXAMPLES", "RETURN"}
    raw = yaml.safe_load(blocks["DOCUMENTATION"])
    doc = rendered[module]["doc"]
    kwargs = module_kwargs(module, monkeypatch)
    spec = kwargs["argument_spec"]

    # Doc fragments: exactly the expected ones, each merged in whole, none redefining a module option, and
    # the module takes each fragment's options from that fragment's shared argument_spec, unchanged.
    fragments = raw.get("extends_documentation_fragment") or []
    assert fragments == expected.fragments
    merged = dict(raw["options"])
    for fragment in fragments:
        options = fragment_options(fragment)
        assert not set(options) & set(merged), f"{fragment} redefines {sorted(set(options) & set(merged))}"
        merged.update(options)
        shared = shared_spec(fragment)
        problems = spec_differences(options, shared)
        assert not problems, f"doc fragment {fragment} differs from its spec: " + "; ".join(problems)
        assert {k: spec.get(k) for k in shared} == shared, f"{module} changes the options of {fragment}"
    assert set(doc["options"]) == set(merged)

    # Options, at every depth.
    problems = spec_differences(doc["options"], spec)
    assert not problems, "; ".join(problems)

    # Secrets.
    problems = secret_problems(spec)
    assert not problems, "; ".join(problems)
    assert no_log_options(spec) == expected.secrets

    # Attributes: declared, and check mode as main() builds the module.
    attributes = doc["attributes"]
    support = (attributes["check_mode"]["support"], attributes["diff_mode"]["support"])
    assert support == (expected.check_mode, expected.diff_mode)
    assert all(s in SUPPORT for s in support)
    assert kwargs["supports_check_mode"] is (expected.check_mode != "none")


@pytest.mark.parametrize("module", MODULES)
def test_examples_use_only_real_options(
    rendered: dict[str, dict], module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    spec = module_kwargs(module, monkeypatch)["argument_spec"]
    accepted = set(spec) | {alias for arg in spec.values() for alias in arg.get("aliases", [])}
    required = {name for name, arg in spec.items() if arg.get("required")}
    tasks = yaml.safe_load(raw_blocks(module)["EXAMPLES"])
    assert isinstance(tasks, list) and tasks, "EXAMPLES is not a list of tasks"
    calls = [args for task in tasks for key, args in task.items() if key.split(".")[-1] == module]
    assert calls, f"no example calls {module}"
    for args in calls:
        assert isinstance(args, dict), f"{module} example arguments are not a mapping: {args!r}"
        assert set(args) <= accepted, f"unknown options in an example: {sorted(set(args) - accepted)}"
        assert required <= set(args), f"an example lacks required options {sorted(required - set(args))}"


@pytest.mark.parametrize("module", MODULES)
def test_return_values_are_documented(rendered: dict[str, dict], module: str) -> None:
    returned = yaml.safe_load(raw_blocks(module)["RETURN"])
    assert returned == rendered[module]["return"]
    assert isinstance(returned, dict) and returned
    assert EXPECTED[module].returns <= set(returned)
    for key, entry in returned.items():
        assert {"description", "returned", "type"} <= set(entry), key
