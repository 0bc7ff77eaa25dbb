"""The Optimove connector: ES Loyalty events to Optimove's customer, mail and real-time APIs."""
