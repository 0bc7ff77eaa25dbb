"""Optimove's daily batch channel: configuration (config), rows as Optimove's files want them (rows),
the day's files (files) and the incremental build of a day (build)."""
