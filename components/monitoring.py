"""Monitoring: the alert topic, per-variant, live-quality and drift alarms, and the team's dashboard.

Must not import: `mlops`, `mlops_training` or `mlops_serving` (a component builds resources from
specifications; the operator CLI drives the components, and the containers run inside the images they
deploy)."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
from mlops_contracts import metrics

from components._validation import Problem, raise_input_problems
from specs import iam, templates
from specs.alarms import AlarmSpec, endpoint_alarms
from specs.config.schema import EndpointConfig, MonitoringConfig
from specs.naming import Namer

TOKEN = "mlops:monitoring:Monitoring"


def alarm_arn(*, region: str, account_id: str, name: str) -> str:
    return f"arn:aws:cloudwatch:{region}:{account_id}:alarm:{name}"


def dashboard_body(*, namer: Namer, region: str, endpoints: dict[str, EndpointConfig], specs: list[AlarmSpec], drift_psi: float,
                   model_gates: dict[str, dict[str, float]] | None = None) -> str:
    """The dashboard JSON (validated by parsing it: a template slip fails here, not in CloudWatch).
    An endpoint whose model has gates gets a chart of the live metrics the quality job publishes for them."""
    gates = model_gates or {}
    body = templates.render(
        "dashboard.json.j2",
        title=f"MLOps {namer.prefix}",
        region=region,
        m=metrics,
        endpoints=[
            {
                "name": namer.endpoint(key),
                "variants": list(endpoint.all_variants()),
                "drift_schedule": namer.monitoring_schedule(key),
                "drift_threshold": drift_psi,
                # CloudWatch's alarm widget takes 1 to 100 alarms; with none the template leaves it out.
                "alarm_arns": [alarm_arn(region=region, account_id=namer.account_id, name=s.name) for s in specs if s.endpoint == key][:100],
                "live_metrics": [metrics.live_metric(g) for g in gates.get(key, {}) if g in metrics.LIVE_METRIC_SUFFIXES],
            }
            for key, endpoint in endpoints.items()
        ],
    )
    return json.dumps(json.loads(body), separators=(",", ":"))


@dataclass(frozen=True, kw_only=True)
class MonitoringArgs:
    """Inputs of Monitoring."""

    namer: Namer
    region: str
    config: MonitoringConfig
    endpoints: dict[str, EndpointConfig]
    kms_key_arn: pulumi.Input[str]
    """Encrypts the SNS topic (the key policy lets CloudWatch and EventBridge use it)."""
    model_gates: dict[str, dict[str, float]] = field(default_factory=dict)
    """Evaluation gates of the model each endpoint serves, by endpoint key (live-quality alarm thresholds)."""
    https_endpoint: pulumi.Input[str] | None = None
    """The webhook URL, a secret from `config.require_secret`, subscribed over HTTPS."""
    tags: dict[str, str]


class Monitoring(pulumi.ComponentResource):
    """SNS alert topic with subscriptions, alarms for every endpoint variant, drift alarms, dashboard."""

    topic: aws.sns.Topic
    alarms: dict[str, aws.cloudwatch.MetricAlarm]
    """By alarm name."""
    specs: list[AlarmSpec]
    """What the alarms are; the Endpoint component takes its rollback alarms from here."""
    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        raise_input_problems("Monitoring", _problems(args))
        super().__init__(TOKEN, name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        namer = args.namer

        self.topic = aws.sns.Topic(f"{name}-alerts", name=namer.topic(), kms_master_key_id=args.kms_key_arn, tags=args.tags, opts=child)
        self.topic_arn = self.topic.arn
        aws.sns.TopicPolicy(
            f"{name}-alerts-policy",
            arn=self.topic.arn,
            policy=self.topic.arn.apply(lambda arn: json.dumps(iam.topic_policy(topic_arn=arn, account_id=namer.account_id))),
            opts=child,
        )
        for i, email in enumerate(args.config.notifications.emails):
            aws.sns.TopicSubscription(f"{name}-email-{i}", topic=self.topic.arn, protocol="email", endpoint=email, opts=child)
        if args.https_endpoint is not None:
            aws.sns.TopicSubscription(
                f"{name}-webhook", topic=self.topic.arn, protocol="https", endpoint=args.https_endpoint,
                endpoint_auto_confirms=True, opts=child,
            )

        self.specs = []
        self.alarms = {}
        if args.config.alarms:
            for key, endpoint in args.endpoints.items():
                self.specs.extend(endpoint_alarms(namer=namer, key=key, endpoint=endpoint, thresholds=args.config.thresholds,
                                                  gates=args.model_gates.get(key)))
            for spec in self.specs:
                self.alarms[spec.name] = _metric_alarm(name, spec, self.topic.arn, args.tags, child)

        self.dashboard = None
        if args.endpoints:
            self.dashboard = aws.cloudwatch.Dashboard(
                f"{name}-dashboard",
                dashboard_name=namer.dashboard(),
                dashboard_body=dashboard_body(
                    namer=namer, region=args.region, endpoints=args.endpoints, specs=self.specs,
                    drift_psi=args.config.thresholds.drift_psi, model_gates=args.model_gates,
                ),
                opts=child,
            )
        self.register_outputs({"topicArn": self.topic.arn, "alarmNames": sorted(self.alarms)})


def _metric_alarm(component: str, spec: AlarmSpec, topic_arn: pulumi.Output[str], tags: dict[str, str], opts: pulumi.ResourceOptions) -> aws.cloudwatch.MetricAlarm:
    common = dict(
        name=spec.name,
        alarm_description=spec.description,
        comparison_operator=spec.comparison,
        threshold=spec.threshold,
        evaluation_periods=spec.evaluation_periods,
        datapoints_to_alarm=spec.datapoints_to_alarm,
        treat_missing_data=spec.treat_missing_data,
        alarm_actions=[topic_arn],
        ok_actions=[topic_arn],
        tags=tags,
        opts=opts,
    )
    if spec.metric_queries:
        queries = []
        for q in spec.metric_queries:
            query = {"id": q["Id"], "return_data": q["ReturnData"]}
            if "Expression" in q:
                query.update(expression=q["Expression"], label=q["Label"])
            else:
                stat = q["MetricStat"]
                query["metric"] = {
                    "namespace": stat["Metric"]["Namespace"],
                    "metric_name": stat["Metric"]["MetricName"],
                    "dimensions": {d["Name"]: d["Value"] for d in stat["Metric"]["Dimensions"]},
                    "period": stat["Period"],
                    "stat": stat["Stat"],
                }
            queries.append(query)
        return aws.cloudwatch.MetricAlarm(f"{component}-{spec.name}", metric_queries=queries, **common)
    return aws.cloudwatch.MetricAlarm(
        f"{component}-{spec.name}",
        namespace=spec.namespace,
        metric_name=spec.metric,
        statistic=spec.statistic,
        extended_statistic=spec.extended_statistic,
        period=spec.period,
        dimensions=spec.dimensions,
        **common,
    )


def _problems(args: MonitoringArgs) -> list[Problem]:
    problems: list[Problem] = []
    secret = args.config.notifications.https_endpoint_secret
    if secret and args.https_endpoint is None:
        problems.append(("https_endpoint", f"notifications.https_endpoint_secret names {secret!r} but no secret value was passed"))
    for key in sorted(set(args.model_gates) - set(args.endpoints)):
        problems.append((f"model_gates.{key}", f"no endpoint {key!r}; allowed: {', '.join(sorted(args.endpoints)) or 'none'}"))
    return problems
