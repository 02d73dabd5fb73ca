"""ECS-native traffic shifting (blue_green, canary, linear) for the service stack.

ECS runs the new revision's tasks in the alternate target group, sends test traffic through the test
listener, then moves production traffic by rewriting the production listener rule's weights. The old
tasks keep running through the bake, so a rollback is one more rule change, not a redeploy. PAUSE
hooks hold the deployment where the pipeline decides: after test traffic (the model gate) and before
each production shift (the canary decision); a hook nobody answers rolls back.

Which target group is "new" alternates from one deployment to the next, so everything that watches
the new revision (rollback alarms, request-based scaling) covers both groups.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from awacs import elasticloadbalancing as elb
from awacs.aws import Allow, PolicyDocument, Principal, Statement
from awacs.sts import AssumeRole
from troposphere import AWSHelperFn, BaseAWSObject, GetAtt, Output, Ref, Sub, Template
from troposphere.applicationautoscaling import (
    CustomizedMetricSpecification,
    TargetTrackingMetric,
    TargetTrackingMetricDataQuery,
    TargetTrackingMetricDimension,
    TargetTrackingMetricStat,
)
from troposphere.cloudwatch import Alarm, MetricDimension
from troposphere.ec2 import SecurityGroup, SecurityGroupIngress
from troposphere.ecs import (
    AdvancedConfiguration,
    CanaryConfiguration,
    DeploymentConfiguration,
    DeploymentLifecycleHook,
    HookTimeoutConfig,
    LinearConfiguration,
)
from troposphere.ecs import LoadBalancer as ServiceLoadBalancer
from troposphere.elasticloadbalancingv2 import (
    Action,
    Condition,
    ForwardConfig,
    Listener,
    ListenerRule,
    ListenerRuleAction,
    LoadBalancer,
    PathPatternConfig,
    TargetGroup,
    TargetGroupTuple,
)
from troposphere.iam import Policy, Role

from pipeline.config import Environment
from pipeline.templates.security import checkov_skip

ECS_STRATEGY = {"blue_green": "BLUE_GREEN", "canary": "CANARY", "linear": "LINEAR"}
# PAUSE hooks: the model gate runs once test traffic reaches the new revision; production shifts wait
# for the pipeline's decision (for canary and linear ECS enters this stage before every shift).
GATE_STAGE = "POST_TEST_TRAFFIC_SHIFT"
DECISION_STAGE = "PRE_PRODUCTION_TRAFFIC_SHIFT"
ALTERNATE_PREFIX = "Alternate"


@dataclass(frozen=True)
class TrafficResources:
    """What the service needs from this module: its load balancer wiring, strategy and extra alarms."""

    alternate_target_group: TargetGroup
    production_rule: ListenerRule
    test_listener: Listener
    test_rule: ListenerRule
    role: Role
    alarms: list[Alarm]  # the alternate target group's copies of the service's rollback alarms

    def outputs(self, alb: LoadBalancer, scheme: str) -> list[Output]:
        """Where the model gate and the engine find the new revision and the rules ECS moves."""
        return [
            Output(
                "TestUrl",
                Description="The test listener: the new revision before production traffic",
                Value=Sub(f"{scheme}://${{{alb.title}.DNSName}}:{self.test_listener.properties['Port']}"),
            ),
            Output("AlternateTargetGroupArn", Value=Ref(self.alternate_target_group)),
            Output("ProductionListenerRuleArn", Value=Ref(self.production_rule)),
            Output("TestListenerRuleArn", Value=Ref(self.test_rule)),
        ]

    def apply(self, load_balancer: ServiceLoadBalancer, deployment: DeploymentConfiguration, env: Environment) -> None:
        load_balancer.AdvancedConfiguration = AdvancedConfiguration(
            AlternateTargetGroupArn=Ref(self.alternate_target_group),
            ProductionListenerRule=Ref(self.production_rule),
            TestListenerRule=Ref(self.test_rule),
            RoleArn=GetAtt(self.role, "Arn"),
        )
        deployment_settings(deployment, env)


def deployment_settings(deployment: DeploymentConfiguration, env: Environment) -> None:
    """Strategy, its steps, the bake, and the PAUSE hooks; a hook left unanswered rolls back."""
    t = env.traffic
    deployment.Strategy = ECS_STRATEGY[env.delivery.strategy]
    deployment.BakeTimeInMinutes = t.bake_minutes
    if env.delivery.strategy == "canary":
        deployment.CanaryConfiguration = CanaryConfiguration(
            CanaryPercent=t.canary_percent, CanaryBakeTimeInMinutes=t.canary_bake_minutes
        )
    if env.delivery.strategy == "linear":
        deployment.LinearConfiguration = LinearConfiguration(
            StepPercent=t.linear_step_percent, StepBakeTimeInMinutes=t.linear_step_bake_minutes
        )
    # A PAUSE hook takes no target, role or HookDetails: ECS waits for ContinueServiceDeployment.
    deployment.LifecycleHooks = [
        DeploymentLifecycleHook(
            TargetType="PAUSE",
            LifecycleStages=[stage],
            TimeoutConfiguration=HookTimeoutConfig(TimeoutInMinutes=t.hook_timeout_minutes, Action="ROLLBACK"),
        )
        for stage in (GATE_STAGE, DECISION_STAGE)
    ]


def add_traffic_shift(
    t: Template,
    env: Environment,
    alb: LoadBalancer,
    alb_security_group: SecurityGroup,
    target_group: TargetGroup,
    production_listener: Listener,
    alarms: list[Alarm],
    boundary: Any,
) -> TrafficResources:
    alternate = t.add_resource(_alternate_of(target_group))
    # Weighted forward to both groups: ECS rewrites the weights as it shifts (blue 100 / green 0 at rest).
    production_rule = t.add_resource(
        _forward_rule("ProductionListenerRule", production_listener, target_group, alternate)
    )
    test_listener = t.add_resource(_test_listener(env, alb, target_group, production_listener))
    test_rule = t.add_resource(_forward_rule("TestListenerRule", test_listener, target_group, alternate))
    _open_test_port(t, env, alb_security_group)
    listeners = [production_listener, test_listener]
    role = t.add_resource(
        _infrastructure_role([target_group, alternate], listeners, [production_rule, test_rule], boundary)
    )
    mirrored = [t.add_resource(_mirror_alarm(a, target_group, alternate)) for a in alarms]
    return TrafficResources(alternate, production_rule, test_listener, test_rule, role, mirrored)


def requests_per_target(groups: list[TargetGroup]) -> CustomizedMetricSpecification:
    """Requests per task across both target groups: after a shift the production group is the other one.

    ECS scales the new revision to the old one's size, so the sum of the groups' per-target counts is
    the per-task load whichever group serves (and while both do, during a canary).
    """
    queries = [
        TargetTrackingMetricDataQuery(
            Id=f"group{i}",
            MetricStat=TargetTrackingMetricStat(
                Metric=TargetTrackingMetric(
                    Namespace="AWS/ApplicationELB",
                    MetricName="RequestCountPerTarget",
                    Dimensions=[
                        TargetTrackingMetricDimension(Name="TargetGroup", Value=GetAtt(g, "TargetGroupFullName"))
                    ],
                ),
                Stat="Sum",
            ),
            ReturnData=False,
        )
        for i, g in enumerate(groups)
    ]
    total = TargetTrackingMetricDataQuery(
        Id="requests",
        Expression="SUM([" + ", ".join(q.Id for q in queries) + "])",
        Label="Requests per target, both target groups",
        ReturnData=True,
    )
    return CustomizedMetricSpecification(Metrics=[*queries, total])


def _alternate_of(target_group: TargetGroup) -> TargetGroup:
    """The second target group, configured exactly like the first (health check, drain)."""
    props = copy.deepcopy(target_group.properties)
    return TargetGroup(ALTERNATE_PREFIX + target_group.title, **props)


def _forward_rule(title: str, listener: Listener, blue: TargetGroup, green: TargetGroup) -> ListenerRule:
    return ListenerRule(
        title,
        ListenerArn=Ref(listener),
        Priority=1,
        Conditions=[Condition(Field="path-pattern", PathPatternConfig=PathPatternConfig(Values=["/*"]))],
        Actions=[
            ListenerRuleAction(
                Type="forward",
                ForwardConfig=ForwardConfig(
                    TargetGroups=[
                        TargetGroupTuple(TargetGroupArn=Ref(blue), Weight=100),
                        TargetGroupTuple(TargetGroupArn=Ref(green), Weight=0),
                    ]
                ),
            )
        ],
    )


def _test_listener(env: Environment, alb: LoadBalancer, target_group: TargetGroup, production: Listener) -> Listener:
    """Its own port, with the production listener's TLS when there is one; only its rule matters to ECS."""
    common: dict[str, Any] = {
        "LoadBalancerArn": Ref(alb),
        "Port": env.traffic.test_listener_port,
        "DefaultActions": [Action(Type="forward", TargetGroupArn=Ref(target_group))],
    }
    if env.https:
        tls = {k: copy.deepcopy(production.properties[k]) for k in ("SslPolicy", "Certificates")}
        return Listener("TestListener", Protocol="HTTPS", **tls, **common)
    return Listener(
        "TestListener",
        Protocol="HTTP",
        Metadata=checkov_skip(
            ("CKV_AWS_2", "No certificate is configured for this environment: it serves HTTP only."),
            ("CKV_AWS_103", "No TLS without a certificate."),
        ),
        **common,
    )


