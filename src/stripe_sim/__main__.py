"""``python -m stripe_sim --port 12111 --webhook-url URL --webhook-secret whsec_...``"""

from __future__ import annotations

import argparse
import sys

from .config import DEFAULT_PORT, SimConfig
from .server import run_sim


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m stripe_sim",
        description="Local, stateful Stripe test-mode server.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--webhook-url", help="where signed webhook events are POSTed")
    parser.add_argument("--webhook-secret", help="whsec_... signing secret (default: generated)")
    parser.add_argument("--api-key", help="accept only this sk_test_ key (default: any)")
    parser.add_argument("--publishable-key", help="accept only this pk_test_ key (default: any)")
    parser.add_argument(
        "--allow-origin", action="append", default=[], help="extra CORS origin (repeatable)"
    )
    parser.add_argument("--webhook-max-attempts", type=int, default=8)
    parser.add_argument("--webhook-backoff-base-s", type=float, default=1.0)
    parser.add_argument(
        "--async-delay-s",
        type=float,
        default=None,
        help="delay of Stripe's later transitions (default: $STRIPE_SIM_ASYNC_DELAY_S or 2)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    config = SimConfig(
        webhook_url=args.webhook_url,
        webhook_secret=args.webhook_secret,
        api_key=args.api_key,
        publishable_key=args.publishable_key,
        allowed_origins=args.allow_origin,
        webhook_max_attempts=args.webhook_max_attempts,
        webhook_backoff_base_s=args.webhook_backoff_base_s,
    )
    if args.async_delay_s is not None:
        config.async_delay_s = args.async_delay_s
    run_sim(config, host=args.host, port=args.port)


if __name__ == "__main__":
    main()
