"""Settings from environment variables (prefix ``AFTERSALES_``) and the rulebook's numbers.

Every number the rulebook gives (``docs/rulebook.md``) lives here once, as a setting with the
rulebook's value as default, so a shop can change a deadline without touching a flow.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[2]
PLAIN_HTTP_API_CA = Path(__file__).with_name("plain_http_api_ca.pem")


class Rules(BaseSettings):
    """The rulebook's numbers. Env: ``AFTERSALES_RULE_<NAME>``."""

    # read from the same .env as the settings around it (a nested settings class reads its own)
    model_config = SettingsConfigDict(env_prefix="AFTERSALES_RULE_", env_file=".env", extra="ignore")

    # §1.1 return window: 7 days after receipt without reason (000 §2.1, 004)
    return_no_reason_days: int = 7
    # §1.1 a quality problem may be claimed later (default)
    return_quality_days: int = 15
    # §1.1 step 2: the seller has 5 days to agree or refuse; then the platform agrees (004)
    seller_review_days: int = 5
    # §1.1 step 4: the buyer has 7 days to ship, else the request closes (default)
    buyer_ship_days: int = 7
    # §1.1 step 5: 10 days to confirm receipt, else the system refunds automatically (004)
    receipt_confirm_days: int = 10
    # §1.1 step 6: warehouse inspection after receipt; on timeout the goods pass (default)
    inspection_working_days: int = 2
    # §1.1 refusal at delivery: tell customer service within 24 hours (004)
    refusal_report_hours: int = 24
    # §1.1 short shipment: refund the missing part or re-ship within 3 working days (004)
    short_shipment_fix_working_days: int = 3
    # §1.3 approval limits in CNY (default): agent <= 20, supervisor <= 500, manager above
    agent_limit: Decimal = Decimal("20")
    supervisor_limit: Decimal = Decimal("500")
    # §1.1 postage: the shop's standard parcel cost, used for the outbound postage of a
    # free-shipping order (split on a no-reason return) and for re-shipments (default)
    standard_postage: Decimal = Decimal("12.00")

    # §1.3 compensation: each approval level answers within this many hours (default)
    compensation_approval_hours: int = 24
    # §1.3 a coupon given as compensation is valid this many days (default)
    compensation_coupon_valid_days: int = 90
    # §1.4 express out-of-area: the buyer picks a remedy within 48 h, else the default (default)
    out_of_area_choice_hours: int = 48
    out_of_area_default_remedy: str = "switch_carrier"
    # §1.4 switching carrier: the one proposed when nobody names another; China Post EMS
    # delivers to every address, blind areas included (default)
    out_of_area_fallback_carrier: str = "ems"
    # §1.5 repair: warranty from delivery; superior's approval for out-of-warranty (defaults)
    repair_warranty_days: int = 365
    repair_approval_working_days: int = 2
    repair_buyer_ship_days: int = 7
    repair_stage_working_days: int = 5
    # §1.5 the buyer confirms the repaired item arrived; then it is taken as received (default,
    # as the platform auto-confirms receipt)
    repair_buyer_receipt_days: int = 10
    # §1.6 negative review: superior approves the offer; the buyer answers (defaults)
    review_approval_working_days: int = 1
    review_buyer_response_days: int = 7
    # §1.6 the responsible department finds the cause; the review specialist verifies a
    # suspected malicious review (defaults)
    review_cause_working_days: int = 2
    review_verify_working_days: int = 2
    # §1.7 wrong shipment: the buyer chooses re-ship or return (default)
    wrong_shipment_choice_days: int = 3
    # §1.7 the supervisor records the responsible person and the assessment (记录考核) (default)
    wrong_shipment_assessment_working_days: int = 3
    # §1.8 dispute: the shop replies within 3 days; the case closes within 15 (defaults)
    dispute_reply_days: int = 3
    dispute_close_days: int = 15
    # §1.10 complaints (002 §3.3): first response and handling plan by level, in hours;
    # level 4's plan is in working days. The supervisor is warned at this share of the time.
    complaint_first_response_hours: dict[int, int] = {1: 2, 2: 4, 3: 6, 4: 8}
    complaint_plan_hours: dict[int, int] = {1: 24, 2: 48, 3: 72}
    complaint_plan_working_days_level4: int = 5
    complaint_warning_share: float = 0.75
    # §1.10 result feedback to the customer within 3 working days after handling ends (002 §4.3)
    complaint_feedback_working_days: int = 3
    # §1.10 the customer answers a proposed solution within this many days; silence is taken as
    # agreement and the solution is carried out (default)
    complaint_customer_answer_days: int = 3
    # §1.11 enquiries (001 §二): the first response by channel, measured from the channel's own
    # timestamps — online chat within 30 s, a phone call served within 60 s of connecting, an e-mail
    # answered within 4 hours (a social-media message as an e-mail: a written answer; default)
    enquiry_chat_response_seconds: int = 30
    enquiry_phone_answer_seconds: int = 60
    enquiry_email_reply_hours: int = 4
    # a ticket is resolved (the customer told the result) within this many working days, else the
    # supervisor, then the manager, is told (default)
    enquiry_resolution_working_days: int = 2
    # §3 emergencies (001 §四): a contingency plan within hours by severity (1 major … 3 general),
    # affected customers updated at least every so many hours until it is resolved, and a
    # post-incident review within working days (defaults: the rulebook gives no numbers)
    emergency_plan_hours: dict[int, int] = {1: 1, 2: 4, 3: 24}
    emergency_update_hours: dict[int, int] = {1: 2, 2: 4, 3: 24}
    emergency_review_working_days: int = 3
    # an early-warning breach this many times its threshold or more is an emergency (severity 2)
    emergency_warning_ratio: float = 2.0
    # §1.9 order tracking: watch orders for 15 days after the signature (004 fig. 5.9);
    # no tracking update for this many days is a problem to raise with the buyer (default)
    tracking_watch_days: int = 15
    tracking_no_update_days: int = 3


