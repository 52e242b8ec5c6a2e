"""The ``acmegate`` subcommands, one module per area.

Each module defines ``register(commands)`` that adds its subparsers to the top-level
``argparse`` subparsers object; :func:`acmegate.cli.main.build_parser` calls every module
found here, so adding a command never means editing a shared file.
"""
