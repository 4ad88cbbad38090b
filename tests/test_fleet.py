"""Many AWS accounts against the sandbox organization on a moto server over HTTP: one command
plans and applies across the organization, an account whose role cannot be assumed is reported
while the others are fixed, filters and shards pick units, roles chain, and the accounts come from
the policy, a c7n-org accounts file or AWS Organizations."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import boto3
import pytest

from bench.proxy import Proxy
from remediate.providers.aws.accounts import Credentials
from remediate.providers.aws.model import Account
from remediate.sandbox.aws import MotoServer
from remediate.sandbox.org import (
    MANAGEMENT_ACCOUNT,
    MEMBER_ROLE,
    OUTSIDER_ACCOUNT,
    WEAK_POLICY,
    SandboxOrg,
    as_account,
    seed_organization,
    trust_policy,
)
from tests.conftest import Cli

WritePolicy = Callable[..., Path]
# The sandbox's STS answers AccessDenied as the real one does; moto's serializer warns that the
# STS model declares no such error shape (the real service returns it all the same).
pytestmark = pytest.mark.filterwarnings("ignore:Exception\\(STSClientError\\):UserWarning")


@pytest.fixture
def org(aws: MotoServer) -> SandboxOrg:
    return seed_organization()


def ssl_policy_in(account: str, listener_arn: str) -> str:
    """What the listener's own account reads back (as its administrator would)."""
    client: Any = as_account(account).client("elbv2", region_name="us-east-1")
    return str(client.describe_listeners(ListenerArns=[listener_arn])["Listeners"][0]["SslPolicy"])


def listener_of(org: SandboxOrg, name: str) -> str:
    return org.fleets[org.accounts[name]].listeners[f"{name}-web:443"]


ORG_POLICY = f"aws: {{regions: [us-east-1], organization: {{role: {MEMBER_ROLE}}}}}\n"


def test_one_command_applies_across_the_organization_and_reports_the_denied_account(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy
) -> None:
    policy = write_policy(ORG_POLICY)
    result = cli("apply", "-p", str(policy), "--auto-approve", "--no-verify", "--quiet")
    # The denied account is reported with its reason, the others are applied: exit 1, not 0.
    assert result.code == 1, result.stderr
    denied = org.denied
    assert f"legacy ({denied}) us-east-1" in result.stdout
    assert "AccessDenied" in result.stdout and MEMBER_ROLE in result.stdout
    assert f"error: aws legacy ({denied}) us-east-1: cannot assume" in result.stderr
    for name in ("shop", "payments", "media"):
        assert ssl_policy_in(org.accounts[name], listener_of(org, name)) != WEAK_POLICY, name
    assert ssl_policy_in(denied, listener_of(org, "legacy")) == WEAK_POLICY
    # One run in the history holds the changes of every account it reached.
    runs = json.loads(cli("history", "--format", "json").stdout)["runs"]
    assert (runs[0]["kind"], runs[0]["status"], runs[0]["outcomes"]) == (
        "apply",
        "applied",
        {"applied": 3},
    )


def test_a_plan_of_the_organization_lists_every_account_and_the_failed_unit_in_json(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy
) -> None:
    policy = write_policy(ORG_POLICY)
    result = cli("plan", "-p", str(policy), "--format", "json", "--quiet")
    assert result.code == 1
    plan = json.loads(result.stdout)
    accounts = {change["resource"].split(":")[4] for change in plan["changes"]}
    assert accounts == {org.accounts[name] for name in ("shop", "payments", "media")}
    assert plan["failed_units"] == [
        {
            "provider": "aws",
            "unit": f"aws legacy ({org.denied}) us-east-1",
            "reason": plan["failed_units"][0]["reason"],
        }
    ]
    assert plan["summary"]["failed_units"] == 1
    # Every unit failing is an error, not an empty plan.
    only_denied = cli("plan", "-p", str(policy), "--account", "legacy", "--quiet")
    assert only_denied.code == 1
    assert "AccessDenied" in only_denied.stderr and "Traceback" not in only_denied.stderr


