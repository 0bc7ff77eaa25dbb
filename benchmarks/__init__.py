"""`make bench`: the performance figures the issues ask for, measured the way they ask."""
