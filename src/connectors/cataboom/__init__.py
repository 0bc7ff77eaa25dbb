"""The CataBoom connector: a member who earns plays (GAME_PLAY_AWARDED) gets one-time game links, and
what they win comes back to ES Loyalty as points (CataBoom's writeback), exactly once."""
