"""The local stack: the real DIG handlers on one machine, with moto standing in for AWS and a
simulator standing in for Optimove. ``dig local`` runs it; nothing here ships in a Lambda."""
