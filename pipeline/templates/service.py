"""The `service` stack of one environment: the model server on Fargate behind an ALB, autoscaled."""

from __future__ import annotations

from typing import Any

from troposphere import GetAtt, ImportValue, Join, Output, Parameter, Ref, Sub, Template
from troposphere.applicationautoscaling import (
    CustomizedMetricSpecification,
    PredefinedMetricSpecification,
    ScalableTarget,
    ScalingPolicy,
    TargetTrackingScalingPolicyConfiguration,
)
from troposphere.cloudwatch import Alarm, Metric, MetricDataQuery, MetricDimension, MetricStat
from troposphere.ec2 import SecurityGroup, SecurityGroupIngress, SecurityGroupRule
from troposphere.ecs import (
    AwsvpcConfiguration,
    CapacityProviderStrategy,
    CapacityProviderStrategyItem,
    Cluster,
    ClusterCapacityProviderAssociations,
    ClusterSetting,
    ContainerDefinition,
    DeploymentAlarms,
    DeploymentCircuitBreaker,
    DeploymentConfiguration,
    LogConfiguration,
    NetworkConfiguration,
    PortMapping,
    RuntimePlatform,
    Service,
    TaskDefinition,
)
from troposphere.ecs import (
    Environment as ContainerEnvironment,
)
from troposphere.ecs import (
    LoadBalancer as ServiceLoadBalancer,
)
from troposphere.ecs import (
    Secret as ContainerSecret,
)
from troposphere.elasticloadbalancingv2 import (
    Action,
    Certificate,
    Listener,
    LoadBalancer,
    LoadBalancerAttributes,
    Matcher,
    RedirectConfig,
    TargetGroup,
    TargetGroupAttribute,
)
from troposphere.logs import LogGroup

from pipeline.config import Environment, Settings
from pipeline.templates import names
from pipeline.templates.network import NetworkRefs, add_network
from pipeline.templates.security import add_log_key, add_task_roles, checkov_skip, role_boundary
from pipeline.templates.traffic import TrafficResources, add_traffic_shift, requests_per_target

CONTAINER = "model"
DIGEST_PATTERN = r"^[a-z0-9.\-/:]+@sha256:[a-f0-9]{64}$"
TLS_POLICY = "ELBSecurityPolicy-TLS13-1-2-2021-06"