# The secrets that ship with a built-in value so `make run` works on a fresh clone.
DEFAULT_SECRETS = {"api_key": "dev-api-key-change-me", "platform_api_key": "sandbox-platform-key",
                   "carrier_key": "sandbox-carrier-key", "carrier_push_salt": "sandbox-carrier-push-salt", "event_secret": "dev-event-secret-change-me",
                   "top_app_secret": "sandbox-top-app-secret", "top_session_key": "sandbox-top-session-key"}
# The secrets only one platform backend uses: production refuses their built-in value only when
# ``platform`` names that backend (a shop on today's gateway sets no TOP secret).
BACKEND_SECRETS = {"top_app_secret": "taobao", "top_session_key": "taobao"}


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="AFTERSALES_", env_file=".env", extra="ignore")

    # development (`make run`, the tests, a checkout): the built-in secrets below are accepted.
    # production: the system refuses to start while any of them is still the built-in one.
    environment: Literal["development", "production"] = "development"

    # Where the installation keeps its state: ``var/`` below it holds the case database (SQLite),
    # the Prefect server's home, results, exports and logs. Defaults to the checkout.
    home: Path = PROJECT_ROOT

    # The case database: SQLite file in var/ by default, PostgreSQL by URL
    # (e.g. postgresql+psycopg://user@127.0.0.1:5432/aftersales).
    database_url: str = ""

    # The Prefect server every component talks to (`make run` starts it on this address).
    prefect_api_url: str = "http://127.0.0.1:4200/api"

    # The shop platform (orders, refunds, re-shipments, reviews). The sandbox serves it locally;
    # production is a different URL and key.
    platform_url: str = "http://127.0.0.1:8765"
    platform_api_key: SecretStr = SecretStr(DEFAULT_SECRETS["platform_api_key"])
    platform_timeout_seconds: float = 10.0
    platform_retries: int = 4

    # Which protocol the shop platform speaks: "gateway" (the HTTP API above, today's) or "taobao"
    # (Taobao/Tmall's TOP, below). On "taobao" the buyers' refunds come from the platform
    # (`platform-sync` pulls them and opens the returns) and a return is decided there: agreed with
    # the return address below, refused with a reason of the platform's, paid by agreeing.
    platform: Literal["gateway", "taobao"] = "gateway"
    # Taobao/Tmall Open Platform (淘宝开放平台, TOP): its /router/rest (live:
    # https://gw.api.taobao.com/router/rest), the app's AppKey and AppSecret from the TOP console, and
    # the session key the seller's authorisation (授权) gave the app. The defaults are the sandbox's.
    top_url: str = "http://127.0.0.1:8765/router/rest"
    top_app_key: str = "sandbox-app-key"
    top_app_secret: SecretStr = SecretStr(DEFAULT_SECRETS["top_app_secret"])
    top_session_key: SecretStr = SecretStr(DEFAULT_SECRETS["top_session_key"])
    # The address a return is agreed with on TOP (taobao.rp.returngoods.agree): the warehouse's.
    # seller_address_id: the address's id in the seller's address book (地址库), which Taobao asks for.
    top_return_name: str = "售后仓 After-sales warehouse"
    top_return_phone: str = "021-61234567"
    top_return_address: str = "上海市青浦区华新镇华志路 1688 号 售后仓"
    top_return_postcode: str = "201708"
    top_seller_address_id: int | None = None
    # platform-sync: how often it pulls the refunds changed at the platform, how far back its first
    # run reads, how much of the last window it reads again (a refund committed late at the platform
    # still comes), and the widest window one call asks for.
    platform_sync_cron: str = "*/5 * * * *"
    platform_sync_first_hours: int = 72
    platform_sync_overlap_minutes: int = 10
    platform_sync_window_hours: int = 24

    # Carrier tracking aggregator (Kuaidi100 protocol).
    carrier_url: str = "http://127.0.0.1:8765/poll/query.do"
    carrier_customer: str = "SANDBOXCUSTOMER"
    carrier_key: SecretStr = SecretStr(DEFAULT_SECRETS["carrier_key"])
    # Kuaidi100's push subscription (快递信息推送服务): where we subscribe (live:
    # https://poll.kuaidi100.com/poll), where the provider pushes to (our API's
    # ``/carrier/kuaidi100/push``, reachable from the internet in production), and the salt every
    # push is signed with (``sign = md5(param + salt)``): a push without it changes nothing.
    carrier_push: bool = True  # false: no subscriptions, the tracker polls every waybill as before
    carrier_subscribe_url: str = ""  # default: carrier_url without its /query.do (Kuaidi100's layout)
    carrier_callback_url: str = ""  # default: <api_public_url or the API's host:port>/carrier/kuaidi100/push
    carrier_push_salt: SecretStr = SecretStr(DEFAULT_SECRETS["carrier_push_salt"])
    carrier_timeout_seconds: float = Field(default=10.0, gt=0)
    # a waybill may be subscribed only a few times a month (Kuaidi100 quotes 4)
    carrier_subscribe_limit: int = Field(default=4, ge=1)
    # after an ``abort`` "3天查询无记录" (no record yet) subscribe again this much later; till then it is polled
    carrier_resubscribe_hours: float = Field(default=24.0, gt=0)

    # Our own HTTP app (intake events, downloads): every endpoint requires this key.
    api_key: SecretStr = SecretStr(DEFAULT_SECRETS["api_key"])
    # Signs the outside events our intake submits (approvals/proof.py); the flows refuse one without it.
    event_secret: SecretStr = SecretStr(DEFAULT_SECRETS["event_secret"])
    api_host: str = "127.0.0.1"
    api_port: int = 8766

    # Notifications: an Apprise YAML config with tagged staff channels, and a URL template for
    # buyer messages ({contact} is the buyer's own contact, {customer_id} their id).
    apprise_config: Path = PROJECT_ROOT / "config" / "apprise.yml"
    customer_notify_url: str = "json://127.0.0.1:8765/sandbox/messages/{customer_id}?+X-Api-Key=sandbox-platform-key"
    # Each staff member's own channel, for the messages that carry their personal approval link
    # (approvals/links.py): an Apprise URL with {staff_id} and/or {contact} (the staff table's
    # contact), e.g. mailtos://notify:PASSWORD@smtp.example.com?to={contact}. Empty: no personal
    # links are sent; the role's channels (apprise_config) get every message as before.
    staff_notify_url: str = "json://127.0.0.1:8765/sandbox/messages/staff-{staff_id}?+X-Api-Key=sandbox-platform-key"
    outbox_max_attempts: int = 12

    timezone: str = "Asia/Shanghai"
    # Holidays (no working day) and make-up working days (调休) on weekends.
    holidays_file: Path = PROJECT_ROOT / "config" / "holidays.yml"

    # Where wait forms link to, for staff messages.
    ui_url: str = ""  # default: the Prefect server's UI (prefect_api_url without /api)

    # `serve` attaches the schedules (sweeper, outbox retry); tests drive them by hand instead.
    serve_schedules: bool = True
    sweeper_cron: str = "*/5 * * * *"
    outbox_retry_cron: str = "* * * * *"

    # The 15-day tracker: Kuaidi100 locks a waybill queried more often than every ~30 min.
    tracker_min_interval_minutes: int = 30
    tracker_batch_size: int = 500
    tracker_concurrency: int = 16
    tracker_cron: str = "0 * * * *"
    # a subscribed waybill is polled only when no push came for this long (the provider pushes on
    # change after re-checking every few hours): a parcel gone quiet still gets its §1.9 look
    tracker_push_quiet_hours: float = Field(default=12.0, gt=0)
    review_monitor_cron: str = "*/15 * * * *"
    # §1.8 the dispute specialist's daily register of yesterday's and still-open disputes
    dispute_register_cron: str = "0 9 * * *"

    exports_dir: Path | None = None

    # --- reports (finance export, satisfaction survey, early warning) ---
    # Where people reach our HTTP app (download links in artifacts, satisfaction links in buyer
    # messages). Default: the app's own host and port, right for `make run` on one machine.
    api_public_url: str | None = None
    # HMAC key of the satisfaction links. Unset: derived from the API key, so a deployment that
    # changed its API key has an unguessable secret too; set it to rotate links independently.
    satisfaction_secret: SecretStr | None = None

    # Schedules (Asia/Shanghai). The export runs on the 1st at 06:00 for the previous month.
    compensation_export_cron: str = "0 6 1 * *"
    # The quarterly satisfaction survey (000 §7.1.4): first day of each quarter, 10:00.
    satisfaction_survey_cron: str = "0 10 1 1,4,7,10 *"
    # Early warning (002 §9.2): every hour at :15.
    early_warning_cron: str = "15 * * * *"

    # Early warning (002 §9.2) (defaults): windows of this many days, aligned to Mondays; the
    # threshold is mean + k·stddev of the previous windows' counts, never below the floor.
    early_warning_window_days: int = 7
    early_warning_history_windows: int = 8
    early_warning_k: float = 3.0
    early_warning_floor: int = 5

    # `make run`'s supervisor restarts a component that died, at most this often in 10 minutes.
    supervisor_max_restarts: int = 5

    # serve forks each flow run from a process with Prefect and the flows imported (about 2 of the
    # 3 CPU-seconds a cold flow-run process costs); false starts each one cold, as Prefect does.
    warm_flow_runs: bool = True
    # How often serve asks the Prefect server for runs to start: a resumed wait is picked up within
    # this (one light query per poll; Prefect's own default is 10 s).
    runner_poll_seconds: float = Field(default=1.0, gt=0, le=60)
    # Flow runs at once: serve's limit; in worker mode the case runs' work queue's concurrency limit
    # (all workers together: each run is a process of ~230 MB, and without a limit a worker starts
    # every due run at once).
    flow_runs_at_once: int = Field(default=8, ge=1, le=1000)

    # Worker mode (`make run-workers`, `aftersales dev --workers N`): the Prefect server's own
    # database (PREFECT_API_DATABASE_CONNECTION_URL, e.g. postgresql+asyncpg://user@host:5432/prefect);
    # empty: Prefect's SQLite in var/prefect/.
    prefect_database_url: str = ""
    # A worker's flow run reports a heartbeat this often (Prefect's minimum is 30 s); a run that
    # stops reporting for `worker_unresponsive_seconds` (its worker or machine died) is re-queued by
    # the next scheduled deadline sweep and runs again from the top on any worker.
    worker_heartbeat_seconds: int = Field(default=30, ge=30)
    worker_unresponsive_seconds: int = Field(default=120, ge=45)

    rules: Rules = Field(default_factory=Rules)

    @field_validator("carrier_push_salt")
    @classmethod
    def _salt_fits_kuaidi100(cls, salt: SecretStr) -> SecretStr:
        # Kuaidi100 takes a salt of at most 32 characters; an empty one would leave pushes unsigned
        if not 1 <= len(salt.get_secret_value()) <= 32:
            raise ValueError("AFTERSALES_CARRIER_PUSH_SALT must be 1 to 32 characters (Kuaidi100's limit)")
        return salt

    @model_validator(mode="after")
    def _no_default_secret_in_production(self) -> "Settings":
        if self.environment != "production":
            return self
        kept = [f"AFTERSALES_{name.upper()}" for name, default in DEFAULT_SECRETS.items()
                if BACKEND_SECRETS.get(name, self.platform) == self.platform
                and getattr(self, name).get_secret_value() == default]
        if kept:
            raise ValueError(f"AFTERSALES_ENVIRONMENT=production but {', '.join(kept)} still "
                             f"{'has its' if len(kept) == 1 else 'have their'} built-in development value: set "
                             f"{'it' if len(kept) == 1 else 'them'} to the installation's own secret")
        return self

    @model_validator(mode="after")
    def _defaults_in_home(self) -> "Settings":
        if not self.carrier_subscribe_url:
            self.carrier_subscribe_url = self.carrier_url.removesuffix("/query.do")
        if not self.carrier_callback_url:
            self.carrier_callback_url = f"{self.public_url}/carrier/kuaidi100/push"
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'aftersales.db'}"
        if not self.ui_url:
            self.ui_url = self.prefect_api_url.removesuffix("/").removesuffix("/api")
        if self.exports_dir is None:
            self.exports_dir = self.var_dir / "exports"
        return self

    @property
    def var_dir(self) -> Path:
        return self.home / "var"

    @property
    def prefect_auth_file(self) -> Path:
        """The Prefect API's credentials (``user:password``, one line), when the environment does not
        give ``PREFECT_API_AUTH_STRING``: `make run` writes it on first start, every component reads it."""
        return self.var_dir / "prefect-auth"

    @property
    def public_url(self) -> str:
        """Where people reach our HTTP app (``api_public_url``, else its own host and port)."""
        if self.api_public_url:
            return self.api_public_url.rstrip("/")
        return f"http://{self.api_host}:{self.api_port}"

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def prefect_defaults(self) -> dict[str, str]:
        """The Prefect settings every component of this installation shares, unless set already."""
        return {
            "PREFECT_API_URL": self.prefect_api_url,
            "PREFECT_HOME": str(self.var_dir / "prefect"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",  # there is no internet
            # a fresh Prefect database migrates for about 40 s on 2 cores (default timeout: 20 s)
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
            # waits resume in a new process: finished steps are skipped through persisted results
            "PREFECT_LOCAL_STORAGE_PATH": str(self.var_dir / "results"),
            "PREFECT_RESULTS_PERSIST_BY_DEFAULT": "true",
            "PREFECT_RUNNER_POLL_FREQUENCY": "1",
            **PREFECT_SERVER_TUNING,
            **({"PREFECT_API_DATABASE_CONNECTION_URL": self.prefect_database_url} if self.prefect_database_url else {}),
        }


# The Prefect server as this installation runs it (also the test and bench stacks' servers, so that
# what they measure is what a shop runs). Our waits suspend without a timeout: Prefect's
# pause-expiry monitor, every 5 s by default, reads every suspended run for nothing (0.45 of a core
# idle at 5,000; bench/hold_bench.py).
PREFECT_SERVER_TUNING = {"PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_LOOP_SECONDS": "300"}


def prefect_client_tls(api_url: str) -> dict[str, str]:
    """Plain http: a one-root CA file, which every Prefect client otherwise loads (certifi's 150
    roots) for nothing (the file says why). https, or an operator's own file, is left alone."""
    return {"PREFECT_API_SSL_CERT_FILE": str(PLAIN_HTTP_API_CA)} if api_url.startswith("http://") else {}


def apply_prefect_defaults() -> None:
    """Put this installation's Prefect settings into the environment before Prefect is imported.

    Prefect reads its settings once, when it is first imported; a default set later is not seen,
    and the first client call then starts a temporary server of its own. Every entry point
    (``aftersales …``, serve, `make run`) calls this first; what is already set wins.
    """
    import os

    from pydantic import ValidationError

    try:
        settings = get_settings()
    except ValidationError as exc:  # e.g. a built-in secret in production: say which, without a traceback
        problems = "; ".join((f"{'.'.join(str(part) for part in error['loc'])}: " if error["loc"] else "")
                             + error["msg"].removeprefix("Value error, ") for error in exc.errors())
        raise SystemExit(f"aftersales: the settings were refused: {problems}") from None
    for name, value in settings.prefect_defaults().items():
        os.environ.setdefault(name, value)
    for name, value in prefect_client_tls(os.environ["PREFECT_API_URL"]).items():
        os.environ.setdefault(name, value)
    # Prefect creates its home without parents; a fresh checkout has no var/ yet
    Path(os.environ["PREFECT_HOME"]).expanduser().mkdir(parents=True, exist_ok=True)
    credentials = prefect_credentials(settings)
    if credentials is None:
        raise SystemExit("aftersales: the Prefect API has no credentials: set PREFECT_API_AUTH_STRING (user:password, the same "
                         f"as the server's PREFECT_SERVER_API_AUTH_STRING) or write them to {settings.prefect_auth_file}")
    # the client sends them; a Prefect server started from here (`make run`) requires them
    os.environ.setdefault("PREFECT_API_AUTH_STRING", credentials)
    os.environ.setdefault("PREFECT_SERVER_API_AUTH_STRING", credentials)


def prefect_credentials(settings: Settings) -> str | None:
    """The Prefect API's basic-auth credentials: ``PREFECT_API_AUTH_STRING``, else the installation's
    file (``var/prefect-auth``). In development a missing file is written with a new random
    password, so a fresh checkout's `make run` and CLI agree without a step of set-up; in production
    nothing is made up: None, and the caller refuses to start."""
    import os
    import secrets

    given = os.environ.get("PREFECT_API_AUTH_STRING")
    if given:
        return given
    path = settings.prefect_auth_file
    if not path.exists():
        if settings.environment == "production":
            return None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:  # readable by this user only; exclusive, so two first starts do not write two passwords
            with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as file:
                file.write(f"aftersales:{secrets.token_urlsafe(24)}\n")
        except FileExistsError:
            pass
    return path.read_text(encoding="utf-8").strip() or None


def prefect_auth_header() -> dict[str, str]:
    """The Authorization header for a plain HTTP call to the Prefect API (Prefect's own client adds
    it by itself from ``PREFECT_API_AUTH_STRING``)."""
    import base64
    import os

    credentials = os.environ.get("PREFECT_API_AUTH_STRING", "")
    return {"Authorization": "Basic " + base64.b64encode(credentials.encode()).decode()} if credentials else {}


@lru_cache
def get_settings() -> Settings:
    return Settings()


def load_calendar_days(path: Path) -> tuple[set[date], set[date]]:
    """Read ``holidays`` and ``workdays`` (make-up working days) from the holidays YAML file."""
    import yaml

    if not path.exists():
        return set(), set()
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    holidays = {date.fromisoformat(str(d)) for d in data.get("holidays") or []}
    workdays = {date.fromisoformat(str(d)) for d in data.get("workdays") or []}
    return holidays, workdays
