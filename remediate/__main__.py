"""The `remediate` command (`python -m remediate`, and the console script).

Kept light: a `plan` that will collect Nginx hosts starts that collection
(`providers.headstart`) before the command's own imports, about a quarter of a second."""

import sys


def main() -> None:
    from remediate.providers import headstart

    try:
        headstart.begin(sys.argv[1:])
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    from remediate import cli

    cli.main()


if __name__ == "__main__":
    main()
