"""`dig cost`: what a million events cost, measured by metering every AWS request the real handlers make."""
