"""The embedded demo world: emulators and fixtures that stand in for real accounts and hosts."""