def test_a_saved_plan_of_many_accounts_applies_each_change_in_its_own_account(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy, tmp_path: Path
) -> None:
    policy = write_policy(ORG_POLICY)
    saved = tmp_path / "plan.json"
    planned = cli("plan", "-p", str(policy), "--out", str(saved), "--account-tag", "env=staging")
    assert planned.code == 1  # legacy (staging) is denied
    changed = {c["resource"].split(":")[4] for c in json.loads(saved.read_text())["changes"]}
    assert changed == {org.accounts["payments"], org.accounts["media"]}
    result = cli("apply", str(saved), "-p", str(policy), "--no-verify", "--quiet")
    assert result.code == 0, result.stderr
    assert ssl_policy_in(org.accounts["payments"], listener_of(org, "payments")) != WEAK_POLICY
    assert ssl_policy_in(org.accounts["shop"], listener_of(org, "shop")) == WEAK_POLICY


def test_a_saved_plan_applies_the_accounts_it_can_read_and_names_the_one_it_cannot(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy, tmp_path: Path
) -> None:
    policy = write_policy(ORG_POLICY)
    saved = tmp_path / "plan.json"
    assert cli("plan", "-p", str(policy), "--out", str(saved)).code == 1  # legacy is denied
    media = org.accounts["media"]
    iam: Any = as_account(media).client("iam")
    # Between plan and apply, the media account's role stops trusting the management account.
    iam.update_assume_role_policy(
        RoleName=MEMBER_ROLE, PolicyDocument=trust_policy(OUTSIDER_ACCOUNT)
    )
    result = cli("apply", str(saved), "-p", str(policy), "--no-verify", "--format", "json")
    assert result.code == 1, result.stderr
    assert f"error: aws media ({media}) us-east-1: cannot assume" in result.stderr
    report = json.loads(result.stdout)
    assert [item["resource"] for item in report["not_read"]] == [listener_of(org, "media")]
    assert {item["unit"] for item in report["failed_units"]} == {
        f"aws media ({media}) us-east-1",
        f"aws legacy ({org.denied}) us-east-1",
    }
    assert ssl_policy_in(media, listener_of(org, "media")) == WEAK_POLICY
    for name in ("shop", "payments"):
        assert ssl_policy_in(org.accounts[name], listener_of(org, name)) != WEAK_POLICY, name
    # Once the role trusts the management account again, the same plan applies what is left.
    iam.update_assume_role_policy(
        RoleName=MEMBER_ROLE, PolicyDocument=trust_policy(MANAGEMENT_ACCOUNT)
    )
    again = cli("apply", str(saved), "-p", str(policy), "--no-verify")
    assert again.code == 0, again.stderr
    assert "applied by run" in again.stderr
    assert ssl_policy_in(media, listener_of(org, "media")) != WEAK_POLICY


def test_a_member_accounts_classic_listener_is_planned_in_it_without_asking_sts_who_it_is(
    cli: Cli,
    org: SandboxOrg,
    aws: MotoServer,
    write_policy: WritePolicy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Classic ELB ARN is built from the account id: a unit knows its account from the
    accounts list, so it names the member's account without an STS GetCallerIdentity."""
    shop = org.accounts["shop"]
    session = as_account(shop)
    certificate = session.client("acm", region_name="us-east-1").request_certificate(
        DomainName="classic.shop.example.com"
    )["CertificateArn"]
    session.client("elb", region_name="us-east-1").create_load_balancer(
        LoadBalancerName="shop-classic",
        Listeners=[
            {
                "Protocol": "HTTPS",
                "LoadBalancerPort": 443,
                "InstanceProtocol": "HTTP",
                "InstancePort": 8080,
                "SSLCertificateId": certificate,
            }
        ],
        AvailabilityZones=["us-east-1a"],
    )
    policy = write_policy(ORG_POLICY)
    with Proxy(aws.url) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.url)
        result = cli("plan", "-p", str(policy), "--format", "json", "--account", "shop")
        calls, _ = proxy.counts_by_action()
    assert result.code == 0, result.stderr
    classic = [
        c["resource"]
        for c in json.loads(result.stdout)["changes"]
        if c["resource"].endswith(":loadbalancer/shop-classic/listener/443")
    ]
    assert classic and {arn.split(":")[4] for arn in classic} == {shop}
    assert calls["AssumeRole"] == 1
    assert calls["GetCallerIdentity"] == 1  # the organization's own account, listing it


