"""Serve the sandbox shop platform: ``python -m sandbox_platform --port 8765``."""

from __future__ import annotations

import argparse

import uvicorn

from aftersales.domain.settings import get_settings
from sandbox_platform.app import create_app


def main(argv: list[str] | None = None) -> None:
    settings = get_settings()
    parser = argparse.ArgumentParser(prog="python -m sandbox_platform",
                                     description="In-memory shop platform (its own API and TOP) and Kuaidi100 query.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--api-key", default=settings.platform_api_key.get_secret_value(),
                        help="the X-Api-Key clients must send (default: AFTERSALES_PLATFORM_API_KEY)")
    parser.add_argument("--carrier-customer", default=settings.carrier_customer)
    parser.add_argument("--carrier-key", default=settings.carrier_key.get_secret_value())
    parser.add_argument("--top-app-key", default=settings.top_app_key, help="TOP's app key (default: AFTERSALES_TOP_APP_KEY)")
    parser.add_argument("--top-app-secret", default=settings.top_app_secret.get_secret_value())
    parser.add_argument("--top-session-key", default=settings.top_session_key.get_secret_value())
    parser.add_argument("--no-seed", action="store_true", help="start without the demo orders")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)

    app = create_app(args.api_key, seed=not args.no_seed,
                     carrier_customer=args.carrier_customer, carrier_key=args.carrier_key,
                     top_app_key=args.top_app_key, top_app_secret=args.top_app_secret,
                     top_session_key=args.top_session_key)
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)


if __name__ == "__main__":
    main()
