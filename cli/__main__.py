"""`python -m cli` runs the `vigie` command."""

from cli.main import main

if __name__ == "__main__":
    main()
