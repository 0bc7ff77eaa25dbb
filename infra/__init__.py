"""The CDK app that deploys DIG: one thin stack, one construct per concern."""