def test_filters_by_account_id_name_and_tag(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy
) -> None:
    policy = write_policy(ORG_POLICY)

    def accounts(*args: str) -> set[str]:
        result = cli("plan", "-p", str(policy), "--format", "json", "--quiet", *args)
        assert result.code in (0, 1), result.stderr
        return {c["resource"].split(":")[4] for c in json.loads(result.stdout)["changes"]}

    assert accounts("--account", "shop") == {org.accounts["shop"]}
    both = accounts("--account", org.accounts["media"], "--account", "payments")
    assert both == {org.accounts["media"], org.accounts["payments"]}
    assert accounts("--account-tag", "env=prod") == {org.accounts["shop"]}
    nothing = cli("plan", "-p", str(policy), "--account", "nosuch", "--quiet")
    assert nothing.code == 1
    assert nothing.stderr.strip().splitlines()[-1] == (
        "error: nosuch: matches no account or project of the policy"
    )
    bad = cli("plan", "-p", str(policy), "--account-tag", "env", "--quiet")
    assert bad.code == 1 and "--account-tag 'env': expected KEY=VALUE" in bad.stderr


def test_organization_ous_are_read_recursively_and_exclusions_apply(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy
) -> None:
    # Only the nested `prod` OU, through its parent `workloads`, minus one account.
    policy = write_policy(
        "aws:\n  regions: [us-east-1]\n  organization:\n"
        f"    role: {MEMBER_ROLE}\n    ous: [{org.ous['workloads']}]\n"
        f"    exclude: [legacy, {org.accounts['media']}]\n"
    )
    result = cli("plan", "-p", str(policy), "--format", "json", "--quiet")
    assert result.code == 0, result.stderr
    accounts = {c["resource"].split(":")[4] for c in json.loads(result.stdout)["changes"]}
    assert accounts == {org.accounts["shop"], org.accounts["payments"]}


def test_shards_split_the_units_and_together_cover_them_once(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy, monkeypatch: pytest.MonkeyPatch
) -> None:
    accounts = ", ".join(
        f"{{id: '{org.accounts[name]}', name: {name}, role: {MEMBER_ROLE}}}"
        for name in ("shop", "payments", "media")
    )
    policy = write_policy(f"aws: {{regions: [us-east-1, eu-west-1], accounts: [{accounts}]}}\n")
    seen: list[str] = []
    for index in range(3):
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
        result = cli("plan", "-p", str(policy), "--format", "json", "--quiet", "--shard-count", "3")
        assert result.code == 0, result.stderr
        seen.extend(c["resource"] for c in json.loads(result.stdout)["changes"])
    monkeypatch.delenv("JOB_COMPLETION_INDEX")
    # Each shard's run is in the history with the shard it covered.
    history = cli("history", "--kind", "plan", "--format", "json")
    assert history.code == 0, history.stderr
    shards = sorted(run["shard"] for run in json.loads(history.stdout)["runs"])
    assert shards == ["0/3", "1/3", "2/3"]
    whole = cli("plan", "-p", str(policy), "--format", "json", "--quiet")
    everything = [c["resource"] for c in json.loads(whole.stdout)["changes"]]
    assert len(everything) == 3
    assert sorted(seen) == sorted(everything)
    explicit = cli("plan", "-p", str(policy), "--shard", "3/3", "--quiet")
    assert explicit.code == 1 and "--shard 3/3: the index must be 0..N-1" in explicit.stderr


def test_role_chaining_signs_as_the_last_role_of_the_chain(aws: MotoServer) -> None:
    """A hub account's role, then the target's: the session reads back as the target's role."""
    hub, target = "210987654321", "345678901234"
    as_account(hub).client("iam").create_role(
        RoleName="hub", AssumeRolePolicyDocument=trust_policy(MANAGEMENT_ACCOUNT)
    )
    as_account(target).client("iam").create_role(
        RoleName="audit", AssumeRolePolicyDocument=trust_policy(hub, external_id="s3cret")
    )
    account = Account(
        id=target,
        role=[f"arn:aws:iam::{hub}:role/hub", "audit"],
        external_id="s3cret",
    )
    session = Credentials(boto3.session.Session()).session(account)
    identity = session.client("sts").get_caller_identity()
    assert identity["Account"] == target
    assert identity["Arn"] == f"arn:aws:sts::{target}:assumed-role/audit/remediate-{target}"
    # Without the external id the target's trust policy asks for, the chain is refused.
    wrong = account.model_copy(update={"external_id": "guess"})
    from remediate.errors import DiscoveryError

    with pytest.raises(DiscoveryError, match=r"cannot assume .*hub -> .*audit: AccessDenied"):
        Credentials(boto3.session.Session()).session(wrong)