def _open_test_port(t: Template, env: Environment, alb_security_group: SecurityGroup) -> None:
    """The test listener answers only the CIDRs the settings name (default: the VPC's own)."""
    cidrs = env.traffic.test_listener_cidrs or (
        (env.network.vpc_cidr or "10.0.0.0/16",) if env.network.creates_vpc else ()
    )
    port = env.traffic.test_listener_port
    for i, cidr in enumerate(cidrs, start=1):
        t.add_resource(
            SecurityGroupIngress(
                f"TestListenerIngress{i}",
                GroupId=Ref(alb_security_group),
                IpProtocol="tcp",
                FromPort=port,
                ToPort=port,
                CidrIp=cidr,
                Description="Test listener: the model gate reaches the new revision here",
            )
        )


def _infrastructure_role(
    groups: list[TargetGroup], listeners: list[Listener], rules: list[ListenerRule], boundary: Any
) -> Role:
    """The role ECS assumes to shift traffic: AmazonECSInfrastructureRolePolicyForLoadBalancers' actions
    (policy v6), each scoped to this stack's target groups, listeners and rules where IAM allows it.
    It carries the stack's permissions boundary, as every role the stack makes must."""
    return Role(
        "TrafficShiftRole",
        PermissionsBoundary=boundary,
        AssumeRolePolicyDocument=PolicyDocument(
            Version="2012-10-17",
            Statement=[
                Statement(Effect=Allow, Principal=Principal("Service", "ecs.amazonaws.com"), Action=[AssumeRole])
            ],
        ),
        Policies=[
            Policy(
                PolicyName="shift-traffic",
                PolicyDocument=PolicyDocument(
                    Version="2012-10-17",
                    Statement=[
                        # Describe calls take no resource ARN in IAM.
                        Statement(
                            Sid="ReadLoadBalancing",
                            Effect=Allow,
                            Action=[
                                elb.DescribeListeners,
                                elb.DescribeRules,
                                elb.DescribeTargetGroups,
                                elb.DescribeTargetHealth,
                            ],
                            Resource=["*"],
                        ),
                        Statement(
                            Sid="RegisterTasks",
                            Effect=Allow,
                            Action=[elb.RegisterTargets, elb.DeregisterTargets],
                            Resource=[Ref(g) for g in groups],
                        ),
                        Statement(
                            Sid="ModifyListeners",
                            Effect=Allow,
                            Action=[elb.ModifyListener],
                            Resource=[Ref(x) for x in listeners],
                        ),
                        Statement(
                            Sid="ShiftTraffic",
                            Effect=Allow,
                            Action=[elb.ModifyRule],
                            Resource=[Ref(r) for r in rules],
                        ),
                    ],
                ),
            )
        ],
    )


