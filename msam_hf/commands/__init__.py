"""The `msam` commands: each module exposes `register(subparsers)` and calls the library."""