def build_service(settings: Settings, environment: str) -> Template:
    env = settings.environment(environment)
    s = env.service
    t = Template(Description=f"{settings.app.name} ({env.name}): model server on ECS Fargate behind an ALB")
    image = t.add_parameter(
        Parameter(
            "ImageUri",
            Type="String",
            AllowedPattern=DIGEST_PATTERN,
            ConstraintDescription="an image pinned by digest: REPOSITORY@sha256:...",
            Description="The model server image, pinned by digest",
        )
    )
    version = t.add_parameter(
        Parameter(
            "Version",
            Type="String",
            AllowedPattern=r"^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$",
            Description="The release version",
        )
    )
    # A parameter, not a fixed number: each deploy passes the count autoscaling set (steps/scaling.py),
    # since CloudFormation sends DesiredCount with every update of the service.
    desired_count = t.add_parameter(
        Parameter(
            "DesiredCount",
            Type="Number",
            Default=s.desired_count,
            MinValue=s.min_count,
            MaxValue=s.max_count,
            Description="Tasks to run: the service's current count on a deploy, desired_count when it is created",
        )
    )

    # Off only while the pipeline first creates the stack (steps/protection.py): a failed create must
    # roll back to ROLLBACK_COMPLETE, not stop at a load balancer it cannot delete.
    deletion_protection = t.add_parameter(
        Parameter(
            "DeletionProtection",
            Type="String",
            AllowedValues=["true", "false"],
            Default="true",
            Description="The load balancer's deletion protection: false only during the stack's first create",
        )
    )

    log_key = add_log_key(t)
    boundary = role_boundary(settings, env.name)
    network = add_network(t, env, GetAtt(log_key, "Arn"), boundary)
    logs = t.add_resource(
        LogGroup(
            "LogGroup",
            LogGroupName=f"/ecs/{settings.app.name}-{env.name}",
            RetentionInDays=s.log_retention_days,
            KmsKeyId=GetAtt(log_key, "Arn"),
            # Logs live as long as the stack; retention bounds them anyway.
            DeletionPolicy="Delete",
            UpdateReplacePolicy="Delete",
        )
    )
    cluster = t.add_resource(
        Cluster("Cluster", ClusterSettings=[ClusterSetting(Name="containerInsights", Value="enabled")])
    )
    t.add_resource(
        ClusterCapacityProviderAssociations(
            "ClusterCapacityProviders",
            Cluster=Ref(cluster),
            CapacityProviders=["FARGATE", "FARGATE_SPOT"],
            DefaultCapacityProviderStrategy=[CapacityProviderStrategy(CapacityProvider="FARGATE", Base=1, Weight=1)],
        )
    )
    execution_role, task_role = add_task_roles(
        t, ImportValue(names.export(settings, "RepositoryArn")), GetAtt(logs, "Arn"), env, boundary
    )
    alb_sg, task_sg = _add_security_groups(t, env, network)
    task = t.add_resource(
        TaskDefinition(
            "TaskDefinition",
            Family=f"{settings.app.name}-{env.name}",
            Cpu=str(s.cpu),
            Memory=str(s.memory),
            NetworkMode="awsvpc",
            RequiresCompatibilities=["FARGATE"],
            RuntimePlatform=RuntimePlatform(OperatingSystemFamily="LINUX", CpuArchitecture=settings.image.architecture),
            ExecutionRoleArn=GetAtt(execution_role, "Arn"),
            TaskRoleArn=GetAtt(task_role, "Arn"),
            ContainerDefinitions=[
                ContainerDefinition(
                    Name=CONTAINER,
                    Image=Ref(image),
                    Essential=True,
                    PortMappings=[PortMapping(ContainerPort=s.container_port, Protocol="tcp")],
                    Environment=_container_environment(env, Ref(version)),
                    **_secrets(env),
                    # ECS Exec's SSM agent writes its files into the container: it cannot run on a read-only root.
                    ReadonlyRootFilesystem=not s.execute_command,
                    StopTimeout=s.stop_timeout,
                    LogConfiguration=LogConfiguration(
                        LogDriver="awslogs",
                        Options={
                            "awslogs-group": Ref(logs),
                            "awslogs-region": Ref("AWS::Region"),
                            "awslogs-stream-prefix": CONTAINER,
                        },
                    ),
                )
            ],
        )
    )
    alb = t.add_resource(
        LoadBalancer(
            "LoadBalancer",
            Scheme="internet-facing",
            Type="application",
            Subnets=network.public_subnets,
            SecurityGroups=[Ref(alb_sg)],
            LoadBalancerAttributes=[
                LoadBalancerAttributes(Key="routing.http.drop_invalid_header_fields.enabled", Value="true"),
                LoadBalancerAttributes(Key="idle_timeout.timeout_seconds", Value=str(s.idle_timeout)),
                LoadBalancerAttributes(Key="deletion_protection.enabled", Value=Ref(deletion_protection)),
            ],
            Metadata=checkov_skip(
                (
                    "CKV_AWS_91",
                    "Access logs need a log bucket per account; the stack keeps ALB metrics and alarms instead.",
                ),
            ),
        )
    )
    target_group = t.add_resource(
        TargetGroup(
            "TargetGroup",
            TargetType="ip",
            Protocol="HTTP",
            Port=s.container_port,
            VpcId=network.vpc_id,
            HealthCheckPath=s.health_check_path,
            HealthCheckIntervalSeconds=s.health_check_interval,
            HealthCheckTimeoutSeconds=s.health_check_timeout,
            HealthyThresholdCount=s.healthy_threshold,
            UnhealthyThresholdCount=s.unhealthy_threshold,
            Matcher=Matcher(HttpCode="200"),
            TargetGroupAttributes=[
                TargetGroupAttribute(Key="deregistration_delay.timeout_seconds", Value=str(s.deregistration_delay))
            ],
        )
    )
    listeners = _add_listeners(t, env, alb, target_group)
    alarms = _add_alarms(t, env, alb, target_group)
    shift: TrafficResources | None = None
    if env.shifts_traffic:  # blue_green, canary, linear: a second target group, rules, hooks (traffic.py)
        shift = add_traffic_shift(t, env, alb, alb_sg, target_group, listeners[0], alarms, boundary)
    load_balancer = ServiceLoadBalancer(
        ContainerName=CONTAINER, ContainerPort=s.container_port, TargetGroupArn=Ref(target_group)
    )
    deployment = DeploymentConfiguration(
        MinimumHealthyPercent=100,
        MaximumPercent=200,
        DeploymentCircuitBreaker=DeploymentCircuitBreaker(Enable=True, Rollback=True),
        Alarms=DeploymentAlarms(
            AlarmNames=[Ref(a) for a in alarms + (shift.alarms if shift else [])], Enable=True, Rollback=True
        ),
    )
    if shift:
        shift.apply(load_balancer, deployment, env)
    service = t.add_resource(
        Service(
            "Service",
            Cluster=Ref(cluster),
            TaskDefinition=Ref(task),
            DesiredCount=Ref(desired_count),
            CapacityProviderStrategy=[CapacityProviderStrategyItem(CapacityProvider="FARGATE", Base=1, Weight=1)],
            HealthCheckGracePeriodSeconds=s.warmup,
            NetworkConfiguration=NetworkConfiguration(
                AwsvpcConfiguration=AwsvpcConfiguration(
                    Subnets=network.private_subnets, SecurityGroups=[Ref(task_sg)], AssignPublicIp="DISABLED"
                )
            ),
            LoadBalancers=[load_balancer],
            DeploymentConfiguration=deployment,
            PropagateTags="SERVICE",
            EnableECSManagedTags=True,
            **({"EnableExecuteCommand": True} if s.execute_command else {}),
            DependsOn=[listener.title for listener in listeners] + ["ClusterCapacityProviders"],
        )
    )
    _add_scaling(t, env, cluster, service, alb, target_group, shift)
    scheme = "https" if env.https else "http"
    t.add_output(
        [
            Output(
                "ServiceUrl",
                Description="Where the model server answers",
                Value=Sub(f"{scheme}://${{{alb.title}.DNSName}}"),
            ),
            Output("LoadBalancerDns", Value=GetAtt(alb, "DNSName")),
            Output("ClusterName", Value=Ref(cluster)),
            Output("ServiceName", Value=GetAtt(service, "Name")),
            Output("ServiceArn", Value=Ref(service)),
            Output("TaskDefinitionArn", Value=Ref(task)),
            Output("TargetGroupArn", Value=Ref(target_group)),
            Output("LogGroupName", Value=Ref(logs)),
            Output("ImageUri", Value=Ref(image)),
            Output("Version", Value=Ref(version)),
        ]
    )
    if shift:
        t.add_output(shift.outputs(alb, scheme))
    return t