def _mirror_alarm(alarm: Alarm, primary: TargetGroup, alternate: TargetGroup) -> Alarm:
    """The same alarm on the alternate target group, whatever its metric (a plain one or metric math)."""
    props = copy.deepcopy(alarm.properties)
    _retarget(props, GetAtt(primary, "TargetGroupFullName").to_dict(), GetAtt(alternate, "TargetGroupFullName"))
    if "AlarmDescription" in props:
        props["AlarmDescription"] = f"{props['AlarmDescription']} (alternate target group)"
    return Alarm(ALTERNATE_PREFIX + alarm.title, **props)


def _retarget(node: Any, primary: dict[str, Any], alternate: AWSHelperFn) -> None:
    """Point every TargetGroup dimension under `node` at the alternate group."""
    if isinstance(node, MetricDimension):
        value = node.properties.get("Value")
        if (
            node.properties.get("Name") == "TargetGroup"
            and isinstance(value, AWSHelperFn)
            and value.to_dict() == primary
        ):
            node.Value = alternate
        return
    if isinstance(node, BaseAWSObject):
        children = list(node.properties.values())
    elif isinstance(node, dict):
        children = list(node.values())
    elif isinstance(node, list):
        children = node
    else:
        return
    for child in children:
        _retarget(child, primary, alternate)
