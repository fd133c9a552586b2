"""python -m erudiff: a small command line over the client (the bash client clients/erudiff has more).

    python -m erudiff status
    python -m erudiff call METHOD '{"json": "params"}'
    python -m erudiff sample "the flag of Japan" -o flag.png [--seed N] [--steps N]

Installed with pip (clients/python/pyproject.toml), the same command line is `erudiff-py`.

When no daemon answers it starts one (as ``Client`` does; --no-autostart or ERUDIFF_NO_AUTOSTART=1 turn
that off). Exit codes: 0 ok, 1 JSON-RPC error, 2 usage, 3 cannot connect, 130 interrupted.
"""

import argparse
import json
import sys

from . import Client, DaemonUnavailable, RpcError


def main(argv=None, prog="python -m erudiff"):
    ap = argparse.ArgumentParser(prog=prog, description="Call erudiffd.")
    ap.add_argument("--socket", help="socket path (default: $ERUDIFF_SOCKET or the daemon's default)")
    ap.add_argument("--no-autostart", action="store_true",
                    help="do not start erudiffd when none answers (also ERUDIFF_NO_AUTOSTART=1)")
    sub = ap.add_subparsers(dest="command", required=True)
    sub.add_parser("status")
    c = sub.add_parser("call")
    c.add_argument("method")
    c.add_argument("params", nargs="?", default=None)
    s = sub.add_parser("sample")
    s.add_argument("prompt")
    s.add_argument("-o", "--output", required=True, help="PNG file to write (index added when several)")
    s.add_argument("--seed", type=int)
    s.add_argument("--steps", type=int)
    s.add_argument("--count", type=int)
    s.add_argument("--guidance", type=float)
    args = ap.parse_args(argv)

    def progress(p):
        if p.kind == "report" and p.percentage is not None:
            print(f"\r{p.percentage:3d}% {p.message or ''}", end="", file=sys.stderr, flush=True)
        elif p.kind == "end":
            print(file=sys.stderr)

    try:
        with Client(args.socket, autostart=False if args.no_autostart else None) as client:
            if args.command == "status":
                print(json.dumps(client.status(), indent=2))
            elif args.command == "call":
                try:
                    params = json.loads(args.params) if args.params else None
                except ValueError as e:
                    print(f"erudiff: params are not JSON: {e}", file=sys.stderr)
                    return 2
                print(json.dumps(client.call(args.method, params, progress=progress), indent=2))
            else:
                result = client.sample(args.prompt, seed=args.seed, steps=args.steps, count=args.count,
                                       guidance=args.guidance, progress=progress)
                for i, im in enumerate(result.images):
                    path = args.output if len(result.images) == 1 else args.output.replace(".png", f"-{i + 1}.png")
                    im.save(path)
                    print(path)
    except DaemonUnavailable as e:
        print(f"erudiff: {e}", file=sys.stderr)
        return 3
    except RpcError as e:
        print(f"erudiff: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    return 0


def console():
    """The `erudiff-py` command that `pip install` makes (pyproject.toml)."""
    sys.exit(main(prog="erudiff-py"))


if __name__ == "__main__":
    sys.exit(main())