def _container_environment(env: Environment, version: Any) -> list[ContainerEnvironment]:
    values = dict(env.variables)
    values["PORT"] = str(env.service.container_port)
    pairs = [ContainerEnvironment(Name=k, Value=v) for k, v in sorted(values.items())]
    return pairs + [ContainerEnvironment(Name="MODEL_VERSION", Value=version)]


def _secrets(env: Environment) -> dict[str, Any]:
    """Secrets ECS reads into the container's environment at task start (the execution role may read them)."""
    if not env.secrets:
        return {}
    return {"Secrets": [ContainerSecret(Name=s.name, ValueFrom=s.value_from) for s in env.secrets]}


def _add_security_groups(t: Template, env: Environment, network: NetworkRefs) -> tuple[SecurityGroup, SecurityGroup]:
    """Tasks accept traffic only from the load balancer; the ALB only talks to the tasks."""
    port = env.service.container_port
    task_sg = t.add_resource(
        SecurityGroup(
            "TaskSecurityGroup",
            GroupDescription="Model server tasks: traffic from the load balancer only",
            VpcId=network.vpc_id,
            SecurityGroupEgress=[
                SecurityGroupRule(
                    IpProtocol="tcp",
                    FromPort=443,
                    ToPort=443,
                    CidrIp="0.0.0.0/0",
                    Description="Image pulls and logs over HTTPS",
                )
            ],
        )
    )
    public_ports = [443, 80] if env.https else [80]
    alb_sg = t.add_resource(
        SecurityGroup(
            "LoadBalancerSecurityGroup",
            GroupDescription="Model server load balancer",
            VpcId=network.vpc_id,
            SecurityGroupIngress=[
                SecurityGroupRule(
                    IpProtocol="tcp",
                    FromPort=p,
                    ToPort=p,
                    CidrIp="0.0.0.0/0",
                    Description="HTTPS from clients"
                    if p == 443
                    else ("HTTP, redirected to HTTPS" if env.https else "HTTP from clients"),
                )
                for p in public_ports
            ],
            SecurityGroupEgress=[
                SecurityGroupRule(
                    IpProtocol="tcp",
                    FromPort=port,
                    ToPort=port,
                    DestinationSecurityGroupId=Ref(task_sg),
                    Description="To the model server tasks",
                )
            ],
            Metadata=checkov_skip(
                (
                    "CKV_AWS_260",
                    "Port 80 is open to the internet on purpose: "
                    + ("it only redirects to HTTPS." if env.https else "this environment has no certificate."),
                ),
            ),
        )
    )
    t.add_resource(
        SecurityGroupIngress(
            "TaskIngressFromLoadBalancer",
            GroupId=Ref(task_sg),
            IpProtocol="tcp",
            FromPort=port,
            ToPort=port,
            SourceSecurityGroupId=Ref(alb_sg),
            Description="Model server port from the load balancer",
        )
    )
    return alb_sg, task_sg


