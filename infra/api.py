"""The DIG API module: a regional REST API (authorizer, request validation, access and execution
logs, stage throttling, WAF) in front of the DIG API Lambda."""

from __future__ import annotations

import json
import re

import aws_cdk as cdk
from aws_cdk import Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_events as events
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_secretsmanager as secretsmanager
from aws_cdk import aws_wafv2 as wafv2
from aws_cdk import aws_xray as xray
from constructs import Construct

from db.inbound_feed import TYPE_INDEX
from dig_api import gateway_errors
from dig_api.auth import usage_key_prefix
from dig_contracts import environment as env
from dig_contracts import functions
from dig_contracts.manifest import ConnectorManifest
from infra.bundling import function_code
from infra.database import INGEST_ACTIONS, Database
from infra.function import DigFunction, _retention
from infra.settings import Settings

JWT_AUDIENCE = "dig-api"


class Api(Construct):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        settings: Settings,
        audit_table: dynamodb.ITable,
        config_table: dynamodb.ITable,
        bus: events.IEventBus,
        layer: lambda_.ILayerVersion,
    ) -> None:
        super().__init__(scope, construct_id)
        self._sync_connectors: dict[str, dict[str, object]] = {}
        self._webhook_sources: dict[str, dict[str, dict[str, object]]] = {}
        self._stage_name = settings.stage
        self.issuer = f"dig-{settings.stage}"
        self.function = DigFunction(
            self,
            "Handler",
            service="dig-api",
            handler=functions.API.handler,
            code=function_code("api", ("dig_api",)),
            layer=layer,
            log_retention_days=settings.log_retention_days,
            timeout_seconds=28,  # inside API Gateway's 29 s
            memory_mb=functions.API.memory_mb,
            description="DIG API: validates ES Loyalty events, audits them and puts them on the bus",
            snap_start=settings.api_snap_start,
            environment={
                env.AUDIT_TABLE_NAME: audit_table.table_name,
                env.EVENT_BUS_NAME: bus.event_bus_name,
                env.AUDIT_RETENTION_DAYS: str(settings.audit_retention_days),
                env.AUDIT_FAILED_RETENTION_DAYS: str(settings.audit_failed_retention_days),
            },
        )
        Database.grant(audit_table, self.function, *INGEST_ACTIONS, "Query")
        # GET /v1/inbound-events reads the return path's events by type and day.
        Database.grant_query(audit_table, self.function, TYPE_INDEX)
        bus.grant_put_events_to(self.function)

        self.rest_api = apigw.RestApi(
            self,
            "RestApi",
            rest_api_name=f"dig-{settings.stage}",
            description="DIG: the REST interface ES Loyalty posts member events to",
            endpoint_types=[apigw.EndpointType.REGIONAL],
            # Per-client throttling: the authorizer names the client's usage-plan key (never a client's credential).
            api_key_source_type=apigw.ApiKeySourceType.AUTHORIZER if settings.api_auth == "jwt" else None,
            cloud_watch_role=True,
            cloud_watch_role_removal_policy=RemovalPolicy.RETAIN,
            deploy_options=apigw.StageOptions(
                stage_name=settings.stage,
                access_log_destination=apigw.LogGroupLogDestination(
                    logs.LogGroup(self, "AccessLogs", retention=_retention(settings.log_retention_days))
                ),
                access_log_format=apigw.AccessLogFormat.json_with_standard_fields(
                    caller=True,
                    http_method=True,
                    ip=True,
                    protocol=True,
                    request_time=True,
                    resource_path=True,
                    response_length=True,
                    status=True,
                    user=True,
                ),
                logging_level=apigw.MethodLoggingLevel.ERROR,
                # Full request logging would write bodies, and so member data, into the logs.
                data_trace_enabled=False,
                metrics_enabled=True,
                tracing_enabled=True,
                throttling_rate_limit=settings.api_throttle_rate,
                throttling_burst_limit=settings.api_throttle_burst,
            ),
        )
        # What API Gateway traces otherwise (dig_contracts.functions): a rule of the stack's own, after the
        # routes never traced (below) and before the account's Default.
        self._sampling_rule(
            "TraceSampling",
            "api",
            100,
            rate=functions.API_TRACE_FIXED_RATE,
            reservoir=functions.API_TRACE_RESERVOIR_PER_SECOND,
        )
        for error in gateway_errors.ALL:
            self.rest_api.add_gateway_response(
                f"Gateway{error.response_type.title().replace('_', '')}",
                type=apigw.ResponseType.of(error.response_type),
                status_code=str(error.status) if error.status else None,
                templates={"application/json": error.body("$context.requestId")},
            )

        # The gateway checks that an Authorization header is present; the body is validated by the
        # Lambda against the event schemas (no gateway model), so that every error has one shape.
        validator = self.rest_api.add_request_validator(
            "RequestValidator", validate_request_parameters=True, validate_request_body=True
        )
        method_options: dict[str, object]
        if settings.api_auth == "iam":
            self.signing_secret = None
            method_options = {"authorization_type": apigw.AuthorizationType.IAM}
        else:
            self.signing_secret = secretsmanager.Secret(
                self,
                "SigningKeys",
                description="DIG API: key that signs the bearer JWTs ES Loyalty presents",
                generate_secret_string=secretsmanager.SecretStringGenerator(
                    secret_string_template=json.dumps({"kid": "k1"}),
                    generate_string_key="key",
                    password_length=64,
                    exclude_punctuation=True,
                ),
            )
            self.authorizer_function = DigFunction(
                self,
                "Authorizer",
                service="dig-authorizer",
                handler=functions.AUTHORIZER.handler,
                code=function_code("authorizer", ("dig_api",)),
                layer=layer,
                log_retention_days=settings.log_retention_days,
                timeout_seconds=10,
                memory_mb=functions.AUTHORIZER.memory_mb,
                description="DIG API authorizer: verifies bearer JWTs",
                snap_start=settings.api_snap_start,
                environment={
                    env.SIGNING_KEY_SECRET_ARN: self.signing_secret.secret_arn,
                    env.JWT_ISSUER: self.issuer,
                    env.JWT_AUDIENCE: JWT_AUDIENCE,
                    env.JWT_MAX_LIFETIME_SECONDS: str(settings.token_max_hours * 3600),
                    env.CONFIG_TABLE_NAME: config_table.table_name,
                    env.USAGE_KEY_PREFIX: usage_key_prefix(settings.stage),
                },
            )
            self.signing_secret.grant_read(self.authorizer_function)
            Database.grant(config_table, self.authorizer_function, "GetItem")  # the revocation list
            cdk.Validations.of(self.signing_secret).acknowledge(
                cdk.Acknowledgment(
                    id="AwsSolutions::AwsSolutions-SMG4",
                    reason="Rotating the JWT signing key invalidates the tokens ES Loyalty holds, so it is a "
                    "coordinated procedure (README: the previous key stays valid during rotation), not a schedule",
                )
            )
            authorizer = apigw.TokenAuthorizer(
                self,
                "TokenAuthorizer",
                handler=self.authorizer_function.entry,
                identity_source=apigw.IdentitySource.header("Authorization"),
                # With the authorizer's 30 s cache of the revocation list, a revocation holds within a minute.
                results_cache_ttl=Duration.seconds(30),
            )
            method_options = {
                "authorization_type": apigw.AuthorizationType.CUSTOM,
                "authorizer": authorizer,
                "api_key_required": True,
            }
        cdk.Validations.of(self.rest_api).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-COG4",
                reason="ES Loyalty is a machine client: routes use a JWT Lambda authorizer (or IAM SigV4), not a "
                "Cognito user pool",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
                "AmazonAPIGatewayPushToCloudWatchLogs]",
                reason="API Gateway's account-level logging role: AWS documents this managed policy for it",
            ),
        )

        v1 = self.rest_api.root.add_resource("v1")
        proxy = v1.add_resource("{proxy+}")
        proxy.add_method(
            "ANY",
            apigw.LambdaIntegration(self.function.entry),
            request_validator=validator,
            request_parameters={"method.request.header.Authorization": True},
            **method_options,  # type: ignore[arg-type]
        )
        self._callbacks(v1, validator)
        self._v1, self._validator = v1, validator
        if settings.api_auth == "jwt":
            self._usage_plan(settings)
        self._web_acl(settings)
        self.function.add_environment(env.SYNC_CONNECTORS, "{}")

    def _callbacks(self, v1: apigw.IResource, validator: apigw.IRequestValidator) -> None:
        """POST /v1/callbacks/<connector>/<callId>?sig=...: a provider's results, to a URL the connector
        signed with a key both read from Secrets Manager. The provider holds no DIG credentials."""
        self.callback_key = secretsmanager.Secret(
            self,
            "CallbackKey",
            description="DIG: signs the callback URLs connectors give providers",
            generate_secret_string=secretsmanager.SecretStringGenerator(
                secret_string_template="{}",  # noqa: S106 - an empty JSON object, not a password
                generate_string_key="key",
                password_length=64,
                exclude_punctuation=True,
            ),
        )
        self.callback_key.grant_read(self.function)
        self.function.add_environment(env.CALLBACK_KEY_SECRET_ARN, self.callback_key.secret_arn)
        # From the API's id, not its stage: the stage depends on the sync connectors' functions,
        # whose environment holds this URL.
        stack = Stack.of(self)
        self.callback_url = (
            f"https://{self.rest_api.rest_api_id}.execute-api.{stack.region}.{stack.url_suffix}/"
            f"{self._stage_name}/v1/callbacks"
        )
        method = (
            v1.add_resource("callbacks")
            .add_resource("{proxy+}")
            .add_method(
                "POST",
                apigw.LambdaIntegration(self.function.entry),
                request_validator=validator,
                request_parameters={"method.request.querystring.sig": True, "method.request.querystring.exp": True},
                authorization_type=apigw.AuthorizationType.NONE,
            )
        )
        cdk.Validations.of(method).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-APIG4",
                reason="Provider callbacks cannot carry DIG credentials: the URL is signed (HMAC-SHA256 with a "
                "Secrets Manager key) and the DIG API Lambda refuses an unsigned or forged one with 403",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-COG4",
                reason="Provider callbacks authenticate by their signed URL, not a Cognito user pool",
            ),
        )
        # X-Ray records a traced request's whole URL, the signature included: the callback route is
        # never sampled (API Gateway follows the account's sampling rules; priority 1 comes first).
        self._sampling_rule("CallbacksNotTraced", "callbacks", 1, method="POST", url_path="*/v1/callbacks/*")
        cdk.Validations.of(self.callback_key).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-SMG4",
                reason="Rotating the callback key would refuse results for calls in flight; it is rotated by hand "
                "between batches (README)",
            )
        )

    def _usage_plan(self, settings: Settings) -> None:
        """One usage plan, one key per configured client: API Gateway throttles each key on its own,
        so one client cannot starve another. The authorizer answers the key for the token's subject;
        a client with no key is refused (403). Key values name a client; they authenticate nothing."""
        plan = self.rest_api.add_usage_plan(
            "PerClient",
            name=f"dig-{settings.stage}-per-client",
            throttle=apigw.ThrottleSettings(rate_limit=settings.client_rate, burst_limit=settings.client_burst),
            api_stages=[apigw.UsagePlanPerApiStage(api=self.rest_api, stage=self.rest_api.deployment_stage)],
        )
        for client in settings.clients:
            key = apigw.ApiKey(
                self,
                f"Client{''.join(part.title() for part in re.split(r'[^A-Za-z0-9]', client))}Key",
                api_key_name=f"dig-{settings.stage}-{client}",
                value=usage_key_prefix(settings.stage) + client,
                description=f"DIG: usage identifier of client {client} (set by the authorizer, not sent by it)",
            )
            plan.add_api_key(key)

    def register_sync_connector(self, name: str, function: lambda_.IFunction, event_types: list[str]) -> None:
        """The synchronous flow invokes each connector's sync entry point (RequestResponse): ``function``,
        its ``live`` alias under SnapStart."""
        self._sync_connectors[name] = {"function": function.function_arn, "eventTypes": event_types}
        self.function.add_environment(env.SYNC_CONNECTORS, Stack.of(self).to_json_string(self._sync_connectors))
        # That function or alias only, not function.grant_invoke's "<arn>:*" (every version and alias).
        self.function.add_to_role_policy(
            iam.PolicyStatement(actions=["lambda:InvokeFunction"], resources=[function.function_arn])
        )

    def register_webhooks(
        self,
        manifest: ConnectorManifest,
        secrets: dict[str, secretsmanager.ISecret],
        sync_function: lambda_.IFunction | None,
    ) -> None:
        """A connector's webhook sources: the route (once), how the API verifies each (INBOUND_SOURCES),
        and read access to each source's secret, that secret only. A source the connector answers names
        its sync function instead (invoked as register_sync_connector allows), and no secret."""
        if not self._webhook_sources:
            self._inbound_route()
        self._webhook_sources[manifest.name] = {
            webhook.name: (
                webhook.describe(secrets[webhook.name].secret_name)
                if webhook.name in secrets
                else webhook.describe(None, sync_function.function_arn if sync_function else None)
            )
            for webhook in manifest.webhooks
        }
        self.function.add_environment(env.INBOUND_SOURCES, Stack.of(self).to_json_string(self._webhook_sources))
        for secret in secrets.values():
            secret.grant_read(self.function)

    def _inbound_route(self) -> None:
        """POST /v1/inbound/<connector>/<source>: providers' webhooks, which hold no DIG credentials; the
        DIG API Lambda verifies each as its connector's manifest declares and refuses it (401/403) first."""
        method = (
            self._v1.add_resource("inbound")
            .add_resource("{proxy+}")
            .add_method(
                "POST",
                apigw.LambdaIntegration(self.function.entry),
                request_validator=self._validator,
                authorization_type=apigw.AuthorizationType.NONE,
            )
        )
        cdk.Validations.of(method).acknowledge(
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-APIG4",
                reason="Providers' webhooks cannot carry DIG credentials: the DIG API Lambda verifies each by its "
                "source's rule (an HMAC over the body, a token in constant time, Standard Webhooks) and refuses "
                "it with 401/403 before anything is stored",
            ),
            cdk.Acknowledgment(
                id="AwsSolutions::AwsSolutions-COG4",
                reason="Providers' webhooks authenticate by their source's verification, not a Cognito user pool",
            ),
        )
        # A provider that cannot set headers puts its token in the URL: never traced (X-Ray keeps URLs).
        self._sampling_rule("WebhooksNotTraced", "webhooks", 2, method="POST", url_path="*/v1/inbound/*")

    def _sampling_rule(
        self,
        construct_id: str,
        name: str,
        priority: int,
        *,
        rate: float = 0,
        reservoir: int = 0,
        method: str = "*",
        url_path: str = "*",
    ) -> None:
        """An X-Ray sampling rule for this API's stage (API Gateway follows the account's sampling rules,
        the lowest priority number first); by default one that samples nothing of what it matches."""
        xray.CfnSamplingRule(
            self,
            construct_id,
            sampling_rule=xray.CfnSamplingRule.SamplingRuleProperty(
                rule_name=f"dig-{self._stage_name}-{name}",
                priority=priority,
                fixed_rate=rate,
                reservoir_size=reservoir,
                service_name=f"dig-{self._stage_name}/{self._stage_name}",
                service_type="*",
                host="*",
                http_method=method,
                url_path=url_path,
                resource_arn="*",
                version=1,
            ),
        )

    def _web_acl(self, settings: Settings) -> None:
        def managed(name: str, priority: int) -> wafv2.CfnWebACL.RuleProperty:
            return wafv2.CfnWebACL.RuleProperty(
                name=name,
                priority=priority,
                override_action=wafv2.CfnWebACL.OverrideActionProperty(none={}),
                statement=wafv2.CfnWebACL.StatementProperty(
                    managed_rule_group_statement=wafv2.CfnWebACL.ManagedRuleGroupStatementProperty(
                        vendor_name="AWS", name=name
                    )
                ),
                visibility_config=_visibility(name),
            )

        acl = wafv2.CfnWebACL(
            self,
            "WebAcl",
            scope="REGIONAL",
            default_action=wafv2.CfnWebACL.DefaultActionProperty(allow={}),
            visibility_config=_visibility(f"dig-{settings.stage}-api"),
            rules=[
                managed("AWSManagedRulesAmazonIpReputationList", 0),
                managed("AWSManagedRulesKnownBadInputsRuleSet", 1),
                # Every legitimate request carries a bearer token or is a provider's signed callback:
                # anything else is refused by the authorizer anyway, and is either a scan or a broken
                # client. 100 in 5 minutes from one address is enough to see the 401 and stop.
                _rate_rule(
                    "UnauthenticatedPerSourceIp",
                    2,
                    100,
                    wafv2.CfnWebACL.StatementProperty(
                        and_statement=wafv2.CfnWebACL.AndStatementProperty(
                            statements=[
                                _not(_header_present("authorization")),
                                _not(_path_contains("/v1/callbacks/")),
                                _not(_path_contains("/v1/inbound/")),
                            ]
                        )
                    ),
                ),
                # Providers post one callback per call and one webhook per notification; far more from one
                # address is not a provider. One rule for both routes: WAF bills each rule a month.
                _rate_rule(
                    "ProviderPostsPerSourceIp",
                    3,
                    settings.api_throttle_rate * 60,
                    wafv2.CfnWebACL.StatementProperty(
                        or_statement=wafv2.CfnWebACL.OrStatementProperty(
                            statements=[_path_contains("/v1/callbacks/"), _path_contains("/v1/inbound/")]
                        )
                    ),
                ),
                # The stage's own throttling is per API; per client it is the usage plan. This caps one
                # address at half the stage, so a single misbehaving host cannot take all of it.
                _rate_rule("RatePerSourceIp", 4, max(100, settings.api_throttle_rate * 150), None),
            ],
        )
        wafv2.CfnWebACLAssociation(
            self, "WebAclAssociation", resource_arn=self.rest_api.deployment_stage.stage_arn, web_acl_arn=acl.attr_arn
        )