def test_moto_would_assume_a_missing_role_but_the_sandbox_refuses_as_aws_does(
    aws: MotoServer,
) -> None:
    """Real STS answers AccessDenied for a role that does not exist; moto alone assumes it.
    The sandbox follows the real API."""
    sts: Any = boto3.client("sts", region_name="us-east-1")
    with pytest.raises(sts.exceptions.ClientError) as caught:
        sts.assume_role(RoleArn="arn:aws:iam::111122223333:role/nope", RoleSessionName="remediate")
    assert caught.value.response["Error"]["Code"] == "AccessDenied"


def test_an_accounts_file_in_c7n_org_format_is_read(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy, tmp_path: Path
) -> None:
    accounts = tmp_path / "accounts.yml"
    accounts.write_text(
        "accounts:\n"
        f"- account_id: '{org.accounts['shop']}'\n  name: shop\n  regions: [us-east-1]\n"
        f"  role: arn:aws:iam::{org.accounts['shop']}:role/{MEMBER_ROLE}\n"
        "  tags: [type:prod, division:retail]\n  vars: {charge_code: xyz}\n"
        f"- account_id: '{org.accounts['media']}'\n  name: media\n  regions: [us-east-1]\n"
        f"  role: {MEMBER_ROLE}\n  tags: [type:dev]\n",
        encoding="utf-8",
    )
    policy = write_policy(f"aws: {{accounts_file: {accounts}}}\n")
    result = cli("plan", "-p", str(policy), "--format", "json", "--account-tag", "type=prod")
    assert result.code == 0, result.stderr
    changed = {c["resource"].split(":")[4] for c in json.loads(result.stdout)["changes"]}
    assert changed == {org.accounts["shop"]}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("accounts:\n- name: x\n", "accounts.yml:2: accounts[0].account_id: required setting is"),
        ("accounts:\n- account_id: '12'\n", "is not an AWS account id (12 digits)"),
        ("- account_id: '123456789012'\n", "not a c7n-org accounts file"),
        ("accounts: [\n", "malformed YAML"),
        ("accounts:\n- account_id: '123456789012'\n  role: 'bad role!'\n", "neither a role ARN"),
        ("accounts:\n- account_id: '123456789012'\n  tags: [[x]]\n", "'key:value' string"),
    ],
)
def test_a_bad_accounts_file_is_one_line_and_exit_1(
    cli: Cli, aws: MotoServer, write_policy: WritePolicy, tmp_path: Path, text: str, message: str
) -> None:
    accounts = tmp_path / "accounts.yml"
    accounts.write_text(text, encoding="utf-8")
    policy = write_policy(f"aws: {{regions: [us-east-1], accounts_file: {accounts}}}\n")
    result = cli("plan", "-p", str(policy), "--quiet")
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _sharded_examples() -> dict[str, tuple[list[str], dict[str, str], int]]:
    """Each sharded example's `remediate` arguments, environment and shard count, checked for
    the fields that make the scheduler split the work."""
    import shlex

    from ruamel.yaml import YAML

    cronjob = YAML(typ="safe").load(EXAMPLES / "kubernetes" / "fleet-cronjob.yaml")
    job = cronjob["spec"]["jobTemplate"]["spec"]
    container = job["template"]["spec"]["containers"][0]
    env = {item["name"]: str(item["value"]) for item in container["env"]}
    assert job["completionMode"] == "Indexed"
    assert job["completions"] == job["parallelism"] == int(env["REMEDIATE_SHARDS"])
    found = {"kubernetes": (list(container["args"]), env, int(job["completions"]))}
    workflow = YAML(typ="safe").load(EXAMPLES / "github-actions" / "fleet.yml")
    apply_job = workflow["jobs"]["apply"]
    shards = apply_job["strategy"]["matrix"]["shard"]
    assert apply_job["env"]["JOB_COMPLETION_INDEX"] == "${{ matrix.shard }}"
    assert shards == list(range(int(apply_job["env"]["REMEDIATE_SHARDS"])))
    script = next(s["run"] for s in apply_job["steps"] if "remediate apply" in s.get("run", ""))
    args = shlex.split(script.replace("\\\n", " ").split("|")[0])[1:]
    found["github-actions"] = (args, {"REMEDIATE_SHARDS": str(len(shards))}, len(shards))
    return found


