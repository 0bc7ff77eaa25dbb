"""The CDK app: ``make synth`` (or ``npx cdk synth``) writes cdk.out/ offline; ``make deploy`` ships it.

cdk-nag's AwsSolutions pack validates the app on every synth: an unacknowledged finding fails it.
"""

from __future__ import annotations

import os

import aws_cdk as cdk
from cdk_nag import AwsSolutionsChecks

from infra.settings import Settings
from infra.stack import DigStack


def build_app(context: dict[str, object] | None = None, outdir: str | None = None) -> cdk.App:
    app = cdk.App(context=context, outdir=outdir)
    settings = Settings.from_context(app.node)
    account, region = os.environ.get("CDK_DEFAULT_ACCOUNT"), os.environ.get("CDK_DEFAULT_REGION")
    environment = cdk.Environment(account=account, region=region) if account and region else None
    stack = DigStack(app, settings.stack_name, settings=settings, env=environment)
    cdk.Tags.of(stack).add("application", "dig")
    cdk.Tags.of(stack).add("stage", settings.stage)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return app


if __name__ == "__main__":
    build_app().synth()