def _add_listeners(t: Template, env: Environment, alb: LoadBalancer, target_group: TargetGroup) -> list[Listener]:
    forward = [Action(Type="forward", TargetGroupArn=Ref(target_group))]
    if not env.https:
        return [
            t.add_resource(
                Listener(
                    "HttpListener",
                    LoadBalancerArn=Ref(alb),
                    Port=80,
                    Protocol="HTTP",
                    DefaultActions=forward,
                    Metadata=checkov_skip(
                        ("CKV_AWS_2", "No certificate is configured for this environment: it serves HTTP only."),
                        ("CKV_AWS_103", "No TLS without a certificate."),
                    ),
                )
            )
        ]
    https = t.add_resource(
        Listener(
            "HttpsListener",
            LoadBalancerArn=Ref(alb),
            Port=443,
            Protocol="HTTPS",
            SslPolicy=TLS_POLICY,
            Certificates=[Certificate(CertificateArn=env.certificate_arn)],
            DefaultActions=forward,
        )
    )
    redirect = t.add_resource(
        Listener(
            "HttpRedirectListener",
            LoadBalancerArn=Ref(alb),
            Port=80,
            Protocol="HTTP",
            DefaultActions=[
                Action(
                    Type="redirect", RedirectConfig=RedirectConfig(Protocol="HTTPS", Port="443", StatusCode="HTTP_301")
                )
            ],
        )
    )
    return [https, redirect]


