"""python -m ablations.bench [train|data|sweep|all] [flags]: the benchmarks, results under bench/.

    train   training images/s: our loop vs a bare paddle step vs paddle.Model.fit vs PyTorch
    data    the data loader and cache (ablations/bench/data.py); --stream FOLDER: the streaming loader
    sweep   a sweep's wall time, runs one after another vs packed one process per core
    all     train, data and sweep with their defaults (flags are not passed on)

`python -m ablations.bench COMMAND --help` lists each one's flags.
"""
import importlib
import sys

COMMANDS = ("train", "data", "sweep")


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__.strip())
        return 0 if argv else 2
    command, rest = argv[0], argv[1:]
    if command == "all":
        if rest:
            print("error: 'all' runs each benchmark with its defaults and takes no flags; "
                  "run them one by one to pass flags", file=sys.stderr)
            return 2
        for name in COMMANDS:
            print(f"== {name}", flush=True)
            importlib.import_module(f"ablations.bench.{name}").main([])
        return 0
    if command not in COMMANDS:
        print(f"error: unknown benchmark {command!r}; known: {', '.join(COMMANDS)}, all", file=sys.stderr)
        return 2
    # Imported on demand: each benchmark loads only what it measures.
    importlib.import_module(f"ablations.bench.{command}").main(rest)
    return 0


if __name__ == "__main__":
    sys.exit(main())