def _rate_rule(
    name: str, priority: int, limit: int, scope: wafv2.CfnWebACL.StatementProperty | None
) -> wafv2.CfnWebACL.RuleProperty:
    return wafv2.CfnWebACL.RuleProperty(
        name=name,
        priority=priority,
        action=wafv2.CfnWebACL.RuleActionProperty(block={}),
        statement=wafv2.CfnWebACL.StatementProperty(
            rate_based_statement=wafv2.CfnWebACL.RateBasedStatementProperty(
                aggregate_key_type="IP", limit=limit, scope_down_statement=scope
            )
        ),
        visibility_config=_visibility(name),
    )


def _not(statement: wafv2.CfnWebACL.StatementProperty) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(not_statement=wafv2.CfnWebACL.NotStatementProperty(statement=statement))


def _header_present(name: str) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        size_constraint_statement=wafv2.CfnWebACL.SizeConstraintStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(single_header={"Name": name}),
            comparison_operator="GT",
            size=0,
            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
        )
    )


def _path_contains(text: str) -> wafv2.CfnWebACL.StatementProperty:
    return wafv2.CfnWebACL.StatementProperty(
        byte_match_statement=wafv2.CfnWebACL.ByteMatchStatementProperty(
            field_to_match=wafv2.CfnWebACL.FieldToMatchProperty(uri_path={}),
            positional_constraint="CONTAINS",
            search_string=text,
            text_transformations=[wafv2.CfnWebACL.TextTransformationProperty(priority=0, type="NONE")],
        )
    )


def _visibility(name: str) -> wafv2.CfnWebACL.VisibilityConfigProperty:
    return wafv2.CfnWebACL.VisibilityConfigProperty(
        cloud_watch_metrics_enabled=True, metric_name=name, sampled_requests_enabled=True
    )