def _add_alarms(t: Template, env: Environment, alb: LoadBalancer, target_group: TargetGroup) -> list[Alarm]:
    """Alarms the ECS deployment watches: either one firing rolls the deployment back."""
    dims = [
        MetricDimension(Name="LoadBalancer", Value=GetAtt(alb, "LoadBalancerFullName")),
        MetricDimension(Name="TargetGroup", Value=GetAtt(target_group, "TargetGroupFullName")),
    ]
    # A rate, not a count: anyone can send a handful of requests that fail, so the alarm counts a
    # minute only once it has alarm_min_requests requests, and then fires on the share that failed.
    service = env.service

    def minute_sum(query_id: str, metric_name: str) -> MetricDataQuery:
        metric = Metric(Namespace="AWS/ApplicationELB", MetricName=metric_name, Dimensions=dims)
        return MetricDataQuery(
            Id=query_id, MetricStat=MetricStat(Metric=metric, Period=60, Stat="Sum"), ReturnData=False
        )

    errors = t.add_resource(
        Alarm(
            "TargetErrorsAlarm",
            AlarmDescription=(
                f"{env.name}: {service.alarm_5xx_percent:g}% or more of a minute's requests get a 5xx from the "
                f"model server (minutes with fewer than {service.alarm_min_requests} requests do not count)"
            ),
            Metrics=[
                minute_sum("errors", "HTTPCode_Target_5XX_Count"),
                minute_sum("requests", "RequestCount"),
                MetricDataQuery(
                    Id="rate",
                    Expression=(f"IF(requests >= {service.alarm_min_requests}, 100 * FILL(errors, 0) / requests, 0)"),
                    Label="Target 5xx percent",
                    ReturnData=True,
                ),
            ],
            EvaluationPeriods=1,
            Threshold=service.alarm_5xx_percent,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
        )
    )
    latency = t.add_resource(
        Alarm(
            "TargetLatencyAlarm",
            AlarmDescription=f"{env.name}: p99 response time is too high",
            Namespace="AWS/ApplicationELB",
            MetricName="TargetResponseTime",
            Dimensions=dims,
            ExtendedStatistic="p99",
            Period=60,
            EvaluationPeriods=3,
            DatapointsToAlarm=2,
            Threshold=env.service.alarm_latency_p99,
            ComparisonOperator="GreaterThanThreshold",
            TreatMissingData="notBreaching",
        )
    )
    return [errors, latency]


def _add_scaling(
    t: Template,
    env: Environment,
    cluster: Cluster,
    service: Service,
    alb: LoadBalancer,
    target_group: TargetGroup,
    shift: TrafficResources | None = None,
) -> None:
    s = env.service
    target = t.add_resource(
        ScalableTarget(
            "ScalableTarget",
            ServiceNamespace="ecs",
            ScalableDimension="ecs:service:DesiredCount",
            ResourceId=Join("/", ["service", Ref(cluster), GetAtt(service, "Name")]),
            MinCapacity=s.min_count,
            MaxCapacity=s.max_count,
        )
    )
    t.add_resource(
        _target_tracking(
            "CpuScalingPolicy",
            "cpu",
            target,
            s.cpu_target_percent,
            PredefinedMetricSpecification(PredefinedMetricType="ECSServiceAverageCPUUtilization"),
        )
    )
    requests: PredefinedMetricSpecification | CustomizedMetricSpecification = PredefinedMetricSpecification(
        PredefinedMetricType="ALBRequestCountPerTarget",
        ResourceLabel=Join("/", [GetAtt(alb, "LoadBalancerFullName"), GetAtt(target_group, "TargetGroupFullName")]),
    )
    if shift:  # ALBRequestCountPerTarget names one target group; production alternates between two
        requests = requests_per_target([target_group, shift.alternate_target_group])
    t.add_resource(_target_tracking("RequestsScalingPolicy", "requests", target, s.requests_per_target, requests))


def _target_tracking(
    title: str,
    suffix: str,
    target: ScalableTarget,
    value: float,
    metric: PredefinedMetricSpecification | CustomizedMetricSpecification,
) -> ScalingPolicy:
    """Scale out fast and in slowly around one metric's target value."""
    key = "PredefinedMetricSpecification"
    if isinstance(metric, CustomizedMetricSpecification):
        key = "CustomizedMetricSpecification"
    return ScalingPolicy(
        title,
        PolicyName=Sub(f"${{AWS::StackName}}-{suffix}"),
        PolicyType="TargetTrackingScaling",
        ScalingTargetId=Ref(target),
        TargetTrackingScalingPolicyConfiguration=TargetTrackingScalingPolicyConfiguration(
            TargetValue=float(value),
            **{key: metric},
            ScaleInCooldown=120,
            ScaleOutCooldown=30,
        ),
    )
