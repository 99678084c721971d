"""Generated CI: actions pinned by commit SHA, the Pulumi CLI pinned, OIDC tokens only where a role is
assumed (never prod's from a pull request), and the dev deploy that builds, scans, pushes and pins the
images it applies."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from mlops import ci
from mlops.cli import app

SHA_PIN = re.compile(r"^(?P<action>[\w.-]+/[\w.-]+)@(?P<sha>[0-9a-f]{40}) # (?P<tag>v\d+\.\d+\.\d+)$")
DIGEST = "sha256:" + "0123456789abcdef" * 4


@pytest.fixture
def github(tmp_path: Path) -> dict[str, dict]:
    ci.generate("github", tmp_path)
    out = {}
    for path in sorted((tmp_path / ".github" / "workflows").glob("*.yml")):
        doc = yaml.safe_load(path.read_text())
        doc["on"] = doc.pop(True)
        out[path.name] = doc
    out["_text"] = {p.name: p.read_text() for p in (tmp_path / ".github" / "workflows").glob("*.yml")}
    return out


def _jobs(github: dict) -> list[tuple[str, str, dict]]:
    return [(f, n, j) for f, doc in github.items() if f != "_text" for n, j in doc["jobs"].items()]


def test_every_uses_line_is_pinned_by_a_full_commit_sha_with_its_release_tag(github):
    lines = [line.strip() for text in github["_text"].values() for line in text.splitlines() if "uses:" in line]
    assert len(lines) >= 20
    for line in lines:
        ref = line.split("uses:", 1)[1].strip()
        m = SHA_PIN.match(ref)
        assert m, f"not pinned by SHA with a version comment: {line}"
        assert ci.ACTIONS[m["action"]] == (m["sha"], m["tag"]), line


def test_unknown_action_is_refused():
    with pytest.raises(ValueError, match="action 'actions/cache' is not pinned; pinned: actions/checkout"):
        ci.uses("actions/cache")


def test_every_pulumi_install_pins_the_cli_version(github):
    steps = [s for _, _, job in _jobs(github) for s in job["steps"] if str(s.get("uses", "")).startswith("pulumi/actions@")]
    assert len(steps) == 5  # preview, up-dev, promote-staging, promote-prod, rollout
    assert all(s["with"] == {"pulumi-version": ci.PULUMI_VERSION} for s in steps)
    constraints = (Path(ci.__file__).parents[1] / "constraints.txt").read_text()
    assert f"pulumi=={ci.PULUMI_VERSION}\n" in constraints


def test_id_token_write_only_on_jobs_that_assume_a_role(github):
    for name, doc in github.items():
        if name != "_text":
            assert "id-token" not in doc["permissions"], name
    for file, name, job in _jobs(github):
        assumes = any(str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@") for s in job["steps"])
        assert (job.get("permissions", {}).get("id-token") == "write") == assumes, (file, name)


def test_pull_requests_never_assume_a_prod_role(github):
    pr = github["pull-request.yml"]
    assumers = [n for n, j in pr["jobs"].items() if "id-token" in j.get("permissions", {})]
    assert assumers == ["preview"]
    preview = pr["jobs"]["preview"]
    assert preview["strategy"]["matrix"]["include"] == "${{ fromJSON(needs.changed.outputs.preview) }}"
    assert "--exclude-environment prod" in pr["jobs"]["changed"]["steps"][-1]["run"]
    [creds] = [s for s in preview["steps"] if "configure-aws-credentials" in str(s.get("uses"))]
    assert "AWS_PREVIEW_ROLE_ARN_" in creds["with"]["role-to-assume"]


def test_changed_stacks_can_leave_out_prod():
    result = CliRunner().invoke(app, ["ci", "changed-stacks", "--exclude-environment", "prod"])
    assert result.exit_code == 0, result.output
    stacks = [e["stack"] for e in json.loads(result.output)]
    assert stacks == ["fraud-dev", "fraud-staging", "pricing-dev", "pricing-staging"]


def test_dev_deploy_builds_scans_pushes_and_pins_the_images_before_pulumi_up(github):
    job = github["main.yml"]["jobs"]["up-dev"]
    names = [s.get("name", s.get("uses")) for s in job["steps"]]
    build = names.index("Build, push and scan the images (tag and CODE_VERSION are the commit SHA)")
    assert names.index("Log in to ECR") < build < names.index("Pin the image digests into the stack file") < names.index("pulumi up")
    script = job["steps"][build]["run"]
    for needed in ('docker buildx build --file "$image/Dockerfile" --build-arg "CODE_VERSION=$GITHUB_SHA"',
                   '--tag "$REGISTRY/$repo:$GITHUB_SHA"', "aws ecr wait image-scan-complete",
                   "aws ecr describe-image-scan-findings", "(.CRITICAL // 0) + (.HIGH // 0)", "exit 1"):
        assert needed in script, needed
    pin = job["steps"][names.index("Pin the image digests into the stack file")]["run"]
    assert 'autoscaler=$(.venv/bin/mlops ci cluster-autoscaler-image --stack "$STACK")' in pin
    assert 'digest=$(.venv/bin/mlops ci resolve-digest "$autoscaler")' in pin and '--cluster-autoscaler "$digest"' in pin
    assert '.venv/bin/mlops ci pin-images --stack "$STACK" --training "$TRAINING" --serving "$SERVING"\n' in pin  # no cluster of its own


def test_gitlab_installs_no_cli_through_a_pipe_and_pins_the_pulumi_image(tmp_path: Path):
    [path] = ci.generate("gitlab", tmp_path)
    text = path.read_text()
    assert "curl" not in text and "| sh" not in text
    doc = yaml.safe_load(text)
    assert doc[".aws"]["image"] == {"name": f"pulumi/pulumi-python:{ci.PULUMI_VERSION}", "entrypoint": [""]}
    assert re.fullmatch(r"\d+\.\d+\.\d+", ci.PULUMI_VERSION)
    assert 'if [ "$environment" = prod ]; then' in doc["plan"]["script"][-1]
    # id tokens only in the jobs that assume a role
    with_tokens = {n for n, j in doc.items() if isinstance(j, dict) and (j.get("extends") == ".aws" or "id_tokens" in j)}
    assert with_tokens == {".aws", "plan", "images-dev", "up-dev", "promote-staging", "promote-prod", "rollout-dev"}
    assert "id_tokens" not in doc["test"] and "id_tokens" not in doc["default"] and "id_tokens" not in doc["changed-dev"]


def test_gitlab_dev_deploy_builds_scans_pushes_and_pins_the_images_before_pulumi_up(tmp_path: Path):
    [path] = ci.generate("gitlab", tmp_path)
    doc = yaml.safe_load(path.read_text())
    images = doc["images-dev"]
    assert images["image"] == images["services"][0]["name"] == ci.DOCKER_IMAGE
    assert re.fullmatch(r"docker:[\d.]+-dind@sha256:[0-9a-f]{64}", ci.DOCKER_IMAGE)
    assert images["variables"]["AWS_ROLE_ARN"] == "$AWS_DEPLOY_ROLE_ARN_DEV" and images["needs"] == ["changed-dev"]
    script = "\n".join(images["script"])
    for needed in ('docker buildx build --file "$image/Dockerfile" --build-arg "CODE_VERSION=$CI_COMMIT_SHA"',
                   '--tag "$registry/$repo:$CI_COMMIT_SHA"', "aws ecr wait image-scan-complete",
                   "aws ecr describe-image-scan-findings", "(.CRITICAL // 0) + (.HIGH // 0)", "exit 1"):
        assert needed in script, needed
    up = doc["up-dev"]
    assert up["needs"] == ["changed-dev", "images-dev"]
    assert 'mlops ci pin-images --stack "$stack" --training "$training" --serving "$serving"' in up["script"][0]
    assert "pulumi up" in up["script"][1]
    # A created cluster's cluster-autoscaler: its image named by changed-dev, resolved by images-dev, pinned by up-dev.
    changed = "\n".join(doc["changed-dev"]["script"])
    assert "mlops ci cluster-autoscaler-image" in changed and 'digest=$(.venv/bin/mlops ci resolve-digest "$image")' in changed
    assert "autoscaler-images.tsv" in doc["changed-dev"]["artifacts"]["paths"] and "autoscaler-images.tsv" in script
    assert '--cluster-autoscaler "$autoscaler"' in up["script"][0]
    for target in ("staging", "prod"):  # promotions pin it too, before the commit
        promote = "\n".join(doc[f"promote-{target}"]["script"])
        assert promote.index("mlops ci resolve-digest") < promote.index("git commit") < promote.index("pulumi up")


def test_pin_images_writes_digests_the_stack_then_runs(tmp_path: Path):
    from components.stack import stack_image
    from specs.config import stack_files

    text = stack_files.stack_file("fraud-dev").read_text()
    pinned = ci.pin_images_text(text, {"training": DIGEST, "serving": DIGEST.replace("0", "f")})
    assert pinned.startswith(text.rstrip("\n").split("\n")[0])  # comments kept
    assert "# null deletes the base value (RFC 7386)" in pinned
    source = stack_files.source_from_pulumi_config("fraud-dev", yaml.safe_load(pinned)["config"])
    config = stack_files.validate(source)
    assert stack_image(config, "training") == f"111111111111.dkr.ecr.eu-west-1.amazonaws.com/fraud/dev/training@{DIGEST}"
    assert stack_image(config, "serving").endswith("/fraud/dev/serving@" + DIGEST.replace("0", "f"))
    unpinned = stack_files.load("fraud-dev")
    assert stack_image(unpinned, "training").endswith("/fraud/dev/training:" + unpinned.images.training_tag)


@pytest.mark.parametrize(("digests", "message"), [
    ({"training": "sha256:abc"}, "training digest 'sha256:abc' is not allowed; allowed: sha256: and 64 lowercase hex digits"),
    ({"inference": DIGEST}, "image 'inference' is not allowed; allowed: training, serving"),
])
def test_pin_images_refuses_bad_input(digests, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        ci.pin_images_text("config:\n  mlops:team: fraud\n", digests)


def test_images_schema_refuses_a_digest_that_is_not_sha256():
    from pydantic import ValidationError

    from specs.config.schema import Images

    assert Images(training_digest=DIGEST).training_digest == DIGEST
    with pytest.raises(ValidationError, match="training_digest"):
        Images(training_digest="latest")


def test_every_aws_stack_file_names_its_kms_secrets_provider():
    from mlops.scaffold import secrets_provider
    from specs.config import stack_files

    names = [n for n in stack_files.list_stacks() if stack_files.load(n).environment != "local"]
    assert len(names) == 6
    for name in names:
        doc = yaml.safe_load(stack_files.stack_file(name).read_text())
        config = stack_files.load(name)
        assert doc["secretsprovider"] == secrets_provider(config.team, config.environment, config.aws.region), name
        assert doc["secretsprovider"].startswith(f"awskms://alias/{config.team}-{config.environment}-pulumi-secrets?region=")


def test_new_team_writes_the_secrets_provider_into_each_stack_file():
    from mlops.scaffold import TeamSpec, render

    spec = TeamSpec(name="risk", region="eu-central-1", owner="risk@example.com", cost_center="cc-1",
                    accounts={"dev": "111111111111", "staging": "222222222222", "prod": "333333333333"})
    files = render(spec)
    for env in ("dev", "staging", "prod"):
        doc = yaml.safe_load(files[Path(f"Pulumi.risk-{env}.yaml")])
        assert doc["secretsprovider"] == f"awskms://alias/risk-{env}-pulumi-secrets?region=eu-central-1"


def test_the_ecr_requests_of_the_image_jobs_fit_botocore_s_model(tmp_path: Path):
    """The image jobs call the AWS CLI; each call's operation, parameters and waiter exist in ECR's model."""
    import botocore.session
    from botocore.validate import ParamValidator

    session = botocore.session.get_session()
    model = session.get_service_model("ecr")
    digest = {"imageDigest": DIGEST}
    requests = {  # the CLI's kebab-case options, as the scripts pass them, in botocore's names
        "DescribeImages": {"repositoryName": "fraud/dev/training", "imageIds": [{"imageTag": "0" * 40}]},
        "DescribeImageScanFindings": {"repositoryName": "fraud/dev/training", "imageId": digest},
    }
    for operation, params in requests.items():
        report = ParamValidator().validate(params, model.operation_model(operation).input_shape)
        assert not report.has_errors(), (operation, report.generate_report())
    waiters = session.get_waiter_model("ecr")
    assert waiters.get_waiter("ImageScanComplete").operation == "DescribeImageScanFindings"
    # the option names the scripts use are those operations' members, kebab-cased
    ci.generate("github", tmp_path)
    ci.generate("gitlab", tmp_path)
    scripts = (tmp_path / ".github" / "workflows" / "main.yml").read_text() + (tmp_path / ".gitlab-ci.yml").read_text()
    for option in ("--repository-name", "--image-ids \"imageTag=", "--image-id \"imageDigest="):
        assert scripts.count(option) >= 2, option
    assert scripts.count("'imageScanFindings.findingSeverityCounts'") == 2
    assert "findingSeverityCounts" in model.shape_for("ImageScanFindings").members
    assert "imageDigest" in model.operation_model("DescribeImages").output_shape.members["imageDetails"].member.members


def test_a_created_clusters_autoscaler_is_pinned_by_digest(stacks: Path):
    """`mlops ci cluster-autoscaler-image` names the tag CI resolves; the pinned digest is what the
    cluster's Deployment then runs (on a private copy of stacks/)."""
    from mlops.plan import plan_stack
    from specs.config import stack_files
    from specs.k8s.cluster_autoscaler import CLUSTER_AUTOSCALER_IMAGE

    runner = CliRunner()
    created = [s for s in stack_files.list_stacks() if ci.cluster_autoscaler_image(stack_files.load(s))]
    assert created, "no shipped stack creates its EKS cluster"
    stack = created[0]
    image = runner.invoke(app, ["ci", "cluster-autoscaler-image", "--stack", stack]).stdout.strip()
    assert image.startswith(f"{CLUSTER_AUTOSCALER_IMAGE}:v")
    assert runner.invoke(app, ["ci", "cluster-autoscaler-image", "--stack", "fraud-dev"]).stdout == ""  # SageMaker training
    path = stack_files.stack_file(stack)
    before = path.read_text()
    path.write_text(ci.pin_images_text(before, {"cluster_autoscaler": DIGEST}))
    [deployment] = [r for r in plan_stack(stack).of_type("kubernetes:apps/v1:Deployment") if "autoscaler" in r.name]
    assert deployment.inputs["spec"]["template"]["spec"]["containers"][0]["image"] == f"{image}@{DIGEST}"
    with pytest.raises(ValueError, match="allowed: training, serving, cluster_autoscaler"):
        ci.pin_images_text(before, {"autoscaler": DIGEST})