@pytest.mark.parametrize("example", ["kubernetes", "github-actions"])
def test_the_sharded_examples_together_apply_the_organization_once(
    cli: Cli,
    org: SandboxOrg,
    write_policy: WritePolicy,
    monkeypatch: pytest.MonkeyPatch,
    example: str,
) -> None:
    args, env, count = _sharded_examples()[example]
    policy = str(write_policy(ORG_POLICY))
    argv: list[str] = []
    for arg in args:
        argv.extend(arg.split("=", 1) if arg.startswith("--") else [arg])
    previous = ["", *argv[:-1]]
    argv = [
        policy if before == "--policy" else arg for before, arg in zip(previous, argv, strict=True)
    ]
    monkeypatch.setenv("REMEDIATE_SHARDS", env["REMEDIATE_SHARDS"])
    applied: list[str] = []
    denied_reports = 0
    for index in range(count):
        monkeypatch.setenv("JOB_COMPLETION_INDEX", str(index))
        result = cli(*argv, "--quiet", "--no-verify")
        assert result.stdout, result.stderr
        report = json.loads(result.stdout)
        applied.extend(o["resource"] for o in report["outcomes"] if o["status"] == "applied")
        denied = f"legacy ({org.denied})" in result.stderr
        denied_reports += denied
        assert result.code == (1 if denied else 0), result.stderr
    assert denied_reports == 1
    assert sorted(applied) == sorted(
        listener_of(org, name) for name in ("shop", "payments", "media")
    )


def test_exclusions_and_rollback_work_across_accounts(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy
) -> None:
    """An exclusion names an account through the ARN; a rollback of a run that changed several
    accounts puts each back through its own account's role."""
    media = org.accounts["media"]
    policy = write_policy(
        ORG_POLICY + "exclude:\n"
        f"  - match: 'arn:aws:elasticloadbalancing:*:{media}:*'\n"
        "    reason: media is frozen this week\n"
    )
    result = cli(
        "apply", "-p", str(policy), "--auto-approve", "--no-verify", "--format", "json", "-q"
    )
    assert result.code == 1  # legacy is still denied
    report = json.loads(result.stdout)
    assert [item["unit"] for item in report["failed_units"]] == [
        f"aws legacy ({org.denied}) us-east-1"
    ]
    applied = sorted(o["resource"] for o in report["outcomes"] if o["status"] == "applied")
    assert applied == sorted(listener_of(org, name) for name in ("shop", "payments"))
    assert ssl_policy_in(media, listener_of(org, "media")) == WEAK_POLICY
    back = cli("rollback", report["run_id"], "-p", str(policy), "--auto-approve", "-q")
    assert back.code == 0, back.stderr
    for name in ("shop", "payments"):
        assert ssl_policy_in(org.accounts[name], listener_of(org, name)) == WEAK_POLICY


def test_a_drift_fix_of_the_organization_is_partial_when_an_account_is_denied(
    cli: Cli, org: SandboxOrg, write_policy: WritePolicy
) -> None:
    policy = write_policy(ORG_POLICY)
    result = cli("drift", "--fix", "-p", str(policy), "--format", "json", "-q")
    assert result.code == 1, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["status"] == "partial"
    assert f"aws legacy ({org.denied}) us-east-1: cannot assume" in report["error"]
    for name in ("shop", "payments", "media"):
        assert ssl_policy_in(org.accounts[name], listener_of(org, name)) != WEAK_POLICY


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("{accounts: [{id: '12345'}]}", "aws.accounts[0].id: value error, '12345' is not an AWS"),
        (
            "{organization: {role: 'arn:aws:iam::111111111111:role/x'}}",
            "aws.organization.role: value error, 'arn:aws:iam::111111111111:role/x' is not a role",
        ),
        ("{accounts: [{id: '111111111111', roles: x}]}", "aws.accounts[0].roles: "),
    ],
)
def test_a_bad_accounts_section_is_one_line_and_exit_1(
    cli: Cli, aws: MotoServer, write_policy: WritePolicy, section: str, message: str
) -> None:
    policy = write_policy(f"aws: {section}\n")
    result = cli("plan", "-p", str(policy), "--quiet")
    assert result.code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr


def test_the_accounts_share_one_model_loader_whose_search_path_does_not_grow(
    aws: MotoServer,
) -> None:
    """Every account's session reads service models through one loader (parsed once), and
    wrapping a session per account does not add boto3's data directory to it again each time."""
    credentials = Credentials(boto3.session.Session())
    sessions = [credentials.session(Account(id=f"{n:012d}")) for n in range(1, 4)]
    loaders = {id(session._session.get_component("data_loader")) for session in sessions}
    assert len(loaders) == 1
    paths = sessions[0]._session.get_component("data_loader").search_paths
    assert len(paths) == len(set(paths))
    assert credentials.session(Account(id="000000000001")) is sessions[0]
