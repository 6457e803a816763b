"""Load profiles and their physics: what a household's meter draws, second by second (pure: time and randomness are
arguments)."""
